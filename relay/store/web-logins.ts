import type { DatabaseSync } from 'node:sqlite';
import { HeldRows, type StorageHealth } from './storage-health.ts';
import { toWebLogin, webLoginValues, type WebLoginRow } from './rows.ts';

/** A browser sign-in: the cookie's JWT names it by id, so revoking the row logs the browser out. */
export interface WebLogin {
  id: string;
  userId: string;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

export class WebLogins {
  #db: DatabaseSync;
  #health: StorageHealth;
  /** Sign-ins (and sign-outs) made while the disk was full: they work now and are written once there is room. */
  #held: HeldRows<WebLogin>;

  constructor(db: DatabaseSync, health: StorageHealth) {
    this.#db = db;
    this.#health = health;
    this.#held = new HeldRows(health, 'web_logins');
  }

  insert(login: WebLogin): void {
    this.#save({ ...login }, 'a sign-in');
  }

  byId(id: string): WebLogin | undefined {
    const held = this.#held.get(id);
    if (held) return { ...held };
    const row = this.#db.prepare('SELECT * FROM web_logins WHERE id = ?').get(id) as WebLoginRow | undefined;
    return row && toWebLogin(row);
  }

  revoke(id: string, now: number): void {
    const login = this.byId(id);
    if (!login || login.revokedAt !== null) return;
    this.#save({ ...login, revokedAt: now }, 'a sign-out');
  }

  /** Forgets sign-ins that can no longer be used, so the table does not grow forever. */
  prune(now: number): void {
    this.#health.deferrable('web_logins:prune', 'pruning old sign-ins', () => {
      this.#db.prepare('DELETE FROM web_logins WHERE expires_at < ?').run(now);
    });
  }

  #save(login: WebLogin, what: string): void {
    // The whole row, so a held sign-out written later still carries everything its sign-in had.
    this.#held.save(login.id, what, login, (l) =>
      this.#db
        .prepare(
          'INSERT INTO web_logins (id, user_id, csrf_token, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET revoked_at = excluded.revoked_at',
        )
        .run(...webLoginValues(l)),
    );
  }
}
