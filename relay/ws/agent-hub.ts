// Connections from agents at /ws/agent (already authenticated by the upgrade
// handler). Owns presence: which agent is online, its process list, and the
// one live connection per agent identity.
import type { WebSocket } from 'ws';
import {
  CloseCode,
  MIN_PROTOCOL_VERSION,
  PROTOCOL_VERSION,
  ProtocolError,
  encode,
  parseAgentMessage,
  type AgentEndReason,
  type AgentToRelay,
  type HelloMessage,
  type RelayToAgent,
  type UiAgentState,
} from '../../shared/protocol.ts';
import type { Store } from '../store/index.ts';
import type { AgentRecord } from '../store/agents.ts';
import { isOpen } from '../store/sessions.ts';
import { newId } from '../store/ids.ts';
import type { TokenService } from '../auth/tokens.ts';
import type { Metrics } from '../metrics.ts';
import type { CaptureService } from '../captures/capture-service.ts';
import type { Presence } from '../sessions/presence.ts';
import { Heartbeat } from './heartbeat.ts';
import { closeAll, rawBytes, refuseFrame, truncateReason } from './frames.ts';
import { SlicedQueue } from './sliced-queue.ts';
import type { AgentView } from '../../shared/http-views.ts';
import { isPeriscopeError } from '../../shared/errors.ts';
import { relayLog } from '../log.ts';

export const HELLO_TIMEOUT_MS = 10_000;

export type AgentAuth = { kind: 'join'; sessionId: string; jti: string } | { kind: 'agent'; sessionId: string; agentId: string };


interface Connection {
  ws: WebSocket;
  auth: AgentAuth;
  sessionId: string;
  agentId: string | undefined;
  heartbeat: Heartbeat;
  helloTimer: NodeJS.Timeout | undefined;
  /** Messages are handled one at a time, in order, even when handling awaits (signing a credential). */
  queue: Promise<void>;
  /** Set when the relay sends the agent away for good (its session closed): recorded as why it ended. */
  sentAway: AgentEndReason | undefined;
}

export interface AgentHubDeps {
  store: Store;
  captures: CaptureService;
  tokens: TokenService;
  metrics: Metrics;
  heartbeatMs: number;
  /** Who is in each session, and the cap on how many; told of every join, leave and process list. */
  presence: Presence;
}

/** The agents connected to this relay (agents elsewhere in the cluster are reached through cluster/agent-router.ts). */
export class AgentHub {
  #deps: AgentHubDeps;
  #connections = new Set<Connection>();
  #byAgent = new Map<string, Connection>();
  /** Store writes for agents that left, in slices: a crowd leaving at once must not stall the relay. */
  #leaves = new SlicedQueue((err) => relayLog().error(`recording an agent's departure failed`, { err }));

  constructor(deps: AgentHubDeps) {
    this.#deps = deps;
  }

  get connectedCount(): number {
    return this.#byAgent.size;
  }

  /** Ids and sessions of the agents connected here. */
  *agents(): Iterable<{ id: string; sessionId: string }> {
    for (const [id, conn] of this.#byAgent) yield { id, sessionId: conn.sessionId };
  }

  send(agentId: string, message: RelayToAgent): boolean {
    const conn = this.#byAgent.get(agentId);
    if (!conn) return false;
    this.#send(conn.ws, encode(message));
    return true;
  }

  view(agent: AgentRecord): AgentView {
    const conn = this.#byAgent.get(agent.id);
    // Online here or on another relay of the cluster.
    const online = conn !== undefined || this.#deps.presence.relayOf(agent.id) !== undefined;
    const view: AgentView = {
      id: agent.id,
      host: agent.host,
      containerId: agent.containerId,
      arch: agent.arch,
      agentVersion: agent.agentVersion,
      online,
      connectedAt: new Date(agent.connectedAt).toISOString(),
      lastSeen: new Date(conn ? conn.heartbeat.lastSeen : agent.lastSeen).toISOString(),
      processes: agent.processes,
    };
    if (agent.user) view.user = agent.user;
    if (!online && agent.ended) view.ended = agent.ended;
    return view;
  }

  /** The session was closed: its agents must go and not come back. */
  closeSession(sessionId: string): void {
    for (const conn of [...this.#connections]) {
      if (conn.sessionId !== sessionId) continue;
      conn.sentAway = 'session_closed';
      conn.ws.close(CloseCode.SessionClosed, 'the support session was closed');
    }
  }

  /** Closes every agent with Restarting; resolves once they are gone (stragglers are cut after `graceMs`). */
  async shutdown(graceMs = 2000): Promise<void> {
    await closeAll([...this.#connections].map((c) => c.ws), graceMs);
    // Before the store closes.
    await this.#leaves.drain();
  }

  accept(ws: WebSocket, auth: AgentAuth): void {
    const conn: Connection = {
      ws,
      auth,
      sessionId: auth.sessionId,
      agentId: undefined,
      heartbeat: new Heartbeat(ws, this.#deps.heartbeatMs),
      helloTimer: undefined,
      queue: Promise.resolve(),
      sentAway: undefined,
    };
    this.#connections.add(conn);
    conn.helloTimer = setTimeout(() => {
      if (conn.agentId === undefined) ws.close(CloseCode.Timeout, `no hello within ${HELLO_TIMEOUT_MS / 1000} s`);
    }, HELLO_TIMEOUT_MS);
    conn.helloTimer.unref();
    ws.on('message', (data, isBinary) => {
      const bytes = rawBytes(data);
      this.#deps.metrics.bytesIn += bytes.length;
      conn.queue = conn.queue.then(() => this.#onFrame(conn, bytes, isBinary));
    });
    // Errors (e.g. a frame over maxPayload) are followed by 'close'; nothing else to do.
    ws.on('error', () => {});
    ws.on('close', (code, reason) => this.#onClose(conn, code, reason.toString()));
  }

  #send(ws: WebSocket, bytes: Uint8Array): void {
    if (ws.readyState !== ws.OPEN) return;
    this.#deps.metrics.bytesOut += bytes.byteLength;
    ws.send(bytes);
  }

  async #onFrame(conn: Connection, bytes: Buffer, isBinary: boolean): Promise<void> {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    try {
      if (!isBinary) throw new ProtocolError('text frames are not part of the protocol; send binary msgpack frames');
      const message = parseAgentMessage(bytes);
      await this.#handle(conn, message);
    } catch (err) {
      if (err instanceof ProtocolError) {
        refuseFrame(conn.ws, err.message, (ws, b) => this.#send(ws, b));
        return;
      }
      if (isPeriscopeError(err, 'DATABASE_UNREACHABLE')) {
        // Nothing was acknowledged: the agent keeps its chunks, reconnects (to any relay) and resends them.
        relayLog().warn(`closing an agent's connection until the database answers again: ${err.message}`, { agent: conn.agentId, session: conn.sessionId });
        if (conn.ws.readyState === conn.ws.OPEN) conn.ws.close(CloseCode.Restarting, 'the relay cannot reach its database; reconnect shortly');
        return;
      }
      // A bug on our side must not take the relay down with it; this connection ends.
      relayLog().error(`internal error handling an agent message`, { err });
      if (conn.ws.readyState === conn.ws.OPEN) conn.ws.close(1011, 'internal error in the relay');
    }
  }

  async #handle(conn: Connection, m: AgentToRelay): Promise<void> {
    if (conn.agentId === undefined) {
      if (m.type !== 'hello') throw new ProtocolError(`the first message must be hello, not ${m.type}`);
      await this.#hello(conn, m);
      return;
    }
    const agentId = conn.agentId;
    const reply = (messages: RelayToAgent[]) => {
      for (const r of messages) this.#send(conn.ws, encode(r));
    };
    switch (m.type) {
      case 'hello':
        throw new ProtocolError('hello was already received on this connection');
      case 'processes': {
        const now = Date.now();
        await this.#deps.store.agents.setProcesses(agentId, m.processes, now);
        this.#deps.presence.processes(conn.sessionId, agentId, m.processes, now);
        return;
      }
      case 'chunk':
        return reply(await this.#deps.captures.chunk(agentId, m));
      case 'capture_ended':
        return reply(await this.#deps.captures.ended(agentId, m));
      case 'dump_result':
        return reply(await this.#deps.captures.dumpResult(agentId, m));
      case 'error':
        if (m.captureId !== undefined) await this.#deps.captures.agentError(agentId, m);
        else await this.#deps.store.audit.record(`agent:${agentId}`, 'agent.error', conn.sessionId, { code: m.code, message: m.message });
        return;
    }
  }

  async #hello(conn: Connection, hello: HelloMessage): Promise<void> {
    const { store } = this.#deps;
    clearTimeout(conn.helloTimer);
    if (hello.protocol < MIN_PROTOCOL_VERSION || hello.protocol > PROTOCOL_VERSION) {
      const message = `this relay speaks protocol ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION} but the agent speaks ${hello.protocol}; run the session's install command again to get a matching agent`;
      this.#send(conn.ws, encode({ type: 'error', code: 'UNSUPPORTED_PROTOCOL', message }));
      conn.ws.close(CloseCode.Version, truncateReason(message));
      return;
    }
    const now = Date.now();
    const session = await store.sessions.byId(conn.sessionId);
    if (!session || !isOpen(session, now)) {
      conn.ws.close(CloseCode.SessionClosed, 'the support session was closed');
      return;
    }
    if (conn.auth.kind === 'join' && (await store.joinTokens.byJti(conn.auth.jti))?.revokedAt !== null) {
      conn.ws.close(CloseCode.BadAuth, 'the join token was revoked; ask the support engineer for a new command');
      return;
    }
    const info = { host: hello.host, containerId: hello.containerId, arch: hello.arch, agentVersion: hello.agentVersion, protocol: hello.protocol, user: hello.user ?? '' };
    const { presence } = this.#deps;
    await presence.load(session.id);
    let agentId: string;
    let credential: string | undefined;
    if (conn.auth.kind === 'join') {
      // The place is taken before the await, so concurrent joins cannot overshoot the cap.
      const slot = presence.reserve(session.id);
      if (!slot) return this.#refuseFull(conn);
      agentId = newId();
      try {
        credential = await this.#deps.tokens.signAgent({ agentId, sessionId: session.id }, session.expiresAt);
      } catch (err) {
        slot.release();
        throw err;
      }
      // Gone while signing: register nothing.
      if (conn.ws.readyState !== conn.ws.OPEN) return slot.release();
      const record: AgentRecord = { id: agentId, sessionId: session.id, ...info, createdAt: now, connectedAt: now, lastSeen: now, processes: [] };
      try {
        await store.agents.insert(record);
      } catch (err) {
        slot.release();
        throw err;
      }
      if (conn.ws.readyState !== conn.ws.OPEN) return slot.release();
      presence.connected(record, slot);
    } else {
      agentId = conn.auth.agentId;
      // Its departure is written before its return.
      await this.#leaves.settle(agentId);
      await presence.load(session.id);
      // An agent still counted (online, or gone less than the retention) always comes back; a pruned one needs a free place.
      if (!presence.hasRoom(session.id, agentId)) return this.#refuseFull(conn);
      await store.agents.reconnected(agentId, info, now);
      const record = await store.agents.byId(agentId);
      if (conn.ws.readyState !== conn.ws.OPEN) return;
      if (record) presence.connected(record);
      const previous = this.#byAgent.get(agentId);
      if (previous && previous !== conn) {
        // Claim the identity first so the old connection's close handler leaves presence alone.
        this.#byAgent.delete(agentId);
        previous.agentId = undefined;
        previous.ws.close(CloseCode.Replaced, 'another connection took over this agent');
        this.#connections.delete(previous);
      }
    }
    conn.agentId = agentId;
    this.#byAgent.set(agentId, conn);
    await store.audit.record(`agent:${agentId}`, 'agent.connected', session.id, {
      agentId,
      host: hello.host,
      containerId: hello.containerId,
      ...(hello.user ? { user: hello.user } : {}),
      agentVersion: hello.agentVersion,
      via: conn.auth.kind === 'join' ? 'join_token' : 'agent_credential',
    });
    const { resume, followUps } = await this.#deps.captures.agentConnected(agentId, hello.captures);
    this.#send(conn.ws, encode({ type: 'welcome', protocol: PROTOCOL_VERSION, agentId, sessionId: session.id, ...(credential ? { credential } : {}), resume }));
    for (const m of followUps) this.#send(conn.ws, encode(m));
    this.#send(conn.ws, encode({ type: 'list_processes' }));
  }

  #refuseFull(conn: Connection): void {
    const message = this.#deps.presence.fullMessage;
    this.#send(conn.ws, encode({ type: 'error', code: 'SESSION_FULL', message }));
    conn.ws.close(CloseCode.SessionFull, truncateReason(message));
  }

  #onClose(conn: Connection, code: number, reason: string): void {
    clearTimeout(conn.helloTimer);
    conn.heartbeat.stop();
    this.#connections.delete(conn);
    const agentId = conn.agentId;
    if (agentId === undefined || this.#byAgent.get(agentId) !== conn) return;
    this.#byAgent.delete(agentId);
    const { store, captures, presence } = this.#deps;
    const lastSeen = conn.heartbeat.lastSeen;
    const at = Date.now();
    // AgentExit: the customer stopped the agent on purpose (bye+); it will not come back.
    const ended: AgentEndReason | null = code === CloseCode.AgentExit ? 'customer' : (conn.sentAway ?? null);
    presence.disconnected(conn.sessionId, agentId, lastSeen, ended);
    // Nothing else can act on this agent before it is back (it is offline above), and a hello from it settles this first.
    this.#leaves.add(agentId, async () => {
      // After whatever it sent last has been handled (a chunk being stored must not race its writer's closing).
      await conn.queue;
      await store.agents.seen(agentId, lastSeen, ended);
      await store.audit.record(`agent:${agentId}`, 'agent.disconnected', conn.sessionId, { agentId, code, reason, ...(ended ? { ended } : {}) }, at);
      if (ended === 'customer') await captures.agentExited(agentId);
      else await captures.agentDisconnected(agentId);
    });
  }
}
