// The attack of issue 10: a frame of a few hundred bytes, from anything that
// holds a join code, whose msgpackr references make it decode into tens of
// megabytes -- a nested dump_result the relay would stringify and store, or
// chunk strings that all point at one large string, stored larger than the
// chunk files read back (the capture then reads 'complete' and every
// download answers CAPTURE_EMPTY). And its cousin without references: a
// chunk with list columns, which grew when the relay still turned them into
// typed arrays; the relay now stores chunks as sent and refuses lists.
//
// In process: each is refused by the protocol's decoder (or the chunk codec)
// within a bound. Against a real relay: each is refused on a real agent
// socket, nothing is stored, and the capture goes on (or fails, for the
// chunk with list columns) with what it had, still downloadable.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Packr } from 'msgpackr';
import { isPeriscopeError } from '../../shared/errors.ts';
import { CloseCode, MAX_MESSAGE_BYTES, ProtocolError, parseAgentMessage, type ChunkMessage, encodeChunk } from '../../shared/protocol.ts';
import { EMPTY_SIZES, acceptChunk } from '../../relay/captures/chunk-codec.ts';
import { expandingDumpFrame, growingChunkFrame, realDumpThreads, recordDumpFrame, sharedStringChunkFrame } from './frame-corpus.ts';
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

/** Generous for a busy 2-core machine; the refusal itself takes well under a millisecond. */
const DECODE_BOUND_MS = 200;
const DEPTH = 18;

/** What a decoder that follows msgpackr's pointers makes of a frame (the relay's decoder before the fix). */
const permissive = new Packr({ moreTypes: true, useRecords: false });

function timedRefusal(bytes: Uint8Array): { err: unknown; ms: number } {
  const t0 = performance.now();
  try {
    parseAgentMessage(bytes);
  } catch (err) {
    return { err, ms: performance.now() - t0 };
  }
  return { err: undefined, ms: performance.now() - t0 };
}

describe('in process', () => {
  test(`a ~300-byte dump_result nested ${DEPTH} deep through structured-clone pointers is refused in under ${DECODE_BOUND_MS} ms`, (t) => {
    const frame = expandingDumpFrame('cap1', DEPTH);
    assert.ok(frame.byteLength < 500, `the attack frame is ${frame.byteLength} bytes`);
    // The frame really is the attack: followed, its pointers make tens of megabytes of JSON.
    const t0 = performance.now();
    const expandedBytes = JSON.stringify(permissive.unpack(frame).threads).length;
    const permissiveMs = performance.now() - t0;
    assert.ok(expandedBytes > 30_000_000, `expands to ${expandedBytes} bytes of JSON`);
    const { err, ms } = timedRefusal(frame);
    assert.ok(err instanceof ProtocolError, `refused with a ProtocolError, not ${String(err)}`);
    assert.match(err.message, /extension type 0x69 \(a msgpackr structured-clone id\)/);
    assert.ok(ms < DECODE_BOUND_MS, `refused in ${ms.toFixed(1)} ms`);
    t.diagnostic(`${frame.byteLength}-byte frame: ${(expandedBytes / 1e6).toFixed(1)} MB of JSON in ${permissiveMs.toFixed(0)} ms when pointers are followed; refused in ${ms.toFixed(2)} ms`);
  });

  test('the same dump with msgpackr records, and chunk strings pointing at one string, are refused', () => {
    const record = timedRefusal(recordDumpFrame('cap1'));
    assert.ok(record.err instanceof ProtocolError);
    assert.match(record.err.message, /extension type 0x72 \(a msgpackr record definition\)/);
    const shared = sharedStringChunkFrame('cap1', 0, 200, 64 * 1024);
    const followed = permissive.unpack((permissive.unpack(shared) as ChunkMessage).chunk) as { strings: string[] };
    assert.equal(followed.strings.join('').length, 200 * 64 * 1024, 'followed, the pointers make 12.8 MB of strings');
    const { err, ms } = timedRefusal(shared);
    assert.ok(err instanceof ProtocolError);
    assert.match(err.message, /extension type 0x69/);
    assert.ok(ms < DECODE_BOUND_MS, `refused in ${ms.toFixed(1)} ms`);
  });

  test('a chunk with list columns, which would grow past what the chunk files read back as typed arrays, is refused (INVALID_CHUNK)', () => {
    const chunks = buildChunks(2);
    const frame = growingChunkFrame('cap1', 1, chunks[1]!);
    assert.ok(frame.byteLength < MAX_MESSAGE_BYTES / 1.5, `the frame is ${frame.byteLength} bytes`);
    const m = parseAgentMessage(frame) as ChunkMessage; // well-formed, no references
    const sizes = acceptChunk(EMPTY_SIZES, encodeChunk(chunks[0]!)).sizesAfter;
    assert.throws(
      () => acceptChunk(sizes, m.chunk),
      (err: unknown) => isPeriscopeError(err, 'INVALID_CHUNK') && /samples\.stack is a list, not the Int32Array/.test((err as Error).message),
    );
  });
});

describe('against a real relay', () => {
  let relay: RelayProcess;
  let admin: Client;

  before(async () => {
    relay = await startRelay();
    admin = await adminClient(relay);
  });

  after(async () => {
    await relay?.stop();
    if (relay) removeDataDir(relay.dataDir);
  });

  async function joined() {
    const session = await createSession(admin, 'expanding frames');
    const agent = await connectAgent(relay, session.joinToken);
    const welcome = await agent.hello();
    return { agent, agentId: welcome.agentId, credential: welcome.credential! };
  }

  const capture = async (id: string) => (await admin.get(`/api/captures/${id}`)).json;
  const fileHash = (id: string) => {
    const file = join(relay.dataDir, 'captures', `${id}.chunks`);
    return existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : null;
  };

  /** Sends `bytes` and expects the relay's refusal: an error naming the cause, then BadMessage. */
  async function refused(agent: AgentPeer, bytes: Uint8Array, cause: RegExp): Promise<number> {
    const t0 = performance.now();
    agent.sendRaw(bytes);
    const err = await agent.nextOfType('error');
    const closed = await Promise.race([agent.closed, sleep(10_000).then(() => ({ code: 0, reason: 'still open after 10 s' }))]);
    const ms = performance.now() - t0;
    assert.equal(err.code, 'BAD_MESSAGE');
    assert.match(err.message, cause);
    assert.equal(closed.code, CloseCode.BadMessage, closed.reason);
    return ms;
  }

  test('the expanding dump_result is refused at once and nothing is stored; a real result afterwards is', async (t) => {
    const { agent, agentId, credential } = await joined();
    const { captureId } = await startCapture(admin, agent, agentId, { kind: 'dump', pid: 4242 });
    const ms = await refused(agent, expandingDumpFrame(captureId, DEPTH), /structured-clone id/);
    assert.ok(ms < 5000, `refused after ${ms.toFixed(0)} ms`);
    t.diagnostic(`refused by the relay ${ms.toFixed(1)} ms after sending (round trip included)`);
    const c = await capture(captureId);
    assert.equal(c.result, null, 'no result stored');
    assert.equal(c.status, 'starting');
    // The same with records.
    let again = await connectAgent(relay, credential);
    await again.hello();
    await refused(again, recordDumpFrame(captureId), /record definition/);
    assert.equal((await capture(captureId)).result, null);
    // The relay still takes a real dump.
    again = await connectAgent(relay, credential);
    await again.hello();
    again.send({ type: 'dump_result', captureId, threads: realDumpThreads() });
    const done = await eventuallyComplete(captureId);
    assert.deepEqual(done.result, realDumpThreads());
    again.close();
  });

  test('chunk strings pointing at one string are refused; the capture keeps its chunks and goes on', async () => {
    const { agent, agentId, credential } = await joined();
    const { captureId } = await startCapture(admin, agent, agentId);
    const chunks = buildChunks(3);
    for (let seq = 0; seq < 2; seq++) agent.send({ type: 'chunk', captureId, seq, chunk: encodeChunk(chunks[seq]!), stats: STATS });
    await agent.nextOfType('ack', 5000, (m) => m.nextSeq === 2);
    const before = { chunks: (await capture(captureId)).chunks, file: fileHash(captureId) };
    await refused(agent, sharedStringChunkFrame(captureId, 2, 200, 64 * 1024), /structured-clone id/);
    assert.deepEqual({ chunks: (await capture(captureId)).chunks, file: fileHash(captureId) }, before, 'nothing stored');
    const back = await connectAgent(relay, credential);
    const welcome = await back.hello([{ captureId, nextSeq: 3 }]);
    assert.deepEqual(welcome.resume, [{ captureId, nextSeq: 2 }]);
    back.send({ type: 'chunk', captureId, seq: 2, chunk: encodeChunk(chunks[2]!), stats: STATS });
    await back.nextOfType('ack', 5000, (m) => m.nextSeq === 3);
    back.send({ type: 'capture_ended', captureId, reason: 'duration', chunks: 3 });
    await eventuallyComplete(captureId);
    const raw = await admin.get(`/api/captures/${captureId}/download?format=raw`);
    assert.equal(raw.status, 200, raw.text);
    assert.match(raw.text, /compute/);
    back.close();
  });

  test('a chunk with list columns (it grew when the relay made them typed arrays) fails the capture with INVALID_CHUNK; what was stored stays downloadable', async () => {
    const { agent, agentId } = await joined();
    const { captureId } = await startCapture(admin, agent, agentId);
    const chunks = buildChunks(2);
    agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(chunks[0]!), stats: STATS });
    await agent.nextOfType('ack', 5000, (m) => m.nextSeq === 1);
    const before = fileHash(captureId);
    agent.sendRaw(growingChunkFrame(captureId, 1, chunks[1]!));
    const err = await agent.nextOfType('error', 10_000, (m) => m.captureId === captureId);
    assert.equal(err.code, 'INVALID_CHUNK', err.message);
    await agent.nextOfType('stop_capture', 5000, (m) => m.captureId === captureId);
    const c = await capture(captureId);
    assert.equal(c.status, 'failed');
    assert.equal(c.chunks, 1, 'the grown chunk was not stored');
    assert.equal(fileHash(captureId), before);
    const raw = await admin.get(`/api/captures/${captureId}/download?format=raw`);
    assert.equal(raw.status, 200, raw.text);
    agent.close();
  });

  async function eventuallyComplete(captureId: string) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = await capture(captureId);
      if (c.status === 'complete') return c;
      if (Date.now() > deadline) throw new Error(`capture ${captureId} is ${c.status}, not complete`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
});
