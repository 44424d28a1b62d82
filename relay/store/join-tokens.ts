import type { DatabaseSync } from 'node:sqlite';
import type { StorageHealth } from './storage-health.ts';
import { joinTokenValues, toJoinToken, type JoinTokenRow } from './rows.ts';

export interface JoinToken {
  jti: string;
  sessionId: string;
  /** The short code in the customer's one-liner (`/j/CODE`). */
  code: string;
  /** The signed JWT the code stands for. */
  token: string;
  createdAt: number;
  expiresAt: number;
  revokedAt: number | null;
}

export class JoinTokens {
  #db: DatabaseSync;
  #health: StorageHealth;
  constructor(db: DatabaseSync, health: StorageHealth) {
    this.#db = db;
    this.#health = health;
  }

  insert(t: JoinToken): void {
    this.#health.required('the join token', () =>
      this.#db
        .prepare('INSERT INTO join_tokens (jti, session_id, code, token, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)')
        .run(...joinTokenValues(t)),
    );
  }

  codeExists(code: string): boolean {
    return this.#db.prepare('SELECT 1 FROM join_tokens WHERE code = ?').get(code) !== undefined;
  }

  byJti(jti: string): JoinToken | undefined {
    const row = this.#db.prepare('SELECT * FROM join_tokens WHERE jti = ?').get(jti) as JoinTokenRow | undefined;
    return row && toJoinToken(row);
  }

  byCode(code: string): JoinToken | undefined {
    const row = this.#db.prepare('SELECT * FROM join_tokens WHERE code = ?').get(code) as JoinTokenRow | undefined;
    return row && toJoinToken(row);
  }

  /** The session's current (newest, unrevoked) join token. */
  activeForSession(sessionId: string): JoinToken | undefined {
    const row = this.#db
      .prepare('SELECT * FROM join_tokens WHERE session_id = ? AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 1')
      .get(sessionId) as JoinTokenRow | undefined;
    return row && toJoinToken(row);
  }

  revokeForSession(sessionId: string, now: number): void {
    this.#health.required("revoking the session's join token", () =>
      this.#db.prepare('UPDATE join_tokens SET revoked_at = ? WHERE session_id = ? AND revoked_at IS NULL').run(now, sessionId),
    );
  }
}
