// shared/untrusted-msgpack.ts: everything the project encodes decodes as
// before (typed arrays included); every msgpackr extension that can refer to
// earlier data, and every other non-plain value, is refused by name; framing,
// depth and size are bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Packr } from 'msgpackr';
import { isPeriscopeError } from '../../shared/errors.ts';
import { MALFORMED_MSGPACK, MAX_DEPTH, MAX_ITEMS, decodeUntrusted } from '../../shared/untrusted-msgpack.ts';
import { HOSTILE_PACKERS, frameCorpus } from '../relay/frame-corpus.ts';

/** msgpackr with the project's settings, decoding whatever it is given: the reference. */
const permissive = new Packr({ moreTypes: true, useRecords: false });

function refuses(bytes: Uint8Array | number[], cause: RegExp): void {
  assert.throws(
    () => decodeUntrusted(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes)),
    (err: unknown) => isPeriscopeError(err, MALFORMED_MSGPACK) && cause.test((err as Error).message),
    `${Buffer.from(bytes).toString('hex').slice(0, 80)} should be refused with ${cause}`,
  );
}

test('every frame the project encodes decodes exactly as msgpackr decodes it, typed arrays and undefined included', () => {
  for (const seed of frameCorpus()) assert.deepStrictEqual(decodeUntrusted(seed.bytes), permissive.unpack(seed.bytes), seed.name);
  const typed = { i8: new Int8Array([-1]), u8: new Uint8Array([255]), i16: new Int16Array([-2]), u16: new Uint16Array([2]), i32: new Int32Array([-3, 4]), u32: new Uint32Array([5]), f32: new Float32Array([1.5]), f64: new Float64Array([Math.PI, -0]), empty: new Float64Array(0), gone: undefined };
  assert.deepStrictEqual(decodeUntrusted(permissive.pack(typed)), typed);
  assert.equal(decodeUntrusted(new Uint8Array([0xcf, 0, 0, 0, 1, 0, 0, 0, 0])), 2 ** 32, '64-bit integers become numbers, never BigInt');
});

test('msgpackr records, structured-clone ids and pointers, and bundled strings are refused by name', () => {
  const shared = { name: 'f', line: 1 };
  const value = { type: 'dump_result', threads: [shared, shared], host: 'a host name long enough to be bundled' };
  const causes: Record<string, RegExp> = {
    records: /extension type 0x72 \(a msgpackr record definition\)/,
    'structured clone': /extension type 0x69 \(a msgpackr structured-clone id\)/,
    'bundled strings': /extension type 0x62 \(msgpackr bundled strings\)/,
  };
  for (const h of HOSTILE_PACKERS) refuses(h.packr.pack(value), causes[h.name]!);
  refuses([0x92, 0xd6, 0x70, 0, 0, 0, 1, 0x01], /0x70 \(a msgpackr structured-clone pointer to earlier data\)/);
  // Without a record definition, 0x40–0x7f are the fixints they are in msgpack.
  assert.deepEqual(decodeUntrusted(new Uint8Array([0x91, 0x40])), [64]);
});

test('other values that are not plain data are refused: Set, Error, RegExp, BigInt, Date, 0xc1, odd typed arrays', () => {
  const p = new Packr({ moreTypes: true, useRecords: false, useBigIntExtension: true });
  refuses(p.pack(new Set([1])), /0x73 \(a msgpackr Set\)/);
  refuses(p.pack(new Error('x')), /0x65 \(a msgpackr Error\)/);
  refuses(p.pack(/a+/), /0x78 \(a msgpackr RegExp\)/);
  refuses(p.pack(2n ** 100n), /0x42 \(a msgpackr BigInt\)/);
  refuses(p.pack(new Date(0)), /0xff \(a msgpack timestamp\)/);
  refuses([0x92, 0xc1, 0x01], /token 0xc1 .* bundled strings/);
  refuses(p.pack(new BigInt64Array(1)), /type code 9, not one of the numeric typed arrays/);
  refuses(p.pack(new ArrayBuffer(4)), /type code 16/);
  refuses([0xc7, 0x04, 0x74, 0x05, 1, 0, 0], /3 bytes, not a whole number of 4-byte elements/);
  refuses([0xd5, 0x01, 0x00, 0x00], /extension type 0x1 at byte 0/);
});

test('framing, keys, depth and size are bounded', () => {
  refuses([], /empty/);
  refuses([0xa5, 0x61], /ends inside a value at byte 1: 5 more bytes needed, 1 left/);
  refuses([0x92, 0x01], /a list at byte 1 claims 2 entries but only 1 bytes are left/);
  refuses([0x01, 0x02], /1 bytes follow the value/);
  refuses([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01], /claims 4294967295 entries but only 1 bytes are left/);
  refuses([0x81, 0x01, 0x02], /map key at byte 1 is not a string/);
  refuses([0x81, 0x91, 0x01, 0x01], /not a string/);
  const deep = new Array(MAX_DEPTH + 1).fill(0x91).concat([0x01]);
  refuses(deep, new RegExp(`nested deeper than ${MAX_DEPTH} levels`));
  assert.deepEqual(decodeUntrusted(new Uint8Array(deep.slice(1))), JSON.parse('['.repeat(MAX_DEPTH) + '1' + ']'.repeat(MAX_DEPTH)));
  const many = new Uint8Array(5 + MAX_ITEMS + 1);
  many.set([0xdd, ...new Uint8Array(new Uint32Array([MAX_ITEMS + 1]).buffer).reverse()]);
  refuses(many, new RegExp(`more than ${MAX_ITEMS} list elements`));
  assert.equal((decodeUntrusted(many.subarray(0, many.length - 1).map((b, i) => (i === 4 ? b - 1 : b))) as unknown[]).length, MAX_ITEMS);
});
