// The cluster bus over Redis pub/sub, with the kept client ioredis (it
// reconnects and resubscribes by itself). One channel carries every event;
// relays are few, events are small and each relay drops what is not for it.
//
// Every message is signed (HMAC-SHA256 with a key derived from the relays'
// shared token-signing key): whoever can reach Redis but not the relays'
// secrets cannot make a relay act (start a capture on a customer's agent,
// close a session's sockets). Unsigned or altered messages are dropped and
// counted.
//
// While Redis is unreachable nothing is queued: events are dropped and
// counted. What that loses is bounded and repaired — viewers notice the gap at
// the next chunk and catch up from the store, and presence is resynced when
// the bus comes back (relay_sync) — whereas a queue would grow with every
// chunk for as long as Redis is down.
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { Redis } from 'ioredis';
import { pack, unpack } from 'msgpackr';
import { PeriscopeError } from '../../shared/errors.ts';
import type { BusCounters, BusHealth, ClusterBus } from './bus.ts';
import type { ClusterEvent, ClusterMessage } from './events.ts';

export const CHANNEL = 'periscope:cluster';
const MAC_BYTES = 32;

/** The bus's own key, derived from the token-signing key so neither can be computed from the other's uses. */
export function busKey(signingKey: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', signingKey, Buffer.alloc(0), 'periscope cluster bus v1', 32));
}

function mac(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
const HEALTH_TIMEOUT_MS = 1000;

/** host:port of a redis:// URL, for messages (never its password). */
export function redisWhere(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'the server in PERISCOPE_REDIS_URL';
  }
}

export class RedisBus implements ClusterBus {
  readonly relayId: string;
  readonly shared = true;
  readonly counters: BusCounters = { published: 0, received: 0, dropped: 0, forged: 0 };
  #pub: Redis;
  #sub: Redis;
  #where: string;
  #handlers: ((m: ClusterMessage) => void)[] = [];
  #reconnectHandlers: (() => void)[] = [];
  #downSince: number | undefined;
  #lastError = '';
  #log: (message: string) => void;
  #key: Buffer;

  private constructor(url: string, relayId: string, key: Buffer, log: (message: string) => void) {
    this.relayId = relayId;
    this.#key = key;
    this.#where = redisWhere(url);
    this.#log = log;
    const options = {
      // Never queue while disconnected (see the top of the file); reconnect quickly, backing off to 2 s.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (attempt: number) => Math.min(2000, 100 * attempt),
      lazyConnect: true,
    };
    this.#pub = new Redis(url, options);
    // The subscriber must queue its SUBSCRIBE until connected; it publishes nothing.
    this.#sub = new Redis(url, { ...options, enableOfflineQueue: true, maxRetriesPerRequest: null });
    for (const client of [this.#pub, this.#sub]) {
      client.on('error', (err: Error) => this.#down(err.message));
      client.on('close', () => this.#down('the connection closed'));
    }
    this.#sub.on('ready', () => this.#up());
    this.#sub.on('messageBuffer', (_channel: Buffer, data: Buffer) => this.#receive(data));
  }

  static async connect(url: string, relayId: string, key: Buffer, log: (message: string) => void): Promise<RedisBus> {
    const bus = new RedisBus(url, relayId, key, log);
    try {
      await Promise.all([bus.#pub.connect(), bus.#sub.connect()]);
      await bus.#sub.subscribe(CHANNEL);
    } catch (err) {
      bus.#pub.disconnect();
      bus.#sub.disconnect();
      throw new PeriscopeError(
        'REDIS_UNREACHABLE',
        `the relay could not reach Redis at ${bus.#where} (PERISCOPE_REDIS_URL): ${(err as Error).message}; start Redis or correct the URL, then start the relay again`,
      );
    }
    bus.#downSince = undefined;
    return bus;
  }

  get connected(): boolean {
    return this.#pub.status === 'ready' && this.#sub.status === 'ready';
  }

  publish(event: ClusterEvent): boolean {
    if (this.#pub.status !== 'ready') {
      this.counters.dropped++;
      return false;
    }
    const message: ClusterMessage = { ...event, from: this.relayId };
    this.counters.published++;
    const body = pack(message);
    this.#pub.publish(CHANNEL, Buffer.concat([mac(this.#key, body), body])).catch((err: Error) => {
      this.counters.dropped++;
      this.#down(err.message);
    });
    return true;
  }

  onMessage(handler: (message: ClusterMessage) => void): void {
    this.#handlers.push(handler);
  }

  onReconnect(handler: () => void): void {
    this.#reconnectHandlers.push(handler);
  }

  async health(): Promise<BusHealth> {
    try {
      await Promise.race([
        this.#pub.ping(),
        new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${HEALTH_TIMEOUT_MS} ms`)), HEALTH_TIMEOUT_MS).unref()),
      ]);
      return { ok: true, kind: 'redis' };
    } catch (err) {
      const since = new Date(this.#downSince ?? Date.now()).toISOString();
      return {
        ok: false,
        kind: 'redis',
        problem: {
          code: 'REDIS_UNREACHABLE',
          message: `Redis at ${this.#where} does not answer (${(err as Error).message}); agents and viewers on this relay keep working, but requests for agents on other relays fail and live views elsewhere lag until it is back. The relay reconnects by itself`,
          since,
        },
      };
    }
  }

  async close(): Promise<void> {
    this.#handlers = [];
    this.#reconnectHandlers = [];
    await Promise.allSettled([this.#pub.quit(), this.#sub.quit()]);
    this.#pub.disconnect();
    this.#sub.disconnect();
  }

  #receive(data: Buffer): void {
    const body = data.subarray(MAC_BYTES);
    if (data.length <= MAC_BYTES || !timingSafeEqual(data.subarray(0, MAC_BYTES), mac(this.#key, body))) {
      if (this.counters.forged++ === 0) this.#log(`a message on the cluster channel without a valid signature was ignored (a relay with another signing key, or someone else writing to Redis: keep Redis private to the relays)`);
      return;
    }
    let message: ClusterMessage;
    try {
      message = unpack(body) as ClusterMessage;
    } catch (err) {
      this.#log(`an unreadable message on the cluster channel was ignored: ${(err as Error).message}`);
      return;
    }
    if (message.from === this.relayId) return;
    this.counters.received++;
    for (const h of this.#handlers) {
      try {
        h(message);
      } catch (err) {
        this.#log(`handling a cluster event (${message.type}) failed: ${(err as Error).stack ?? String(err)}`);
      }
    }
  }

  #down(why: string): void {
    this.#lastError = why;
    if (this.#downSince !== undefined) return;
    this.#downSince = Date.now();
    this.#log(`REDIS_UNREACHABLE: lost Redis at ${this.#where} (${why}); reconnecting. Meanwhile agents on other relays cannot be reached from here`);
  }

  #up(): void {
    if (this.#downSince === undefined) return;
    const seconds = Math.round((Date.now() - this.#downSince) / 1000);
    this.#downSince = undefined;
    this.#log(`Redis at ${this.#where} is back after ${seconds} s (last error: ${this.#lastError}); resyncing presence with the other relays`);
    for (const h of this.#reconnectHandlers) h();
  }
}
