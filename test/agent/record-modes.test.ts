// Capture modes (CPython 3.15's profiler's --mode): which samples the agent
// keeps. test/targets/top_hot.py has one thread spinning (on CPU, holding the
// GIL on GIL builds) and a main thread sleeping in park(). Recorded with -i (so
// the view would show idle samples), wall keeps park(), cpu and gil drop it.
// On a free-threaded build no thread holds a GIL: mode gil is refused by name.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeRun, runPeriscope } from '../helpers/periscope.ts';
import { newestPython, pythons } from '../helpers/pythons.ts';
import { leafCounts, outputDir, parseRaw, startRecord } from '../helpers/record.ts';
import { startTarget } from '../helpers/targets.ts';

const newest = newestPython();
const freeThreaded = pythons().find((p) => p.freeThreaded);

test('record --mode wall keeps idle samples, cpu and gil keep only the running thread', { skip: newest ? false : 'no Python interpreter found', timeout: 90_000 }, async (t) => {
  const target = await startTarget(newest!, 'top_hot.py', { t, args: ['120'] });
  const truth = await target.truth<{ hot: string; idle: string }>();
  const dir = outputDir(t);
  const leaves: Record<string, Map<string, number>> = {};
  for (const mode of ['wall', 'cpu', 'gil']) {
    const out = join(dir, `${mode}.txt`);
    const run = await startRecord(['record', '--pid', String(target.pid), '-r', '200', '-d', '1', '-i', '--mode', mode, '-f', 'raw', '-o', out]).done;
    assert.equal(run.code, 0, describeRun(run));
    leaves[mode] = leafCounts(parseRaw(readFileSync(out, 'utf8')));
  }
  assert.ok((leaves.wall!.get(truth.idle) ?? 0) > 50, `wall keeps the sleeping thread: ${JSON.stringify([...leaves.wall!])}`);
  for (const mode of ['cpu', 'gil']) {
    assert.equal(leaves[mode]!.get(truth.idle) ?? 0, 0, `${mode} drops the sleeping thread: ${JSON.stringify([...leaves[mode]!])}`);
    assert.ok((leaves[mode]!.get(truth.hot) ?? 0) > 50, `${mode} keeps the spinning thread: ${JSON.stringify([...leaves[mode]!])}`);
  }
  const bad = await runPeriscope(['record', '--pid', String(target.pid), '--mode', 'idle', '-d', '1']);
  assert.equal(bad.code, 2, describeRun(bad));
  assert.match(bad.stderr, /BAD_ARGUMENT: --mode must be one of wall, cpu, gil; got "idle"/);
});

test('record --mode gil on a free-threaded build is refused by name', { skip: freeThreaded ? false : 'no free-threaded interpreter prepared', timeout: 60_000 }, async (t) => {
  const target = await startTarget(freeThreaded!, 'top_hot.py', { t, args: ['60'] });
  await target.truth();
  const run = await runPeriscope(['record', '--pid', String(target.pid), '--mode', 'gil', '-d', '1', '-o', join(outputDir(t), 'x.svg')]);
  assert.equal(run.code, 2, describeRun(run));
  assert.match(run.stderr, /BAD_ARGUMENT: Python 3\.\d+\.\d+ is a free-threaded build running without a GIL.*use mode cpu/);
});
