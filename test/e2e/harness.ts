// End-to-end harness: a REAL relay process (test/helpers/relay.ts startRelay),
// a REAL agent process (`bin/periscope connect URL`, join token in
// PERISCOPE_TOKEN), REAL Python targets (test/helpers/targets.ts) -- and the
// measuring instruments the e2e tests share:
//
//   - AgentProcess: the agent's terminal, parsed (who asked, what ended, with
//     how many samples and chunks), and its death on demand;
//   - storedProfile(): the profile exactly as the relay stored it, read back
//     over /ws/ui (watch_capture replays every stored chunk from seq 0) and
//     rebuilt with shared/profile applyChunk;
//   - sampleLoss(): how many samples the agent's sampler took that the relay
//     does not have (see its comment for why this is exact);
//   - TcpProxy: a byte pipe between agent and relay whose connections the
//     test can cut and hold down;
//   - rssKiB(): a process's resident memory from /proc/PID/status.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import type { TestContext } from 'node:test';
import { applyChunk, emptyProfile, type Profile } from '../../shared/profile/index.ts';
import { PERISCOPE, ROOT } from '../helpers/periscope.ts';
import { newestPython, type Python } from '../helpers/pythons.ts';
import { startTarget, type Target } from '../helpers/targets.ts';
import {
  adminClient,
  type Client,
  connectUi,
  createCapture,
  createSession,
  eventually,
  onlineAgent,
  type RelayProcess,
  removeDataDir,
  sleep,
  startRelay,
} from '../helpers/relay.ts';
import type { CaptureView as RelayCaptureView } from '../../shared/http-views.ts';

// ---- the agent ------------------------------------------------------------------

const liveAgents = new Set<ChildProcess>();
let exitHooked = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-(child.pid ?? 0), signal);
  } catch {
    // gone already
  }
}

/** What the agent printed when a capture ended: `… ended (why): N samples in M chunks [capture ID]`. */
export interface AgentEnd {
  why: string;
  /** The native sampler's own count of samples taken (one per tick per process). */
  samples: number;
  /** Chunks the agent cut (= the capture's last seq + 1). */
  chunks: number;
}

/** `bin/periscope connect URL` as a child process in its own process group, killed when the test ends. */
export class AgentProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #out = '';

  /**
   * `bin/periscope connect relayUrl` with the token in the environment; or,
   * with `shell`, that command line run by sh as the customer would (the
   * one-liner), with `env` as its whole environment.
   */
  constructor(t: TestContext, relayUrl: string, token: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, shell?: string) {
    this.child = shell
      ? spawn('sh', ['-c', shell], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
      : spawn(PERISCOPE, ['connect', relayUrl, ...args], { cwd: ROOT, env: { ...process.env, PERISCOPE_TOKEN: token, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (this.child.pid === undefined) throw new Error(`could not start ${shell ?? 'bin/periscope connect'}`);
    this.pid = this.child.pid;
    this.child.stdout!.on('data', (b: Buffer) => (this.#out += b.toString('utf8')));
    this.child.stderr!.on('data', (b: Buffer) => (this.#out += b.toString('utf8')));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => {
        liveAgents.delete(this.child);
        resolve({ code, signal });
      }),
    );
    liveAgents.add(this.child);
    if (!exitHooked) {
      exitHooked = true;
      process.on('exit', () => {
        for (const c of liveAgents) killGroup(c, 'SIGKILL');
      });
    }
    t.after(async () => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return;
      killGroup(this.child, 'SIGKILL');
      await this.exited;
    });
  }

  /** Everything the agent printed (its terminal: stderr and stdout). */
  get output(): string {
    return this.#out;
  }

  /** Waits until the terminal matches `pattern`; fails early if the agent exits. */
  async waitFor(pattern: RegExp, timeoutMs = 15_000, what = String(pattern)): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = pattern.exec(this.#out);
      if (m) return m;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`the agent exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${what}:\n${this.#out}`);
      }
      if (Date.now() > deadline) throw new Error(`the agent did not print ${what} within ${timeoutMs} ms:\n${this.#out}`);
      await sleep(50);
    }
  }

  /** The capture's end line, once printed. */
  endOf(captureId: string): AgentEnd | undefined {
    const m = new RegExp(`ended \\(([^)]*)\\): (\\d+) samples in (\\d+) chunks \\[capture ${captureId}[\\],]`).exec(this.#out);
    return m ? { why: m[1]!, samples: Number(m[2]), chunks: Number(m[3]) } : undefined;
  }

  async waitEnd(captureId: string, timeoutMs = 20_000): Promise<AgentEnd> {
    await this.waitFor(new RegExp(`\\[capture ${captureId}[\\],]`), timeoutMs, `a line about capture ${captureId}`);
    return eventually(() => this.endOf(captureId), timeoutMs, `the end line of capture ${captureId} on the agent's terminal:\n${this.#out}`);
  }

  /** Lines about a capture (what the customer saw). */
  linesAbout(captureId: string): string[] {
    return this.#out.split('\n').filter((l) => l.includes(`capture ${captureId}`));
  }

  signal(signal: NodeJS.Signals): void {
    killGroup(this.child, signal);
  }

  async exit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const r = await Promise.race([this.exited, sleep(timeoutMs).then(() => undefined)]);
    if (!r) throw new Error(`the agent did not exit within ${timeoutMs} ms:\n${this.#out}`);
    return r;
  }
}

// ---- the relay's HTTP API, as an engineer -------------------------------------------


/** GET /api/captures/:id: the relay's capture view, plus a dump's result. */
export type CaptureView = RelayCaptureView & { result?: unknown[] | null };

export async function startCapture(client: Client, agentId: string, spec: Record<string, unknown>): Promise<CaptureView> {
  return (await createCapture(client, agentId, spec)) as CaptureView;
}

export async function getCapture(client: Client, captureId: string): Promise<CaptureView> {
  const res = await client.get(`/api/captures/${captureId}`);
  assert.equal(res.status, 200, res.text);
  return res.json as CaptureView;
}

/** Polls the capture until `done` holds (default: it has ended). */
export async function waitCapture(client: Client, captureId: string, timeoutMs = 20_000, done: (c: CaptureView) => boolean = (c) => c.endedAt !== null): Promise<CaptureView> {
  let last: CaptureView | undefined;
  try {
    return await eventually(async () => {
      last = await getCapture(client, captureId);
      return done(last) ? last : undefined;
    }, timeoutMs, `capture ${captureId}`);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last seen ${JSON.stringify(last)}`);
  }
}

export async function download(client: Client, captureId: string, query = ''): Promise<{ status: number; type: string; disposition: string; body: string }> {
  const res = await client.get(`/api/captures/${captureId}/download${query ? `?${query}` : ''}`);
  return { status: res.status, type: res.headers.get('content-type') ?? '', disposition: res.headers.get('content-disposition') ?? '', body: res.text };
}

// ---- what the relay stored -------------------------------------------------------------

/**
 * The capture's profile exactly as the relay stored it: a viewer that watches
 * the capture gets every stored chunk from seq 0 in order (the same replay a
 * late browser or a download uses); each is applied with applyChunk, which
 * rejects any chunk that does not continue the previous one (base sizes), so
 * a hole or a repeat cannot go unnoticed.
 */
export async function storedProfile(relay: RelayProcess, client: Client, captureId: string, timeoutMs = 15_000): Promise<{ profile: Profile; chunks: number }> {
  const expected = (await getCapture(client, captureId)).chunks;
  const ui = await connectUi(relay, client);
  try {
    ui.send({ type: 'watch_capture', captureId });
    const profile = emptyProfile();
    for (let seq = 0; seq < expected; seq++) {
      const m = await ui.nextOfType('capture_chunk', timeoutMs, (c) => c.captureId === captureId);
      assert.equal(m.seq, seq, 'stored chunks replay in seq order without holes');
      applyChunk(profile, m.chunk);
    }
    assert.deepEqual(ui.parseErrors, []);
    return { profile, chunks: expected };
  } finally {
    ui.close();
  }
}

/** The largest gap between consecutive (sorted) times, µs (0 with fewer than two). */
export function maxGapUs(times: number[]): { gapUs: number; atUs: number } {
  let gapUs = 0;
  let atUs = 0;
  for (let i = 1; i < times.length; i++) {
    const g = times[i]! - times[i - 1]!;
    if (g > gapUs) {
      gapUs = g;
      atUs = times[i - 1]!;
    }
  }
  return { gapUs, atUs };
}

export interface Loss {
  /** Samples the agent's sampler took (its terminal's "N samples"). */
  taken: number;
  /** Distinct sampling instants in the relay's store. */
  stored: number;
  /** taken - stored. */
  lost: number;
  /** Sample rows stored (one per thread per instant). */
  rows: number;
}

/**
 * Samples lost between the agent's sampler and the relay's store.
 *
 * The native sampler counts one sample per tick per process (native
 * sampler.cc: `++samples` after recording every thread of that tick, all
 * stamped with the same time), and the agent prints that count when the
 * capture ends ("… N samples in M chunks [capture ID]"). The relay's store
 * holds one row per thread per tick, each with its tick's time. So for a
 * single-process capture the number of distinct sample times in the store is
 * the number of ticks that reached the relay, and `taken - stored` is exactly
 * the number of ticks lost anywhere on the way: dropped in the sampler's own
 * buffer, lost in the agent, in transit, or by the relay. (Chunks are
 * validated against each other on the relay and on replay, so a hole in the
 * middle cannot hide behind a matching total either.)
 */
export function sampleLoss(profile: Profile, end: AgentEnd): Loss {
  const instants = new Set<number>();
  for (const t of profile.samples.timeUs) instants.add(t);
  return { taken: end.samples, stored: instants.size, lost: end.samples - instants.size, rows: profile.samples.stack.length };
}

/** Own (innermost-frame) sample counts per function name, non-idle samples only. */
export function ownByFunction(profile: Profile, includeIdle = false): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < profile.samples.stack.length; i++) {
    if (!includeIdle && (profile.samples.flags[i]! & 1) !== 0) continue;
    const stack = profile.samples.stack[i]!;
    if (stack < 0) continue;
    const name = profile.strings[profile.frames.name[profile.stacks.frame[stack]!]!]!;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  }
  return counts;
}

/** Function names ordered by own samples, most first. */
export function topByOwn(counts: Map<string, number>): [string, number][] {
  return [...counts.entries()].sort((a, b) => b[1] - a[1]);
}

// ---- a TCP proxy that can cut the line -------------------------------------------------

/**
 * A plain byte pipe 127.0.0.1:port → target port. cutFor(ms) resets every
 * connection through it and, for `ms`, accepts nothing (new connections are
 * reset at once), like a network partition with the relay still up.
 */
export class TcpProxy {
  readonly server: Server;
  port = 0;
  #targetPort: number;
  #sockets = new Set<Socket>();
  #downUntil = 0;
  /** Connections reset while down (the agent's reconnect attempts). */
  refused = 0;
  accepted = 0;

  constructor(targetPort: number) {
    this.#targetPort = targetPort;
    this.server = createServer((client) => {
      if (Date.now() < this.#downUntil) {
        this.refused++;
        client.resetAndDestroy();
        return;
      }
      this.accepted++;
      const upstream = tcpConnect(this.#targetPort, '127.0.0.1');
      this.#sockets.add(client);
      this.#sockets.add(upstream);
      const drop = () => {
        client.destroy();
        upstream.destroy();
        this.#sockets.delete(client);
        this.#sockets.delete(upstream);
      };
      client.on('error', drop);
      upstream.on('error', drop);
      client.on('close', drop);
      upstream.on('close', drop);
      client.pipe(upstream);
      upstream.pipe(client);
    });
  }

  async listen(t: TestContext): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
    t.after(() => this.close());
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get open(): number {
    return this.#sockets.size;
  }

  /** Resets every connection now and refuses new ones for `ms`. */
  cutFor(ms: number): void {
    this.#downUntil = Date.now() + ms;
    for (const s of this.#sockets) s.resetAndDestroy();
    this.#sockets.clear();
  }

  close(): void {
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
    this.server.close();
  }
}

// ---- processes -------------------------------------------------------------------------

/** Resident set size of a process, KiB (VmRSS in /proc/PID/status). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

export function log(...parts: unknown[]): void {
  console.log(`[e2e] ${parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ')}`);
}

// ---- one relay, one engineer, one session, one agent, one target -------------------------

export interface Setup {
  relay: RelayProcess;
  eng: Client;
  session: { id: string; code: string; joinToken: string; commands: Record<string, string> };
  target: Target;
  truth: { version: string; hot: string; cold: string; idle: string };
  agent: AgentProcess;
  agentId: string;
  /** Relay processes started by restartRelay, stopped at the end too. */
  relays: RelayProcess[];
}

export interface SetupOptions {
  relayEnv?: Record<string, string>;
  /** The address the agent dials (e.g. a TcpProxy's); default the relay's. */
  agentUrl?: (relay: RelayProcess) => Promise<string> | string;
  agentArgs?: string[];
  agentEnv?: NodeJS.ProcessEnv;
  targetArgs?: string[];
  python?: Python;
}

/** Starts a relay, signs in as admin, opens a session, runs top_hot.py and an agent offering it. */
export async function setup(t: TestContext, options: SetupOptions = {}): Promise<Setup> {
  const py = options.python ?? newestPython();
  assert.ok(py, 'no Python interpreter to test with');
  const target = await startTarget(py, 'top_hot.py', { t, args: options.targetArgs ?? ['120'] });
  const truth = await target.truth<Setup['truth']>();
  const relay = await startRelay({ env: { PERISCOPE_HEARTBEAT_SECONDS: '5', ...options.relayEnv } });
  const relays = [relay];
  t.after(async () => {
    for (const r of relays) await r.stop();
    removeDataDir(relay.dataDir);
  });
  const eng = await adminClient(relay);
  const session = await createSession(eng, t.name.slice(0, 100));
  const url = options.agentUrl ? await options.agentUrl(relay) : relay.url;
  const agent = new AgentProcess(t, url, session.joinToken, ['--pids', String(target.pid), ...(options.agentArgs ?? [])], options.agentEnv);
  const online = await onlineAgent(eng, session.id, [target.pid], () => agent.output, 20_000);
  return { relay, eng, session, target, truth, agent, agentId: online.id, relays };
}

/** Sampling instants (samples as the agent counts them) within a window of wall-clock time. */
export function samplesBetween(profile: Profile, fromMs: number, toMs: number): number {
  const start = profile.capture.startTimeUs;
  const instants = new Set<number>();
  for (const t of profile.samples.timeUs) {
    const wallMs = (start + t) / 1000;
    if (wallMs >= fromMs && wallMs < toMs) instants.add(t);
  }
  return instants.size;
}

/** The largest gap between consecutive sampling instants of the whole capture, ms. */
export function largestGapMs(profile: Profile): { gapMs: number; atMs: number } {
  const instants = [...new Set(profile.samples.timeUs)].sort((a, b) => a - b);
  const { gapUs, atUs } = maxGapUs(instants);
  return { gapMs: gapUs / 1000, atMs: (profile.capture.startTimeUs + atUs) / 1000 };
}
