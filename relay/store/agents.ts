import type { DatabaseSync } from 'node:sqlite';
import type { AgentEndReason, ProcessInfo } from '../../shared/protocol.ts';
import { HeldRows, type StorageHealth } from './storage-health.ts';
import { agentValues, toAgent, type AgentRow } from './rows.ts';

export interface AgentRecord {
  id: string;
  sessionId: string;
  host: string;
  containerId: string;
  arch: string;
  agentVersion: string;
  protocol: number;
  createdAt: number;
  connectedAt: number;
  lastSeen: number;
  /** The last process list the agent sent. */
  processes: ProcessInfo[];
  /** The user the agent runs as (hello.user); '' or missing when it did not say. */
  user?: string;
  /** Why it is gone for good; null or missing while it is online or may come back. */
  ended?: AgentEndReason | null;
}

export class Agents {
  #db: DatabaseSync;
  /** Agent state from while the disk was full: presence keeps working and is written once there is room. */
  #held: HeldRows<AgentRecord>;

  constructor(db: DatabaseSync, health: StorageHealth) {
    this.#db = db;
    this.#held = new HeldRows(health, 'agents');
  }

  insert(a: AgentRecord): void {
    this.#save({ ...a }, `the new agent on ${a.host}`);
  }

  byId(id: string): AgentRecord | undefined {
    const held = this.#held.get(id);
    if (held) return { ...held };
    const row = this.#db.prepare('SELECT * FROM agents WHERE id = ?').get(id) as AgentRow | undefined;
    return row && toAgent(row);
  }

  forSession(sessionId: string): AgentRecord[] {
    const rows = this.#db.prepare('SELECT * FROM agents WHERE session_id = ? ORDER BY created_at').all(sessionId) as unknown as AgentRow[];
    const agents = rows.map((r) => this.#held.get(r.id) ?? toAgent(r));
    // A held new agent is not in the table yet.
    for (const held of this.#held.values()) if (held.sessionId === sessionId && !agents.some((a) => a.id === held.id)) agents.push(held);
    return agents.map((a) => ({ ...a }));
  }

  reconnected(id: string, hello: { host: string; containerId: string; arch: string; agentVersion: string; protocol: number; user: string }, now: number): void {
    const a = this.byId(id);
    if (a) this.#save({ ...a, ...hello, connectedAt: now, lastSeen: now, ended: null }, `the reconnect of agent ${id}`);
  }

  /** The agent left at `now`; `ended` says why, when it is gone for good. */
  seen(id: string, now: number, ended: AgentEndReason | null = null): void {
    const a = this.byId(id);
    if (a) this.#save({ ...a, lastSeen: now, ended }, `when agent ${id} was last seen`);
  }

  setProcesses(id: string, processes: ProcessInfo[], now: number): void {
    const a = this.byId(id);
    if (a) this.#save({ ...a, processes, lastSeen: now }, `the process list of agent ${id}`);
  }

  /** Writes the whole row (an upsert), so held changes to one agent collapse into its newest state. */
  #save(a: AgentRecord, what: string): void {
    this.#held.save(a.id, what, a, (r) =>
      this.#db
        .prepare(
          `INSERT INTO agents (id, session_id, host, container_id, arch, agent_version, protocol, created_at, connected_at, last_seen, processes, user, ended) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT(id) DO UPDATE SET host = excluded.host, container_id = excluded.container_id, arch = excluded.arch, agent_version = excluded.agent_version,
             protocol = excluded.protocol, connected_at = excluded.connected_at, last_seen = excluded.last_seen, processes = excluded.processes,
             user = excluded.user, ended = excluded.ended`,
        )
        .run(...agentValues(r)),
    );
  }
}
