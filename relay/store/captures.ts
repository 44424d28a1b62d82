import type { DatabaseSync } from 'node:sqlite';
import type { CaptureSpec, DumpTasks } from '../../shared/protocol.ts';
import { ACTIVE_CAPTURE_STATUSES, isActiveStatus, zeroStats, type CaptureKind, type CaptureStatsWire, type CaptureStatus, type EndReason } from '../../shared/capture-states.ts';
import type { CaptureFields } from '../../shared/http-views.ts';
import { HeldRows, type StorageHealth } from './storage-health.ts';
import type { CaptureEnd } from './contract.ts';

/** `status IN (...)` for the active statuses; constants, not input. */
const ACTIVE_SQL = `status IN (${ACTIVE_CAPTURE_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/** A capture as stored: the shared fields (times in epoch ms), the whole spec, and a dump's threads. */
export interface CaptureRecord extends CaptureFields<number> {
  options: CaptureSpec;
  /** Dump captures: the threads of `periscope dump --json`. */
  result: unknown[] | null;
  /** Dump captures: their asyncio tasks, as `periscope dump --async --json` (null: none sent). */
  tasks: DumpTasks | null;
}

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
    options: JSON.parse(row.options) as CaptureSpec,
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

export class Captures {
  #db: DatabaseSync;
  #health: StorageHealth;
  /** Capture state from while the disk was full: served from memory, written once there is room. */
  #held: HeldRows<CaptureRecord>;

  constructor(db: DatabaseSync, health: StorageHealth) {
    this.#db = db;
    this.#health = health;
    this.#held = new HeldRows(health, 'captures');
  }

  /** Required: a capture that cannot be recorded is refused (DiskFullError) before it starts. */
  insert(c: CaptureRecord): void {
    this.#health.required('the new capture', () =>
      this.#db
        .prepare(
          'INSERT INTO captures (id, session_id, agent_id, requested_by, kind, pid, options, status, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        )
        .run(c.id, c.sessionId, c.agentId, c.requestedBy, c.kind, c.pid, JSON.stringify(c.options), c.status, c.startedAt),
    );
  }

  byId(id: string): CaptureRecord | undefined {
    const held = this.#held.get(id);
    if (held) return { ...held };
    const row = this.#db.prepare('SELECT * FROM captures WHERE id = ?').get(id) as CaptureRow | undefined;
    return row && toCapture(row);
  }

  forSession(sessionId: string): CaptureRecord[] {
    return this.#merge(this.#db.prepare('SELECT * FROM captures WHERE session_id = ? ORDER BY started_at DESC').all(sessionId) as unknown as CaptureRow[]);
  }

  activeForAgent(agentId: string): CaptureRecord[] {
    return this.#merge(this.#db.prepare(`SELECT * FROM captures WHERE agent_id = ? AND ${ACTIVE_SQL}`).all(agentId) as unknown as CaptureRow[]).filter((c) => isActiveStatus(c.status));
  }

  activeForSession(sessionId: string): CaptureRecord[] {
    return this.#merge(this.#db.prepare(`SELECT * FROM captures WHERE session_id = ? AND ${ACTIVE_SQL}`).all(sessionId) as unknown as CaptureRow[]).filter((c) =>
      isActiveStatus(c.status),
    );
  }

  allActive(): CaptureRecord[] {
    return this.#merge(this.#db.prepare(`SELECT * FROM captures WHERE ${ACTIVE_SQL}`).all() as unknown as CaptureRow[]).filter((c) => isActiveStatus(c.status));
  }

  /**
   * Writes everything about the capture that changes after its start. Never
   * fails for lack of space: on a full disk the newest state is held and
   * written once there is room (byId and the lists already show it).
   */
  save(c: CaptureRecord): void {
    this.#held.save(c.id, `the state of capture ${c.id}`, c, (r) =>
      this.#db
        .prepare(
          'UPDATE captures SET status = ?, samples = ?, chunks = ?, stats = ?, ended_at = ?, end_reason = ?, error = ?, result = ?, tasks = ?, stop_requested_by = ? WHERE id = ?',
        )
        .run(
          r.status,
          r.samples,
          r.chunks,
          JSON.stringify(r.stats),
          r.endedAt,
          r.endReason,
          r.error ? JSON.stringify(r.error) : null,
          r.result ? JSON.stringify(r.result) : null,
          r.tasks ? JSON.stringify(r.tasks) : null,
          r.stopRequestedBy,
          r.id,
        ),
    );
  }

  /** See CapturesStore.progress: single-process, so checking then writing is atomic here. */
  progress(c: CaptureRecord): boolean {
    const stored = this.byId(c.id);
    if (!stored || !isActiveStatus(stored.status)) return false;
    this.save({ ...c, stopRequestedBy: c.stopRequestedBy ?? stored.stopRequestedBy });
    return true;
  }

  finish(c: CaptureRecord): boolean {
    const stored = this.byId(c.id);
    if (!stored || !isActiveStatus(stored.status)) return false;
    this.save({ ...c, stopRequestedBy: c.stopRequestedBy ?? stored.stopRequestedBy });
    this.#lease(`UPDATE captures SET owner = NULL, deadline = NULL WHERE id = ?`, [c.id], `the end of capture ${c.id}`);
    return true;
  }

  requestStop(id: string, by: string): boolean {
    const stored = this.byId(id);
    if (!stored || !isActiveStatus(stored.status)) return false;
    this.save({ ...stored, stopRequestedBy: by });
    return true;
  }

  hold(id: string, owner: string | null, deadline: number): void {
    this.#lease('UPDATE captures SET owner = ?, deadline = ? WHERE id = ?', [owner, deadline, id], `the lease of capture ${id}`);
  }

  renew(owner: string, deadline: number): void {
    this.#lease(`UPDATE captures SET deadline = ? WHERE owner = ? AND ${ACTIVE_SQL}`, [deadline, owner], 'renewing capture leases');
  }

  release(agentId: string, owner: string, deadline: number): void {
    this.#lease(`UPDATE captures SET owner = NULL, deadline = ? WHERE agent_id = ? AND owner = ? AND ${ACTIVE_SQL}`, [deadline, agentId, owner], `the grace period of agent ${agentId}'s captures`);
  }

  expireOverdue(now: number, end: CaptureEnd): CaptureRecord[] {
    const rows = this.#db.prepare(`SELECT id FROM captures WHERE ${ACTIVE_SQL} AND deadline IS NOT NULL AND deadline < ?`).all(now) as { id: string }[];
    const ended: CaptureRecord[] = [];
    for (const { id } of rows) {
      const c = this.byId(id);
      if (!c) continue;
      const done: CaptureRecord = { ...c, status: end.status, endReason: end.reason, error: end.error, endedAt: now };
      if (this.finish(done)) ended.push(done);
    }
    return ended;
  }

  /** Lease columns are not part of CaptureRecord (held rows never carry them): written directly, held on a full disk. */
  #lease(sql: string, params: (string | number | null)[], what: string): void {
    this.#health.deferrable(`captures:lease:${what}`, what, () => {
      this.#db.prepare(sql).run(...params);
    });
  }

  #merge(rows: CaptureRow[]): CaptureRecord[] {
    return rows.map((r) => {
      const held = this.#held.get(r.id);
      return held ? { ...held } : toCapture(r);
    });
  }
}
