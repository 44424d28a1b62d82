// captureSpecFromRequest: the body of POST /api/agents/:id/captures becomes a
// CaptureSpec -- defaults filled in, the protocol's bounds (parseCaptureSpec)
// and the relay's tighter ones checked -- or BAD_ARGUMENT with a message that
// names the field, never the protocol's "undefined." prefix nor BAD_MESSAGE.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { PeriscopeError } from '../../shared/errors.ts';
import { CAPTURE_KINDS, CAPTURE_MODES, type CaptureKind } from '../../shared/capture-states.ts';
import type { CaptureSpec } from '../../shared/protocol.ts';
import { captureSpecFromRequest } from '../../relay/captures/capture-request.ts';
import { MAX_DURATION_S, MAX_RATE_HZ } from '../../relay/captures/capture-service.ts';

const FLAGS = ['subprocesses', 'idle', 'gil', 'blocking'] as const;

function refused(body: unknown, message: RegExp): void {
  assert.throws(
    () => captureSpecFromRequest(body),
    (err: unknown) => {
      assert.ok(err instanceof PeriscopeError, `a PeriscopeError, not ${String(err)}`);
      assert.equal(err.code, 'BAD_ARGUMENT', err.message);
      assert.doesNotMatch(err.message, /undefined/);
      assert.match(err.message, message);
      return true;
    },
  );
}

describe('valid requests', () => {
  const defaults: Record<CaptureKind, CaptureSpec> = {
    record: { kind: 'record', pid: 1234, rate: 100, duration: 60, subprocesses: false, mode: 'wall', idle: false, gil: false, blocking: false },
    top: { kind: 'top', pid: 1234, rate: 100, duration: 0, subprocesses: false, mode: 'wall', idle: false, gil: false, blocking: false },
    dump: { kind: 'dump', pid: 1234, rate: 100, duration: 0, subprocesses: false, mode: 'wall', idle: false, gil: false, blocking: false },
  };

  test('every kind has its defaults written down here', () => {
    assert.deepEqual(Object.keys(defaults).sort(), [...CAPTURE_KINDS].sort());
  });

  for (const kind of CAPTURE_KINDS) {
    test(`${kind}: only kind and pid given, the rest defaults`, () => {
      assert.deepStrictEqual(captureSpecFromRequest({ kind, pid: 1234 }), defaults[kind]);
    });
  }

  test('every field given is kept as given', () => {
    const full: CaptureSpec = { kind: 'record', pid: 2 ** 31 - 1, rate: MAX_RATE_HZ, duration: MAX_DURATION_S, subprocesses: true, mode: 'wall', idle: true, gil: true, blocking: true };
    assert.deepStrictEqual(captureSpecFromRequest(full), full);
    assert.deepStrictEqual(captureSpecFromRequest({ kind: 'top', pid: 1, rate: 1, duration: 0.5, idle: true }), { ...defaults.top, pid: 1, rate: 1, duration: 0.5, idle: true });
  });

  test('each capture mode is kept; a mode outside CAPTURE_MODES is refused by name', () => {
    for (const mode of CAPTURE_MODES) assert.equal(captureSpecFromRequest({ kind: 'record', pid: 1, mode }).mode, mode);
    refused({ kind: 'record', pid: 1, mode: 'idle' }, /mode must be one of wall, cpu, gil/);
    refused({ kind: 'record', pid: 1, mode: 3 }, /mode must be a string/);
  });

  test('a dump takes no duration, whatever is sent', () => {
    assert.equal(captureSpecFromRequest({ kind: 'dump', pid: 7, duration: 30 }).duration, 0);
  });

  test('unknown fields are dropped; null means the default', () => {
    const spec = captureSpecFromRequest({ kind: 'record', pid: 1234, rate: null, evil: '$(reboot)', __proto__: { admin: true } });
    assert.deepStrictEqual(spec, defaults.record);
    assert.deepEqual(Object.keys(spec), ['kind', 'pid', 'rate', 'duration', 'subprocesses', 'mode', 'idle', 'gil', 'blocking']);
  });
});

describe('each bad field is BAD_ARGUMENT naming the field', () => {
  const ok = { kind: 'record', pid: 1234 };
  const cases: [string, unknown, RegExp][] = [
    ['a body that is not an object', null, /the body must be a JSON object/],
    ['a list for a body', [ok], /the body must be a JSON object/],
    ['a string for a body', 'record 1234', /the body must be a JSON object/],
    ['no kind', { pid: 1234 }, /^kind must be a string$/],
    ['an unknown kind', { ...ok, kind: 'flamegraph' }, /^capture kind must be one of dump, top, record$/],
    ['a kind that is not a string', { ...ok, kind: 1 }, /^kind must be a string$/],
    ['no pid', { kind: 'top' }, /^pid must be an integer from 1 to 2147483647$/],
    ['pid 0', { ...ok, pid: 0 }, /^pid must be an integer from 1 to 2147483647$/],
    ['a negative pid', { ...ok, pid: -1 }, /^pid must be an integer/],
    ['a fractional pid', { ...ok, pid: 12.5 }, /^pid must be an integer/],
    ['a pid as a string', { ...ok, pid: '1234' }, /^pid must be an integer/],
    ['a pid past 32 bits', { ...ok, pid: 2 ** 31 }, /^pid must be an integer from 1 to 2147483647$/],
    ['rate 0', { ...ok, rate: 0 }, /^rate must be an integer from 1 to 100000$/],
    ['a fractional rate', { ...ok, rate: 99.5 }, /^rate must be an integer/],
    ['a rate as a string', { ...ok, rate: 'fast' }, /^rate must be an integer/],
    [`a rate above this relay's ${MAX_RATE_HZ}`, { ...ok, rate: MAX_RATE_HZ + 1 }, new RegExp(`^rate must be at most ${MAX_RATE_HZ} samples per second on this relay; got ${MAX_RATE_HZ + 1}$`)],
    ['a negative duration', { ...ok, duration: -1 }, /^duration must be a number from 0 to 604800$/],
    ['a duration as a string', { ...ok, duration: '60s' }, /^duration must be a number/],
    [`a duration above this relay's ${MAX_DURATION_S} s`, { ...ok, duration: MAX_DURATION_S + 1 }, new RegExp(`^duration must be at most ${MAX_DURATION_S} seconds; got ${MAX_DURATION_S + 1}$`)],
    ['a record of no duration', { ...ok, duration: 0 }, new RegExp(`^a record capture needs a duration from 1 to ${MAX_DURATION_S} seconds`)],
    ...FLAGS.map((flag): [string, unknown, RegExp] => [`${flag} that is not a boolean`, { ...ok, [flag]: 'yes' }, new RegExp(`^${flag} must be true or false$`)]),
    ...FLAGS.map((flag): [string, unknown, RegExp] => [`${flag} as 1`, { ...ok, [flag]: 1 }, new RegExp(`^${flag} must be true or false$`)]),
  ];
  for (const [what, body, message] of cases) test(what, () => refused(body, message));
});
