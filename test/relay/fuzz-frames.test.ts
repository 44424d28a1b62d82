// Fuzzing what peers send: real frames of every connection (frame-corpus.ts),
// mutated -- bit flips, interesting bytes, truncation, splices, deleted and
// repeated slices, and injected msgpack extensions, msgpackr's records,
// structured-clone pointers and bundled strings among them -- then fed to
// every decoder and validator that takes them: the four protocol parsers
// (agent, relay-on-agent, browser, relay-in-browser), the relay's chunk
// validator (acceptChunk) and its stored-chunk decoder.
//
// Asserted per case: nothing but a PeriscopeError (ProtocolError is one) is
// thrown; what decodeFrame returns is plain data (no Set, Date, BigInt, …)
// no bigger than a small multiple of its input (nothing points at earlier
// data); no case takes over 200 ms. Then a sample of mutated frames goes to a
// real relay over a real agent socket: every frame the parser refuses closes
// the socket with BadMessage and leaves the stored capture, its result and
// the agent's process list exactly as they were; the relay stays up.
//
// PERISCOPE_FUZZ_SEED picks another sequence of cases; PERISCOPE_FUZZ_SECONDS
// another time budget (default 8 s, at most 100 000 cases).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { isPeriscopeError } from '../../shared/errors.ts';
import { Packr } from 'msgpackr';
import { CloseCode, decodeFrame, encode, encodeChunk, parseAgentMessage, parseRelayMessage, parseRelayToUi, parseUiMessage } from '../../shared/protocol.ts';
import type { ProfileChunk } from '../../shared/profile/chunk.ts';
import { decodeUntrusted } from '../../shared/untrusted-msgpack.ts';
import { EMPTY_SIZES, acceptChunk, decodeStoredChunk } from '../../relay/captures/chunk-codec.ts';
import type { TableSizes } from '../../shared/profile/model.ts';
import { HOSTILE_PACKERS, frameCorpus, realDumpThreads, type Seed } from './frame-corpus.ts';
import {
  adminClient,
  connectAgent,
  createSession,
  removeDataDir,
  sleep,
  startCapture,
  startRelay,
  type AgentPeer,
  type Client,
  type RelayProcess,
} from '../helpers/relay.ts';
import { buildChunks, STATS } from './helpers.ts';

const SEED = Number(process.env.PERISCOPE_FUZZ_SEED ?? 0x5eed1);
const SECONDS = Number(process.env.PERISCOPE_FUZZ_SECONDS ?? 8);
const MAX_CASES = 100_000;
/** msgpackr with every extension on: what the relay decoded with before. */
const permissive = new Packr({ moreTypes: true, useRecords: false });
const CASE_MS = 200;

/** mulberry32: small, fast, and the same sequence for the same seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- mutations ----------------------------------------------------------------

const INTERESTING = [0x00, 0x01, 0x40, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc4, 0xc6, 0xc7, 0xc9, 0xcb, 0xcf, 0xd3, 0xd4, 0xd5, 0xd6, 0xd8, 0xd9, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff];

/** Byte sequences a hostile peer would plant: every msgpackr extension, huge lengths, deep nesting. */
const INJECTIONS: number[][] = [
  [0xd4, 0x72, 0x40, 0x92, 0xa1, 0x61, 0xa1, 0x62, 0x01, 0x02], // record definition (slot 0: keys a, b) and its first record
  [0x40],
  [0x40, 0x05, 0x06], // references to record slot 0
  [0xd5, 0x72, 0x40, 0x01, 0x91, 0xa1, 0x61, 0x01], // two-byte record definition
  [0xd6, 0x69, 0, 0, 0, 1], // structured-clone id 1
  [0xd6, 0x70, 0, 0, 0, 1], // pointer to id 1
  [0xd6, 0x69, 0, 0, 0, 1, 0x92, 0xa1, 0x78, 0xd6, 0x70, 0, 0, 0, 1], // a list holding a pointer to itself
  [0xd6, 0x70, 0xff, 0xff, 0xff, 0xff],
  [0xd6, 0x62, 0, 0, 0, 0x10, 0xa2, 0x61, 0x62, 0xa0], // bundled strings
  [0xc1],
  [0xc1, 0x05],
  [0xd4, 0x73, 0x00, 0x93, 1, 2, 3], // Set
  [0xd4, 0x65, 0x00, 0x92, 0xa1, 0x78, 0xa1, 0x79], // Error
  [0xd4, 0x78, 0x00, 0x92, 0xa2, 0x2e, 0x2a, 0xa0], // RegExp
  [0xc7, 0x08, 0x42, 1, 2, 3, 4, 5, 6, 7, 8], // BigInt
  [0xd6, 0xff, 0, 0, 0, 1], // Date
  [0xc7, 0x05, 0x74, 0x05, 1, 0, 0, 0], // Int32Array [1]
  [0xc7, 0x04, 0x74, 0x05, 1, 0, 0], // misaligned Int32Array
  [0xc7, 0x01, 0x74, 0x10], // ArrayBuffer
  [0xc7, 0x01, 0x74, 0x11], // DataView
  [0xc7, 0x09, 0x74, 0x09, 1, 2, 3, 4, 5, 6, 7, 8], // BigInt64Array
  [0xd4, 0x00, 0x00], // undefined
  [0xdd, 0xff, 0xff, 0xff, 0xff],
  [0xdf, 0x7f, 0xff, 0xff, 0xff],
  [0xdb, 0xff, 0xff, 0xff, 0xf0],
  [0xc9, 0xff, 0xff, 0xff, 0xff, 0x74],
  [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0],
  [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0], // NaN
  [0x81, 0x91, 0x01, 0x01], // a map with a list as key
  [0x81, 0xc0, 0x01], // a map with nil as key
  [0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa1, 0x78, 0x01], // __proto__ key
  new Array(40).fill(0x91), // deep nesting
];

function mutate(r: () => number, seed: Uint8Array, seeds: Uint8Array[]): Uint8Array {
  let b = Buffer.from(seed);
  const at = (len = b.length) => Math.floor(r() * (len + 1));
  const ops = 1 + Math.floor(r() * 3);
  for (let k = 0; k < ops; k++) {
    const op = Math.floor(r() * 9);
    if (b.length === 0) b = Buffer.from([0x80]);
    switch (op) {
      case 0: {
        // flip a few bits
        const n = 1 + Math.floor(r() * 4);
        for (let i = 0; i < n; i++) b[Math.min(at(b.length - 1), b.length - 1)]! ^= 1 << Math.floor(r() * 8);
        break;
      }
      case 1:
        b[Math.min(at(b.length - 1), b.length - 1)] = INTERESTING[Math.floor(r() * INTERESTING.length)]!;
        break;
      case 2:
        b = b.subarray(0, at(b.length - 1));
        break;
      case 3: {
        // insert an injection
        const inj = Buffer.from(INJECTIONS[Math.floor(r() * INJECTIONS.length)]!);
        const i = at();
        b = Buffer.concat([b.subarray(0, i), inj, b.subarray(i)]);
        break;
      }
      case 4: {
        // overwrite with an injection (keeps the length, breaks the structure less)
        const inj = INJECTIONS[Math.floor(r() * INJECTIONS.length)]!;
        const i = at(Math.max(0, b.length - inj.length));
        b = Buffer.from(b);
        for (let j = 0; j < inj.length && i + j < b.length; j++) b[i + j] = inj[j]!;
        break;
      }
      case 5: {
        // delete a slice
        const i = at();
        b = Buffer.concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + 1 + Math.floor(r() * 16)))]);
        break;
      }
      case 6: {
        // repeat a slice
        const i = at(b.length - 1);
        const slice = b.subarray(i, Math.min(b.length, i + 1 + Math.floor(r() * 32)));
        const times = 1 + Math.floor(r() * 8);
        b = Buffer.concat([b.subarray(0, i), ...new Array<Buffer>(times).fill(slice), b.subarray(i)]);
        break;
      }
      case 7: {
        // splice with another seed
        const other = seeds[Math.floor(r() * seeds.length)]!;
        b = Buffer.concat([b.subarray(0, at()), Buffer.from(other).subarray(Math.floor(r() * other.length))]);
        break;
      }
      default: {
        // repeated pointers to earlier data, the shape of the expansion attack
        const ptr = [0xd6, 0x70, 0, 0, 0, 1];
        const n = 2 + Math.floor(r() * 30);
        const i = at();
        b = Buffer.concat([b.subarray(0, i), Buffer.from([0xdc, 0, n, 0xd6, 0x69, 0, 0, 0, 1, 0xa1, 0x78]), Buffer.from(new Array(n - 1).fill(ptr).flat()), b.subarray(i)]);
        break;
      }
    }
  }
  return b;
}

// ---- invariants -----------------------------------------------------------------

function expectPeriscopeError(err: unknown, what: string): string {
  if (isPeriscopeError(err)) return err.code;
  throw new assert.AssertionError({ message: `${what} threw ${(err as Error)?.name ?? typeof err}, not a PeriscopeError: ${(err as Error)?.stack ?? String(err)}` });
}

/**
 * Walks a decoded value: only what plain msgpack and typed arrays decode to,
 * and in all no more than `budget` (strings and typed arrays by length, other
 * values as 1). A value reached twice is counted twice, as any consumer (JSON,
 * re-encoding, validation) would pay for it, so pointers to earlier data show.
 */
function assertPlainAndBounded(value: unknown, budget: number, what: string): void {
  let size = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    size += 1;
    if (v === null || v === undefined || typeof v === 'boolean' || typeof v === 'number') {
      // scalar
    } else if (typeof v === 'string') {
      size += v.length;
    } else if (ArrayBuffer.isView(v) && !(v instanceof DataView) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) {
      size += v.byteLength;
    } else if (Array.isArray(v)) {
      for (const x of v) stack.push(x);
    } else if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
      for (const [k, x] of Object.entries(v)) {
        size += k.length;
        stack.push(x);
      }
    } else {
      assert.fail(`${what}: decoded a ${typeof v === 'object' ? Object.prototype.toString.call(v) : typeof v}, not plain data`);
    }
    if (size > budget) assert.fail(`${what}: decoded value exceeds ${budget} (its input allows no more)`);
  }
}

function sizesOf(chunk: unknown): TableSizes | undefined {
  const base = (chunk as { base?: unknown } | null)?.base;
  if (!base || typeof base !== 'object') return undefined;
  const sizes = { ...EMPTY_SIZES };
  for (const key of Object.keys(sizes) as (keyof TableSizes)[]) {
    const n = (base as Record<string, unknown>)[key];
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return undefined;
    sizes[key] = n;
  }
  return sizes;
}

interface Tally {
  cases: number;
  parsed: number;
  chunksAccepted: number;
  codes: Map<string, number>;
  refusedExtensions: Set<string>;
  worstMs: number;
}

function runCase(bytes: Uint8Array, tally: Tally): void {
  const count = (code: string) => tally.codes.set(code, (tally.codes.get(code) ?? 0) + 1);
  const chunkTargets = (bytes: Uint8Array, what: string) => {
    try {
      acceptChunk(sizesOf(decodeStoredChunk(bytes)) ?? EMPTY_SIZES, bytes);
      tally.chunksAccepted++;
    } catch (err) {
      count(expectPeriscopeError(err, `${what}: acceptChunk`));
    }
  };
  const parsers = { parseAgentMessage, parseRelayMessage, parseUiMessage, parseRelayToUi } as const;
  for (const [name, parse] of Object.entries(parsers)) {
    let m: { type: string; chunk?: unknown };
    try {
      m = parse(bytes);
    } catch (err) {
      count(expectPeriscopeError(err, name));
      const ext = /extension type (0x[0-9a-f]+)/.exec((err as Error).message);
      if (ext) tally.refusedExtensions.add(ext[1]!);
      continue;
    }
    tally.parsed++;
    // An agent's chunk is its bytes; a viewer's is the decoded map, checked here as the relay would check its bytes.
    if (m.type === 'chunk') chunkTargets(m.chunk as Uint8Array, name);
    if (m.type === 'capture_chunk') chunkTargets(encodeChunk(m.chunk as ProfileChunk), name);
  }
  try {
    assertPlainAndBounded(decodeFrame(bytes), 3 * bytes.byteLength + 64, 'decodeFrame');
  } catch (err) {
    if (err instanceof assert.AssertionError) throw err;
    count(expectPeriscopeError(err, 'decodeFrame'));
  }
  let stored: unknown;
  try {
    stored = decodeStoredChunk(bytes);
  } catch (err) {
    count(expectPeriscopeError(err, 'decodeStoredChunk'));
    return;
  }
  assertPlainAndBounded(stored, 3 * bytes.byteLength + 64, 'decodeStoredChunk');
  chunkTargets(bytes, 'stored chunk');
}

// ---- in process -------------------------------------------------------------------

function allSeeds(): Seed[] {
  const seeds = frameCorpus();
  // The same messages as an attacker's msgpackr would write them.
  for (const s of frameCorpus().slice(0, 8)) {
    const value = decodeUntrusted(s.bytes);
    for (const h of HOSTILE_PACKERS) seeds.push({ direction: s.direction, name: `${s.name} (${h.name})`, bytes: h.packr.pack(value) });
  }
  return seeds;
}

test(`fuzz: mutated real frames against every decoder and validator: only PeriscopeErrors, plain bounded values, no case over ${CASE_MS} ms`, (t) => {
  const seeds = allSeeds();
  const seedBytes = seeds.map((s) => s.bytes);
  const r = prng(SEED);
  const tally: Tally = { cases: 0, parsed: 0, chunksAccepted: 0, codes: new Map(), refusedExtensions: new Set(), worstMs: 0 };
  // Unmutated seeds first: the project's own frames all pass where they belong.
  for (const s of seeds.filter((x) => !x.name.includes('('))) runCase(s.bytes, tally);
  const parsedSeeds = tally.parsed;
  const start = performance.now();
  const deadline = start + SECONDS * 1000;
  while (tally.cases < MAX_CASES && performance.now() < deadline) {
    const seed = seeds[Math.floor(r() * seeds.length)]!;
    const bytes = mutate(r, seed.bytes, seedBytes);
    const what = () => `case ${tally.cases} (seed ${SEED}, from ${seed.name}): ${Buffer.from(bytes).toString('hex').slice(0, 400)}`;
    let ms: number;
    try {
      const t0 = performance.now();
      runCase(bytes, tally);
      ms = performance.now() - t0;
      if (ms > CASE_MS) {
        // A GC pause or a busy machine is not the decoder's doing: only a case that is slow twice counts.
        const t1 = performance.now();
        runCase(bytes, tally);
        ms = Math.min(ms, performance.now() - t1);
      }
    } catch (err) {
      (err as Error).message = `${what()}\n${(err as Error).message}`;
      throw err;
    }
    assert.ok(ms <= CASE_MS, `${what()} took ${ms.toFixed(0)} ms`);
    tally.worstMs = Math.max(tally.worstMs, ms);
    tally.cases++;
  }
  const seconds = (performance.now() - start) / 1000;
  t.diagnostic(
    `seed ${SEED}: ${tally.cases} cases in ${seconds.toFixed(1)} s (${Math.round(tally.cases / seconds)}/s), worst case ${tally.worstMs.toFixed(1)} ms; ` +
      `${tally.parsed - parsedSeeds} parses and ${tally.chunksAccepted} chunks accepted; refusals ${JSON.stringify(Object.fromEntries(tally.codes))}; ` +
      `extensions refused ${[...tally.refusedExtensions].sort().join(' ')}`,
  );
  assert.ok(parsedSeeds >= frameCorpus().length, 'every real frame parses for its own direction');
  assert.ok(tally.cases >= 1000, `only ${tally.cases} cases ran`);
  // The mutations reached past the decoder into the validators, and the planted extensions were met.
  assert.ok(tally.parsed > parsedSeeds && tally.chunksAccepted > 0, 'some mutated frames must still decode and validate');
  for (const ext of ['0x72', '0x69', '0x70', '0x62']) assert.ok(tally.refusedExtensions.has(ext), `no case planted extension ${ext}`);
});

// ---- against a real relay -----------------------------------------------------------

test('fuzz: mutated frames over a real agent socket: each one the parser refuses closes with BadMessage and changes nothing stored; the relay stays up', async (t) => {
  // Started here, not in a before hook: the in-process fuzz above keeps this
  // process busy long enough for the relay to drop idle keep-alive sockets.
  const relay: RelayProcess = await startRelay();
  t.after(async () => {
    await relay.stop();
    removeDataDir(relay.dataDir);
  });
  const admin: Client = await adminClient(relay);
  const session = await createSession(admin, 'fuzz');
  let agent: AgentPeer = await connectAgent(relay, session.joinToken);
  const welcome = await agent.hello();
  const agentId = welcome.agentId;
  const credential = welcome.credential!;
  const chunks = buildChunks(3);

  // A record capture with two chunks stored, and a dump the agent may answer.
  let captureId = '';
  const newCapture = async () => {
    ({ captureId } = await startCapture(admin, agent, agentId));
    for (let seq = 0; seq < 2; seq++) agent.send({ type: 'chunk', captureId, seq, chunk: encodeChunk(chunks[seq]!), stats: STATS });
    await agent.nextOfType('ack', 5000, (m) => m.captureId === captureId && m.nextSeq === 2);
  };
  await newCapture();
  const { captureId: dumpId } = await startCapture(admin, agent, agentId, { kind: 'dump', pid: 4242 });

  const state = async () => {
    const view = async (id: string) => {
      const c = (await admin.get(`/api/captures/${id}`)).json;
      return { status: c.status, chunks: c.chunks, samples: c.samples, stats: c.stats, error: c.error, result: c.result };
    };
    const file = join(relay.dataDir, 'captures', `${captureId}.chunks`);
    return {
      capture: await view(captureId),
      file: existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : null,
      dump: await view(dumpId),
      processes: (await admin.get(`/api/agents/${agentId}`)).json.processes,
    };
  };
  const reconnect = async () => {
    agent = await connectAgent(relay, credential);
    const c = (await admin.get(`/api/captures/${captureId}`)).json;
    await agent.hello(c.status === 'running' || c.status === 'starting' ? [{ captureId, nextSeq: c.chunks }] : []);
  };

  // Messages that would each change what the relay stores -- the next chunk, a
  // process list, the dump's result -- written by an attacker's msgpackr, each
  // with one object in two places so structured clone writes a pointer: refused.
  // The chunk's own bytes (chunk.chunk) are the attacker's msgpackr's too.
  const hostile = () => {
    const empty = new Int32Array(0);
    const evilChunk = { ...chunks[2]!, processes: { pid: empty, commandLine: empty, pythonVersion: empty } };
    const evil = { pid: 7, cmdline: 'python3 evil.py', version: '3.12.1', user: 'x', threads: 1 };
    const threads = realDumpThreads();
    threads[1]!.frames = threads[0]!.frames;
    return HOSTILE_PACKERS.flatMap((h) => {
      const chunk = h.packr.pack(evilChunk);
      // (On a copy: msgpackr leaves a `dataView` property on what it decodes, which would make `chunk` differ from its decoded self below.)
      assert.deepEqual(permissive.unpack(Buffer.from(chunk)), evilChunk, `the chunk (${h.name}) decodes permissively`);
      assert.notDeepEqual(Buffer.from(chunk), Buffer.from(encodeChunk(evilChunk)), `the chunk (${h.name}) uses an extension`);
      const messages = [
        { type: 'chunk', captureId, seq: 2, chunk, stats: STATS },
        { type: 'processes', processes: [evil, evil] },
        { type: 'dump_result', captureId: dumpId, threads },
      ];
      return messages.map((m) => {
        const bytes = h.packr.pack(m);
        // A real attack: msgpackr's own decoder makes it the message again, from bytes that are not plain msgpack.
        assert.deepEqual(permissive.unpack(bytes), m, `${m.type} (${h.name}) decodes permissively`);
        if (m.type !== 'chunk') assert.notDeepEqual(Buffer.from(bytes), Buffer.from(encode(m as never)), `${m.type} (${h.name}) uses an extension`);
        return { name: `${m.type} (${h.name})`, bytes, mustRefuse: true };
      });
    });
  };
  const CASES = 150;
  const planted = hostile().length;
  const r = prng(SEED ^ 0x1ce);
  let refused = 0;
  let accepted = 0;
  for (let i = 0; i < CASES + planted; i++) {
    const c = (await admin.get(`/api/captures/${captureId}`)).json;
    if (c.status !== 'running' && c.status !== 'starting') await newCapture(); // a mutated capture_ended or chunk may legitimately end it
    let name: string;
    let bytes: Uint8Array;
    let mustRefuse = false;
    if (i < planted) {
      ({ name, bytes, mustRefuse } = hostile()[i]!);
    } else {
      const seeds = frameCorpus(captureId).filter((s) => s.direction === 'agent' && s.name !== 'hello');
      // Some dump results go to the dump capture, so validation of a result is reached too.
      const dumpSeed = frameCorpus(dumpId).find((s) => s.name === 'dump_result')!;
      const seed = r() < 0.15 ? dumpSeed : seeds[Math.floor(r() * seeds.length)]!;
      name = seed.name;
      bytes = mutate(r, seed.bytes, seeds.map((s) => s.bytes));
    }
    let refusedHere = mustRefuse;
    try {
      parseAgentMessage(bytes);
    } catch {
      refusedHere = true;
    }
    const before = await state();
    agent.sendRaw(bytes);
    const seed = { name };
    if (refusedHere) {
      const closed = await Promise.race([agent.closed, sleep(10_000).then(() => ({ code: 0, reason: 'still open after 10 s' }))]);
      assert.equal(closed.code, CloseCode.BadMessage, `case ${i} (${seed.name}): ${closed.reason}`);
      assert.deepEqual(await state(), before, `case ${i} (${seed.name}, ${Buffer.from(bytes).toString('hex').slice(0, 200)}): a refused frame changed what the relay stores`);
      refused++;
      await reconnect();
    } else {
      // Accepted: it may change state, as a real message would. The relay must go on answering.
      agent.send({ type: 'chunk', captureId: 'noSuchCapture', seq: 0, chunk: encodeChunk(chunks[0]!), stats: STATS });
      await agent.nextOfType('error', 5000, (m) => m.captureId === 'noSuchCapture');
      accepted++;
    }
  }
  t.diagnostic(`${planted} planted and ${CASES} mutated frames: ${refused} refused (socket closed, nothing changed), ${accepted} accepted as valid messages`);
  assert.ok(refused > CASES / 4, `only ${refused} frames refused: the mutations are too gentle`);
  const health = await fetch(`${relay.url}/healthz`);
  assert.equal(health.status, 200, 'the relay is still up');
  agent.close();
});
