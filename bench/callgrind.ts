// Benchmark 6: instructions per sample, counted by valgrind's callgrind in
// the sampler's own work (Sampler::sample_once and what it calls: reading
// the stacks, caching code objects, recording the sample), on the busy
// target. Instruction counts do not depend on what else the machine does,
// so one run judges a change; system-call time is not in them (see bench 2
// for CPU time).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchTarget } from './lib/target.ts';

const DRIVER = join(import.meta.dirname, 'lib', 'sampler-driver.ts');

export interface CallgrindResult {
  instructionsPerSample: number | null;
  samples: number;
  missing: string | null;
}

export function benchCallgrind(target: BenchTarget, quick: boolean): CallgrindResult {
  const seconds = quick ? 3 : 6;
  const which = spawnSync('sh', ['-c', 'command -v valgrind'], { encoding: 'utf8' });
  if (which.status !== 0) return { instructionsPerSample: null, samples: 0, missing: 'valgrind is not installed (apt-get install valgrind)' };
  const dir = mkdtempSync(join(tmpdir(), 'periscope-callgrind-'));
  try {
    const r = spawnSync(
      'valgrind',
      ['--tool=callgrind', `--callgrind-out-file=${join(dir, 'out')}`, '--toggle-collect=periscope::Sampler::sample_once*', process.execPath, DRIVER, String(target.pid), String(seconds), '1000'],
      { encoding: 'utf8', timeout: 300_000 },
    );
    const samples = Number(/samples (\d+)/.exec(r.stdout)?.[1] ?? 0);
    const collected = Number(/Collected : (\d+)/.exec(r.stderr)?.[1] ?? Number.NaN);
    if (r.status !== 0 || !samples || !Number.isFinite(collected)) {
      return { instructionsPerSample: null, samples, missing: `valgrind run failed (exit ${r.status}): ${r.stderr.trim().split('\n').at(-1)}` };
    }
    return { instructionsPerSample: collected / samples, samples, missing: null };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
