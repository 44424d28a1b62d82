// Benchmark 3: the highest sampling rate sustained with < 1 % late samples
// (late / ticks, as the native sampler counts them) on the busy target:
// a ladder of rates for ~1 s each up to the first failure, then a short
// geometric bisection between the last pass and the first failure. A rate
// that fails is tried once more (one stall of the virtual machine costs ~1 %
// at 1 kHz on its own); it passes if either try does. Every try is kept.
import type { Python } from '../test/helpers/pythons.ts';
import { runSampler } from './lib/sampler.ts';
import type { BenchTarget } from './lib/target.ts';

export const LATE_LIMIT = 0.01;
const LADDER = [1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000];

export interface RateTrial {
  rate: number;
  late: number;
  ticks: number;
  samples: number;
  errors: number;
  lateFraction: number;
  cpuPerSampleUs: number;
  walkPerSampleUs: number;
  pass: boolean;
}

export interface MaxRateResult {
  /** Highest passing rate, 0 if even the lowest failed. */
  maxRate: number;
  /** Lowest failing rate tried, null if every rate passed. */
  firstFail: number | null;
  trials: RateTrial[];
  targetHz: number | null;
  pass: boolean | null;
}

export function maxRateTargetHz(python: Python): number | null {
  const [major, minor] = python.version.split('.').map(Number);
  return major === 3 && minor >= 11 ? 10_000 : null;
}

export async function benchMaxRate(python: Python, target: BenchTarget, quick: boolean): Promise<MaxRateResult> {
  const seconds = quick ? 0.6 : 1;
  const trials: RateTrial[] = [];
  const once = async (rate: number): Promise<boolean> => {
    const r = await runSampler(target.pid, { rate }, seconds);
    const pass = r.stats.errors === 0 && r.stats.samples > 0 && r.lateFraction < LATE_LIMIT;
    trials.push({
      rate,
      late: r.stats.late,
      ticks: r.stats.ticks,
      samples: r.stats.samples,
      errors: r.stats.errors,
      lateFraction: r.lateFraction,
      cpuPerSampleUs: r.cpuPerSampleUs,
      walkPerSampleUs: r.walkPerSampleUs,
      pass,
    });
    return pass;
  };
  const trial = async (rate: number): Promise<boolean> => (await once(rate)) || (await once(rate));

  let best = 0;
  let firstFail: number | null = null;
  for (const rate of LADDER) {
    if (await trial(rate)) best = rate;
    else {
      firstFail = rate;
      break;
    }
  }
  if (firstFail !== null && best > 0) {
    let lo = best;
    let hi = firstFail;
    for (let step = 0; step < 2; step++) {
      const mid = Math.round(Math.sqrt(lo * hi) / 100) * 100;
      if (mid <= lo || mid >= hi) break;
      if (await trial(mid)) lo = mid;
      else hi = mid;
    }
    best = lo;
    firstFail = hi;
  }
  const targetHz = maxRateTargetHz(python);
  return { maxRate: best, firstFail, trials, targetHz, pass: targetHz === null ? null : best >= targetHz };
}
