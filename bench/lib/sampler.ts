// Drives the native Sampler directly (the engine under agent/capture.ts),
// draining it every 100 ms like Capture does but discarding the samples, so
// the figures are the sampler's own cost and not the profile builder's.
import { loadNative } from '../../agent/native.ts';
import { nowMs, sleep } from './stats.ts';

import type { CaptureStats } from '../../agent/capture.ts';

export type SamplerStats = CaptureStats;

interface Batch {
  nframes: Uint32Array;
  stats: SamplerStats;
  lastError: { code: string; message: string } | null;
  ended: boolean;
  endReason: string | null;
}

interface NativeSampler {
  start(): void;
  stop(): void;
  drain(): Batch;
}

type SamplerCtor = new (
  pid: number,
  options: { rate: number; duration: number; subprocesses: boolean; blocking: boolean },
) => NativeSampler;

export interface SamplerOptions {
  rate: number;
  blocking?: boolean;
}

/** A running native sampler. */
export class RunningSampler {
  readonly options: SamplerOptions;
  readonly attachMs: number;
  readonly startedMs: number;
  frames = 0;
  framesSamples = 0;
  private readonly sampler: NativeSampler;
  private timer: NodeJS.Timeout;
  private last: Batch | undefined;

  constructor(pid: number, options: SamplerOptions) {
    this.options = options;
    const { Sampler } = loadNative() as unknown as { Sampler: SamplerCtor };
    const t0 = nowMs();
    this.sampler = new Sampler(pid, { rate: options.rate, duration: 0, subprocesses: false, blocking: options.blocking ?? false });
    this.attachMs = nowMs() - t0;
    this.sampler.start();
    this.startedMs = nowMs();
    this.timer = setInterval(() => this.pump(), 100);
  }

  private pump(): Batch {
    const b = this.sampler.drain();
    for (let i = 0; i < b.nframes.length; i++) this.frames += b.nframes[i];
    this.framesSamples += b.nframes.length;
    this.last = b;
    return b;
  }

  /** Stops the sampling thread and returns its final counters. */
  stop(): Batch {
    clearInterval(this.timer);
    this.sampler.stop();
    return this.pump();
  }

  get stats(): SamplerStats | undefined {
    return this.last?.stats;
  }
}

export interface SamplerRun {
  rate: number;
  blocking: boolean;
  seconds: number;
  stats: SamplerStats;
  lastError: string | null;
  /** Mean Python frames per recorded thread sample. */
  meanFrames: number;
  cpuPerSampleUs: number;
  walkPerSampleUs: number;
  lateFraction: number;
}

/** Samples pid for `seconds` and reports the sampler's counters. */
export async function runSampler(pid: number, options: SamplerOptions, seconds: number): Promise<SamplerRun> {
  const s = new RunningSampler(pid, options);
  await sleep(seconds * 1000);
  const b = s.stop();
  const st = b.stats;
  return {
    rate: options.rate,
    blocking: options.blocking ?? false,
    seconds: (nowMs() - s.startedMs) / 1000,
    stats: st,
    lastError: b.lastError ? `${b.lastError.code}: ${b.lastError.message}` : null,
    meanFrames: s.framesSamples ? s.frames / s.framesSamples : Number.NaN,
    cpuPerSampleUs: st.samples ? st.samplerCpuUs / st.samples : Number.NaN,
    walkPerSampleUs: st.samples ? st.walkUs / st.samples : Number.NaN,
    lateFraction: st.ticks ? st.late / st.ticks : Number.NaN,
  };
}
