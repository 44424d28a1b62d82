// Captures in PostgreSQL: the calls of relay/store/captures.ts plus the
// conditional ones several relays need. Every change to a capture that may
// have ended elsewhere is an UPDATE ... WHERE it is still active, so the
// database decides who wins; the lease columns (owner, deadline) say which
// relay holds a capture's agent and when the capture times out without it.
import type { CaptureEnd, CaptureRecord, CapturesStore } from '../contract.ts';
import type { Db } from './connection.ts';
import {
  ACTIVE_CAPTURE_SQL as ACTIVE_SQL,
  CAPTURE_STATE_COLUMNS,
  captureErrorValue,
  captureStartValues,
  captureStateValues,
  toCapture,
  type CaptureRow,
} from '../rows.ts';

/** The columns that change after a capture starts, as $1..$9 (values: captureStateValues; then $10 and $11 are free). */
const STATE_SET = CAPTURE_STATE_COLUMNS.map((c, i) => `${c} = $${i + 1}`).join(', ');

export class PgCaptures implements CapturesStore {
  #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async insert(c: CaptureRecord): Promise<void> {
    await this.#db.run(
      'INSERT INTO captures (id, session_id, agent_id, requested_by, kind, pid, options, status, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
      captureStartValues(c),
    );
  }

  async byId(id: string): Promise<CaptureRecord | undefined> {
    const row = await this.#db.one<CaptureRow>('SELECT * FROM captures WHERE id = $1', [id]);
    return row && toCapture(row);
  }

  async forSession(sessionId: string): Promise<CaptureRecord[]> {
    return (await this.#db.rows<CaptureRow>('SELECT * FROM captures WHERE session_id = $1 ORDER BY started_at DESC, id', [sessionId])).map(toCapture);
  }

  async activeForAgent(agentId: string): Promise<CaptureRecord[]> {
    return (await this.#db.rows<CaptureRow>(`SELECT * FROM captures WHERE agent_id = $1 AND ${ACTIVE_SQL} ORDER BY started_at, id`, [agentId])).map(toCapture);
  }

  async activeForSession(sessionId: string): Promise<CaptureRecord[]> {
    return (await this.#db.rows<CaptureRow>(`SELECT * FROM captures WHERE session_id = $1 AND ${ACTIVE_SQL} ORDER BY started_at, id`, [sessionId])).map(toCapture);
  }

  async allActive(): Promise<CaptureRecord[]> {
    return (await this.#db.rows<CaptureRow>(`SELECT * FROM captures WHERE ${ACTIVE_SQL} ORDER BY started_at, id`)).map(toCapture);
  }

  async save(c: CaptureRecord): Promise<void> {
    await this.#db.run(`UPDATE captures SET ${STATE_SET}, stop_requested_by = $10 WHERE id = $11`, [...captureStateValues(c), c.stopRequestedBy, c.id]);
  }

  async progress(c: CaptureRecord): Promise<boolean> {
    // COALESCE: a stop asked for on another relay stays, whatever this relay's copy says.
    const changed = await this.#db.run(`UPDATE captures SET ${STATE_SET}, stop_requested_by = COALESCE($10, stop_requested_by) WHERE id = $11 AND ${ACTIVE_SQL}`, [
      ...captureStateValues(c),
      c.stopRequestedBy,
      c.id,
    ]);
    return changed > 0;
  }

  async finish(c: CaptureRecord): Promise<boolean> {
    const changed = await this.#db.run(
      `UPDATE captures SET ${STATE_SET}, stop_requested_by = COALESCE($10, stop_requested_by), owner = NULL, deadline = NULL WHERE id = $11 AND ${ACTIVE_SQL}`,
      [...captureStateValues(c), c.stopRequestedBy, c.id],
    );
    return changed > 0;
  }

  async requestStop(id: string, by: string): Promise<boolean> {
    return (await this.#db.run(`UPDATE captures SET stop_requested_by = $1 WHERE id = $2 AND ${ACTIVE_SQL}`, [by, id])) > 0;
  }

  async hold(id: string, owner: string | null, deadline: number): Promise<void> {
    await this.#db.run('UPDATE captures SET owner = $1, deadline = $2 WHERE id = $3', [owner, deadline, id]);
  }

  async renew(owner: string, deadline: number): Promise<void> {
    await this.#db.run(`UPDATE captures SET deadline = $1 WHERE owner = $2 AND ${ACTIVE_SQL}`, [deadline, owner]);
  }

  async release(agentId: string, owner: string, deadline: number): Promise<void> {
    await this.#db.run(`UPDATE captures SET owner = NULL, deadline = $1 WHERE agent_id = $2 AND owner = $3 AND ${ACTIVE_SQL}`, [deadline, agentId, owner]);
  }

  async expireOverdue(now: number, end: CaptureEnd): Promise<CaptureRecord[]> {
    // SKIP LOCKED: a sweep on another relay that got to a capture first keeps it, and this one
    // ends only the rest; a capture ended meanwhile is no longer active when its lock is taken
    // (PostgreSQL re-checks the row), so none is ended twice.
    const rows = await this.#db.rows<CaptureRow>(
      `UPDATE captures SET status = $1, end_reason = $2, error = $3, ended_at = $4, owner = NULL, deadline = NULL
       WHERE id IN (SELECT id FROM captures WHERE ${ACTIVE_SQL} AND deadline IS NOT NULL AND deadline < $4 FOR UPDATE SKIP LOCKED)
       RETURNING *`,
      [end.status, end.reason, captureErrorValue(end.error), now],
    );
    return rows.map(toCapture).sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id));
  }
}
