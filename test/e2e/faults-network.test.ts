// Faults between a real agent and a real relay while a real recording runs:
//
//   a. the relay is killed (SIGKILL) mid-record and started again on the same
//      data dir and port: the agent reconnects with its credential (as the
//      same agent), resends from the relay's nextSeq, and the capture ends
//      complete with 0 samples lost;
//   b. the line is cut and held down for 10 s by a TCP proxy between agent and
//      relay: 0 samples lost, and the agent kept sampling while disconnected;
//   a2. the relay restarted cleanly (SIGTERM: agents are told 4007 Restarting)
//      mid-record, as in a deploy: same outcome as a.
//
// "Lost" is measured exactly (see sampleLoss in harness.ts): the agent's
// sampler counts the samples it took and prints the count when the capture
// ends; the relay's store, read back over /ws/ui and rebuilt with applyChunk,
// holds one sampling instant per sample that reached it. lost = taken -
// stored. On top of that the stored instants must have no gap longer than
// MAX_GAP_MS anywhere (in particular across the outage), and the outage
// window itself must be full of samples.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually, sleep, startRelay } from '../helpers/relay.ts';
import {
  getCapture,
  largestGapMs,
  log,
  sampleLoss,
  samplesBetween,
  setup,
  startCapture,
  storedProfile,
  TcpProxy,
  waitCapture,
} from './harness.ts';

const RATE = 100;
/**
 * No two consecutive sampling instants further apart than this. On a loaded
 * machine the sampler skips (and counts as late) slots it cannot keep, which
 * leaves gaps of 100-600 ms; a sampler that stopped while disconnected, or
 * chunks lost on the way, leave a hole as long as the outage (2-10 s here).
 */
const MAX_GAP_MS = 1000;

test('a. relay SIGKILLed mid-record and restarted on the same data dir and port: the agent resumes from nextSeq, 0 samples lost', { timeout: 90_000 }, async (t) => {
  const s = await setup(t);
  const port = new URL(s.relay.url).port;
  const rec = await startCapture(s.eng, s.agentId, { kind: 'record', pid: s.target.pid, rate: RATE, duration: 8 });
  await waitCapture(s.eng, rec.id, 10_000, (c) => c.chunks >= 4);

  // Crash: no shutdown, no close frames, no fsync at the end.
  const killedAt = Date.now();
  await s.relay.kill();
  const before = (s.agent.output.match(/connected to \S+ as agent/g) ?? []).length;
  await s.agent.waitFor(/connection to \S+ lost/, 10_000, 'that the connection was lost');
  await sleep(1500); // the agent samples on, disconnected
  const relay2 = await startRelay({ dataDir: s.relay.dataDir, env: { PORT: port, PERISCOPE_HEARTBEAT_SECONDS: '5' } });
  s.relays.push(relay2);
  const restartedAt = Date.now();
  assert.equal(relay2.url, s.relay.url, 'the same port');
  assert.ok(!relay2.output().includes('admin password'), 'the accounts survived: no first-start password');

  // The agent comes back as the same agent (credential, not the join token) and resends.
  await eventually(() => (s.agent.output.match(/connected to \S+ as agent/g) ?? []).length > before, 30_000, 'the agent to reconnect');
  const reconnectedAt = Date.now();
  assert.match(s.agent.output, new RegExp(`connected to \\S+ as agent ${s.agentId} in session ${s.session.id}[\\s\\S]*connected to \\S+ as agent ${s.agentId} in session`));
  const agents = (await s.eng.get(`/api/sessions/${s.session.id}/agents`)).json.agents as { id: string }[];
  assert.deepEqual(agents.map((a) => a.id), [s.agentId], 'no second agent was registered');

  const done = await waitCapture(s.eng, rec.id, 30_000);
  assert.equal(done.status, 'complete', JSON.stringify(done));
  const end = await s.agent.waitEnd(rec.id);
  const { profile } = await storedProfile(relay2, s.eng, rec.id);
  const loss = sampleLoss(profile, end);
  const gap = largestGapMs(profile);
  const outage = samplesBetween(profile, killedAt, reconnectedAt);
  const resent = /resending (\d+) chunks of capture \S+ from chunk (\d+)/.exec(s.agent.output);
  log(
    `a. relay SIGKILL: down ${restartedAt - killedAt} ms, agent back after ${reconnectedAt - killedAt} ms; ` +
      `${resent ? `agent resent ${resent[1]} chunks from seq ${resent[2]}` : 'nothing to resend'}; ` +
      `taken ${loss.taken}, stored ${loss.stored} (${done.chunks} chunks), LOST ${loss.lost}; ${outage} samples while the relay was away; largest gap ${gap.gapMs.toFixed(1)} ms`,
  );
  assert.equal(loss.lost, 0, 'no sample lost');
  assert.equal(done.chunks, end.chunks, 'every chunk the agent cut is stored');
  assert.ok(gap.gapMs <= MAX_GAP_MS, `no hole in the samples: largest gap ${gap.gapMs} ms at ${new Date(gap.atMs).toISOString()}`);
  assert.ok(outage >= ((reconnectedAt - killedAt) / 1000) * RATE * 0.3, `the agent sampled while the relay was away: ${outage} samples in ${reconnectedAt - killedAt} ms`);
  assert.equal((await fetch(`${relay2.url}/healthz`)).status, 200);
});

test('b. the connection cut and held down for 10 s by a TCP proxy: the agent samples on, reconnects, 0 samples lost', { timeout: 90_000 }, async (t) => {
  let proxy!: TcpProxy;
  const s = await setup(t, {
    agentUrl: async (relay) => {
      proxy = new TcpProxy(Number(new URL(relay.url).port));
      await proxy.listen(t);
      return proxy.url;
    },
  });
  // 8 s: the recording ends while the line is down, so its last chunks and its
  // end can only reach the relay after the reconnect.
  const rec = await startCapture(s.eng, s.agentId, { kind: 'record', pid: s.target.pid, rate: RATE, duration: 8 });
  await waitCapture(s.eng, rec.id, 10_000, (c) => c.chunks >= 4);

  const DOWN_MS = 10_000;
  const before = (s.agent.output.match(/connected to \S+ as agent/g) ?? []).length;
  const cutAt = Date.now();
  proxy.cutFor(DOWN_MS);
  await s.agent.waitFor(/connection to \S+ lost/, 5000, 'that the connection was lost');
  // While the line is down the relay keeps the capture running (grace period) and shows the agent offline.
  await eventually(async () => {
    const a = (await s.eng.get(`/api/agents/${s.agentId}`)).json as { online: boolean };
    return !a.online;
  }, 5000, 'the relay to see the agent offline');
  assert.equal((await getCapture(s.eng, rec.id)).status, 'running', 'the capture waits for the agent (grace period)');

  await eventually(() => (s.agent.output.match(/connected to \S+ as agent/g) ?? []).length > before, 45_000, 'the agent to reconnect');
  const reconnectedAt = Date.now();
  assert.ok(reconnectedAt - cutAt >= DOWN_MS, 'no connection got through while the line was down');
  assert.ok(proxy.refused > 0, 'the agent kept trying while the line was down');
  assert.match(s.agent.output, /could not connect to \S+ \([^)]*\); retrying in/);

  const done = await waitCapture(s.eng, rec.id, 45_000);
  assert.equal(done.status, 'complete', JSON.stringify(done));
  const end = await s.agent.waitEnd(rec.id);
  const { profile } = await storedProfile(s.relay, s.eng, rec.id);
  const loss = sampleLoss(profile, end);
  const gap = largestGapMs(profile);
  // Sampling instants while the line was down, until the recording's own end.
  const captureEndMs = (profile.capture.startTimeUs + profile.capture.durationUs) / 1000;
  const downMs = Math.min(cutAt + DOWN_MS, captureEndMs) - cutAt;
  const during = samplesBetween(profile, cutAt, cutAt + downMs);
  log(
    `b. line cut ${DOWN_MS} ms: agent back after ${reconnectedAt - cutAt} ms (${proxy.refused} attempts refused); ` +
      `taken ${loss.taken}, stored ${loss.stored} (${done.chunks} chunks), LOST ${loss.lost}; ${during} samples taken in the ${Math.round(downMs)} ms the capture ran disconnected (it ended ${Math.round(reconnectedAt - captureEndMs)} ms before the reconnect); largest gap ${gap.gapMs.toFixed(1)} ms`,
  );
  assert.equal(loss.lost, 0, 'no sample lost');
  assert.equal(done.chunks, end.chunks);
  assert.ok(gap.gapMs <= MAX_GAP_MS, `no hole in the samples: largest gap ${gap.gapMs} ms at ${new Date(gap.atMs).toISOString()}`);
  assert.ok(downMs > 4000 && captureEndMs < reconnectedAt, 'the recording ended while the line was down');
  assert.ok(during >= (downMs / 1000) * RATE * 0.5, `the agent kept sampling while disconnected: ${during} samples in ${downMs} ms`);
  assert.equal((await fetch(`${s.relay.url}/healthz`)).status, 200);
});

test('a2. relay restarted cleanly (SIGTERM, close 4007) mid-record, as in a deploy: the agent resumes, 0 samples lost', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  const port = new URL(s.relay.url).port;
  const rec = await startCapture(s.eng, s.agentId, { kind: 'record', pid: s.target.pid, rate: RATE, duration: 6 });
  await waitCapture(s.eng, rec.id, 10_000, (c) => c.chunks >= 4);
  const stoppedAt = Date.now();
  assert.equal(await s.relay.stop(), 0, 'the relay exits 0 on SIGTERM');
  await s.agent.waitFor(/connection to \S+ lost \(4007 relay restarting/, 5000, 'the 4007 close');
  const relay2 = await startRelay({ dataDir: s.relay.dataDir, env: { PORT: port, PERISCOPE_HEARTBEAT_SECONDS: '5' } });
  s.relays.push(relay2);
  const done = await waitCapture(s.eng, rec.id, 30_000);
  assert.equal(done.status, 'complete', JSON.stringify(done));
  const end = await s.agent.waitEnd(rec.id);
  const { profile } = await storedProfile(relay2, s.eng, rec.id);
  const loss = sampleLoss(profile, end);
  const gap = largestGapMs(profile);
  log(`a2. relay SIGTERM + restart: capture ${done.status} ${Date.parse(done.endedAt!) - stoppedAt} ms after the stop; taken ${loss.taken}, stored ${loss.stored}, LOST ${loss.lost}; largest gap ${gap.gapMs.toFixed(1)} ms`);
  assert.equal(loss.lost, 0);
  assert.equal(done.chunks, end.chunks);
  assert.ok(gap.gapMs <= MAX_GAP_MS, `largest gap ${gap.gapMs} ms`);
});
