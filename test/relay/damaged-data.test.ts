// Damaged files in a real relay's data dir: a flipped byte in a chunk file
// marks the capture damaged (API, viewers, audit, log, metrics) while what is
// readable still serves; a running capture's damaged file is neither cut off
// nor appended to; a zero-length or malformed relay.db stops the relay at
// start with a message naming the file and the fix; and a chunk too large to
// read back is never stored.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { profileFromChunks } from '../../shared/profile/index.ts';
import type { ProfileChunk } from '../../shared/profile/chunk.ts';
import { render } from '../../shared/export/renderers.ts';
import { MAX_STORED_CHUNK_BYTES } from '../../relay/captures/chunk-codec.ts';
import {
  Client,
  adminClient,
  connectUi,
  eventually,
  joinedAgent,
  metric,
  removeDataDir,
  startCapture,
  startRelay,
  userClient,
  type AgentPeer,
  type RelayProcess,
} from '../helpers/relay.ts';
import { buildChunks, STATS } from './helpers.ts';
import { encodeChunk } from '../../shared/protocol.ts';

const NO_OPTIONS = { idle: false, gil: false, function: false, nolineno: false, threads: false };
const chunks = buildChunks(5, 6);
let relay: RelayProcess;
let dataDir: string;
let alice: Client;
let agent: AgentPeer;
let agentId: string;
let sessionId: string;
let finishedId: string;
let runningId: string;

before(async () => {
  relay = await startRelay();
  dataDir = relay.dataDir;
  alice = await userClient(relay, await adminClient(relay), 'alice');
  const joined = await joinedAgent(relay, alice);
  agent = joined.agent;
  agentId = joined.welcome.agentId;
  sessionId = joined.session.id;
  finishedId = (await startCapture(alice, agent, agentId, { kind: 'record', pid: 4242, duration: 5 })).captureId;
  for (let seq = 0; seq < 5; seq++) agent.send({ type: 'chunk', captureId: finishedId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
  await agent.nextOfType('ack', 10_000, (m) => m.captureId === finishedId && m.nextSeq === 5);
  agent.send({ type: 'capture_ended', captureId: finishedId, reason: 'duration', chunks: 5 });
  runningId = (await startCapture(alice, agent, agentId, { kind: 'top', pid: 4242 })).captureId;
  for (let seq = 0; seq < 3; seq++) agent.send({ type: 'chunk', captureId: runningId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
  await agent.nextOfType('ack', 10_000, (m) => m.captureId === runningId && m.nextSeq === 3);
  await eventually(async () => (await alice.get(`/api/captures/${finishedId}`)).json.status === 'complete', 10_000, 'the first capture to complete');
});

after(async () => {
  await relay?.stop();
  if (dataDir) removeDataDir(dataDir);
});

const chunkFile = (id: string) => join(dataDir, 'captures', `${id}.chunks`);

/** Byte offset of each record's header in a chunk file. */
function recordOffsets(path: string): number[] {
  const bytes = readFileSync(path);
  const offsets: number[] = [];
  for (let pos = 0; pos < bytes.length; pos += 8 + bytes.readUInt32BE(pos)) offsets.push(pos);
  return offsets;
}

function flipByte(path: string, offset: number): void {
  const fd = openSync(path, 'r+');
  const b = Buffer.alloc(1);
  try {
    const { size } = statSync(path);
    assert.ok(offset < size);
    b[0] = readFileSync(path)[offset] ^ 0xff;
    writeSync(fd, b, 0, 1, offset);
  } finally {
    closeSync(fd);
  }
}

/** Starts a relay that must refuse to start; returns what it printed. */
async function refusedStart(): Promise<string> {
  let started: RelayProcess;
  try {
    started = await startRelay({ dataDir });
  } catch (err) {
    return (err as Error).message;
  }
  await started.stop();
  assert.fail('the relay started');
}

async function download(id: string, query: string) {
  const res = await fetch(`${relay.url}/api/captures/${id}/download?${query}`, { headers: { cookie: alice.cookie! } });
  return { status: res.status, body: await res.text() };
}

describe('a damaged chunk file', () => {
  test('a flipped byte mid-file: the capture is marked damaged everywhere, and what is readable still serves', async () => {
    const path = chunkFile(finishedId);
    const offsets = recordOffsets(path);
    assert.equal(offsets.length, 5);
    flipByte(path, offsets[2] + 8 + 20);

    // The first reader is a viewer: it gets the readable chunks, then the news.
    const ui = await connectUi(relay, alice);
    ui.send({ type: 'watch_capture', captureId: finishedId });
    const state = await ui.nextOfType('capture_state', 10_000, (m) => m.status === 'damaged');
    assert.equal(state.error?.code, 'CAPTURE_DAMAGED');
    assert.deepEqual([(await ui.nextOfType('capture_chunk')).seq, (await ui.nextOfType('capture_chunk')).seq], [0, 1]);
    ui.close();

    const capture = (await alice.get(`/api/captures/${finishedId}`)).json;
    assert.equal(capture.status, 'damaged');
    assert.equal(capture.endReason, 'duration', 'how it ended is kept');
    assert.equal(capture.error.code, 'CAPTURE_DAMAGED');
    assert.ok(capture.error.message.includes(path), `names the file: ${capture.error.message}`);
    assert.match(capture.error.message, /record 2 .*checksum.*chunks 0 to 1 still read back.*backup/s);
    const listed = (await alice.get(`/api/sessions/${sessionId}/captures`)).json.captures.find((c: { id: string }) => c.id === finishedId);
    assert.equal(listed.status, 'damaged');

    const raw = await download(finishedId, 'format=raw');
    assert.equal(raw.status, 200);
    assert.equal(raw.body, render('raw', profileFromChunks(chunks.slice(0, 2)), NO_OPTIONS), 'the readable part downloads');

    assert.match(relay.output(), new RegExp(`CAPTURE_DAMAGED: capture ${finishedId} \\(was complete\\)`));
    const audit = (await alice.get(`/api/sessions/${sessionId}/audit`)).json.entries;
    assert.ok(audit.some((e: { action: string; detail: { captureId?: string } }) => e.action === 'capture.damaged' && e.detail.captureId === finishedId));
    assert.equal(await metric(relay, 'periscope_captures_damaged_total'), 1);
  });

  test('a running capture whose file is damaged across a restart: nothing is cut off, nothing is appended, it ends damaged', async () => {
    await relay.kill();
    const path = chunkFile(runningId);
    flipByte(path, recordOffsets(path)[0] + 8 + 10);
    const size = statSync(path).size;
    relay = await startRelay({ dataDir });
    alice = new Client(relay);
    assert.equal((await alice.login('alice', 'alice-password-123')).status, 200);
    const capture = (await alice.get(`/api/captures/${runningId}`)).json;
    assert.equal(capture.status, 'damaged');
    assert.equal(capture.endReason, 'damaged');
    assert.match(capture.error.message, /none of its chunks can be read/);
    assert.equal(statSync(path).size, size, 'the damaged file is kept whole for recovery');
    const res = await download(runningId, 'format=raw');
    assert.equal(res.status, 409);
    assert.equal(JSON.parse(res.body).error.code, 'CAPTURE_DAMAGED');
  });
});

describe('a damaged database', () => {
  const db = () => join(dataDir, 'relay.db');

  const backup = () => `${db()}.backup`;
  /** Stops the relay cleanly (so relay.db holds everything) and copies relay.db aside. */
  async function stopAndBackUp(): Promise<void> {
    await relay.stop();
    assert.ok(!existsSync(`${db()}-wal`) || statSync(`${db()}-wal`).size === 0, 'a clean stop leaves everything in relay.db');
    copyFileSync(db(), backup());
  }

  test('a zero-length relay.db is refused at start, naming the file and the fix; it is not re-initialised', async () => {
    await stopAndBackUp();
    truncateSync(db(), 0);
    const out = await refusedStart();
    assert.match(out, /DATABASE_EMPTY/);
    assert.ok(out.includes(db()), out);
    assert.match(out, /Restore .* from a backup/);
    assert.doesNotMatch(out, /admin password/);
    assert.equal(statSync(db()).size, 0, 'left as found');
    // Gone altogether, with capture files left behind: the same.
    unlinkSync(db());
    assert.match(await refusedStart(), /DATABASE_EMPTY: .*relay\.db is missing, but .* \(signing-key, \d+ capture files\)/);
    assert.ok(!existsSync(db()), 'not created');

    // The fix the message gives works.
    copyFileSync(backup(), db());
    relay = await startRelay({ dataDir });
    assert.equal((await new Client(relay).login('alice', 'alice-password-123')).status, 200, 'accounts are back');
  });

  test('a malformed page is found at start, not at the first sign-in', async () => {
    await stopAndBackUp();
    const probe = new DatabaseSync(db(), { readOnly: true });
    const pageSize = Number((probe.prepare('PRAGMA page_size').get() as { page_size: number }).page_size);
    // web_logins is only read when someone signs in: without a check at start, nothing would notice.
    const root = Number((probe.prepare("SELECT rootpage FROM sqlite_master WHERE name = 'web_logins'").get() as { rootpage: number }).rootpage);
    probe.close();
    const bytes = readFileSync(db());
    bytes.fill(0xa5, (root - 1) * pageSize, root * pageSize);
    writeFileSync(db(), bytes);
    const out = await refusedStart();
    assert.match(out, /DATABASE_DAMAGED/);
    assert.ok(out.includes(db()), out);
    assert.match(out, /backup/);
    copyFileSync(backup(), db());
    relay = await startRelay({ dataDir });
    alice = new Client(relay);
    assert.equal((await alice.login('alice', 'alice-password-123')).status, 200);
  });
});

describe('one size limit for storing and reading chunks', () => {
  test('a chunk that would store over the limit is refused, not stored: the capture fails instead of reading "complete" and empty', async () => {
    const { agent: a, welcome } = await joinedAgent(relay, alice);
    const { captureId } = await startCapture(alice, a, welcome.agentId, { kind: 'record', pid: 4242, duration: 5 });
    // A valid chunk one byte over the limit (a long string pads it): its message still fits, the chunk files would not read it back.
    const base = buildChunks(1, 1)[0]!;
    const padded = (n: number): ProfileChunk => ({ ...base, strings: [...base.strings, 'x'.repeat(n)] });
    const n = MAX_STORED_CHUNK_BYTES + 1 - encodeChunk(padded(70_000)).byteLength + 70_000;
    const bytes = encodeChunk(padded(n));
    assert.equal(bytes.byteLength, MAX_STORED_CHUNK_BYTES + 1);
    a.send({ type: 'chunk', captureId, seq: 0, chunk: bytes, stats: STATS });
    const error = await a.nextOfType('error', 30_000, (m) => m.captureId === captureId);
    assert.equal(error.code, 'CHUNK_TOO_LARGE', error.message);
    assert.ok(error.message.includes(String(MAX_STORED_CHUNK_BYTES)), error.message);
    await a.nextOfType('stop_capture', 10_000, (m) => m.captureId === captureId);
    const capture = (await alice.get(`/api/captures/${captureId}`)).json;
    assert.equal(capture.status, 'failed');
    assert.equal(capture.endReason, 'chunk_too_large');
    assert.equal(capture.chunks, 0);
    const path = chunkFile(captureId);
    assert.ok(!existsSync(path) || statSync(path).size === 0, 'nothing was stored');
    a.close();
  });
});
