// Agents in PostgreSQL: the calls of relay/store/agents.ts. Each change is one
// UPDATE of the fields it is about, so two relays writing the same agent never
// undo each other's other fields.
import type { AgentEndReason, ProcessInfo } from '../../../shared/protocol.ts';
import type { AgentHello, AgentRecord, AgentsStore } from '../contract.ts';
import type { Db } from './connection.ts';
import { agentValues, toAgent, type AgentRow } from '../rows.ts';

/** An agent's row as rows.ts reads it: the column os_user under the embedded schema's name. */
const SELECT_AGENTS = 'SELECT *, os_user AS "user" FROM agents';

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
      agentValues(a),
    );
  }

  async byId(id: string): Promise<AgentRecord | undefined> {
    const row = await this.#db.one<AgentRow>(`${SELECT_AGENTS} WHERE id = $1`, [id]);
    return row && toAgent(row);
  }

  async forSession(sessionId: string): Promise<AgentRecord[]> {
    return (await this.#db.rows<AgentRow>(`${SELECT_AGENTS} WHERE session_id = $1 ORDER BY created_at, id`, [sessionId])).map(toAgent);
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
