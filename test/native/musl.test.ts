// The reader against a musl-linked CPython (Alpine's kind): CPython 3.13
// built with musl-gcc from Debian's source (scripts/test-pythons/musl.sh),
// with libpython3.13.so beside it, run here natively through musl's loader.
// Interpreter discovery (libpython first), thread names and native thread
// ids must come out as they do for glibc builds: a dump equals the truth the
// target writes, frame for frame, and a recording holds every parked stack.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { attach } from '../../agent/native.ts';
import { describeRun, parseDump, runPeriscope } from '../helpers/periscope.ts';
import { muslPython } from '../helpers/pythons.ts';
import { parseRaw } from '../helpers/record.ts';
import { startTarget } from '../helpers/targets.ts';

const py = muslPython();
const skip = 'skip' in py ? py.skip : undefined;
const work = mkdtempSync(join(tmpdir(), 'periscope-musl-native-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Truth {
  pid: number;
  threads: { name: string; native_id: number; ident: number; busy: boolean; frames: { name: string; filename: string; line: number }[] }[];
}

const stackText = (frames: { name: string; filename: string; line: number }[]) => frames.map((f) => `${f.name} (${f.filename}:${f.line})`).join(' <- ');

test('musl CPython: dump and record equal the truth', { skip, timeout: 120_000 }, async (t) => {
  if ('skip' in py) return;
  const target = await startTarget(py, 'parked.py', { t });
  const truth = await target.truth<Truth>();

  // It is what it claims: musl's loader and no glibc in the process.
  const maps = readFileSync(`/proc/${target.pid}/maps`, 'utf8');
  assert.match(maps, /\/ld-musl-x86_64\.so\.1|x86_64-linux-musl\/libc\.so/, 'musl is mapped');
  assert.doesNotMatch(maps, /libc\.so\.6|ld-linux-x86-64/, 'glibc is not mapped');
  assert.match(maps, /libpython3\.13\.so\.1\.0/, 'the interpreter lives in libpython');

  await t.test('dump --json: frames, thread names, native ids, the GIL holder', async (tt) => {
    const run = await runPeriscope(['dump', '--pid', String(target.pid), '--json'], { timeoutMs: 30_000 });
    assert.equal(run.code, 0, describeRun(run));
    const threads = parseDump(run.stdout);
    assert.equal(threads.length, truth.threads.length, `one dumped thread per Python thread:\n${run.stdout.slice(0, 2000)}`);
    for (const want of truth.threads) {
      const got = threads.find((th) => th.os_thread_id === want.native_id);
      assert.ok(got, `thread ${want.name} (tid ${want.native_id}) missing from the dump`);
      assert.equal(got.thread_name, want.name);
      assert.equal(got.thread_id, want.ident, `thread ${want.name}: the threading ident`);
      if (want.busy) assert.equal(got.owns_gil, true, 'the spinning thread holds the GIL');
      else {
        assert.equal(stackText(got.frames), stackText(want.frames), `thread ${want.name}`);
        assert.equal(got.owns_gil, false, `parked thread ${want.name} reported holding the GIL`);
      }
    }
    tt.diagnostic(`${threads.length} threads in ${run.ms} ms`);
  });

  await t.test('located in libpython, by symbols and by the data-section scan alike', () => {
    const bySymbols = attach(target.pid);
    const byScan = attach(target.pid, { ignoreSymbols: true });
    assert.match(bySymbols.info().binary, /libpython3\.13\.so\.1\.0$/);
    assert.equal(bySymbols.info().version, py.version);
    assert.equal(byScan.info().locatedBy, 'scan');
    const key = (threads: ReturnType<typeof byScan.dump>) =>
      threads.filter((th) => th.name !== 'busy').map((th) => `${th.osThreadId} ${th.name} ${th.frames.map((f) => `${f.name}@${f.filename}:${f.line}`).join('<')}`).sort();
    assert.deepEqual(key(byScan.dump()), key(bySymbols.dump()));
  });

  await t.test('record: every parked stack, root to leaf', async (tt) => {
    const out = join(work, 'record.txt');
    const run = await runPeriscope(['record', '--pid', String(target.pid), '--duration', '1', '--rate', '50', '--idle', '--format', 'raw', '--output', out], { timeoutMs: 30_000 });
    assert.equal(run.code, 0, describeRun(run));
    const stacks = new Set(parseRaw(readFileSync(out, 'utf8')).map((s) => s.frames.filter((f) => f.kind === 'frame').map((f) => f.label).join(';')));
    for (const want of truth.threads.filter((th) => !th.busy)) {
      const expected = [...want.frames].reverse().map((f) => `${f.name} (${f.filename}:${f.line})`).join(';');
      assert.ok(stacks.has(expected), `the record lacks thread ${want.name}'s stack ${expected}`);
    }
    tt.diagnostic(`${stacks.size} distinct stacks`);
  });
  assert.ok(!target.exited, `the target died while being read: ${target.describe()}`);
});
