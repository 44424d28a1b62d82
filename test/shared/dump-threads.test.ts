// The one dump-thread shape (shared/protocol.ts): what `periscope dump --json`
// prints, the agent sends, the relay stores and the web shows.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode, parseAgentMessage, parseDumpThreads, ProtocolError } from '../../shared/protocol.ts';

const thread = { pid: 7, thread_id: 140_000, os_thread_id: 7, thread_name: 'MainThread', active: true, owns_gil: false, truncated: true, frames: [{ name: 'f', filename: '/a/b.py', short_filename: 'b.py', line: 3 }] };

test('truncated travels through the agent message parser', () => {
  const m = parseAgentMessage(encode({ type: 'dump_result', captureId: 'c1', threads: [thread] }));
  assert.deepEqual(m, { type: 'dump_result', captureId: 'c1', threads: [thread] });
});

test("an older agent's thread without truncated reads as not truncated", () => {
  const { truncated: _, ...older } = thread;
  assert.equal(parseDumpThreads([older], 'threads')[0]!.truncated, false);
});

test('truncated must be a boolean when present', () => {
  assert.throws(() => parseDumpThreads([{ ...thread, truncated: 1 }], 'threads'), (e) => e instanceof ProtocolError && /threads\[0\]\.truncated must be true or false/.test(e.message));
});

test('a thread not yet bound to an OS thread (os_thread_id -1) is a valid dump thread; -2 is not', () => {
  assert.equal(parseDumpThreads([{ ...thread, os_thread_id: -1 }], 'threads')[0]!.os_thread_id, -1);
  assert.throws(() => parseDumpThreads([{ ...thread, os_thread_id: -2 }], 'threads'), ProtocolError);
});

test('unknown fields are dropped, so what is stored is what was checked', () => {
  assert.deepEqual(parseDumpThreads([{ ...thread, extra: 'x' }], 'threads'), [thread]);
});
