// The audit log in PostgreSQL: the calls of relay/store/audit-log.ts. Entry ids
// come from one sequence, so paging by id works across relays.
import type { AuditEntry, AuditStore } from '../contract.ts';
import type { Db } from './connection.ts';
import { toAuditEntry, type AuditRow } from '../rows.ts';

export class PgAudit implements AuditStore {
  #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async record(actor: string, action: string, sessionId: string | null, detail: Record<string, unknown> = {}, now = Date.now()): Promise<void> {
    await this.#db.run('INSERT INTO audit (ts, actor, session_id, action, detail) VALUES ($1, $2, $3, $4, $5)', [now, actor, sessionId, action, JSON.stringify(detail)]);
  }

  async forSession(sessionId: string, limit: number, before?: number): Promise<AuditEntry[]> {
    const rows = await this.#db.rows<AuditRow>('SELECT * FROM audit WHERE session_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3', [
      sessionId,
      before ?? Number.MAX_SAFE_INTEGER,
      limit,
    ]);
    return rows.map(toAuditEntry);
  }

  async all(limit: number, before?: number): Promise<AuditEntry[]> {
    const rows = await this.#db.rows<AuditRow>('SELECT * FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2', [before ?? Number.MAX_SAFE_INTEGER, limit]);
    return rows.map(toAuditEntry);
  }
}
