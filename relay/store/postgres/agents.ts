// Agents in PostgreSQL: the calls of relay/store/agents.ts. Each change is one
// UPDATE of the fields it is about, so two relays writing the same agent never
// undo each other's other fields.
import type { AgentEndReason, ProcessInfo } from '../../../shared/protocol.ts';
import type { AgentHello, AgentRecord, AgentsStore } from '../contract.ts';
import type { Db } from './connection.ts';

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
  os_user: string;
  ended: string | null;
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
    user: row.os_user,
    ended: row.ended as AgentEndReason | null,
  };
}

export class PgAgents implements AgentsStore {
  #db: Db;
  constructor(db: Db) {
    this.#db = db;
  }

  async insert(a: AgentRecord): Promise<void> {
    // An upsert, as the embedded store writes it: inserting a known agent again updates all but its session and creation time.
    await this.#db.run(
      `INSERT INTO agents (id, session_id, host, container_id, arch, agent_version, protocol, created_at, connected_at, last_seen, processes, os_user, ended)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       ON CONFLICT (id) DO UPDATE SET host = excluded.host, container_id = excluded.container_id, arch = excluded.arch, agent_version = excluded.agent_version,
         protocol = excluded.protocol, connected_at = excluded.connected_at, last_seen = excluded.last_seen, processes = excluded.processes,
         os_user = excluded.os_user, ended = excluded.ended`,
      [a.id, a.sessionId, a.host, a.containerId, a.arch, a.agentVersion, a.protocol, a.createdAt, a.connectedAt, a.lastSeen, JSON.stringify(a.processes), a.user ?? '', a.ended ?? null],
    );
  }

  async byId(id: string): Promise<AgentRecord | undefined> {
    const row = await this.#db.one<AgentRow>('SELECT * FROM agents WHERE id = $1', [id]);
    return row && toAgent(row);
  }

  async forSession(sessionId: string): Promise<AgentRecord[]> {
    return (await this.#db.rows<AgentRow>('SELECT * FROM agents WHERE session_id = $1 ORDER BY created_at, id', [sessionId])).map(toAgent);
  }

  async reconnected(id: string, hello: AgentHello, now: number): Promise<void> {
    await this.#db.run(
      'UPDATE agents SET host = $1, container_id = $2, arch = $3, agent_version = $4, protocol = $5, os_user = $6, connected_at = $7, last_seen = $7, ended = NULL WHERE id = $8',
      [hello.host, hello.containerId, hello.arch, hello.agentVersion, hello.protocol, hello.user, now, id],
    );
  }

  async seen(id: string, now: number, ended: AgentEndReason | null = null): Promise<void> {
    await this.#db.run('UPDATE agents SET last_seen = $1, ended = $2 WHERE id = $3', [now, ended, id]);
  }

  async setProcesses(id: string, processes: ProcessInfo[], now: number): Promise<void> {
    await this.#db.run('UPDATE agents SET processes = $1, last_seen = $2 WHERE id = $3', [JSON.stringify(processes), now, id]);
  }
}
