// 3.13+ targets describe their own struct offsets (_Py_DebugOffsets), which
// makes that table input from the target: a hostile or broken process can
// write anything there. Each target below forges one part of its own table
// (test/targets/forged_offsets.py); the reader must refuse to read it with
// UNSUPPORTED_VERSION naming what did not hold, and never crash or misread.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeRun, errorCode, parseDump, runPeriscope } from '../helpers/periscope.ts';
import { pythons, skippedPythons } from '../helpers/pythons.ts';
import { startTarget } from '../helpers/targets.ts';

const MODERN = pythons().filter((p) => Number(p.version.split('.')[1]) >= 13 && p.version.startsWith('3.'));

const CASES: { mode: string; expect: RegExp }[] = [
  { mode: 'outside', expect: /thread_state\.current_frame: offset 524288 lies outside its \d+-byte struct/ },
  { mode: 'unaligned', expect: /interpreter_state\.threads_head: offset \d+ is not aligned/ },
  { mode: 'cookie', expect: /xdebugpy cookie/ },
  { mode: 'version', expect: /version word 0x[0-9a-f]{8} does not match Python 3\.\d+/ },
];

for (const s of skippedPythons()) test(`forged _Py_DebugOffsets: python ${s.label}`, { skip: s.reason }, () => {});
if (MODERN.length === 0) test('forged _Py_DebugOffsets', { skip: 'no Python 3.13+ interpreter is prepared' }, () => {});

for (const py of MODERN) {
  test(`forged _Py_DebugOffsets: python ${py.label} (${py.version})`, { timeout: 120_000 }, async (t) => {
    await t.test('an intact table is read (control)', async () => {
      const target = await startTarget(py, 'forged_offsets.py', { args: ['intact'], t });
      await target.truth();
      const run = await runPeriscope(['dump', '--pid', String(target.pid), '--json'], { timeoutMs: 30_000 });
      assert.equal(run.code, 0, describeRun(run));
      assert.ok(parseDump(run.stdout).some((th) => th.frames.some((f) => f.name === 'main')), describeRun(run));
    });
    for (const c of CASES) {
      await t.test(`${c.mode}: refused with the reason, the target untouched`, async () => {
        const target = await startTarget(py, 'forged_offsets.py', { args: [c.mode], t });
        await target.truth();
        const run = await runPeriscope(['dump', '--pid', String(target.pid), '--json'], { timeoutMs: 30_000 });
        assert.equal(run.signal, null, `the agent crashed:\n${describeRun(run)}`);
        assert.notEqual(run.code, 0, `a forged table was accepted:\n${describeRun(run)}`);
        assert.equal(errorCode(run.stderr), 'UNSUPPORTED_VERSION', describeRun(run));
        assert.match(run.stderr, c.expect, describeRun(run));
        assert.match(run.stderr, /_Py_DebugOffsets/, describeRun(run));
        assert.ok(!target.exited, `the target died: ${target.describe()}`);
      });
    }
  });
}
