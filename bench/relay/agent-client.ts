// A light agent for the relay benchmarks: the harness's AgentPeer
// (test/helpers/relay.ts: Authorization: Bearer <join token> → hello →
// welcome → list_processes → processes, framed by shared/protocol.ts) that
// streams `record` captures through the agent's own CaptureStream
// (agent/remote/capture-runner.ts: the same chunk cutting, seq numbering,
// encoding and ack bookkeeping as `periscope connect`). It stays specialised
// because thousands of them run in one generator process (bench/relay/swarm.ts)
// at ~3 chunks/s each: it queues no message (onMessage acts on each at once),
// sends the stream's pre-encoded frames itself, and times acks per seq.
//
// Instead of a native sampler it has a synthetic one (SyntheticSampler): a
// Python web app whose stacks are ~30 frames deep, sampled on a 10 ms grid
// (100 Hz) with wall-clock sample times, drained into the ProfileBuilder every
// 100 ms exactly like agent/capture.ts does (DRAIN_INTERVAL_MS = 100), so the
// stream cuts chunks at the same moments the real agent would.
import { WebSocket } from 'ws';
import type { CaptureSpec, RelayToAgent } from '../../shared/protocol.ts';
import { AgentPeer, agentSocket, helloMessage, type Closed } from '../../test/helpers/relay.ts';
import type { CaptureStatsWire } from '../../shared/capture-states.ts';
import { ProfileBuilder, type FrameInput } from '../../shared/profile/index.ts';
import { CaptureStream, ChunkBudget, DEFAULT_CHUNK_INTERVAL_MS, type ChunkSource } from '../../agent/remote/capture-runner.ts';
import type { EndReason } from '../../agent/capture.ts';
import { nowMs, wallMs } from './lib.ts';

/** agent/capture.ts DRAIN_INTERVAL_MS: how often the real agent moves samples from the native sampler into its profile. */
export const AGENT_DRAIN_INTERVAL_MS = 100;
/** What the real agent cuts at (agent/remote/capture-runner.ts). */
export const AGENT_CHUNK_INTERVAL_MS = DEFAULT_CHUNK_INTERVAL_MS;

// ---- a synthetic Python program -------------------------------------------------------

function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    // xorshift32
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

const BASE_LEAF_LAST: FrameInput[] = [
  { name: '<module>', file: '/app/manage.py', line: 22 },
  { name: 'main', file: '/app/manage.py', line: 18 },
  { name: 'run', file: '/usr/lib/python3.12/site-packages/gunicorn/app/base.py', line: 72 },
  { name: 'run', file: '/usr/lib/python3.12/site-packages/gunicorn/arbiter.py', line: 209 },
  { name: 'spawn_worker', file: '/usr/lib/python3.12/site-packages/gunicorn/arbiter.py', line: 589 },
  { name: 'init_process', file: '/usr/lib/python3.12/site-packages/gunicorn/workers/base.py', line: 142 },
  { name: 'run', file: '/usr/lib/python3.12/site-packages/gunicorn/workers/sync.py', line: 125 },
  { name: 'run_for_one', file: '/usr/lib/python3.12/site-packages/gunicorn/workers/sync.py', line: 69 },
  { name: 'accept', file: '/usr/lib/python3.12/site-packages/gunicorn/workers/sync.py', line: 32 },
  { name: 'handle', file: '/usr/lib/python3.12/site-packages/gunicorn/workers/sync.py', line: 135 },
  { name: 'handle_request', file: '/usr/lib/python3.12/site-packages/gunicorn/workers/sync.py', line: 178 },
  { name: '__call__', file: '/usr/lib/python3.12/site-packages/django/core/handlers/wsgi.py', line: 124 },
  { name: 'get_response', file: '/usr/lib/python3.12/site-packages/django/core/handlers/base.py', line: 140 },
  { name: 'inner', file: '/usr/lib/python3.12/site-packages/django/core/handlers/exception.py', line: 55 },
];

const ENDPOINTS = ['checkout', 'cart', 'search', 'product_detail', 'login', 'orders', 'recommendations', 'healthz'];
const LIB_FILES = [
  '/usr/lib/python3.12/site-packages/django/db/models/query.py',
  '/usr/lib/python3.12/site-packages/django/db/models/sql/compiler.py',
  '/usr/lib/python3.12/site-packages/django/template/base.py',
  '/usr/lib/python3.12/json/encoder.py',
  '/usr/lib/python3.12/site-packages/psycopg/cursor.py',
  '/usr/lib/python3.12/site-packages/requests/sessions.py',
  '/usr/lib/python3.12/site-packages/urllib3/connectionpool.py',
  '/usr/lib/python3.12/ssl.py',
  '/usr/lib/python3.12/socket.py',
  '/usr/lib/python3.12/site-packages/redis/client.py',
];
const LIB_FUNCS = ['__iter__', '_fetch_all', 'execute_sql', 'as_sql', 'render', '_render', 'iterencode', 'execute', 'send', 'urlopen', '_make_request', 'recv_into', 'read', 'get', 'parse_response', 'compile', 'resolve', '_get_val'];

/** Distinct stacks (innermost frame first), 26–33 frames deep, shared by every agent of a process. */
export function stackVariants(count = 400, seed = 12345): FrameInput[][] {
  const rnd = prng(seed);
  const out: FrameInput[][] = [];
  for (let v = 0; v < count; v++) {
    const endpoint = ENDPOINTS[Math.floor(rnd() ** 2 * ENDPOINTS.length)]!;
    const frames: FrameInput[] = [...BASE_LEAF_LAST];
    frames.push({ name: '_view_wrapper', file: '/usr/lib/python3.12/site-packages/django/views/decorators/csrf.py', line: 65 });
    frames.push({ name: endpoint, file: `/app/shop/views/${endpoint}.py`, line: 20 + Math.floor(rnd() * 4) * 7 });
    frames.push({ name: `${endpoint}_service`, file: `/app/shop/services/${endpoint}.py`, line: 40 + Math.floor(rnd() * 3) * 11 });
    const depth = 9 + Math.floor(rnd() * 8);
    for (let d = 0; d < depth; d++) {
      const file = LIB_FILES[Math.floor(rnd() * 3 + d * 1.3) % LIB_FILES.length]!;
      const name = LIB_FUNCS[Math.floor(rnd() * 3 + d * 2) % LIB_FUNCS.length]!;
      frames.push({ name, file, line: 100 + ((d * 37) % 400) + Math.floor(rnd() * 3) * 5 });
    }
    out.push(frames.reverse());
  }
  return out;
}

let sharedVariants: FrameInput[][] | undefined;

export interface SamplerOptions {
  rateHz: number;
  drainIntervalMs: number;
  seed: number;
}

/**
 * Stands in for agent/capture.ts's Capture: samples on a fixed grid (the
 * native sampler's), drained into a ProfileBuilder every drainIntervalMs.
 * Sample times are wall-clock (startTimeUs = Date.now() * 1000 at start, like
 * the real agent), so a viewer can compute how old each sample is.
 */
export class SyntheticSampler implements ChunkSource {
  readonly builder: ProfileBuilder;
  progress: { stats: CaptureStatsWire; lastError: { code: string; message: string } | null } = {
    stats: { samples: 0, late: 0, ticks: 0, errors: 0 },
    lastError: null,
  };
  readonly done: Promise<EndReason>;
  #resolveDone!: (r: EndReason) => void;
  #listeners: (() => void)[] = [];
  #timer: NodeJS.Timeout | undefined;
  #periodUs: number;
  #nextUs = 0;
  #thread: number;
  #rows = new Map<number, number>();
  #variant = 0;
  #rnd: () => number;
  #variants: FrameInput[][];
  #drainMs: number;
  #ended = false;

  constructor(options: SamplerOptions) {
    sharedVariants ??= stackVariants();
    this.#variants = sharedVariants;
    this.#rnd = prng(options.seed);
    this.#periodUs = 1e6 / options.rateHz;
    this.#drainMs = options.drainIntervalMs;
    const commandLine = 'gunicorn shop.wsgi:application --bind 0.0.0.0:8000 --workers 4';
    this.builder = new ProfileBuilder({ commandLine, rateHz: options.rateHz, startTimeUs: Date.now() * 1000 });
    this.builder.process(4242, { commandLine, pythonVersion: '3.12.1' });
    this.#thread = this.builder.thread(4242, 4242, 'MainThread');
    this.done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  onProgress(listener: () => void): void {
    this.#listeners.push(listener);
  }

  start(): void {
    this.#timer = setInterval(() => this.pump(), this.#drainMs);
  }

  stop(): Promise<EndReason> {
    if (!this.#ended) {
      this.#ended = true;
      clearInterval(this.#timer);
      this.pump(true);
      this.#resolveDone('stopped');
    }
    return this.done;
  }

  #stackRow(): number {
    // Code stays in a function for a while, then moves on; popular paths come up more often.
    if (this.#rnd() > 0.8) this.#variant = Math.floor(this.#rnd() ** 3 * this.#variants.length);
    let row = this.#rows.get(this.#variant);
    if (row === undefined) {
      row = this.builder.internStack(this.#variants[this.#variant]!);
      this.#rows.set(this.#variant, row);
    }
    return row;
  }

  pump(final = false): void {
    if (this.#ended && !final) return;
    const start = this.builder.profile.capture.startTimeUs;
    const elapsedUs = Date.now() * 1000 - start;
    const s = this.progress.stats;
    let samples = s.samples;
    while (this.#nextUs <= elapsedUs) {
      this.builder.addSampleOfStack(this.#thread, this.#stackRow(), this.#nextUs);
      this.#nextUs += this.#periodUs;
      samples++;
    }
    this.builder.updateCapture({ durationUs: Math.max(0, elapsedUs), lateSamples: 0 });
    this.progress = { stats: { samples, late: 0, ticks: samples, errors: 0 }, lastError: null };
    for (const l of this.#listeners) l();
  }
}

// ---- the agent ---------------------------------------------------------------------

export interface ChunkSent {
  captureId: string;
  seq: number;
  bytes: number;
  samples: number;
  /** nowMs() at send. */
  at: number;
}

export interface AgentOptions {
  wsUrl: string;
  token: string;
  host: string;
  /** For streams started by start_capture. */
  chunkIntervalMs?: number;
  drainIntervalMs?: number;
  seed?: number;
  /** Ping the relay like the real agent does (every 15 s); off by default. */
  pingIntervalMs?: number;
  onChunkSent?: (c: ChunkSent) => void;
  onAck?: (captureId: string, seq: number, lagMs: number) => void;
  onStreamStarted?: (captureId: string) => void;
}

export class LightAgent extends AgentPeer {
  readonly options: AgentOptions;
  agentId = '';
  readonly streams = new Map<string, CaptureStream>();
  readonly budget = new ChunkBudget();
  /** Per capture: nowMs() at send of each unacknowledged seq. */
  #inflight = new Map<string, Map<number, number>>();
  #flushScheduled = false;
  #pingTimer: NodeJS.Timeout | undefined;
  /** How the connection closed, once it has. */
  closedWith: Closed | undefined;
  errors: string[] = [];
  relayErrors = 0;
  chunksSent = 0;
  bytesSent = 0;
  acked = 0;
  #ready: { resolve: () => void; reject: (e: Error) => void } | undefined;

  /** Dials at once; connect() waits for the handshake. */
  constructor(options: AgentOptions) {
    super(agentSocket(options.wsUrl, options.token, { perMessageDeflate: false, followRedirects: false, maxPayload: 8 * 1024 * 1024 }));
    this.options = options;
    this.ws.on('error', (err) => {
      this.errors.push(err.message);
      this.#ready?.reject(err);
    });
    void this.closed.then((c) => {
      this.closedWith = c;
      clearInterval(this.#pingTimer);
      for (const s of this.streams.values()) void s.source.stop();
      this.#ready?.reject(new Error(`closed ${c.code} ${c.reason}`));
    });
  }

  /** Says hello, answers list_processes once; resolves when the relay has our process list. */
  connect(timeoutMs = 30_000): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`no welcome/list_processes within ${timeoutMs} ms`)), timeoutMs);
      const fail = (e: Error) => {
        clearTimeout(timer);
        this.#ready = undefined;
        this.ws.terminate();
        reject(e);
      };
      this.#ready = {
        resolve: () => {
          clearTimeout(timer);
          this.#ready = undefined;
          resolve();
        },
        reject: fail,
      };
      this.opened.then(
        () => this.send(helloMessage({ agentVersion: '0.1.0-bench', host: this.options.host, containerId: '' })),
        (err: Error) => this.#ready?.reject(err),
      );
    });
  }

  protected override onMessage(m: RelayToAgent): void {
    switch (m.type) {
      case 'welcome':
        this.agentId = m.agentId;
        if (this.options.pingIntervalMs) {
          const every = this.options.pingIntervalMs;
          // A random phase, as real agents connect at random moments.
          const first = setTimeout(() => {
            this.ws.ping();
            this.#pingTimer = setInterval(() => this.ws.ping(), every);
          }, Math.random() * every);
          this.#pingTimer = first;
        }
        return;
      case 'list_processes':
        this.send({ type: 'processes', processes: [{ pid: 4242, cmdline: 'gunicorn shop.wsgi:application --bind 0.0.0.0:8000 --workers 4', version: '3.12.1', user: 'app', threads: 4 }] });
        this.#ready?.resolve();
        return;
      case 'start_capture':
        return this.#start(m.captureId, m.spec);
      case 'stop_capture':
        this.streams.get(m.captureId)?.stop();
        return;
      case 'ack': {
        const stream = this.streams.get(m.captureId);
        const inflight = this.#inflight.get(m.captureId);
        if (inflight) {
          const t = nowMs();
          for (const [seq, at] of inflight) {
            if (seq >= m.nextSeq) continue;
            inflight.delete(seq);
            this.acked++;
            this.options.onAck?.(m.captureId, seq, t - at);
          }
        }
        stream?.ack(m.nextSeq);
        return;
      }
      case 'error':
        this.relayErrors++;
        this.errors.push(`relay error ${m.code}: ${m.message}`);
        return;
    }
  }

  #start(captureId: string, spec: CaptureSpec): void {
    if (this.streams.has(captureId)) return;
    const source = new SyntheticSampler({
      rateHz: spec.rate,
      drainIntervalMs: this.options.drainIntervalMs ?? AGENT_DRAIN_INTERVAL_MS,
      seed: (this.options.seed ?? 1) + this.streams.size * 7919,
    });
    const stream = new CaptureStream({
      captureId,
      spec,
      source,
      budget: this.budget,
      chunkIntervalMs: this.options.chunkIntervalMs ?? AGENT_CHUNK_INTERVAL_MS,
      onReady: () => this.#scheduleFlush(),
    });
    this.streams.set(captureId, stream);
    this.#inflight.set(captureId, new Map());
    stream.start();
    this.options.onStreamStarted?.(captureId);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /** Sends what the streams have ready, in order (like AgentSession.flush). */
  flush(): void {
    const ws = this.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    for (const [captureId, stream] of this.streams) {
      for (;;) {
        const seq = stream.sendSeq;
        const isChunk = seq < stream.cutCount;
        const frame = stream.nextFrame();
        if (!frame) break;
        ws.send(frame);
        if (isChunk) {
          const at = nowMs();
          this.chunksSent++;
          this.bytesSent += frame.byteLength;
          this.#inflight.get(captureId)?.set(seq, at);
          this.options.onChunkSent?.({ captureId, seq, bytes: frame.byteLength, samples: 0, at });
        }
      }
    }
  }

  /** Ends every stream (capture_ended follows its last chunk). */
  stopStreams(): void {
    for (const s of this.streams.values()) s.stop();
  }

  get unacked(): number {
    let n = 0;
    for (const m of this.#inflight.values()) n += m.size;
    return n;
  }

  override close(): void {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pingTimer);
    for (const s of this.streams.values()) void s.source.stop();
    this.ws.terminate();
  }
}

/** Wall-clock µs of a sample in a chunk as a viewer decodes it. */
export function sampleWallMs(startTimeUs: number, timeUs: number): number {
  return (startTimeUs + timeUs) / 1000;
}

export { wallMs };
