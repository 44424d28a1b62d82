// A real relay whose data dir is a small tmpfs that fills up: the capture
// whose chunk does not fit fails with DISK_FULL, the process stays up (also
// through the agent's close handler, whose write used to kill it), /healthz and
// /metrics say so, sign-in and reads keep working, what was held in memory is
// written once space returns, and new captures work again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { profileFromChunks } from '../../shared/profile/index.ts';
import { render } from '../../shared/export/renderers.ts';
import {
  Client,
  adminClient,
  connectAgent,
  eventually,
  joinedAgent,
  metric,
  startCapture,
  startRelay,
  userClient,
  type RelayProcess,
} from '../helpers/relay.ts';
import { buildChunks, STATS } from './helpers.ts';
import { encodeChunk } from '../../shared/protocol.ts';

const mountPoint = mkdtempSync(join(tmpdir(), 'periscope-full-disk-'));
let skip: string | false = false;
try {
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64m,mode=0700', 'tmpfs', mountPoint], { stdio: 'pipe' });
} catch (err) {
  const why = (err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message;
  skip = `cannot mount a tmpfs for a small data dir here (${why}); run the test as root (or with CAP_SYS_ADMIN) to fill a disk for real`;
  console.log(`# disk-full test skipped: ${skip}`);
  rmSync(mountPoint, { recursive: true, force: true });
}

const dataDir = join(mountPoint, 'data');
const filler = join(mountPoint, 'filler');
// Big enough (~8 KB stored) that no chunk fits in the slack of a page the file already has.
const chunks = buildChunks(3, 500);
const NO_OPTIONS = { idle: false, gil: false, function: false, nolineno: false, threads: false };
let relay: RelayProcess | undefined;

/** Writes a file until the file system says ENOSPC; returns its size. */
function fillUp(path: string): number {
  const fd = openSync(path, 'w');
  let total = 0;
  try {
    for (const size of [1024 * 1024, 4096]) {
      const block = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          total += writeSync(fd, block);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

after(async () => {
  await relay?.stop();
  if (skip) return;
  execFileSync('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

describe('a full data dir', { skip }, () => {
  let alice: Client;
  let sessionId: string;
  let agentId: string;
  let credential: string;
  let failedId: string;
  let fullTimeLogin: string;
  let signedOutLogin: string;

  before(async () => {
    relay = await startRelay({ dataDir });
    alice = await userClient(relay, await adminClient(relay), 'alice');
  });

  test('the chunk that does not fit fails its capture with DISK_FULL; the relay stays up and says why', async () => {
    const r = relay!;
    const { agent, welcome, session } = await joinedAgent(r, alice);
    sessionId = session.id;
    agentId = welcome.agentId;
    credential = welcome.credential!;
    failedId = (await startCapture(alice, agent, agentId, { kind: 'record', pid: 4242, duration: 60 })).captureId;
    agent.send({ type: 'chunk', captureId: failedId, seq: 0, chunk: encodeChunk(chunks[0]), stats: STATS });
    await agent.nextOfType('ack', 10_000, (m) => m.nextSeq === 1);

    assert.ok(fillUp(filler) > 0);
    agent.send({ type: 'chunk', captureId: failedId, seq: 1, chunk: encodeChunk(chunks[1]), stats: STATS });
    const error = await agent.nextOfType('error', 10_000, (m) => m.captureId === failedId);
    assert.equal(error.code, 'DISK_FULL');
    assert.ok(error.message.includes(dataDir), error.message);
    await agent.nextOfType('stop_capture', 10_000, (m) => m.captureId === failedId);

    const capture = (await alice.get(`/api/captures/${failedId}`)).json;
    assert.equal(capture.status, 'failed');
    assert.equal(capture.endReason, 'disk_full');
    assert.equal(capture.error.code, 'DISK_FULL');
    assert.equal(capture.chunks, 1, 'the chunk before is kept');

    // The agent goes away: its close handler writes presence and audit to the full disk.
    agent.close();
    await eventually(async () => (await alice.get(`/api/agents/${agentId}`)).json.online === false, 10_000, 'the agent to show offline');

    const health = await fetch(`${r.url}/healthz`);
    assert.equal(health.status, 200, 'still alive, and not asking to be restarted');
    const body = await health.json();
    assert.equal(body.status, 'degraded');
    assert.equal(body.problems[0].code, 'DISK_FULL');
    assert.ok(body.problems[0].message.includes(dataDir));
    assert.equal(await metric(r, 'periscope_storage_degraded'), 1);
    assert.ok((await metric(r, 'periscope_disk_full_errors_total')) >= 1);
    assert.ok((await metric(r, 'periscope_held_writes')) >= 1, 'the capture state and audit entries wait in memory');
    assert.match(r.output(), /DISK_FULL: the data dir .* is full/, 'the log says so too');
  });

  test('while full: sign-in and reads work, new captures and sessions are refused with DISK_FULL', async () => {
    const r = relay!;
    const again = new Client(r);
    assert.equal((await again.login('alice', 'alice-password-123')).status, 200, 'signing in works');
    fullTimeLogin = again.cookie!;
    assert.equal((await again.get('/api/me')).status, 200, 'the sign-in is honoured');
    assert.equal((await again.get('/api/sessions')).status, 200);
    // Signing in and out while full: the sign-out is held after the sign-in, and must never land before it.
    const brief = new Client(r);
    assert.equal((await brief.login('alice', 'alice-password-123')).status, 200);
    signedOutLogin = brief.cookie!;
    assert.equal((await brief.post('/api/logout')).status, 200);
    const afterLogout = new Client(r);
    afterLogout.cookie = signedOutLogin;
    assert.equal((await afterLogout.get('/api/me')).status, 401, 'signed out, although nothing could be written yet');
    const raw = await fetch(`${r.url}/api/captures/${failedId}/download?format=raw`, { headers: { cookie: again.cookie! } });
    assert.equal(raw.status, 200);
    assert.equal(await raw.text(), render('raw', profileFromChunks(chunks.slice(0, 1)), NO_OPTIONS), 'what was stored downloads');

    // The agent comes back (its hello writes too), but there is no room for another capture.
    const agent = await connectAgent(r, credential);
    await agent.hello();
    const refused = await again.post(`/api/agents/${agentId}/captures`, { kind: 'record', pid: 4242, duration: 5 });
    assert.equal(refused.status, 507);
    assert.equal(refused.json.error.code, 'DISK_FULL');
    assert.ok(refused.json.error.message.includes(dataDir), refused.json.error.message);
    const session = await again.post('/api/sessions', { name: 'no room' });
    assert.equal(session.status, 507);
    assert.equal(session.json.error.code, 'DISK_FULL');
    agent.close();
  });

  test('once space returns: held writes land, /healthz is ok again and new captures work', async () => {
    const r = relay!;
    unlinkSync(filler);
    await eventually(async () => (await (await fetch(`${r.url}/healthz`)).json()).status === 'ok', 30_000, '/healthz to say ok');
    assert.equal(await metric(r, 'periscope_storage_degraded'), 0);
    assert.equal(await metric(r, 'periscope_held_writes'), 0);
    assert.match(r.output(), /has room again/);

    const agent = await connectAgent(r, credential);
    await agent.hello();
    const { captureId } = await startCapture(alice, agent, agentId, { kind: 'record', pid: 4242, duration: 5 });
    for (let seq = 0; seq < 3; seq++) agent.send({ type: 'chunk', captureId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
    await agent.nextOfType('ack', 10_000, (m) => m.captureId === captureId && m.nextSeq === 3);
    agent.send({ type: 'capture_ended', captureId, reason: 'duration', chunks: 3 });
    await eventually(async () => (await alice.get(`/api/captures/${captureId}`)).json.status === 'complete', 10_000, 'the new capture to complete');
    agent.close();

    // The failed append left no partial record behind: exactly chunk 0.
    const file = readFileSync(join(dataDir, 'captures', `${failedId}.chunks`));
    assert.equal(file.length, 8 + file.readUInt32BE(0));
  });

  test('what was held while full survives a restart: the capture\'s end, the sign-in, the audit entries', async () => {
    assert.equal(await relay!.stop(), 0);
    relay = await startRelay({ dataDir });
    const signedIn = new Client(relay);
    signedIn.cookie = fullTimeLogin;
    assert.equal((await signedIn.get('/api/me')).status, 200, 'the sign-in made while the disk was full was saved');
    const signedOut = new Client(relay);
    signedOut.cookie = signedOutLogin;
    assert.equal((await signedOut.get('/api/me')).status, 401, 'and so was the sign-out, after its sign-in');
    const capture = (await signedIn.get(`/api/captures/${failedId}`)).json;
    assert.deepEqual([capture.status, capture.error?.code, capture.chunks], ['failed', 'DISK_FULL', 1]);
    const audit = (await signedIn.get(`/api/sessions/${sessionId}/audit`)).json.entries as { action: string; detail: { captureId?: string; status?: string } }[];
    assert.ok(audit.some((e) => e.action === 'capture.ended' && e.detail.captureId === failedId && e.detail.status === 'failed'));
    assert.ok(audit.some((e) => e.action === 'agent.disconnected'), 'the close handler\'s entry');
  });
});
