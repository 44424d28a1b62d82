// The agent's side of a support session, independent of any one socket:
// what it tells the relay (hello, the process list, chunks, ends, dump
// results), what it does on the relay's requests (within the customer's
// bounds), and what it prints on the customer's terminal. RelayConnection
// feeds it messages and gives it a Link to write to while connected.
import { hostname, userInfo } from 'node:os';
import {
  encode,
  MAX_MESSAGE_BYTES,
  parseAgentMessage,
  ProtocolError,
  PROTOCOL_VERSION,
  type AgentToRelay,
  type CaptureSpec,
  type HelloMessage,
  type ProcessInfo,
  type RelayToAgent,
  type StartCaptureMessage,
  type WelcomeMessage,
} from '../../shared/protocol.ts';
import { isPeriscopeError } from '../../shared/errors.ts';
import { Capture } from '../capture.ts';
import { asyncDump, dump } from '../dump.ts';
import { AGENT_VERSION } from '../version.ts';
import { checkSpec, type AgentLimits } from './bounds.ts';
import { ChunkBudget, CaptureStream, type ChunkSource, type StreamEnd } from './capture-runner.ts';
import { DumpRateLimit, type DumpRateLimits } from './dump-rate.ts';
import { containerId } from './container-id.ts';
import { PythonProcessScanner } from './python-processes.ts';
import { ProcessLog } from './process-log.ts';
import { formatSeconds, sanitize, type TerminalLog } from './terminal-log.ts';
import { CAPTURE_MODE_INFO } from '../../shared/capture-states.ts';

/** Where the session writes while connected (a WebSocket, or a test double). */
export interface Link {
  send(frame: Uint8Array, done?: (err?: Error) => void): void;
  readonly bufferedAmount: number;
}

export interface SessionOptions {
  limits: AgentLimits;
  log: TerminalLog;
  bufferBytes?: number;
  maxPendingBytes?: number;
  chunkIntervalMs?: number;
  processRefreshMs?: number;
  /** Makes the capture for a start_capture; default: the native sampler (agent/capture.ts). */
  createSource?: (spec: CaptureSpec, durationS: number) => ChunkSource;
  scanner?: PythonProcessScanner;
  /** How often the relay may have this agent dump; default DEFAULT_DUMP_RATE (agent/remote/dump-rate.ts). */
  dumpRate?: DumpRateLimits;
}

/** Stop sending while the socket holds this much unsent data; resume as it drains. */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** An ended, delivered capture is still announced in hello this long, in case its end was lost in a drop. */
const LINGER_MS = 60_000;
const MAX_REMEMBERED_IDS = 4096;

function kindWord(kind: string): string {
  return kind === 'dump' ? 'a dump' : kind === 'top' ? 'a live top' : 'a recording';
}

function endWords(end: StreamEnd): string {
  switch (end.reason) {
    case 'duration':
      return 'its duration was reached';
    case 'stopped':
      return 'stopped';
    case 'target_exited':
      return 'the process exited';
    default:
      return `error: ${sanitize(`${end.error?.code ?? 'ERROR'}: ${end.error?.message ?? ''}`, 400)}`;
  }
}

/** The user this agent runs as, for the engineer's list (hello.user): a name, or the uid when it has none. */
function agentUser(): string {
  try {
    return userInfo().username.slice(0, 256);
  } catch {
    return typeof process.getuid === 'function' ? String(process.getuid()) : '';
  }
}

export class RemoteSession {
  readonly limits: AgentLimits;
  readonly budget: ChunkBudget;
  readonly scanner: PythonProcessScanner;
  #log: TerminalLog;
  #options: SessionOptions;
  #streams = new Map<string, CaptureStream>();
  #lingerTimers = new Map<string, NodeJS.Timeout>();
  /** Request ids seen, with the connection (welcome count) they came on. */
  #seenIds = new Map<string, number>();
  #generation = 0;
  #link: Link | undefined;
  #flushScheduled = false;
  #waitingForDrain = false;
  #lastSentProcesses = '';
  /** What the terminal says about the process list, coalesced (agent/remote/process-log.ts). */
  #processLog: ProcessLog;
  #processTimer: NodeJS.Timeout | undefined;
  #containerId = containerId();
  #closing = false;
  #changeListeners: (() => void)[] = [];
  #dumpRate: DumpRateLimit;

  constructor(options: SessionOptions) {
    this.#options = options;
    this.limits = options.limits;
    this.#log = options.log;
    this.budget = new ChunkBudget(options.bufferBytes);
    this.#dumpRate = new DumpRateLimit(options.dumpRate);
    this.budget.onRelease(() => {
      for (const s of this.#streams.values()) s.tick();
    });
    this.#processLog = new ProcessLog({ write: (line) => this.#log.line(line), restricted: options.limits.allowedPids !== undefined });
    this.scanner =
      options.scanner ??
      new PythonProcessScanner({
        allowedPids: options.limits.allowedPids,
        onSkipped: (p) => this.#processLog.skipped(p),
      });
  }

  // ---- connection lifecycle ---------------------------------------------

  hello(): HelloMessage {
    return {
      type: 'hello',
      protocol: PROTOCOL_VERSION,
      agentVersion: AGENT_VERSION,
      host: hostname().slice(0, 255),
      containerId: this.#containerId,
      arch: process.arch,
      user: agentUser(),
      captures: [...this.#streams.values()].filter((s) => !s.abandoned).map((s) => s.helloEntry()),
    };
  }

  /** The relay accepted us on `link`: resume captures, share the process list, send what is pending. */
  welcome(welcome: WelcomeMessage, link: Link): void {
    this.#link = link;
    this.#generation++;
    this.#waitingForDrain = false;
    const resume = new Map(welcome.resume.map((r) => [r.captureId, r.nextSeq]));
    for (const stream of [...this.#streams.values()]) {
      // An ended, delivered capture the relay no longer lists needs nothing more: say nothing.
      const lingering = stream.finished;
      const problem = stream.resume(resume.get(stream.captureId));
      if (problem && !(lingering && stream.abandoned)) this.#log.line(problem);
      if (stream.abandoned) this.#forget(stream.captureId);
      else if (resume.has(stream.captureId) && stream.cutCount > resume.get(stream.captureId)!) {
        this.#log.line(`resending ${stream.cutCount - resume.get(stream.captureId)!} chunks of capture ${stream.captureId} from chunk ${resume.get(stream.captureId)}`);
      }
    }
    this.#lastSentProcesses = '';
    this.#refreshProcesses(true);
    this.#processTimer ??= setInterval(() => this.#refreshProcesses(false), this.#options.processRefreshMs ?? 2000);
    this.#processTimer.unref?.();
    this.#scheduleFlush();
  }

  linkLost(): void {
    this.#link = undefined;
    for (const s of this.#streams.values()) s.linkLost();
    if (this.#processTimer) clearInterval(this.#processTimer);
    this.#processTimer = undefined;
  }

  get connected(): boolean {
    return this.#link !== undefined;
  }

  /** Streams by capture id (read-only use: tests, shutdown reports). */
  get streams(): ReadonlyMap<string, CaptureStream> {
    return this.#streams;
  }

  /** Called whenever a stream's state changes (chunk cut, end, ack). */
  onChange(listener: () => void): void {
    this.#changeListeners.push(listener);
  }

  // ---- incoming -----------------------------------------------------------

  /** One validated message from the relay; `raw` is the decoded frame before validation. */
  message(msg: RelayToAgent, raw: Record<string, unknown>): void {
    switch (msg.type) {
      case 'start_capture':
        this.#start(msg, raw.spec);
        break;
      case 'stop_capture': {
        const stream = this.#streams.get(msg.captureId);
        if (!stream) {
          if (!this.#seenIds.has(msg.captureId)) this.#send({ type: 'error', captureId: msg.captureId, code: 'UNKNOWN_CAPTURE', message: `this agent has no capture ${msg.captureId}` });
          break;
        }
        if (stream.running) {
          this.#log.line(`${sanitize(msg.requestedBy, 120)} stopped ${kindWord(stream.spec.kind)} of pid ${stream.spec.pid} [capture ${msg.captureId}]`);
          stream.stop();
        }
        break;
      }
      case 'ack': {
        const stream = this.#streams.get(msg.captureId);
        if (!stream) break; // an ack for a capture we already let go of
        const problem = stream.ack(msg.nextSeq);
        if (problem) this.#log.line(problem);
        this.#afterStreamChange(stream);
        break;
      }
      case 'list_processes':
        this.#lastSentProcesses = '';
        this.#refreshProcesses(true);
        break;
      case 'error':
        this.#log.line(`the relay reported an error${msg.captureId ? ` about capture ${msg.captureId}` : ''}: ${sanitize(`${msg.code}: ${msg.message}`, 400)}`);
        break;
      case 'welcome':
        // Handled by the connection; a second welcome on one connection is ignored.
        break;
    }
  }

  #start(msg: StartCaptureMessage, rawSpec: unknown): void {
    const { captureId, spec } = msg;
    // A capture that runs or holds data is never started twice. Any other
    // request is done once per connection: the relay repeats a request only
    // when its answer (a dump, a refusal) may have been lost in a drop.
    if (this.#streams.has(captureId) || this.#seenIds.get(captureId) === this.#generation) return;
    const tag = `[capture ${captureId}${this.#seenIds.has(captureId) ? ', asked again after a reconnect' : ''}]`;
    this.#remember(captureId);
    const who = sanitize(msg.requestedBy, 120);
    const running = [...this.#streams.values()].filter((s) => s.running).length;
    const bounds = checkSpec(spec, rawSpec, this.limits, running);
    if (!bounds.ok) {
      this.#log.line(`refused ${who}'s request for ${kindWord(spec.kind)} of pid ${spec.pid}: ${bounds.message} ${tag}`);
      this.#send({ type: 'error', captureId, code: bounds.code, message: bounds.message });
      return;
    }
    const visible = this.scanner.probe(spec.pid);
    if ('code' in visible) {
      this.#log.line(`cannot do ${who}'s request for ${kindWord(spec.kind)} of pid ${spec.pid}: ${visible.code}: ${sanitize(visible.message, 300)} ${tag}`);
      this.#send({ type: 'error', captureId, code: visible.code, message: visible.message });
      return;
    }
    const proc = visible.info;
    const target = `pid ${spec.pid} (${sanitize(proc.cmdline, 160)}, Python ${sanitize(proc.version, 20)})`;
    const extras = [spec.subprocesses ? 'with subprocesses' : '', spec.mode !== 'wall' ? `${spec.mode} mode (${CAPTURE_MODE_INFO[spec.mode].description})` : '', spec.blocking ? 'blocking (pauses the process at each sample)' : ''].filter(Boolean);
    if (spec.kind === 'dump') {
      const admission = this.#dumpRate.admit(spec.blocking);
      if (!admission.ok) {
        if (admission.print) {
          const earlier = admission.unprinted > 0 ? ` (${admission.unprinted} more dump requests were refused for this limit since the last such line)` : '';
          this.#log.line(`refused ${who}'s request for a dump of pid ${spec.pid}: ${admission.message}${earlier}; further refusals for the next ${formatSeconds(this.#dumpRate.limits.windowMs / 1000)} are counted, not printed ${tag}`);
        }
        this.#send({ type: 'error', captureId, code: admission.code, message: admission.message });
        return;
      }
      this.#log.line(`${who} asked for a dump of ${target}${extras.length ? `, ${extras.join(', ')}` : ''} ${tag}`);
      this.#dump(captureId, spec);
      return;
    }
    const how = bounds.capped ? `until stopped (at most ${formatSeconds(bounds.durationS)}, the --max-duration limit)` : `for ${formatSeconds(bounds.durationS)}`;
    this.#log.line(`${who} asked for ${kindWord(spec.kind)} of ${target} at ${spec.rate} Hz ${how}${extras.length ? `, ${extras.join(', ')}` : ''} ${tag}`);
    let source: ChunkSource;
    try {
      source = this.#options.createSource
        ? this.#options.createSource(spec, bounds.durationS)
        : new Capture({ pid: spec.pid, rate: spec.rate, duration: bounds.durationS, subprocesses: spec.subprocesses, blocking: spec.blocking, mode: spec.mode, retainSamples: false });
    } catch (err) {
      const code = isPeriscopeError(err) ? err.code : 'ERROR';
      const message = (err as Error)?.message ?? String(err);
      this.#log.line(`${kindWord(spec.kind)} of pid ${spec.pid} could not start: ${code}: ${sanitize(message, 300)} ${tag}`);
      this.#send({ type: 'error', captureId, code, message });
      return;
    }
    const stream = new CaptureStream({
      captureId,
      spec,
      source,
      budget: this.budget,
      chunkIntervalMs: this.#options.chunkIntervalMs,
      maxPendingBytes: this.#options.maxPendingBytes,
      onReady: () => this.#afterStreamChange(stream),
      onEnded: (end) =>
        this.#log.line(
          `${kindWord(spec.kind)} of pid ${spec.pid} ended (${endWords(end)}): ${source.progress.stats.samples} samples in ${end.chunks} chunks ${tag}`,
        ),
    });
    this.#streams.set(captureId, stream);
    stream.start();
  }

  #dump(captureId: string, spec: CaptureSpec): void {
    try {
      // asyncio tasks come along where the interpreter publishes them (3.14+); elsewhere a source says why not.
      const processes = dump(spec.pid, { blocking: spec.blocking, subprocesses: spec.subprocesses, asyncio: true });
      const threads = processes.flatMap((p) => p.threads);
      const { tasks, task_sources } = asyncDump(processes);
      const frame = encode({ type: 'dump_result', captureId, threads, asyncio: { tasks, task_sources } });
      if (frame.byteLength > MAX_MESSAGE_BYTES) {
        const message = `the dump of pid ${spec.pid} is ${frame.byteLength} bytes, more than a message may hold`;
        this.#log.line(`dump of pid ${spec.pid} not sent: ${message} [capture ${captureId}]`);
        this.#send({ type: 'error', captureId, code: 'RESULT_TOO_LARGE', message });
        return;
      }
      // The relay refuses a result outside the protocol's bounds by closing the
      // connection, and would ask for the dump again after the reconnect: check
      // with the relay's own parser, and say so instead.
      try {
        parseAgentMessage(frame);
      } catch (err) {
        if (!(err instanceof ProtocolError)) throw err;
        this.#log.line(`dump of pid ${spec.pid} not sent: ${sanitize(err.message, 300)} [capture ${captureId}]`);
        this.#send({ type: 'error', captureId, code: 'RESULT_INVALID', message: `the dump of pid ${spec.pid} is outside the protocol's bounds: ${err.message}` });
        return;
      }
      const sent = this.#sendFrame(frame);
      this.#log.line(`dump of pid ${spec.pid}: ${threads.length} threads in ${processes.length} process${processes.length === 1 ? '' : 'es'}${sent ? ' sent' : ' NOT sent (not connected)'} [capture ${captureId}]`);
    } catch (err) {
      const code = isPeriscopeError(err) ? err.code : 'ERROR';
      const message = (err as Error)?.message ?? String(err);
      this.#log.line(`dump of pid ${spec.pid} failed: ${code}: ${sanitize(message, 300)} [capture ${captureId}]`);
      this.#send({ type: 'error', captureId, code, message });
    }
  }

  // ---- outgoing -----------------------------------------------------------

  #send(message: AgentToRelay): boolean {
    return this.#sendFrame(encode(message));
  }

  #sendFrame(frame: Uint8Array): boolean {
    if (!this.#link) return false;
    this.#link.send(frame);
    return true;
  }

  #afterStreamChange(stream: CaptureStream): void {
    this.#scheduleFlush();
    if (stream.finished && !stream.abandoned && !this.#lingerTimers.has(stream.captureId)) {
      // Delivered and ended. Announced a while longer in hello, in case the
      // end was lost in a drop right after; then forgotten.
      const t = setTimeout(() => this.#forget(stream.captureId), this.#closing ? 0 : LINGER_MS);
      t.unref?.();
      this.#lingerTimers.set(stream.captureId, t);
    }
    for (const l of this.#changeListeners) l();
  }

  #forget(captureId: string): void {
    const t = this.#lingerTimers.get(captureId);
    if (t) clearTimeout(t);
    this.#lingerTimers.delete(captureId);
    this.#streams.delete(captureId);
    for (const l of this.#changeListeners) l();
  }

  #remember(captureId: string): void {
    this.#seenIds.delete(captureId);
    this.#seenIds.set(captureId, this.#generation);
    if (this.#seenIds.size > MAX_REMEMBERED_IDS) this.#seenIds.delete(this.#seenIds.keys().next().value!);
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => {
      this.#flushScheduled = false;
      this.flush();
    });
  }

  /** Sends what is pending, in seq order per capture, captures taking turns, while the socket keeps up. */
  flush(): void {
    const link = this.#link;
    if (!link) return;
    let progress = true;
    while (progress) {
      progress = false;
      for (const stream of this.#streams.values()) {
        if (link.bufferedAmount >= HIGH_WATER_BYTES) {
          if (!this.#waitingForDrain) {
            this.#waitingForDrain = true;
            this.#drainLater(link);
          }
          return;
        }
        const frame = stream.nextFrame();
        if (!frame) continue;
        link.send(frame);
        progress = true;
        if (stream.finished) this.#afterStreamChange(stream);
      }
    }
  }

  #drainLater(link: Link): void {
    const check = () => {
      if (this.#link !== link) return;
      if (link.bufferedAmount < HIGH_WATER_BYTES / 2) {
        this.#waitingForDrain = false;
        this.flush();
      } else {
        setTimeout(check, 20).unref?.();
      }
    };
    setTimeout(check, 20).unref?.();
  }

  #refreshProcesses(force: boolean): void {
    if (!this.#link) return;
    let list: ProcessInfo[];
    try {
      list = this.scanner.scan();
    } catch (err) {
      this.#log.line(`could not list processes: ${sanitize(String((err as Error)?.message ?? err), 200)}`);
      return;
    }
    // Every scan, changed or not: the terminal reports a list once it settles.
    this.#processLog.scanned(list);
    const text = JSON.stringify(list);
    if (!force && text === this.#lastSentProcesses) return;
    this.#lastSentProcesses = text;
    this.#send({ type: 'processes', processes: list });
  }

  // ---- shutdown -----------------------------------------------------------

  /**
   * Stops every capture and waits (at most `timeoutMs`) until their ends are
   * sent and their chunks acknowledged. Returns what could not be delivered.
   */
  async shutdown(timeoutMs: number, options: { byCustomer?: boolean } = {}): Promise<{ undelivered: { captureId: string; chunks: number }[] }> {
    this.#closing = true;
    // byCustomer (Ctrl-C): their ends say so, and the relay shows "ended by the customer".
    for (const s of this.#streams.values()) s.stop(options.byCustomer === true);
    const deadline = Date.now() + timeoutMs;
    // Connected: until everything is delivered. Not connected: until every capture has stopped sampling.
    const settled = () => [...this.#streams.values()].every((s) => s.abandoned || s.finished || (!this.#link && !s.running));
    while (Date.now() < deadline && !settled()) {
      await new Promise<void>((resolve) => setTimeout(resolve, 20));
    }
    if (this.#processTimer) clearInterval(this.#processTimer);
    this.#processTimer = undefined;
    for (const t of this.#lingerTimers.values()) clearTimeout(t);
    const undelivered = [...this.#streams.values()]
      .filter((s) => !s.abandoned && !s.finished)
      .map((s) => ({ captureId: s.captureId, chunks: s.cutCount - s.ackedSeq }));
    return { undelivered };
  }
}
