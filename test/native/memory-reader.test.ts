// The second memory reader: pread() on /proc/PID/mem (native/src/proc_mem.h),
// used where process_vm_readv is refused (ENOSYS, a seccomp EPERM), and forced
// here with PERISCOPE_MEMORY_READER=procmem. On a parked target
// (test/targets/parked.py) both readers must give the same threads and the
// same frames, equal to what the target wrote from inside; a short record
// through the file must see the same parked stacks as one through the
// syscall. Run on the oldest and the newest interpreter (the reader does not
// care about the version; the layouts it is asked to read differ).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { attach, type NativeAsyncDump } from '../../agent/native.ts';
import type { DumpThread } from '../../shared/protocol.ts';
import { describeRun, errorCode, parseDump, type RunResult, runPeriscope } from '../helpers/periscope.ts';
import { newestPython, type Python, pythons } from '../helpers/pythons.ts';
import { outputDir, parseRaw, type RawStack } from '../helpers/record.ts';
import { startTarget } from '../helpers/targets.ts';

interface Truth {
  pid: number;
  threads: { name: string; native_id: number; busy: boolean; frames: { name: string; filename: string; line: number }[] }[];
}

const PROCMEM = { PERISCOPE_MEMORY_READER: 'procmem' };
const VM = { PERISCOPE_MEMORY_READER: 'process_vm_readv' };

function ok(run: RunResult): void {
  assert.ok(!run.timedOut && run.signal === null && run.code === 0, `expected exit 0:\n${describeRun(run)}`);
}

/** Parked threads only (the busy one moves between reads), as `tid name: frame <- frame ...`. */
function parkedStacks(threads: DumpThread[], truth: Truth): string[] {
  const parked = new Set(truth.threads.filter((t) => !t.busy).map((t) => t.native_id));
  return threads
    .filter((t) => parked.has(t.os_thread_id))
    .map((t) => `${t.os_thread_id} ${t.thread_name}: ${t.frames.map((f) => `${f.name} (${f.filename}:${f.line})`).join(' <- ')}`)
    .sort();
}

function truthStacks(truth: Truth): string[] {
  return truth.threads
    .filter((t) => !t.busy)
    .map((t) => `${t.native_id} ${t.name}: ${t.frames.map((f) => `${f.name} (${f.filename}:${f.line})`).join(' <- ')}`)
    .sort();
}

/** Distinct stacks (thread roots dropped) that only parked threads produce: every one but the busy thread's. */
function recordedStacks(stacks: RawStack[], busyLeaf: string): Set<string> {
  const out = new Set<string>();
  for (const s of stacks) {
    const frames = s.frames.filter((f) => f.kind === 'frame');
    if (frames.some((f) => f.name === busyLeaf)) continue;
    out.add(frames.map((f) => f.label).join(';'));
  }
  return out;
}

async function record(py: Python, pid: number, env: NodeJS.ProcessEnv, dir: string, name: string): Promise<RawStack[]> {
  const out = join(dir, `${name}.txt`);
  const run = await runPeriscope(['record', '--pid', String(pid), '--duration', '1', '--rate', '50', '--idle', '--format', 'raw', '--output', out], { env, timeoutMs: 60_000 });
  ok(run);
  return parseRaw(readFileSync(out, 'utf8'));
}

const all = pythons();
const chosen = [...new Map([all.find((p) => !p.freeThreaded), newestPython()].filter((p): p is Python => !!p).map((p) => [p.label, p])).values()];
if (chosen.length === 0) test('memory readers', { skip: 'no Python interpreter installed' }, () => {});

for (const py of chosen) {
  test(`/proc/PID/mem reader equals process_vm_readv: python ${py.label} (${py.version})`, { timeout: 120_000 }, async (t) => {
    const target = await startTarget(py, 'parked.py', { args: ['120'], t });
    const truth = await target.truth<Truth>();
    const expected = truthStacks(truth);

    await t.test('in-process: info() names the reader, both dumps equal', () => {
      const saved = process.env.PERISCOPE_MEMORY_READER;
      try {
        delete process.env.PERISCOPE_MEMORY_READER;
        const viaVm = attach(target.pid);
        assert.equal(viaVm.info().memoryReader, 'process_vm_readv');
        process.env.PERISCOPE_MEMORY_READER = 'procmem';
        const viaFile = attach(target.pid);
        assert.equal(viaFile.info().memoryReader, '/proc/PID/mem');
        const parked = new Set(truth.threads.filter((th) => !th.busy).map((th) => th.native_id));
        const stacks = (dump: NativeAsyncDump): string[] =>
          dump.threads
            .filter((th) => parked.has(th.osThreadId))
            .map((th) => `${th.osThreadId}: ${th.frames.map((f) => `${f.name} (${f.filename}:${f.line})`).join(' <- ')}`)
            .sort();
        const a = stacks(viaVm.dump({ asyncio: true }));
        assert.equal(a.length, parked.size, 'process_vm_readv missed parked threads');
        assert.deepEqual(stacks(viaFile.dump({ asyncio: true })), a, 'the readers read different stacks');
      } finally {
        if (saved === undefined) delete process.env.PERISCOPE_MEMORY_READER;
        else process.env.PERISCOPE_MEMORY_READER = saved;
      }
    });

    await t.test('dump --json: same parked stacks, equal to the ground truth', async () => {
      const runs = [];
      for (const env of [VM, PROCMEM]) {
        const run = await runPeriscope(['dump', '--pid', String(target.pid), '--json'], { env });
        ok(run);
        runs.push(parkedStacks(parseDump(run.stdout), truth));
      }
      assert.deepEqual(runs[0], expected, 'process_vm_readv dump differs from the ground truth');
      assert.deepEqual(runs[1], expected, '/proc/PID/mem dump differs from the ground truth');
    });

    await t.test('record: the same parked stacks through either reader', async (tt) => {
      const dir = outputDir(tt);
      const viaVm = await record(py, target.pid, VM, dir, 'vm');
      const viaFile = await record(py, target.pid, PROCMEM, dir, 'procmem');
      const busy = truth.threads.find((th) => th.busy)?.frames[0]?.name ?? '(none)';
      const a = recordedStacks(viaVm, busy);
      const b = recordedStacks(viaFile, busy);
      assert.ok(b.size >= truth.threads.length - 2, `only ${b.size} distinct parked stacks recorded through /proc/PID/mem`);
      assert.deepEqual([...b].sort(), [...a].sort(), 'the readers recorded different parked stacks');
      tt.diagnostic(`${b.size} distinct parked stacks, ${viaFile.reduce((n, s) => n + s.count, 0)} samples through /proc/PID/mem`);
    });
    assert.ok(!target.exited, `the target died while being read: ${target.describe()}`);
  });
}

test('memory reader errors', { timeout: 60_000 }, async (t) => {
  const py = newestPython();
  if (!py) return t.skip('no Python interpreter installed');
  const target = await startTarget(py, 'parked.py', { args: ['60'], t });
  await target.truth<Truth>();

  await t.test('an unknown PERISCOPE_MEMORY_READER -> BAD_ARGUMENT', async () => {
    const run = await runPeriscope(['dump', '--pid', String(target.pid)], { env: { PERISCOPE_MEMORY_READER: 'ptrace' } });
    assert.equal(errorCode(run.stderr), 'BAD_ARGUMENT', describeRun(run));
    assert.match(run.stderr, /PERISCOPE_MEMORY_READER/);
  });

  await t.test("procmem on another user's process -> PERMISSION_DENIED (the file runs the same ptrace check)", async (tt) => {
    const wrapper = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];
    const usable = process.getuid?.() === 0 && spawnSync(wrapper[0]!, [...wrapper.slice(1), process.execPath, '-e', '0'], { stdio: 'ignore' }).status === 0;
    if (!usable) return tt.skip('needs root and setpriv (to dump a root-owned target as nobody)');
    const run = await runPeriscope(['dump', '--pid', String(target.pid)], { env: PROCMEM, wrapper });
    assert.equal(errorCode(run.stderr), 'PERMISSION_DENIED', describeRun(run));
  });
});
