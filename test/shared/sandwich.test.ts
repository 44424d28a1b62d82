// The sandwich of one function: its callers (inverted, the function at the
// root) and its callees (the function at the root), each sample holding the
// function counted once even when it recurses.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { callTree, type CallTreeNode } from '../../shared/profile/call-tree.ts';
import { sandwich } from '../../shared/profile/sandwich.ts';
import { buildKnownProfile, f } from './fixtures.ts';

function outline(node: CallTreeNode, depth = 0, out: string[] = []): string[] {
  if (depth > 0) out.push(`${'  '.repeat(depth - 1)}${node.name}:${node.line ?? ''} ${node.total}`);
  for (const c of node.children) outline(c, depth + 1, out);
  return out;
}

test("work's callers and callees in the known profile", () => {
  const cut = sandwich(buildKnownProfile().profile, { name: 'work', file: 'app.py' });
  assert.equal(cut.samples, 5, 'idle samples are left out by default, like every view');
  assert.deepEqual(outline(callTree(cut.callees, { function: true })), ['work:10 5', '  helper:5 1']);
  assert.deepEqual(outline(callTree(cut.callers, { function: true })), ['work:10 5', '  main:20 5', '    <module>:30 5']);
  assert.equal(sandwich(buildKnownProfile().profile, { name: 'work', file: 'other.py' }).samples, 0, 'name and file both match');
});

test('recursion: callees from the outermost call, callers from the innermost, each sample once', () => {
  const b = new ProfileBuilder();
  const t = b.thread(1, 1);
  // main > r > r > leaf
  b.addSample({ thread: t, timeUs: 0, framesLeafFirst: [f('leaf', 'a.py', 9), f('r', 'a.py', 2), f('r', 'a.py', 3), f('main', 'a.py', 1)] });
  const cut = sandwich(b.profile, { name: 'r', file: 'a.py' });
  assert.equal(cut.samples, 1);
  assert.deepEqual(outline(callTree(cut.callees)), ['r:3 1', '  r:2 1', '    leaf:9 1']);
  assert.deepEqual(outline(callTree(cut.callers)), ['r:2 1', '  r:3 1', '    main:1 1']);
});
