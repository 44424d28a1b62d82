import type { DatabaseSync } from 'node:sqlite';
import type { CaptureSpec, DumpTasks } from '../../shared/protocol.ts';
import { isActiveStatus } from '../../shared/capture-states.ts';
import type { CaptureFields } from '../../shared/http-views.ts';
import { HeldRows, type StorageHealth } from './storage-health.ts';
import type { CaptureEnd } from './contract.ts';
import { ACTIVE_CAPTURE_SQL as ACTIVE_SQL, CAPTURE_STATE_COLUMNS, captureStartValues, captureStateValues, toCapture, type CaptureRow } from './rows.ts';

/** SET for the columns that change after a capture starts (rows.ts captureStateValues), then stop_requested_by. */
const SAVE_SQL = `UPDATE captures SET ${CAPTURE_STATE_COLUMNS.map((c) => `${c} = ?`).join(', ')}, stop_requested_by = ? WHERE id = ?`;

/** A capture as stored: the shared fields (times in epoch ms), the whole spec, and a dump's threads. */
export interface CaptureRecord extends CaptureFields<number> {
  options: CaptureSpec;
  /** Dump captures: the threads of `periscope dump --json`. */
  result: unknown[] | null;
  /** Dump captures: their asyncio tasks, as `periscope dump --async --json` (null: none sent). */
  tasks: DumpTasks | null;
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
        .run(...captureStartValues(c)),
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
    this.#held.save(c.id, `the state of capture ${c.id}`, c, (r) => this.#db.prepare(SAVE_SQL).run(...captureStateValues(r), r.stopRequestedBy, r.id));
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
