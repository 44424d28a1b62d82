// One relay's part in a cluster: what it tells the other relays (its
// agents, its captures' chunks and states, sessions closing) and what it does
// with what they tell it. Alone (NoBus) nothing is sent and nothing arrives.
import type { CaptureListener, CaptureService } from '../captures/capture-service.ts';
import type { CaptureRecord } from '../store/contract.ts';
import type { Presence } from '../sessions/presence.ts';
import type { AgentHub } from '../ws/agent-hub.ts';
import type { UiHub } from '../ws/ui-hub.ts';
import type { AgentRouter } from './agent-router.ts';
import type { ClusterBus } from './bus.ts';
import { RELAY_BEAT_MS, RELAY_TIMEOUT_MS, type ClusterMessage } from './events.ts';

export interface ClusterDeps {
  bus: ClusterBus;
  presence: Presence;
  captures: CaptureService;
  router: AgentRouter;
  agentHub: AgentHub;
  uiHub: UiHub;
  log: (message: string) => void;
}

export class ClusterMember implements CaptureListener {
  #d: ClusterDeps;
  /** Other relays heard from, and when. */
  #relays = new Map<string, number>();
  #beat: NodeJS.Timeout | undefined;

  constructor(deps: ClusterDeps) {
    this.#d = deps;
  }

  /** Relays this one hears from (itself included). */
  get relaysSeen(): number {
    return this.#relays.size + 1;
  }

  start(): void {
    const { bus } = this.#d;
    if (!bus.shared) return;
    this.#d.captures.listen(this);
    bus.onMessage((m) => this.#receive(m));
    bus.onReconnect(() => {
      // Nobody could be heard while the bus was down: give every relay a fresh chance to beat.
      for (const relay of this.#relays.keys()) this.#relays.set(relay, Date.now());
      this.#sync();
    });
    this.#sync();
    this.#beat = setInterval(() => this.#tick(), RELAY_BEAT_MS);
    this.#beat.unref();
  }

  stop(): void {
    clearInterval(this.#beat);
  }

  // ---- this relay's captures, for viewers on the others ------------------------

  state(capture: CaptureRecord): void {
    this.#d.bus.publish({ type: 'capture_state', capture });
  }

  chunk(captureId: string, seq: number, payload: Uint8Array): void {
    this.#d.bus.publish({ type: 'capture_chunk', captureId, seq, payload });
  }

  dumpResult(capture: CaptureRecord): void {
    this.#d.bus.publish({ type: 'dump_result', capture });
  }

  sessionClosed(sessionId: string): void {
    this.#d.bus.publish({ type: 'session_closed', sessionId });
  }

  sessionChanged(sessionId: string): void {
    this.#d.bus.publish({ type: 'session_changed', sessionId });
  }

  loginRevoked(loginId: string): void {
    this.#d.bus.publish({ type: 'login_revoked', loginId });
  }

  // ---- from the other relays ---------------------------------------------------

  #receive(m: ClusterMessage): void {
    const { presence, uiHub, captures, router, agentHub } = this.#d;
    this.#relays.set(m.from, Date.now());
    switch (m.type) {
      case 'to_agent':
        if (m.relay === this.#d.bus.relayId) router.deliver(m.agentId, m.message);
        return;
      case 'capture_state':
        uiHub.state(m.capture);
        void captures.changedElsewhere(m.capture).catch((err) => this.#d.log(`updating capture ${m.capture.id} from another relay failed: ${(err as Error).message}`));
        return;
      case 'capture_chunk':
        uiHub.chunk(m.captureId, m.seq, m.payload);
        return;
      case 'dump_result':
        uiHub.dumpResult(m.capture);
        return;
      case 'agent_online':
        presence.remoteOnline(m.record, m.from);
        return;
      case 'agent_offline':
        presence.remoteOffline(m.from, m.sessionId, m.agentId, m.lastSeen, m.ended);
        return;
      case 'agent_processes':
        presence.remoteProcesses(m.sessionId, m.agentId, m.processes, m.at);
        return;
      case 'relay_beat':
        return;
      case 'relay_sync':
        this.#d.bus.publish({ type: 'relay_agents', agents: presence.localAgents() });
        return;
      case 'relay_agents':
        void presence.relayAgents(m.from, m.agents).catch((err) => this.#d.log(`taking in relay ${m.from}'s agents failed: ${(err as Error).message}`));
        return;
      case 'session_closed':
        agentHub.closeSession(m.sessionId);
        uiHub.sessionChanged(m.sessionId);
        return;
      case 'session_changed':
        uiHub.sessionChanged(m.sessionId);
        return;
      case 'login_revoked':
        uiHub.closeLogin(m.loginId);
        return;
    }
  }

  /** Asks every relay for its agents, and tells them ours (at start, and when the bus comes back). */
  #sync(): void {
    this.#d.bus.publish({ type: 'relay_sync' });
    this.#d.bus.publish({ type: 'relay_agents', agents: this.#d.presence.localAgents() });
  }

  #tick(): void {
    this.#d.bus.publish({ type: 'relay_beat' });
    // Silence while our own bus is down says nothing about the other relays.
    if (!this.#d.bus.connected) return;
    const now = Date.now();
    for (const [relay, heard] of this.#relays) {
      if (now - heard < RELAY_TIMEOUT_MS) continue;
      this.#relays.delete(relay);
      this.#d.log(`relay ${relay} has not been heard from for ${Math.round((now - heard) / 1000)} s; its agents are offline until they reconnect (to any relay)`);
      this.#d.presence.relayGone(relay, heard);
    }
  }
}
