// The life of a capture on the relay: requested by an engineer, started on an
// agent, fed by sequence-numbered chunks (stored append-only, acknowledged,
// fanned out), ended by the agent, by an engineer, by a session closing, or by
// the agent vanishing for longer than the grace period — or by the relay, when
// a chunk cannot be stored (disk full, over the size limit). A finished
// capture whose file turns out unreadable is marked `damaged` when read.
import type { CaptureSpec, ChunkMessage, CaptureEndedMessage, DumpResultMessage, ErrorMessage, RelayToAgent } from '../../shared/protocol.ts';
import type { TableSizes } from '../../shared/profile/model.ts';
import { PeriscopeError, isPeriscopeError } from '../../shared/errors.ts';
import type { Store } from '../store/index.ts';
import { CAPTURE_DAMAGED, CHUNK_TOO_LARGE, type ChunkLog } from '../store/chunk-files.ts';
import { DISK_FULL, DiskFullError, isDiskFull } from '../store/storage-health.ts';
import type { CaptureRecord } from '../store/captures.ts';
import { STATUS_AFTER_END, isActiveStatus, type CaptureStatsWire, type CaptureStatus, type EndReason } from '../../shared/capture-states.ts';
import type { AgentRecord } from '../store/agents.ts';
import { newId } from '../store/ids.ts';
import type { Metrics } from '../metrics.ts';
import { EMPTY_SIZES, acceptChunk, sizesAfterStored } from './chunk-codec.ts';

/** What the capture service needs from the agent hub. */
export interface AgentLink {
  isOnline(agentId: string): boolean;
  /** Sends to the agent's live connection; false when it has none. */
  send(agentId: string, message: RelayToAgent): boolean;
}

/** What viewers (the UI hub) hear about. */
export interface CaptureListener {
  state(capture: CaptureRecord): void;
  /** `payload`: the chunk's bytes as the agent sent and the store holds them. */
  chunk(capture: CaptureRecord, seq: number, payload: Uint8Array): void;
  /** A dump's result arrived: `capture.result` (and `capture.tasks`) hold it. */
  dumpResult(capture: CaptureRecord): void;
}

/** Open-ended `top` captures are stopped after this long, so one forgotten tab cannot record forever. */
export const MAX_OPEN_ENDED_MS = 3600 * 1000;
/** Relay-side bounds, on top of parseCaptureSpec's and the agent's own. */
export const MAX_RATE_HZ = 1000;
export const MAX_DURATION_S = 3600;
export const MAX_ACTIVE_PER_AGENT = 8;
/** Disk per capture; an hour at 1000 Hz of deep stacks stays well below it. */
export const MAX_CAPTURE_BYTES = 1024 ** 3;

interface PendingEnd {
  status: CaptureStatus;
  reason: EndReason;
  chunks: number;
  error: { code: string; message: string } | null;
}

interface LiveCapture {
  record: CaptureRecord;
  log: ChunkLog | undefined;
  sizes: TableSizes;
  pendingEnd: PendingEnd | undefined;
  /** Grace period (agent gone) or wait for missing chunks after capture_ended. */
  timer: NodeJS.Timeout | undefined;
  deadline: NodeJS.Timeout | undefined;
}

export class CaptureService {
  #store: Store;
  #metrics: Metrics;
  #graceMs: number;
  #live = new Map<string, LiveCapture>();
  #agents: AgentLink | undefined;
  #listeners: CaptureListener[] = [];

  constructor(store: Store, metrics: Metrics, graceMs: number) {
    this.#store = store;
    this.#metrics = metrics;
    this.#graceMs = graceMs;
  }

  setAgentLink(link: AgentLink): void {
    this.#agents = link;
  }

  listen(listener: CaptureListener): void {
    this.#listeners.push(listener);
  }

  activeCount(): number {
    return this.#live.size;
  }

  /** After a restart no agent is connected: give each unfinished capture the grace period to be resumed. */
  recover(): void {
    for (const record of this.#store.captures.allActive()) {
      const live = this.#load(record.id);
      if (!live) continue;
      this.#startGrace(live);
      this.#capOpenEnded(live);
    }
  }

  /** An open-ended top stops an hour after it started, restarts of the relay included. */
  #capOpenEnded(live: LiveCapture): void {
    const { kind, duration } = live.record.options;
    if (kind !== 'top' || duration !== 0) return;
    const left = Math.max(0, live.record.startedAt + MAX_OPEN_ENDED_MS - Date.now());
    live.deadline = setTimeout(() => this.#stopLive(live, 'relay'), left);
    live.deadline.unref();
  }

  shutdown(): void {
    for (const live of this.#live.values()) {
      clearTimeout(live.timer);
      clearTimeout(live.deadline);
      this.#persist(live);
    }
    this.#store.chunks.closeAll();
  }

  // ---- requests from engineers --------------------------------------------

  start(agent: AgentRecord, spec: CaptureSpec, requestedBy: string): CaptureRecord {
    if (!this.#agents?.isOnline(agent.id)) {
      throw new PeriscopeError('AGENT_OFFLINE', `agent ${agent.host} is not connected; ask the customer to run the session's command again (or check it is still running)`);
    }
    const active = this.#store.captures.activeForAgent(agent.id).length;
    if (active >= MAX_ACTIVE_PER_AGENT) {
      throw new PeriscopeError('TOO_MANY_CAPTURES', `agent ${agent.host} already runs ${active} captures; stop one first`);
    }
    // Its chunks would have nowhere to go: refuse now rather than fail it at the first chunk.
    if (this.#store.health.degraded) throw new DiskFullError(this.#store.dataDir, 'a new capture');
    const now = Date.now();
    const record: CaptureRecord = {
      id: newId(),
      sessionId: agent.sessionId,
      agentId: agent.id,
      requestedBy,
      kind: spec.kind,
      pid: spec.pid,
      options: spec,
      status: 'starting',
      samples: 0,
      chunks: 0,
      stats: { samples: 0, late: 0, ticks: 0, errors: 0 },
      startedAt: now,
      endedAt: null,
      endReason: null,
      error: null,
      result: null,
      tasks: null,
      stopRequestedBy: null,
    };
    this.#store.captures.insert(record);
    const live: LiveCapture = { record, log: undefined, sizes: { ...EMPTY_SIZES }, pendingEnd: undefined, timer: undefined, deadline: undefined };
    this.#live.set(record.id, live);
    this.#capOpenEnded(live);
    this.#store.audit.record(requestedBy, 'capture.started', record.sessionId, { captureId: record.id, agentId: agent.id, host: agent.host, kind: spec.kind, pid: spec.pid, options: spec });
    this.#agents.send(agent.id, { type: 'start_capture', captureId: record.id, spec, requestedBy });
    this.#emitState(record);
    return record;
  }

  stop(captureId: string, requestedBy: string): CaptureRecord {
    const live = this.#load(captureId);
    if (!live) {
      const record = this.#store.captures.byId(captureId);
      throw new PeriscopeError('CAPTURE_NOT_ACTIVE', `the capture has already ended (${record?.status ?? 'unknown'}); nothing to stop`);
    }
    this.#stopLive(live, requestedBy);
    return live.record;
  }

  #stopLive(live: LiveCapture, requestedBy: string): void {
    live.record.stopRequestedBy = requestedBy;
    this.#store.captures.save(live.record);
    this.#store.audit.record(requestedBy, 'capture.stopped', live.record.sessionId, { captureId: live.record.id });
    // An offline agent is told again when it reconnects (see agentConnected).
    this.#agents?.send(live.record.agentId, { type: 'stop_capture', captureId: live.record.id, requestedBy });
  }

  /** The session closed: its captures end now, keeping what was stored. */
  sessionClosed(sessionId: string, by: string): void {
    for (const record of this.#store.captures.activeForSession(sessionId)) {
      const live = this.#load(record.id);
      if (!live) continue;
      this.#agents?.send(record.agentId, { type: 'stop_capture', captureId: record.id, requestedBy: by });
      this.#finish(live, 'incomplete', 'session_closed', { code: 'SESSION_CLOSED', message: 'the support session was closed while the capture ran; what arrived before is kept' }, 'relay');
    }
  }

  // ---- agent presence -------------------------------------------------------

  /**
   * An agent said hello. Returns the `resume` list for welcome and the follow-up
   * requests: stops asked for while it was away, and starts it never received.
   */
  agentConnected(agentId: string, running: { captureId: string; nextSeq: number }[]): { resume: { captureId: string; nextSeq: number }[]; followUps: RelayToAgent[] } {
    const claimed = new Set(running.map((r) => r.captureId));
    const resume: { captureId: string; nextSeq: number }[] = [];
    const followUps: RelayToAgent[] = [];
    for (const record of this.#store.captures.activeForAgent(agentId)) {
      const live = this.#load(record.id);
      if (!live) continue;
      if (claimed.has(record.id)) {
        if (!live.pendingEnd) {
          clearTimeout(live.timer);
          live.timer = undefined;
        }
        resume.push({ captureId: record.id, nextSeq: live.record.chunks });
        if (live.record.stopRequestedBy) followUps.push({ type: 'stop_capture', captureId: record.id, requestedBy: live.record.stopRequestedBy });
      } else if (live.record.status === 'starting' && live.record.chunks === 0 && !live.record.stopRequestedBy) {
        // The start request was probably lost with the old connection: ask again.
        clearTimeout(live.timer);
        live.timer = undefined;
        followUps.push({ type: 'start_capture', captureId: record.id, spec: record.options, requestedBy: record.requestedBy });
      } else {
        this.#finish(live, 'incomplete', 'agent_lost_capture', { code: 'AGENT_LOST_CAPTURE', message: 'the agent reconnected without this capture (it was probably restarted); what arrived before is kept' }, `agent:${agentId}`);
      }
    }
    // Captures the agent still runs but the relay has finished: tell it to stop sampling.
    for (const captureId of claimed) {
      if (resume.some((r) => r.captureId === captureId)) continue;
      const record = this.#store.captures.byId(captureId);
      if (record && record.agentId === agentId && !isActiveStatus(record.status)) followUps.push({ type: 'stop_capture', captureId, requestedBy: 'relay' });
    }
    return { resume, followUps };
  }

  /**
   * The agent closed with CloseCode.AgentExit: the customer stopped it and it
   * will not come back, so its unfinished captures end now, saying so,
   * instead of after the grace period.
   */
  agentExited(agentId: string): void {
    for (const record of this.#store.captures.activeForAgent(agentId)) {
      const live = this.#load(record.id);
      if (live) this.#finish(live, 'incomplete', 'customer_ended', customerEndedError(), `agent:${agentId}`);
    }
  }

  agentDisconnected(agentId: string): void {
    for (const record of this.#store.captures.activeForAgent(agentId)) {
      const live = this.#load(record.id);
      if (live && !live.timer) this.#startGrace(live);
    }
  }

  #startGrace(live: LiveCapture): void {
    clearTimeout(live.timer);
    const expire = () => {
      live.timer = undefined;
      this.#finish(
        live,
        'incomplete',
        'agent_disconnected',
        { code: 'AGENT_DISCONNECTED', message: `the agent disconnected and did not resume the capture within ${Math.round(this.#graceMs / 1000)} s; what arrived before is kept` },
        'relay',
      );
    };
    if (this.#graceMs === 0) return expire();
    live.timer = setTimeout(expire, this.#graceMs);
    live.timer.unref();
  }

  // ---- messages from agents -------------------------------------------------

  /** Handles a chunk from `agentId`; returns the replies (ack or error). */
  chunk(agentId: string, m: ChunkMessage): RelayToAgent[] {
    const live = this.#load(m.captureId);
    if (!live || live.record.agentId !== agentId) {
      const record = live?.record ?? this.#store.captures.byId(m.captureId);
      if (record && record.agentId === agentId) {
        // Finished: a late duplicate is fine (ack it), anything new is refused.
        if (m.seq < record.chunks) return [{ type: 'ack', captureId: m.captureId, nextSeq: record.chunks }];
        return [{ type: 'error', captureId: m.captureId, code: 'CAPTURE_NOT_ACTIVE', message: `capture ${m.captureId} has ended (${record.status}); stop sending it` }];
      }
      return [{ type: 'error', captureId: m.captureId, code: 'UNKNOWN_CAPTURE', message: `capture ${m.captureId} is not one of this agent's captures; chunk ignored` }];
    }
    const record = live.record;
    // seq < next: a resend of something already stored (after a reconnect). seq > next: a gap; the ack asks for the missing ones.
    if (m.seq !== record.chunks) return [{ type: 'ack', captureId: m.captureId, nextSeq: record.chunks }];
    let accepted;
    try {
      accepted = acceptChunk(live.sizes, m.chunk);
    } catch (err) {
      if (!isPeriscopeError(err)) throw err;
      this.#finish(live, 'failed', 'invalid_chunk', { code: err.code, message: `chunk ${m.seq} was rejected: ${err.message}` }, `agent:${agentId}`);
      return [
        { type: 'error', captureId: m.captureId, code: err.code, message: `chunk ${m.seq} rejected, capture failed: ${err.message}` },
        { type: 'stop_capture', captureId: m.captureId, requestedBy: 'relay' },
      ];
    }
    try {
      live.log ??= this.#store.chunks.writer(record.id);
      if (live.log.bytes + accepted.payload.byteLength > MAX_CAPTURE_BYTES) {
        const message = `the capture reached the relay's limit of ${MAX_CAPTURE_BYTES / 1024 ** 3} GiB; what arrived before is kept`;
        this.#finish(live, 'incomplete', 'too_large', { code: 'CAPTURE_TOO_LARGE', message }, `agent:${agentId}`);
        return [
          { type: 'error', captureId: m.captureId, code: 'CAPTURE_TOO_LARGE', message },
          { type: 'stop_capture', captureId: m.captureId, requestedBy: 'relay' },
        ];
      }
      live.log.append(accepted.payload);
    } catch (err) {
      return this.#notStored(live, m.seq, agentId, err);
    }
    live.sizes = accepted.sizesAfter;
    record.chunks++;
    record.samples += accepted.samples;
    record.stats = { ...m.stats, samples: record.samples };
    if (record.status === 'starting') record.status = 'running';
    this.#persist(live);
    this.#metrics.chunksIn++;
    for (const l of this.#listeners) l.chunk(record, m.seq, accepted.payload);
    this.#emitState(record);
    const replies: RelayToAgent[] = [{ type: 'ack', captureId: record.id, nextSeq: record.chunks }];
    if (live.pendingEnd && record.chunks >= live.pendingEnd.chunks) this.#finishPending(live, agentId);
    return replies;
  }

  ended(agentId: string, m: CaptureEndedMessage): RelayToAgent[] {
    const live = this.#load(m.captureId);
    if (!live || live.record.agentId !== agentId) return [];
    let status = STATUS_AFTER_END[m.reason] ?? 'failed';
    let reason: EndReason = m.reason;
    let error = m.error ?? null;
    if (status === 'failed' && !error) {
      error = m.reason === 'refused'
        ? { code: 'REFUSED_BY_AGENT', message: 'the agent refused the capture (see the customer\'s terminal for why)' }
        : { code: 'CAPTURE_FAILED', message: `the agent ended the capture: ${m.reason}` };
    }
    if (m.reason === 'stopped' && m.byCustomer) {
      // Not an engineer's stop: the customer ended the agent (Ctrl-C) while it ran (bye+).
      status = 'incomplete';
      reason = 'customer_ended';
      error = customerEndedError();
    }
    live.pendingEnd = { status, reason, chunks: m.chunks, error };
    if (live.record.chunks >= m.chunks) {
      this.#finishPending(live, agentId);
      return [];
    }
    // Some chunks are still missing: keep waiting for the resends the ack asks for.
    this.#startWaitForMissing(live);
    return [{ type: 'ack', captureId: m.captureId, nextSeq: live.record.chunks }];
  }

  #startWaitForMissing(live: LiveCapture): void {
    clearTimeout(live.timer);
    live.timer = setTimeout(() => {
      live.timer = undefined;
      const missing = (live.pendingEnd?.chunks ?? 0) - live.record.chunks;
      this.#finish(live, 'incomplete', live.pendingEnd?.reason ?? 'missing_chunks', { code: 'MISSING_CHUNKS', message: `${missing} chunks never arrived; what arrived is kept` }, 'relay');
    }, Math.max(this.#graceMs, 1000));
    live.timer.unref();
  }

  /** A valid chunk the store could not take: the capture fails, keeping every chunk before it. */
  #notStored(live: LiveCapture, seq: number, agentId: string, err: unknown): RelayToAgent[] {
    const { id } = live.record;
    const kept = `the ${live.record.chunks} chunks before it are kept`;
    let error: { code: string; message: string };
    let reason: EndReason;
    if (isDiskFull(err)) {
      const full = this.#store.health.diskFull(`chunk ${seq} of capture ${id}`, err);
      error = { code: DISK_FULL, message: `chunk ${seq} was not stored and the capture failed (${kept}): ${full.message}` };
      reason = 'disk_full';
    } else if (isPeriscopeError(err, CHUNK_TOO_LARGE)) {
      error = { code: CHUNK_TOO_LARGE, message: `chunk ${seq} was refused and the capture failed (${kept}): ${err.message}; capture at a lower rate so each chunk stays smaller` };
      reason = 'chunk_too_large';
    } else {
      throw err;
    }
    this.#finish(live, 'failed', reason, error, `agent:${agentId}`);
    return [
      { type: 'error', captureId: id, code: error.code, message: error.message },
      { type: 'stop_capture', captureId: id, requestedBy: 'relay' },
    ];
  }

  #finishPending(live: LiveCapture, agentId: string): void {
    const p = live.pendingEnd!;
    this.#finish(live, p.status, p.reason, p.error, `agent:${agentId}`);
  }

  dumpResult(agentId: string, m: DumpResultMessage): RelayToAgent[] {
    const record = this.#live.get(m.captureId)?.record ?? this.#store.captures.byId(m.captureId);
    if (!record || record.agentId !== agentId) {
      return [{ type: 'error', captureId: m.captureId, code: 'UNKNOWN_CAPTURE', message: `capture ${m.captureId} is not one of this agent's captures; result ignored` }];
    }
    if (record.kind !== 'dump') return [{ type: 'error', captureId: m.captureId, code: 'NOT_A_DUMP', message: `capture ${m.captureId} is a ${record.kind}, not a dump` }];
    if (record.result !== null || (!isActiveStatus(record.status) && record.status !== 'complete')) return [];
    record.result = m.threads;
    record.tasks = m.asyncio ?? null;
    const live = this.#load(record.id);
    if (live) {
      live.record.result = m.threads;
      live.record.tasks = record.tasks;
      this.#finish(live, 'complete', 'dump', null, `agent:${agentId}`);
    } else {
      this.#store.captures.save(record);
    }
    for (const l of this.#listeners) l.dumpResult(record);
    return [];
  }

  agentError(agentId: string, m: ErrorMessage): void {
    if (m.captureId === undefined) return;
    const live = this.#load(m.captureId);
    if (!live || live.record.agentId !== agentId) return;
    this.#finish(live, 'failed', 'error', { code: m.code, message: m.message }, `agent:${agentId}`);
  }

  // ---- reading ----------------------------------------------------------------

  /** The record with its live counters (fresher than the database's between writes). */
  get(captureId: string): CaptureRecord | undefined {
    return this.#live.get(captureId)?.record ?? this.#store.captures.byId(captureId);
  }

  /** Chunks that read back. For a finished capture, checks its file against its row first (see #checkIntact). */
  storedChunks(captureId: string): number {
    const live = this.#live.get(captureId);
    if (live) return live.record.chunks;
    const log = this.#store.chunks.reader(captureId);
    this.#checkIntact(captureId, log);
    return log?.count ?? 0;
  }

  readChunk(captureId: string, seq: number): Buffer {
    const log = this.#store.chunks.reader(captureId);
    if (!log) throw new RangeError(`capture ${captureId} has no chunks`);
    return log.read(seq);
  }

  // ---- internals --------------------------------------------------------------

  /** The live state of an unfinished capture, rebuilt from the store if needed (after a restart). */
  #load(captureId: string): LiveCapture | undefined {
    const existing = this.#live.get(captureId);
    if (existing) return existing;
    const record = this.#store.captures.byId(captureId);
    if (!record || !isActiveStatus(record.status)) return undefined;
    const log = this.#store.chunks.writer(captureId);
    if (log.damage) {
      // Appending after unreadable bytes would store chunks nobody can read: the capture ends here.
      this.#store.chunks.finish(captureId);
      record.endedAt = Date.now();
      record.endReason = 'damaged';
      this.#markDamaged(record, log);
      this.#agents?.send(record.agentId, { type: 'stop_capture', captureId, requestedBy: 'relay' });
      return undefined;
    }
    // The file is the truth: rows may lag a crash by one chunk, and a torn record was cut off on open.
    let sizes = { ...EMPTY_SIZES };
    for (let seq = 0; seq < log.count; seq++) sizes = sizesAfterStored(sizes, log.read(seq));
    record.chunks = log.count;
    record.samples = sizes.samples;
    const live: LiveCapture = { record, log, sizes, pendingEnd: undefined, timer: undefined, deadline: undefined };
    this.#live.set(captureId, live);
    return live;
  }

  #persist(live: LiveCapture): void {
    this.#store.captures.save(live.record);
  }

  /**
   * A finished capture's file must still hold every chunk its row counts: a
   * checksum that fails with data after it, a file cut short or gone all mean
   * chunks were lost after they were stored.
   */
  #checkIntact(captureId: string, log: ChunkLog | undefined): void {
    const record = this.#store.captures.byId(captureId);
    if (!record || isActiveStatus(record.status) || record.status === 'damaged') return;
    if (log?.damage || (log?.count ?? 0) < record.chunks) this.#markDamaged(record, log);
  }

  /** Says so everywhere: status and error in the API and to viewers, the audit log, the relay's log, /metrics. */
  #markDamaged(record: CaptureRecord, log: ChunkLog | undefined): void {
    const path = this.#store.chunks.pathOf(record.id);
    const readable = log?.count ?? 0;
    const d = log?.damage;
    const what = d
      ? `record ${d.record} (at byte ${d.offset} of ${d.fileBytes}) cannot be read: ${d.problem}`
      : log
        ? `it holds ${readable} readable chunks where ${record.chunks} were stored`
        : `it is missing (${record.chunks} chunks were stored)`;
    const kept = readable > 0 ? `chunks 0 to ${readable - 1} still read back and download; the rest is lost` : 'none of its chunks can be read';
    const before = record.status;
    record.status = 'damaged';
    record.error = { code: CAPTURE_DAMAGED, message: `the capture's file ${path} is damaged: ${what}. ${kept}. Restore that file from a backup to get all of it back` };
    this.#store.captures.save(record);
    this.#store.audit.record('relay', 'capture.damaged', record.sessionId, { captureId: record.id, was: before, readableChunks: readable, storedChunks: record.chunks, ...(d ? { offset: d.offset } : {}) });
    this.#metrics.capturesDamaged++;
    console.error(`periscope relay: ${CAPTURE_DAMAGED}: capture ${record.id} (was ${before}): ${record.error.message}`);
    this.#emitState(record);
  }

  #finish(live: LiveCapture, status: CaptureStatus, reason: EndReason, error: { code: string; message: string } | null, actor: string): void {
    const record = live.record;
    if (!isActiveStatus(record.status)) return;
    clearTimeout(live.timer);
    clearTimeout(live.deadline);
    this.#live.delete(record.id);
    // Chunks are made durable before the row says the capture has ended.
    this.#store.chunks.finish(record.id);
    record.status = status;
    record.endedAt = Date.now();
    record.endReason = reason;
    record.error = error;
    this.#persist(live);
    this.#store.audit.record(actor, 'capture.ended', record.sessionId, {
      captureId: record.id,
      status,
      reason,
      samples: record.samples,
      chunks: record.chunks,
      ...(error ? { error } : {}),
    });
    this.#emitState(record);
  }

  #emitState(record: CaptureRecord): void {
    for (const l of this.#listeners) l.state(record);
  }
}

function customerEndedError(): { code: string; message: string } {
  return { code: 'ENDED_BY_CUSTOMER', message: 'the customer stopped the agent (Ctrl-C) while the capture ran; what arrived before is kept' };
}

export function statsOf(record: CaptureRecord): CaptureStatsWire {
  return { ...record.stats, samples: record.samples };
}
