// The agent against a relay that misbehaves on purpose:
//   - a credential with CR/LF (it would go into the next Authorization
//     header) or one that is just a common word (it would be censored out of
//     every line the customer reads) is refused with BAD_CREDENTIAL, reported
//     on both ends, and the agent stays up on what it had;
//   - a burst of dump requests (the ~95 blocking dumps a second that would
//     keep the customer's process paused) is cut to the agent's dump rate,
//     each extra request refused with DUMP_RATE_LIMITED, and printed once.
// The connection tests run the real RelayConnection and `ws` against a
// stand-in relay in this process; the dump tests the real RemoteSession,
// the native reader and a real Python target.
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { test, type TestContext } from 'node:test';
import { WebSocketServer, type WebSocket } from 'ws';
import { Backoff } from '../../agent/remote/backoff.ts';
import { RelayConnection, type ConnectionHandler } from '../../agent/remote/connection.ts';
import { DEFAULT_DUMP_RATE, DUMP_RATE_LIMITED, DumpRateLimit } from '../../agent/remote/dump-rate.ts';
import { RemoteSession, type Link } from '../../agent/remote/session.ts';
import { TerminalLog } from '../../agent/remote/terminal-log.ts';
import { BAD_CREDENTIAL, Redactor, checkCredential } from '../../agent/remote/token.ts';
import { isPeriscopeError } from '../../shared/errors.ts';
import { encode, parseAgentMessage, PROTOCOL_VERSION, type AgentToRelay, type CaptureSpec } from '../../shared/protocol.ts';
import { newestPython } from '../helpers/pythons.ts';
import { startTarget } from '../helpers/targets.ts';

const JOIN = 'eyJhbGciOiJIUzI1NiJ9.eyJqb2luIjoic2Vzcy0xIn0.am9pbi1zaWduYXR1cmUtMTIzNA';
const GOOD_CREDENTIAL = 'eyJhbGciOiJIUzI1NiJ9.eyJhZ2VudCI6ImFnZW50LUEifQ.Y3JlZC1zaWduYXR1cmUtNTY3OA';

// ---- credentials ------------------------------------------------------------------

test('checkCredential: bearer-token characters, 32 to 4096 long; the value is never in the message', () => {
  assert.equal(checkCredential(GOOD_CREDENTIAL), GOOD_CREDENTIAL);
  assert.equal(checkCredential(`${'a'.repeat(40)}+/~==`), `${'a'.repeat(40)}+/~==`);
  const bad = [`${GOOD_CREDENTIAL}\r\nX-Injected: 1`, `${GOOD_CREDENTIAL} `, `${GOOD_CREDENTIAL}\u00e9`, 'connected', '', 'a'.repeat(4097), `${'a'.repeat(40)}=b`];
  for (const value of bad) {
    assert.throws(
      () => checkCredential(value),
      (err: unknown) => isPeriscopeError(err, BAD_CREDENTIAL) && (value.length < 8 || !(err as Error).message.includes(value.slice(0, 30))),
      JSON.stringify(value.slice(0, 50)),
    );
  }
});

/** A stand-in relay: welcomes every agent with `credential`, records what arrives and how each upgrade authenticated. */
async function standInRelay(t: TestContext, credential: string) {
  const server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ noServer: true });
  const upgrades: string[] = [];
  const received: AgentToRelay[] = [];
  const sockets: WebSocket[] = [];
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    upgrades.push(req.headers.authorization ?? '');
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.push(ws);
      ws.on('message', (data: Buffer) => {
        const m = parseAgentMessage(data);
        received.push(m);
        if (m.type === 'hello') ws.send(encode({ type: 'welcome', protocol: PROTOCOL_VERSION, agentId: 'agentA', sessionId: 'sessA', credential, resume: [] }));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    for (const ws of wss.clients) ws.terminate();
    server.closeAllConnections();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  return { url: `ws://127.0.0.1:${port}/ws/agent`, upgrades, received, sockets };
}

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

function connection(url: string) {
  const lines: string[] = [];
  const redactor = new Redactor();
  const handler: ConnectionHandler = {
    hello: () => ({ type: 'hello', protocol: PROTOCOL_VERSION, agentVersion: '0.1.0', host: 'h', containerId: '', arch: 'x64', captures: [] }),
    welcome: () => {},
    message: () => {},
    linkLost: () => {},
  };
  const conn = new RelayConnection({
    url,
    displayUrl: url,
    token: JOIN,
    handler,
    log: new TerminalLog({ redactor, write: (s) => lines.push(s) }),
    redactor,
    backoff: new Backoff({ baseMs: 10, capMs: 20, random: () => 0 }),
  });
  let failure: unknown;
  const running = conn.run().catch((err: unknown) => {
    failure = err;
  });
  return { conn, lines, running, failure: () => failure };
}

for (const [what, credential, cause] of [
  ['a CR/LF in it (header injection)', `${GOOD_CREDENTIAL}\r\nX-Injected: 1`, /characters an Authorization header cannot carry/],
  ['a common word (it would be censored out of every line)', 'connected', /of 9 characters; a credential has 32 to 4096/],
] as const) {
  test(`a credential with ${what} is refused with BAD_CREDENTIAL; the agent stays up and reconnects with what it had`, async (t) => {
    const relay = await standInRelay(t, credential);
    const agent = connection(relay.url);
    t.after(() => agent.conn.stop());
    await until('the refusal reaches the relay', () => relay.received.some((m) => m.type === 'error'));
    const err = relay.received.find((m) => m.type === 'error')!;
    assert.equal(err.type === 'error' && err.code, BAD_CREDENTIAL);
    assert.match(err.type === 'error' ? err.message : '', cause);
    // Dropped by the relay: the agent redials with the join token, not the refused credential.
    relay.sockets[0]!.close(1012, 'restart');
    await until('a second connection', () => relay.upgrades.length >= 2);
    assert.deepEqual(relay.upgrades.slice(0, 2), [`Bearer ${JOIN}`, `Bearer ${JOIN}`]);
    assert.equal(agent.failure(), undefined, `the agent failed: ${String(agent.failure())}`);
    const log = agent.lines.join('');
    assert.match(log, new RegExp(`refused the credential the relay sent: ${BAD_CREDENTIAL}: .*${cause.source}`));
    // Nothing the relay sent became a secret to censor: the agent's own lines read as written.
    assert.match(log, /\] connected to ws:\/\/127\.0\.0\.1:\d+\/ws\/agent as agent agentA in session sessA/);
    assert.ok(!log.includes('[redacted]'), log);
    assert.ok(!log.includes('X-Injected'), 'the credential is never printed');
  });
}

test('a good credential is used for the next connection (and kept out of the log)', async (t) => {
  const relay = await standInRelay(t, GOOD_CREDENTIAL);
  const agent = connection(relay.url);
  t.after(() => agent.conn.stop());
  await until('the welcome', () => agent.lines.some((l) => l.includes('connected to')));
  relay.sockets[0]!.close(1012, 'restart');
  await until('a second connection', () => relay.upgrades.length >= 2);
  assert.deepEqual(relay.upgrades.slice(0, 2), [`Bearer ${JOIN}`, `Bearer ${GOOD_CREDENTIAL}`]);
  assert.ok(!relay.received.some((m) => m.type === 'error'), 'no complaint about a good credential');
});

// ---- dumps --------------------------------------------------------------------------

test('dump rate: blocking dumps against their own limit, every dump against the overall one, in a sliding window; the first refusal per window is printed', () => {
  let now = 1_000_000;
  const limit = new DumpRateLimit(DEFAULT_DUMP_RATE, () => now);
  const { windowMs, dumps, blockingDumps } = DEFAULT_DUMP_RATE;
  for (let i = 0; i < blockingDumps; i++) assert.deepEqual(limit.admit(true), { ok: true });
  const refused = limit.admit(true);
  assert.ok(!refused.ok);
  assert.equal(refused.code, DUMP_RATE_LIMITED);
  assert.match(refused.message, new RegExp(`at most ${blockingDumps} per 10\\.0 s \\(each one pauses the process\\).*next can be taken in 10\\.0 s, or ask for a dump without --blocking`));
  assert.equal(refused.print, true);
  const again = limit.admit(true);
  assert.ok(!again.ok && !again.print, 'a second refusal in the window is counted, not printed');
  // Non-blocking dumps fill the rest of the overall limit.
  for (let i = blockingDumps; i < dumps; i++) assert.deepEqual(limit.admit(false), { ok: true });
  const overall = limit.admit(false);
  assert.ok(!overall.ok);
  assert.match(overall.message, new RegExp(`${dumps} dumps in the last 10\\.0 s already; this agent takes at most ${dumps} per 10\\.0 s`));
  // The window slides: once the first dumps are older than it, as many are admitted again.
  now += windowMs;
  const printedLater = limit.admit(true);
  assert.deepEqual(printedLater, { ok: true });
  now += 1;
  for (let i = 1; i < blockingDumps; i++) assert.deepEqual(limit.admit(true), { ok: true });
  const late = limit.admit(true);
  assert.ok(!late.ok && late.print && late.unprinted === 2, `a new window prints again, with the count of unprinted refusals: ${JSON.stringify(late)}`);
});

class RecordingLink implements Link {
  frames: AgentToRelay[] = [];
  bufferedAmount = 0;
  send(frame: Uint8Array, done?: (err?: Error) => void): void {
    this.frames.push(parseAgentMessage(frame));
    done?.();
  }
}

const DUMP: CaptureSpec = { kind: 'dump', pid: 1, rate: 100, duration: 0, subprocesses: false, mode: 'wall', idle: false, gil: false, blocking: false };

async function dumpBurst(t: TestContext, count: number, blocking: boolean) {
  const py = newestPython();
  assert.ok(py, 'no Python interpreter');
  const target = await startTarget(py, 'parked.py', { t });
  await target.truth();
  const lines: string[] = [];
  const session = new RemoteSession({
    limits: { maxRate: 1000, maxDurationS: 60, allowLocals: false },
    log: new TerminalLog({ redactor: new Redactor(), write: (s) => lines.push(s) }),
    processRefreshMs: 60_000,
  });
  t.after(() => session.shutdown(100));
  const link = new RecordingLink();
  session.welcome({ type: 'welcome', protocol: PROTOCOL_VERSION, agentId: 'a1', sessionId: 's1', resume: [] }, link);
  // What a relay in a loop sends: one request after another, as fast as the socket takes them.
  for (let i = 0; i < count; i++) {
    session.message({ type: 'start_capture', captureId: `dump${i}`, spec: { ...DUMP, pid: target.pid, blocking }, requestedBy: 'mallory' }, { spec: {} });
  }
  type Answer = Extract<AgentToRelay, { type: 'dump_result' | 'error' }>;
  const answers = link.frames.filter((m): m is Answer => (m.type === 'dump_result' || m.type === 'error') && m.captureId?.startsWith('dump') === true);
  assert.equal(answers.length, count, 'every request is answered');
  const limited = answers.filter((m) => m.type === 'error' && m.code === DUMP_RATE_LIMITED);
  return { target, answers, limited, log: lines.join('') };
}

test(`a burst of 30 dumps: ${DEFAULT_DUMP_RATE.dumps} are taken, the rest refused with DUMP_RATE_LIMITED and one line on the terminal`, async (t) => {
  const { target, answers, limited, log } = await dumpBurst(t, 30, false);
  const taken = answers.filter((m) => m.type === 'dump_result');
  assert.equal(taken.length, DEFAULT_DUMP_RATE.dumps, `dumps taken: ${JSON.stringify(answers.filter((m) => m.type === 'error').slice(0, 1))}`);
  assert.equal(limited.length, 30 - DEFAULT_DUMP_RATE.dumps);
  assert.deepEqual(taken.map((m) => m.captureId), answers.slice(0, DEFAULT_DUMP_RATE.dumps).map((m) => m.captureId), 'the first ones are taken');
  assert.equal(log.split('asked for a dump').length - 1, DEFAULT_DUMP_RATE.dumps);
  assert.equal(log.split(`refused mallory's request for a dump of pid ${target.pid}`).length - 1, 1, 'one refusal line, not twenty');
  assert.match(log, /at most 10 per 10\.0 s.*further refusals for the next 10 s are counted, not printed \[capture dump10\]/);
});

test(`~95 blocking dumps a second: ${DEFAULT_DUMP_RATE.blockingDumps} are attempted, the rest refused before the process is touched`, async (t) => {
  const { answers, limited, log } = await dumpBurst(t, 95, true);
  // The target may or may not be paused here (the agent refuses to ptrace-stop its own children); either
  // way an admitted request is answered by the dump or its own error, never by the rate limit.
  const attempted = answers.filter((m) => !(m.type === 'error' && m.code === DUMP_RATE_LIMITED));
  assert.equal(attempted.length, DEFAULT_DUMP_RATE.blockingDumps);
  assert.deepEqual(attempted.map((m) => m.captureId), ['dump0', 'dump1', 'dump2']);
  assert.equal(limited.length, 95 - DEFAULT_DUMP_RATE.blockingDumps);
  assert.match(limited[0]!.type === 'error' ? limited[0]!.message : '', /each one pauses the process/);
  assert.equal(log.split('refused mallory').length - 1, 1);
});
