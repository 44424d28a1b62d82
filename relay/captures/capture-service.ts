// The life of a capture on the relay: requested by an engineer, started on an
// agent, fed by sequence-numbered chunks (stored append-only, acknowledged,
// fanned out), ended by the agent, by an engineer, by a session closing, or by
// the agent vanishing for longer than the grace period — or by the relay, when
// a chunk cannot be stored (disk full, over the size limit). A finished
// capture whose file turns out unreadable is marked `damaged` when read.
//
// Several relays may share one store. The relay holding a capture's agent
// keeps its live state (counters, the open chunk writer) and a lease on it in
// the store (captures.owner/deadline), renewed while it lives. When the agent
// leaves, the lease becomes the grace period; when a relay dies, its leases
// run out. Any relay's sweep ends overdue captures — the store lets exactly
// one of them do it — so the grace period holds once across the cluster and
// survives the relay that started it. Every end is a conditional write: a
// capture ends once, whoever ends it.
import type { CaptureSpec, ChunkMessage, CaptureEndedMessage, DumpResultMessage, ErrorMessage, RelayToAgent } from '../../shared/protocol.ts';
import type { TableSizes } from '../../shared/profile/model.ts';
import { PeriscopeError, isPeriscopeError } from '../../shared/errors.ts';
import type { Store } from '../store/index.ts';
import type { ChunkDamage, ChunkWriter } from '../store/contract.ts';
import { CAPTURE_DAMAGED, CHUNK_TOO_LARGE } from '../store/chunk-files.ts';
import { DISK_FULL, isDiskFull } from '../store/storage-health.ts';
import type { CaptureRecord } from '../store/captures.ts';
import { STATUS_AFTER_END, isActiveStatus, type CaptureStatsWire, type CaptureStatus, type EndReason } from '../../shared/capture-states.ts';
import type { AgentRecord } from '../store/agents.ts';
import { newId } from '../store/ids.ts';
import type { Metrics } from '../metrics.ts';
import { EMPTY_SIZES, acceptChunk, sizesAfterStored } from './chunk-codec.ts';
import { relayLog, type LogFields } from '../log.ts';

/** What the capture service needs from the agents, wherever in the cluster they are connected. */
export interface AgentLink {
  /** The relay holding the agent's connection; undefined when it is connected nowhere. */
  relayOf(agentId: string): string | undefined;
  /** Sends to the agent's live connection (through its relay); false when it has none. */
  send(agentId: string, message: RelayToAgent): boolean;
}

/** What viewers (the UI hub, and through the cluster bus other relays' viewers) hear about. */
export interface CaptureListener {
  state(capture: CaptureRecord): void;
  /** `payload`: the chunk's bytes as the agent sent and the store holds them (its state follows through state()). */
  chunk(captureId: string, seq: number, payload: Uint8Array): void;
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
/** How long a relay's hold on a capture lasts unless renewed: how late a dead relay's captures start their grace period. */
export const LEASE_MS = 10_000;

interface PendingEnd {
  status: CaptureStatus;
  reason: EndReason;
  chunks: number;
  error: { code: string; message: string } | null;
}

interface LiveCapture {
  record: CaptureRecord;
  log: ChunkWriter | undefined;
  sizes: TableSizes;
  pendingEnd: PendingEnd | undefined;
  /** Wait for missing chunks after capture_ended. */
  timer: NodeJS.Timeout | undefined;
  deadline: NodeJS.Timeout | undefined;
}

export interface CaptureServiceOptions {
  store: Store;
  metrics: Metrics;
  graceMs: number;
  /** This relay, as leases name it. */
  relayId: string;
  leaseMs?: number;
  /** Where trouble is reported (default: the relay's log). */
  log?: (message: string, fields?: LogFields) => void;
}

export class CaptureService {
  #store: Store;
  #metrics: Metrics;
  #graceMs: number;
  #relayId: string;
  #leaseMs: number;
  #log: (message: string, fields?: LogFields) => void;
  #live = new Map<string, LiveCapture>();
  /** Loads in flight, so two messages about one capture build its live state once. */
  #loading = new Map<string, Promise<LiveCapture | undefined>>();
  #agents: AgentLink | undefined;
  #listeners: CaptureListener[] = [];
  #renewTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: CaptureServiceOptions) {
    this.#store = options.store;
    this.#metrics = options.metrics;
    this.#graceMs = options.graceMs;
    this.#relayId = options.relayId;
    this.#leaseMs = options.leaseMs ?? LEASE_MS;
    this.#log = options.log ?? ((m, fields) => relayLog().error(m, fields));
  }

  setAgentLink(link: AgentLink): void {
    this.#agents = link;
  }

  listen(listener: CaptureListener): void {
    this.#listeners.push(listener);
  }

  /** Captures whose agent is connected to this relay. */
  activeCount(): number {
    return this.#live.size;
  }

  /**
   * After a restart of an embedded relay no agent is connected: each
   * unfinished capture gets the grace period from now to be resumed. (A
   * cluster needs nothing: leases of a relay that went away run out.)
   */
  async recover(): Promise<void> {
    const deadline = Date.now() + this.#graceMs;
    for (const record of await this.#store.captures.allActive()) {
      // Damage found now, not when the agent comes back: nothing would ever be appended after it.
      const stored = await this.#store.chunks.readable(record.id);
      if (stored?.damage) {
        record.endedAt = Date.now();
        record.endReason = 'damaged';
        await this.#markDamaged(record, stored);
        continue;
      }
      await this.#store.captures.hold(record.id, null, deadline);
    }
  }

  /** Renews this relay's leases and sweeps overdue captures, until shutdown. */
  run(): void {
    this.#renewTimer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(this.#leaseMs / 3)));
    this.#renewTimer.unref();
    const sweepMs = Math.min(1000, Math.max(100, Math.floor(this.#graceMs / 4)));
    this.#sweepTimer = setInterval(() => void this.sweep(), sweepMs);
    this.#sweepTimer.unref();
  }

  async #renew(): Promise<void> {
    try {
      await this.#store.captures.renew(this.#relayId, this.#leaseDeadline());
    } catch (err) {
      this.#log(`renewing this relay's capture leases failed (they run out after ${this.#leaseMs / 1000} s unless the store answers again): ${(err as Error).message}`);
    }
  }

  #leaseDeadline(): number {
    return Date.now() + this.#leaseMs + this.#graceMs;
  }

  /** Ends captures whose grace period ran out (on whichever relay gets there first). */
  async sweep(now = Date.now()): Promise<void> {
    let ended: CaptureRecord[];
    try {
      ended = await this.#store.captures.expireOverdue(now, {
        status: 'incomplete',
        reason: 'agent_disconnected',
        error: { code: 'AGENT_DISCONNECTED', message: `the agent disconnected and did not resume the capture within ${Math.round(this.#graceMs / 1000)} s; what arrived before is kept` },
      });
    } catch (err) {
      this.#log(`ending captures whose agent did not come back failed (tried again in a moment): ${(err as Error).message}`);
      return;
    }
    for (const record of ended) {
      await this.#dropLive(record.id);
      await this.#store.audit.record('relay', 'capture.ended', record.sessionId, this.#endDetail(record));
      this.#emitState(record);
    }
  }

  /** An open-ended top stops an hour after it started, whichever relay holds it. */
  #capOpenEnded(live: LiveCapture): void {
    const { kind, duration } = live.record.options;
    if (kind !== 'top' || duration !== 0) return;
    const left = Math.max(0, live.record.startedAt + MAX_OPEN_ENDED_MS - Date.now());
    live.deadline = setTimeout(() => void this.#stopLive(live.record.id, 'relay').catch((err) => this.#log(`stopping an open-ended top failed: ${(err as Error).message}`, { capture: live.record.id, session: live.record.sessionId })), left);
    live.deadline.unref();
  }

  /** This relay is going away: its agents will reconnect elsewhere (or here, after a restart) and resume. */
  async shutdown(): Promise<void> {
    clearInterval(this.#renewTimer);
    clearInterval(this.#sweepTimer);
    for (const live of this.#live.values()) {
      clearTimeout(live.timer);
      clearTimeout(live.deadline);
    }
    this.#live.clear();
    await this.#store.chunks.closeAll();
  }

  // ---- requests from engineers --------------------------------------------

  async start(agent: AgentRecord, spec: CaptureSpec, requestedBy: string): Promise<CaptureRecord> {
    const relay = this.#agents?.relayOf(agent.id);
    if (relay === undefined) {
      throw new PeriscopeError('AGENT_OFFLINE', `agent ${agent.host} is not connected; ask the customer to run the session's command again (or check it is still running)`);
    }
    const active = (await this.#store.captures.activeForAgent(agent.id)).length;
    if (active >= MAX_ACTIVE_PER_AGENT) {
      throw new PeriscopeError('TOO_MANY_CAPTURES', `agent ${agent.host} already runs ${active} captures; stop one first`);
    }
    // Its chunks would have nowhere to go: refuse now rather than fail it at the first chunk.
    const refusal = this.#store.newCaptureRefusal();
    if (refusal) throw refusal;
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
    await this.#store.captures.insert(record);
    // Held by the agent's relay (perhaps another one), which renews it.
    await this.#store.captures.hold(record.id, relay, this.#leaseDeadline());
    await this.#store.audit.record(requestedBy, 'capture.started', record.sessionId, { captureId: record.id, agentId: agent.id, host: agent.host, kind: spec.kind, pid: spec.pid, options: spec });
    if (relay === this.#relayId) await this.#load(record.id);
    this.#emitState(record);
    if (!this.#agents!.send(agent.id, { type: 'start_capture', captureId: record.id, spec, requestedBy })) {
      const message =
        relay === this.#relayId
          ? `agent ${agent.host} disconnected just now; ask the customer to check the agent is still running, then try again`
          : `agent ${agent.host} is connected to another relay, which this relay cannot reach right now (is Redis up? see /healthz); try again in a moment`;
      await this.#end(record, 'failed', 'error', { code: 'AGENT_UNREACHABLE', message }, 'relay');
      throw new PeriscopeError('AGENT_UNREACHABLE', message);
    }
    return record;
  }

  async stop(captureId: string, requestedBy: string): Promise<CaptureRecord> {
    const record = await this.#stopLive(captureId, requestedBy);
    if (!record) {
      const stored = await this.#store.captures.byId(captureId);
      throw new PeriscopeError('CAPTURE_NOT_ACTIVE', `the capture has already ended (${stored?.status ?? 'unknown'}); nothing to stop`);
    }
    return record;
  }

  async #stopLive(captureId: string, requestedBy: string): Promise<CaptureRecord | undefined> {
    if (!(await this.#store.captures.requestStop(captureId, requestedBy))) return undefined;
    const live = this.#live.get(captureId);
    if (live) live.record.stopRequestedBy = requestedBy;
    const record = live?.record ?? (await this.#store.captures.byId(captureId));
    if (!record) return undefined;
    await this.#store.audit.record(requestedBy, 'capture.stopped', record.sessionId, { captureId });
    // An offline agent is told again when it reconnects (see agentConnected).
    this.#agents?.send(record.agentId, { type: 'stop_capture', captureId, requestedBy });
    return record;
  }

  /** The session closed: its captures end now, keeping what was stored. */
  async sessionClosed(sessionId: string, by: string): Promise<void> {
    for (const record of await this.#store.captures.activeForSession(sessionId)) {
      this.#agents?.send(record.agentId, { type: 'stop_capture', captureId: record.id, requestedBy: by });
      const current = this.#live.get(record.id)?.record ?? record;
      await this.#end(current, 'incomplete', 'session_closed', { code: 'SESSION_CLOSED', message: 'the support session was closed while the capture ran; what arrived before is kept' }, 'relay');
    }
  }

  // ---- agent presence -------------------------------------------------------

  /**
   * An agent said hello (to this relay). Returns the `resume` list for welcome
   * and the follow-up requests: stops asked for while it was away, and starts
   * it never received.
   */
  async agentConnected(agentId: string, running: { captureId: string; nextSeq: number }[]): Promise<{ resume: { captureId: string; nextSeq: number }[]; followUps: RelayToAgent[] }> {
    const claimed = new Set(running.map((r) => r.captureId));
    const resume: { captureId: string; nextSeq: number }[] = [];
    const followUps: RelayToAgent[] = [];
    for (const stored of await this.#store.captures.activeForAgent(agentId)) {
      // From the store, not memory: another relay may have been asked to stop it meanwhile.
      const live = await this.#load(stored.id, true);
      if (!live) continue;
      live.record.stopRequestedBy ??= stored.stopRequestedBy;
      if (claimed.has(stored.id)) {
        resume.push({ captureId: stored.id, nextSeq: live.record.chunks });
        if (live.record.stopRequestedBy) followUps.push({ type: 'stop_capture', captureId: stored.id, requestedBy: live.record.stopRequestedBy });
      } else if (live.record.status === 'starting' && live.record.chunks === 0 && !live.record.stopRequestedBy) {
        // The start request was probably lost with the old connection: ask again.
        followUps.push({ type: 'start_capture', captureId: stored.id, spec: stored.options, requestedBy: stored.requestedBy });
      } else {
        await this.#finish(live, 'incomplete', 'agent_lost_capture', { code: 'AGENT_LOST_CAPTURE', message: 'the agent reconnected without this capture (it was probably restarted); what arrived before is kept' }, `agent:${agentId}`);
      }
    }
    // Captures the agent still runs but the relay has finished: tell it to stop sampling.
    for (const captureId of claimed) {
      if (resume.some((r) => r.captureId === captureId)) continue;
      const record = await this.#store.captures.byId(captureId);
      if (record && record.agentId === agentId && !isActiveStatus(record.status)) followUps.push({ type: 'stop_capture', captureId, requestedBy: 'relay' });
    }
    return { resume, followUps };
  }

  /**
   * The agent closed with CloseCode.AgentExit: the customer stopped it and it
   * will not come back, so its unfinished captures end now, saying so,
   * instead of after the grace period.
   */
  async agentExited(agentId: string): Promise<void> {
    for (const record of await this.#store.captures.activeForAgent(agentId)) {
      const current = this.#live.get(record.id)?.record ?? record;
      await this.#end(current, 'incomplete', 'customer_ended', customerEndedError(), `agent:${agentId}`);
    }
  }

  /** The agent's connection to this relay closed: its captures wait the grace period for it, on any relay. */
  async agentDisconnected(agentId: string): Promise<void> {
    for (const live of [...this.#live.values()]) {
      if (live.record.agentId !== agentId) continue;
      // Ended by the agent but for missing chunks: its wait (and what the agent said) go on here, should it come back.
      if (live.pendingEnd) continue;
      await this.#dropLive(live.record.id);
    }
    await this.#store.captures.release(agentId, this.#relayId, Date.now() + this.#graceMs);
    if (this.#graceMs === 0) await this.sweep(Date.now() + 1);
  }

  // ---- messages from agents -------------------------------------------------

  /** Handles a chunk from `agentId`; returns the replies (ack or error). */
  async chunk(agentId: string, m: ChunkMessage): Promise<RelayToAgent[]> {
    const live = await this.#load(m.captureId, false, agentId);
    if (!live || live.record.agentId !== agentId) {
      const record = live?.record ?? (await this.#store.captures.byId(m.captureId));
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
      await this.#finish(live, 'failed', 'invalid_chunk', { code: err.code, message: `chunk ${m.seq} was rejected: ${err.message}` }, `agent:${agentId}`);
      return [
        { type: 'error', captureId: m.captureId, code: err.code, message: `chunk ${m.seq} rejected, capture failed: ${err.message}` },
        { type: 'stop_capture', captureId: m.captureId, requestedBy: 'relay' },
      ];
    }
    try {
      live.log ??= await this.#store.chunks.writer(record.id);
      if (live.log.bytes + accepted.payload.byteLength > MAX_CAPTURE_BYTES) {
        const message = `the capture reached the relay's limit of ${MAX_CAPTURE_BYTES / 1024 ** 3} GiB; what arrived before is kept`;
        await this.#finish(live, 'incomplete', 'too_large', { code: 'CAPTURE_TOO_LARGE', message }, `agent:${agentId}`);
        return [
          { type: 'error', captureId: m.captureId, code: 'CAPTURE_TOO_LARGE', message },
          { type: 'stop_capture', captureId: m.captureId, requestedBy: 'relay' },
        ];
      }
      await live.log.append(accepted.payload);
    } catch (err) {
      return this.#notStored(live, m.seq, agentId, err);
    }
    live.sizes = accepted.sizesAfter;
    record.chunks++;
    record.samples += accepted.samples;
    record.stats = { ...m.stats, samples: record.samples };
    if (record.status === 'starting') record.status = 'running';
    if (!(await this.#store.captures.progress(record))) {
      // Ended elsewhere meanwhile (its session closed on another relay): the chunk is stored, the capture is over.
      await this.#dropLive(record.id);
      return [{ type: 'ack', captureId: record.id, nextSeq: record.chunks }, { type: 'stop_capture', captureId: record.id, requestedBy: 'relay' }];
    }
    this.#metrics.chunksIn++;
    for (const l of this.#listeners) l.chunk(record.id, m.seq, accepted.payload);
    this.#emitState(record);
    const replies: RelayToAgent[] = [{ type: 'ack', captureId: record.id, nextSeq: record.chunks }];
    if (live.pendingEnd && record.chunks >= live.pendingEnd.chunks) await this.#finishPending(live, agentId);
    return replies;
  }

  async ended(agentId: string, m: CaptureEndedMessage): Promise<RelayToAgent[]> {
    const live = await this.#load(m.captureId, false, agentId);
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
      await this.#finishPending(live, agentId);
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
      void this.#finish(live, 'incomplete', live.pendingEnd?.reason ?? 'missing_chunks', { code: 'MISSING_CHUNKS', message: `${missing} chunks never arrived; what arrived is kept` }, 'relay').catch((err) =>
        this.#log(`ending capture ${live.record.id} after missing chunks failed: ${(err as Error).message}`, { capture: live.record.id, session: live.record.sessionId }),
      );
    }, Math.max(this.#graceMs, 1000));
    live.timer.unref();
  }

  /** A valid chunk the store could not take: the capture fails, keeping every chunk before it. */
  async #notStored(live: LiveCapture, seq: number, agentId: string, err: unknown): Promise<RelayToAgent[]> {
    const { id } = live.record;
    const kept = `the ${live.record.chunks} chunks before it are kept`;
    let error: { code: string; message: string };
    let reason: EndReason;
    if (isDiskFull(err)) {
      error = { code: DISK_FULL, message: `chunk ${seq} was not stored and the capture failed (${kept}): ${(err as Error).message}` };
      reason = 'disk_full';
    } else if (isPeriscopeError(err, CHUNK_TOO_LARGE)) {
      error = { code: CHUNK_TOO_LARGE, message: `chunk ${seq} was refused and the capture failed (${kept}): ${err.message}; capture at a lower rate so each chunk stays smaller` };
      reason = 'chunk_too_large';
    } else {
      throw err;
    }
    await this.#finish(live, 'failed', reason, error, `agent:${agentId}`);
    return [
      { type: 'error', captureId: id, code: error.code, message: error.message },
      { type: 'stop_capture', captureId: id, requestedBy: 'relay' },
    ];
  }

  #finishPending(live: LiveCapture, agentId: string): Promise<void> {
    const p = live.pendingEnd!;
    return this.#finish(live, p.status, p.reason, p.error, `agent:${agentId}`);
  }

  async dumpResult(agentId: string, m: DumpResultMessage): Promise<RelayToAgent[]> {
    const record = this.#live.get(m.captureId)?.record ?? (await this.#store.captures.byId(m.captureId));
    if (!record || record.agentId !== agentId) {
      return [{ type: 'error', captureId: m.captureId, code: 'UNKNOWN_CAPTURE', message: `capture ${m.captureId} is not one of this agent's captures; result ignored` }];
    }
    if (record.kind !== 'dump') return [{ type: 'error', captureId: m.captureId, code: 'NOT_A_DUMP', message: `capture ${m.captureId} is a ${record.kind}, not a dump` }];
    if (record.result !== null || (!isActiveStatus(record.status) && record.status !== 'complete')) return [];
    record.result = m.threads;
    record.tasks = m.asyncio ?? null;
    const live = await this.#load(record.id, false, agentId);
    if (live) {
      live.record.result = m.threads;
      live.record.tasks = record.tasks;
      await this.#finish(live, 'complete', 'dump', null, `agent:${agentId}`);
    } else {
      await this.#store.captures.save(record);
    }
    for (const l of this.#listeners) l.dumpResult(record);
    return [];
  }

  async agentError(agentId: string, m: ErrorMessage): Promise<void> {
    if (m.captureId === undefined) return;
    const live = await this.#load(m.captureId, false, agentId);
    if (!live || live.record.agentId !== agentId) return;
    await this.#finish(live, 'failed', 'error', { code: m.code, message: m.message }, `agent:${agentId}`);
  }

  // ---- events from other relays -----------------------------------------------

  /** Another relay changed a capture this one may hold (ended it, or was asked to stop it). */
  async changedElsewhere(record: CaptureRecord): Promise<void> {
    const live = this.#live.get(record.id);
    if (!live) return;
    if (!isActiveStatus(record.status)) await this.#dropLive(record.id);
    else live.record.stopRequestedBy ??= record.stopRequestedBy;
  }

  // ---- reading ----------------------------------------------------------------

  /** The record with its live counters (fresher than the store's between writes). */
  async get(captureId: string): Promise<CaptureRecord | undefined> {
    return this.#live.get(captureId)?.record ?? (await this.#store.captures.byId(captureId));
  }

  /** Chunks that read back. For a finished capture, checks what is stored against its row first (see #checkIntact). */
  async storedChunks(captureId: string): Promise<number> {
    const live = this.#live.get(captureId);
    if (live) return live.record.chunks;
    const stored = await this.#store.chunks.readable(captureId);
    await this.#checkIntact(captureId, stored);
    return stored?.count ?? 0;
  }

  readChunk(captureId: string, seq: number): Promise<Buffer> {
    return this.#store.chunks.read(captureId, seq);
  }

  // ---- internals --------------------------------------------------------------

  /**
   * The live state of an unfinished capture, rebuilt from the store when this
   * relay does not hold it yet (its agent just connected here, after a restart
   * or from another relay); taking it renews its lease under this relay.
   * `fresh`: rebuild even if held (a reconnect: what the store says wins).
   * `agentId`: only that agent's capture is taken (another agent's message
   * about it must not move its lease here).
   */
  async #load(captureId: string, fresh = false, agentId?: string): Promise<LiveCapture | undefined> {
    const existing = this.#live.get(captureId);
    if (existing && !fresh) return existing.record.agentId === agentId || agentId === undefined ? existing : undefined;
    let loading = this.#loading.get(captureId);
    if (!loading) {
      loading = this.#build(captureId, agentId).finally(() => this.#loading.delete(captureId));
      this.#loading.set(captureId, loading);
    }
    const live = await loading;
    return live && (agentId === undefined || live.record.agentId === agentId) ? live : undefined;
  }

  async #build(captureId: string, agentId: string | undefined): Promise<LiveCapture | undefined> {
    const record = await this.#store.captures.byId(captureId);
    if (!record || !isActiveStatus(record.status) || (agentId !== undefined && record.agentId !== agentId)) return undefined;
    const existing = this.#live.get(captureId);
    if (existing) {
      clearTimeout(existing.timer);
      clearTimeout(existing.deadline);
      this.#live.delete(captureId);
    }
    const log = await this.#store.chunks.writer(captureId);
    if (log.damage) {
      // Appending after unreadable chunks would store chunks nobody can read: the capture ends here.
      await this.#store.chunks.finish(captureId);
      record.endedAt = Date.now();
      record.endReason = 'damaged';
      await this.#markDamaged(record, log);
      this.#agents?.send(record.agentId, { type: 'stop_capture', captureId, requestedBy: 'relay' });
      return undefined;
    }
    // What is stored is the truth: rows may lag a crash by one chunk, and a torn record was cut off on open.
    let sizes = { ...EMPTY_SIZES };
    for (let seq = 0; seq < log.count; seq++) sizes = sizesAfterStored(sizes, await log.read(seq));
    record.chunks = log.count;
    record.samples = sizes.samples;
    const live: LiveCapture = { record, log, sizes, pendingEnd: existing?.pendingEnd, timer: undefined, deadline: undefined };
    await this.#store.captures.hold(captureId, this.#relayId, this.#leaseDeadline());
    this.#live.set(captureId, live);
    this.#capOpenEnded(live);
    // The agent had said how many chunks there are and left before sending them all: keep waiting for the rest.
    if (live.pendingEnd) this.#startWaitForMissing(live);
    return live;
  }

  /** Forgets this relay's live state of a capture (ended, or its agent left); what is stored stays. */
  async #dropLive(captureId: string): Promise<void> {
    const live = this.#live.get(captureId);
    if (!live) return;
    clearTimeout(live.timer);
    clearTimeout(live.deadline);
    this.#live.delete(captureId);
    await this.#store.chunks.finish(captureId);
  }

  /**
   * A finished capture's chunks must still hold every chunk its row counts:
   * a checksum that fails with data after it, a file cut short or gone all
   * mean chunks were lost after they were stored.
   */
  async #checkIntact(captureId: string, stored: { count: number; damage: ChunkDamage | undefined } | undefined): Promise<void> {
    const record = await this.#store.captures.byId(captureId);
    if (!record || isActiveStatus(record.status) || record.status === 'damaged') return;
    if (stored?.damage || (stored?.count ?? 0) < record.chunks) await this.#markDamaged(record, stored);
  }

  /** Says so everywhere: status and error in the API and to viewers, the audit log, the relay's log, /metrics. */
  async #markDamaged(record: CaptureRecord, stored: { count: number; damage: ChunkDamage | undefined } | undefined): Promise<void> {
    const where = this.#store.chunks.describe(record.id);
    const readable = stored?.count ?? 0;
    const d = stored?.damage;
    const what = d
      ? `record ${d.record} (at byte ${d.offset} of ${d.fileBytes}) cannot be read: ${d.problem}`
      : stored
        ? `it holds ${readable} readable chunks where ${record.chunks} were stored`
        : `it is missing (${record.chunks} chunks were stored)`;
    const kept = readable > 0 ? `chunks 0 to ${readable - 1} still read back and download; the rest is lost` : 'none of its chunks can be read';
    const before = record.status;
    record.status = 'damaged';
    record.error = { code: CAPTURE_DAMAGED, message: `${where} is damaged: ${what}. ${kept}. Restore it from a backup to get all of it back` };
    await this.#store.captures.save(record);
    await this.#store.audit.record('relay', 'capture.damaged', record.sessionId, { captureId: record.id, was: before, readableChunks: readable, storedChunks: record.chunks, ...(d ? { offset: d.offset } : {}) });
    this.#metrics.capturesDamaged++;
    this.#log(`${CAPTURE_DAMAGED}: capture ${record.id} (was ${before}): ${record.error.message}`, { capture: record.id, session: record.sessionId });
    this.#emitState(record);
  }

  #finish(live: LiveCapture, status: CaptureStatus, reason: EndReason, error: { code: string; message: string } | null, actor: string): Promise<void> {
    return this.#end(live.record, status, reason, error, actor);
  }

  /** Ends an active capture (held here or not), once across the cluster. */
  async #end(current: CaptureRecord, status: CaptureStatus, reason: EndReason, error: { code: string; message: string } | null, actor: string): Promise<void> {
    if (!isActiveStatus(current.status)) return;
    const held = this.#live.get(current.id)?.record;
    // Not held here: the store has the latest counters (another relay may have stored chunks since `current` was read).
    const latest = held ?? (await this.#store.captures.byId(current.id)) ?? current;
    // Chunks are made durable before the row says the capture has ended.
    await this.#dropLive(current.id);
    const record: CaptureRecord = { ...latest, status, endedAt: Date.now(), endReason: reason, error };
    if (!(await this.#store.captures.finish(record))) return;
    Object.assign(current, record);
    await this.#store.audit.record(actor, 'capture.ended', record.sessionId, this.#endDetail(record));
    this.#emitState(record);
  }

  #endDetail(record: CaptureRecord): Record<string, unknown> {
    return {
      captureId: record.id,
      status: record.status,
      reason: record.endReason,
      samples: record.samples,
      chunks: record.chunks,
      ...(record.error ? { error: record.error } : {}),
    };
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
