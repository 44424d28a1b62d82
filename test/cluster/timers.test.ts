// Timers that must run once across relays, and survive the relay that started
// them: a capture whose relay dies and whose agent never comes back is ended
// by another relay when its lease and grace period have run out; a session
// that expires while several relays sweep is closed once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminClient, createSession, eventually, joinedAgent, removeDataDir, sleep, startCapture, startRelay, type RelayProcess } from '../helpers/relay.ts';
import { postgresUnavailable, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { findProgram, startRedis, type RedisServer } from '../helpers/redis.ts';
import { LEASE_MS } from '../../relay/captures/capture-service.ts';

function enginesMissing(): string | false {
  const why = postgresUnavailable() ?? (findProgram('redis-server') ? undefined : "redis-server is not installed (Debian's redis-server; .ci/run installs it)");
  if (!why) return false;
  console.log(`# skipped: timers across relays: ${why}`);
  return why;
}

const GRACE_S = 1;

describe('timers that run once across relays', { skip: enginesMissing(), concurrency: false }, () => {
  let pg: PostgresServer;
  let redis: RedisServer;
  const relays: RelayProcess[] = [];
  const start = async () => {
    const r = await startRelay({ env: { PERISCOPE_DATABASE_URL: pg.url, PERISCOPE_REDIS_URL: redis.url, PERISCOPE_CAPTURE_GRACE_SECONDS: String(GRACE_S) } });
    relays.push(r);
    return r;
  };

  before(async () => {
    pg = await startPostgres();
    redis = await startRedis();
  });

  after(async () => {
    for (const r of relays) {
      await r.stop();
      removeDataDir(r.dataDir);
    }
    await redis?.stop();
    await pg?.dispose();
  });

  test('the relay holding a capture dies and its agent never returns: another relay ends it once the lease and the grace period are over', { timeout: 60_000 }, async () => {
    const a = await start();
    const b = await start();
    const engB = await adminClient(b);
    const { agent, welcome } = await joinedAgent(a, engB);
    const { captureId } = await startCapture(engB, agent, welcome.agentId, { kind: 'record', pid: 4242, duration: 60 });
    const killedAt = Date.now();
    await a.kill();
    agent.close();
    // Not before the dead relay's lease has run out: it might have been about to come back.
    await sleep(LEASE_MS / 2);
    assert.equal((await engB.ok('GET', `/api/captures/${captureId}`)).status, 'starting', 'still waiting while the lease could be renewed');
    const ended = await eventually(
      async () => {
        const c = await engB.ok('GET', `/api/captures/${captureId}`);
        return c.endedAt !== null && c;
      },
      LEASE_MS + GRACE_S * 1000 + 10_000,
      'the capture to be ended by the surviving relay',
    );
    assert.equal(ended.status, 'incomplete');
    assert.equal(ended.endReason, 'agent_disconnected');
    assert.ok(Date.parse(ended.endedAt) - Date.parse(ended.startedAt) >= LEASE_MS + GRACE_S * 1000, 'not before the lease and the grace period ran out');
    assert.ok(Date.parse(ended.endedAt) > killedAt);
    const audit = (await engB.ok('GET', `/api/sessions/${ended.sessionId}/audit`)).entries as { action: string; actor: string; detail: { captureId?: string } }[];
    assert.deepEqual(
      audit.filter((e) => e.action === 'capture.ended' && e.detail.captureId === captureId).map((e) => e.actor),
      ['relay'],
      'ended once, by a relay',
    );
  });

  test('a session that expires while three relays sweep is closed once', { timeout: 60_000 }, async () => {
    const a = relays[1] ?? (await start());
    const eng = await adminClient(a);
    const session = await createSession(eng, 'expires soon', { ttlHours: 1 / 3600 });
    await sleep(1500);
    // Two relays starting now sweep at once (every relay sweeps at start, then every 30 s), beside the running one.
    await Promise.all([start(), start()]);
    const closed = await eventually(async () => {
      const s = await eng.ok('GET', `/api/sessions/${session.id}`);
      return s.status === 'expired' && s;
    }, 40_000, 'the session to expire');
    assert.equal(closed.status, 'expired');
    await sleep(500);
    const audit = (await eng.ok('GET', `/api/sessions/${session.id}/audit`)).entries as { action: string }[];
    assert.equal(audit.filter((e) => e.action === 'session.expired').length, 1, 'closed once');
  });
});
