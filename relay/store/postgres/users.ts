// Accounts in PostgreSQL: the calls of relay/store/users.ts, over the pool or a transaction.
import type { NewUser, User, UsersStore } from '../contract.ts';
import type { Db } from './connection.ts';
import { toUser, type UserRow } from '../rows.ts';

export class PgUsers implements UsersStore {
  #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async count(): Promise<number> {
    return (await this.#db.one<{ n: number }>('SELECT count(*) AS n FROM users'))!.n;
  }

  async all(): Promise<User[]> {
    return (await this.#db.rows<UserRow>('SELECT * FROM users ORDER BY created_at, username')).map(toUser);
  }

  async byId(id: string): Promise<User | undefined> {
    const row = await this.#db.one<UserRow>('SELECT * FROM users WHERE id = $1', [id]);
    return row && toUser(row);
  }

  async byUsername(username: string): Promise<User | undefined> {
    const row = await this.#db.one<UserRow>('SELECT * FROM users WHERE username = $1', [username]);
    return row && toUser(row);
  }

  async enabledAdmins(exceptId?: string): Promise<number> {
    const row = await this.#db.one<{ n: number }>('SELECT count(*) AS n FROM users WHERE admin AND disabled_at IS NULL AND id <> $1', [exceptId ?? '']);
    return row!.n;
  }

  async insert(user: NewUser, createdBy: string | null): Promise<void> {
    await this.#db.run(
      'INSERT INTO users (id, username, password_hash, admin, created_at, created_by, disabled_at, last_sign_in_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [user.id, user.username, user.passwordHash, user.admin, user.createdAt, createdBy, user.disabledAt ?? null, user.lastSignInAt ?? null],
    );
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.#db.run('UPDATE users SET password_hash = $1 WHERE id = $2', [passwordHash, id]);
  }

  async setDisabled(id: string, at: number | null): Promise<void> {
    await this.#db.run('UPDATE users SET disabled_at = $1 WHERE id = $2', [at, id]);
  }

  async recordSignIn(id: string, at: number): Promise<void> {
    // The latest wins whichever relay writes last.
    await this.#db.run('UPDATE users SET last_sign_in_at = GREATEST(COALESCE(last_sign_in_at, 0), $1) WHERE id = $2', [at, id]);
  }

  async liveSignInIds(userId: string, now: number): Promise<string[]> {
    const rows = await this.#db.rows<{ id: string }>('SELECT id FROM web_logins WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2', [userId, now]);
    return rows.map((r) => r.id);
  }
}
