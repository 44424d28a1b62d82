// The chunk contract's common cases, run against each side that implements it
// (like hono's common.case.test.ts): one table of (what, chunk, outcome), and
// each case runs against
//   - the relay: acceptChunk(sizes so far, encodeChunk(chunk)) accepts (counting
//     the rows, keeping the very bytes it was given for storing) or refuses
//     with the case's code and message;
//   - a viewer: the relay's capture_chunk frame around those bytes
//     (encodeCaptureChunk), parsed as the browser parses it (parseRelayToUi)
//     and applied (applyChunk) to the profile so far, which a refusal leaves
//     untouched.
// The producer side: the valid cases are ProfileBuilder.takeChunk's own
// chunks, and the profile a viewer rebuilds from them equals the builder's.
// The relay is stricter than a viewer where it must be: it stores chunks as
// sent, so lists for columns and fields the format does not have are refused
// there (`viewer` says where the outcomes differ, and why).
//
// Then the framing around a chunk (shared/protocol.ts): the agent's chunk
// bytes in `chunk.chunk`, bytes that are not plain msgpack, and the spliced
// capture_chunk frame, byte for byte what encode() writes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Packr } from 'msgpackr';
import { PeriscopeError } from '../../shared/errors.ts';
import {
  MAX_CHUNK_BYTES,
  MAX_MESSAGE_BYTES,
  PROTOCOL_VERSION,
  ProtocolError,
  encode,
  encodeCaptureChunk,
  encodeChunk,
  parseAgentMessage,
  parseRelayToUi,
  type ChunkMessage,
} from '../../shared/protocol.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { type ProfileChunk, applyChunk, profileFromChunks } from '../../shared/profile/chunk.ts';
import { NONE, type Profile, SampleFlag, tableSizes } from '../../shared/profile/model.ts';
import { EMPTY_SIZES, MAX_STORED_CHUNK_BYTES, acceptChunk, decodeStoredChunk, sizesAfterStored } from '../../relay/captures/chunk-codec.ts';

// ---- the producer: a short capture, chunk by chunk ---------------------------------

interface Session {
  chunks: ProfileChunk[];
  /** The builder's profile right after each chunk was taken. */
  profiles: Profile[];
}

function session(): Session {
  const b = new ProfileBuilder({ commandLine: 'python3 app.py --serve', rateHz: 100, startTimeUs: 1_767_225_600_000_000 });
  const chunks: ProfileChunk[] = [];
  const profiles: Profile[] = [];
  const take = () => {
    chunks.push(b.takeChunk());
    profiles.push(structuredClone(b.profile));
  };
  const frame = (name: string, line: number, module?: string) => ({ name, file: `/app/${name}.py`, line, module });
  // 0: the first chunk -- a process, two threads, samples, one with no Python frames.
  b.process(4242, { commandLine: 'python3 app.py --serve', pythonVersion: '3.12.1' });
  const main = b.thread(4242, 4242, 'MainThread');
  const worker = b.thread(4242, 4243);
  b.addSample({ thread: main, timeUs: 10_000, framesLeafFirst: [frame('compute', 12), frame('handle', 42, 'app'), frame('<module>', 1)], gil: true });
  b.addSample({ thread: worker, timeUs: 10_000, framesLeafFirst: [], idle: true });
  b.addSample({ thread: main, timeUs: 20_000, framesLeafFirst: [frame('handle', 42, 'app'), frame('<module>', 1)] });
  b.updateCapture({ durationUs: 20_000 });
  take();
  // 1: new strings, frames and stacks on top of the old ones, an error row, capture info that changed.
  b.addSample({ thread: worker, timeUs: 30_000, framesLeafFirst: [frame('parse_json', 7), frame('handle', 42, 'app'), frame('<module>', 1)], idle: false, gil: true });
  b.addSample({ thread: main, timeUs: 30_000, framesLeafFirst: [frame('compute', 12), frame('handle', 42, 'app'), frame('<module>', 1)] });
  b.addError('could not read a frame of thread 4243', 31_000);
  b.updateCapture({ durationUs: 31_000, lateSamples: 1 });
  take();
  // 2: nothing new at all.
  take();
  // 3: only the capture info moved on.
  b.updateCapture({ durationUs: 40_000 });
  take();
  return { chunks, profiles };
}

// ---- the cases ------------------------------------------------------------------------

type Outcome = { ok: true } | { code: 'INVALID_CHUNK' | 'CHUNK_OUT_OF_SEQUENCE' | 'BAD_MESSAGE'; message: RegExp };

interface Case {
  what: string;
  /** How many of the session's chunks come before this one. */
  after: number;
  /** The chunk as sent; `s` is a fresh session, free to change. */
  chunk: (s: Session) => unknown;
  /** acceptChunk's outcome. */
  relay: Outcome;
  /** The viewer's, where it differs from the relay's (and why). */
  viewer?: Outcome;
  /** For a valid chunk: the profile the viewer must end up with (default: the builder's own). */
  producerProfile?: boolean;
}

const ok: Outcome = { ok: true };
const invalid = (message: RegExp): Outcome => ({ code: 'INVALID_CHUNK', message });
/** A viewer applies what a relay stored; lists and unknown fields never get that far, and would do no harm there. */
const lenientViewer = ok;

/** Chunk 1 (continuing chunk 0), changed by `change`. */
function next(change: (c: ProfileChunk) => unknown): (s: Session) => unknown {
  return (s) => change(s.chunks[1]!);
}

const CASES: Case[] = [
  // The producer's chunks, as they come.
  { what: 'the first chunk of a capture', after: 0, chunk: (s) => s.chunks[0], relay: ok, producerProfile: true },
  { what: 'a chunk continuing the first', after: 1, chunk: (s) => s.chunks[1], relay: ok, producerProfile: true },
  { what: 'a chunk with no new rows', after: 2, chunk: (s) => s.chunks[2], relay: ok, producerProfile: true },
  { what: 'a chunk that only moves the capture info on', after: 3, chunk: (s) => s.chunks[3], relay: ok, producerProfile: true },

  // Legal, if unusual.
  { what: 'NONE as a sample stack (a thread with no Python frames)', after: 1, chunk: next((c) => ((c.samples.stack[0] = NONE), c)), relay: ok },
  { what: 'a 1 MiB string (only a chunk as a whole is bounded, by the store)', after: 1, chunk: next((c) => ((c.strings = [...c.strings, 'x'.repeat(1 << 20)]), c)), relay: ok },

  // References to rows that do not exist.
  { what: 'a stack index beyond the stack table', after: 1, chunk: next((c) => ((c.samples.stack[0] = c.base.stacks + c.stacks.prefix.length), c)), relay: invalid(/samples\.stack\[0\] = \d+ references a stacks row that does not exist/) },
  { what: 'a string index beyond the string table', after: 1, chunk: next((c) => ((c.frames.name[0] = 10_000), c)), relay: invalid(/frames\.name\[0\] = 10000 references a strings row that does not exist/) },
  { what: 'a stack whose prefix is itself (a cycle)', after: 1, chunk: next((c) => ((c.stacks.prefix[0] = c.base.stacks), c)), relay: invalid(/stacks\.prefix\[0\] = \d+ references a stacks row that does not exist/) },
  { what: 'a negative thread index', after: 1, chunk: next((c) => ((c.samples.thread[0] = -1), c)), relay: invalid(/samples\.thread\[0\] = -1 references a threads row that does not exist/) },
  { what: 'a negative stack index other than NONE', after: 1, chunk: next((c) => ((c.samples.stack[1] = -2), c)), relay: invalid(/samples\.stack\[1\] = -2 references a stacks row/) },
  { what: 'an error message index beyond the string table', after: 1, chunk: next((c) => ((c.errors.message[0] = c.base.strings + c.strings.length), c)), relay: invalid(/errors\.message\[0\] = \d+ references a strings row/) },

  // Where the chunk continues from.
  { what: 'a base that skips a sample', after: 1, chunk: next((c) => ((c.base.samples += 1), c)), relay: { code: 'CHUNK_OUT_OF_SEQUENCE', message: /continues samples from row 4 but the profile has 3 rows/ } },
  { what: 'the previous chunk again', after: 1, chunk: (s) => s.chunks[0], relay: { code: 'CHUNK_OUT_OF_SEQUENCE', message: /continues strings from row 0 but the profile has \d+ rows/ } },
  { what: 'a negative base', after: 1, chunk: next((c) => ((c.base.frames = -1), c)), relay: invalid(/base\.frames must be a row count/) },
  { what: 'a fractional base', after: 1, chunk: next((c) => ((c.base.strings = 1.5), c)), relay: invalid(/base\.strings must be a row count/) },

  // Wrong types and values.
  { what: 'strings holding a number', after: 1, chunk: next((c) => ((c.strings = [...c.strings, 7 as unknown as string]), c)), relay: invalid(/strings must only hold strings/) },
  { what: 'a column sent as a list', after: 1, chunk: next((c) => ({ ...c, samples: { ...c.samples, stack: Array.from(c.samples.stack) } })), relay: invalid(/samples\.stack is a list, not the Int32Array the format asks for/), viewer: lenientViewer },
  {
    what: 'a column of the wrong typed array',
    after: 1,
    chunk: next((c) => ({ ...c, samples: { ...c.samples, timeUs: Int32Array.from(c.samples.timeUs) } })),
    relay: invalid(/samples\.timeUs is a Int32Array, not the Float64Array/),
    viewer: invalid(/samples\.timeUs must be an Float64Array or an array of numbers/),
  },
  { what: 'a column that is a string', after: 1, chunk: next((c) => ({ ...c, samples: { ...c.samples, flags: 'idle' } })), relay: invalid(/samples\.flags is a string, not the Uint8Array/), viewer: invalid(/samples\.flags must be an Uint8Array or an array of numbers/) },
  { what: 'a capture number that is a string', after: 1, chunk: next((c) => ({ ...c, capture: { ...c.capture, rateHz: '100' } })), relay: invalid(/capture\.rateHz must be a finite number/) },
  { what: 'a negative count of late samples', after: 1, chunk: next((c) => ({ ...c, capture: { ...c.capture, lateSamples: -3 } })), relay: invalid(/capture\.lateSamples must be a count/) },
  { what: 'columns of different lengths', after: 1, chunk: next((c) => ({ ...c, samples: { ...c.samples, thread: c.samples.thread.subarray(1) } })), relay: invalid(/samples columns differ in length/) },
  { what: 'unknown sample flag bits', after: 1, chunk: next((c) => ((c.samples.flags[0] = 0x80 | SampleFlag.Idle), c)), relay: invalid(/samples\.flags\[0\] has unknown flag bits/) },
  { what: 'a sample time that is not finite', after: 1, chunk: next((c) => ((c.samples.timeUs[1] = Number.POSITIVE_INFINITY), c)), relay: invalid(/samples\.timeUs\[1\] is not finite/) },
  { what: 'a negative line number', after: 1, chunk: next((c) => ((c.frames.line[0] = -1), c)), relay: invalid(/frames\.line\[0\] is below 0/) },
  { what: 'a negative thread id', after: 0, chunk: (s) => ((s.chunks[0]!.threads.tid[1] = -5), s.chunks[0]), relay: invalid(/threads\.tid\[1\] is below 0/) },
  { what: 'a table left out', after: 1, chunk: next(({ errors: _, ...rest }) => rest), relay: invalid(/chunk\.errors is missing/) },
  { what: 'a list instead of a map', after: 1, chunk: () => [1, 2, 3], relay: invalid(/invalid profile chunk: not an object/), viewer: { code: 'BAD_MESSAGE', message: /chunk must be a map/ } },

  // Fields the format does not have: stored as sent, they would reach every viewer unchecked.
  { what: 'an extra field', after: 1, chunk: next((c) => ({ ...c, note: 'x'.repeat(1000) })), relay: invalid(/chunk\.note is not a field of a profile chunk/), viewer: lenientViewer },
  { what: 'an extra column', after: 1, chunk: next((c) => ({ ...c, samples: { ...c.samples, cpu: new Int32Array(c.samples.stack.length) } })), relay: invalid(/samples\.cpu is not a field of a profile chunk/), viewer: lenientViewer },
  { what: 'an extra capture field', after: 1, chunk: next((c) => ({ ...c, capture: { ...c.capture, hostname: 'web-1' } })), relay: invalid(/capture\.hostname is not a field of a profile chunk/), viewer: lenientViewer },
  { what: 'an extra base field', after: 1, chunk: next((c) => ({ ...c, base: { ...c.base, cpus: 4 } })), relay: invalid(/base\.cpus is not a field of a profile chunk/), viewer: lenientViewer },
  { what: 'a __proto__ key', after: 1, chunk: next((c) => Object.assign(JSON.parse('{"__proto__": {"polluted": true}}'), c)), relay: invalid(/chunk\.__proto_ is not a field of a profile chunk/), viewer: lenientViewer },
];

// ---- the implementations ---------------------------------------------------------------

function expectRefusal(outcome: Outcome, action: () => unknown, what: string): void {
  assert.ok(!('ok' in outcome));
  assert.throws(action, (err: unknown) => {
    assert.ok(err instanceof PeriscopeError, `${what}: a PeriscopeError, not ${String(err)}`);
    assert.equal(err.code, outcome.code, `${what}: ${err.message}`);
    assert.match(err.message, outcome.message);
    return true;
  });
}

/** Chunk bytes as an agent sends them; encodeChunk writes whatever shape it is given. */
const bytesOf = (chunk: unknown): Uint8Array => encodeChunk(chunk as ProfileChunk);

describe('chunk contract: common cases', () => {
  for (const c of CASES) {
    test(`relay acceptChunk: ${c.what}`, () => {
      const s = session();
      let sizes = { ...EMPTY_SIZES };
      for (const prior of s.chunks.slice(0, c.after)) sizes = acceptChunk(sizes, encodeChunk(prior)).sizesAfter;
      const bytes = bytesOf(c.chunk(s));
      if ('ok' in c.relay) {
        const accepted = acceptChunk(sizes, bytes);
        assert.equal(accepted.payload, bytes, 'the very bytes it was given are kept for storing');
        // The rows it counts are the rows a viewer appends.
        const viewer = profileFromChunks([...s.chunks.slice(0, c.after), decodeStoredChunk(bytes)]);
        assert.deepEqual(accepted.sizesAfter, tableSizes(viewer));
        assert.equal(accepted.samples, tableSizes(viewer).samples - sizes.samples);
        if (c.producerProfile) assert.deepEqual(accepted.sizesAfter, tableSizes(s.profiles[c.after]!));
      } else {
        expectRefusal(c.relay, () => acceptChunk(sizes, bytes), c.what);
      }
    });

    test(`viewer capture_chunk + applyChunk: ${c.what}`, () => {
      const s = session();
      const profile = profileFromChunks(s.chunks.slice(0, c.after));
      const bytes = bytesOf(c.chunk(s));
      const outcome = c.viewer ?? c.relay;
      const apply = () => {
        const m = parseRelayToUi(encodeCaptureChunk('capCommon1', c.after, bytes));
        assert.equal(m.type, 'capture_chunk');
        applyChunk(profile, (m as { chunk: unknown }).chunk);
      };
      if ('ok' in outcome) {
        apply();
        if (c.producerProfile) assert.deepStrictEqual(profile, s.profiles[c.after], "the viewer's profile is the builder's");
        else assert.equal(profile.samples.stack.length, s.profiles[c.after]!.samples.stack.length);
      } else {
        const before = structuredClone(profile);
        expectRefusal(outcome, apply, c.what);
        assert.deepStrictEqual(profile, before, 'a refused chunk changes nothing');
      }
    });
  }

  test('the producer: every chunk of a session, in order, rebuilds the builder profile on both sides', () => {
    const s = session();
    let sizes = { ...EMPTY_SIZES };
    for (const chunk of s.chunks) sizes = acceptChunk(sizes, encodeChunk(chunk)).sizesAfter;
    const last = s.profiles.at(-1)!;
    assert.deepEqual(sizes, tableSizes(last));
    assert.deepStrictEqual(profileFromChunks(s.chunks.map((c, seq) => (parseRelayToUi(encodeCaptureChunk('capCommon1', seq, encodeChunk(c))) as { chunk: unknown }).chunk)), last);
    // Read back after a restart, the stored bytes count the same rows.
    let restored = { ...EMPTY_SIZES };
    for (const chunk of s.chunks) restored = sizesAfterStored(restored, encodeChunk(chunk));
    assert.deepEqual(restored, sizes);
  });
});

// ---- bytes and framing ------------------------------------------------------------------

const hostile = {
  records: new Packr({ useRecords: true, moreTypes: true }),
  structuredClone: new Packr({ structuredClone: true, useRecords: false }),
};

/** A chunk message around `chunk` (bytes, normally), encoded like any frame. */
const chunkFrame = (chunk: unknown, seq = 1) => encode({ type: 'chunk', captureId: 'capBytes1', seq, chunk: chunk as Uint8Array, stats: { samples: 0, late: 0, ticks: 0, errors: 0 } });

interface BytesCase {
  what: string;
  bytes: (good: Uint8Array, chunk: ProfileChunk) => Uint8Array;
  /** parseAgentMessage's refusal of the frame around them. */
  frame: RegExp;
  /** acceptChunk's (and, for stored bytes, sizesAfterStored's) INVALID_CHUNK message. */
  accept: RegExp;
}

const BYTES_CASES: BytesCase[] = [
  { what: 'bytes cut short', bytes: (b) => b.subarray(0, b.byteLength - 3), frame: /chunk\.chunk is not a msgpack chunk: the data ends inside a value/, accept: /cannot be decoded: the data ends inside a value/ },
  { what: 'bytes after the map', bytes: (b) => Buffer.concat([b, Buffer.from([0xc0])]), frame: /chunk\.chunk is not a msgpack chunk: 1 bytes follow the value/, accept: /cannot be decoded: 1 bytes follow/ },
  { what: 'msgpackr records', bytes: (_b, c) => hostile.records.pack(c), frame: /extension type 0x72 \(a msgpackr record definition\)/, accept: /extension type 0x72/ },
  {
    what: 'a structured-clone pointer (one table written once, pointed at twice)',
    bytes: (_b, c) => hostile.structuredClone.pack({ ...c, errors: c.samples }),
    frame: /extension type 0x69/,
    accept: /extension type 0x69/,
  },
  { what: 'a msgpack list, not a map', bytes: () => encodeChunk([1, 2] as never), frame: /chunk\.chunk must hold a msgpack map/, accept: /invalid profile chunk: not an object/ },
];

describe('chunk bytes', () => {
  const chunk = () => session().chunks[1]!;
  const sizes = () => acceptChunk({ ...EMPTY_SIZES }, encodeChunk(session().chunks[0]!)).sizesAfter;

  for (const c of BYTES_CASES) {
    test(`${c.what}: the agent's frame is refused (BAD_MESSAGE); as chunk or stored bytes, INVALID_CHUNK`, () => {
      const bytes = c.bytes(encodeChunk(chunk()), chunk());
      assert.throws(() => parseAgentMessage(chunkFrame(bytes)), (err: unknown) => err instanceof ProtocolError && err.code === 'BAD_MESSAGE' && c.frame.test(err.message));
      expectRefusal({ code: 'INVALID_CHUNK', message: c.accept }, () => acceptChunk(sizes(), bytes), 'acceptChunk');
      expectRefusal({ code: 'INVALID_CHUNK', message: c.accept }, () => sizesAfterStored(sizes(), bytes), 'sizesAfterStored');
    });
  }

  test('a protocol 1 chunk message (the chunk as a nested map) is refused, naming the version', () => {
    assert.equal(PROTOCOL_VERSION, 2);
    assert.throws(
      () => parseAgentMessage(chunkFrame(chunk())),
      (err: unknown) => err instanceof ProtocolError && /chunk\.chunk must be the chunk's msgpack as binary \(protocol 2: encodeChunk\), not a map/.test(err.message),
    );
  });

  test('the agent’s bytes come out of the frame unchanged, as binary or as a Uint8Array', () => {
    const bytes = encodeChunk(chunk());
    for (const sent of [bytes, new Uint8Array(bytes)]) {
      const m = parseAgentMessage(chunkFrame(sent)) as ChunkMessage;
      assert.ok(m.chunk instanceof Uint8Array);
      assert.deepEqual(Buffer.from(m.chunk), Buffer.from(bytes));
      assert.deepEqual(acceptChunk(sizes(), m.chunk).payload, m.chunk);
    }
  });

  test('stored bytes are checked in the stored form too: a planted chunk with list columns does not count', () => {
    const c = chunk();
    const planted = encodeChunk({ ...c, frames: { ...c.frames, name: Array.from(c.frames.name) } } as never);
    expectRefusal({ code: 'INVALID_CHUNK', message: /frames\.name is a list/ }, () => sizesAfterStored(sizes(), planted), 'sizesAfterStored');
  });

  test('the size bound is the protocol’s: a stored chunk fits in a message with its frame', () => {
    assert.equal(MAX_STORED_CHUNK_BYTES, MAX_CHUNK_BYTES);
    const frame = encodeCaptureChunk('c'.repeat(64), 2 ** 31 - 1, new Uint8Array(0));
    assert.ok(MAX_CHUNK_BYTES + frame.byteLength <= MAX_MESSAGE_BYTES);
    const agentFrame = chunkFrame(new Uint8Array(0), 2 ** 31 - 1);
    assert.ok(MAX_CHUNK_BYTES + agentFrame.byteLength + 64 <= MAX_MESSAGE_BYTES);
  });
});

describe('capture_chunk framing (encodeCaptureChunk)', () => {
  const ids = ['c', 'capFraming01', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(64)];
  const seqs = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 31 - 1];

  test('is byte for byte what encode() writes for the decoded chunk, for every id and seq length', () => {
    const s = session();
    let n = 0;
    for (const chunk of s.chunks) {
      const bytes = encodeChunk(chunk);
      for (const captureId of ids) {
        for (const seq of seqs) {
          const spliced = encodeCaptureChunk(captureId, seq, bytes);
          const encoded = encode({ type: 'capture_chunk', captureId, seq, chunk: decodeStoredChunk(bytes) });
          assert.deepEqual(Buffer.from(spliced), Buffer.from(encoded), `${captureId} ${seq}`);
          n++;
        }
      }
    }
    assert.equal(n, s.chunks.length * ids.length * seqs.length);
  });

  test('parses in the browser as the stored chunk', () => {
    const s = session();
    const m = parseRelayToUi(encodeCaptureChunk('capFraming01', 1, encodeChunk(s.chunks[1]!)));
    assert.deepStrictEqual(m, { type: 'capture_chunk', captureId: 'capFraming01', seq: 1, chunk: s.chunks[1] });
  });
});
