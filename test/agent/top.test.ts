// `periscope top`: the incremental aggregation it shares with the web client
// (exact counts on a handcrafted profile, checked against the exporters' call
// tree on random ones), the piped output against a target with a known hot function, and the
// full-screen view with keys under tmux.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FrameInput, ProfileBuilder } from '../../shared/profile/builder.ts';
import { type LiveTopRow, TopAccumulator, type TopAccumulatorOptions } from '../../shared/profile/top-accumulator.ts';
import { type CallTreeNode, callTree } from '../../shared/profile/call-tree.ts';
import type { Profile } from '../../shared/profile/model.ts';
import type { ViewOptions } from '../../shared/profile/view-options.ts';
import { displayWidth, fitLabel, shortFile } from '../../agent/top.ts';
import { describeRun, PERISCOPE, ROOT, runPeriscope } from '../helpers/periscope.ts';
import { newestPython, type Python, pythons } from '../helpers/pythons.ts';
import { startTarget, type Target } from '../helpers/targets.ts';

// --- the accumulator on a profile counted by hand ---------------------------

const f = (name: string, file: string, line: number): FrameInput => ({ name, file, line });
const moduleFrame = f('<module>', 'app.py', 30);
const main20 = f('main', 'app.py', 20);
const work10 = f('work', 'app.py', 10);
const work11 = f('work', 'app.py', 11);
const work12 = f('work', 'app.py', 12);

/**
 * First window (6 samples):
 *   main    <module>:30 > main:20 > work:10                  gil
 *   main    <module>:30 > main:20 > work:11                  gil
 *   main    <module>:30 > main:20 > work:12 > work:10        (recursion)
 *   main    <module>:30 > main:21 > sleep:1                  idle
 *   worker  run:1 > loop:3                                   gil
 *   worker  (no Python frames)
 */
function firstWindow(): { builder: ProfileBuilder; main: number; worker: number } {
  const builder = new ProfileBuilder({ commandLine: 'python app.py', rateHz: 100 });
  const main = builder.thread(100, 1, 'MainThread');
  const worker = builder.thread(100, 2, 'worker');
  builder.addSample({ thread: main, timeUs: 0, gil: true, framesLeafFirst: [work10, main20, moduleFrame] });
  builder.addSample({ thread: main, timeUs: 10_000, gil: true, framesLeafFirst: [work11, main20, moduleFrame] });
  builder.addSample({ thread: main, timeUs: 20_000, framesLeafFirst: [work10, work12, main20, moduleFrame] });
  builder.addSample({ thread: main, timeUs: 30_000, idle: true, framesLeafFirst: [f('sleep', 'time.py', 1), f('main', 'app.py', 21), moduleFrame] });
  builder.addSample({ thread: worker, timeUs: 0, gil: true, framesLeafFirst: [f('loop', 'w.py', 3), f('run', 'w.py', 1)] });
  builder.addSample({ thread: worker, timeUs: 10_000, framesLeafFirst: [] });
  return { builder, main, worker };
}

/** Second window (2 samples): work:10 once more, then helper:5 called from it. */
function secondWindow(builder: ProfileBuilder, main: number): void {
  builder.addSample({ thread: main, timeUs: 40_000, framesLeafFirst: [work10, main20, moduleFrame] });
  builder.addSample({ thread: main, timeUs: 50_000, gil: true, framesLeafFirst: [f('helper', 'lib.py', 5), work10, main20, moduleFrame] });
}

type Counts = [windowOwn: number, windowTotal: number, cumulativeOwn: number, cumulativeTotal: number];

function counts(rows: LiveTopRow[], name: string, line: number | null): Counts | undefined {
  const r = rows.find((row) => row.function === name && row.line === line);
  return r && [r.windowOwn, r.windowTotal, r.cumulativeOwn, r.cumulativeTotal];
}

/**
 * "name file:line own/total" per frame group, read off the call tree the
 * exporters draw: own is a node's self, total counts each sample once per
 * group on its path (so recursion counts once).
 */
function rowsOfCallTree(profile: Profile, options: ViewOptions): string[] {
  const own = new Map<string, number>();
  const total = new Map<string, number>();
  const walk = (node: CallTreeNode, onPath: ReadonlySet<string>): void => {
    const key = node.kind === 'frame' ? `${node.name} ${node.file}:${node.line}` : undefined;
    const path = key === undefined || onPath.has(key) ? onPath : new Set([...onPath, key]);
    if (node.self > 0) {
      if (key !== undefined) own.set(key, (own.get(key) ?? 0) + node.self);
      for (const k of path) total.set(k, (total.get(k) ?? 0) + node.self);
    }
    for (const child of node.children) walk(child, path);
  };
  walk(callTree(profile, options), new Set());
  return [...total].map(([k, t]) => `${k} ${own.get(k) ?? 0}/${t}`);
}

function closedFirstWindow(options: TopAccumulatorOptions = {}): TopAccumulator {
  const acc = new TopAccumulator(firstWindow().builder.profile, options);
  acc.ingest();
  acc.endWindow();
  return acc;
}

describe('TopAccumulator', () => {
  it('counts own and total per line for a window, a recursive function once per sample', () => {
    const { builder } = firstWindow();
    const acc = new TopAccumulator(builder.profile);
    assert.equal(acc.ingest(), 6);
    assert.equal(acc.ingest(), 0);
    assert.deepEqual(acc.endWindow(), { counted: 4, all: 6, gil: 3, active: 5, threads: 2, processes: 1 });
    const rows = acc.rows('ownTime');
    assert.deepEqual(counts(rows, 'work', 10), [2, 2, 2, 2]);
    assert.deepEqual(counts(rows, 'work', 11), [1, 1, 1, 1]);
    assert.deepEqual(counts(rows, 'work', 12), [0, 1, 0, 1]);
    assert.deepEqual(counts(rows, 'main', 20), [0, 3, 0, 3]);
    assert.deepEqual(counts(rows, '<module>', 30), [0, 3, 0, 3]);
    assert.deepEqual(counts(rows, 'loop', 3), [1, 1, 1, 1]);
    assert.deepEqual(counts(rows, 'run', 1), [0, 1, 0, 1]);
    assert.equal(counts(rows, 'sleep', 1), undefined, 'idle samples are left out by default');
    assert.equal(counts(rows, 'main', 21), undefined);
    assert.equal(rows.length, 7);
    assert.equal(acc.cumulativeSamples, 6);
  });

  it('aggregates by function, showing the lowest line seen', () => {
    const rows = closedFirstWindow().rows('ownTime', true);
    assert.deepEqual(counts(rows, 'work', 10), [3, 3, 3, 3]);
    assert.deepEqual(counts(rows, 'main', 20), [0, 3, 0, 3]);
    assert.deepEqual(
      rows.map((r) => r.function),
      ['work', 'loop', '<module>', 'main', 'run'],
    );
  });

  it('keeps percentages per window and times since the start', () => {
    const { builder, main } = firstWindow();
    const acc = new TopAccumulator(builder.profile);
    acc.ingest();
    acc.endWindow();
    secondWindow(builder, main);
    assert.equal(acc.ingest(), 2);
    // Until the window closes, rows() shows the previous window with the newest times.
    assert.deepEqual(counts(acc.rows(), 'work', 10), [2, 2, 3, 4]);
    assert.equal(acc.openWindowCounted, 2);
    assert.deepEqual(acc.endWindow(), { counted: 2, all: 2, gil: 1, active: 2, threads: 1, processes: 1 });
    assert.equal(acc.lastWindow.counted, 2);
    const rows = acc.rows();
    assert.deepEqual(counts(rows, 'work', 10), [1, 2, 3, 4]);
    assert.deepEqual(counts(rows, 'helper', 5), [1, 1, 1, 1]);
    assert.deepEqual(counts(rows, 'loop', 3), [0, 0, 1, 1], 'rows of earlier windows stay, for their times');
    assert.deepEqual(counts(acc.rows('ownTime', true), 'work', 10), [1, 2, 4, 5]);
    assert.equal(acc.cumulativeSamples, 8);
  });

  it('reset() clears the times, not the window; empty rows disappear', () => {
    const { builder, main } = firstWindow();
    const acc = new TopAccumulator(builder.profile);
    acc.ingest();
    acc.endWindow();
    secondWindow(builder, main);
    acc.ingest();
    acc.endWindow();
    acc.reset();
    assert.equal(acc.cumulativeSamples, 0);
    const rows = acc.rows();
    assert.deepEqual(counts(rows, 'work', 10), [1, 2, 0, 0]);
    assert.equal(counts(rows, 'loop', 3), undefined);
    builder.addSample({ thread: main, timeUs: 60_000, framesLeafFirst: [work11, main20, moduleFrame] });
    acc.ingest();
    assert.deepEqual(acc.endWindow(), { counted: 1, all: 1, gil: 0, active: 1, threads: 1, processes: 1 });
    assert.deepEqual(counts(acc.rows(), 'work', 11), [1, 1, 1, 1]);
    assert.equal(counts(acc.rows(), 'work', 10), undefined);
    acc.reset();
    acc.endWindow();
    assert.deepEqual(acc.rows(), []);
  });

  it('applies the idle, GIL and thread filters to the table, not to the header counts', () => {
    const idle = closedFirstWindow({ idle: true });
    assert.equal(idle.lastWindow.counted, 5);
    assert.deepEqual(counts(idle.rows(), 'sleep', 1), [1, 1, 1, 1]);
    assert.deepEqual(counts(idle.rows(), 'main', 21), [0, 1, 0, 1]);
    assert.deepEqual(counts(idle.rows(), '<module>', 30), [0, 4, 0, 4]);

    const gil = closedFirstWindow({ gil: true });
    assert.deepEqual(gil.lastWindow, { counted: 3, all: 6, gil: 3, active: 5, threads: 2, processes: 1 });
    assert.deepEqual(counts(gil.rows(), 'work', 10), [1, 1, 1, 1]);
    assert.equal(counts(gil.rows(), 'work', 12), undefined);

    const { builder, worker } = firstWindow();
    const one = new TopAccumulator(builder.profile, { threadRows: [worker] });
    one.ingest();
    assert.equal(one.endWindow().counted, 1);
    assert.deepEqual(
      one.rows().map((r) => r.function),
      ['loop', 'run'],
    );
  });

  it('sorts by the chosen column, ties broken by the others in column order', () => {
    const acc = closedFirstWindow();
    const names = (rows: LiveTopRow[]) => rows.map((r) => `${r.function}:${r.line}`);
    assert.deepEqual(names(acc.rows('ownPercent')), ['work:10', 'loop:3', 'work:11', '<module>:30', 'main:20', 'run:1', 'work:12']);
    assert.deepEqual(names(acc.rows('totalTime')).slice(0, 3), ['<module>:30', 'main:20', 'work:10']);
    const rows = acc.rows('totalPercent');
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].windowTotal >= rows[i].windowTotal);
  });

  it('starts at a given sample row and never reads rows it has already counted', () => {
    const { builder, main } = firstWindow();
    const profile = builder.profile;
    const acc = new TopAccumulator(profile, {}, 3);
    acc.ingest();
    assert.equal(acc.endWindow().all, 3);
    assert.equal(acc.nextSample, 6);
    // From here on, reading a sample row below 6 is a full re-scan in disguise.
    for (const column of ['stack', 'thread', 'flags'] as const) {
      profile.samples[column] = new Proxy(profile.samples[column], {
        get(target, key, receiver) {
          if (typeof key === 'string' && /^\d+$/.test(key) && Number(key) < 6) assert.fail(`ingest() read old samples.${column}[${key}]`);
          return Reflect.get(target, key, receiver);
        },
      });
    }
    secondWindow(builder, main);
    assert.equal(acc.ingest(), 2);
    assert.equal(acc.endWindow().counted, 2);
  });

  it("adds up, chunk by chunk, to what the exporters' call tree counts over the whole profile", () => {
    // A small deterministic generator: every run checks the same random profiles.
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    for (let round = 0; round < 20; round++) {
      const builder = new ProfileBuilder({ rateHz: 100 });
      const threads = [builder.thread(1, 1), builder.thread(1, 2), builder.thread(2, 3)];
      const acc = new TopAccumulator(builder.profile);
      const fnAcc = new TopAccumulator(builder.profile, { idle: true, gil: true });
      for (let chunk = 0; chunk < 8; chunk++) {
        for (let s = 1 + random(30); s > 0; s--) {
          const frames = Array.from({ length: random(7) }, () => f(`fn${random(5)}`, `m${random(2)}.py`, 1 + random(3)));
          builder.addSample({ thread: threads[random(3)], timeUs: 0, framesLeafFirst: frames, idle: random(4) === 0, gil: random(2) === 0 });
        }
        acc.ingest();
        fnAcc.ingest();
        if (random(2) === 0) acc.endWindow();
      }
      const checks = [
        { accumulator: acc, options: {}, byFunction: false },
        { accumulator: fnAcc, options: { idle: true, gil: true, function: true }, byFunction: true },
      ];
      for (const { accumulator, options, byFunction } of checks) {
        const expected = rowsOfCallTree(builder.profile, options);
        const actual = accumulator
          .rows('ownTime', byFunction)
          .filter((r) => r.cumulativeTotal > 0)
          .map((r) => `${r.function} ${r.file}:${r.line} ${r.cumulativeOwn}/${r.cumulativeTotal}`);
        assert.deepEqual(actual.sort(), expected.sort(), `round ${round}`);
      }
    }
  });
});

// --- labels that fit the terminal -------------------------------------------

describe('periscope top labels', () => {
  it('cut the directories first, then the name, keeping the file name', () => {
    const location = '/work/app/services/top_hot.py:29';
    assert.equal(fitLabel('hot_function', location, 80), `hot_function (${location})`);
    assert.equal(fitLabel('hot_function', location, 40), 'hot_function (...services/top_hot.py:29)');
    assert.equal(fitLabel('hot_function', location, 30), 'hot_function (top_hot.py:29)');
    assert.equal(fitLabel('hot_function', location, 27), 'hot_func... (top_hot.py:29)');
    assert.equal(fitLabel('Outer.Inner.method', location, 30), '...nner.method (top_hot.py:29)');
    assert.equal(fitLabel('hot_function', location, 12), 'hot_function');
    for (const width of [10, 20, 30, 40]) {
      assert.ok(displayWidth(fitLabel('中文函数', `/x/y/中文模块.py:3`, width)) <= width, `${width} cells`);
    }
  });

  it('show files relative to the working directory or the package root', () => {
    assert.equal(shortFile('/home/a/app/x.py', '/home/a'), 'app/x.py');
    assert.equal(shortFile('/usr/lib/python3.12/json/decoder.py', '/home/a'), 'json/decoder.py');
    assert.equal(shortFile('/venv/lib/python3.12/site-packages/requests/api.py', undefined), 'requests/api.py');
    assert.equal(shortFile('<string>', '/'), '<string>');
  });
});

// --- piped output against a live target -------------------------------------

interface TopHeader {
  samples: number;
  rate: number;
  late: number;
  gil: number;
  active: number;
  threads: number;
  processes: number;
}

interface TopLine {
  ownPercent: number;
  totalPercent: number;
  ownTime: number;
  totalTime: number;
  function: string;
  location: string;
}

interface PrintedTable {
  header: TopHeader;
  rows: TopLine[];
}

const HEADER = /^Total Samples (\d+)\s+Rate (\d+) Hz\s+Late ([\d.]+)%\s+GIL: ([\d.]+)%, Active: ([\d.]+)%, Threads: (\d+), Processes: (\d+)$/;
const TITLES = /^\s+%Own\s+%Total\s+OwnTime\s+TotalTime\s+Function \(filename:line\)$/;
const ROW = /^\s*([\d.]+)%\s+([\d.]+)%\s+([\d.]+)s\s+([\d.]+)s\s+(.+) \((.*)\)$/;

/** Every header + table `periscope top` printed, in order. */
function parseTables(text: string): PrintedTable[] {
  const lines = text.split('\n');
  const tables: PrintedTable[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i].startsWith('Collecting samples from ')) continue;
    const h = HEADER.exec(lines[i + 1] ?? '');
    assert.ok(h, `second header line has an unexpected shape: ${JSON.stringify(lines[i + 1])}`);
    const [samples, rate, late, gil, active, threads, processes] = h.slice(1).map(Number);
    let j = i + 2;
    while (j < lines.length && !TITLES.test(lines[j])) j++;
    assert.ok(j < lines.length, 'no column titles after the header');
    const rows: TopLine[] = [];
    for (j++; j < lines.length && lines[j] !== ''; j++) {
      if (lines[j].startsWith('(')) continue; // "(N more rows)"
      const m = ROW.exec(lines[j]);
      assert.ok(m, `table row has an unexpected shape: ${JSON.stringify(lines[j])}`);
      rows.push({ ownPercent: +m[1], totalPercent: +m[2], ownTime: +m[3], totalTime: +m[4], function: m[5], location: m[6] });
    }
    tables.push({ header: { samples, rate, late, gil, active, threads, processes }, rows });
  }
  return tables;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/**
 * The newest interpreter, a 3.8 (an old frame layout) when installed, and
 * every other interpreter read through its own debug offsets that has a
 * layout of its own: 3.14 (tagged frames) and free-threaded builds.
 */
function interpreters(): Python[] {
  const chosen: Python[] = [];
  const newest = newestPython();
  if (newest) chosen.push(newest);
  const old = pythons().find((p) => p.version.startsWith('3.8.'));
  if (old && old !== newest) chosen.push(old);
  else console.log('skip python 3.8 for periscope top: not installed');
  for (const p of pythons()) {
    if (p !== newest && (p.freeThreaded || p.version.startsWith('3.14.'))) chosen.push(p);
  }
  return chosen;
}

async function hotTarget(t: TestContext, python: Python, lifetimeSeconds = 60): Promise<Target> {
  const target = await startTarget(python, 'top_hot.py', { t, args: [String(lifetimeSeconds)] });
  await target.truth();
  return target;
}

const chosen = interpreters();
if (chosen.length === 0) {
  console.log('skip periscope top end-to-end tests: no Python interpreter installed');
  test('periscope top end-to-end', { skip: 'no Python interpreter installed' }, () => {});
}

for (const python of chosen) {
  describe(`periscope top, piped (python ${python.label})`, () => {
    it('prints a table per second with the hot function first and a sane header', async (t) => {
      const target = await hotTarget(t, python);
      const r = await runPeriscope(['top', '--pid', String(target.pid), '-d', '3']);
      const why = `${describeRun(r)}\n${target.describe()}`;
      assert.equal(r.code, 0, why);
      assert.doesNotMatch(r.stdout, /\x1b/, 'piped output has no escape codes');
      assert.match(r.stdout, /\nStopped after 3 s\.\n$/, why);
      assert.match(r.stdout, new RegExp(`^Collecting samples from '[^\\n]*top_hot\\.py[^\\n]*' \\(python v${python.version.replaceAll('.', '\\.')}\\)$`, 'm'), why);
      const tables = parseTables(r.stdout);
      assert.ok(tables.length >= 2 && tables.length <= 4, `expected about 3 tables in 3 s, got ${tables.length}\n${why}`);
      const { header, rows } = tables.at(-1)!;

      // One busy thread and one idle one, each sampled at every tick.
      assert.equal(header.rate, 100);
      assert.equal(header.threads, 2, why);
      assert.equal(header.processes, 1);
      assert.ok(header.samples >= 200 && header.samples <= 2 * 100 * 3.5, `samples ${header.samples}\n${why}`);
      assert.ok(header.late >= 0 && header.late <= 100);
      assert.ok(header.active > 30 && header.active < 70, `active ${header.active}% (one of two threads busy)\n${why}`);
      assert.ok(header.gil >= 0 && header.gil <= 100);

      assert.equal(rows[0].function, 'hot_function', why);
      assert.match(rows[0].location, /top_hot\.py:\d+$/);
      for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].ownTime >= rows[i].ownTime, `sorted by OwnTime\n${why}`);
      const own = (name: string) => sum(rows.filter((row) => row.function === name).map((row) => row.ownPercent));
      const ownTime = (name: string) => sum(rows.filter((row) => row.function === name).map((row) => row.ownTime));
      assert.ok(own('hot_function') > 70, `hot_function has ${own('hot_function')}% own\n${why}`);
      assert.ok(own('cold_function') > 1 && own('cold_function') < 25, `cold_function has ${own('cold_function')}% own\n${why}`);
      assert.ok(Math.abs(sum(rows.map((row) => row.ownPercent)) - 100) < 1, 'the leaves of the window add up to 100%');
      assert.ok(ownTime('hot_function') > 1.5 && ownTime('hot_function') <= 3.2, `hot_function OwnTime ${ownTime('hot_function')}\n${why}`);
      assert.ok(!rows.some((row) => row.function === 'park' || row.function === '<module>'), 'the idle main thread is left out');
    });

    it('aggregates by function and includes idle threads when asked', async (t) => {
      const target = await hotTarget(t, python);
      const r = await runPeriscope(['top', '--pid', String(target.pid), '-d', '2', '--function', '--idle']);
      const why = `${describeRun(r)}\n${target.describe()}`;
      assert.equal(r.code, 0, why);
      const { rows } = parseTables(r.stdout).at(-1)!;
      const names = rows.map((row) => row.function);
      assert.equal(new Set(names).size, names.length, `one row per function\n${why}`);
      const park = rows.find((row) => row.function === 'park');
      const hot = rows.find((row) => row.function === 'hot_function');
      assert.ok(park && hot, why);
      // Idle and busy thread sampled equally often: each about half the samples.
      assert.ok(park.ownPercent > 30 && park.ownPercent < 70, why);
      assert.ok(hot.ownPercent > 35 && hot.ownPercent < 55, why);
      assert.match(hot.location, /top_hot\.py:\d+$/);
    });

    it('says so and exits 0 when the target exits', async (t) => {
      const target = await hotTarget(t, python, 2.5);
      const r = await runPeriscope(['top', '--pid', String(target.pid)], { timeoutMs: 20_000 });
      const why = `${describeRun(r)}\n${target.describe()}`;
      assert.equal(r.code, 0, why);
      assert.match(r.stdout, new RegExp(`\\nProcess ${target.pid} exited\\.\\n$`), why);
      assert.ok(parseTables(r.stdout).length >= 1, why);
    });
  });
}

test('periscope top: bad arguments and missing processes', async () => {
  const noPid = await runPeriscope(['top']);
  assert.equal(noPid.code, 2, describeRun(noPid));
  assert.match(noPid.stderr, /^periscope: BAD_ARGUMENT: --pid/m);
  const help = await runPeriscope(['top', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--duration/);
  assert.match(help.stdout, /--threads\s+no effect in top/);
  const gone = await runPeriscope(['top', '--pid', '999999999']);
  assert.equal(gone.code, 1, describeRun(gone));
  assert.match(gone.stderr, /^periscope: [A-Z_]+: /m);
  assert.equal(gone.stdout, '');
});

// --- the full-screen view under tmux ----------------------------------------

class Tmux {
  readonly socket = `periscope-top-test-${process.pid}`;

  run(...args: string[]): string {
    const r = spawnSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`tmux ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  }

  screen(): string {
    return this.run('capture-pane', '-p', '-t', 'top');
  }

  flag(name: string): string {
    return this.run('display-message', '-p', '-t', 'top', `#{${name}}`).trim();
  }

  async waitFor(what: string, ok: (screen: string) => boolean, timeoutMs = 15_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (ok(screen)) return screen;
      if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; screen:\n${screen}`);
      await sleep(100);
    }
  }

  kill(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server'], { timeout: 10_000 });
  }
}

function tableOnScreen(screen: string): TopLine[] {
  const lines = screen.split('\n');
  const titles = lines.findIndex((line) => TITLES.test(line));
  if (titles < 0) return [];
  const rows: TopLine[] = [];
  for (const line of lines.slice(titles + 1)) {
    const m = ROW.exec(line);
    if (!m) break;
    rows.push({ ownPercent: +m[1], totalPercent: +m[2], ownTime: +m[3], totalTime: +m[4], function: m[5], location: m[6] });
  }
  return rows;
}

test('periscope top on a terminal (tmux): table, keys, terminal restored', async (t) => {
  const hasTmux = spawnSync('tmux', ['-V']).status === 0;
  if (!hasTmux) {
    console.log('skip periscope top under tmux: tmux is not installed');
    return t.skip('tmux is not installed');
  }
  const python = newestPython();
  if (!python) return t.skip('no Python interpreter installed');
  const target = await hotTarget(t, python);
  const tmux = new Tmux();
  t.after(() => tmux.kill());
  // After top ends, the shell reports its exit code and the terminal modes it left behind.
  const script = `"${PERISCOPE}" top --pid ${target.pid}; echo "EXIT:$?"; stty -a | grep -o -w -e '-\\?icanon' -e '-\\?echo' | tr '\\n' ' '; echo; sleep 60`;
  tmux.run('new-session', '-d', '-s', 'top', '-x', '120', '-y', '30', '-c', ROOT, script);

  const first = await tmux.waitFor('a table with a few hundred samples', (s) => /Total Samples ([2-9]\d\d|\d{4,})/.test(s) && tableOnScreen(s).length > 0);
  assert.equal(tmux.flag('alternate_on'), '1', 'top draws on the alternate screen');
  const rows = tableOnScreen(first);
  assert.equal(rows[0].function, 'hot_function', first);
  assert.match(first, /sort: OwnTime/);
  for (const line of first.split('\n')) assert.ok(line.length < 120, `line fits the 120 columns: ${JSON.stringify(line)}`);

  tmux.run('send-keys', '-t', 'top', '2');
  const sorted = await tmux.waitFor('sorting by %Total', (s) => /sort: %Total/.test(s));
  const byTotal = tableOnScreen(sorted);
  assert.ok(byTotal.length > 0, sorted);
  assert.equal(byTotal[0].totalPercent, Math.max(...byTotal.map((r) => r.totalPercent)), sorted);
  assert.notEqual(byTotal[0].function, 'hot_function', `the thread's outer frames lead by %Total\n${sorted}`);

  tmux.run('send-keys', '-t', 'top', 'q');
  const after = await tmux.waitFor('top to exit', (s) => /EXIT:\d+/.test(s) && /icanon/.test(s), 10_000);
  assert.match(after, /EXIT:0/, after);
  assert.equal(tmux.flag('alternate_on'), '0', 'back on the main screen');
  assert.equal(tmux.flag('cursor_flag'), '1', 'cursor visible again');
  assert.match(after, /(^|\s)icanon\s/, `canonical input restored\n${after}`);
  assert.match(after, /(^|\s)echo\s/, `echo restored\n${after}`);
  assert.doesNotMatch(after, /Function \(filename:line\)/, 'the table went away with the alternate screen');
});
