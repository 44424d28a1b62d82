// Platform baseline for benchmark 3: how precisely this machine wakes a
// sleeping thread at all. A bare Python loop (targets/timer_baseline.py)
// sleeps to absolute deadlines on the sampler's grid and counts late
// wake-ups by the sampler's rule, while a busy target spins on the other
// core (as in the max-rate benchmark). Once with the default timer slack
// (what the native sampler thread runs with) and once with 1 µs. It also
// reports the loop's CPU time per wake-up: the part of the sampler's
// "CPU per sample" that is sleeping and waking, not reading stacks.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Python } from '../test/helpers/pythons.ts';
import { LATE_LIMIT } from './maxrate.ts';
import { startTarget } from './lib/target.ts';

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, 'targets', 'timer_baseline.py');
const LADDER = [100, 1000, 2000, 5000, 10_000, 20_000, 50_000];

export interface TimerTrial {
  rate: number;
  lateFraction: number;
  meanUs: number;
  p99Us: number;
  /** Thread CPU time per wake-up of the bare loop (sleep + wake + a few µs of Python). */
  cpuPerWakeUs: number;
}

export interface TimerBaseline {
  python: string;
  slackNs: number | null;
  /** Highest ladder rate with < 1 % late wake-ups, 0 if none. */
  maxRate: number;
  trials: TimerTrial[];
}

async function trial(py: Python, rate: number, seconds: number, slackNs: number | null): Promise<TimerTrial> {
  const args = ['-E', '-s', SCRIPT, String(rate), String(seconds), ...(slackNs === null ? [] : [String(slackNs)])];
  const { stdout } = await run(py.exe, args, { timeout: 30_000 });
  const r = JSON.parse(stdout.trim()) as { lateFraction: number; meanUs: number; p99Us: number; cpuPerWakeUs: number };
  return { rate, lateFraction: r.lateFraction, meanUs: r.meanUs, p99Us: r.p99Us, cpuPerWakeUs: r.cpuPerWakeUs };
}

export async function benchTimer(py: Python, quick: boolean): Promise<TimerBaseline[]> {
  const seconds = quick ? 0.6 : 1;
  const busy = await startTarget(py, 'busy', 50, true);
  try {
    const out: TimerBaseline[] = [];
    for (const slackNs of [null, 1000]) {
      const trials: TimerTrial[] = [];
      let maxRate = 0;
      for (const rate of slackNs === null ? LADDER : LADDER.filter((r) => r >= 1000)) {
        const t = await trial(py, rate, seconds, slackNs);
        trials.push(t);
        if (!(t.lateFraction < LATE_LIMIT)) break;
        maxRate = rate;
      }
      out.push({ python: py.label, slackNs, maxRate, trials });
    }
    return out;
  } finally {
    await busy.kill();
  }
}
