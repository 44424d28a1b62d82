// The cluster bus: how one relay tells the others. With PERISCOPE_REDIS_URL
// it is Redis pub/sub (redis-bus.ts); without, a relay is alone and the bus
// carries nothing — the same code paths run, nothing crosses.
import type { ClusterEvent, ClusterMessage } from './events.ts';

export interface BusHealth {
  ok: boolean;
  /** 'none' (a single relay) or 'redis'. */
  kind: string;
  problem?: { code: string; message: string; since: string };
}

export interface BusCounters {
  published: number;
  received: number;
  /** Events not sent because the bus was unreachable (viewers catch up from the store; presence resyncs). */
  dropped: number;
  /** Messages received without a valid signature, ignored. */
  forged: number;
}

export interface ClusterBus {
  readonly relayId: string;
  /** Whether other relays can exist (false: embedded, alone). */
  readonly shared: boolean;
  /** Connected now (events can be sent and received). */
  readonly connected: boolean;
  /** To every other relay; never back to this one. False when it could not be sent now. */
  publish(event: ClusterEvent): boolean;
  /** Receives what other relays publish. */
  onMessage(handler: (message: ClusterMessage) => void): void;
  /** Called each time the bus (re)connects after being down, so state can be resynced. */
  onReconnect(handler: () => void): void;
  health(): Promise<BusHealth>;
  readonly counters: BusCounters;
  close(): Promise<void>;
}

/** A relay on its own. */
export class NoBus implements ClusterBus {
  readonly relayId: string;
  readonly shared = false;
  readonly connected = true;
  readonly counters: BusCounters = { published: 0, received: 0, dropped: 0, forged: 0 };
  constructor(relayId: string) {
    this.relayId = relayId;
  }
  publish(): boolean {
    return true;
  }
  onMessage(): void {}
  onReconnect(): void {}
  async health(): Promise<BusHealth> {
    return { ok: true, kind: 'none' };
  }
  async close(): Promise<void> {}
}
