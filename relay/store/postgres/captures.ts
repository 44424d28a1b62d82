// Captures in PostgreSQL: the calls of relay/store/captures.ts plus the
// conditional ones several relays need. Every change to a capture that may
// have ended elsewhere is an UPDATE ... WHERE it is still active, so the
// database decides who wins; the lease columns (owner, deadline) say which
// relay holds a capture's agent and when the capture times out without it.
import type { DumpTasks } from '../../../shared/protocol.ts';
import { ACTIVE_CAPTURE_STATUSES, zeroStats, type CaptureKind, type CaptureStatsWire, type CaptureStatus, type EndReason } from '../../../shared/capture-states.ts';
import type { CaptureEnd, CaptureRecord, CapturesStore } from '../contract.ts';
import type { Db } from './connection.ts';

/** `status IN (...)` for the active statuses; constants, not input. */
const ACTIVE_SQL = `status IN (${ACTIVE_CAPTURE_STATUSES.map((s) => `'${s}'`).join(', ')})`;

interface CaptureRow {
  id: string;
  session_id: string;
  agent_id: string;
  requested_by: string;
  kind: string;
  pid: number;
  options: string;
  status: string;
  samples: number;
  chunks: number;
  stats: string | null;
  started_at: number;
  ended_at: number | null;
  end_reason: string | null;
  error: string | null;
  result: string | null;
  tasks: string | null;
  stop_requested_by: string | null;
}

function toCapture(row: CaptureRow): CaptureRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    agentId: row.agent_id,
    requestedBy: row.requested_by,
    kind: row.kind as CaptureKind,
    pid: row.pid,
    options: JSON.parse(row.options) as CaptureRecord['options'],
    status: row.status as CaptureStatus,
    samples: row.samples,
    chunks: row.chunks,
    stats: row.stats ? (JSON.parse(row.stats) as CaptureStatsWire) : zeroStats(),
    startedAt: row.started_at,
    endedAt: row.ended_at,
    endReason: row.end_reason as EndReason | null,
    error: row.error ? (JSON.parse(row.error) as { code: string; message: string }) : null,
    result: row.result ? (JSON.parse(row.result) as unknown[]) : null,
    tasks: row.tasks ? (JSON.parse(row.tasks) as DumpTasks) : null,
    stopRequestedBy: row.stop_requested_by,
  };
}

/** The columns that change after a capture starts, as $1..$9 (then its id is $10). */
const STATE_SET = 'status = $1, samples = $2, chunks = $3, stats = $4, ended_at = $5, end_reason = $6, error = $7, result = $8, tasks = $9';

function stateParams(c: CaptureRecord): unknown[] {
  return [
    c.status,
    c.samples,
    c.chunks,
    JSON.stringify(c.stats),
    c.endedAt,
    c.endReason,
    c.error ? JSON.stringify(c.error) : null,
    c.result ? JSON.stringify(c.result) : null,
    c.tasks ? JSON.stringify(c.tasks) : null,
  ];
}

export class PgCaptures implements CapturesStore {
  #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async insert(c: CaptureRecord): Promise<void> {
    await this.#db.run('INSERT INTO captures (id, session_id, agent_id, requested_by, kind, pid, options, status, started_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      c.id,
      c.sessionId,
      c.agentId,
      c.requestedBy,
      c.kind,
      c.pid,
      JSON.stringify(c.options),
      c.status,
      c.startedAt,
    ]);
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
    await this.#db.run(`UPDATE captures SET ${STATE_SET}, stop_requested_by = $10 WHERE id = $11`, [...stateParams(c), c.stopRequestedBy, c.id]);
  }

  async progress(c: CaptureRecord): Promise<boolean> {
    // COALESCE: a stop asked for on another relay stays, whatever this relay's copy says.
    const changed = await this.#db.run(`UPDATE captures SET ${STATE_SET}, stop_requested_by = COALESCE($10, stop_requested_by) WHERE id = $11 AND ${ACTIVE_SQL}`, [
      ...stateParams(c),
      c.stopRequestedBy,
      c.id,
    ]);
    return changed > 0;
  }

  async finish(c: CaptureRecord): Promise<boolean> {
    const changed = await this.#db.run(
      `UPDATE captures SET ${STATE_SET}, stop_requested_by = COALESCE($10, stop_requested_by), owner = NULL, deadline = NULL WHERE id = $11 AND ${ACTIVE_SQL}`,
      [...stateParams(c), c.stopRequestedBy, c.id],
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
      [end.status, end.reason, end.error ? JSON.stringify(end.error) : null, now],
    );
    return rows.map(toCapture).sort((a, b) => a.startedAt - b.startedAt || a.id.localeCompare(b.id));
  }
}
