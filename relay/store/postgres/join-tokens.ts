// Join tokens (the customer's one-liner) in PostgreSQL: the calls of relay/store/join-tokens.ts.
import type { JoinToken, JoinTokensStore } from '../contract.ts';
import type { Db } from './connection.ts';
import { joinTokenValues, toJoinToken, type JoinTokenRow } from '../rows.ts';

export class PgJoinTokens implements JoinTokensStore {
  #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async insert(t: JoinToken): Promise<void> {
    await this.#db.run('INSERT INTO join_tokens (jti, session_id, code, token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)', joinTokenValues(t));
  }

  async codeExists(code: string): Promise<boolean> {
    return (await this.#db.one('SELECT 1 FROM join_tokens WHERE code = $1', [code])) !== undefined;
  }

  async byJti(jti: string): Promise<JoinToken | undefined> {
    const row = await this.#db.one<JoinTokenRow>('SELECT * FROM join_tokens WHERE jti = $1', [jti]);
    return row && toJoinToken(row);
  }

  async byCode(code: string): Promise<JoinToken | undefined> {
    const row = await this.#db.one<JoinTokenRow>('SELECT * FROM join_tokens WHERE code = $1', [code]);
    return row && toJoinToken(row);
  }

  async activeForSession(sessionId: string): Promise<JoinToken | undefined> {
    const row = await this.#db.one<JoinTokenRow>('SELECT * FROM join_tokens WHERE session_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, jti LIMIT 1', [sessionId]);
    return row && toJoinToken(row);
  }

  async revokeForSession(sessionId: string, now: number): Promise<void> {
    await this.#db.run('UPDATE join_tokens SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL', [now, sessionId]);
  }
}
