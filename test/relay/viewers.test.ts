// Browsers on /ws/ui: session presence, watching captures (snapshot, then live),
// dumps, and a slow viewer that is dropped and resynced without slowing the
// agent or the other viewers. All of it twice: on one embedded relay, and with
// the agent on one relay and the browsers on another (PostgreSQL and Redis
// between them), where every chunk, state and presence change crosses Redis.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProfileBuilder, applyChunk, emptyProfile, profileFromChunks } from '../../shared/profile/index.ts';
import type { ProfileChunk } from '../../shared/profile/chunk.ts';
import type { UiCaptureChunk } from '../../shared/protocol.ts';
import { exportRaw } from '../../shared/export/index.ts';
import {
  Client,
  adminClient,
  connectUi,
  joinedAgent,
  metric,
  removeDataDir,
  startCapture,
  startRelay,
  userClient,
  type RelayProcess,
} from '../helpers/relay.ts';
import { buildChunks, STATS } from './helpers.ts';
import { postgresUnavailable, startPostgres, type PostgresServer } from '../helpers/postgres.ts';
import { findProgram, startRedis, type RedisServer } from '../helpers/redis.ts';
import { encodeChunk } from '../../shared/protocol.ts';

/** Where the agent connects and where the browsers do: one relay, or two of a cluster. */
interface Sides {
  agentSide: RelayProcess;
  uiSide: RelayProcess;
  stop(): Promise<void>;
}

async function oneRelay(): Promise<Sides> {
  const relay = await startRelay();
  return {
    agentSide: relay,
    uiSide: relay,
    async stop() {
      await relay.stop();
      removeDataDir(relay.dataDir);
    },
  };
}

async function twoRelays(): Promise<Sides> {
  const pg: PostgresServer = await startPostgres();
  const redis: RedisServer = await startRedis();
  const env = { PERISCOPE_DATABASE_URL: pg.url, PERISCOPE_REDIS_URL: redis.url };
  const a = await startRelay({ env });
  const b = await startRelay({ env });
  return {
    agentSide: a,
    uiSide: b,
    async stop() {
      for (const r of [a, b]) {
        await r.stop();
        removeDataDir(r.dataDir);
      }
      await redis.stop();
      await pg.dispose();
    },
  };
}

function clusterMissing(): string | false {
  const why = postgresUnavailable() ?? (findProgram('redis-server') ? undefined : "redis-server is not installed (Debian's redis-server; .ci/run installs it)");
  if (!why) return false;
  console.log(`# skipped: viewers across relays: ${why}`);
  return why;
}

/** Chunks of about `bytes` each (one sample whose frame name is a fresh long string). */
function bigChunks(count: number, bytes: number): ProfileChunk[] {
  const b = new ProfileBuilder({ commandLine: 'python3 big.py', rateHz: 100 });
  const t = b.thread(1, 1, 'MainThread');
  const out: ProfileChunk[] = [];
  for (let i = 0; i < count; i++) {
    const name = `f${i}_${'x'.repeat(bytes)}`;
    b.addSample({ thread: t, timeUs: i * 10_000, framesLeafFirst: [{ name, file: 'big.py', line: i + 1 }] });
    out.push(b.takeChunk());
  }
  return out;
}

for (const [mode, start, skip] of [
  ['one relay', oneRelay, false],
  ['agent on one relay, browsers on another', twoRelays, clusterMissing()],
] as const) {
  describe(mode, { skip }, () => {
    let sides: Sides;
    let agentSide: RelayProcess;
    let uiSide: RelayProcess;
    let admin: Client;
    let carol: Client;

    before(async () => {
      sides = await start();
      ({ agentSide, uiSide } = sides);
      admin = await adminClient(uiSide);
      carol = await userClient(uiSide, admin, 'carol');
    });

    after(async () => {
      await sides?.stop();
    });

    describe('session presence', () => {
      test('subscribe_session sends the state now, then each change (processes, presence) as an update', async () => {
        const { session, agent, welcome } = await joinedAgent(agentSide, carol);
        const ui = await connectUi(uiSide, carol);
        ui.send({ type: 'subscribe_session', sessionId: session.id });
        const first = await ui.nextOfType('session_state');
        assert.equal(first.sessionId, session.id);
        assert.deepEqual(first.agents, [{ id: welcome.agentId, host: 'test-host', containerId: 'c0ffee', arch: 'x64', agentVersion: '0.1.0-test', online: true, processes: [] }]);
        assert.equal(await metric(uiSide, 'periscope_viewers'), 1);

        agent.send({ type: 'processes', processes: [{ pid: 10, cmdline: 'python3 -m celery worker', version: '3.10.4', user: 'celery', threads: 9 }] });
        const withProcs = await ui.nextOfType('session_agents');
        assert.equal(withProcs.sessionId, session.id);
        assert.deepEqual(withProcs.removed, []);
        assert.equal(withProcs.agents[0].id, welcome.agentId);
        assert.equal(withProcs.agents[0].processes[0].cmdline, 'python3 -m celery worker');

        agent.close();
        const gone = await ui.nextOfType('session_agents', 5000, (m) => m.agents.some((a) => a.id === welcome.agentId && !a.online));
        assert.equal(gone.agents.length, 1);
        // Updates only: the whole state is not sent again.
        assert.equal(ui.received.filter((m) => m.type === 'session_state').length, 0);
        ui.close();
      });

      test('signing out closes that browser\'s sockets', async () => {
        const c = new Client(uiSide);
        await c.login('carol', 'carol-password-123');
        // The socket on the agent's relay, the sign-out on the viewers': with several relays, it closes everywhere.
        const ui = await connectUi(agentSide, c);
        await c.post('/api/logout');
        assert.equal((await ui.closed).code, 4001);
      });
    });

    describe('watching a capture', () => {
      test('capture_state, then every stored chunk in seq order, then live chunks and state changes', async () => {
        const { agent, welcome } = await joinedAgent(agentSide, carol);
        const { captureId } = await startCapture(carol, agent, welcome.agentId, { kind: 'top', pid: 4242 });
        const chunks = buildChunks(4);
        for (let seq = 0; seq < 2; seq++) agent.send({ type: 'chunk', captureId, seq, chunk: encodeChunk(chunks[seq]), stats: { ...STATS, ticks: seq + 1 } });
        await agent.nextOfType('ack', 5000, (m) => m.nextSeq === 2);

        const ui = await connectUi(uiSide, carol);
        ui.send({ type: 'watch_capture', captureId });
        const state = await ui.nextOfType('capture_state');
        assert.equal(state.status, 'running');
        assert.equal(state.stats.samples, 10);
        assert.equal(state.stats.ticks, 2);
        const profile = emptyProfile();
        for (let seq = 0; seq < 2; seq++) {
          const m = await ui.nextOfType('capture_chunk');
          assert.equal(m.seq, seq);
          applyChunk(profile, m.chunk);
        }
        for (let seq = 2; seq < 4; seq++) agent.send({ type: 'chunk', captureId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
        for (let seq = 2; seq < 4; seq++) {
          const m = await ui.nextOfType('capture_chunk');
          assert.equal(m.seq, seq);
          applyChunk(profile, m.chunk);
        }
        assert.equal(exportRaw(profile), exportRaw(profileFromChunks(chunks)), 'the viewer rebuilt exactly the capture');
        const live = await ui.nextOfType('capture_state', 5000, (m) => m.stats.samples === 20);
        assert.equal(live.status, 'running');
        agent.send({ type: 'capture_ended', captureId, reason: 'stopped', chunks: 4 });
        const done = await ui.nextOfType('capture_state', 5000, (m) => m.status === 'complete');
        assert.equal(done.stats.samples, 20);

        // A late viewer gets the whole finished capture.
        const late = await connectUi(uiSide, carol);
        late.send({ type: 'watch_capture', captureId });
        assert.equal((await late.nextOfType('capture_state')).status, 'complete');
        for (let seq = 0; seq < 4; seq++) assert.equal((await late.nextOfType('capture_chunk')).seq, seq);
        ui.close();
        late.close();
        agent.close();
      });

      test('a dump sends its result to watchers', async () => {
        const { agent, welcome } = await joinedAgent(agentSide, carol);
        const { captureId } = await startCapture(carol, agent, welcome.agentId, { kind: 'dump', pid: 1 });
        const ui = await connectUi(uiSide, carol);
        ui.send({ type: 'watch_capture', captureId });
        assert.equal((await ui.nextOfType('capture_state')).status, 'starting');
        const threads = [{ pid: 1, thread_id: 7, os_thread_id: 1, thread_name: 'MainThread', active: false, owns_gil: false, truncated: true, frames: [] }];
        agent.send({ type: 'dump_result', captureId, threads });
        const result = await ui.nextOfType('dump_result');
        assert.deepEqual(result.threads, threads);
        const late = await connectUi(uiSide, carol);
        late.send({ type: 'watch_capture', captureId });
        assert.equal((await late.nextOfType('capture_state')).status, 'complete');
        assert.equal((await late.nextOfType('dump_result')).captureId, captureId);
        ui.close();
        late.close();
        agent.close();
      });

      test('unwatch_capture stops the stream', async () => {
        const { agent, welcome } = await joinedAgent(agentSide, carol);
        const { captureId } = await startCapture(carol, agent, welcome.agentId, { kind: 'top', pid: 1 });
        const ui = await connectUi(uiSide, carol);
        ui.send({ type: 'watch_capture', captureId });
        await ui.nextOfType('capture_state');
        ui.send({ type: 'unwatch_capture', captureId });
        await new Promise((r) => setTimeout(r, 100));
        agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(buildChunks(1)[0]), stats: STATS });
        await agent.nextOfType('ack');
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(ui.received.filter((m) => m.type === 'capture_chunk').length, 0);
        ui.close();
        agent.close();
      });
    });

    describe('a slow viewer', () => {
      test('is dropped and resynced from the store; the agent and other viewers are not slowed', { timeout: 60_000 }, async () => {
        const COUNT = 40;
        const chunks = bigChunks(COUNT, 1024 * 1024);
        const { agent, welcome } = await joinedAgent(agentSide, carol);
        const { captureId } = await startCapture(carol, agent, welcome.agentId, { kind: 'top', pid: 1 });

        const slow = await connectUi(uiSide, carol);
        const fast = await connectUi(uiSide, carol);
        for (const ui of [slow, fast]) {
          ui.send({ type: 'watch_capture', captureId });
          await ui.nextOfType('capture_state');
        }
        // The slow browser stops reading from its socket.
        const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
        socket.pause();
        const droppedBefore = await metric(uiSide, 'periscope_viewer_frames_dropped_total');

        const started = Date.now();
        for (let seq = 0; seq < COUNT; seq++) {
          agent.send({ type: 'chunk', captureId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
          // One chunk in flight at a time, like an agent waiting for acks: any stall would show here.
          await agent.nextOfType('ack', 10_000, (m) => m.nextSeq === seq + 1);
        }
        const ingestMs = Date.now() - started;

        // The fast viewer got everything, in order, without a reset.
        for (let seq = 0; seq < COUNT; seq++) assert.equal((await fast.nextOfType('capture_chunk', 10_000)).seq, seq);
        assert.equal(fast.received.filter((m) => m.type === 'capture_reset').length, 0);

        const dropped = (await metric(uiSide, 'periscope_viewer_frames_dropped_total')) - droppedBefore;
        assert.ok(dropped > 0, 'the slow viewer\'s queue was dropped');
        assert.ok(ingestMs < 20_000, `ingest of ${COUNT} MiB took ${ingestMs} ms`);

        // Once it reads again it gets a capture_reset and then the full capture from the store.
        socket.resume();
        const deadline = Date.now() + 30_000;
        let seqs: number[] = [];
        for (;;) {
          const lastReset = slow.received.map((m) => m.type).lastIndexOf('capture_reset');
          if (lastReset === -1 && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          seqs = slow.received.slice(lastReset + 1).filter((m): m is UiCaptureChunk => m.type === 'capture_chunk').map((m) => m.seq);
          if (seqs.length >= COUNT || Date.now() > deadline) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(slow.received.some((m) => m.type === 'capture_reset'), 'the slow viewer was told to reset');
        assert.deepEqual(seqs, Array.from({ length: COUNT }, (_, i) => i), 'after the reset: every chunk from seq 0, in order');
        assert.deepEqual(slow.parseErrors, []);
        slow.close();
        fast.close();
        agent.close();
      });
    });
  });
}
