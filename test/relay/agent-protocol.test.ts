// A protocol-speaking agent (shared/protocol.ts frames over a real WebSocket)
// against a real relay: hello/welcome, credentials and reconnects, process
// lists, captures as acknowledged chunk streams with gaps and duplicates, ends,
// dumps, errors, grace periods and heartbeats.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CloseCode, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, encodeChunk } from '../../shared/protocol.ts';
import {
  Client,
  adminClient,
  connectAgent,
  createSession,
  eventually,
  joinedAgent,
  metric,
  removeDataDir,
  sleep,
  startCapture,
  startRelay,
  type RelayProcess,
} from '../helpers/relay.ts';
import { buildChunks, STATS } from './helpers.ts';

const GRACE_SECONDS = 2;
let relay: RelayProcess;
let admin: Client;

before(async () => {
  relay = await startRelay({ env: { PERISCOPE_CAPTURE_GRACE_SECONDS: String(GRACE_SECONDS), PERISCOPE_HEARTBEAT_SECONDS: '1' } });
  admin = await adminClient(relay);
});

after(async () => {
  await relay?.stop();
  if (relay) removeDataDir(relay.dataDir);
});

function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString());
}

async function capture(id: string) {
  return (await admin.get(`/api/captures/${id}`)).json;
}

describe('hello and welcome', () => {
  test('a join token gets a welcome with an agent credential, then a list_processes request', async () => {
    const session = await createSession(admin);
    const agent = await connectAgent(relay, session.joinToken);
    const welcome = await agent.hello();
    assert.equal(welcome.protocol, PROTOCOL_VERSION);
    assert.equal(welcome.sessionId, session.id);
    assert.match(welcome.agentId, /^[A-Za-z0-9_-]{1,64}$/);
    assert.deepEqual(welcome.resume, []);
    assert.ok(welcome.credential);
    const c = claims(welcome.credential);
    assert.equal(c.aud, 'periscope:agent');
    assert.equal(c.sub, welcome.agentId);
    assert.equal(c.sid, session.id);
    const sessionInfo = (await admin.get(`/api/sessions/${session.id}`)).json;
    assert.equal(c.exp, Math.floor(Date.parse(sessionInfo.expiresAt) / 1000), 'the credential lives as long as the session');
    await agent.nextOfType('list_processes');

    agent.send({
      type: 'processes',
      processes: [
        { pid: 4242, cmdline: 'python3 app.py --serve', version: '3.12.1', user: 'app', threads: 3 },
        { pid: 77, cmdline: 'python3 worker.py', version: '3.11.7', user: 'app', threads: 1 },
      ],
    });
    const agents = await eventually(async () => {
      const a = (await admin.get(`/api/sessions/${session.id}/agents`)).json.agents;
      return a[0]?.processes.length === 2 ? a : undefined;
    });
    assert.equal(agents.length, 1);
    const a = agents[0];
    assert.equal(a.id, welcome.agentId);
    assert.equal(a.host, 'test-host');
    assert.equal(a.containerId, 'c0ffee');
    assert.equal(a.arch, 'x64');
    assert.equal(a.agentVersion, '0.1.0-test');
    assert.equal(a.online, true);
    assert.ok(Date.parse(a.connectedAt) <= Date.now());
    assert.ok(Date.parse(a.lastSeen) <= Date.now());
    assert.deepEqual(a.processes[0], { pid: 4242, cmdline: 'python3 app.py --serve', version: '3.12.1', user: 'app', threads: 3 });

    const refresh = await admin.post(`/api/agents/${welcome.agentId}/processes/refresh`);
    assert.equal(refresh.status, 202);
    await agent.nextOfType('list_processes');

    agent.close();
    await agent.closed;
    const offline = await eventually(async () => {
      const x = (await admin.get(`/api/agents/${welcome.agentId}`)).json;
      return x.online === false ? x : undefined;
    });
    assert.equal(offline.processes.length, 2, 'the last process list is kept while offline');
  });

  test('the credential reconnects as the same agent (no new credential); a second connection replaces the first', async () => {
    const { session, agent, welcome } = await joinedAgent(relay, admin);
    const again = await connectAgent(relay, welcome.credential!);
    const w2 = await again.hello();
    assert.equal(w2.agentId, welcome.agentId);
    assert.equal(w2.sessionId, session.id);
    assert.equal(w2.credential, undefined);
    const old = await agent.closed;
    assert.equal(old.code, CloseCode.Replaced);
    const agents = (await admin.get(`/api/sessions/${session.id}/agents`)).json.agents;
    assert.equal(agents.length, 1, 'still one agent');
    assert.equal(agents[0].online, true, 'the replaced connection closing does not mark the agent offline');
    again.close();
  });

  test('the join token can be used by several containers, each becoming its own agent', async () => {
    const session = await createSession(admin);
    const a = await connectAgent(relay, session.joinToken);
    const b = await connectAgent(relay, session.joinToken);
    const [wa, wb] = [await a.hello(), await b.hello()];
    assert.notEqual(wa.agentId, wb.agentId);
    assert.equal((await admin.get(`/api/sessions/${session.id}/agents`)).json.agents.length, 2);
    a.close();
    b.close();
  });

  test('an unsupported protocol version gets an error and CloseCode.Version', async () => {
    const session = await createSession(admin);
    // A newer agent, and an agent of protocol 1, which sent chunks as nested maps (v2 sends their bytes).
    for (const protocol of [PROTOCOL_VERSION + 1, MIN_PROTOCOL_VERSION - 1]) {
      const agent = await connectAgent(relay, session.joinToken);
      agent.send({ type: 'hello', protocol, agentVersion: '9', host: 'h', containerId: '', arch: 'x64', captures: [] });
      const err = await agent.nextOfType('error');
      assert.equal(err.code, 'UNSUPPORTED_PROTOCOL');
      assert.ok(err.message.includes(`protocol ${MIN_PROTOCOL_VERSION}..${PROTOCOL_VERSION} but the agent speaks ${protocol}`), err.message);
      assert.equal((await agent.closed).code, CloseCode.Version);
    }
    assert.equal((await admin.get(`/api/sessions/${session.id}/agents`)).json.agents.length, 0, 'no agent registered');
  });

  test('anything before hello is refused with BadMessage', async () => {
    const session = await createSession(admin);
    const agent = await connectAgent(relay, session.joinToken);
    agent.send({ type: 'processes', processes: [] });
    const err = await agent.nextOfType('error');
    assert.equal(err.code, 'BAD_MESSAGE');
    assert.match(err.message, /first message must be hello/);
    assert.equal((await agent.closed).code, CloseCode.BadMessage);
  });

  test('a second hello on the same connection is refused', async () => {
    const { agent } = await joinedAgent(relay, admin);
    agent.send({ type: 'hello', protocol: 1, agentVersion: '1', host: 'h', containerId: '', arch: 'x64', captures: [] });
    assert.match((await agent.nextOfType('error')).message, /already/);
    assert.equal((await agent.closed).code, CloseCode.BadMessage);
  });
});

describe('captures', () => {
  test('start_capture carries the spec and who asked; chunks are acked in order, duplicates re-acked, gaps asked for', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const res = await admin.post(`/api/agents/${welcome.agentId}/captures`, { kind: 'record', pid: 4242, rate: 250, duration: 30, idle: true, gil: false, subprocesses: true, blocking: false });
    assert.equal(res.status, 201, res.text);
    assert.equal(res.json.status, 'starting');
    const start = await agent.nextOfType('start_capture');
    assert.equal(start.captureId, res.json.id);
    assert.equal(start.requestedBy, 'admin');
    assert.deepEqual(start.spec, { kind: 'record', pid: 4242, rate: 250, duration: 30, subprocesses: true, mode: 'wall', idle: true, gil: false, blocking: false });
    const id = start.captureId;
    const chunks = buildChunks(4);

    agent.send({ type: 'chunk', captureId: id, seq: 0, chunk: encodeChunk(chunks[0]), stats: { samples: 5, late: 1, ticks: 5, errors: 0 } });
    assert.deepEqual(await agent.nextOfType('ack'), { type: 'ack', captureId: id, nextSeq: 1 });
    let c = await capture(id);
    assert.equal(c.status, 'running');
    assert.equal(c.samples, 5);
    assert.equal(c.stats.late, 1);

    // Duplicate (e.g. resent after a reconnect): acked, not stored twice.
    agent.send({ type: 'chunk', captureId: id, seq: 0, chunk: encodeChunk(chunks[0]), stats: STATS });
    assert.equal((await agent.nextOfType('ack')).nextSeq, 1);
    // Gap: the ack names the seq the relay still needs.
    agent.send({ type: 'chunk', captureId: id, seq: 2, chunk: encodeChunk(chunks[2]), stats: STATS });
    assert.equal((await agent.nextOfType('ack')).nextSeq, 1);
    c = await capture(id);
    assert.equal(c.chunks, 1);
    assert.equal(c.samples, 5);

    for (let seq = 1; seq < 4; seq++) {
      agent.send({ type: 'chunk', captureId: id, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
      assert.equal((await agent.nextOfType('ack')).nextSeq, seq + 1);
    }
    agent.send({ type: 'capture_ended', captureId: id, reason: 'duration', chunks: 4 });
    c = await eventually(async () => {
      const x = await capture(id);
      return x.status === 'complete' ? x : undefined;
    });
    assert.equal(c.samples, 20);
    assert.equal(c.chunks, 4);
    assert.equal(c.endReason, 'duration');
    assert.equal(c.requestedBy, 'admin');
    assert.equal(c.options.rate, 250);
    assert.ok(c.endedAt);

    const history = (await admin.get(`/api/sessions/${c.sessionId}/captures`)).json.captures;
    assert.equal(history[0].id, id);
    assert.equal(history[0].pid, 4242);
    assert.equal(history[0].kind, 'record');
    assert.equal(history[0].samples, 20);
    assert.equal(typeof history[0].durationSeconds, 'number');
    assert.ok((await metric(relay, 'periscope_chunks_in_total')) >= 4);
    agent.close();
  });

  test('capture_ended before every chunk arrived waits for the missing ones', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const { captureId } = await startCapture(admin, agent, welcome.agentId);
    const chunks = buildChunks(3);
    agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(chunks[0]), stats: STATS });
    await agent.nextOfType('ack');
    agent.send({ type: 'capture_ended', captureId, reason: 'stopped', chunks: 3 });
    assert.equal((await agent.nextOfType('ack')).nextSeq, 1, 'asks for what is missing');
    assert.equal((await capture(captureId)).status, 'running');
    agent.send({ type: 'chunk', captureId, seq: 1, chunk: encodeChunk(chunks[1]), stats: STATS });
    agent.send({ type: 'chunk', captureId, seq: 2, chunk: encodeChunk(chunks[2]), stats: STATS });
    await agent.nextOfType('ack', 5000, (m) => m.nextSeq === 3);
    assert.equal((await capture(captureId)).status, 'complete');
    agent.close();
  });

  test('if the missing chunks never come, the capture ends incomplete and keeps what arrived', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const { captureId } = await startCapture(admin, agent, welcome.agentId);
    agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(buildChunks(1)[0]), stats: STATS });
    await agent.nextOfType('ack');
    agent.send({ type: 'capture_ended', captureId, reason: 'duration', chunks: 2 });
    const c = await eventually(async () => {
      const x = await capture(captureId);
      return x.status === 'incomplete' ? x : undefined;
    }, (GRACE_SECONDS + 3) * 1000);
    assert.equal(c.error.code, 'MISSING_CHUNKS');
    assert.equal(c.samples, 5);
    assert.equal((await admin.get(`/api/captures/${captureId}/download?format=raw`)).status, 200);
    agent.close();
  });

  test('end reasons map to statuses; agent errors fail the capture with their code', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const cases: [Record<string, unknown>, string, string | undefined][] = [
      [{ reason: 'target_exited' }, 'target_exited', undefined],
      [{ reason: 'refused' }, 'failed', 'REFUSED_BY_AGENT'],
      [{ reason: 'error', error: { code: 'PROCESS_EXITED', message: 'gone' } }, 'failed', 'PROCESS_EXITED'],
    ];
    for (const [ended, status, code] of cases) {
      const { captureId } = await startCapture(admin, agent, welcome.agentId, { kind: 'top', pid: 5 });
      agent.send({ type: 'capture_ended', captureId, chunks: 0, ...ended } as never);
      const c = await eventually(async () => {
        const x = await capture(captureId);
        return x.status !== 'starting' ? x : undefined;
      });
      assert.equal(c.status, status);
      assert.equal(c.error?.code, code);
    }
    const { captureId } = await startCapture(admin, agent, welcome.agentId, { kind: 'top', pid: 1 });
    agent.send({ type: 'error', captureId, code: 'PERMISSION_DENIED', message: 'ptrace is not allowed: add SYS_PTRACE' });
    const c = await eventually(async () => {
      const x = await capture(captureId);
      return x.status === 'failed' ? x : undefined;
    });
    assert.deepEqual(c.error, { code: 'PERMISSION_DENIED', message: 'ptrace is not allowed: add SYS_PTRACE' });
    agent.close();
  });

  test('a dump stores its result and completes', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const { captureId, start } = await startCapture(admin, agent, welcome.agentId, { kind: 'dump', pid: 4242 });
    assert.equal(start.spec.kind, 'dump');
    const threads = [{ pid: 4242, thread_id: 1, os_thread_id: 4242, thread_name: 'MainThread', active: true, owns_gil: true, truncated: false, frames: [{ name: 'main', filename: '/app/app.py', short_filename: 'app.py', line: 3 }] }];
    agent.send({ type: 'dump_result', captureId, threads });
    const c = await eventually(async () => {
      const x = await capture(captureId);
      return x.status === 'complete' ? x : undefined;
    });
    assert.deepEqual(c.result, threads);
    const dl = await fetch(`${relay.url}/api/captures/${captureId}/download`, { headers: { cookie: admin.cookie! } });
    assert.equal(dl.status, 200);
    assert.match(dl.headers.get('content-disposition') ?? '', /^attachment; filename="dump-4242-[0-9T-]+\.json"$/);
    assert.deepEqual(await dl.json(), threads);
    agent.close();
  });

  test('stop sends stop_capture to the agent', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const { captureId } = await startCapture(admin, agent, welcome.agentId, { kind: 'top', pid: 3 });
    const res = await admin.post(`/api/captures/${captureId}/stop`);
    assert.equal(res.status, 200);
    assert.equal(res.json.stopRequestedBy, 'admin');
    const stop = await agent.nextOfType('stop_capture');
    assert.deepEqual(stop, { type: 'stop_capture', captureId, requestedBy: 'admin' });
    agent.send({ type: 'capture_ended', captureId, reason: 'stopped', chunks: 0 });
    await eventually(async () => (await capture(captureId)).status === 'complete');
    const again = await admin.post(`/api/captures/${captureId}/stop`);
    assert.equal(again.status, 409);
    assert.equal(again.json.error.code, 'CAPTURE_NOT_ACTIVE');
    agent.close();
  });

  test('requests outside the bounds are 400 with the bound in the message', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ kind: 'record', pid: 1, rate: 5000, duration: 10 }, /rate must be at most 1000/],
      [{ kind: 'record', pid: 1, duration: 7200 }, /duration must be at most 3600/],
      [{ kind: 'record', pid: 1, duration: 0 }, /needs a duration/],
      [{ kind: 'profile', pid: 1 }, /kind must be one of dump, top, record/],
      [{ kind: 'top', pid: 0 }, /pid/],
      [{ kind: 'top', pid: 1, idle: 'yes' }, /idle must be true or false/],
    ];
    for (const [body, message] of cases) {
      const res = await admin.post(`/api/agents/${welcome.agentId}/captures`, body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.json.error.code, 'BAD_ARGUMENT');
      assert.match(res.json.error.message, message);
      assert.doesNotMatch(res.json.error.message, /undefined/);
    }
    assert.equal(agent.received.filter((m) => m.type === 'start_capture').length, 0);
    agent.close();
  });

  test('an offline agent cannot be asked for a capture: 409 AGENT_OFFLINE', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    agent.close();
    await agent.closed;
    await eventually(async () => (await admin.get(`/api/agents/${welcome.agentId}`)).json.online === false);
    const res = await admin.post(`/api/agents/${welcome.agentId}/captures`, { kind: 'top', pid: 1 });
    assert.equal(res.status, 409);
    assert.equal(res.json.error.code, 'AGENT_OFFLINE');
    assert.match(res.json.error.message, /not connected/);
  });
});

describe('reconnects', () => {
  test('a capture survives a disconnect: welcome.resume says where to continue', async () => {
    const { session, agent, welcome } = await joinedAgent(relay, admin);
    const { captureId } = await startCapture(admin, agent, welcome.agentId);
    const chunks = buildChunks(4);
    for (let seq = 0; seq < 2; seq++) agent.send({ type: 'chunk', captureId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
    await agent.nextOfType('ack', 5000, (m) => m.nextSeq === 2);
    agent.ws.terminate();
    await agent.closed;
    await sleep(300);
    assert.equal((await capture(captureId)).status, 'running', 'kept running during the grace period');

    const back = await connectAgent(relay, welcome.credential!);
    // The agent had sent chunk 2 too, but it was lost with the connection.
    const w = await back.hello([{ captureId, nextSeq: 3 }, { captureId: 'someoneElsesCapture', nextSeq: 0 }]);
    assert.deepEqual(w.resume, [{ captureId, nextSeq: 2 }], 'only its own known capture, from what is stored');
    for (let seq = 2; seq < 4; seq++) back.send({ type: 'chunk', captureId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
    await back.nextOfType('ack', 5000, (m) => m.nextSeq === 4);
    back.send({ type: 'capture_ended', captureId, reason: 'duration', chunks: 4 });
    const c = await eventually(async () => {
      const x = await capture(captureId);
      return x.status === 'complete' ? x : undefined;
    });
    assert.equal(c.samples, 20);
    const audit = (await admin.get(`/api/sessions/${session.id}/audit`)).json.entries.map((e: { action: string }) => e.action);
    assert.ok(audit.includes('agent.disconnected'));
    assert.equal(audit.filter((a: string) => a === 'agent.connected').length, 2);
    back.close();
  });

  test('an agent that does not come back within the grace period leaves its capture incomplete', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const { captureId } = await startCapture(admin, agent, welcome.agentId);
    agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(buildChunks(1)[0]), stats: STATS });
    await agent.nextOfType('ack');
    agent.close();
    const c = await eventually(async () => {
      const x = await capture(captureId);
      return x.status === 'incomplete' ? x : undefined;
    }, (GRACE_SECONDS + 3) * 1000);
    assert.equal(c.error.code, 'AGENT_DISCONNECTED');
    assert.equal(c.samples, 5);
    const raw = await admin.get(`/api/captures/${captureId}/download?format=raw`);
    assert.equal(raw.status, 200, 'what arrived still downloads');
  });

  test('an agent that comes back without the capture (restarted) ends it; a stop asked while offline is delivered on return', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const lost = await startCapture(admin, agent, welcome.agentId, { kind: 'top', pid: 1 });
    const kept = await startCapture(admin, agent, welcome.agentId, { kind: 'top', pid: 2 });
    agent.send({ type: 'chunk', captureId: lost.captureId, seq: 0, chunk: encodeChunk(buildChunks(1)[0]), stats: STATS });
    agent.send({ type: 'chunk', captureId: kept.captureId, seq: 0, chunk: encodeChunk(buildChunks(1)[0]), stats: STATS });
    await agent.nextOfType('ack', 5000, (m) => m.captureId === kept.captureId);
    agent.close();
    await agent.closed;
    await eventually(async () => (await admin.get(`/api/agents/${welcome.agentId}`)).json.online === false);
    assert.equal((await admin.post(`/api/captures/${kept.captureId}/stop`)).status, 200);

    const back = await connectAgent(relay, welcome.credential!);
    const w = await back.hello([{ captureId: kept.captureId, nextSeq: 1 }]);
    assert.deepEqual(w.resume, [{ captureId: kept.captureId, nextSeq: 1 }]);
    const stop = await back.nextOfType('stop_capture');
    assert.equal(stop.captureId, kept.captureId);
    assert.equal(stop.requestedBy, 'admin');
    const l = await eventually(async () => {
      const x = await capture(lost.captureId);
      return x.status === 'incomplete' ? x : undefined;
    });
    assert.equal(l.error.code, 'AGENT_LOST_CAPTURE');
    back.close();
  });

  test('a start request lost with the connection is sent again on reconnect', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const { captureId } = await startCapture(admin, agent, welcome.agentId, { kind: 'top', pid: 11 });
    agent.ws.terminate();
    await agent.closed;
    const back = await connectAgent(relay, welcome.credential!);
    await back.hello([]);
    const again = await back.nextOfType('start_capture');
    assert.equal(again.captureId, captureId);
    assert.equal(again.spec.pid, 11);
    back.close();
  });
});

describe('one agent cannot touch another agent\'s capture', () => {
  test('chunks for a capture of another agent (same or other session) are refused and not stored', async () => {
    const owner = await joinedAgent(relay, admin);
    const { captureId } = await startCapture(admin, owner.agent, owner.welcome.agentId);
    const chunks = buildChunks(2);
    owner.agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(chunks[0]), stats: STATS });
    await owner.agent.nextOfType('ack');

    const sameSession = await connectAgent(relay, owner.session.joinToken);
    await sameSession.hello();
    const otherSession = await joinedAgent(relay, admin);
    const reconnected = await connectAgent(relay, otherSession.welcome.credential!);
    await reconnected.hello([{ captureId, nextSeq: 0 }]).then((w) => assert.deepEqual(w.resume, []));

    for (const intruder of [sameSession, reconnected]) {
      intruder.send({ type: 'chunk', captureId, seq: 1, chunk: encodeChunk(chunks[1]), stats: STATS });
      const err = await intruder.nextOfType('error');
      assert.equal(err.code, 'UNKNOWN_CAPTURE');
      assert.equal(err.captureId, captureId);
      intruder.send({ type: 'capture_ended', captureId, reason: 'error', chunks: 9, error: { code: 'X', message: 'y' } });
      intruder.send({ type: 'error', captureId, code: 'X', message: 'fail it' });
      intruder.send({ type: 'dump_result', captureId, threads: [] });
      assert.equal((await intruder.nextOfType('error')).code, 'UNKNOWN_CAPTURE');
    }
    await sleep(200);
    const c = await capture(captureId);
    assert.equal(c.status, 'running');
    assert.equal(c.chunks, 1);
    assert.equal(c.samples, 5);
    owner.agent.send({ type: 'chunk', captureId, seq: 1, chunk: encodeChunk(chunks[1]), stats: STATS });
    assert.equal((await owner.agent.nextOfType('ack')).nextSeq, 2, 'the owner continues undisturbed');
    for (const p of [owner.agent, sameSession, otherSession.agent, reconnected]) p.close();
  });

  test('a chunk that does not validate is refused, not stored, and fails the capture', async () => {
    const { agent, welcome } = await joinedAgent(relay, admin);
    const { captureId } = await startCapture(admin, agent, welcome.agentId);
    const [good, next] = buildChunks(2);
    agent.send({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(good), stats: STATS });
    await agent.nextOfType('ack');
    const bad = { ...next, samples: { ...next.samples, stack: Int32Array.from(next.samples.stack, () => 99999) } };
    agent.send({ type: 'chunk', captureId, seq: 1, chunk: encodeChunk(bad), stats: STATS });
    const err = await agent.nextOfType('error');
    assert.equal(err.code, 'INVALID_CHUNK');
    assert.match(err.message, /references a stacks row that does not exist/);
    await agent.nextOfType('stop_capture');
    const c = await capture(captureId);
    assert.equal(c.status, 'failed');
    assert.equal(c.chunks, 1);
    // Out of sequence (a chunk continuing from the wrong row counts) is refused the same way.
    const second = await startCapture(admin, agent, welcome.agentId);
    agent.send({ type: 'chunk', captureId: second.captureId, seq: 0, chunk: encodeChunk(next), stats: STATS });
    assert.equal((await agent.nextOfType('error')).code, 'CHUNK_OUT_OF_SEQUENCE');
    assert.equal((await metric(relay, 'periscope_captures_active')) >= 0, true);
    agent.close();
  });
});

describe('heartbeats', () => {
  test('a peer that stops answering pings is closed with CloseCode.Timeout; a healthy one stays', async () => {
    const session = await createSession(admin);
    const silent = await connectAgent(relay, session.joinToken, { autoPong: false });
    await silent.hello();
    const healthy = await connectAgent(relay, session.joinToken);
    const w = await healthy.hello();
    const closed = await Promise.race([silent.closed, sleep(8000).then(() => undefined)]);
    assert.ok(closed, 'silent peer was closed');
    assert.equal(closed.code, CloseCode.Timeout);
    assert.equal(healthy.ws.readyState, healthy.ws.OPEN, 'a peer answering pings is kept');
    assert.equal((await admin.get(`/api/agents/${w.agentId}`)).json.online, true);
    healthy.close();
  });

  test('no hello within 10 s closes the connection', { timeout: 15_000 }, async () => {
    const session = await createSession(admin);
    const agent = await connectAgent(relay, session.joinToken);
    const started = Date.now();
    const closed = await agent.closed;
    assert.equal(closed.code, CloseCode.Timeout);
    assert.match(closed.reason, /no hello within 10 s/);
    assert.ok(Date.now() - started >= 9000);
  });
});
