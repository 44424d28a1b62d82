import type { DatabaseSync } from 'node:sqlite';

/** A browser sign-in: the cookie's JWT names it by id, so revoking the row logs the browser out. */
export interface WebLogin {
  id: string;
  userId: string;
  csrfToken: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

interface WebLoginRow {
  id: string;
  user_id: string;
  csrf_token: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export class WebLogins {
  #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  insert(login: WebLogin): void {
    this.#db
      .prepare('INSERT INTO web_logins (id, user_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(login.id, login.userId, login.csrfToken, login.createdAt, login.expiresAt);
  }

  byId(id: string): WebLogin | undefined {
    const row = this.#db.prepare('SELECT * FROM web_logins WHERE id = ?').get(id) as WebLoginRow | undefined;
    if (!row) return undefined;
    return {
      id: row.id,
      userId: row.user_id,
      csrfToken: row.csrf_token,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      revokedAt: row.revoked_at,
    };
  }

  revoke(id: string, now: number): void {
    this.#db.prepare('UPDATE web_logins SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(now, id);
  }

  /** Forgets sign-ins that can no longer be used, so the table does not grow forever. */
  prune(now: number): void {
    this.#db.prepare('DELETE FROM web_logins WHERE expires_at < ?').run(now);
  }
}
