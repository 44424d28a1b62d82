// Who is in each support session, kept in memory and sent to engineers as
// changes rather than as the whole list.
//
// One join code may be used by any number of agents. Re-sending every agent
// to every viewer on each join or leave made the work grow with the square of
// the agents (2,000 agents on one code stalled the relay for tens of seconds).
// So a viewer gets one snapshot (session_state) when it subscribes, and after
// that only what changed, coalesced per session into at most one
// session_agents update per FLUSH_MS: the cost of a join is O(1) here plus its
// share of one frame.
//
// The session also holds at most `maxAgents` agents at once, counting those
// online and those that left less than `retentionMs` ago (they may come back,
// and engineers still see them, offline). Older ones are pruned: removed from
// what viewers see and no longer counted. Their rows stay in the store for the
// audit log and capture history.
//
// A session's presence is loaded from the store the first time it is needed
// (`load`, before any of the synchronous calls) and kept while it holds
// anyone.
//
// With several relays, an agent is online on exactly one of them. Each relay
// knows every agent online anywhere (`#online`, fed by its own agents and by
// the others' announcements on the cluster bus) so any relay can tell whether
// an agent is online and which relay to route to; a relay that stops beating
// takes its agents offline with it.
import type { AgentEndReason, ProcessInfo, UiAgentState, UiSessionAgents } from '../../shared/protocol.ts';
import type { Store } from '../store/index.ts';
import type { AgentRecord } from '../store/agents.ts';
import type { ClusterEvent } from '../cluster/events.ts';

/** How often changes are sent to viewers at most (per session). */
export const FLUSH_MS = 200;
const MAX_SWEEP_MS = 60_000;

interface Entry {
  record: AgentRecord;
  online: boolean;
  /** When it went offline (ms); meaningless while online. */
  leftAt: number;
}

interface SessionPresence {
  entries: Map<string, Entry>;
  /** Slots held by joins that are still being set up (signing their credential). */
  reserved: number;
  /** Agents that joined or changed since the last flush. */
  changed: Set<string>;
  /** Agents pruned since the last flush. */
  removed: Set<string>;
}

/** A place in a session held while a join completes; release it once, whatever happens. */
export interface Slot {
  release(): void;
}

export interface PresenceOptions {
  store: Store;
  /** This relay's id, as the cluster knows it. */
  relayId: string;
  /** Tells the other relays of this relay's agents coming, going and their process lists. */
  announce?: (event: ClusterEvent) => void;
  maxAgents: number;
  retentionMs: number;
  /** Receives the coalesced changes of one session. */
  publish: (update: UiSessionAgents) => void;
  flushMs?: number;
}

export class Presence {
  #o: PresenceOptions;
  #sessions = new Map<string, SessionPresence>();
  #loading = new Map<string, Promise<void>>();
  /** Every agent online on any relay: which relay holds it, and its session. */
  #online = new Map<string, { relay: string; sessionId: string }>();
  #dirty = new Set<string>();
  #flushTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;

  constructor(options: PresenceOptions) {
    this.#o = options;
  }

  get maxAgents(): number {
    return this.#o.maxAgents;
  }

  /** Why a join is refused when the session is full: names the limit and what to do. */
  get fullMessage(): string {
    return (
      `the support session already has ${this.#o.maxAgents} agents, the most this relay allows in one session ` +
      `(PERISCOPE_MAX_AGENTS_PER_SESSION); an agent that leaves stops counting ${describeDuration(this.#o.retentionMs)} later. ` +
      'Ask the support engineer for a separate session for more agents'
    );
  }

  /** Could an agent (a new one, or `agentId` coming back) be admitted now? */
  hasRoom(sessionId: string, agentId?: string): boolean {
    const s = this.#session(sessionId);
    if (agentId !== undefined && s.entries.has(agentId)) return true;
    return this.#room(sessionId, s);
  }

  /** Holds a place for a new agent, or undefined when the session is full. */
  reserve(sessionId: string): Slot | undefined {
    const s = this.#session(sessionId);
    if (!this.#room(sessionId, s)) return undefined;
    s.reserved++;
    let held = true;
    return {
      release: () => {
        if (!held) return;
        held = false;
        s.reserved--;
        this.#forgetIfEmpty(sessionId, s);
      },
    };
  }

  /** Reads the session's agents from the store unless they are in memory; the synchronous calls below need it done. */
  load(sessionId: string): Promise<void> {
    if (this.#sessions.has(sessionId)) return Promise.resolve();
    let loading = this.#loading.get(sessionId);
    if (!loading) {
      loading = this.#read(sessionId).finally(() => this.#loading.delete(sessionId));
      this.#loading.set(sessionId, loading);
    }
    return loading;
  }

  async #read(sessionId: string): Promise<void> {
    const records = await this.#o.store.agents.forSession(sessionId);
    if (this.#sessions.has(sessionId)) return;
    const cutoff = Date.now() - this.#o.retentionMs;
    const s: SessionPresence = { entries: new Map(), reserved: 0, changed: new Set(), removed: new Set() };
    for (const record of records) {
      const online = this.#online.has(record.id);
      if (online || record.lastSeen > cutoff) s.entries.set(record.id, { record, online, leftAt: online ? 0 : record.lastSeen });
    }
    this.#sessions.set(sessionId, s);
  }

  /** The relay holding the agent's connection, or undefined when it is connected nowhere. */
  relayOf(agentId: string): string | undefined {
    return this.#online.get(agentId)?.relay;
  }

  /** Agents connected to this relay (what it tells a relay that asks). */
  localAgents(): { id: string; sessionId: string }[] {
    const agents: { id: string; sessionId: string }[] = [];
    for (const [id, where] of this.#online) if (where.relay === this.#o.relayId) agents.push({ id, sessionId: where.sessionId });
    return agents;
  }

  /** An agent said hello (new, or back) here: it is online with what the store has for it. */
  connected(record: AgentRecord, slot?: Slot): void {
    this.#setOnline(record, this.#o.relayId);
    // After the entry is in: releasing the last slot of an empty session would forget the session.
    slot?.release();
    this.#o.announce?.({ type: 'agent_online', record });
  }

  /** The agent's connection here closed; `ended` says why when it is gone for good (it closed with AgentExit, or the session was closed). */
  disconnected(sessionId: string, agentId: string, lastSeen: number, ended: AgentEndReason | null = null): void {
    if (this.#online.get(agentId)?.relay !== this.#o.relayId) return;
    this.#setOffline(sessionId, agentId, lastSeen, ended);
    this.#o.announce?.({ type: 'agent_offline', sessionId, agentId, lastSeen, ended });
  }

  processes(sessionId: string, agentId: string, processes: ProcessInfo[], now: number): void {
    this.#setProcesses(sessionId, agentId, processes, now);
    this.#o.announce?.({ type: 'agent_processes', sessionId, agentId, processes, at: now });
  }

  // ---- what other relays announce --------------------------------------------

  remoteOnline(record: AgentRecord, relay: string): void {
    this.#setOnline(record, relay);
  }

  remoteOffline(relay: string, sessionId: string, agentId: string, lastSeen: number, ended: AgentEndReason | null): void {
    // Only the relay holding it can take it offline: a late offline from its previous relay must not.
    if (this.#online.get(agentId)?.relay !== relay) return;
    this.#setOffline(sessionId, agentId, lastSeen, ended);
  }

  remoteProcesses(sessionId: string, agentId: string, processes: ProcessInfo[], at: number): void {
    this.#setProcesses(sessionId, agentId, processes, at);
  }

  /** A relay went away (stopped beating): its agents are offline until they connect somewhere again. */
  relayGone(relay: string, lastSeen: number): void {
    for (const [agentId, where] of [...this.#online]) if (where.relay === relay) this.#setOffline(where.sessionId, agentId, lastSeen, null);
  }

  /** A relay's whole list: whoever it no longer holds is offline, whoever it holds is online there. */
  async relayAgents(relay: string, agents: { id: string; sessionId: string }[]): Promise<void> {
    const held = new Set(agents.map((a) => a.id));
    for (const [agentId, where] of [...this.#online]) if (where.relay === relay && !held.has(agentId)) this.#setOffline(where.sessionId, agentId, Date.now(), null);
    for (const a of agents) {
      if (this.#online.get(a.id)?.relay === relay) continue;
      // Records are only needed for sessions in memory: a relay joining a cluster of 10k agents must not read each of them.
      if (!this.#sessions.has(a.sessionId)) {
        this.#online.set(a.id, { relay, sessionId: a.sessionId });
        continue;
      }
      const record = await this.#o.store.agents.byId(a.id);
      if (record) this.#setOnline(record, relay);
    }
  }

  #setOnline(record: AgentRecord, relay: string): void {
    this.#online.set(record.id, { relay, sessionId: record.sessionId });
    const s = this.#sessions.get(record.sessionId);
    if (!s) return;
    s.entries.set(record.id, { record, online: true, leftAt: 0 });
    s.removed.delete(record.id);
    this.#changed(record.sessionId, s, record.id);
  }

  #setOffline(sessionId: string, agentId: string, lastSeen: number, ended: AgentEndReason | null): void {
    this.#online.delete(agentId);
    const s = this.#sessions.get(sessionId);
    const e = s?.entries.get(agentId);
    if (!s || !e) return;
    e.online = false;
    e.leftAt = Date.now();
    e.record = { ...e.record, lastSeen, ended };
    this.#changed(sessionId, s, agentId);
  }

  #setProcesses(sessionId: string, agentId: string, processes: ProcessInfo[], now: number): void {
    const s = this.#sessions.get(sessionId);
    const e = s?.entries.get(agentId);
    if (!s || !e) return;
    e.record = { ...e.record, processes, lastSeen: now };
    this.#changed(sessionId, s, agentId);
  }

  /** Every agent engineers see in the session, in the order they first joined. */
  snapshot(sessionId: string): UiAgentState[] {
    return [...this.#session(sessionId).entries.values()].map(uiState);
  }

  /** The same agents, as stored (for the HTTP API). */
  records(sessionId: string): AgentRecord[] {
    return [...this.#session(sessionId).entries.values()].map((e) => e.record);
  }

  /** Prunes agents that left more than retentionMs ago, now and periodically. */
  start(): void {
    const every = Math.min(MAX_SWEEP_MS, Math.max(1000, Math.floor(this.#o.retentionMs / 2)));
    this.#sweepTimer = setInterval(() => this.prune(Date.now()), every);
    this.#sweepTimer.unref();
  }

  stop(): void {
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
  }

  prune(now: number): void {
    for (const [sessionId, s] of this.#sessions) this.#pruneSession(sessionId, s, now);
  }

  // ---- internals -------------------------------------------------------------------

  /** A loaded session (see load); one that is not is a bug in the caller. */
  #session(sessionId: string): SessionPresence {
    const s = this.#sessions.get(sessionId);
    if (!s) throw new Error(`presence of session ${sessionId} was used before load()`);
    return s;
  }

  #room(sessionId: string, s: SessionPresence): boolean {
    if (s.entries.size + s.reserved < this.#o.maxAgents) return true;
    // Full: first forget whoever has been gone long enough, so a slot frees up exactly on time.
    this.#pruneSession(sessionId, s, Date.now());
    return s.entries.size + s.reserved < this.#o.maxAgents;
  }

  #pruneSession(sessionId: string, s: SessionPresence, now: number): void {
    let pruned = false;
    for (const [id, e] of s.entries) {
      if (e.online || now - e.leftAt < this.#o.retentionMs) continue;
      s.entries.delete(id);
      s.changed.delete(id);
      s.removed.add(id);
      pruned = true;
    }
    if (pruned) this.#schedule(sessionId);
    else this.#forgetIfEmpty(sessionId, s);
  }

  #changed(sessionId: string, s: SessionPresence, agentId: string): void {
    s.changed.add(agentId);
    this.#schedule(sessionId);
  }

  #schedule(sessionId: string): void {
    this.#dirty.add(sessionId);
    if (this.#flushTimer !== undefined) return;
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#flush();
    }, this.#o.flushMs ?? FLUSH_MS);
    this.#flushTimer.unref();
  }

  #flush(): void {
    const sessions = [...this.#dirty];
    this.#dirty.clear();
    for (const sessionId of sessions) {
      const s = this.#sessions.get(sessionId);
      if (!s) continue;
      const agents: UiAgentState[] = [];
      for (const id of s.changed) {
        const e = s.entries.get(id);
        if (e) agents.push(uiState(e));
      }
      const removed = [...s.removed];
      s.changed.clear();
      s.removed.clear();
      if (agents.length > 0 || removed.length > 0) this.#o.publish({ type: 'session_agents', sessionId, agents, removed });
      this.#forgetIfEmpty(sessionId, s);
    }
  }

  /** Drops a session's presence once nothing is in it or pending: it reloads (empty, or with returning agents) when needed. */
  #forgetIfEmpty(sessionId: string, s: SessionPresence): void {
    if (s.entries.size === 0 && s.reserved === 0 && s.changed.size === 0 && s.removed.size === 0 && this.#sessions.get(sessionId) === s) {
      this.#sessions.delete(sessionId);
    }
  }
}

function uiState(e: Entry): UiAgentState {
  const a = e.record;
  const state: UiAgentState = { id: a.id, host: a.host, containerId: a.containerId, arch: a.arch, agentVersion: a.agentVersion, online: e.online, processes: a.processes };
  // bye+: only when known, so an older browser's or test's view of an agent is unchanged.
  if (a.user) state.user = a.user;
  if (!e.online && a.ended) state.ended = a.ended;
  return state;
}

function describeDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}
