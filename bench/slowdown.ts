// Benchmark 4: how much profiling slows the target down. The busy target
// counts fixed units of work at depth 50 and reports its cumulative count,
// with its own wall and CPU clocks, every 50 ms. We compare its work rate
// while unprofiled ("off") with its rate while a native Sampler runs, at
// 100 Hz and 1 kHz, non-blocking and blocking.
//
// Phases alternate off/on/off/on…, so every "on" phase has an "off" phase on
// either side: slowdown = 1 - on / mean(offs around it), which cancels slow
// drift (host load, frequency). The same estimator applied to an off phase
// against its two off neighbours is a placebo: its spread is the per-phase
// noise, and noise / sqrt(n) the standard error of a mean over n on phases.
// The headline configuration (100 Hz, non-blocking) gets three phases per
// round, the others one; rounds rotate the order of the others.
import type { Python } from '../test/helpers/pythons.ts';
import { LoadMeter } from './lib/load.ts';
import { RunningSampler, type SamplerStats } from './lib/sampler.ts';
import { max, mean, median, min, nowMs, sleep } from './lib/stats.ts';
import { type BenchTarget, schedCounters } from './lib/target.ts';

export interface SlowdownConfig {
  key: string;
  rate: number;
  blocking: boolean;
}

export const CONFIGS: SlowdownConfig[] = [
  { key: '100Hz', rate: 100, blocking: false },
  { key: '1kHz', rate: 1000, blocking: false },
  { key: '100Hz-blocking', rate: 100, blocking: true },
  { key: '1kHz-blocking', rate: 1000, blocking: true },
];

/** The product's goal: < 0.5 % slowdown at 100 Hz, non-blocking. */
export const SLOWDOWN_TARGET = 0.005;

interface Phase {
  config: SlowdownConfig | null;
  /** Work units per second of wall time. */
  rate: number;
  /** Work units per second of the target's CPU time. */
  cpuRate: number;
  /** Target main thread: CPU share of the window, run-queue wait (µs per s), involuntary switches per s. */
  cpuShare: number;
  waitUsPerS: number;
  nvcswPerS: number;
  sampler: SamplerStats | null;
  /** Cores used by the rest of the machine during the window. */
  backgroundCores: number;
}

/** Slowdown estimates (fractions; positive = slower while profiled) of one configuration. */
export interface Estimate {
  values: number[];
  mean: number;
  median: number;
  min: number;
  max: number;
  /** Standard error of the mean: per-phase placebo noise / sqrt(n). */
  se: number;
}

export interface ConfigSlowdown {
  key: string;
  rate: number;
  blocking: boolean;
  /** From the wall-clock work rate: what a user of the target sees. */
  wall: Estimate;
  /** From work per CPU second of the target: interference only (not waiting for a core, not pauses). */
  perCpu: Estimate;
  /** Medians over the on phases of the sampler's late fraction and CPU per sample. */
  lateFraction: number;
  cpuPerSampleUs: number;
  errors: number;
  waitUsPerS: number;
  nvcswPerS: number;
}

export interface SlowdownResult {
  /** Median unprofiled work rate (units / s) and per CPU second. */
  offRate: number;
  offCpuRate: number;
  /** Standard deviation of the placebo estimator (off vs its off neighbours): the per-phase noise. */
  noise: number;
  noisePerCpu: number;
  offWaitUsPerS: number;
  offNvcswPerS: number;
  offCpuShare: number;
  /** Median over all phases of the cores used by the rest of the machine. */
  backgroundCores: number;
  configs: ConfigSlowdown[];
  phaseSeconds: number;
  rounds: number;
  /** 100 Hz non-blocking: mean + 2 SE < target → true, mean - 2 SE > target → false, else by the mean. */
  pass: boolean | null;
  /** False when mean ± 2 SE straddles the target: the run cannot tell. */
  resolved: boolean;
}

function stdev(values: number[]): number {
  if (values.length < 2) return Number.NaN;
  const m = mean(values);
  return Math.sqrt(values.reduce((s, v) => s + (v - m) ** 2, 0) / (values.length - 1));
}

export async function benchSlowdown(_python: Python, target: BenchTarget, quick: boolean, roundsWanted?: number): Promise<SlowdownResult> {
  const rounds = roundsWanted ?? (quick ? 2 : 3);
  const settleMs = 150;
  const measureMs = quick ? 500 : 800;
  const [headline, ...others] = CONFIGS;

  const plan: (SlowdownConfig | null)[] = [];
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < others.length; i++) plan.push(null, headline, null, others[(i + r) % others.length]);
  }
  plan.push(null);

  const phases: Phase[] = [];
  for (const config of plan) {
    const sampler = config ? new RunningSampler(target.pid, { rate: config.rate, blocking: config.blocking }) : null;
    await sleep(settleMs);
    const from = nowMs();
    const c0 = schedCounters(target.pid);
    const load = new LoadMeter([target.pid]);
    await sleep(measureMs);
    const c1 = schedCounters(target.pid);
    const backgroundCores = load.read().backgroundCores;
    const to = nowMs();
    const stats = sampler ? sampler.stop() : null;
    const secs = (to - from) / 1000;
    const rates = target.rateBetween(from, to);
    phases.push({
      config,
      rate: rates.wall,
      cpuRate: rates.perCpu,
      cpuShare: (c1.cpuNs - c0.cpuNs) / 1e9 / secs,
      waitUsPerS: (c1.waitNs - c0.waitNs) / 1e3 / secs,
      nvcswPerS: (c1.nvcsw - c0.nvcsw) / secs,
      sampler: stats ? stats.stats : null,
      backgroundCores,
    });
    if (target.exited) throw new Error('busy target exited during the slowdown benchmark');
    if (sampler) await sleep(100);
  }

  const offIdx = phases.map((p, i) => (p.config ? -1 : i)).filter((i) => i >= 0);
  const offs = offIdx.map((i) => phases[i]);
  const slowdownAt = (i: number, around: [number, number], metric: (p: Phase) => number): number =>
    1 - metric(phases[i]) / ((metric(phases[around[0]]) + metric(phases[around[1]])) / 2);
  const placebo = (metric: (p: Phase) => number): number[] => {
    const out: number[] = [];
    for (let k = 1; k + 1 < offIdx.length; k++) out.push(slowdownAt(offIdx[k], [offIdx[k - 1], offIdx[k + 1]], metric));
    return out.filter(Number.isFinite);
  };
  const wallMetric = (p: Phase) => p.rate;
  const cpuMetric = (p: Phase) => p.cpuRate;
  const noise = stdev(placebo(wallMetric));
  const noisePerCpu = stdev(placebo(cpuMetric));
  // A phase without two rate reports (the target starved) has no rate: leave it out.
  const estimate = (all: number[], sd: number): Estimate => {
    const values = all.filter(Number.isFinite);
    return {
      values,
      mean: mean(values),
      median: median(values),
      min: min(values),
      max: max(values),
      se: sd / Math.sqrt(values.length),
    };
  };

  const configs: ConfigSlowdown[] = CONFIGS.map((c) => {
    const wall: number[] = [];
    const perCpu: number[] = [];
    const late: number[] = [];
    const cpu: number[] = [];
    const wait: number[] = [];
    const nvcsw: number[] = [];
    let errors = 0;
    phases.forEach((p, i) => {
      if (p.config !== c) return;
      wall.push(slowdownAt(i, [i - 1, i + 1], wallMetric));
      perCpu.push(slowdownAt(i, [i - 1, i + 1], cpuMetric));
      wait.push(p.waitUsPerS);
      nvcsw.push(p.nvcswPerS);
      if (p.sampler) {
        late.push(p.sampler.ticks ? p.sampler.late / p.sampler.ticks : Number.NaN);
        cpu.push(p.sampler.samples ? p.sampler.samplerCpuUs / p.sampler.samples : Number.NaN);
        errors += p.sampler.errors;
      }
    });
    return {
      key: c.key,
      rate: c.rate,
      blocking: c.blocking,
      wall: estimate(wall, noise),
      perCpu: estimate(perCpu, noisePerCpu),
      lateFraction: median(late),
      cpuPerSampleUs: median(cpu),
      errors,
      waitUsPerS: median(wait),
      nvcswPerS: median(nvcsw),
    };
  });

  const h = configs[0].wall;
  const hi = h.mean + 2 * h.se;
  const lo = h.mean - 2 * h.se;
  const resolved = Number.isFinite(hi) && (hi < SLOWDOWN_TARGET || lo > SLOWDOWN_TARGET);
  return {
    offRate: median(offs.map(wallMetric).filter(Number.isFinite)),
    offCpuRate: median(offs.map(cpuMetric).filter(Number.isFinite)),
    noise,
    noisePerCpu,
    offWaitUsPerS: median(offs.map((p) => p.waitUsPerS)),
    offNvcswPerS: median(offs.map((p) => p.nvcswPerS)),
    offCpuShare: median(offs.map((p) => p.cpuShare)),
    backgroundCores: median(phases.map((p) => p.backgroundCores)),
    configs,
    phaseSeconds: measureMs / 1000,
    rounds,
    pass: Number.isFinite(h.mean) ? (resolved ? hi < SLOWDOWN_TARGET : h.mean < SLOWDOWN_TARGET) : null,
    resolved,
  };
}
