// `periscope connect` end to end against a stand-in relay: a real `ws`
// server in this test that speaks shared/protocol.ts, the real CLI
// (bin/periscope connect) as a child process, real Python targets and the
// real native sampler. (Tests with the real relay process come with it.)
//
//   - a relay that drops the connection mid-capture, refuses the first
//     reconnects for a while, then accepts the agent's credential and asks
//     for a resend: no chunk or sample is lost, seqs are contiguous, the
//     agent kept sampling while disconnected;
//   - a relay that sends garbage: the agent answers with errors and goes on;
//     requests outside the customer's bounds are refused naming the flag;
//   - final close codes and HTTP refusals stop the agent with the right exit
//     code; Ctrl-C ends captures and closes with 1000;
//   - a silent relay is detected by heartbeats and redialled.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Packr } from 'msgpackr';
import { WebSocket, WebSocketServer } from 'ws';
import { profileFromChunks } from '../../shared/profile/index.ts';
import { decodeUntrusted } from '../../shared/untrusted-msgpack.ts';
import {
  CloseCode,
  encode,
  parseAgentMessage,
  PROTOCOL_VERSION,
  type AgentToRelay,
  type CaptureSpec,
  type ChunkMessage,
  type RelayToAgent,
} from '../../shared/protocol.ts';
import { PERISCOPE, ROOT } from '../helpers/periscope.ts';
import { newestPython } from '../helpers/pythons.ts';
import { startTarget, type Target } from '../helpers/targets.ts';

const JOIN = 'eyJhbGciOiJIUzI1NiJ9.eyJqb2luIjoic2Vzcy0xIn0.am9pbi1zaWduYXR1cmUtMTIzNA';
const CRED = 'eyJhbGciOiJIUzI1NiJ9.eyJhZ2VudCI6ImFnZW50LUEifQ.Y3JlZC1zaWduYXR1cmUtNTY3OA';

// ---- a stand-in relay --------------------------------------------------------

type Msg<T extends AgentToRelay['type']> = Extract<AgentToRelay, { type: T }>;

class PeerConn {
  readonly ws: WebSocket;
  readonly auth: string;
  readonly received: AgentToRelay[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #queue: AgentToRelay[] = [];
  #wake: (() => void) | undefined;
  badFromAgent: string[] = [];

  constructor(ws: WebSocket, req: IncomingMessage) {
    this.ws = ws;
    this.auth = req.headers.authorization ?? '';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      try {
        assert.ok(isBinary, 'the agent sends binary frames');
        const m = parseAgentMessage(data);
        this.received.push(m);
        this.#queue.push(m);
      } catch (err) {
        this.badFromAgent.push(String(err));
      }
      this.#wake?.();
    });
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  send(m: RelayToAgent): void {
    this.ws.send(encode(m));
  }

  /** The next message from the agent; with `type`, skips (and keeps in `received`) others. */
  async next<T extends AgentToRelay['type']>(type: T, timeoutMs = 10_000, skip: AgentToRelay['type'][] = ['processes']): Promise<Msg<T>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      while (this.#queue.length > 0) {
        const m = this.#queue.shift()!;
        if (m.type === type) return m as Msg<T>;
        if (!skip.includes(m.type)) throw new Error(`expected ${type}, got ${JSON.stringify(m).slice(0, 300)}`);
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`connection closed while waiting for ${type}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type} within ${timeoutMs} ms; received ${this.received.map((m) => m.type).join(', ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Chunks (acknowledged as they come, appended to `stored` with contiguous seqs) until capture_ended. */
  async collect(captureId: string, stored: ChunkMessage[], timeoutMs = 20_000): Promise<Msg<'capture_ended'>> {
    for (;;) {
      const m = await this.nextAny(['chunk', 'capture_ended'], timeoutMs);
      if (m.type === 'capture_ended') return m as Msg<'capture_ended'>;
      const c = m as ChunkMessage;
      assert.equal(c.captureId, captureId);
      assert.equal(c.seq, stored.length, `chunk seqs must be contiguous: got ${c.seq} after ${stored.length - 1}`);
      stored.push(c);
      this.send({ type: 'ack', captureId, nextSeq: c.seq + 1 });
    }
  }

  async nextAny(types: AgentToRelay['type'][], timeoutMs = 10_000): Promise<AgentToRelay> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#queue.findIndex((m) => types.includes(m.type));
      if (i >= 0) {
        const m = this.#queue[i]!;
        const skipped = this.#queue.splice(0, i + 1).slice(0, -1).filter((x) => x.type !== 'processes');
        if (skipped.length > 0) throw new Error(`unexpected ${JSON.stringify(skipped[0]).slice(0, 300)} while waiting for ${types.join('|')}`);
        return m;
      }
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`connection closed while waiting for ${types.join('|')}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${types.join('|')} within ${timeoutMs} ms; received ${this.received.map((m) => m.type).join(', ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  welcome(over: Partial<Extract<RelayToAgent, { type: 'welcome' }>> = {}): void {
    this.send({ type: 'welcome', protocol: PROTOCOL_VERSION, agentId: 'agentA', sessionId: 'sessA', resume: [], ...over });
  }
}

class Peer {
  readonly server: Server;
  readonly wss = new WebSocketServer({ noServer: true, maxPayload: 8 * 1024 * 1024 });
  port = 0;
  /** Answer the next upgrades with this HTTP status instead (e.g. 503, 401), with the relay's JSON error body if given. */
  refuse: (number | { status: number; code: string; message: string })[] = [];
  /** Hold the next upgrade this long before answering. */
  delayNextMs = 0;
  connections: PeerConn[] = [];
  upgrades: { at: number; auth: string; status: number }[] = [];
  #waiters: ((c: PeerConn) => void)[] = [];

  constructor() {
    this.server = createServer((_req, res) => res.writeHead(404).end());
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const refusal = this.refuse.shift();
      const status = typeof refusal === 'object' ? refusal.status : refusal;
      this.upgrades.push({ at: Date.now(), auth: req.headers.authorization ?? '', status: status ?? 101 });
      if (req.url !== '/ws/agent') {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      if (status) {
        // Like relay/ws/upgrade.ts: a JSON body naming the cause.
        const body = typeof refusal === 'object' ? JSON.stringify({ error: { code: refusal.code, message: refusal.message } }) : `refused by the test (${status})`;
        socket.end(`HTTP/1.1 ${status} Test\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
        return;
      }
      const accept = () =>
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          const conn = new PeerConn(ws, req);
          this.connections.push(conn);
          const w = this.#waiters.shift();
          if (w) w(conn);
        });
      const delay = this.delayNextMs;
      this.delayNextMs = 0;
      if (delay > 0) setTimeout(accept, delay);
      else accept();
    });
  }

  async listen(t: TestContext): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    t.after(() => {
      for (const c of this.wss.clients) c.terminate();
      this.server.closeAllConnections();
      this.server.close();
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The next accepted connection (one already accepted and not yet taken counts). */
  nextConnection(timeoutMs = 15_000): Promise<PeerConn> {
    const taken = this.#taken;
    if (this.connections.length > taken) {
      this.#taken++;
      return Promise.resolve(this.connections[taken]!);
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no agent connection within ${timeoutMs} ms (upgrades: ${JSON.stringify(this.upgrades.map((u) => u.status))})`)), timeoutMs);
      this.#waiters.push((c) => {
        clearTimeout(t);
        this.#taken++;
        resolve(c);
      });
    });
  }
  #taken = 0;
}

// ---- the agent under test ---------------------------------------------------------

class Agent {
  readonly child: ChildProcess;
  stderr = '';
  stdout = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(t: TestContext, args: string[], env: NodeJS.ProcessEnv = {}) {
    this.child = spawn(PERISCOPE, ['connect', ...args], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString('utf8')));
    this.child.stdout!.on('data', (b: Buffer) => (this.stdout += b.toString('utf8')));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
    t.after(() => {
      try {
        process.kill(-this.child.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    });
  }

  async exit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const r = await Promise.race([this.exited, sleep(timeoutMs).then(() => undefined)]);
    if (!r) throw new Error(`the agent did not exit within ${timeoutMs} ms\n--- stderr ---\n${this.stderr}`);
    return r;
  }

  /** Output checks that hold for every run: no secret ever printed. */
  assertNoSecrets(): void {
    for (const secret of [JOIN, CRED, JOIN.split('.')[2]!, CRED.split('.')[2]!]) {
      assert.ok(!this.stderr.includes(secret) && !this.stdout.includes(secret), `a token was printed:\n${this.stderr}`);
    }
  }
}

function spec(over: Partial<CaptureSpec>): CaptureSpec {
  return { kind: 'record', pid: 1, rate: 100, duration: 5, subprocesses: false, mode: 'wall', idle: false, gil: false, blocking: false, ...over };
}

async function parkedTarget(t: TestContext): Promise<{ target: Target; truth: { version: string; threads: { name: string }[] } }> {
  const py = newestPython();
  assert.ok(py, 'no Python interpreter to test with');
  const target = await startTarget(py, 'parked.py', { t });
  return { target, truth: await target.truth() };
}

// ---- tests --------------------------------------------------------------------------

test('connect: drop mid-capture, resume with the credential from the relay’s seq: nothing lost, seqs contiguous, sampling went on while disconnected', async (t) => {
  const { target, truth } = await parkedTarget(t);
  const peer = new Peer();
  await peer.listen(t);
  const agent = new Agent(t, [peer.url], { PERISCOPE_TOKEN: JOIN });

  const c1 = await peer.nextConnection();
  assert.equal(c1.auth, `Bearer ${JOIN}`, 'first connection presents the join token');
  const hello = await c1.next('hello');
  assert.equal(hello.protocol, PROTOCOL_VERSION);
  assert.equal(hello.host, hostname());
  assert.equal(hello.arch, process.arch);
  assert.equal(typeof hello.containerId, 'string');
  assert.match(hello.agentVersion, /^\d+\.\d+\.\d+/);
  assert.deepEqual(hello.captures, []);
  c1.welcome({ credential: CRED });
  const procs = await c1.next('processes', 10_000, []);
  const listed = procs.processes.find((p) => p.pid === target.pid);
  assert.ok(listed, `target ${target.pid} not in ${JSON.stringify(procs.processes)}`);
  assert.equal(listed.version, truth.version);
  assert.match(listed.cmdline, /parked\.py/);

  const DURATION = 5;
  const RATE = 250;
  c1.send({ type: 'start_capture', captureId: 'capA', spec: spec({ pid: target.pid, rate: RATE, duration: DURATION }), requestedBy: 'alice@support.example' });
  const stored: ChunkMessage[] = [];
  const lostInDrop: ChunkMessage[] = [];
  for (;;) {
    const c = await c1.next('chunk');
    if (c.seq < 3) {
      assert.equal(c.seq, stored.length);
      stored.push(c);
      c1.send({ type: 'ack', captureId: 'capA', nextSeq: c.seq + 1 });
    } else {
      lostInDrop.push(c); // received, never stored: the relay "crashed" before writing them
      if (c.seq === 5) break;
    }
  }
  // Drop the connection; refuse the first redial and hold the next one, so the
  // agent is disconnected for a good second while it keeps sampling.
  peer.refuse.push(503);
  peer.delayNextMs = 1200;
  const droppedAt = Date.now();
  c1.ws.terminate();

  const c2 = await peer.nextConnection(20_000);
  const reconnectedAt = Date.now();
  assert.equal(c2.auth, `Bearer ${CRED}`, 'reconnects use the credential, not the join token');
  const hello2 = await c2.next('hello');
  assert.equal(hello2.captures.length, 1);
  assert.equal(hello2.captures[0]!.captureId, 'capA');
  assert.ok(hello2.captures[0]!.nextSeq >= 6, `agent has cut ${hello2.captures[0]!.nextSeq} chunks`);
  c2.welcome({ resume: [{ captureId: 'capA', nextSeq: 3 }] });

  const ended = await c2.collect('capA', stored);
  assert.equal(ended.captureId, 'capA');
  assert.equal(ended.reason, 'duration');
  assert.equal(ended.chunks, stored.length, 'capture_ended counts every chunk');
  assert.equal(ended.error, undefined);

  // Resent chunks are the very chunks the relay lost.
  for (const lost of lostInDrop) assert.deepEqual(stored[lost.seq]!.chunk, lost.chunk, `chunk ${lost.seq} resent unchanged`);

  // Replaying the stored chunks checks continuity table by table (a lost or
  // repeated chunk throws CHUNK_OUT_OF_SEQUENCE).
  const profile = profileFromChunks(stored.map((c) => decodeUntrusted(c.chunk)));
  const start = profile.capture.startTimeUs;
  const times = [...new Set(profile.samples.timeUs)].sort((a, b) => a - b);
  const finalStats = stored.at(-1)!.stats;
  assert.equal(times.length, finalStats.samples, 'one sampling round per counted sample: none missing');
  // The sampler ran the whole duration (ticks count every slot, the ones a
  // loaded machine made it skip included) and took most of them.
  assert.ok(finalStats.ticks >= RATE * DURATION * 0.9, `${finalStats.ticks} ticks for ${DURATION} s at ${RATE} Hz`);
  assert.ok(finalStats.samples >= RATE * DURATION * 0.25, `${finalStats.samples} samples for ${DURATION} s at ${RATE} Hz`);
  let maxGapUs = 0;
  let maxGapAt = 0;
  for (let i = 1; i < times.length; i++) {
    if (times[i]! - times[i - 1]! > maxGapUs) {
      maxGapUs = times[i]! - times[i - 1]!;
      maxGapAt = times[i - 1]!;
    }
  }
  // The sampler never paused, not even while the agent was disconnected
  // (generous: a loaded 2-CPU test box delays a sampling thread now and then).
  assert.ok(maxGapUs < 1_000_000, `a ${(maxGapUs / 1000).toFixed(0)} ms hole in the samples, ${(start + maxGapAt) / 1000 - droppedAt} ms after the drop`);
  const inGap = times.filter((us) => start + us > (droppedAt + 200) * 1000 && start + us < (reconnectedAt - 200) * 1000).length;
  assert.ok(reconnectedAt - droppedAt >= 1000, 'the test held the agent off for a second');
  assert.ok(inGap >= RATE * 0.2, `only ${inGap} samples taken while disconnected for ${reconnectedAt - droppedAt} ms`);
  // The parked target's named threads are all there.
  const names = new Set(profile.threads.name.map((i) => profile.strings[i]));
  for (const th of truth.threads.filter((x) => x.name !== 'MainThread')) assert.ok(names.has(th.name), `thread ${th.name} missing`);

  // The engineer closes the session: the agent exits 0 and says so.
  c2.ws.close(CloseCode.SessionClosed, 'the engineer closed the session');
  const exit = await agent.exit();
  assert.equal(exit.code, 0, agent.stderr);
  agent.assertNoSecrets();
  const log = agent.stderr;
  assert.match(log, new RegExp(`connected to ${peer.url.replace(/[.]/g, '\\.')} as agent agentA in session sessA`));
  assert.match(log, new RegExp(`alice@support\\.example asked for a recording of pid ${target.pid} \\(.*parked\\.py.*Python ${truth.version.replace(/\./g, '\\.')}\\) at ${RATE} Hz for 5\\.0 s \\[capture capA\\]`));
  assert.match(log, /connection to .* lost \(1006 connection dropped\); retrying in \d+(\.\d+)? s/);
  assert.match(log, /could not connect to .*HTTP 503/);
  assert.match(log, /resending \d+ chunks of capture capA from chunk 3/);
  assert.match(log, new RegExp(`a recording of pid ${target.pid} ended \\(its duration was reached\\): \\d+ samples in ${stored.length} chunks`));
  assert.match(log, /the support session was closed \(the engineer closed the session\)/);
  assert.match(log, /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /m);
});

test('connect: garbage from the relay is answered with errors, never a crash; bounds, --pids, not-Python, dump, duplicates; Ctrl-C ends a live top', async (t) => {
  const { target, truth } = await parkedTarget(t);
  const other = await parkedTarget(t);
  const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(() => sleeper.kill('SIGKILL'));
  const dir = mkdtempSync(join(tmpdir(), 'periscope-connect-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, `${JOIN}\n`);
  chmodSync(tokenFile, 0o600);

  const peer = new Peer();
  await peer.listen(t);
  const agent = new Agent(t, [peer.url, '--token-file', tokenFile, '--pids', `${target.pid},${sleeper.pid}`, '--max-rate', '500', '--max-duration', '20'], {
    PERISCOPE_TOKEN: '',
  });
  const c = await peer.nextConnection();
  assert.equal(c.auth, `Bearer ${JOIN}`, 'the token from --token-file');
  await c.next('hello');
  c.welcome();
  const procs = await c.next('processes', 10_000, []);
  assert.deepEqual(procs.processes.map((p) => p.pid), [target.pid], '--pids: only the allowed Python process is offered');

  // Garbage of every kind.
  const packr = new Packr({ useRecords: false });
  const garbage: (Buffer | string)[] = [
    Buffer.from([0xc1, 0xff, 0x00]),
    'a text frame',
    packr.pack([1, 2, 3]),
    packr.pack({ type: 'no_such_message' }),
    packr.pack({ type: 'start_capture', captureId: 'g1', spec: { kind: 'record', pid: target.pid, rate: -5 }, requestedBy: 'x' }),
    packr.pack({ type: 'ack', captureId: 'not a valid id!', nextSeq: 1 }),
    packr.pack({ type: 'start_capture', captureId: 'g2', spec: { kind: 'shell', pid: 1, rate: 1, duration: 1, subprocesses: false, idle: false, gil: false, blocking: false }, requestedBy: 'x' }),
  ];
  for (const g of garbage) c.ws.send(g);
  for (let i = 0; i < garbage.length; i++) {
    const e = await c.next('error');
    assert.equal(e.code, 'BAD_MESSAGE', JSON.stringify(e));
  }
  c.send({ type: 'list_processes' });
  await c.next('processes', 5000, []);

  // Requests outside the bounds.
  const refusal = async (captureId: string, s: CaptureSpec, raw?: Record<string, unknown>) => {
    if (raw) c.ws.send(packr.pack({ type: 'start_capture', captureId, spec: { ...s, ...raw }, requestedBy: 'mallory\x1b[31m' }));
    else c.send({ type: 'start_capture', captureId, spec: s, requestedBy: 'mallory\x1b[31m' });
    const e = await c.next('error');
    assert.equal(e.captureId, captureId);
    return e;
  };
  let e = await refusal('r1', spec({ pid: target.pid, rate: 1000 }));
  assert.equal(e.code, 'REFUSED_BY_AGENT');
  assert.match(e.message, /1000 Hz.*500 Hz.*--max-rate/);
  e = await refusal('r2', spec({ pid: target.pid, duration: 60 }));
  assert.match(e.message, /60 s.*20 s.*--max-duration/);
  e = await refusal('r3', spec({ pid: other.target.pid }));
  assert.equal(e.code, 'REFUSED_BY_AGENT');
  assert.match(e.message, /--pids/);
  e = await refusal('r4', spec({ pid: target.pid }), { locals: true });
  assert.match(e.message, /--allow-locals/);
  e = await refusal('r5', spec({ pid: sleeper.pid! }));
  assert.equal(e.code, 'NOT_PYTHON');
  e = await refusal('r6', spec({ kind: 'dump', pid: sleeper.pid! }));
  assert.equal(e.code, 'NOT_PYTHON');

  // A dump, then the same request again: done once.
  c.send({ type: 'start_capture', captureId: 'd1', spec: spec({ kind: 'dump', pid: target.pid }), requestedBy: 'bob' });
  const dumped = await c.next('dump_result');
  assert.equal(dumped.captureId, 'd1');
  const threadNames = new Set((dumped.threads as { thread_name: string | null; pid: number; frames: unknown[] }[]).map((x) => x.thread_name));
  for (const th of truth.threads) assert.ok(threadNames.has(th.name), `dump lacks thread ${th.name}`);
  c.send({ type: 'start_capture', captureId: 'd1', spec: spec({ kind: 'dump', pid: target.pid }), requestedBy: 'bob' });
  c.send({ type: 'stop_capture', captureId: 'nope', requestedBy: 'bob' });
  assert.equal((await c.next('error')).code, 'UNKNOWN_CAPTURE', 'the duplicate dump was ignored (the next message is about the unknown stop)');

  // A live top "until stopped", then Ctrl-C on the customer's side.
  c.send({ type: 'start_capture', captureId: 'top1', spec: spec({ kind: 'top', pid: target.pid, rate: 200, duration: 0 }), requestedBy: 'bob' });
  const chunks: ChunkMessage[] = [];
  while (chunks.length < 3) {
    const m = await c.next('chunk');
    chunks.push(m);
    c.send({ type: 'ack', captureId: 'top1', nextSeq: m.seq + 1 });
  }
  const closed = c.closed;
  process.kill(agent.child.pid!, 'SIGINT');
  const end = await c.collect('top1', chunks, 10_000);
  assert.ok(end, `no capture_ended after Ctrl-C:\n${agent.stderr}`);
  assert.equal(end.reason, 'stopped');
  assert.equal(end.byCustomer, true, 'the end says the customer stopped it');
  assert.equal(end.chunks, chunks.length);
  profileFromChunks(chunks.map((x) => decodeUntrusted(x.chunk)));
  const close = await closed;
  assert.equal(close.code, CloseCode.AgentExit, 'Ctrl-C tells the relay the agent leaves on purpose');
  const exit = await agent.exit();
  assert.equal(exit.code, 0, agent.stderr);
  assert.deepEqual(c.badFromAgent, [], 'everything the agent sent was valid');
  agent.assertNoSecrets();

  const log = agent.stderr;
  assert.ok(!log.includes('\x1b'), 'no escape sequence from the relay reaches the terminal');
  assert.match(log, /the relay sent a malformed message/);
  assert.match(log, /refused mallory\\x1b\[31m's request for a recording of pid \d+: a rate of 1000 Hz/);
  assert.match(log, new RegExp(`bob asked for a dump of pid ${target.pid}`));
  assert.match(log, new RegExp(`dump of pid ${target.pid}: \\d+ threads in 1 process sent`));
  assert.match(log, new RegExp(`bob asked for a live top of pid ${target.pid} .* at 200 Hz until stopped \\(at most 20 s, the --max-duration limit\\)`));
  assert.match(log, /Ctrl-C: stopping 1 capture and disconnecting/);
  assert.match(log, new RegExp(`a live top of pid ${target.pid} ended \\(stopped\\)`));
  assert.equal(log.split('asked for a dump').length - 1, 1, 'the duplicate request was not run (or printed) twice');
});

test('connect: final close codes and HTTP refusals stop the agent; Restarting and 5xx are retried', async (t) => {
  const cases: { name: string; setup: (peer: Peer) => void; after?: (c: PeerConn) => void; code: number; message: RegExp; upgrades?: number }[] = [
    { name: 'HTTP 401', setup: (p) => p.refuse.push(401), code: 1, message: /refused this agent's join token \(HTTP 401: refused by the test \(401\)\)/ },
    {
      name: 'HTTP 401 BAD_TOKEN (JSON)',
      setup: (p) => p.refuse.push({ status: 401, code: 'TOKEN_EXPIRED', message: 'the token has expired' }),
      code: 1,
      message: /refused this agent's join token \(HTTP 401: TOKEN_EXPIRED: the token has expired\)/,
    },
    {
      name: 'HTTP 401 SESSION_CLOSED (JSON)',
      setup: (p) => p.refuse.push({ status: 401, code: 'SESSION_CLOSED', message: 'the support session has ended; do not reconnect' }),
      code: 0,
      message: /the support session was closed \(HTTP 401: SESSION_CLOSED: the support session has ended; do not reconnect\)/,
    },
    { name: 'HTTP 404', setup: (p) => p.refuse.push(404), code: 1, message: /no agent endpoint .*HTTP 404/ },
    { name: 'BadAuth', setup: () => undefined, after: (c) => c.ws.close(CloseCode.BadAuth, 'token expired'), code: 1, message: /rejected this agent's join token \(token expired\)/ },
    { name: 'Version', setup: () => undefined, after: (c) => c.ws.close(CloseCode.Version, 'need v9'), code: 1, message: new RegExp(`protocol version ${PROTOCOL_VERSION} \\(need v9\\)`) },
    { name: 'Replaced', setup: () => undefined, after: (c) => c.ws.close(CloseCode.Replaced, ''), code: 1, message: /another agent connected with this agent's identity/ },
    {
      name: 'Restarting, 503, then SessionClosed',
      setup: (p) => p.refuse.push(0),
      after: (c) => c.ws.close(CloseCode.Restarting, 'deploy'),
      code: 0,
      message: /the support session was closed/,
      upgrades: 3,
    },
  ];
  for (const k of cases) {
    const peer = new Peer();
    await peer.listen(t);
    k.setup(peer);
    if (peer.refuse[0] === 0) peer.refuse = [];
    const agent = new Agent(t, [peer.url], { PERISCOPE_TOKEN: JOIN });
    if (k.after) {
      const c = await peer.nextConnection();
      await c.next('hello');
      c.welcome();
      await c.next('processes', 10_000, []);
      k.after(c);
      if (k.upgrades) {
        // Restarting is not final: the agent comes back; refuse once with 503, then end the session.
        peer.refuse.push(503);
        const c2 = await peer.nextConnection(20_000);
        await c2.next('hello');
        c2.ws.close(CloseCode.SessionClosed, '');
      }
    }
    const exit = await agent.exit();
    assert.equal(exit.code, k.code, `${k.name}: exit code\n${agent.stderr}`);
    assert.match(agent.stderr, k.message, k.name);
    if (k.upgrades) assert.equal(peer.upgrades.length, k.upgrades, `${k.name}: upgrades ${JSON.stringify(peer.upgrades)}`);
    else assert.equal(peer.upgrades.length, 1, `${k.name}: must not reconnect`);
    agent.assertNoSecrets();
  }
});

test('connect: a relay that goes silent is detected by heartbeats and redialled', async (t) => {
  const peer = new Peer();
  await peer.listen(t);
  const agent = new Agent(t, [peer.url], { PERISCOPE_TOKEN: JOIN, PERISCOPE_CONNECT_TEST_HOOKS: JSON.stringify({ pingIntervalMs: 200, deadAfterMs: 1500 }) });
  const c1 = await peer.nextConnection();
  await c1.next('hello');
  c1.welcome({ credential: CRED });
  await c1.next('processes', 10_000, []);
  // A dump answered on this connection…
  const { target } = await parkedTarget(t);
  c1.send({ type: 'start_capture', captureId: 'dd', spec: spec({ kind: 'dump', pid: target.pid }), requestedBy: 'bob' });
  assert.equal((await c1.next('dump_result')).captureId, 'dd');
  const pings = { n: 0 };
  c1.ws.on('ping', () => pings.n++);
  for (let waited = 0; pings.n < 2 && waited < 5000; waited += 50) await sleep(50);
  assert.ok(pings.n >= 2, 'the agent pings');
  // Go silent: stop reading, so neither pongs nor anything else comes back.
  const silentAt = Date.now();
  (c1.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  const c2 = await peer.nextConnection(10_000);
  const after = Date.now() - silentAt;
  assert.ok(after >= 1400 && after < 10_000, `redialled after ${after} ms of silence`);
  assert.equal(c2.auth, `Bearer ${CRED}`);
  await c2.next('hello');
  c2.welcome();
  // …is done again when the relay repeats it on a new connection (its answer
  // may have been lost), but only once per connection.
  c2.send({ type: 'start_capture', captureId: 'dd', spec: spec({ kind: 'dump', pid: target.pid }), requestedBy: 'bob' });
  c2.send({ type: 'start_capture', captureId: 'dd', spec: spec({ kind: 'dump', pid: target.pid }), requestedBy: 'bob' });
  assert.equal((await c2.next('dump_result')).captureId, 'dd');
  c2.send({ type: 'stop_capture', captureId: 'zz', requestedBy: 'bob' });
  assert.equal((await c2.next('error')).code, 'UNKNOWN_CAPTURE', 'no second dump_result on the same connection');
  c2.ws.close(CloseCode.SessionClosed, 'done');
  assert.equal((await agent.exit()).code, 0);
  assert.match(agent.stderr, /no sign of life from the relay for \d+(\.\d+)? s; reconnecting/);
  assert.match(agent.stderr, /bob asked for a dump of pid \d+ .*\[capture dd, asked again after a reconnect\]/);
  agent.assertNoSecrets();
});

test('connect: the token never appears in the agent’s command line; argv tokens are refused before connecting', async (t) => {
  const peer = new Peer();
  await peer.listen(t);
  const agent = new Agent(t, [peer.url], { PERISCOPE_TOKEN: JOIN });
  const c = await peer.nextConnection();
  await c.next('hello');
  const { readFileSync } = await import('node:fs');
  const cmdline = readFileSync(`/proc/${agent.child.pid}/cmdline`, 'utf8');
  assert.ok(!cmdline.includes(JOIN), 'no token in /proc/PID/cmdline (ps)');
  assert.ok(!peer.upgrades.some((u) => u.auth !== `Bearer ${JOIN}`));
  c.ws.close(CloseCode.SessionClosed, '');
  await agent.exit();

  const bad = new Agent(t, [peer.url, '--token', JOIN], {});
  const exit = await bad.exit();
  assert.equal(exit.code, 2);
  assert.match(bad.stderr, /never accepted on the command line/);
  bad.assertNoSecrets();
  assert.equal(peer.upgrades.length, 1, 'no connection attempt with an argv token');
});

test('connect: the session closed while a capture runs: sampling stops and the agent exits 0 at once', async (t) => {
  const { target } = await parkedTarget(t);
  const peer = new Peer();
  await peer.listen(t);
  const agent = new Agent(t, [peer.url], { PERISCOPE_TOKEN: JOIN });
  const c = await peer.nextConnection();
  await c.next('hello');
  c.welcome();
  c.send({ type: 'start_capture', captureId: 'run1', spec: spec({ kind: 'top', pid: target.pid, rate: 100, duration: 0 }), requestedBy: 'bob' });
  await c.next('chunk');
  const closedAt = Date.now();
  c.ws.close(CloseCode.SessionClosed, 'bye');
  const exit = await agent.exit(10_000);
  assert.equal(exit.code, 0, agent.stderr);
  assert.ok(Date.now() - closedAt < 3000, `exited ${Date.now() - closedAt} ms after the close`);
  assert.match(agent.stderr, /a live top of pid \d+ ended \(stopped\)/);
  assert.match(agent.stderr, /the support session was closed \(bye\)/);
});
