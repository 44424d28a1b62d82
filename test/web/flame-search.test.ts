// The browser's flame graph search (web/src/flame/flame-search.ts) over
// shared/profile's CallTree.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { CallTree } from '../../shared/profile/call-tree.ts';
import { FlameSearch } from '../../web/src/flame/flame-search.ts';

test('search matches names and files and counts nested matches once', () => {
  const b = new ProfileBuilder({ rateHz: 100 });
  const t = b.thread(1, 1);
  const f = (name: string) => ({ name, file: `/src/${name}.py`, line: 1 });
  for (let i = 0; i < 6; i++) b.addSample({ thread: t, framesLeafFirst: [f('leaf'), f('recurse'), f('recurse'), f('main')], timeUs: i });
  for (let i = 0; i < 4; i++) b.addSample({ thread: t, framesLeafFirst: [f('other'), f('main')], timeUs: i });
  const m = new CallTree(b.profile, { idle: false, gil: false, function: false, threads: false });
  m.ingest();
  assert.equal(new FlameSearch('recurse').matchedSamples(m, 0), 6);
  assert.equal(new FlameSearch('RECURSE').matchedSamples(m, 0), 6);
  assert.equal(new FlameSearch('/src/').matchedSamples(m, 0), 10);
  assert.equal(new FlameSearch('all').matchedSamples(m, 0), 0, 'the root is not a match');
  assert.equal(new FlameSearch('').matchedSamples(m, 0), 0);
});
