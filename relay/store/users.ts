import type { DatabaseSync } from 'node:sqlite';
import type { StorageHealth } from './storage-health.ts';
import { toUser, type UserRow } from './rows.ts';

export interface User {
  id: string;
  username: string;
  passwordHash: string;
  admin: boolean;
  createdAt: number;
  /** When an admin disabled the account (it cannot sign in); null while enabled. */
  disabledAt: number | null;
  /** The last successful sign-in; null if it never signed in (or before the relay kept this). */
  lastSignInAt: number | null;
}

/** A new account: enabled and never signed in unless said otherwise. */
export type NewUser = Omit<User, 'disabledAt' | 'lastSignInAt'> & Partial<Pick<User, 'disabledAt' | 'lastSignInAt'>>;

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

  /** Every account, oldest first. */
  all(): User[] {
    return (this.#db.prepare('SELECT * FROM users ORDER BY created_at, username').all() as unknown as UserRow[]).map(toUser);
  }

  byId(id: string): User | undefined {
    const row = this.#db.prepare('SELECT * FROM users WHERE id = ?').get(id) as UserRow | undefined;
    return row && toUser(row);
  }

  byUsername(username: string): User | undefined {
    const row = this.#db.prepare('SELECT * FROM users WHERE username = ?').get(username) as UserRow | undefined;
    return row && toUser(row);
  }

  /** Enabled admins, not counting `exceptId`. */
  enabledAdmins(exceptId?: string): number {
    const row = this.#db.prepare('SELECT COUNT(*) AS n FROM users WHERE admin = 1 AND disabled_at IS NULL AND id != ?').get(exceptId ?? '') as { n: number };
    return Number(row.n);
  }

  insert(user: NewUser, createdBy: string | null): void {
    this.#health.required(`the account ${user.username}`, () =>
      this.#db
        .prepare('INSERT INTO users (id, username, password_hash, admin, created_at, created_by, disabled_at, last_sign_in_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(user.id, user.username, user.passwordHash, user.admin ? 1 : 0, user.createdAt, createdBy, user.disabledAt ?? null, user.lastSignInAt ?? null),
    );
  }

  /** Replaces a password hash: a sign-in upgrading it to the current scrypt cost, or a new password (a reset or a change). */
  setPasswordHash(id: string, passwordHash: string, what = 'the upgraded password hash'): void {
    this.#health.required(what, () => this.#db.prepare('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, id));
  }

  /** Disables (`at` a time) or enables (null) an account. */
  setDisabled(id: string, at: number | null): void {
    this.#health.required(at === null ? 'enabling the account' : 'disabling the account', () =>
      this.#db.prepare('UPDATE users SET disabled_at = ? WHERE id = ?').run(at, id),
    );
  }

  /** Remembers a successful sign-in; may wait for room on a full disk (sign-ins work regardless). */
  recordSignIn(id: string, at: number): void {
    this.#health.deferrable(`users:sign-in:${id}`, 'the time of a sign-in', () => {
      this.#db.prepare('UPDATE users SET last_sign_in_at = MAX(COALESCE(last_sign_in_at, 0), ?) WHERE id = ?').run(at, id);
    });
  }

  /** Ids of the account's stored sign-ins that still work (not revoked, not expired). */
  liveSignInIds(userId: string, now: number): string[] {
    const rows = this.#db.prepare('SELECT id FROM web_logins WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?').all(userId, now) as { id: string }[];
    return rows.map((r) => r.id);
  }
}
