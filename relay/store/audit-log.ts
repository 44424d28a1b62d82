import type { DatabaseSync } from 'node:sqlite';
import type { StorageHealth } from './storage-health.ts';
import { toAuditEntry, type AuditRow } from './rows.ts';

export interface AuditEntry {
  id: number;
  ts: number;
  /** A username, `agent:ID`, or `relay` for what the relay did on its own. */
  actor: string;
  sessionId: string | null;
  action: string;
  detail: Record<string, unknown>;
}

export class AuditLog {
  #db: DatabaseSync;
  #health: StorageHealth;
  /** Numbers entries so a held one never replaces another (each must land). */
  #seq = 0;
  constructor(db: DatabaseSync, health: StorageHealth) {
    this.#db = db;
    this.#health = health;
  }

  /** Never fails for lack of space: on a full disk the entry is held (in order) and written once there is room. */
  record(actor: string, action: string, sessionId: string | null, detail: Record<string, unknown> = {}, now = Date.now()): void {
    const json = JSON.stringify(detail);
    this.#health.deferrable(`audit:${++this.#seq}`, `the audit entry ${action}`, () => {
      this.#db.prepare('INSERT INTO audit (ts, actor, session_id, action, detail) VALUES (?, ?, ?, ?, ?)').run(now, actor, sessionId, action, json);
    });
  }

  /** Newest first; `before` pages back by entry id. */
  forSession(sessionId: string, limit: number, before?: number): AuditEntry[] {
    const rows = this.#db
      .prepare('SELECT * FROM audit WHERE session_id = ? AND id < ? ORDER BY id DESC LIMIT ?')
      .all(sessionId, before ?? Number.MAX_SAFE_INTEGER, limit) as unknown as AuditRow[];
    return rows.map(toAuditEntry);
  }

  all(limit: number, before?: number): AuditEntry[] {
    const rows = this.#db
      .prepare('SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?')
      .all(before ?? Number.MAX_SAFE_INTEGER, limit) as unknown as AuditRow[];
    return rows.map(toAuditEntry);
  }
}
