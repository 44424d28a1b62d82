import type { DatabaseSync } from 'node:sqlite';
import type { ProcessInfo } from '../../shared/protocol.ts';

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
}

interface AgentRow {
  id: string;
  session_id: string;
  host: string;
  container_id: string;
  arch: string;
  agent_version: string;
  protocol: number;
  created_at: number;
  connected_at: number;
  last_seen: number;
  processes: string;
}

function toAgent(row: AgentRow): AgentRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    host: row.host,
    containerId: row.container_id,
    arch: row.arch,
    agentVersion: row.agent_version,
    protocol: row.protocol,
    createdAt: row.created_at,
    connectedAt: row.connected_at,
    lastSeen: row.last_seen,
    processes: JSON.parse(row.processes) as ProcessInfo[],
  };
}

export class Agents {
  #db: DatabaseSync;
  constructor(db: DatabaseSync) {
    this.#db = db;
  }

  insert(a: AgentRecord): void {
    this.#db
      .prepare(
        'INSERT INTO agents (id, session_id, host, container_id, arch, agent_version, protocol, created_at, connected_at, last_seen, processes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(a.id, a.sessionId, a.host, a.containerId, a.arch, a.agentVersion, a.protocol, a.createdAt, a.connectedAt, a.lastSeen, JSON.stringify(a.processes));
  }

  byId(id: string): AgentRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM agents WHERE id = ?').get(id) as AgentRow | undefined;
    return row && toAgent(row);
  }

  forSession(sessionId: string): AgentRecord[] {
    const rows = this.#db.prepare('SELECT * FROM agents WHERE session_id = ? ORDER BY created_at').all(sessionId) as unknown as AgentRow[];
    return rows.map(toAgent);
  }

  reconnected(id: string, hello: { host: string; containerId: string; arch: string; agentVersion: string; protocol: number }, now: number): void {
    this.#db
      .prepare('UPDATE agents SET host = ?, container_id = ?, arch = ?, agent_version = ?, protocol = ?, connected_at = ?, last_seen = ? WHERE id = ?')
      .run(hello.host, hello.containerId, hello.arch, hello.agentVersion, hello.protocol, now, now, id);
  }

  seen(id: string, now: number): void {
    this.#db.prepare('UPDATE agents SET last_seen = ? WHERE id = ?').run(now, id);
  }

  setProcesses(id: string, processes: ProcessInfo[], now: number): void {
    this.#db.prepare('UPDATE agents SET processes = ?, last_seen = ? WHERE id = ?').run(JSON.stringify(processes), now, id);
  }
}
