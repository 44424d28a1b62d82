// How an agent's end is told and recorded (protocol bye+, shared/protocol.ts):
// the customer's Ctrl-C (capture_ended byCustomer, then close code 4009
// AgentExit) is recorded as "ended by the customer", on the agent and on the
// captures it ran, instead of a lost connection and a grace period; a closed
// session's agents are recorded as sent away; a dropped connection stays a
// plain offline. Also the optional fields (hello.user, ProcessInfo.ppid and
// startedAt, UiAgentState.user and ended): parsed when present, absent when
// not, refused when malformed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AGENT_END_REASONS,
  CloseCode,
  FINAL_CLOSE_CODES,
  ProtocolError,
  encode,
  encodeChunk,
  parseAgentMessage,
  parseRelayToUi,
  type UiAgentState,
} from '../../shared/protocol.ts';
import { adminClient, connectAgent, connectUi, createSession, eventually, helloMessage, removeDataDir, startCapture, startRelay, type Client, type RelayProcess } from '../helpers/relay.ts';
import { buildChunks, STATS } from './helpers.ts';

describe('the bye+ fields parse when present and are left out when not', () => {
  test('hello.user, processes ppid and startedAt, capture_ended byCustomer', () => {
    const hello = parseAgentMessage(encode(helloMessage({ user: 'app' })));
    assert.equal(hello.type === 'hello' && hello.user, 'app');
    assert.ok(!('user' in parseAgentMessage(encode(helloMessage()))), 'an older agent says no user');

    const procs = parseAgentMessage(
      encode({ type: 'processes', processes: [{ pid: 7, cmdline: 'python3 a.py', version: '3.12.1', user: 'app', threads: 1, ppid: 1, startedAt: 1_767_000_000_000 }, { pid: 8, cmdline: 'python3 b.py', version: '3.12.1', user: 'app', threads: 1 }] }),
    );
    assert.ok(procs.type === 'processes');
    assert.deepEqual(procs.processes[0], { pid: 7, cmdline: 'python3 a.py', version: '3.12.1', user: 'app', threads: 1, ppid: 1, startedAt: 1_767_000_000_000 });
    assert.deepEqual(procs.processes[1], { pid: 8, cmdline: 'python3 b.py', version: '3.12.1', user: 'app', threads: 1 });
    assert.throws(() => parseAgentMessage(encode({ type: 'processes', processes: [{ pid: 7, cmdline: 'x', version: '3', user: 'u', threads: 1, ppid: -1 }] } as never)), ProtocolError);

    const ended = parseAgentMessage(encode({ type: 'capture_ended', captureId: 'c1', reason: 'stopped', chunks: 3, byCustomer: true }));
    assert.equal(ended.type === 'capture_ended' && ended.byCustomer, true);
    assert.ok(!('byCustomer' in parseAgentMessage(encode({ type: 'capture_ended', captureId: 'c1', reason: 'stopped', chunks: 3 }))));
    assert.throws(() => parseAgentMessage(encode({ type: 'capture_ended', captureId: 'c1', reason: 'stopped', chunks: 3, byCustomer: 'yes' } as never)), ProtocolError);
  });

  test('agents to browsers carry user and ended; an unknown end is refused', () => {
    const agent: UiAgentState = { id: 'a1', host: 'web-1', containerId: '', arch: 'x64', agentVersion: '0.1.0', online: false, processes: [], user: 'app', ended: 'customer' };
    const m = parseRelayToUi(encode({ type: 'session_state', sessionId: 's1', agents: [agent] }));
    assert.deepEqual(m.type === 'session_state' && m.agents[0], agent);
    for (const ended of AGENT_END_REASONS) parseRelayToUi(encode({ type: 'session_state', sessionId: 's1', agents: [{ ...agent, ended }] }));
    assert.throws(() => parseRelayToUi(encode({ type: 'session_state', sessionId: 's1', agents: [{ ...agent, ended: 'vanished' }] } as never)), ProtocolError);
  });

  test('AgentExit is the agent’s own close code: not one that stops an agent', () => {
    assert.equal(CloseCode.AgentExit, 4009);
    assert.ok(!FINAL_CLOSE_CODES.includes(CloseCode.AgentExit));
    assert.equal(new Set(Object.values(CloseCode)).size, Object.values(CloseCode).length, 'close codes are distinct');
  });
});

describe('a relay records why an agent ended', () => {
  let relay: RelayProcess;
  let admin: Client;

  before(async () => {
    // A long grace period: a capture that ends at once was not waiting for its agent.
    relay = await startRelay({ env: { PERISCOPE_CAPTURE_GRACE_SECONDS: '600', PERISCOPE_HEARTBEAT_SECONDS: '1' } });
    admin = await adminClient(relay);
  });

  after(async () => {
    await relay?.stop();
    if (relay) removeDataDir(relay.dataDir);
  });

  const capture = async (id: string) => (await admin.get(`/api/captures/${id}`)).json;
  const agentView = async (sessionId: string, agentId: string) => ((await admin.get(`/api/sessions/${sessionId}/agents`)).json.agents as (UiAgentState & { lastSeen: string })[]).find((a) => a.id === agentId);

  test('Ctrl-C: the captures end “customer_ended”, the agent “ended by the customer”, at once; viewers are told', async () => {
    const session = await createSession(admin, 'ctrl-c');
    const agent = await connectAgent(relay, session.joinToken);
    agent.send(helloMessage({ user: 'app' }));
    const welcome = await agent.nextOfType('welcome');
    await agent.nextOfType('list_processes');
    agent.send({ type: 'processes', processes: [{ pid: 4242, cmdline: 'python3 app.py', version: '3.12.1', user: 'app', threads: 3, ppid: 1, startedAt: Date.now() - 5000 }] });
    const ui = await connectUi(relay, admin);
    ui.send({ type: 'subscribe_session', sessionId: session.id });
    await ui.nextOfType('session_state');

    const shown = await eventually(async () => {
      const a = await agentView(session.id, welcome.agentId);
      return a?.processes.length === 1 ? a : undefined;
    });
    assert.equal(shown.user, 'app', 'the user the agent runs as');
    assert.equal(shown.processes[0]!.ppid, 1);
    assert.equal(typeof shown.processes[0]!.startedAt, 'number');
    assert.ok(!('ended' in shown), 'online: not ended');

    // Two captures run; the customer presses Ctrl-C. The agent ends the first itself (its chunks delivered) ...
    const chunks = [buildChunks(1)[0]!, buildChunks(1)[0]!];
    const first = await startCapture(admin, agent, welcome.agentId, { kind: 'record', pid: 4242, duration: 30 });
    const second = await startCapture(admin, agent, welcome.agentId, { kind: 'top', pid: 4242 });
    agent.send({ type: 'chunk', captureId: first.captureId, seq: 0, chunk: encodeChunk(chunks[0]!), stats: STATS });
    agent.send({ type: 'chunk', captureId: second.captureId, seq: 0, chunk: encodeChunk(chunks[1]!), stats: STATS });
    await agent.nextOfType('ack', 5000, (m) => m.captureId === second.captureId);
    agent.send({ type: 'capture_ended', captureId: first.captureId, reason: 'stopped', chunks: 1, byCustomer: true });
    const ended = await eventually(async () => {
      const c = await capture(first.captureId);
      return c.endedAt ? c : undefined;
    });
    assert.equal(ended.status, 'incomplete');
    assert.equal(ended.endReason, 'customer_ended');
    assert.equal(ended.error.code, 'ENDED_BY_CUSTOMER');
    assert.equal(ended.samples, 5, 'what arrived is kept');

    // ... and the second has no end when the agent leaves: AgentExit ends it now, not after the 600 s grace period.
    agent.close(CloseCode.AgentExit, 'agent stopped by the customer');
    const cut = await eventually(async () => {
      const c = await capture(second.captureId);
      return c.endedAt ? c : undefined;
    }, 5000, 'the running capture ends at once');
    assert.equal(cut.status, 'incomplete');
    assert.equal(cut.endReason, 'customer_ended');
    assert.equal(cut.error.code, 'ENDED_BY_CUSTOMER');

    const gone = await eventually(async () => {
      const a = await agentView(session.id, welcome.agentId);
      return a && !a.online ? a : undefined;
    });
    assert.equal(gone.ended, 'customer');
    const update = await ui.nextOfType('session_agents', 5000, (m) => m.agents.some((a) => a.id === welcome.agentId && !a.online));
    assert.equal(update.agents.find((a) => a.id === welcome.agentId)!.ended, 'customer', 'the browser hears it ended');
    const audit = (await admin.get(`/api/sessions/${session.id}/audit`)).json.entries as { action: string; detail: Record<string, unknown> }[];
    assert.equal(audit.find((e) => e.action === 'agent.disconnected')?.detail.ended, 'customer');
    ui.close();
  });

  test('a closed session’s agents are recorded as sent away; a dropped one is merely offline', async () => {
    const session = await createSession(admin, 'closing');
    const stays = await connectAgent(relay, session.joinToken);
    const stayWelcome = await stays.hello();
    const drops = await connectAgent(relay, session.joinToken);
    const dropWelcome = await drops.hello();

    drops.terminate();
    const dropped = await eventually(async () => {
      const a = await agentView(session.id, dropWelcome.agentId);
      return a && !a.online ? a : undefined;
    });
    assert.ok(!('ended' in dropped), 'a lost connection may come back: no end');

    const closing = stays.closed;
    assert.equal((await admin.post(`/api/sessions/${session.id}/close`)).status, 200);
    assert.equal((await closing).code, CloseCode.SessionClosed);
    const away = await eventually(async () => {
      const a = await agentView(session.id, stayWelcome.agentId);
      return a && !a.online ? a : undefined;
    });
    assert.equal(away.ended, 'session_closed');
  });
});
