// `periscope dump --async`: the asyncio task tree of a 3.14+ target, read
// through the AsyncioDebug section its _asyncio module publishes.
//
// The target (test/targets/async_tree.py) builds a known await tree (main
// gathers fetch-a and fetch-b; fetch-b's TaskGroup holds parse-1 and
// parse-2; one unnamed task) and writes, from inside, every task's name, the
// tasks awaiting it and its coroutine chain (cr_await). The dump has to equal
// that ground truth, and the tree CPython's own reader prints
// (`python -m asyncio pstree PID`) task for task, edge for edge and coroutine
// for coroutine (name, file and line). Forged targets check that a hostile
// section or task list is refused or cut short, never misread or hung on.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { type AsyncDump, type DumpTask, parseAsyncDump } from '../../shared/protocol.ts';
import { describeRun, runPeriscope } from '../helpers/periscope.ts';
import { type Python, pythons, skippedPythons } from '../helpers/pythons.ts';
import { startTarget, type Target } from '../helpers/targets.ts';

interface TruthTask {
  name: string;
  awaited_by: string[];
  stack: string[]; // innermost first
}

interface AsyncTruth {
  pid: number;
  version: string;
  tasks: TruthTask[];
  forged: string | null;
}

const minor = (py: Python) => Number(py.version.split('.')[1]);
const ASYNC = pythons().filter((py) => py.version.startsWith('3.') && minor(py) >= 14);

for (const s of skippedPythons()) test(`periscope dump --async: python ${s.label}`, { skip: s.reason }, () => {});
for (const py of pythons().filter((p) => !ASYNC.includes(p))) {
  test(`periscope dump --async: python ${py.label} (${py.version})`, { skip: 'asyncio task introspection needs Python 3.14+ (no AsyncioDebug section)' }, () => {});
}
if (ASYNC.length === 0) test('periscope dump --async', { skip: 'no Python 3.14+ interpreter is prepared' }, () => {});

// --- trees: pstree's and ours, read the same way ----------------------------

/** A tree printed with ├── / └── connectors: each node's depth and text. */
function treeNodes(text: string): { depth: number; text: string }[] {
  const out: { depth: number; text: string }[] = [];
  for (const line of text.split('\n')) {
    const m = /^((?:[│ ] {3})*)(?:├── |└── )(.*)$/u.exec(line);
    if (m) out.push({ depth: m[1]!.length / 4, text: m[2]! });
  }
  return out;
}

interface TreeTask {
  parent: string | null; // the task under which it is printed
  coroutines: string[]; // between the task and its children (or its end), outermost first
}

/**
 * Tasks of a printed tree by name. `task` recognises a task line and returns
 * its name; any other line is a coroutine of the nearest task above it.
 */
function treeTasks(text: string, task: (t: string) => string | null, coroutine: (t: string) => string): Map<string, TreeTask[]> {
  const tasks = new Map<string, TreeTask[]>();
  const stack: { depth: number; task: string | null; entry: TreeTask | null }[] = [];
  for (const node of treeNodes(text)) {
    while (stack.length && stack[stack.length - 1]!.depth >= node.depth) stack.pop();
    const name = task(node.text);
    if (name !== null) {
      let owner: string | null = null;
      for (let i = stack.length - 1; i >= 0 && owner === null; i--) owner = stack[i]!.task;
      const entry: TreeTask = { parent: owner, coroutines: [] };
      tasks.set(name, [...(tasks.get(name) ?? []), entry]);
      stack.push({ depth: node.depth, task: name, entry });
    } else {
      // A coroutine belongs to the nearest task above it: its chain hangs
      // under that task, and the tasks it awaits hang under its innermost.
      const entry = stack.length ? stack[stack.length - 1]!.entry : null;
      entry?.coroutines.push(coroutine(node.text));
      stack.push({ depth: node.depth, task: null, entry });
    }
  }
  return tasks;
}

const pstreeTask = (t: string) => /^\(T\) (.*)$/.exec(t)?.[1] ?? null;
const pstreeCoroutine = (t: string) => t.trim(); // " funcname file:line"
const ourTask = (t: string) => /^\(T\) (.*?) \[0x[0-9a-f]+\]/.exec(t)?.[1] ?? null;
const ourCoroutine = (t: string) => {
  const m = /^(.*) \((.*):(-?\d+)\)$/.exec(t);
  return m ? `${m[1]} ${m[2]}:${m[3]}` : t;
};

// --- checks ---------------------------------------------------------------------

function byName(dump: AsyncDump): Map<string, DumpTask> {
  const out = new Map<string, DumpTask>();
  for (const t of dump.tasks) {
    assert.ok(t.name !== null, `task 0x${t.task_id.toString(16)} has a name`);
    assert.ok(!out.has(t.name), `task names are unique: ${t.name}`);
    out.set(t.name, t);
  }
  return out;
}

async function dumpAsyncJson(target: Target): Promise<AsyncDump> {
  const run = await runPeriscope(['dump', '--pid', String(target.pid), '--async', '--json'], { timeoutMs: 30_000 });
  assert.equal(run.code, 0, describeRun(run));
  return parseAsyncDump(JSON.parse(run.stdout), 'dump');
}

function pstree(py: Python, pid: number): string {
  const r = spawnSync(py.exe, ['-m', 'asyncio', 'pstree', String(pid)], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  assert.equal(r.status, 0, `python -m asyncio pstree ${pid} failed: ${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

for (const py of ASYNC) {
  test(`periscope dump --async: python ${py.label} (${py.version})`, { timeout: 120_000 }, async (t) => {
    const target = await startTarget(py, 'async_tree.py', { args: ['300'], t });
    const truth = await target.truth<AsyncTruth>();
    assert.equal(truth.pid, target.pid);

    await t.test('--json equals the ground truth', async () => {
      const dump = await dumpAsyncJson(target);
      assert.deepEqual(dump.task_sources, [{ pid: target.pid, unavailable: null, truncated: false }]);
      assert.ok(dump.threads.length >= 1, 'the threads are still dumped');
      const tasks = byName(dump);
      const names = (ids: number[]) => ids.map((id) => dump.tasks.find((x) => x.task_id === id)?.name ?? `?${id}`).sort();
      assert.deepEqual([...tasks.keys()].sort(), truth.tasks.map((x) => x.name).sort(), 'the same tasks');
      for (const expected of truth.tasks) {
        const got = tasks.get(expected.name)!;
        assert.equal(got.pid, target.pid);
        assert.ok(got.thread_id !== null, `${expected.name} is in its thread's list`);
        assert.equal(got.truncated, false, `${expected.name}'s stack is whole`);
        assert.deepEqual(names(got.awaited_by), expected.awaited_by, `tasks awaiting ${expected.name}`);
        assert.deepEqual(got.frames.map((f) => f.name), expected.stack, `coroutine stack of ${expected.name}`);
      }
    });

    await t.test('equals `python -m asyncio pstree`', async () => {
      const theirs = treeTasks(pstree(py, target.pid), pstreeTask, pstreeCoroutine);
      assert.equal(theirs.size, truth.tasks.length, 'pstree shows every task');
      for (const [name, entries] of theirs) assert.ok(entries[0]!.coroutines.length > 0, `pstree shows ${name}'s coroutines`);
      const run = await runPeriscope(['dump', '--pid', String(target.pid), '--async'], { timeoutMs: 30_000 });
      assert.equal(run.code, 0, describeRun(run));
      const ours = treeTasks(run.stdout.slice(run.stdout.indexOf('asyncio tasks')), ourTask, ourCoroutine);
      assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort(), `the same tasks\n${run.stdout}`);
      for (const [name, entries] of theirs) {
        const mine = ours.get(name)!;
        assert.deepEqual(mine.map((e) => e.parent).sort(), entries.map((e) => e.parent).sort(), `parents of ${name}`);
        assert.deepEqual(mine[0]!.coroutines, entries[0]!.coroutines, `coroutines of ${name} (name file:line, outermost first)`);
      }
      // The text tree nests each task under the one awaiting it.
      for (const expected of truth.tasks) {
        const parent = ours.get(expected.name)![0]!.parent;
        assert.equal(parent, expected.awaited_by[0] ?? null, `${expected.name} is printed under ${expected.awaited_by[0] ?? 'nothing'}`);
      }
    });
    assert.ok(!target.exited, `the target died while being dumped: ${target.describe()}`);
  });

  test(`periscope dump --async: forged AsyncioDebug section, python ${py.label}`, { timeout: 60_000 }, async (t) => {
    const target = await startTarget(py, 'async_tree.py', { args: ['300', 'outside'], t });
    await target.truth<AsyncTruth>();
    const dump = await dumpAsyncJson(target);
    assert.equal(dump.tasks.length, 0);
    assert.match(dump.task_sources[0]!.unavailable ?? '', /AsyncioDebug: task_node offset 4096 lies outside its \d+-byte struct/);
    assert.ok(dump.threads.length >= 1, 'the threads are still dumped');
  });

  test(`periscope dump --async: a task list that loops, python ${py.label}`, { timeout: 60_000 }, async (t) => {
    const target = await startTarget(py, 'async_tree.py', { args: ['300', 'cycle'], t });
    const truth = await target.truth<AsyncTruth>();
    const dump = await dumpAsyncJson(target);
    assert.equal(dump.task_sources[0]!.truncated, true, 'the cut list is reported');
    const names = new Set(dump.tasks.map((x) => x.name));
    assert.ok(names.has('parse-2'), 'tasks up to the loop are read');
    assert.ok(dump.tasks.length <= truth.tasks.length, 'no task is read twice');
    const text = await runPeriscope(['dump', '--pid', String(target.pid), '--async'], { timeoutMs: 30_000 });
    assert.equal(text.code, 0, describeRun(text));
    assert.match(text.stdout, /task list truncated/);
  });
}

test('periscope dump --async: a Python without asyncio task introspection says so', { timeout: 60_000 }, async (t) => {
  const older = pythons().find((p) => p.version.startsWith('3.') && minor(p) >= 6 && minor(p) < 14);
  if (!older) return t.skip('no Python 3.6-3.13 interpreter is prepared');
  const target = await startTarget(older, 'parked.py', { args: ['120'], t });
  await target.truth();
  const run = await runPeriscope(['dump', '--pid', String(target.pid), '--async', '--json'], { timeoutMs: 30_000 });
  assert.equal(run.code, 0, describeRun(run));
  const dump = parseAsyncDump(JSON.parse(run.stdout), 'dump');
  assert.deepEqual(dump.tasks, []);
  assert.match(dump.task_sources[0]!.unavailable ?? '', /needs Python 3\.14 or newer; this is Python 3\.\d+/);
  const text = await runPeriscope(['dump', '--pid', String(target.pid), '--async'], { timeoutMs: 30_000 });
  assert.match(text.stdout, /no asyncio tasks can be read: asyncio task introspection needs Python 3\.14/);
});
