// Reaching an agent wherever it is connected: through this relay's own
// socket, or by asking the relay that holds it over the cluster bus.
import type { RelayToAgent } from '../../shared/protocol.ts';
import type { AgentLink } from '../captures/capture-service.ts';
import type { AgentHub } from '../ws/agent-hub.ts';
import type { Presence } from '../sessions/presence.ts';
import type { ClusterBus } from './bus.ts';

export class AgentRouter implements AgentLink {
  #hub: AgentHub;
  #presence: Presence;
  #bus: ClusterBus;
  /** Messages sent on to another relay (for /metrics). */
  routed = 0;

  constructor(hub: AgentHub, presence: Presence, bus: ClusterBus) {
    this.#hub = hub;
    this.#presence = presence;
    this.#bus = bus;
  }

  relayOf(agentId: string): string | undefined {
    return this.#presence.relayOf(agentId);
  }

  send(agentId: string, message: RelayToAgent): boolean {
    if (this.#hub.send(agentId, message)) return true;
    const relay = this.#presence.relayOf(agentId);
    if (relay === undefined || relay === this.#bus.relayId) return false;
    if (!this.#bus.publish({ type: 'to_agent', relay, agentId, message })) return false;
    this.routed++;
    return true;
  }

  /** A message another relay routed here. */
  deliver(agentId: string, message: RelayToAgent): void {
    this.#hub.send(agentId, message);
  }
}
