// Capture statuses are one list (shared/capture-states.ts): the relay sends
// only those, the browser refuses anything else (there is no `pending`), and
// docs/api.md documents exactly those.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CAPTURE_STATUSES, isActiveStatus, zeroStats } from '../../shared/capture-states.ts';
import { ProtocolError, encode, parseRelayToUi } from '../../shared/protocol.ts';

const ID = 'c_0123456789abcdef';
const state = (status: string) => encode({ type: 'capture_state', captureId: ID, status, stats: zeroStats(), chunks: 0 } as never);

test('capture_state carries a registered status, and nothing else', () => {
  for (const status of CAPTURE_STATUSES) {
    const m = parseRelayToUi(state(status));
    assert.equal(m.type === 'capture_state' && m.status, status);
  }
  for (const status of ['pending', 'done', '']) assert.throws(() => parseRelayToUi(state(status)), ProtocolError, status);
});

test('only starting and running are active', () => {
  assert.deepEqual(CAPTURE_STATUSES.filter(isActiveStatus), ['starting', 'running']);
});

test('docs/api.md documents exactly the registered statuses', () => {
  const md = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'api.md'), 'utf8');
  const table = md.slice(md.indexOf('| status | meaning |'));
  const documented = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]);
  assert.deepEqual(documented, [...CAPTURE_STATUSES]);
});
