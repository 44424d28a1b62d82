// `periscope record` accuracy against ground truth the targets measure themselves.
//
// 1. CPU split (test/targets/cpu_split.py): one busy thread runs ~1 ms slices
//    in split_a / split_b / split_c (random order, weights 50/30/20) and keeps
//    its own per-function wall and CPU time (monotonic clock and
//    CLOCK_THREAD_CPUTIME_ID around every call), republished atomically every
//    50 ms. The difference between the readings taken when sampling starts and
//    when periscope exits is the truth for the recording window; the shares of
//    the leaf frames in `-f raw` must be within ±3 points of it. The truth is
//    the wall time (it is the only busy thread): the sampler, like py-spy,
//    counts a runnable-but-preempted thread as active, and on a loaded 2-core CI
//    box the thread is preempted often enough that per-thread CPU time drifts
//    a few points from what any wall-clock sampler can see. When the thread had
//    the CPU >= 90% of the time the CPU-time shares are asserted as well.
//
//    Sample size: with independent samples the standard error of a share p is
//    sqrt(p(1-p)/n); for ±3 points to be a > 3.5 sigma bound at p = 0.5 we need
//    n >= ~3400 -- too slow at 100 Hz (34 s per interpreter). Because samples
//    land at most one per 1 ms slice and the truth is the realized timeline, the
//    error is smaller than that (finite-population factor 1 - L/T for slice
//    length L and period T): at 500 Hz for 4 s (n ~ 2000, T = 2 ms) sigma is
//    ~0.8 points, so ±3 points is ~3.8 sigma. One modern interpreter is also
//    recorded at 1000 Hz for 3 s (n ~ 3000, T ~ L: sigma well under 0.5).
//
// 2. Fork-per-job worker (test/targets/fork_jobs.py), like RQ: a child per job
//    every ~100 ms, each living ~60 ms, 40% in startup_work() then job_work(),
//    appending its own measured split to a file. `record -s -r 500 -d 4` must see
//    >= 20 distinct children and their startup/job shares within ±8 points of the
//    children's own truth; without -s only the parent is seen (checked on the
//    oldest and newest interpreter).
//
// Interpreters run one after another (the tests in this file are sequential).
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { describeRun, type RunResult } from '../helpers/periscope.ts';
import { newestPython, type Python, pythons, skippedPythons } from '../helpers/pythons.ts';
import { leafCounts, outputDir, parseRaw, pct, processOf, type RawStack, shares, sleep, startRecord, totalSamples } from '../helpers/record.ts';
import { startTarget, type Target } from '../helpers/targets.ts';

const SPLIT = ['split_a', 'split_b', 'split_c'] as const;
const SPLIT_TOLERANCE = 0.03;
const FORK_TOLERANCE = 0.08;

interface SplitTruth {
  pid: number;
  version: string;
  clock: string;
  per_slice: number;
  seq: number;
  cpu: Record<string, number>;
  wall: Record<string, number>;
  calls: Record<string, number>;
}

interface ForkTruth {
  pid: number;
  version: string;
  jobs: string;
}

interface JobRecord {
  pid: number;
  job: number;
  startup_wall: number;
  job_wall: number;
  startup_cpu: number;
  job_cpu: number;
}

function assertSucceeded(run: RunResult): void {
  assert.ok(!run.timedOut && run.signal === null && run.code === 0, `expected exit 0:\n${describeRun(run)}`);
}

function readRaw(path: string, run: RunResult): RawStack[] {
  assert.ok(existsSync(path), `no output file ${path}:\n${describeRun(run)}`);
  try {
    return parseRaw(readFileSync(path, 'utf8'));
  } catch (e) {
    assert.fail(`${(e as Error).message}\n${describeRun(run)}`);
  }
}

function diff(after: Record<string, number>, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of SPLIT) out[k] = (after[k] ?? 0) - (before[k] ?? 0);
  return out;
}

function table(recorded: Record<string, number>, truth: Record<string, number>, names: readonly string[]): string {
  return names.map((n) => `${n} ${pct(recorded[n]!)} (truth ${pct(truth[n]!)})`).join(', ');
}

// --- 1. CPU split ---------------------------------------------------------------

async function splitAccuracy(t: TestContext, py: Python, rate: number, seconds: number): Promise<void> {
  const target = await startTarget(py, 'cpu_split.py', { args: ['120'], t });
  const first = await target.truth<SplitTruth>();
  assert.equal(first.pid, target.pid);
  assert.equal(first.version, py.version);
  const out = join(outputDir(t), 'split.txt');
  const rec = startRecord(['record', '--pid', String(target.pid), '-r', String(rate), '-d', String(seconds), '-f', 'raw', '-o', out]);
  let before: SplitTruth;
  try {
    await rec.started;
    before = await target.truth<SplitTruth>();
  } catch (e) {
    const run = await rec.done;
    assert.fail(`${(e as Error).message}\n${describeRun(run)}`);
  }
  const run = await rec.done;
  const after = await target.truth<SplitTruth>();
  assertSucceeded(run);
  assert.ok(!target.exited, `the target died while being recorded: ${target.describe()}`);

  const stacks = readRaw(out, run);
  const counts = leafCounts(stacks);
  const all = totalSamples(stacks);
  const inSplit = SPLIT.reduce((n, f) => n + (counts.get(f) ?? 0), 0);
  const recorded = shares(counts, SPLIT);
  const cpu = diff(after.cpu, before.cpu);
  const wall = diff(after.wall, before.wall);
  const truth = shares(wall, SPLIT);
  const cpuTruth = shares(cpu, SPLIT);
  const cpuSeconds = SPLIT.reduce((s, f) => s + cpu[f]!, 0);
  const wallSeconds = SPLIT.reduce((s, f) => s + wall[f]!, 0);
  // Share of its time in split_* that the thread was actually on a CPU (not preempted).
  const onCpu = wallSeconds > 0 ? cpuSeconds / wallSeconds : 0;
  const summary =
    `python ${py.label} at ${rate} Hz for ${seconds} s: ${inSplit} samples in split_*, ${all - inSplit} elsewhere; ` +
    `${table(recorded, truth, SPLIT)}; truth over ${wallSeconds.toFixed(2)} s in split_* (${after.seq - before.seq} publishes); ` +
    `own CPU-time shares ${SPLIT.map((f) => pct(cpuTruth[f]!)).join('/')} (${before.clock}, on CPU ${pct(onCpu)} of the time)`;
  t.diagnostic(summary);
  console.log(`record accuracy: ${summary}`);

  // The busy thread is on CPU (or runnable) all the time: nearly every tick is a sample.
  const expected = rate * seconds;
  assert.ok(inSplit >= 0.4 * expected, `only ${inSplit} samples in split_a/b/c, expected about ${expected}: ${summary}\n${describeRun(run)}`);
  assert.ok(all - inSplit <= 0.15 * all, `${all - inSplit} of ${all} samples outside split_a/b/c: ${summary}`);
  assert.ok(wallSeconds >= 0.5 * seconds, `the target spent only ${wallSeconds.toFixed(2)} s in split_* during the window: ${summary}`);
  for (const f of SPLIT) {
    const d = recorded[f]! - truth[f]!;
    assert.ok(Math.abs(d) <= SPLIT_TOLERANCE, `${f}: recorded ${pct(recorded[f]!)} vs truth ${pct(truth[f]!)} (off by ${(100 * d).toFixed(1)} points, allowed ±${100 * SPLIT_TOLERANCE}): ${summary}`);
  }
  // Per-thread CPU time is the same truth only while nothing preempts the
  // thread (a runnable thread is sampled as active, like py-spy does).
  if (onCpu >= 0.9) {
    for (const f of SPLIT) {
      const d = recorded[f]! - cpuTruth[f]!;
      assert.ok(Math.abs(d) <= SPLIT_TOLERANCE, `${f}: recorded ${pct(recorded[f]!)} vs the thread's own CPU-time share ${pct(cpuTruth[f]!)} (off by ${(100 * d).toFixed(1)} points): ${summary}`);
    }
  }
}

const all = pythons();
for (const { label, reason } of skippedPythons()) {
  test(`record accuracy: python ${label}`, { skip: reason }, () => {});
}

for (const py of all) {
  test(`record accuracy, CPU split at 500 Hz: python ${py.label} (${py.version})`, { timeout: 90_000 }, (t) => splitAccuracy(t, py, 500, 4));
}

test('record accuracy, CPU split at 1000 Hz (newest python)', { timeout: 90_000 }, async (t) => {
  const py = newestPython();
  if (!py) {
    t.skip('no Python interpreter installed');
    return;
  }
  await splitAccuracy(t, py, 1000, 3);
});

// --- 2. fork per job --------------------------------------------------------------

async function jobRecords(truth: ForkTruth): Promise<Map<number, JobRecord>> {
  // Children alive when the recording ended finish within ~60 ms.
  await sleep(300);
  const jobs = new Map<number, JobRecord>();
  const text = existsSync(truth.jobs) ? readFileSync(truth.jobs, 'utf8') : '';
  for (const line of text.split('\n')) {
    if (!line) continue;
    const rec = JSON.parse(line) as JobRecord;
    jobs.set(rec.pid, rec);
  }
  return jobs;
}

async function forkPerJob(t: TestContext, py: Python, alsoWithoutSubprocesses: boolean): Promise<void> {
  const target: Target = await startTarget(py, 'fork_jobs.py', { args: ['120'], t });
  const truth = await target.truth<ForkTruth>();
  assert.equal(truth.pid, target.pid);
  const dir = outputDir(t);

  // With --subprocesses --per-process: the children, each seen by its own process root frame.
  const out = join(dir, 'fork.txt');
  const rec = startRecord(['record', '--pid', String(target.pid), '-s', '--per-process', '-r', '500', '-d', '4', '-f', 'raw', '-o', out]);
  const run = await rec.done;
  assertSucceeded(run);
  assert.ok(!target.exited, `the target died while being recorded: ${target.describe()}`);
  const stacks = readRaw(out, run);
  const jobs = await jobRecords(truth);

  const roots = stacks.map(processOf);
  const unrooted = stacks.filter((_, i) => roots[i] === undefined);
  assert.equal(unrooted.length, 0, `with several processes every stack needs a "process PID: ..." root; got e.g. ${unrooted[0]?.frames.map((f) => f.label).join(';')}`);
  const childStacks = stacks.filter((s) => processOf(s) !== target.pid);
  const childPids = new Set(childStacks.map((s) => processOf(s)!));
  const strangers = [...childPids].filter((p) => !jobs.has(p));
  assert.deepEqual(strangers, [], `process roots that are not children of the worker (jobs file has ${jobs.size} children)`);
  for (const s of childStacks) {
    const label = s.frames[0]!.label;
    assert.ok(label.includes('fork_jobs.py'), `a child's process root should carry its (inherited) command line: ${label}`);
  }

  const counts = leafCounts(childStacks);
  const names = ['startup_work', 'job_work'] as const;
  const recorded = shares(counts, names);
  let startup = 0;
  let job = 0;
  for (const pid of childPids) {
    const r = jobs.get(pid)!;
    startup += r.startup_wall;
    job += r.job_wall;
  }
  const truthShares = shares({ startup_work: startup, job_work: job }, names);
  const inWork = (counts.get('startup_work') ?? 0) + (counts.get('job_work') ?? 0);
  const summary =
    `python ${py.label}: ${childPids.size} children seen (of ${jobs.size} run), ${inWork} samples in their work functions, ` +
    `${totalSamples(childStacks) - inWork} elsewhere in children; ${table(recorded, truthShares, names)}`;
  t.diagnostic(summary);
  console.log(`record fork-per-job: ${summary}`);
  assert.ok(childPids.size >= 20, `only ${childPids.size} distinct children seen in 4 s (one starts every ~100 ms): ${summary}\n${describeRun(run)}`);
  for (const n of names) {
    const d = recorded[n]! - truthShares[n]!;
    assert.ok(Math.abs(d) <= FORK_TOLERANCE, `${n}: recorded ${pct(recorded[n]!)} vs the children's own ${pct(truthShares[n]!)} (off by ${(100 * d).toFixed(1)} points, allowed ±${100 * FORK_TOLERANCE}): ${summary}`);
  }

  if (!alsoWithoutSubprocesses) return;
  // By default the children (sharing the worker's command line) merge into one
  // tree with the parent: no process roots, the job's work at full width.
  const mergedOut = join(dir, 'merged.txt');
  const mergedRun = await startRecord(['record', '--pid', String(target.pid), '-s', '-r', '500', '-d', '2', '-f', 'raw', '-o', mergedOut]).done;
  assertSucceeded(mergedRun);
  const mergedStacks = readRaw(mergedOut, mergedRun);
  assert.deepEqual(mergedStacks.filter((s) => processOf(s) !== undefined).map((s) => s.frames[0]!.label), [], 'process roots in a merged record');
  assert.ok((leafCounts(mergedStacks).get('job_work') ?? 0) > 0, `no job_work in the merged record:\n${describeRun(mergedRun)}`);
  // Without --subprocesses: only the parent (idle samples included so it shows at all).
  const parentOut = join(dir, 'parent.txt');
  const parentRun = await startRecord(['record', '--pid', String(target.pid), '-i', '-r', '200', '-d', '1', '-f', 'raw', '-o', parentOut]).done;
  assertSucceeded(parentRun);
  const parentStacks = readRaw(parentOut, parentRun);
  assert.ok(totalSamples(parentStacks) > 0, `no samples of the parent:\n${describeRun(parentRun)}`);
  for (const s of parentStacks) {
    const labels = s.frames.map((f) => f.label);
    assert.equal(processOf(s), undefined, `a process root frame without --subprocesses: ${labels.join(';')}`);
    assert.ok(!s.frames.some((f) => f.name === 'child' || f.name === 'startup_work' || f.name === 'job_work'), `a child's stack without --subprocesses: ${labels.join(';')}`);
  }
  assert.ok(parentStacks.some((s) => s.frames.some((f) => f.name === 'run_jobs')), 'the parent loop run_jobs() is missing');
}

for (const { label, reason } of skippedPythons()) {
  test(`record --subprocesses, fork per job: python ${label}`, { skip: reason }, () => {});
}

// The check without --subprocesses runs on the oldest and the newest interpreter.
const newest = newestPython();
for (const py of all) {
  const both = py === all[0] || py === newest;
  test(`record --subprocesses, fork per job${both ? ' (and without -s)' : ''}: python ${py.label} (${py.version})`, { timeout: 90_000 }, (t) => forkPerJob(t, py, both));
}
