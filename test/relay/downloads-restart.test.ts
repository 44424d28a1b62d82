// Downloads in every format, rendered from the stored chunks, and a relay
// restart (after a crash, with a torn last record in a chunk file) that keeps
// accounts, sessions, captures and chunks, and lets a running capture resume.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { profileFromChunks } from '../../shared/profile/index.ts';
import { FORMATS, FORMAT_NAMES } from '../../shared/export/formats.ts';
import { render } from '../../shared/export/renderers.ts';
import {
  Client,
  adminClient,
  connectAgent,
  eventually,
  joinedAgent,
  removeDataDir,
  startCapture,
  startRelay,
  userClient,
  type RelayProcess,
} from '../helpers/relay.ts';
import { buildChunks, STATS } from './helpers.ts';
import { encodeChunk } from '../../shared/protocol.ts';

let relay: RelayProcess;
let alice: Client;
const chunks = buildChunks(3, 7);
let sessionId: string;
let recordId: string;
let topId: string;
let credential: string;

before(async () => {
  relay = await startRelay();
  const admin = await adminClient(relay);
  alice = await userClient(relay, admin, 'alice');
  const { session, agent, welcome } = await joinedAgent(relay, alice);
  sessionId = session.id;
  credential = welcome.credential!;
  recordId = (await startCapture(alice, agent, welcome.agentId, { kind: 'record', pid: 4242, duration: 5, idle: false })).captureId;
  for (let seq = 0; seq < 3; seq++) agent.send({ type: 'chunk', captureId: recordId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
  await agent.nextOfType('ack', 5000, (m) => m.nextSeq === 3);
  agent.send({ type: 'capture_ended', captureId: recordId, reason: 'duration', chunks: 3 });
  topId = (await startCapture(alice, agent, welcome.agentId, { kind: 'top', pid: 4242 })).captureId;
  for (let seq = 0; seq < 2; seq++) agent.send({ type: 'chunk', captureId: topId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
  await agent.nextOfType('ack', 5000, (m) => m.captureId === topId && m.nextSeq === 2);
  await eventually(async () => (await alice.get(`/api/captures/${recordId}`)).json.status === 'complete');
});

after(async () => {
  await relay?.stop();
  if (relay) removeDataDir(relay.dataDir);
});

const EXPECTED_TYPE: Record<string, RegExp> = {
  flamegraph: /^image\/svg\+xml/,
  speedscope: /^application\/json/,
  raw: /^text\/plain/,
  chrometrace: /^application\/json/,
  pprof: /^application\/octet-stream/,
  gecko: /^application\/json/,
};

async function download(id: string, query: string) {
  const res = await fetch(`${relay.url}/api/captures/${id}/download?${query}`, { headers: { cookie: alice.cookie! } });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return { status: res.status, type: res.headers.get('content-type') ?? '', disposition: res.headers.get('content-disposition') ?? '', bytes, body: new TextDecoder().decode(bytes) };
}

describe('downloads', () => {
  for (const format of FORMAT_NAMES) {
    test(`${format}: rendered from the stored chunks, as an attachment with a sensible name`, async () => {
      const res = await download(recordId, `format=${format}`);
      assert.equal(res.status, 200, res.body);
      assert.match(res.type, EXPECTED_TYPE[format]);
      assert.match(res.disposition, new RegExp(`^attachment; filename="app-\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d\\.${FORMATS[format].extension.replace(/\./g, '\\.')}"$`));
      const expected = render(format, profileFromChunks(chunks), { idle: false, gil: false, function: false, nolineno: false, threads: false });
      if (typeof expected === 'string') assert.equal(res.body, expected, 'identical to rendering the same chunks locally');
      else assert.deepEqual(res.bytes, expected, 'identical bytes to rendering the same chunks locally');
    });
  }

  test('view options come from the query (idle, gil, function, nolineno, threads)', async () => {
    const profile = profileFromChunks(chunks);
    const cases: [string, Parameters<typeof render>[2]][] = [
      ['idle=true', { idle: true }],
      ['idle=1&threads=1', { idle: true, threads: true }],
      ['function=true&nolineno=true', { function: true, nolineno: true }],
      ['gil=true', { gil: true }],
    ];
    for (const [query, options] of cases) {
      const res = await download(recordId, `format=raw&${query}`);
      assert.equal(res.body, render('raw', profile, { idle: false, gil: false, function: false, nolineno: false, threads: false, ...options }), query);
    }
    assert.notEqual((await download(recordId, 'format=raw&idle=true')).body, (await download(recordId, 'format=raw')).body, 'idle samples make a difference');
    const bad = await download(recordId, 'format=raw&idle=maybe');
    assert.equal(bad.status, 400);
    const badFormat = await download(recordId, 'format=pdf');
    assert.equal(badFormat.status, 400);
    assert.match(JSON.parse(badFormat.body).error.message, /flamegraph, speedscope, raw, chrometrace/);
  });

  test('the flame graph is flamegraph SVG by default, and a running capture downloads what has arrived', async () => {
    const res = await download(topId, '');
    assert.equal(res.status, 200);
    assert.match(res.body, /^<\?xml|^<svg/);
    const raw = await download(topId, 'format=raw');
    assert.equal(raw.body, render('raw', profileFromChunks(chunks.slice(0, 2)), {}));
  });
});

describe('restart', () => {
  test('after a crash (SIGKILL) and a torn last record, everything is kept and the running capture resumes', async () => {
    const topFile = join(relay.dataDir, 'captures', `${topId}.chunks`);
    const recordFile = join(relay.dataDir, 'captures', `${recordId}.chunks`);
    const recordBytes = readFileSync(recordFile);
    const goodSize = statSync(topFile).size;
    const before = {
      sessions: (await alice.get('/api/sessions')).json.sessions,
      captures: (await alice.get(`/api/sessions/${sessionId}/captures`)).json.captures,
      raw: (await download(recordId, 'format=raw')).body,
    };
    await relay.kill();
    // A record cut short mid-write: a header promising 1000 bytes, then 10.
    const torn = Buffer.alloc(18);
    torn.writeUInt32BE(1000, 0);
    appendFileSync(topFile, torn);

    relay = await startRelay({ dataDir: relay.dataDir });
    assert.doesNotMatch(relay.output(), /admin password/, 'no new admin on restart');
    const again = new Client(relay);
    assert.equal((await again.login('alice', 'alice-password-123')).status, 200, 'accounts kept');
    alice = again;
    assert.deepEqual((await alice.get('/api/sessions')).json.sessions, before.sessions, 'sessions kept');
    const captures = (await alice.get(`/api/sessions/${sessionId}/captures`)).json.captures;
    assert.deepEqual(
      captures.map((c: { id: string; status: string; samples: number; chunks: number }) => [c.id, c.status, c.samples, c.chunks]),
      before.captures.map((c: { id: string; status: string; samples: number; chunks: number }) => [c.id, c.status, c.samples, c.chunks]),
      'captures kept; the unfinished one is still running, waiting for its agent',
    );
    assert.deepEqual(readFileSync(recordFile), recordBytes, 'chunk files kept byte for byte');
    assert.equal((await download(recordId, 'format=raw')).body, before.raw, 'downloads unchanged');

    // The agent's credential (signed with the persisted key) still works; it resumes from what was stored.
    const agent = await connectAgent(relay, credential);
    const welcome = await agent.hello([{ captureId: topId, nextSeq: 3 }]);
    assert.deepEqual(welcome.resume, [{ captureId: topId, nextSeq: 2 }]);
    assert.equal(statSync(topFile).size, goodSize, 'the torn record was cut off');
    agent.send({ type: 'chunk', captureId: topId, seq: 2, chunk: encodeChunk(chunks[2]), stats: STATS });
    assert.equal((await agent.nextOfType('ack')).nextSeq, 3);
    agent.send({ type: 'capture_ended', captureId: topId, reason: 'stopped', chunks: 3 });
    await eventually(async () => (await alice.get(`/api/captures/${topId}`)).json.status === 'complete');
    assert.equal((await download(topId, 'format=raw')).body, render('raw', profileFromChunks(chunks), {}));
    agent.close();
  });

  test('a clean stop (SIGTERM) exits 0 and closes agents with Restarting', async () => {
    const agent = await connectAgent(relay, credential);
    await agent.hello();
    const dataDir = relay.dataDir;
    assert.equal(await relay.stop(), 0);
    assert.equal((await agent.closed).code, 4007);
    relay = await startRelay({ dataDir });
    alice = new Client(relay);
    assert.equal((await alice.login('alice', 'alice-password-123')).status, 200);
  });
});
