// Spawns bench/targets/bench_target.py (park or busy, N frames deep), reads
// its READY / RATE lines, and kills it (with its process group) when done or
// when the runner exits.
//
// Busy targets are started detached (the script forks, its parent exits) so
// that the process we profile is not our child: ptrace stops of a child are
// also reported to the parent's wait(), and Node's SIGCHLD handling (libuv
// calls waitpid on its children) can swallow the stop the native --blocking
// sampler is waiting for in waitpid(), hanging the sampler thread and with it
// Sampler.stop().
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Python } from '../../test/helpers/pythons.ts';
import { nowMs, sleep } from './stats.ts';

export const TARGET_SCRIPT = join(import.meta.dirname, '..', 'targets', 'bench_target.py');

/** One "RATE <seconds> <units>" report: the target's own clock and cumulative work units. */
export interface RateReport {
  /** When this runner read the line (performance.now(), ms). */
  arrivedMs: number;
  /** Target clock (seconds). */
  t: number;
  units: number;
  /** Target process CPU time (seconds). */
  cpu: number;
}

const live = new Set<BenchTarget>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const t of live) t.killNow();
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      for (const t of live) t.killNow();
      process.exit(130);
    });
  }
}

function targetEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };
  for (const key of Object.keys(env)) if (key.startsWith('PYTHON')) delete env[key];
  return env;
}

export class BenchTarget {
  readonly python: Python;
  readonly mode: 'park' | 'busy';
  readonly depth: number;
  readonly child: ChildProcess;
  /** The process to profile (differs from child.pid when detached). */
  pid: number;
  readonly detached: boolean;
  /** Frames the target reported on its READY line (its own count). */
  readyDepth = 0;
  exited = false;
  reports: RateReport[] = [];
  private stderr = '';
  private readyResolve!: () => void;
  private readyReject!: (e: Error) => void;
  private readonly ready: Promise<void>;

  constructor(python: Python, mode: 'park' | 'busy', depth: number, detach: boolean, lifetimeS = 300) {
    this.python = python;
    this.mode = mode;
    this.depth = depth;
    this.detached = detach;
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.child = spawn(python.exe, ['-B', '-E', '-s', '-u', TARGET_SCRIPT, mode, String(depth), String(lifetimeS), ...(detach ? ['detach'] : [])], {
      env: targetEnv(),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.child.pid === undefined) throw new Error(`could not start ${python.exe} ${TARGET_SCRIPT}`);
    this.pid = this.child.pid; // until READY names the detached target
    live.add(this);
    hookExit();
    this.child.stderr!.on('data', (b: Buffer) => {
      if (this.stderr.length < 16_384) this.stderr += b.toString('utf8');
    });
    this.child.on('exit', (code, signal) => {
      if (detach && code === 0) return; // the forking parent; the target lives on
      this.exited = true;
      this.readyReject(new Error(`target ${python.label} ${mode} exited (code ${code}, signal ${signal}): ${this.stderr.trim()}`));
    });
    // Every holder of the pipe (the detached target too) is gone.
    this.child.stdout!.on('close', () => {
      this.exited = true;
      this.readyReject(new Error(`target ${python.label} ${mode} closed its output: ${this.stderr.trim()}`));
    });
    this.child.on('error', (err) => this.readyReject(err));
    const lines = createInterface({ input: this.child.stdout! });
    lines.on('line', (line) => {
      const arrivedMs = nowMs();
      if (line.startsWith('RATE ')) {
        const [, t, units, cpu] = line.split(' ');
        this.reports.push({ arrivedMs, t: Number(t), units: Number(units), cpu: Number(cpu) });
        if (this.reports.length > 100_000) this.reports.splice(0, 50_000);
      } else if (line.startsWith('READY ')) {
        const [, depthText, pidText] = line.split(' ');
        this.readyDepth = Number(depthText);
        this.pid = Number(pidText);
        this.readyResolve();
      }
    });
  }

  /** Resolves once the target is at its depth (park: and blocked in its sleep). */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`target ${this.python.label} ${this.mode} not ready after ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([this.ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
    if (this.mode === 'park') {
      // READY is printed just before time.sleep(): wait until the thread is asleep.
      const deadline = nowMs() + 5_000;
      while (threadState(this.pid, this.pid) !== 'S' && nowMs() < deadline) await sleep(5);
    } else {
      // Let the first reports come in (and the interpreter warm up).
      await sleep(300);
    }
  }

  /**
   * Work rate over the reports that arrived in [fromMs, toMs], per second of
   * the target's wall clock and per second of its CPU time; NaN if fewer
   * than two reports.
   */
  rateBetween(fromMs: number, toMs: number): { wall: number; perCpu: number } {
    const inWindow = this.reports.filter((r) => r.arrivedMs >= fromMs && r.arrivedMs <= toMs);
    if (inWindow.length < 2) return { wall: Number.NaN, perCpu: Number.NaN };
    const a = inWindow[0];
    const b = inWindow[inWindow.length - 1];
    return { wall: (b.units - a.units) / (b.t - a.t), perCpu: (b.units - a.units) / (b.cpu - a.cpu) };
  }

  killNow(): void {
    // The target and (detached) its forking parent share the process group of the spawned child.
    for (const pid of [-this.child.pid!, this.pid]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    live.delete(this);
  }

  async kill(): Promise<void> {
    if (!this.exited) {
      const gone = new Promise<void>((resolve) => this.child.stdout!.once('close', () => resolve()));
      this.killNow();
      await Promise.race([gone, sleep(5_000)]);
    } else {
      this.killNow();
    }
  }
}

export async function startTarget(python: Python, mode: 'park' | 'busy', depth: number, detach = false): Promise<BenchTarget> {
  const t = new BenchTarget(python, mode, depth, detach);
  try {
    await t.waitReady();
  } catch (err) {
    await t.kill();
    throw err;
  }
  return t;
}

/** Scheduler state letter of one thread ("R", "S", ...), or "" if unreadable. */
export function threadState(pid: number, tid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '';
  } catch {
    return '';
  }
}

/** Scheduler counters of one thread: CPU time, run-queue wait, involuntary switches. */
export interface SchedCounters {
  cpuNs: number;
  waitNs: number;
  nvcsw: number;
}

export function schedCounters(pid: number, tid = pid): SchedCounters {
  const out: SchedCounters = { cpuNs: Number.NaN, waitNs: Number.NaN, nvcsw: Number.NaN };
  try {
    const [cpu, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    out.cpuNs = cpu;
    out.waitNs = wait;
  } catch {
    // schedstats unavailable
  }
  try {
    const m = /nonvoluntary_ctxt_switches:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
    if (m) out.nvcsw = Number(m[1]);
  } catch {
    // gone
  }
  return out;
}
