// Browser sign-ins in PostgreSQL: the calls of relay/store/web-logins.ts.
import type { WebLogin, WebLoginsStore } from '../contract.ts';
import type { Db } from './connection.ts';
import { toWebLogin, webLoginValues, type WebLoginRow } from '../rows.ts';

export class PgWebLogins implements WebLoginsStore {
  #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async insert(login: WebLogin): Promise<void> {
    // An upsert, as the embedded store writes it: the same sign-in saved again keeps its newest revocation.
    await this.#db.run(
      'INSERT INTO web_logins (id, user_id, csrf_token, created_at, expires_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET revoked_at = excluded.revoked_at',
      webLoginValues(login),
    );
  }

  async byId(id: string): Promise<WebLogin | undefined> {
    const row = await this.#db.one<WebLoginRow>('SELECT * FROM web_logins WHERE id = $1', [id]);
    return row && toWebLogin(row);
  }

  async revoke(id: string, now: number): Promise<void> {
    // The first revocation stands, as in the embedded store.
    await this.#db.run('UPDATE web_logins SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [now, id]);
  }

  async prune(now: number): Promise<void> {
    await this.#db.run('DELETE FROM web_logins WHERE expires_at < $1', [now]);
  }
}
