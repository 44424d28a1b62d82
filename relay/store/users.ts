import type { DatabaseSync } from 'node:sqlite';
import type { StorageHealth } from './storage-health.ts';

export interface User {
  id: string;
  username: string;
  passwordHash: string;
  admin: boolean;
  createdAt: number;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  admin: number;
  created_at: number;
}

function toUser(row: UserRow): User {
  return { id: row.id, username: row.username, passwordHash: row.password_hash, admin: row.admin === 1, createdAt: row.created_at };
}

export class Users {
  #db: DatabaseSync;
  #health: StorageHealth;
  constructor(db: DatabaseSync, health: StorageHealth) {
    this.#db = db;
    this.#health = health;
  }

  count(): number {
    return Number((this.#db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number }).n);
  }

  byId(id: string): User | undefined {
    const row = this.#db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return row && toUser(row);
  }

  byUsername(username: string): User | undefined {
    const row = this.#db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
    return row && toUser(row);
  }

  insert(user: User, createdBy: string | null): void {
    this.#health.required(`the account ${user.username}`, () =>
      this.#db
        .prepare('INSERT INTO users (id, username, password_hash, admin, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)')
        .run(user.id, user.username, user.passwordHash, user.admin ? 1 : 0, user.createdAt, createdBy),
    );
  }

  /** Replaces a password hash (a sign-in upgrading it to the current scrypt cost). */
  setPasswordHash(id: string, passwordHash: string): void {
    this.#health.required('the upgraded password hash', () => this.#db.prepare('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, id));
  }
}
