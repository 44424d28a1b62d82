// The capture engine shared by `record`, `top` and (later) remote captures:
// a native Sampler thread takes the samples; this side drains its batches
// into the shared profile model, from which every view and exporter reads.
import { ProfileBuilder, type FrameInput } from '../shared/profile/index.ts';
import { PeriscopeError } from '../shared/errors.ts';
import type { SamplingEndReason } from '../shared/capture-states.ts';
import { asPeriscopeError, loadNative, type NativeTargetInfo } from './native.ts';
import { type CaptureMode, DEFAULT_CAPTURE_MODE } from '../shared/capture-states.ts';
import { keptByMode } from '../shared/profile/sample-filter.ts';

export interface CaptureOptions {
  pid: number;
  /** Samples per second. */
  rate: number;
  /** Seconds; 0 or undefined runs until stop(). */
  duration?: number;
  subprocesses?: boolean;
  blocking?: boolean;
  ignoreSymbols?: boolean;
  /** false for streaming captures: samples leave memory once chunked. */
  retainSamples?: boolean;
  /** Which samples to keep (default wall: all). */
  mode?: CaptureMode;
}

export interface CaptureStats {
  samples: number;
  ticks: number;
  late: number;
  errors: number;
  dropped: number;
  samplerCpuUs: number;
  walkUs: number;
}

/** How sampling ended: the agent's end reasons of shared/capture-states.ts, less `refused`. */
export type EndReason = SamplingEndReason;

export interface CaptureProgress {
  stats: CaptureStats;
  lastError: { code: string; message: string } | null;
  processes: number;
}

interface SamplerBatch {
  codes: { id: number; name: string; filename: string; firstLine: number }[];
  threads: { pid: number; tid: number; ident: number; name: string }[];
  processes: { pid: number; event: 'attached' | 'exited'; cmdline: string; version: string }[];
  timeUs: Float64Array;
  pid: Int32Array;
  tid: Int32Array;
  flags: Uint8Array;
  nframes: Uint32Array;
  frames: Int32Array;
  stats: CaptureStats;
  lastError: { code: string; message: string } | null;
  ended: boolean;
  endReason: EndReason | null;
}

interface NativeSampler {
  start(): void;
  stop(): void;
  drain(): SamplerBatch;
  info(): NativeTargetInfo;
}

const FLAG_IDLE = 1;
const FLAG_GIL = 2;
const DRAIN_INTERVAL_MS = 100;

export class Capture {
  readonly options: CaptureOptions;
  readonly builder: ProfileBuilder;
  readonly target: NativeTargetInfo;
  #sampler: NativeSampler;
  #codes = new Map<number, { name: string; filename: string }>();
  /** (code id, line) -> frame row in the profile. */
  #frameRows = new Map<number, number>();
  #rows: number[] = [];
  #threadNames = new Map<string, string>();
  #liveProcesses = new Set<number>();
  #timer: NodeJS.Timeout | undefined;
  #ended: EndReason | undefined;
  #done: Promise<EndReason>;
  #resolveDone!: (reason: EndReason) => void;
  #listeners: ((p: CaptureProgress) => void)[] = [];
  #last: CaptureProgress = {
    stats: { samples: 0, ticks: 0, late: 0, errors: 0, dropped: 0, samplerCpuUs: 0, walkUs: 0 },
    lastError: null,
    processes: 0,
  };

  /** Attaches synchronously: reader errors (not Python, no permission, …) throw here. */
  constructor(options: CaptureOptions) {
    if (!(options.rate > 0 && options.rate <= 100_000)) {
      throw new PeriscopeError('BAD_ARGUMENT', `--rate must be between 1 and 100000 samples per second, got ${options.rate}`);
    }
    if (options.duration !== undefined && !(options.duration >= 0)) {
      throw new PeriscopeError('BAD_ARGUMENT', `--duration must be a positive number of seconds, got ${options.duration}`);
    }
    this.options = options;
    const { Sampler } = loadNative() as unknown as { Sampler: new (pid: number, o: object) => NativeSampler };
    try {
      this.#sampler = new Sampler(options.pid, {
        rate: options.rate,
        duration: options.duration ?? 0,
        subprocesses: options.subprocesses ?? false,
        blocking: options.blocking ?? false,
        ignoreSymbols: options.ignoreSymbols ?? false,
      });
    } catch (err) {
      throw asPeriscopeError(err);
    }
    this.target = this.#sampler.info();
    if (options.mode === 'gil' && !this.target.gilEnabled) {
      this.#sampler.stop();
      throw new PeriscopeError(
        'BAD_ARGUMENT',
        `Python ${this.target.version} is a free-threaded build running without a GIL: no thread ever holds one, so mode gil would keep no sample; use mode cpu`,
      );
    }
    this.builder = new ProfileBuilder(
      { commandLine: this.target.cmdline, rateHz: options.rate, startTimeUs: Date.now() * 1000 },
      { retainSamples: options.retainSamples ?? true },
    );
    this.#done = new Promise((resolve) => (this.#resolveDone = resolve));
  }

  start(): void {
    this.#sampler.start();
    this.#timer = setInterval(() => this.pump(), DRAIN_INTERVAL_MS);
  }

  /** Stops sampling; resolves once everything sampled is in the profile. */
  async stop(): Promise<EndReason> {
    if (!this.#ended) {
      this.#sampler.stop();
      this.pump();
    }
    return this.#done;
  }

  get done(): Promise<EndReason> {
    return this.#done;
  }

  get progress(): CaptureProgress {
    return this.#last;
  }

  onProgress(listener: (p: CaptureProgress) => void): void {
    this.#listeners.push(listener);
  }

  /** Moves everything the sampler has produced into the profile. */
  pump(): void {
    if (this.#ended) return;
    const batch = this.#sampler.drain();
    this.#ingest(batch);
    this.#last = { stats: batch.stats, lastError: batch.lastError, processes: this.#liveProcesses.size };
    this.builder.updateCapture({
      durationUs: Math.max(0, Date.now() * 1000 - this.builder.profile.capture.startTimeUs),
      lateSamples: batch.stats.late,
    });
    for (const l of this.#listeners) l(this.#last);
    if (batch.ended) {
      this.#ended = batch.endReason ?? 'stopped';
      clearInterval(this.#timer);
      this.#sampler.stop();
      if (batch.endReason === 'error' && batch.lastError) {
        this.builder.addError(`${batch.lastError.code}: ${batch.lastError.message}`, this.#nowUs());
      }
      this.#resolveDone(this.#ended);
    }
  }

  #nowUs(): number {
    return Date.now() * 1000 - this.builder.profile.capture.startTimeUs;
  }

  #ingest(b: SamplerBatch): void {
    for (const c of b.codes) this.#codes.set(c.id, { name: c.name, filename: c.filename });
    for (const p of b.processes) {
      if (p.event === 'attached') {
        this.#liveProcesses.add(p.pid);
        this.builder.process(p.pid, { commandLine: p.cmdline, pythonVersion: p.version });
      } else {
        this.#liveProcesses.delete(p.pid);
      }
    }
    for (const t of b.threads) if (t.name) this.#threadNames.set(`${t.pid}:${t.tid}`, t.name);
    const start = this.builder.profile.capture.startTimeUs;
    let f = 0;
    const rows = this.#rows;
    const mode = this.options.mode ?? DEFAULT_CAPTURE_MODE;
    for (let i = 0; i < b.timeUs.length; i++) {
      const pid = b.pid[i];
      const tid = b.tid[i];
      const n = b.nframes[i];
      if (!keptByMode(mode, b.flags[i])) {
        f += 2 * n;
        continue;
      }
      for (let k = 0; k < n; k++, f += 2) rows[k] = this.#frameRow(b.frames[f], b.frames[f + 1]);
      const thread = this.builder.thread(pid, Math.max(0, tid), this.#threadNames.get(`${pid}:${tid}`));
      const flags = b.flags[i];
      this.builder.addSampleOfStack(thread, this.builder.internStackRows(rows, n), b.timeUs[i] - start, {
        idle: (flags & FLAG_IDLE) !== 0,
        gil: (flags & FLAG_GIL) !== 0,
      });
    }
  }

  /** The profile's frame row for a sampled (code id, line), interned once per pair. */
  #frameRow(codeId: number, line: number): number {
    const key = codeId * 2 ** 31 + Math.max(0, line); // lines are int32; exact for 2^22 code ids
    let row = this.#frameRows.get(key);
    if (row === undefined) {
      const code = this.#codes.get(codeId);
      const input: FrameInput = code
        ? { name: code.name, file: code.filename, line: Math.max(0, line) }
        : { name: '<unknown>', file: '<unknown>', line: 0 };
      row = this.builder.internFrame(input);
      this.#frameRows.set(key, row);
    }
    return row;
  }
}
