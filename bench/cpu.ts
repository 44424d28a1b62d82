// Benchmark 2: sampler CPU per sample at 1 kHz on a thread busy 50 frames
// deep: samplerCpuUs / samples (the sampling thread's CPU, wake-ups
// included) and walkUs / samples (reading the stacks only).
import type { Python } from '../test/helpers/pythons.ts';
import { runSampler, type SamplerRun } from './lib/sampler.ts';
import type { BenchTarget } from './lib/target.ts';

export const CPU_RATE = 1000;

export interface CpuResult {
  run: SamplerRun;
  /** µs per sample the product aims for on this version, or null if none. */
  targetUs: number | null;
  pass: boolean | null;
}

export function cpuTargetUs(python: Python): number | null {
  const [major, minor] = python.version.split('.').map(Number);
  if (major !== 3) return null;
  if (minor >= 11) return 10;
  if (minor >= 8) return 25;
  return null;
}

export async function benchCpu(python: Python, target: BenchTarget, quick: boolean): Promise<CpuResult> {
  const run = await runSampler(target.pid, { rate: CPU_RATE }, quick ? 1 : 2);
  const targetUs = cpuTargetUs(python);
  return { run, targetUs, pass: targetUs === null ? null : run.cpuPerSampleUs <= targetUs };
}
