// Support sessions: join tokens and one-liners, membership, strict isolation
// between engineers (404, never a leak), closing, and the session audit log.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, encodeChunk } from '../../shared/protocol.ts';
import {
  Client,
  adminClient,
  connectAgent,
  connectUi,
  createSession,
  joinedAgent,
  refusedUpgrade,
  removeDataDir,
  startCapture,
  startRelay,
  userClient,
  type RelayProcess,
} from '../helpers/relay.ts';
import { buildChunks, STATS } from './helpers.ts';

let relay: RelayProcess;
let admin: Client;
let alice: Client;
let bob: Client;

before(async () => {
  relay = await startRelay();
  admin = await adminClient(relay);
  alice = await userClient(relay, admin, 'alice');
  bob = await userClient(relay, admin, 'bob');
});

after(async () => {
  await relay?.stop();
  if (relay) removeDataDir(relay.dataDir);
});

describe('creating a session', () => {
  test('returns the id, a short code, the join token and the customer one-liners', async () => {
    const res = await alice.post('/api/sessions', { name: 'ACME checkout slowness', ttlHours: 2 });
    assert.equal(res.status, 201, res.text);
    const s = res.json;
    assert.match(s.id, /^[A-Za-z0-9_-]{16,64}$/);
    assert.match(s.code, /^[0-9A-HJKMNP-TV-Z]{10}$/, '10 chars of Crockford base32 = 50 bits');
    assert.equal(s.status, 'open');
    assert.equal(s.name, 'ACME checkout slowness');
    assert.equal(s.createdBy, 'alice');
    const hours = (Date.parse(s.expiresAt) - Date.now()) / 3_600_000;
    assert.ok(hours > 1.9 && hours <= 2, `expires in ${hours} h`);
    assert.equal(s.joinToken.split('.').length, 3, 'a JWT');
    const claims = JSON.parse(Buffer.from(s.joinToken.split('.')[1], 'base64url').toString());
    assert.equal(claims.aud, 'periscope:join');
    assert.equal(claims.sid, s.id);
    assert.equal(typeof claims.jti, 'string');
    assert.equal(claims.exp, Math.floor(Date.parse(s.expiresAt) / 1000));
    assert.equal(s.commands.curl, `curl -fsSL ${relay.origin}/j/${s.code} | sh`);
    assert.equal(s.commands.wget, `wget -qO- ${relay.origin}/j/${s.code} | sh`);
    assert.match(s.commands.python, /^python3 -c "import os,urllib\.request as u;d=u\.urlopen\(.*os\.execvp\(.sh.,\[.sh.\]\)"$/);
    assert.ok(s.commands.python.includes(`${relay.origin}/j/${s.code}`));
    assert.equal(s.commands.env, `PERISCOPE_TOKEN=${s.joinToken} periscope connect ${relay.origin}`);
    assert.deepEqual(s.members.map((m: { username: string }) => m.username), ['alice']);
  });

  test('defaults to 24 h; rejects a bad ttl or name', async () => {
    const s = (await alice.post('/api/sessions', {})).json;
    const hours = (Date.parse(s.expiresAt) - Date.now()) / 3_600_000;
    assert.ok(hours > 23.9 && hours <= 24);
    for (const body of [{ ttlHours: 0 }, { ttlHours: 1000 }, { ttlHours: '5' }, { name: 42 }]) {
      const res = await alice.post('/api/sessions', body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json.error.code, 'BAD_ARGUMENT');
    }
  });

  test('codes are unique', async () => {
    const codes = new Set<string>();
    for (let i = 0; i < 20; i++) codes.add((await createSession(alice)).code);
    assert.equal(codes.size, 20);
  });
});

describe('isolation between engineers', () => {
  test("bob cannot see or touch alice's session, agents, captures or audit: always 404", async () => {
    const { session, agent, welcome } = await joinedAgent(relay, alice);
    const { captureId } = await startCapture(alice, agent, welcome.agentId);
    agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(buildChunks(1)[0]), stats: STATS });
    await agent.nextOfType('ack');

    const list = await bob.get('/api/sessions');
    assert.equal(list.status, 200);
    assert.ok(!list.json.sessions.some((s: { id: string }) => s.id === session.id));

    const attempts: [string, string, unknown?][] = [
      ['GET', `/api/sessions/${session.id}`],
      ['GET', `/api/sessions/${session.id}/agents`],
      ['GET', `/api/sessions/${session.id}/captures`],
      ['GET', `/api/sessions/${session.id}/audit`],
      ['POST', `/api/sessions/${session.id}/close`],
      ['POST', `/api/sessions/${session.id}/members`, { username: 'bob' }],
      ['GET', `/api/agents/${welcome.agentId}`],
      ['POST', `/api/agents/${welcome.agentId}/captures`, { kind: 'top', pid: 1 }],
      ['POST', `/api/agents/${welcome.agentId}/processes/refresh`],
      ['GET', `/api/captures/${captureId}`],
      ['POST', `/api/captures/${captureId}/stop`],
      ['GET', `/api/captures/${captureId}/download?format=raw`],
    ];
    for (const [method, path, body] of attempts) {
      const res = await bob.request(method, path, body);
      assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
      assert.equal(res.json.error.code, 'NOT_FOUND');
      // Same answer as for an id that does not exist at all.
      const missing = await bob.request(method, path.replace(/\/(sessions|agents|captures)\/[^/?]+/, '/$1/doesNotExist123'), body);
      assert.equal(missing.status, 404);
      assert.deepEqual(missing.json, res.json, `${method} ${path} must not leak existence`);
    }
    // Admins are not implicitly members either.
    assert.equal((await admin.get(`/api/sessions/${session.id}`)).status, 404);
    assert.equal((await admin.get(`/api/captures/${captureId}`)).status, 404);

    // Nor over the UI socket.
    const ui = await connectUi(relay, bob);
    ui.send({ type: 'subscribe_session', sessionId: session.id });
    ui.send({ type: 'watch_capture', captureId });
    for (let i = 0; i < 2; i++) assert.equal((await ui.nextOfType('error')).code, 'NOT_FOUND');
    assert.equal(ui.received.filter((m) => m.type === 'session_state' || m.type === 'capture_chunk').length, 0);
    ui.close();

    // The capture is still running: bob's stop did nothing.
    assert.equal((await alice.get(`/api/captures/${captureId}`)).json.status, 'running');
    agent.close();
  });

  test('adding bob as a member gives him access', async () => {
    const { session, agent, welcome } = await joinedAgent(relay, alice);
    const add = await alice.post(`/api/sessions/${session.id}/members`, { username: 'bob' });
    assert.equal(add.status, 200, add.text);
    assert.deepEqual(add.json.members.map((m: { username: string }) => m.username).sort(), ['alice', 'bob']);
    assert.equal((await bob.get(`/api/sessions/${session.id}`)).status, 200);
    const agents = await bob.get(`/api/sessions/${session.id}/agents`);
    assert.equal(agents.json.agents[0].id, welcome.agentId);
    const unknown = await alice.post(`/api/sessions/${session.id}/members`, { username: 'nobody' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json.error.code, 'USER_NOT_FOUND');
    const audit = await bob.get(`/api/sessions/${session.id}/audit`);
    const added = audit.json.entries.find((e: { action: string }) => e.action === 'session.member_added');
    assert.equal(added.actor, 'alice');
    assert.equal(added.detail.username, 'bob');
    agent.close();
  });
});

describe('closing a session', () => {
  test('revokes the join token, disconnects agents with SessionClosed, ends captures, refuses reconnects', async () => {
    const { session, agent, welcome } = await joinedAgent(relay, alice);
    const { captureId } = await startCapture(alice, agent, welcome.agentId, { kind: 'top', pid: 99 });
    agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(buildChunks(1)[0]), stats: STATS });
    await agent.nextOfType('ack');

    const closed = await alice.post(`/api/sessions/${session.id}/close`);
    assert.equal(closed.status, 200, closed.text);
    assert.equal(closed.json.status, 'closed');
    assert.equal(closed.json.closedBy, 'alice');
    assert.equal(closed.json.code, undefined, 'no join details once closed');
    assert.equal(closed.json.joinToken, undefined);

    const stop = await agent.nextOfType('stop_capture');
    assert.equal(stop.captureId, captureId);
    const bye = await agent.closed;
    assert.equal(bye.code, CloseCode.SessionClosed);

    const capture = (await alice.get(`/api/captures/${captureId}`)).json;
    assert.equal(capture.status, 'incomplete');
    assert.equal(capture.error.code, 'SESSION_CLOSED');
    assert.equal(capture.samples, 5, 'what arrived is kept');

    const join = await refusedUpgrade(`${relay.wsUrl}/ws/agent`, { authorization: `Bearer ${session.joinToken}` });
    assert.equal(join.status, 401);
    assert.equal(join.body.error.code, 'SESSION_CLOSED');
    const reconnect = await refusedUpgrade(`${relay.wsUrl}/ws/agent`, { authorization: `Bearer ${welcome.credential}` });
    assert.equal(reconnect.status, 401);
    assert.equal(reconnect.body.error.code, 'SESSION_CLOSED');

    const start = await alice.post(`/api/agents/${welcome.agentId}/captures`, { kind: 'top', pid: 1 });
    assert.equal(start.status, 409);

    // The history is still readable, and closing again is harmless.
    assert.equal((await alice.get(`/api/sessions/${session.id}/captures`)).json.captures.length, 1);
    assert.equal((await alice.post(`/api/sessions/${session.id}/close`)).status, 200);
    const list = (await alice.get('/api/sessions')).json.sessions.find((s: { id: string }) => s.id === session.id);
    assert.equal(list.status, 'closed');
    assert.equal(list.joinToken, undefined, 'listings never carry tokens');
  });

  test('an agent that joined but has not said hello yet is disconnected too', async () => {
    const session = await createSession(alice);
    const agent = await connectAgent(relay, session.joinToken);
    await alice.post(`/api/sessions/${session.id}/close`);
    assert.equal((await agent.closed).code, CloseCode.SessionClosed);
  });
});

describe('session audit log', () => {
  test('records who did what and when, newest first', async () => {
    const { session, agent, welcome } = await joinedAgent(relay, alice);
    const { captureId } = await startCapture(alice, agent, welcome.agentId, { kind: 'record', pid: 7, duration: 5 });
    const chunk = buildChunks(1)[0];
    agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(chunk), stats: STATS });
    await agent.nextOfType('ack');
    await alice.post(`/api/captures/${captureId}/stop`);
    await agent.nextOfType('stop_capture');
    agent.send({ type: 'capture_ended', captureId, reason: 'stopped', chunks: 1 });
    await alice.get(`/api/captures/${captureId}/download?format=raw`);
    agent.close();
    await agent.closed;
    await new Promise((r) => setTimeout(r, 200));
    await alice.post(`/api/sessions/${session.id}/close`);

    const res = await alice.get(`/api/sessions/${session.id}/audit`);
    assert.equal(res.status, 200);
    const entries = res.json.entries as { id: number; at: string; actor: string; action: string; detail: Record<string, unknown> }[];
    const actions = entries.map((e) => e.action).reverse();
    assert.deepEqual(actions, [
      'session.created',
      'agent.connected',
      'capture.started',
      'capture.stopped',
      'capture.ended',
      'capture.downloaded',
      'agent.disconnected',
      'session.closed',
    ]);
    const byAction = Object.fromEntries(entries.map((e) => [e.action, e]));
    assert.equal(byAction['session.created'].actor, 'alice');
    assert.equal(byAction['agent.connected'].actor, `agent:${welcome.agentId}`);
    assert.equal(byAction['agent.connected'].detail.host, 'test-host');
    assert.equal(byAction['capture.started'].detail.pid, 7);
    assert.equal(byAction['capture.ended'].detail.status, 'complete');
    assert.equal(byAction['capture.downloaded'].detail.format, 'raw');
    assert.ok(entries.every((e, i) => i === 0 || e.id < entries[i - 1].id), 'newest first');
    const page = await alice.get(`/api/sessions/${session.id}/audit?limit=2&before=${entries[1].id}`);
    assert.deepEqual(page.json.entries.map((e: { id: number }) => e.id), [entries[2].id, entries[3].id]);
  });
});
