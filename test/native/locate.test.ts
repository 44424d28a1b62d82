// Finding the interpreter without ELF symbols: stripped binaries leave only
// the data-section scan (an interpreter whose first thread points back at
// it). Forcing that path must give the same stacks as the symbol path.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attach } from '../../agent/native.ts';
import { pythons, skippedPythons } from '../helpers/pythons.ts';
import { startTarget } from '../helpers/targets.ts';

for (const s of skippedPythons()) test(`locate without symbols: python ${s.label}`, { skip: s.reason }, () => {});

for (const python of pythons()) {
  test(`locate without symbols: python ${python.label}`, async (t) => {
    const target = await startTarget(python, 'parked.py', { t });
    await target.truth();
    const bySymbols = attach(target.pid);
    const byScan = attach(target.pid, { ignoreSymbols: true });
    assert.equal(byScan.info().locatedBy, 'scan');
    assert.equal(byScan.info().version, bySymbols.info().version);
    assert.match(byScan.info().version, /^\d\.\d+\.\d+/, 'the version includes the patch level');
    const key = (threads: ReturnType<typeof byScan.dump>) =>
      threads
        .map((th) => `${th.osThreadId} ${th.name} ${th.frames.map((f) => `${f.name}@${f.filename}:${f.line}`).join('<')}`)
        .filter((s) => !s.includes('busy'))
        .sort();
    const expected = key(bySymbols.dump());
    assert.ok(expected.length >= 5, 'the parked target has several threads');
    assert.deepEqual(key(byScan.dump()), expected);
  });
}
