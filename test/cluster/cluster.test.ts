// Three relays behind nginx, sharing one PostgreSQL and one Redis, all real
// and on loopback: the customer's one-liner, fetched through nginx, connects
// an agent; an engineer whose requests land on any relay works with an
// agent connected to another; the relay holding the agent dies mid-record and
// the capture completes on another with nothing lost; PostgreSQL and Redis
// restart under a running record and the relays recover by themselves.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureAgentBinary } from '../../scripts/build-agent/index.ts';
import { Client, adminClient, connectUi, createSession, eventually, metric, onlineAgent, sleep, startRelay, type RelayProcess } from '../helpers/relay.ts';
import { AgentProcess, getCapture, sampleLoss, startCapture, storedProfile, waitCapture } from '../e2e/harness.ts';
import { startTarget, type Target } from '../helpers/targets.ts';
import { newestPython } from '../helpers/pythons.ts';
import { postgresUnavailable, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { findProgram, freePort, startRedis, type RedisServer } from '../helpers/redis.ts';
import { startNginx, type NginxServer } from '../helpers/nginx.ts';

function enginesMissing(): string | false {
  const missing: string[] = [];
  const pg = postgresUnavailable();
  if (pg) missing.push(pg);
  if (!findProgram('redis-server')) missing.push("redis-server is not installed (Debian's redis-server package; .ci/run installs it)");
  if (!findProgram('nginx', ['/usr/sbin'])) missing.push("nginx is not installed (Debian's nginx-light package; .ci/run installs it)");
  if (!newestPython()) missing.push('no Python interpreter to profile');
  if (missing.length === 0) return false;
  const reason = missing.join('; ');
  console.log(`# skipped: the cluster tests need real engines: ${reason}`);
  return reason;
}

interface Cluster {
  pg: PostgresServer;
  redis: RedisServer;
  nginx: NginxServer;
  relays: RelayProcess[];
  /** The load balancer, as a browser reaches it. */
  front: { url: string; origin: string };
}

const skip = enginesMissing();

describe('relays that scale out: three relays, nginx, PostgreSQL, Redis', { skip, concurrency: false }, () => {
  let c: Cluster;
  let target: Target;

  /** A relay of the cluster (restarted ones replace their slot). */
  const relayEnv = () => ({
    PERISCOPE_DATABASE_URL: c.pg.url,
    PERISCOPE_REDIS_URL: c.redis.url,
    PERISCOPE_PUBLIC_URL: c.front.url,
    PERISCOPE_HEARTBEAT_SECONDS: '5',
    PERISCOPE_CAPTURE_GRACE_SECONDS: '30',
    PERISCOPE_LOG_FORMAT: 'json',
  });

  before(async () => {
    const pg = await startPostgres();
    const redis = await startRedis();
    const port = await freePort();
    c = { pg, redis, nginx: undefined as unknown as NginxServer, relays: [], front: { url: `http://127.0.0.1:${port}`, origin: `http://127.0.0.1:${port}` } };
    // One at a time: the first creates the schema and the admin; the others find them (starting at once is tested in the store contract suite).
    for (let i = 0; i < 3; i++) c.relays.push(await startRelay({ env: relayEnv() }));
    c.nginx = await startNginx(c.relays.map((r) => ({ host: '127.0.0.1', port: Number(new URL(r.url).port) })), { port });
    target = await startTarget(newestPython()!, 'top_hot.py', { args: ['600'] });
    // The single binary the one-liner downloads (built once, cached in dist/).
    await ensureAgentBinary((line) => console.log(`# build: ${line}`));
  });

  after(async () => {
    await target?.kill();
    for (const r of c?.relays ?? []) await r.stop();
    await c?.nginx?.stop();
    await c?.redis?.stop();
    await c?.pg?.dispose();
  });

  /** The same browser sign-in, its requests sent straight to one relay (as a load balancer might). */
  const onRelay = (eng: Client, relay: RelayProcess): Client => {
    const client = new Client({ url: relay.url, origin: c.front.origin });
    client.cookie = eng.cookie;
    client.csrfToken = eng.csrfToken;
    return client;
  };

  /** The relay whose socket holds the agent. */
  const holder = async (): Promise<RelayProcess> =>
    eventually(async () => {
      for (const r of c.relays) if ((await metric(r, 'periscope_agents_connected').catch(() => 0)) > 0) return r;
      return undefined;
    }, 20_000, 'the relay holding the agent');

  /** Signed in through nginx, a new session, and an agent connected through nginx: the customer's curl one-liner, or the CLI's connect. */
  const joined = async (t: TestContext, oneLiner = false) => {
    const eng = await adminClient({ url: c.front.url, origin: c.front.origin, adminPassword: c.relays[0]!.adminPassword });
    const session = await createSession(eng, t.name.slice(0, 60));
    const tmp = mkdtempSync(join(tmpdir(), 'periscope-cluster-customer-'));
    t.after(() => rmSync(tmp, { recursive: true, force: true }));
    const agent = oneLiner
      ? new AgentProcess(t, c.front.url, '', [], { PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', TMPDIR: tmp }, session.commands.curl)
      : new AgentProcess(t, c.front.url, session.joinToken, ['--pids', String(target.pid)]);
    const online = await onlineAgent(eng, session.id, [target.pid], () => agent.output, 30_000);
    return { eng, session, agent, agentId: online.id as string };
  };

  test('an engineer on any relay works with an agent on another: processes, dump, live top, record; every relay serves the same bytes', async (t) => {
        const { eng, session, agent, agentId } = await joined(t, true);
    const home = await holder();
    const others = c.relays.filter((r) => r !== home);
    const engB = onRelay(eng, others[0]!);
    const engC = onRelay(eng, others[1]!);

    // Presence is known everywhere.
    for (const r of others) {
      const agents = (await onRelay(eng, r).ok('GET', `/api/sessions/${session.id}/agents`)).agents as { id: string; online: boolean; processes: { pid: number }[] }[];
      const a = agents.find((x) => x.id === agentId);
      assert.ok(a?.online, `relay ${r.url} sees the agent online`);
      assert.ok(a.processes.some((p) => p.pid === target.pid));
    }
    const refresh = await engB.post(`/api/agents/${agentId}/processes/refresh`);
    assert.equal(refresh.status, 202, refresh.text);

    // A dump asked on B, answered by the agent on another relay.
    const dump = await startCapture(engB, agentId, { kind: 'dump', pid: target.pid });
    const dumped = await waitCapture(engC, dump.id, 20_000);
    assert.equal(dumped.status, 'complete', JSON.stringify(dumped));
    const result = (await engC.ok('GET', `/api/captures/${dump.id}`)).result as { frames: unknown[] }[];
    assert.ok(result.length > 0 && result.some((th) => th.frames.length > 0), 'the dump holds stacks');

    // Live top started on B, watched from C: chunks arrive live.
    const ui = await connectUi(c.relays.find((r) => r === others[1])!, engC);
    t.after(() => ui.close());
    const top = await startCapture(engB, agentId, { kind: 'top', pid: target.pid, rate: 50, duration: 0 });
    ui.send({ type: 'watch_capture', captureId: top.id });
    const first = await ui.nextOfType('capture_chunk', 15_000, (m) => m.captureId === top.id);
    const later = await ui.nextOfType('capture_chunk', 15_000, (m) => m.captureId === top.id && m.seq > first.seq);
    assert.ok(later.seq > first.seq);
    // Stopped from C.
    await engC.ok('POST', `/api/captures/${top.id}/stop`);
    assert.equal((await waitCapture(engB, top.id, 20_000)).status, 'complete');

    // A record started on C; downloads from every relay are byte-identical.
    const rec = await startCapture(engC, agentId, { kind: 'record', pid: target.pid, rate: 100, duration: 3 });
    const done = await waitCapture(engB, rec.id, 30_000);
    assert.equal(done.status, 'complete', JSON.stringify(done));
    const end = await agent.waitEnd(rec.id);
    for (const format of ['raw', 'speedscope', 'flamegraph']) {
      const digests = new Set<string>();
      for (const r of c.relays) {
        const res = await fetch(`${r.url}/api/captures/${rec.id}/download?format=${format}`, { headers: { cookie: eng.cookie! } });
        assert.equal(res.status, 200, `${format} from ${r.url}`);
        digests.add(createHash('sha256').update(Buffer.from(await res.arrayBuffer())).digest('hex'));
      }
      assert.equal(digests.size, 1, `${format}: the same bytes from all three relays`);
    }
    const { profile } = await storedProfile(others[0]!, engB, rec.id);
    assert.equal(sampleLoss(profile, end).lost, 0, 'no sample lost between the agent and the store');

    // Routing is visible per relay.
    const routed = await Promise.all(c.relays.map((r) => metric(r, 'periscope_agent_messages_routed_total')));
    assert.ok(routed.reduce((a, b) => a + b, 0) > 0, 'requests were routed between relays');
    const health = (await (await fetch(`${others[0]!.url}/healthz`)).json()) as { status: string; database: { engine: string; reachable: boolean }; redis: { reachable: boolean } };
    assert.equal(health.status, 'ok');
    assert.deepEqual([health.database.engine, health.database.reachable, health.redis.reachable], ['postgres', true, true]);
  });

  test('the relay holding the agent is killed mid-record: the agent resumes on another relay, 0 samples lost, viewers elsewhere keep receiving', async (t) => {
    const { eng, agent, agentId } = await joined(t);
    const home = await holder();
    const survivor = c.relays.find((r) => r !== home)!;
    const engS = onRelay(eng, survivor);
    const ui = await connectUi(survivor, engS);
    t.after(() => ui.close());
    const rec = await startCapture(engS, agentId, { kind: 'record', pid: target.pid, rate: 100, duration: 8 });
    ui.send({ type: 'watch_capture', captureId: rec.id });
    const before = await ui.nextOfType('capture_chunk', 15_000, (m) => m.captureId === rec.id && m.seq >= 1);
    await home.kill();
    // The agent finds a living relay through nginx and resumes; the viewer on the survivor keeps getting chunks.
    const afterKill = await ui.nextOfType('capture_chunk', 30_000, (m) => m.captureId === rec.id && m.seq > before.seq + 1);
    assert.ok(afterKill.seq > before.seq);
    const done = await waitCapture(engS, rec.id, 45_000);
    assert.equal(done.status, 'complete', `${JSON.stringify(done)}\n${agent.output}`);
    const end = await agent.waitEnd(rec.id);
    const { profile } = await storedProfile(survivor, engS, rec.id);
    assert.equal(sampleLoss(profile, end).lost, 0, `no sample lost across the relay's death:\n${agent.output}`);
    assert.equal(done.chunks, end.chunks);
    // The survivors say so in their JSON logs (PERISCOPE_LOG_FORMAT=json): one object per event, naming the relay.
    const events = () =>
      survivor
        .output()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { relay?: string; msg?: string; level?: number });
    const gone = await eventually(() => events().find((e) => e.msg?.includes('has not been heard from')), 20_000, "a survivor's log line about the dead relay");
    assert.equal(typeof gone.relay, 'string');
    assert.ok(!survivor.output().includes(c.pg.url) && !survivor.output().includes('pw-Secret'), 'no database password in any log line');
    // A new relay takes the dead one's place (same port is not needed: nginx skips the dead upstream).
    const replacement = await startRelay({ env: relayEnv() });
    c.relays[c.relays.indexOf(home)] = replacement;
  });

  test('PostgreSQL and then Redis restart during a record: the relays recover without restarting; nothing stored is lost', async (t) => {
    const { eng, agent, agentId } = await joined(t);
    const home = await holder();
    const other = c.relays.find((r) => r !== home && r.pid !== undefined)!;
    const engO = onRelay(eng, other);
    const rec = await startCapture(engO, agentId, { kind: 'record', pid: target.pid, rate: 100, duration: 14 });
    await eventually(async () => (await getCapture(engO, rec.id)).chunks >= 2, 15_000, 'the first chunks');
    await c.pg.restart();
    await eventually(async () => (await fetch(`${home.url}/healthz`)).status === 200, 20_000, 'the holding relay to reach PostgreSQL again');
    await c.redis.restart();
    await eventually(async () => ((await (await fetch(`${other.url}/healthz`)).json()) as { redis: { reachable: boolean } }).redis.reachable, 20_000, 'Redis again');
    const done = await waitCapture(engO, rec.id, 60_000);
    assert.equal(done.status, 'complete', `${JSON.stringify(done)}\n${agent.output}`);
    const end = await agent.waitEnd(rec.id);
    const { profile } = await storedProfile(other, engO, rec.id);
    const loss = sampleLoss(profile, end);
    assert.equal(loss.lost, 0, `stored ${loss.stored} of ${loss.taken} samples:\n${agent.output}`);
    // Every relay is still the same process, serving.
    for (const r of c.relays) assert.equal((await fetch(`${r.url}/healthz`)).status, 200);
    // Nobody's sign-in was lost either.
    await sleep(0);
    assert.equal((await onRelay(eng, other).get('/api/me')).status, 200);
  });
});
