// The cluster bus over a real Redis: relays with the same signing key hear
// each other; a message written to the channel by anyone else (no signature,
// a wrong one, a relay with another key, a signed message altered) is
// ignored and counted, so access to Redis alone cannot make a relay act.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { pack } from 'msgpackr';
import { RedisBus, CHANNEL, busKey } from '../../relay/cluster/redis-bus.ts';
import type { ClusterMessage } from '../../relay/cluster/events.ts';
import { findProgram, startRedis, type RedisServer } from '../helpers/redis.ts';
import { eventually, sleep } from '../helpers/relay.ts';

const skip = findProgram('redis-server') ? false : "redis-server is not installed (Debian's redis-server; .ci/run installs it)";
if (skip) console.log(`# skipped: the cluster bus: ${skip}`);

describe('the cluster bus', { skip }, () => {
  let redis: RedisServer;
  const signingKey = randomBytes(32);
  const buses: RedisBus[] = [];
  const bus = async (relayId: string, key = signingKey) => {
    const b = await RedisBus.connect(redis.url, relayId, busKey(key), () => {});
    buses.push(b);
    return b;
  };

  before(async () => {
    redis = await startRedis();
  });

  after(async () => {
    for (const b of buses) await b.close();
    await redis?.stop();
  });

  test('relays sharing the signing key hear each other, never themselves; anything else on the channel is ignored and counted', async () => {
    const a = await bus('relay-a');
    const b = await bus('relay-b');
    const stranger = await bus('relay-x', randomBytes(32));
    const heard: ClusterMessage[] = [];
    b.onMessage((m) => heard.push(m));
    const aHeard: ClusterMessage[] = [];
    a.onMessage((m) => aHeard.push(m));

    assert.equal(a.publish({ type: 'session_changed', sessionId: 's1' }), true);
    await eventually(() => heard.length === 1, 5000, 'b to hear a');
    assert.deepEqual(heard[0], { type: 'session_changed', sessionId: 's1', from: 'relay-a' });

    // Someone with access to Redis only: an unsigned message, a made-up signature, a relay with another key, a signed message altered.
    const raw = new Redis(redis.url);
    try {
      const forgedStart = pack({ type: 'to_agent', relay: 'relay-b', agentId: 'a1', message: { type: 'start_capture' }, from: 'relay-a' });
      await raw.publish(CHANNEL, forgedStart);
      await raw.publish(CHANNEL, Buffer.concat([randomBytes(32), forgedStart]));
      stranger.publish({ type: 'login_revoked', loginId: 'l1' });
      const signed = await new Promise<Buffer>((resolve) => {
        const spy = new Redis(redis.url);
        void spy.subscribe(CHANNEL).then(() => a.publish({ type: 'session_closed', sessionId: 's2' }));
        spy.on('messageBuffer', (_c: Buffer, data: Buffer) => {
          resolve(data);
          spy.disconnect();
        });
      });
      const altered = Buffer.from(signed);
      altered[altered.length - 1] = altered[altered.length - 1]! ^ 1;
      await raw.publish(CHANNEL, altered);
    } finally {
      raw.disconnect();
    }
    await eventually(() => b.counters.forged === 4, 5000, 'b to refuse the 4 forged messages');
    await sleep(100);
    assert.deepEqual(
      heard.map((m) => m.type),
      ['session_changed', 'session_closed'],
      'only the relays with the shared key were heard (the spied message once, unaltered)',
    );
    assert.equal(aHeard.length, 0, 'a relay does not hear itself, nor the forgeries as anything but forged');
    assert.equal(a.counters.forged, 4);
  });
});
