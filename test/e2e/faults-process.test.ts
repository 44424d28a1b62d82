// Faults at the ends of the line, with a real relay, a real agent and a real target:
//
//   c. the agent is killed (SIGKILL) mid-record: after the grace period
//      (PERISCOPE_CAPTURE_GRACE_SECONDS=2 here) the capture is `incomplete`
//      (AGENT_DISCONNECTED) and what arrived still downloads;
//   c2. the customer presses Ctrl-C mid-record: the agent ends the capture,
//      delivers what it sampled and exits 0; the capture is `complete`, 0 lost;
//   d. the target exits mid-record: the capture ends `target_exited`, its
//      samples download, and none was lost (the agent survives);
//   e. a viewer that never reads (its socket paused) and keeps asking the
//      relay for a stored capture again and again, while a 1 kHz top runs
//      with another, normal viewer: the agent and the normal viewer are
//      unaffected (every chunk, in order, in time; 0 samples lost), and the
//      relay's memory stays bounded (VmRSS from /proc/PID/status over time).
//
// Lost samples are counted as in faults-network.test.ts (harness.ts
// sampleLoss): taken by the agent's sampler (printed on its terminal) minus
// sampling instants in the relay's store. When the agent itself is killed
// (c) it never prints its count, so the loss is estimated from the time
// between the last stored sample and the kill.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { UiCaptureChunk } from '../../shared/protocol.ts';
import { leafCounts, parseRaw } from '../helpers/record.ts';
import { connectUi, eventually, metric, sleep } from '../helpers/relay.ts';
import {
  download,
  largestGapMs,
  log,
  ownByFunction,
  rssKiB,
  sampleLoss,
  setup,
  startCapture,
  storedProfile,
  topByOwn,
  waitCapture,
} from './harness.ts';

const RATE = 100;
/**
 * No two consecutive sampling instants further apart than this. The sampler
 * skips (and counts as late) the slots it could not keep on a loaded machine
 * -- gaps of 100-600 ms happen on 2 CPUs running several of these tests --
 * while a sampler that stopped, or samples lost with a chunk, leave holes of
 * seconds (the outages in these tests last 2-10 s).
 */
const MAX_GAP_MS = 1000;

test('c. the agent SIGKILLed mid-record: incomplete after the grace period, what arrived downloads', { timeout: 60_000 }, async (t) => {
  const GRACE_S = 2;
  const s = await setup(t, { relayEnv: { PERISCOPE_CAPTURE_GRACE_SECONDS: String(GRACE_S) } });
  const rec = await startCapture(s.eng, s.agentId, { kind: 'record', pid: s.target.pid, rate: RATE, duration: 30 });
  await waitCapture(s.eng, rec.id, 10_000, (c) => c.chunks >= 6);

  const killedAt = Date.now();
  s.agent.signal('SIGKILL');
  const exit = await s.agent.exit();
  assert.equal(exit.signal, 'SIGKILL');
  // Still running during the grace period: the agent might come back.
  await sleep(500);
  const during = (await s.eng.get(`/api/captures/${rec.id}`)).json as { status: string };
  assert.equal(during.status, 'running', 'the capture waits for the agent during the grace period');

  const done = await waitCapture(s.eng, rec.id, 15_000);
  const endedAfterMs = Date.parse(done.endedAt!) - killedAt;
  assert.equal(done.status, 'incomplete');
  assert.equal(done.error?.code, 'AGENT_DISCONNECTED');
  assert.match(done.error!.message, /did not resume the capture within 2 s; what arrived before is kept/);
  assert.ok(endedAfterMs >= GRACE_S * 1000 - 100 && endedAfterMs < GRACE_S * 1000 + 5000, `ended ${endedAfterMs} ms after the kill (grace ${GRACE_S} s)`);
  const agentView = (await s.eng.get(`/api/agents/${s.agentId}`)).json as { online: boolean };
  assert.equal(agentView.online, false);

  // What arrived downloads, in every format, and is the same as what is stored.
  const raw = await download(s.eng, rec.id, 'format=raw');
  assert.equal(raw.status, 200, raw.body);
  const rawLeaf = leafCounts(parseRaw(raw.body));
  assert.equal(topByOwn(rawLeaf)[0]?.[0], s.truth.hot);
  for (const format of ['flamegraph', 'speedscope', 'chrometrace']) {
    const res = await download(s.eng, rec.id, `format=${format}`);
    assert.equal(res.status, 200, `${format}: ${res.body.slice(0, 200)}`);
    assert.ok(res.body.includes(s.truth.hot), `${format} shows ${s.truth.hot}`);
  }
  const { profile } = await storedProfile(s.relay, s.eng, rec.id);
  assert.equal(profile.samples.stack.length, done.samples);
  const gap = largestGapMs(profile);
  // The agent died with its unsent tail: at most the last chunk interval or so.
  const instants = [...new Set(profile.samples.timeUs)].sort((a, b) => a - b);
  const lastMs = (profile.capture.startTimeUs + instants.at(-1)!) / 1000;
  const tailMs = killedAt - lastMs;
  log(
    `c. agent SIGKILL: capture ${done.status} (${done.error?.code}) ${endedAfterMs} ms after the kill; ${instants.length} samples stored in ${done.chunks} chunks; ` +
      `LOST (estimated, the agent died with them): ~${Math.max(0, Math.round((tailMs / 1000) * RATE))} samples of the last ${Math.round(tailMs)} ms before the kill; largest gap ${gap.gapMs.toFixed(1)} ms`,
  );
  assert.ok(gap.gapMs <= MAX_GAP_MS, `no hole in what arrived: largest gap ${gap.gapMs} ms`);
  assert.ok(tailMs < 2000, `only the unsent tail is missing: the last stored sample is ${tailMs} ms before the kill`);
  assert.equal((await fetch(`${s.relay.url}/healthz`)).status, 200);
});

test('c2. the customer presses Ctrl-C mid-record: the capture ends “ended by the customer” with everything sampled, the agent exits 0', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  const rec = await startCapture(s.eng, s.agentId, { kind: 'record', pid: s.target.pid, rate: RATE, duration: 30 });
  await waitCapture(s.eng, rec.id, 10_000, (c) => c.chunks >= 4);
  const at = Date.now();
  s.agent.signal('SIGINT');
  const exit = await s.agent.exit();
  const exitMs = Date.now() - at;
  assert.equal(exit.code, 0, s.agent.output);
  assert.match(s.agent.output, /Ctrl-C: stopping 1 capture and disconnecting[\s\S]*disconnected; no capture is running/);
  const done = await waitCapture(s.eng, rec.id, 10_000);
  // Cut short by the customer, not completed, and it says so (the agent told the relay: capture_ended byCustomer, close 4009).
  assert.equal(done.status, 'incomplete', JSON.stringify(done));
  assert.equal(done.endReason, 'customer_ended');
  assert.equal(done.error?.code, 'ENDED_BY_CUSTOMER');
  const end = s.agent.endOf(rec.id);
  assert.ok(end, `the agent printed the capture's end:\n${s.agent.output}`);
  const { profile } = await storedProfile(s.relay, s.eng, rec.id);
  const loss = sampleLoss(profile, end);
  log(`c2. Ctrl-C: agent exited 0 after ${exitMs} ms; capture ${done.status}; taken ${loss.taken}, stored ${loss.stored}, LOST ${loss.lost}`);
  assert.equal(loss.lost, 0, 'everything sampled was delivered before the agent exited');
  assert.equal(done.chunks, end.chunks);
  const agent = (await s.eng.get(`/api/agents/${s.agentId}`)).json as { online: boolean; ended?: string };
  assert.equal(agent.online, false);
  assert.equal(agent.ended, 'customer', 'the relay records the agent as ended by the customer, not lost');
});

test('d. the target exits mid-record: target_exited, the samples download, 0 lost', { timeout: 60_000 }, async (t) => {
  const s = await setup(t);
  const rec = await startCapture(s.eng, s.agentId, { kind: 'record', pid: s.target.pid, rate: RATE, duration: 30 });
  await waitCapture(s.eng, rec.id, 10_000, (c) => c.chunks >= 6);

  // Ctrl-C in the target: KeyboardInterrupt in its main thread, the
  // interpreter finalizes and the process exits on its own.
  const exitAt = Date.now();
  process.kill(s.target.pid, 'SIGINT');
  await Promise.race([s.target.waitExit(), sleep(10_000)]);
  assert.ok(s.target.exited, 'the target exited');

  const done = await waitCapture(s.eng, rec.id, 15_000);
  assert.equal(done.status, 'target_exited', JSON.stringify(done));
  assert.equal(done.endReason, 'target_exited');
  const end = await s.agent.waitEnd(rec.id);
  assert.equal(end.why, 'the process exited');
  const raw = await download(s.eng, rec.id, 'format=raw');
  assert.equal(raw.status, 200, raw.body);
  assert.equal(topByOwn(leafCounts(parseRaw(raw.body)))[0]?.[0], s.truth.hot, 'the download has the samples, hot_function on top');
  const { profile } = await storedProfile(s.relay, s.eng, rec.id);
  const loss = sampleLoss(profile, end);
  const gap = largestGapMs(profile);
  log(
    `d. target exited ${Date.parse(done.endedAt!) - exitAt} ms before the capture ended: ` +
      `taken ${loss.taken}, stored ${loss.stored} (${loss.rows} rows, ${done.chunks} chunks), LOST ${loss.lost}; largest gap ${gap.gapMs.toFixed(1)} ms`,
  );
  assert.equal(loss.lost, 0, 'no sample lost');
  assert.equal(done.chunks, end.chunks);
  assert.ok(gap.gapMs <= MAX_GAP_MS, `largest gap ${gap.gapMs} ms`);
  // The agent is unharmed: still connected, and it says so on its terminal.
  const agentView = (await s.eng.get(`/api/agents/${s.agentId}`)).json as { online: boolean };
  assert.equal(agentView.online, true);
  assert.equal(s.agent.child.exitCode, null);
});

test('e. a viewer that never reads, during a 1 kHz top with a normal viewer: agent and normal viewer unaffected, relay memory bounded', { timeout: 150_000 }, async (t) => {
  const FAST = 1000;
  const s = await setup(t);
  const pid = s.relay.pid;

  // Something sizeable in the store for the stalled viewer to ask for again and again.
  const big = await startCapture(s.eng, s.agentId, { kind: 'record', pid: s.target.pid, rate: FAST, duration: 4 });
  const bigDone = await waitCapture(s.eng, big.id, 20_000);
  assert.equal(bigDone.status, 'complete');
  const bigBytes = statSync(join(s.relay.dataDir, 'captures', `${big.id}.chunks`)).size;

  const top = await startCapture(s.eng, s.agentId, { kind: 'top', pid: s.target.pid, rate: FAST });
  const normal = await connectUi(s.relay, s.eng);
  const stalled = await connectUi(s.relay, s.eng);
  normal.send({ type: 'watch_capture', captureId: top.id });
  stalled.send({ type: 'watch_capture', captureId: top.id });
  await normal.nextOfType('capture_state', 5000, (m) => m.captureId === top.id);
  // The stalled browser stops reading its socket (it still writes).
  (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();

  // Arrival time of every chunk at the normal viewer.
  const arrivals: { seq: number; at: number }[] = [];
  normal.ws.on('message', () => {
    const last = normal.received.at(-1);
    if (last?.type === 'capture_chunk' && last.captureId === top.id) arrivals.push({ seq: last.seq, at: Date.now() });
  });

  await sleep(500);
  const baseline = rssKiB(pid);
  const droppedBefore = await metric(s.relay, 'periscope_viewer_frames_dropped_total');
  const rss: number[] = [];
  const health: number[] = [];
  let asked = 0;
  // The stalled viewer must ask for far more than the relay's per-viewer
  // bound; how big the stored recording is depends on how many samples a busy
  // machine took, so the loop runs at least STALL_MS and until the demand is
  // met (capped, so a broken relay cannot hang the test).
  const STALL_MS = 8000;
  const DEMAND_MIB = 4 * 64;
  const until = Date.now() + STALL_MS;
  const cap = Date.now() + 5 * STALL_MS;
  while ((Date.now() < until || (asked * bigBytes) / 1024 / 1024 <= DEMAND_MIB) && Date.now() < cap) {
    // Every round: ask for the whole stored recording again (and the live top from seq 0).
    for (let i = 0; i < 60; i++) {
      stalled.send({ type: 'watch_capture', captureId: big.id });
      asked++;
    }
    stalled.send({ type: 'watch_capture', captureId: top.id });
    const h0 = Date.now();
    assert.equal((await fetch(`${s.relay.url}/healthz`)).status, 200);
    health.push(Date.now() - h0);
    rss.push(rssKiB(pid));
    await sleep(200);
  }
  const stalledMs = Date.now() - (until - STALL_MS);
  const stop = await s.eng.post(`/api/captures/${top.id}/stop`);
  assert.equal(stop.status, 200, stop.text);
  const stoppedAt = Date.now();
  await normal.nextOfType('capture_state', 10_000, (m) => m.captureId === top.id && m.status === 'complete');
  const finalAt = Date.now();
  const done = await waitCapture(s.eng, top.id, 10_000);
  assert.equal(done.status, 'complete');
  const end = await s.agent.waitEnd(top.id);

  // The normal viewer: every chunk, in order, no reset, none late.
  const seqs = normal.received.filter((m): m is UiCaptureChunk => m.type === 'capture_chunk' && m.captureId === top.id).map((m) => m.seq);
  assert.deepEqual(seqs, Array.from({ length: done.chunks }, (_, i) => i), 'the normal viewer got every chunk in order');
  assert.equal(normal.received.filter((m) => m.type === 'capture_reset').length, 0, 'the normal viewer was never reset');
  let worstGap = 0;
  for (let i = 1; i < arrivals.length; i++) worstGap = Math.max(worstGap, arrivals[i]!.at - arrivals[i - 1]!.at);
  assert.ok(worstGap < 1500, `chunks (cut every 250 ms) reached the normal viewer without stalls: worst gap ${worstGap} ms`);

  // The agent: unaffected, nothing lost.
  const { profile } = await storedProfile(s.relay, s.eng, top.id);
  const loss = sampleLoss(profile, end);
  const gap = largestGapMs(profile);

  // The relay: memory bounded although the stalled viewer asked for far more than that.
  const peak = Math.max(...rss);
  const growthMiB = (peak - baseline) / 1024;
  const askedMiB = (asked * bigBytes) / 1024 / 1024;
  const dropped = (await metric(s.relay, 'periscope_viewer_frames_dropped_total')) - droppedBefore;
  log(
    `e. stalled viewer asked ${asked} times for ${(bigBytes / 1024).toFixed(0)} KiB (${askedMiB.toFixed(0)} MiB in all) over ${stalledMs} ms during a ${FAST} Hz top: ` +
      `relay RSS baseline ${(baseline / 1024).toFixed(1)} MiB, peak ${(peak / 1024).toFixed(1)} MiB (+${growthMiB.toFixed(1)}), samples ${JSON.stringify(rss.filter((_, i) => i % 8 === 0).map((k) => Math.round(k / 1024)))} MiB; ` +
      `viewer frames dropped ${dropped}; /healthz worst ${Math.max(...health)} ms; normal viewer: ${seqs.length} chunks, worst gap ${worstGap} ms, final state ${finalAt - stoppedAt} ms after stop; ` +
      `taken ${loss.taken}, stored ${loss.stored}, LOST ${loss.lost}; largest sampling gap ${gap.gapMs.toFixed(1)} ms`,
  );
  assert.equal(loss.lost, 0, 'no sample lost');
  assert.equal(done.chunks, end.chunks);
  // (Sampling gaps are reported, not asserted, here: at 1 kHz on 2 busy CPUs
  // they measure the machine's load, and the relay has no way to slow the
  // sampler anyway. What the relay could disturb -- delivery -- is checked by
  // the loss count above and the normal viewer's chunk cadence.)
  assert.equal(topByOwn(ownByFunction(profile))[0]?.[0], s.truth.hot);
  assert.ok(askedMiB > DEMAND_MIB, `the test asks for far more than the bound (${askedMiB.toFixed(0)} MiB)`);
  assert.ok(growthMiB < 64, `relay RSS grew by ${growthMiB.toFixed(1)} MiB only`);
  assert.ok(Math.max(...health) < 2000, 'the relay answers /healthz promptly throughout');
  stalled.ws.terminate();
  normal.close();
  await eventually(async () => (await metric(s.relay, 'periscope_viewers')) === 0, 5000, 'both viewers to be gone');
});
