// Benchmark 5: Periscope beside its peers on the same busy target (a thread
// 50 frames deep), in the same run, each as a whole program the way a user
// runs it:
//   - CPU per sample at 1 kHz: `periscope record` (Node start-up, sampling,
//     profile building and the file included), austin 3.7 (Debian sid's, where
//     it reads the version) and CPython 3.15's own `profiling.sampling`
//     (which reads only its own version). The tools take turns, so each sees
//     the same machine load; the CPU is the process tree's (shell `times`).
//   - highest rate: CPython's profiler asked for 100 kHz, samples per second
//     it achieved (the comparison for bench 3's highest sustained rate);
//   - a short `record` (1 s at 1 kHz) with and without Node's compile cache:
//     what start-up costs.
// A peer that cannot run here is printed as missing with the reason.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PYTHONS_CACHE, type Python } from '../test/helpers/pythons.ts';
import { median } from './lib/stats.ts';
import type { BenchTarget } from './lib/target.ts';

const ROOT = join(import.meta.dirname, '..');
const PERISCOPE = join(ROOT, 'bin', 'periscope');
export const AUSTIN = join(PYTHONS_CACHE, 'sid', 'usr', 'bin', 'austin');
export const PEER_RATE = 1000;

export interface ToolRun {
  /** CPU of the whole process tree, µs per sample. */
  cpuPerSampleUs: number;
  samples: number;
  cpuS: number;
}

export interface PeerFigure {
  runs: ToolRun[];
  /** Median over runs, µs per sample; null when missing. */
  cpuPerSampleUs: number | null;
  missing: string | null;
}

export interface PeersResult {
  seconds: number;
  periscope: PeerFigure;
  austin: PeerFigure;
  cpython: PeerFigure;
  /** CPython's profiler asked for 100 kHz: samples per second achieved; null when missing. */
  cpythonMaxRateHz: number | null;
  cpythonMaxRateMissing: string | null;
  /** CPU seconds of `periscope record -d 1` at 1 kHz, without and with Node's compile cache (warm). */
  shortRecordColdS: number | null;
  shortRecordWarmS: number | null;
}

/** Runs `argv` under sh and returns its children's user+sys CPU (from `times`) and output. */
function timed(argv: string[], env: NodeJS.ProcessEnv = process.env): { cpuS: number; status: number | null; stdout: string; stderr: string } {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('sh', ['-c', `${quoted} >"$OUT" 2>"$ERR"; s=$?; times; exit $s`], {
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...env, OUT: env.OUT, ERR: env.ERR },
  });
  const lines = r.stdout.trim().split('\n');
  const children = lines.at(-1)?.trim().split(/\s+/) ?? [];
  const secs = (t: string | undefined) => {
    const m = /^(\d+)m([\d.]+)s$/.exec(t ?? '');
    return m ? Number(m[1]) * 60 + Number(m[2]) : Number.NaN;
  };
  const read = (p: string | undefined) => (p && existsSync(p) ? readFileSync(p, 'utf8') : '');
  return { cpuS: secs(children[0]) + secs(children[1]), status: r.status, stdout: read(env.OUT), stderr: read(env.ERR) };
}

function minorOf(python: Python): number {
  return python.version.startsWith('3.') ? Number(python.version.split('.')[1]) : 0;
}

function figure(runs: ToolRun[], missing: string | null): PeerFigure {
  return { runs, missing, cpuPerSampleUs: missing || runs.length === 0 ? null : median(runs.map((r) => r.cpuPerSampleUs)) };
}

export async function benchPeers(python: Python, target: BenchTarget, quick: boolean): Promise<PeersResult> {
  const seconds = quick ? 5 : 20;
  const reps = quick ? 1 : 2;
  const dir = mkdtempSync(join(tmpdir(), 'periscope-peers-'));
  const io = { OUT: join(dir, 'out'), ERR: join(dir, 'err') };
  const env = { ...process.env, ...io };
  const pid = String(target.pid);
  const runs = { periscope: [] as ToolRun[], austin: [] as ToolRun[], cpython: [] as ToolRun[] };
  let austinMissing: string | null = existsSync(AUSTIN) ? null : `${AUSTIN} is missing (bash scripts/test-pythons/prepare.sh fetches it)`;
  let cpythonMissing: string | null = minorOf(python) >= 15 ? null : "CPython's profiler reads only its own version (3.15+)";
  let periscopeMissing: string | null = null;
  try {
    for (let rep = 0; rep < reps; rep++) {
      if (!periscopeMissing) {
        const out = join(dir, 'periscope.txt');
        const r = timed([PERISCOPE, 'record', '--pid', pid, '-r', String(PEER_RATE), '-d', String(seconds), '-f', 'raw', '-o', out], env);
        const n = Number(/Collected (\d+) samples/.exec(r.stderr)?.[1] ?? 0);
        if (r.status !== 0 || n === 0) periscopeMissing = `periscope record failed (exit ${r.status}): ${r.stderr.trim().slice(-600)}`;
        else runs.periscope.push({ cpuS: r.cpuS, samples: n, cpuPerSampleUs: (1e6 * r.cpuS) / n });
      }
      if (!austinMissing) {
        const out = join(dir, 'austin.txt');
        const r = timed([AUSTIN, '-i', String(Math.round(1e6 / PEER_RATE)), '-x', String(seconds), '-p', pid, '-o', out], env);
        const text = existsSync(out) ? readFileSync(out, 'utf8') : '';
        const n = text.split('\n').filter((l) => l.startsWith('P')).length;
        if (n === 0) austinMissing = `austin did not sample this version (exit ${r.status}): ${r.stderr.trim().split('\n').at(-1) ?? ''}`;
        else runs.austin.push({ cpuS: r.cpuS, samples: n, cpuPerSampleUs: (1e6 * r.cpuS) / n });
      }
      if (!cpythonMissing) {
        const out = join(dir, 'cpython.txt');
        const r = timed([python.exe, '-m', 'profiling.sampling', 'attach', '-r', String(PEER_RATE), '-d', String(seconds), '--collapsed', '-o', out, pid], env);
        const n = Number(/Captured (\d+) samples/.exec(r.stdout + r.stderr)?.[1] ?? 0);
        if (r.status !== 0 || n === 0) cpythonMissing = `python -m profiling.sampling failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').at(-1)}`;
        else runs.cpython.push({ cpuS: r.cpuS, samples: n, cpuPerSampleUs: (1e6 * r.cpuS) / n });
      }
    }

    // CPython's highest rate: asked for 100 kHz, it samples as fast as it can.
    let cpythonMaxRateHz: number | null = null;
    let cpythonMaxRateMissing = cpythonMissing;
    if (!cpythonMissing) {
      const maxSeconds = quick ? 2 : 5;
      const r = timed([python.exe, '-m', 'profiling.sampling', 'attach', '-r', '100000', '-d', String(maxSeconds), '--collapsed', '-o', join(dir, 'max.txt'), pid], env);
      const n = Number(/Captured (\d+) samples/.exec(r.stdout + r.stderr)?.[1] ?? 0);
      if (n > 0) cpythonMaxRateHz = n / maxSeconds;
      else cpythonMaxRateMissing = `asked for 100 kHz it failed (exit ${r.status})`;
    }

    // A short record, start-up included: a fresh compile cache, then warm.
    const cache = join(dir, 'compile-cache');
    const short = () => timed([PERISCOPE, 'record', '--pid', pid, '-r', String(PEER_RATE), '-d', '1', '-f', 'raw', '-o', join(dir, 'short.txt')], { ...env, NODE_COMPILE_CACHE: cache });
    const cold = short();
    const warm = short();
    return {
      seconds,
      periscope: figure(runs.periscope, periscopeMissing),
      austin: figure(runs.austin, austinMissing),
      cpython: figure(runs.cpython, cpythonMissing),
      cpythonMaxRateHz,
      cpythonMaxRateMissing,
      shortRecordColdS: cold.status === 0 ? cold.cpuS : null,
      shortRecordWarmS: warm.status === 0 ? warm.cpuS : null,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
