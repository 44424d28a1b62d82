// `periscope dump`: read the Python stacks of a running process from outside.
//
// For every installed interpreter (test/helpers/pythons.ts) a target
// (test/targets/parked.py) parks named threads in known call chains and
// writes, from inside, the exact frame list of each one (sys._getframe() and
// f_back, taken on the very line the thread blocks on). The dump has to equal
// that ground truth frame for frame: names (co_qualname on 3.11+, else
// co_name), filenames (co_filename) and line numbers.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DumpFrame, DumpThread } from '../../shared/protocol.ts';
import { describeRun, errorCode, parseDump, type RunResult, runPeriscope } from '../helpers/periscope.ts';
import { newestPython, type Python, pythons, skippedPythons } from '../helpers/pythons.ts';
import { startTarget, type Target, threadStates } from '../helpers/targets.ts';

// --- ground truth written by the targets ----------------------------------

interface TruthFrame {
  name: string;
  filename: string;
  line: number;
}

interface TruthThread {
  name: string;
  kind: string;
  ident: number;
  native_id: number;
  busy: boolean;
  frames: TruthFrame[];
  /** Busy thread only: the innermost line is somewhere in this inclusive range. */
  busy_lines?: [number, number];
}

interface ProcessTruth {
  pid: number;
  version: string;
  executable: string;
  threads: TruthThread[];
}

interface FamilyTruth extends ProcessTruth {
  children: (ProcessTruth & { how: 'fork' | 'spawn' })[];
}

// --- checks ---------------------------------------------------------------

const RUN_TIMEOUT_MS = 30_000;

function fmt(f: TruthFrame | DumpFrame | undefined): string {
  return f ? `${f.name} (${f.filename}:${f.line})` : '(none)';
}

function stackExcerpt(frames: (TruthFrame | DumpFrame)[], around: number): string {
  const lo = Math.max(0, around - 3);
  const hi = Math.min(frames.length, around + 4);
  const lines = frames.slice(lo, hi).map((f, i) => `      #${lo + i} ${fmt(f)}`);
  if (lo > 0) lines.unshift(`      ... ${lo} frames`);
  if (hi < frames.length) lines.push(`      ... ${frames.length - hi} more frames`);
  return lines.join('\n');
}

/** Problems (empty if none) comparing a dumped stack with its ground truth. */
function frameProblems(what: string, dumped: DumpFrame[], truth: TruthThread): string[] {
  const expected = truth.frames;
  const lines = truth.busy_lines;
  const same = (i: number): boolean => {
    const a = dumped[i];
    const e = expected[i];
    if (!a || !e || a.name !== e.name || a.filename !== e.filename) return false;
    if (i === 0 && lines) return a.line >= lines[0] && a.line <= lines[1];
    return a.line === e.line;
  };
  const n = Math.max(dumped.length, expected.length);
  for (let i = 0; i < n; i++) {
    if (same(i)) continue;
    const expectText = i === 0 && lines ? `${expected[0]!.name} (${expected[0]!.filename}:${lines[0]}..${lines[1]})` : fmt(expected[i]);
    return [
      `${what}: frame #${i} differs (ground truth has ${expected.length} frames, dump has ${dumped.length}; innermost first)\n` +
        `    expected ${expectText}\n    got      ${fmt(dumped[i])}\n` +
        `    ground truth:\n${stackExcerpt(expected, i)}\n    dump:\n${stackExcerpt(dumped, i)}`,
    ];
  }
  return [];
}

/**
 * Every ground-truth thread must be in the dump, matched by OS thread id, with
 * the same ident, name and frames; parked threads idle and without the GIL,
 * the busy one active; nothing else in the dump.
 */
function dumpProblems(threads: DumpThread[], truth: ProcessTruth, label: string, py: Python): string[] {
  const problems: string[] = [];
  const mine = threads.filter((t) => t.pid === truth.pid);
  const byTid = new Map<number, DumpThread>();
  for (const t of mine) {
    if (byTid.has(t.os_thread_id)) problems.push(`${label}: os_thread_id ${t.os_thread_id} appears more than once`);
    byTid.set(t.os_thread_id, t);
  }
  for (const want of truth.threads) {
    const what = `${label} thread ${JSON.stringify(want.name)} (${want.kind}, tid ${want.native_id})`;
    const got = byTid.get(want.native_id);
    if (!got) {
      problems.push(`${what}: missing from the dump; dumped threads: ${mine.map((t) => `${t.os_thread_id}=${JSON.stringify(t.thread_name)}`).join(', ')}`);
      continue;
    }
    byTid.delete(want.native_id);
    if (got.thread_id !== want.ident) problems.push(`${what}: thread_id ${got.thread_id}, expected the threading ident ${want.ident}`);
    if (got.thread_name !== want.name) problems.push(`${what}: thread_name ${JSON.stringify(got.thread_name)}, expected ${JSON.stringify(want.name)}`);
    problems.push(...frameProblems(what, got.frames, want));
    if (got.truncated) problems.push(`${what}: reported truncated, though its ${want.frames.length} frames were all read`);
    if (want.busy) {
      if (!got.active) problems.push(`${what}: spins in pure Python but is reported idle (active=false)`);
      // Every other thread sleeps without asking for the GIL, so the spinner
      // holds it all the time; a free-threaded build has none to hold.
      if (!py.freeThreaded && !got.owns_gil) problems.push(`${what}: the only running thread is not reported to hold the GIL`);
      if (py.freeThreaded && got.owns_gil) problems.push(`${what}: reported to hold the GIL of a free-threaded build`);
    } else {
      if (got.active) problems.push(`${what}: blocked in time.sleep but is reported active`);
      if (got.owns_gil) problems.push(`${what}: blocked in time.sleep but is reported to own the GIL`);
    }
  }
  for (const extra of byTid.values()) {
    problems.push(`${label}: unexpected thread in the dump: os_thread_id ${extra.os_thread_id} ${JSON.stringify(extra.thread_name)}, top frame ${fmt(extra.frames[0])}`);
  }
  const gil = mine.filter((t) => t.owns_gil);
  if (gil.length > 1) problems.push(`${label}: ${gil.length} threads claim the GIL: ${gil.map((t) => JSON.stringify(t.thread_name)).join(', ')}`);
  return problems;
}

function assertNoProblems(problems: string[], run: RunResult): void {
  if (problems.length === 0) return;
  const shown = problems.slice(0, 12).join('\n\n');
  const more = problems.length > 12 ? `\n\n... and ${problems.length - 12} more problems` : '';
  assert.fail(`${problems.length} problem(s) in \`periscope ${run.args.join(' ')}\`:\n\n${shown}${more}`);
}

function assertSucceeded(run: RunResult): void {
  assert.ok(!run.timedOut && run.signal === null && run.code === 0, `expected exit 0:\n${describeRun(run)}`);
}

function parseOrFail(run: RunResult): DumpThread[] {
  try {
    return parseDump(run.stdout);
  } catch (e) {
    assert.fail(`${(e as Error).message}\n${describeRun(run)}`);
  }
}

function assertError(run: RunResult, allowed: readonly string[]): void {
  assert.ok(!run.timedOut, `timed out:\n${describeRun(run)}`);
  assert.equal(run.signal, null, `killed by a signal:\n${describeRun(run)}`);
  assert.notEqual(run.code, 0, `expected a failure (${allowed.join(' or ')}):\n${describeRun(run)}`);
  const code = errorCode(run.stderr);
  assert.ok(code !== undefined && allowed.includes(code), `expected a stderr line "periscope: ${allowed.join('|')}: ...", got code ${code}:\n${describeRun(run)}`);
}

/** After a --blocking dump no thread of the target may stay stopped. */
async function assertResumed(target: Target): Promise<void> {
  const deadline = Date.now() + 2_000;
  for (;;) {
    const stopped = [...threadStates(target.pid)].filter(([, s]) => s === 't' || s === 'T');
    if (stopped.length === 0) break;
    if (Date.now() > deadline) assert.fail(`--blocking left threads of ${target.pid} stopped: ${stopped.map(([tid, s]) => `${tid}:${s}`).join(', ')}`);
    await sleep(50);
  }
  assert.ok(!target.exited, `the target died during --blocking: ${target.describe()}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function pathSuffixOf(file: string, full: string): boolean {
  return file === full || (file.length > 0 && full.endsWith(file) && (full[full.length - file.length - 1] === '/' || file.startsWith('/')));
}

// --- one test per interpreter ----------------------------------------------

async function dumpJson(t: TestContext, target: Target, truth: ProcessTruth, py: Python, blocking: boolean): Promise<void> {
  const args = ['dump', '--pid', String(target.pid), '--json', ...(blocking ? ['--blocking'] : [])];
  const run = await runPeriscope(args, { timeoutMs: RUN_TIMEOUT_MS });
  if (blocking) await assertResumed(target);
  assertSucceeded(run);
  const threads = parseOrFail(run);
  const others = threads.filter((th) => th.pid !== target.pid);
  assert.equal(others.length, 0, `threads of other pids without --subprocesses: ${others.map((th) => th.pid).join(', ')}`);
  assertNoProblems(dumpProblems(threads, truth, `pid ${target.pid}`, py), run);
  t.diagnostic(`${threads.length} threads, ${threads.reduce((n, th) => n + th.frames.length, 0)} frames in ${run.ms} ms`);
}

async function dumpText(target: Target, truth: ProcessTruth, py: Python): Promise<void> {
  const run = await runPeriscope(['dump', '--pid', String(target.pid)], { timeoutMs: RUN_TIMEOUT_MS });
  assertSucceeded(run);
  const lines = run.stdout.split('\n');
  const context = `\n${describeRun(run)}`;
  assert.ok(lines[0]?.startsWith(`Process ${target.pid}: `) && lines[0].includes('parked.py'), `first line should be "Process ${target.pid}: <cmdline>"${context}`);
  assert.ok(lines[1]?.startsWith(`Python v${py.version} (`), `second line should be "Python v${py.version} (<path>)"${context}`);
  for (const want of truth.threads) {
    const header = new RegExp(`^Thread ${want.native_id} \\((idle|active)(, gil)?\\): "${escapeRegExp(want.name)}"$`);
    const at = lines.findIndex((l) => header.test(l));
    assert.ok(at >= 0, `no line like 'Thread ${want.native_id} (idle|active[, gil]): "${want.name}"'${context}`);
    const state = header.exec(lines[at]!)![1];
    assert.equal(state, want.busy ? 'active' : 'idle', `thread ${want.name} is ${state}${context}`);
    if (want.kind !== 'depth1') continue;
    // The whole depth-1 stack, in order, right under its header.
    want.frames.forEach((frame, i) => {
      const line = lines[at + 1 + i] ?? '';
      const m = /^ {4}(.+) \((.+):(\d+)\)$/.exec(line);
      assert.ok(m, `expected "    ${fmt(frame)}" under the header of ${want.name}, got ${JSON.stringify(line)}${context}`);
      const [, name, file, lineno] = m;
      assert.ok(
        name === frame.name && Number(lineno) === frame.line && pathSuffixOf(file!, frame.filename),
        `expected "    ${fmt(frame)}" (the file may be shortened), got ${JSON.stringify(line)}${context}`,
      );
    });
  }
}

const all = pythons();
// Missing interpreters show up in the report as skipped tests, with the reason.
for (const { label, reason } of skippedPythons()) {
  test(`periscope dump: python ${label}`, { skip: reason }, () => {});
}

for (const py of all) {
  test(`periscope dump: python ${py.label} (${py.version})`, { timeout: 120_000 }, async (t) => {
    const target = await startTarget(py, 'parked.py', { args: ['300'], t });
    const truth = await target.truth<ProcessTruth>();
    assert.equal(truth.pid, target.pid);
    assert.equal(truth.version, py.version);

    await t.test('--json', (tt) => dumpJson(tt, target, truth, py, false));
    await t.test('--json --blocking', (tt) => dumpJson(tt, target, truth, py, true));
    await t.test('text', () => dumpText(target, truth, py));
    assert.ok(!target.exited, `the target died while being dumped: ${target.describe()}`);
  });
}

// --- errors, exits, subprocesses (once) --------------------------------------

test('periscope dump: errors', { timeout: 120_000 }, async (t) => {
  await t.test('a pid that no longer exists -> NO_SUCH_PROCESS', async () => {
    const gone = spawn('true', [], { stdio: 'ignore' });
    const pid = gone.pid;
    assert.ok(pid !== undefined, 'could not run `true`');
    await new Promise((resolve) => gone.on('close', resolve));
    for (const extra of [[], ['--json']]) {
      const run = await runPeriscope(['dump', '--pid', String(pid), ...extra], { timeoutMs: RUN_TIMEOUT_MS });
      assertError(run, ['NO_SUCH_PROCESS']);
    }
  });

  await t.test('a process that is not Python -> NOT_PYTHON', async (tt) => {
    const sleeper = spawn('sleep', ['100'], { stdio: 'ignore' });
    tt.after(() => {
      sleeper.kill('SIGKILL');
    });
    await new Promise<void>((resolve, reject) => {
      sleeper.once('spawn', resolve);
      sleeper.once('error', reject);
    });
    for (const extra of [[], ['--json']]) {
      const run = await runPeriscope(['dump', '--pid', String(sleeper.pid), ...extra], { timeoutMs: RUN_TIMEOUT_MS });
      assertError(run, ['NOT_PYTHON']);
    }
    assert.equal(sleeper.exitCode, null, 'the non-Python process must survive the attempt');
  });

  await t.test('bad arguments -> BAD_ARGUMENT', async () => {
    for (const args of [['dump'], ['dump', '--pid'], ['dump', '--pid', 'abc'], ['dump', '--pid', '12x'], ['dump', '--pid', '-5'], ['dump', '--pid', '1', '--no-such-flag']]) {
      const run = await runPeriscope(args, { timeoutMs: RUN_TIMEOUT_MS });
      assertError(run, ['BAD_ARGUMENT']);
    }
  });

  await t.test('another user\'s process -> PERMISSION_DENIED', async (tt) => {
    const py = all.find((p) => p.label === 'debian-3.11') ?? newestPython();
    const wrapper = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
    const why =
      typeof process.getuid !== 'function' || process.getuid() !== 0
        ? 'needs to run as root (to start a target as root and dump it as nobody)'
        : !py
          ? 'no Python interpreter installed'
          : spawnSync(wrapper[0]!, [...wrapper.slice(1), process.execPath, '-e', '0'], { stdio: 'ignore', timeout: 10_000 }).status !== 0
            ? `cannot run ${process.execPath} as nobody with setpriv`
            : undefined;
    if (why || !py) {
      console.log(`skip PERMISSION_DENIED: ${why}`);
      tt.skip(why);
      return;
    }
    const target = await startTarget(py, 'parked.py', { args: ['120'], t: tt });
    await target.truth<ProcessTruth>();
    const run = await runPeriscope(['dump', '--pid', String(target.pid), '--json'], { timeoutMs: RUN_TIMEOUT_MS, wrapper });
    assertError(run, ['PERMISSION_DENIED']);
  });
});

test('periscope dump: a target that exits while being dumped', { timeout: 180_000 }, async (t) => {
  const py = newestPython();
  if (!py) {
    t.skip('no Python interpreter installed');
    return;
  }
  // Lifetimes are staggered so the dumps (a Node start-up each) land at
  // different points of the target's finalization.
  const rounds: [number, 'normal' | 'hard'][] = [
    [700, 'normal'],
    [900, 'hard'],
    [1200, 'normal'],
  ];
  let ok = 0;
  let failed = 0;
  for (const [lifetimeMs, mode] of rounds) {
    const target = await startTarget(py, 'exits_soon.py', { args: [String(lifetimeMs), mode], t });
    await target.truth<{ pid: number }>();
    const deadline = Date.now() + lifetimeMs + 30_000;
    let afterExit = 0;
    let i = 0;
    while (afterExit < 1) {
      const wasExited = target.exited;
      const blocking = i++ % 2 === 1;
      const run = await runPeriscope(['dump', '--pid', String(target.pid), '--json', ...(blocking ? ['--blocking'] : [])], { timeoutMs: RUN_TIMEOUT_MS });
      assert.ok(!run.timedOut, `hung on an exiting target:\n${describeRun(run)}`);
      assert.equal(run.signal, null, `crashed on an exiting target:\n${describeRun(run)}`);
      if (run.code === 0) {
        assert.ok(!wasExited, `exit 0 for a process that had already exited and been reaped:\n${describeRun(run)}`);
        const threads = parseOrFail(run);
        assert.ok(threads.every((th) => th.pid === target.pid), `threads of other pids:\n${describeRun(run)}`);
        ok++;
      } else {
        assertError(run, ['PROCESS_EXITED', 'NO_SUCH_PROCESS']);
        failed++;
      }
      if (wasExited) afterExit++;
      if (Date.now() > deadline) assert.fail(`the target did not exit: ${target.describe()}`);
    }
    assert.equal(target.exitSignal, null, `the target was killed by a signal (the dump must not harm it): ${target.describe()}`);
    assert.equal(target.exitCode, 0, `the target should exit cleanly: ${target.describe()}`);
  }
  t.diagnostic(`python ${py.label}: ${ok} dumps succeeded, ${failed} reported the exit`);
  assert.ok(ok > 0, 'no dump succeeded while the target was still running');
});

test('periscope dump: --subprocesses', { timeout: 120_000 }, async (t) => {
  const py = newestPython();
  if (!py) {
    t.skip('no Python interpreter installed');
    return;
  }
  const target = await startTarget(py, 'parent_with_children.py', { args: ['120'], t });
  const truth = await target.truth<FamilyTruth>();
  const pids = [truth.pid, ...truth.children.map((c) => c.pid)];
  assert.equal(truth.children.length, 2);

  await t.test('with --subprocesses: the parent and both children', async () => {
    const run = await runPeriscope(['dump', '--pid', String(target.pid), '--json', '--subprocesses'], { timeoutMs: RUN_TIMEOUT_MS });
    assertSucceeded(run);
    const threads = parseOrFail(run);
    const stray = threads.filter((th) => !pids.includes(th.pid));
    assert.equal(stray.length, 0, `threads of unexpected pids ${stray.map((th) => th.pid).join(', ')} (expected ${pids.join(', ')})`);
    const problems = dumpProblems(threads, truth, `parent pid ${truth.pid}`, py);
    for (const child of truth.children) problems.push(...dumpProblems(threads, child, `${child.how} child pid ${child.pid}`, py));
    assertNoProblems(problems, run);
  });

  await t.test('without --subprocesses: the parent only', async () => {
    const run = await runPeriscope(['dump', '--pid', String(target.pid), '--json'], { timeoutMs: RUN_TIMEOUT_MS });
    assertSucceeded(run);
    const threads = parseOrFail(run);
    assertNoProblems(dumpProblems(threads, truth, `parent pid ${truth.pid}`, py), run);
    assert.deepEqual([...new Set(threads.map((th) => th.pid))], [truth.pid]);
  });
});

test('periscope dump: a stack deeper than the reader walks is marked truncated', { timeout: 120_000 }, async (t) => {
  const py = newestPython();
  if (!py) {
    t.skip('no Python interpreter installed');
    return;
  }
  const MAX_FRAMES = 4096; // native/src/stack_walker.h kMaxFrames
  const target = await startTarget(py, 'deep_stack.py', { args: [String(MAX_FRAMES + 500)], t });
  const truth = await target.truth<{ pid: number; deep_tid: number; deep_frames: number }>();
  assert.ok(truth.deep_frames > MAX_FRAMES, `the target parked only ${truth.deep_frames} frames deep`);

  const json = await runPeriscope(['dump', '--pid', String(target.pid), '--json'], { timeoutMs: RUN_TIMEOUT_MS });
  assertSucceeded(json);
  const threads = parseOrFail(json);
  const deep = threads.find((th) => th.os_thread_id === truth.deep_tid);
  assert.ok(deep, `no thread ${truth.deep_tid} in the dump:\n${describeRun(json)}`);
  assert.equal(deep.truncated, true, 'the deep thread is not marked truncated');
  assert.equal(deep.frames.length, MAX_FRAMES, 'the deep thread should keep the innermost frames up to the bound');
  assert.equal(deep.frames[0]!.name, 'dive');
  const shallow = threads.filter((th) => th !== deep);
  assert.ok(shallow.length > 0 && shallow.every((th) => !th.truncated), `only the deep thread may be truncated:\n${describeRun(json)}`);

  const text = await runPeriscope(['dump', '--pid', String(target.pid)], { timeoutMs: RUN_TIMEOUT_MS });
  assertSucceeded(text);
  const lines = text.stdout.split('\n');
  const header = lines.findIndex((l) => l.startsWith(`Thread ${truth.deep_tid} `));
  assert.ok(header >= 0, `no header for thread ${truth.deep_tid}:\n${describeRun(text)}`);
  assert.equal(lines[header + 1 + MAX_FRAMES], '    (stack truncated)', `the deep stack's last line should say it was truncated:\n${describeRun(text)}`);
  assert.equal(lines.filter((l) => l === '    (stack truncated)').length, 1, 'only the deep thread is marked truncated in the text');
});
