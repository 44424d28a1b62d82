// End to end, the way an engineer and a customer use Periscope: a real relay
// process, a real agent (`bin/periscope connect` with the join token in
// PERISCOPE_TOKEN), a real Python target (top_hot.py: a worker spending ~90%
// of its time in hot_function, ~10% in cold_function, the main thread parked
// in park()), on the newest Python and on an old one (3.8 when installed).
//
//   sign in (POST /api/login, CSRF token from GET /api/me) → open a session
//   → the agent joins and offers the target → dump → a 3 s record at 100 Hz
//   with no sample lost, downloaded as flamegraph SVG, speedscope, raw and
//   chrometrace, hot_function on top in each → a live top read over /ws/ui
//   (cookie + Origin; msgpack frames parsed with shared/protocol.ts), rebuilt
//   with applyChunk: hot_function first by own samples → stop → Ctrl-C.
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { applyChunk, emptyProfile } from '../../shared/profile/index.ts';
import type { UiCaptureChunk } from '../../shared/protocol.ts';
import { newestPython, pythons, type Python } from '../helpers/pythons.ts';
import { leafCounts, parseRaw } from '../helpers/record.ts';
import { startTarget } from '../helpers/targets.ts';
import { ADMIN_PASSWORD, Client, connectUi, createSession, onlineAgent, removeDataDir, startRelay } from '../helpers/relay.ts';
import {
  AgentProcess,
  download,
  getCapture,
  log,
  ownByFunction,
  sampleLoss,
  startCapture,
  storedProfile,
  topByOwn,
  waitCapture,
} from './harness.ts';

interface HotTruth {
  version: string;
  hot: string;
  cold: string;
  idle: string;
}

interface DumpThread {
  thread_name: string | null;
  os_thread_id: number;
  frames: { name: string; filename: string; line: number }[];
}

const RATE = 100;
const DURATION_S = 3;

async function happyPath(t: TestContext, py: Python): Promise<void> {
  const t0 = Date.now();
  const target = await startTarget(py, 'top_hot.py', { t, args: ['90'] });
  const truth = await target.truth<HotTruth>();
  const relay = await startRelay({ env: { PERISCOPE_HEARTBEAT_SECONDS: '5' } });
  t.after(async () => {
    await relay.stop();
    removeDataDir(relay.dataDir);
  });

  // ---- the engineer signs in: cookie from POST /api/login, CSRF token from GET /api/me
  const eng = new Client(relay);
  const login = await eng.post('/api/login', { username: 'admin', password: ADMIN_PASSWORD });
  assert.equal(login.status, 200, login.text);
  assert.match(login.headers.get('set-cookie') ?? '', /periscope_session=.+; .*HttpOnly/i);
  const me = await eng.get('/api/me');
  assert.equal(me.status, 200);
  assert.equal(me.json.user.username, 'admin');
  eng.csrfToken = me.json.csrfToken;
  assert.ok(eng.csrfToken);

  // ---- opens a support session and hands the customer the command
  const session = await createSession(eng, `e2e happy path on ${py.label}`);
  assert.match(session.commands.env, /^PERISCOPE_TOKEN=\S+ periscope connect http/);

  // ---- the customer runs the agent, the token in the environment
  const agent = new AgentProcess(t, relay.url, session.joinToken, ['--pids', String(target.pid)]);
  const online = await onlineAgent(eng, session.id, [target.pid], () => agent.output, 20_000);
  const proc = online.processes.find((p) => p.pid === target.pid)!;
  assert.equal(proc.version, truth.version, 'the agent reads the interpreter version');
  assert.match(proc.cmdline, /top_hot\.py/);
  assert.ok(!agent.output.includes(session.joinToken.split('.')[2]!), 'the agent never prints its token');
  const tOnline = Date.now();

  // ---- dump
  const dump = await startCapture(eng, online.id, { kind: 'dump', pid: target.pid });
  const dumped = await waitCapture(eng, dump.id, 15_000, (c) => c.status === 'complete' && Array.isArray(c.result));
  const threads = dumped.result as DumpThread[];
  const names = (th: DumpThread) => th.frames.map((f) => f.name);
  const worker = threads.find((th) => th.thread_name === 'worker');
  assert.ok(worker, `a worker thread in the dump: ${JSON.stringify(threads.map((th) => th.thread_name))}`);
  assert.ok(names(worker).includes('worker'), `worker's stack: ${names(worker)}`);
  assert.ok(names(worker).some((n) => n === truth.hot || n === truth.cold), `worker is in hot/cold: ${names(worker)}`);
  const main = threads.find((th) => th.os_thread_id === target.pid);
  assert.ok(main && names(main)[0] === truth.idle && names(main).includes('main'), `main thread parked in park(): ${main && names(main)}`);
  const dumpFile = await download(eng, dump.id);
  assert.equal(dumpFile.status, 200);
  assert.match(dumpFile.disposition, new RegExp(`^attachment; filename="dump-${target.pid}-[0-9T-]+\\.json"$`));
  assert.deepEqual(JSON.parse(dumpFile.body), threads, 'the downloaded dump is the stored result');
  assert.match(agent.linesAbout(dump.id).join('\n'), /admin asked for a dump of pid \d+/, 'the customer sees who asked for the dump');
  const tDump = Date.now();

  // ---- a 3 s record at 100 Hz
  const rec = await startCapture(eng, online.id, { kind: 'record', pid: target.pid, rate: RATE, duration: DURATION_S });
  assert.equal(rec.status, 'starting');
  const recorded = await waitCapture(eng, rec.id, 20_000);
  assert.equal(recorded.status, 'complete', JSON.stringify(recorded));
  assert.equal(recorded.endReason, 'duration');
  const end = await agent.waitEnd(rec.id);
  assert.equal(end.why, 'its duration was reached');
  const { profile } = await storedProfile(relay, eng, rec.id);
  const loss = sampleLoss(profile, end);
  log(`${py.label} record ${DURATION_S} s at ${RATE} Hz (stats ${JSON.stringify(recorded.stats)}): agent took ${loss.taken} samples, relay stored ${loss.stored} (${loss.rows} rows, ${recorded.chunks} chunks): lost ${loss.lost}`);
  assert.equal(loss.lost, 0, 'no sample lost between the sampler and the store');
  assert.equal(recorded.chunks, end.chunks, 'every chunk the agent cut is stored');
  assert.equal(recorded.samples, loss.rows);
  // The sampler's clock ticks RATE times a second for DURATION_S; on a loaded
  // machine it skips (and counts as late) slots it cannot keep, so fewer samples.
  assert.ok(Math.abs(recorded.stats.ticks - RATE * DURATION_S) <= RATE * DURATION_S * 0.05, `${RATE * DURATION_S} sampling slots in ${DURATION_S} s: ${recorded.stats.ticks}`);
  assert.ok(loss.taken >= recorded.stats.ticks * 0.3 && loss.taken <= recorded.stats.ticks, `samples taken ${loss.taken} of ${recorded.stats.ticks} slots`);
  const own = topByOwn(ownByFunction(profile));
  assert.equal(own[0]?.[0], truth.hot, `hot_function has the most own samples: ${JSON.stringify(own.slice(0, 4))}`);

  // ---- downloaded in all four formats, hot_function present (and on top) in each
  const svg = await download(eng, rec.id, 'format=flamegraph');
  assert.equal(svg.status, 200);
  assert.match(svg.type, /^image\/svg\+xml/);
  assert.match(svg.disposition, /^attachment; filename="top_hot-[0-9T-]+\.svg"$/);
  assert.match(svg.body, /<svg[\s>]/);
  assert.ok(svg.body.includes(truth.hot), 'the flame graph shows hot_function');

  const speedscope = await download(eng, rec.id, 'format=speedscope');
  assert.equal(speedscope.status, 200);
  assert.match(speedscope.disposition, /\.speedscope\.json"$/);
  const ss = JSON.parse(speedscope.body) as { shared: { frames: { name: string }[] }; profiles: { samples: number[][]; weights: number[] }[] };
  const ssLeaf = new Map<string, number>();
  for (const p of ss.profiles) {
    p.samples.forEach((stack, i) => {
      if (stack.length === 0) return;
      const name = ss.shared.frames[stack.at(-1)!]!.name;
      ssLeaf.set(name, (ssLeaf.get(name) ?? 0) + p.weights[i]!);
    });
  }
  assert.equal(topByOwn(ssLeaf)[0]?.[0], truth.hot, `speedscope: hot_function has the most time: ${JSON.stringify(topByOwn(ssLeaf).slice(0, 3))}`);

  const raw = await download(eng, rec.id, 'format=raw');
  assert.equal(raw.status, 200);
  assert.match(raw.disposition, /\.txt"$/);
  const rawLeaf = leafCounts(parseRaw(raw.body));
  assert.equal(topByOwn(rawLeaf)[0]?.[0], truth.hot, `raw: hot_function has the most samples: ${JSON.stringify(topByOwn(rawLeaf).slice(0, 3))}`);

  const chrome = await download(eng, rec.id, 'format=chrometrace');
  assert.equal(chrome.status, 200);
  assert.match(chrome.disposition, /\.trace\.json"$/);
  const trace = JSON.parse(chrome.body) as { traceEvents: { ph: string; name: string; dur?: number }[] } | { ph: string; name: string; dur?: number }[];
  const events = Array.isArray(trace) ? trace : trace.traceEvents;
  const traceDur = new Map<string, number>();
  for (const e of events) if (e.ph === 'X') traceDur.set(e.name, (traceDur.get(e.name) ?? 0) + (e.dur ?? 0));
  assert.ok((traceDur.get(truth.hot) ?? 0) > (traceDur.get(truth.cold) ?? 0) && (traceDur.get(truth.hot) ?? 0) > 0, `chrometrace: hot_function spans more time than cold_function: ${traceDur.get(truth.hot)} vs ${traceDur.get(truth.cold)}`);
  const tRecord = Date.now();

  // ---- live top over /ws/ui: sign-in cookie + the relay's Origin, msgpack frames
  const top = await startCapture(eng, online.id, { kind: 'top', pid: target.pid, rate: RATE });
  const ui = await connectUi(relay, eng);
  ui.send({ type: 'watch_capture', captureId: top.id });
  const first = await ui.nextOfType('capture_state', 5000, (m) => m.captureId === top.id);
  assert.ok(['starting', 'running'].includes(first.status), first.status);
  const live = emptyProfile();
  let applied = 0;
  const watchStart = Date.now();
  // Apply chunks as they stream in until there are ~2 s of busy samples.
  while (ownByFunction(live).size === 0 || [...ownByFunction(live).values()].reduce((a, b) => a + b, 0) < RATE * 2) {
    const c = await ui.nextOfType('capture_chunk', 5000, (m) => m.captureId === top.id);
    assert.equal(c.seq, applied, 'live chunks arrive in seq order without holes');
    applyChunk(live, (c as UiCaptureChunk).chunk);
    applied++;
    assert.ok(Date.now() - watchStart < 15_000, 'two seconds of samples arrive within 15 s');
  }
  const liveTop = topByOwn(ownByFunction(live));
  log(`${py.label} live top after ${applied} chunks: ${JSON.stringify(liveTop.slice(0, 3))}`);
  assert.equal(liveTop[0]?.[0], truth.hot, 'hot_function is on top by own samples');
  assert.ok(liveTop[0]![1] > 3 * (liveTop.find(([n]) => n === truth.cold)?.[1] ?? 0), 'and well ahead of cold_function');
  assert.ok(ui.received.some((m) => m.type === 'capture_state' && m.status === 'running') || first.status === 'running', 'the viewer is told the capture runs');

  const stop = await eng.post(`/api/captures/${top.id}/stop`);
  assert.equal(stop.status, 200, stop.text);
  assert.equal(stop.json.stopRequestedBy, 'admin');
  const final = await ui.nextOfType('capture_state', 10_000, (m) => m.captureId === top.id && m.status === 'complete');
  assert.equal(final.status, 'complete');
  const topEnd = await agent.waitEnd(top.id);
  assert.equal(topEnd.why, 'stopped');
  // Everything stored also reached this viewer, in order.
  const stored = await getCapture(eng, top.id);
  const seqs = ui.received.filter((m) => m.type === 'capture_chunk' && m.captureId === top.id).map((m) => (m as UiCaptureChunk).seq);
  assert.deepEqual([...Array.from({ length: applied }, (_, i) => i), ...seqs], Array.from({ length: stored.chunks }, (_, i) => i));
  assert.deepEqual(ui.parseErrors, []);
  ui.close();
  assert.match(agent.output, /admin stopped a live top of pid \d+/);

  // ---- the customer presses Ctrl-C: the agent says so and exits 0; the relay sees it go
  agent.signal('SIGINT');
  const exit = await agent.exit();
  assert.equal(exit.code, 0, agent.output);
  assert.match(agent.output, /Ctrl-C: disconnecting/);
  const health = await fetch(`${relay.url}/healthz`);
  assert.equal(health.status, 200);
  log(
    `${py.label} timings: target+relay+agent online ${tOnline - t0} ms, dump ${tDump - tOnline} ms, record+downloads ${tRecord - tDump} ms, top ${Date.now() - tRecord} ms`,
  );
}

const newest = newestPython();
const old = pythons().find((p) => p.version.startsWith('3.8.')) ?? pythons().find((p) => /^3\.(6|7|9)\./.test(p.version));

test(`happy path on ${newest?.label ?? 'the newest Python'}: sign in, session, agent, dump, record in 4 formats, live top`, { skip: newest ? undefined : 'no Python interpreter found', timeout: 90_000 }, async (t) => {
  await happyPath(t, newest!);
});

test(`happy path on an old Python (${old?.label ?? '3.8'})`, { skip: old && old !== newest ? undefined : 'no old Python (3.6-3.9) installed', timeout: 90_000 }, async (t) => {
  await happyPath(t, old!);
});
