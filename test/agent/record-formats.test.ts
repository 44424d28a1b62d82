// `periscope record -f FORMAT` on real Python processes, every file parsed back.
//
// Formats: test/targets/named_threads.py keeps three threads with Python frames
// at every instant ("worker-alpha" and "worker-beta" spinning, MainThread
// sleeping). Recorded with --idle, every tick yields exactly one sample per
// thread, so each format must account for exactly 3 x N samples, N being the
// "Collected N samples" periscope reports on stderr -- the totals of the four
// formats agree through that. Each file is also checked for its own structure:
// collapsed-stack syntax and thread roots (raw -t), speedscope's schema and
// index ranges with the threads' names, Trace Event JSON with properly nested
// complete events per thread, and a strictly well-formed, self-contained SVG.
// Run on the oldest and the newest interpreter (the exporters do not depend on
// the Python version; the reading of names and threads does).
//
// XSS: test/targets/hostile_names.py runs a function whose code object is named
// `<img src=x onerror=alert(1)>`, compiled under the file name
// `"><script>alert(1)</script>.py`, in a thread named
// `</title><script>alert(3)</script>&amp;`, with `<svg onload=alert(2)>` on its
// command line. The flame graph (with --threads) must parse as XML, carry those
// strings as text (decoded exactly), and contain none of them as markup. Every
// interpreter.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { describeRun, type RunResult } from '../helpers/periscope.ts';
import { newestPython, type Python, pythons, skippedPythons } from '../helpers/pythons.ts';
import { leafOf, outputDir, parseRaw, startRecord, totalSamples } from '../helpers/record.ts';
import { startTarget, type Target } from '../helpers/targets.ts';
import { parseXml, textContent, walkElements, type XmlElement } from '../shared/xml-check.ts';

const RATE = 200;
const SECONDS = 1;
const PERIOD_US = 1e6 / RATE;

interface ThreadsTruth {
  pid: number;
  version: string;
  threads: { name: string; native_id: number }[];
}

interface Recorded {
  run: RunResult;
  text: string;
  /** "Collected N samples" */
  collected: number;
  errors: number;
}

async function record(t: TestContext, target: Target, format: string, extra: string[] = []): Promise<Recorded> {
  const out = join(outputDir(t), `out.${format}`);
  const run = await startRecord(['record', '--pid', String(target.pid), '-r', String(RATE), '-d', String(SECONDS), '-f', format, '-o', out, ...extra]).done;
  assert.ok(!run.timedOut && run.signal === null && run.code === 0, `expected exit 0:\n${describeRun(run)}`);
  assert.ok(existsSync(out), `no output file:\n${describeRun(run)}`);
  assert.match(run.stderr, new RegExp(`^Wrote ${format} to `, 'm'), describeRun(run));
  const m = /^Collected (\d+) samples \((\d+) errors/m.exec(run.stderr);
  assert.ok(m, `no "Collected N samples (E errors" line:\n${describeRun(run)}`);
  const collected = Number(m[1]);
  const errors = Number(m[2]);
  // Ticks are skipped only when the sampler falls behind; most must be there.
  assert.ok(collected >= 0.3 * RATE * SECONDS && collected <= 1.2 * RATE * SECONDS + 5, `${collected} samples in ${SECONDS} s at ${RATE} Hz:\n${describeRun(run)}`);
  return { run, text: readFileSync(out, 'utf8'), collected, errors };
}

/** With --idle every thread has a sample at every tick (a failed read may lose a few). */
function assertSampleTotal(what: string, total: number, r: Recorded, threads: number): void {
  const expected = r.collected * threads;
  const ok = r.errors === 0 ? total === expected : total <= expected && total >= expected - threads * r.errors;
  assert.ok(ok, `${what}: ${total} samples, expected ${threads} threads x ${r.collected} collected = ${expected} (${r.errors} errors)`);
}

function byName(truth: ThreadsTruth, name: string): { name: string; native_id: number } {
  const th = truth.threads.find((x) => x.name === name);
  assert.ok(th, `no thread ${name} in the ground truth`);
  return th;
}

// --- raw ---------------------------------------------------------------------------

async function checkRaw(t: TestContext, target: Target, truth: ThreadsTruth): Promise<number> {
  const r = await record(t, target, 'raw', ['-i', '-t']);
  const stacks = parseRaw(r.text);
  const total = totalSamples(stacks);
  assertSampleTotal('raw', total, r, truth.threads.length);
  const roots = new Map(truth.threads.map((th) => [`thread (${th.name}) ${th.native_id}`, th.name]));
  const leaves = new Map<string, Set<string>>();
  for (const s of stacks) {
    const root = s.frames[0]!;
    assert.equal(root.kind, 'thread', `with -t every stack starts with "thread (NAME) TID": ${s.frames.map((f) => f.label).join(';')}`);
    const thread = roots.get(root.label);
    assert.ok(thread, `unexpected thread root ${JSON.stringify(root.label)}; expected one of ${[...roots.keys()].join(', ')}`);
    for (const f of s.frames.slice(1)) {
      assert.equal(f.kind, 'frame', `only the first frame is a root: ${f.label}`);
      assert.ok(f.file !== '' && f.line !== null && f.line > 0, `frame without "(file:line)": ${JSON.stringify(f.label)}`);
    }
    let set = leaves.get(thread);
    if (!set) leaves.set(thread, (set = new Set()));
    set.add(leafOf(s)!.name);
  }
  assert.deepEqual([...(leaves.get('worker-alpha') ?? [])], ['alpha_work']);
  assert.deepEqual([...(leaves.get('worker-beta') ?? [])], ['beta_work']);
  assert.ok(leaves.get('MainThread')?.has('main_sleep'), `MainThread leaves: ${[...(leaves.get('MainThread') ?? [])].join(', ')}`);

  // Without --idle the sleeping main thread is gone, and (no -t) there are no roots.
  const busy = await record(t, target, 'raw');
  const busyStacks = parseRaw(busy.text);
  assert.ok(totalSamples(busyStacks) > 0 && totalSamples(busyStacks) < busy.collected * truth.threads.length, `non-idle total ${totalSamples(busyStacks)} of ${busy.collected} ticks`);
  for (const s of busyStacks) {
    assert.equal(s.frames[0]!.kind, 'frame', `a root frame without -t: ${s.frames[0]!.label}`);
    assert.ok(!s.frames.some((f) => f.name === 'main_sleep'), 'the sleeping main thread is sampled without --idle');
  }
  return total / r.collected;
}

// --- speedscope ------------------------------------------------------------------

interface SpeedscopeProfile {
  type: string;
  name: string;
  unit: string;
  startValue: number;
  endValue: number;
  samples: number[][];
  weights: number[];
}

async function checkSpeedscope(t: TestContext, target: Target, truth: ThreadsTruth): Promise<number> {
  const r = await record(t, target, 'speedscope', ['-i']);
  const doc = JSON.parse(r.text) as Record<string, unknown>;
  assert.equal(doc.$schema, 'https://www.speedscope.app/file-format-schema.json');
  assert.equal(typeof doc.name, 'string');
  assert.ok((doc.name as string).includes('named_threads.py'), `name ${JSON.stringify(doc.name)} is not the command line`);
  const shared = doc.shared as { frames: { name: string; file?: unknown; line?: unknown }[] };
  assert.ok(Array.isArray(shared?.frames) && shared.frames.length > 0, 'shared.frames');
  for (const f of shared.frames) {
    assert.equal(typeof f.name, 'string');
    if (f.file !== undefined) assert.equal(typeof f.file, 'string');
    if (f.line !== undefined) assert.ok(Number.isInteger(f.line) && (f.line as number) > 0, `frame line ${String(f.line)}`);
  }
  const profiles = doc.profiles as SpeedscopeProfile[];
  assert.ok(Array.isArray(profiles), 'profiles');
  assert.ok(Number.isInteger(doc.activeProfileIndex) && (doc.activeProfileIndex as number) >= 0 && (doc.activeProfileIndex as number) < profiles.length, 'activeProfileIndex in range');

  const expectedNames = truth.threads.map((th) => `Thread ${th.native_id} "${th.name}"`).sort();
  assert.deepEqual(profiles.map((p) => p.name).sort(), expectedNames, 'one profile per thread, named with tid and thread name');
  let total = 0;
  for (const p of profiles) {
    assert.equal(p.type, 'sampled');
    assert.equal(p.unit, 'microseconds');
    assert.ok(Number.isFinite(p.startValue) && Number.isFinite(p.endValue) && p.startValue <= p.endValue, `${p.name}: start/end`);
    assert.equal(p.samples.length, p.weights.length, `${p.name}: samples and weights differ in length`);
    let sum = 0;
    let busyWeight = 0;
    let nonEmpty = 0;
    const names = new Set<string>();
    p.samples.forEach((stack, i) => {
      const w = p.weights[i]!;
      assert.ok(Number.isFinite(w) && w >= 0, `${p.name}: weight ${w}`);
      sum += w;
      for (const idx of stack) {
        assert.ok(Number.isInteger(idx) && idx >= 0 && idx < shared.frames.length, `${p.name}: frame index ${idx} out of range`);
      }
      if (stack.length > 0) {
        nonEmpty++;
        busyWeight += w;
        names.add(shared.frames[stack.at(-1)!]!.name);
      }
    });
    assert.ok(Math.abs(sum - (p.endValue - p.startValue)) <= 1e-6 * Math.max(1, sum), `${p.name}: weights sum to ${sum}, span is ${p.endValue - p.startValue}`);
    // One sample per tick: ~N periods of time covered.
    const covered = busyWeight / (r.collected * PERIOD_US);
    assert.ok(covered > 0.7 && covered < 1.4, `${p.name}: sampled stacks cover ${busyWeight} us, ${r.collected} samples x ${PERIOD_US} us expected (ratio ${covered.toFixed(2)})`);
    total += nonEmpty;
    const leafWanted = p.name.includes('worker-alpha') ? 'alpha_work' : p.name.includes('worker-beta') ? 'beta_work' : 'main_sleep';
    assert.ok(names.has(leafWanted), `${p.name}: leaves ${[...names].join(', ')} lack ${leafWanted}`);
  }
  assertSampleTotal('speedscope', total, r, truth.threads.length);
  const alpha = shared.frames.find((f) => f.name === 'alpha_work');
  assert.ok(alpha && typeof alpha.file === 'string' && alpha.file.endsWith('named_threads.py') && Number.isInteger(alpha.line), `alpha_work frame: ${JSON.stringify(alpha)}`);
  return total / r.collected;
}

// --- chrometrace -----------------------------------------------------------------

interface TraceEvent {
  ph: string;
  name: string;
  cat?: string;
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  args: Record<string, unknown>;
}

async function checkChromeTrace(t: TestContext, target: Target, truth: ThreadsTruth): Promise<number> {
  const r = await record(t, target, 'chrometrace', ['-i']);
  const doc = JSON.parse(r.text) as { traceEvents: TraceEvent[]; displayTimeUnit?: string; otherData?: Record<string, unknown> };
  assert.ok(Array.isArray(doc.traceEvents), 'traceEvents is an array');
  assert.equal(doc.otherData?.rateHz, RATE);
  const tids = new Map(truth.threads.map((th) => [th.native_id, th.name]));
  const threadNames = new Map<number, string>();
  const byTid = new Map<number, TraceEvent[]>();
  for (const e of doc.traceEvents) {
    assert.ok(e.ph === 'X' || e.ph === 'M', `unexpected phase ${JSON.stringify(e.ph)}`);
    assert.equal(e.pid, target.pid, `event of another pid: ${JSON.stringify(e)}`);
    if (e.ph === 'M') {
      if (e.name === 'thread_name') threadNames.set(e.tid, String(e.args.name));
      else assert.equal(e.name, 'process_name');
      continue;
    }
    assert.ok(typeof e.name === 'string' && e.name !== '', 'X event name');
    assert.ok(Number.isFinite(e.ts) && e.ts >= 0 && Number.isFinite(e.dur) && e.dur >= 0, `X event times: ${JSON.stringify(e)}`);
    assert.ok(tids.has(e.tid), `X event on unknown tid ${e.tid}`);
    assert.ok(typeof e.args.file === 'string', 'X event args.file');
    let list = byTid.get(e.tid);
    if (!list) byTid.set(e.tid, (list = []));
    list.push(e);
  }
  assert.deepEqual(new Map([...threadNames].sort()), new Map([...tids].sort()), 'thread_name metadata: tid -> name');
  let rootTime = 0;
  for (const [tid, events] of byTid) {
    // Complete events of one thread nest: each one ends before its parent does.
    const open: TraceEvent[] = [];
    let threadRoot = 0;
    const names = new Set<string>();
    for (const e of events) {
      while (open.length > 0 && e.ts >= open.at(-1)!.ts + open.at(-1)!.dur) open.pop();
      const parent = open.at(-1);
      if (parent) assert.ok(e.ts + e.dur <= parent.ts + parent.dur + 1e-6, `tid ${tid}: ${e.name} [${e.ts}, +${e.dur}] overlaps its parent ${parent.name} [${parent.ts}, +${parent.dur}]`);
      else threadRoot += e.dur;
      open.push(e);
      names.add(e.name);
    }
    const name = tids.get(tid)!;
    const want = name === 'worker-alpha' ? 'alpha_work' : name === 'worker-beta' ? 'beta_work' : 'main_sleep';
    assert.ok(names.has(want), `${name}: no ${want} event (${[...names].join(', ')})`);
    if (name !== 'worker-alpha') assert.ok(!names.has('alpha_work'), `alpha_work on ${name}`);
    const covered = threadRoot / (r.collected * PERIOD_US);
    assert.ok(covered > 0.7 && covered < 1.4, `${name}: outermost events last ${threadRoot} us for ${r.collected} samples x ${PERIOD_US} us (ratio ${covered.toFixed(2)})`);
    rootTime += threadRoot;
  }
  assert.equal(byTid.size, truth.threads.length, 'one timeline per thread');
  return rootTime / PERIOD_US / r.collected;
}

// --- flamegraph ------------------------------------------------------------------

const SVG_ELEMENTS = new Set(['svg', 'style', 'rect', 'text', 'title', 'g', 'script']);

/** Well-formed, self-contained, one script (ours), no event-handler attributes. */
function checkSvgSafety(text: string): XmlElement {
  let svg: XmlElement;
  try {
    svg = parseXml(text);
  } catch (e) {
    assert.fail(`the flame graph is not well-formed XML: ${(e as Error).message}`);
  }
  assert.equal(svg.name, 'svg');
  assert.equal(svg.attributes.get('xmlns'), 'http://www.w3.org/2000/svg');
  const elements = [...walkElements(svg)];
  for (const el of elements) {
    assert.ok(SVG_ELEMENTS.has(el.name), `unexpected element <${el.name}>`);
    for (const [name, value] of el.attributes) {
      assert.ok(!/^on/i.test(name), `event handler attribute ${name}="${value}" on <${el.name}>`);
      assert.ok(!/href$|^src$/i.test(name), `reference attribute ${name}="${value}" on <${el.name}>`);
      if (!(el === svg && name === 'xmlns')) assert.doesNotMatch(value, /https?:|javascript:|url\(/i, `external reference in ${name}="${value}"`);
    }
  }
  assert.equal(elements.filter((e) => e.name === 'script').length, 1, 'exactly one <script> (the viewer)');
  for (const style of elements.filter((e) => e.name === 'style')) assert.doesNotMatch(textContent(style), /url\(|@import|https?:/i, 'external reference in <style>');
  return svg;
}

function frameGroups(svg: XmlElement): XmlElement[] {
  return [...walkElements(svg)].filter((e) => e.name === 'g' && e.attributes.get('class') === 'f');
}

function titleOf(g: XmlElement): string {
  const title = g.children.find((c): c is XmlElement => typeof c !== 'string' && c.name === 'title');
  assert.ok(title, 'frame without <title>');
  return textContent(title);
}

async function checkFlamegraph(t: TestContext, target: Target, truth: ThreadsTruth): Promise<number> {
  const r = await record(t, target, 'flamegraph', ['-i']);
  const svg = checkSvgSafety(r.text);
  const frames = frameGroups(svg);
  assert.ok(frames.length > 3, `${frames.length} frames`);
  const root = frames.find((g) => g.attributes.get('data-d') === '0');
  assert.ok(root, 'no root frame (data-d="0")');
  const total = Number(root.attributes.get('data-n'));
  assertSampleTotal('flamegraph root', total, r, truth.threads.length);
  const subtitle = [...walkElements(svg)].find((e) => e.attributes.get('id') === 'subtitle');
  assert.ok(subtitle && textContent(subtitle).startsWith(`${total} samples · ${RATE} Hz`), `subtitle: ${subtitle && textContent(subtitle)}`);
  for (const g of frames) {
    const n = Number(g.attributes.get('data-n'));
    const s = Number(g.attributes.get('data-s'));
    assert.ok(Number.isInteger(n) && n > 0 && n <= total && Number.isInteger(s) && s >= 0 && s + n <= total, `frame data-s=${s} data-n=${n} outside 0..${total}`);
  }
  const labels = frames.map((g) => titleOf(g).split('\n')[0]!);
  for (const fn of ['alpha_work', 'beta_work', 'main_sleep']) {
    assert.ok(labels.some((l) => l.startsWith(`${fn} (`) && /named_threads\.py:\d+\)$/.test(l)), `no "${fn} (…named_threads.py:LINE)" frame; frames: ${labels.slice(0, 20).join(' | ')}`);
  }
  return total / r.collected;
}

// --- the tests -------------------------------------------------------------------

const all = pythons();
const formatPythons = [...new Map([all[0], newestPython()].filter((p): p is Python => p !== undefined).map((p) => [p.label, p])).values()];

for (const { label, reason } of skippedPythons()) {
  test(`record formats / XSS: python ${label}`, { skip: reason }, () => {});
}
if (formatPythons.length === 0) test('record formats', { skip: 'no Python interpreter installed' }, () => {});

for (const py of formatPythons) {
  test(`record formats, parsed back: python ${py.label} (${py.version})`, { timeout: 120_000 }, async (t) => {
    const target = await startTarget(py, 'named_threads.py', { args: ['120'], t });
    const truth = await target.truth<ThreadsTruth>();
    assert.equal(truth.pid, target.pid);
    assert.deepEqual(truth.threads.map((th) => th.name).sort(), ['MainThread', 'worker-alpha', 'worker-beta']);
    byName(truth, 'worker-alpha');
    const perTick: Record<string, number> = {};
    await t.test('raw', async (tt) => void (perTick.raw = await checkRaw(tt, target, truth)));
    await t.test('speedscope', async (tt) => void (perTick.speedscope = await checkSpeedscope(tt, target, truth)));
    await t.test('chrometrace', async (tt) => void (perTick.chrometrace = await checkChromeTrace(tt, target, truth)));
    await t.test('flamegraph', async (tt) => void (perTick.flamegraph = await checkFlamegraph(tt, target, truth)));
    // Samples per collected tick: exactly the thread count in raw/speedscope/flamegraph;
    // the chrome trace's time-based total ~ the same.
    t.diagnostic(`samples per tick: ${Object.entries(perTick).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')}`);
    assert.ok(!target.exited, `the target died: ${target.describe()}`);
  });
}

// --- XSS -------------------------------------------------------------------------

interface HostileTruth {
  pid: number;
  version: string;
  name: string;
  filename: string;
  thread: string;
}

const HOSTILE_ARG = '<svg onload=alert(2)>';

for (const py of all) {
  test(`record flamegraph with hostile names: python ${py.label} (${py.version})`, { timeout: 60_000 }, async (t) => {
    const target = await startTarget(py, 'hostile_names.py', { args: ['120', HOSTILE_ARG], t });
    const truth = await target.truth<HostileTruth>();
    assert.equal(truth.name, '<img src=x onerror=alert(1)>');
    assert.equal(truth.filename, '"><script>alert(1)</script>.py');
    const out = join(outputDir(t), 'hostile.svg');
    const run = await startRecord(['record', '--pid', String(target.pid), '-r', '200', '-d', '1', '-t', '-f', 'flamegraph', '-o', out]).done;
    assert.ok(!run.timedOut && run.signal === null && run.code === 0, `expected exit 0:\n${describeRun(run)}`);
    const text = readFileSync(out, 'utf8');

    // Nothing hostile as markup...
    for (const raw of ['<img', '<script>alert', '</script>.py', '<svg onload', '</title><script>', 'onerror=alert(1)>']) {
      assert.ok(!text.includes(raw), `the SVG contains ${JSON.stringify(raw)} unescaped`);
    }
    const svg = checkSvgSafety(text);
    const script = [...walkElements(svg)].find((e) => e.name === 'script')!;
    assert.doesNotMatch(textContent(script), /alert|<img/, 'profile data inside the <script>');

    // ...but all of it as text, exactly.
    const labels = frameGroups(svg).map((g) => titleOf(g).split('\n')[0]!);
    const frameLabel = labels.find((l) => l.startsWith(`${truth.name} (`));
    assert.ok(frameLabel, `no frame labelled ${JSON.stringify(truth.name)}; frames: ${labels.join(' | ')}`);
    assert.match(frameLabel, /^<img src=x onerror=alert\(1\)> \("><script>alert\(1\)<\/script>\.py:\d+\)$/);
    const threadLabel = labels.find((l) => l.startsWith('thread ('));
    assert.ok(threadLabel?.startsWith(`thread (${truth.thread}) `), `no thread root named ${JSON.stringify(truth.thread)}; frames: ${labels.join(' | ')}`);
    const title = [...walkElements(svg)].find((e) => e.attributes.get('id') === 'title')!;
    assert.ok(textContent(title).includes(HOSTILE_ARG), `the title (command line) lost ${HOSTILE_ARG}: ${JSON.stringify(textContent(title))}`);
  });
}
