// Background load: CPU used by everything on the machine other than this
// runner and its target, from /proc/stat and /proc/PID/stat (USER_HZ ticks).
// The figures are only meaningful when that is close to zero.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { nowMs, sleep } from './stats.ts';

const USER_HZ = 100;

function systemBusyTicks(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const [user, nice, system, , , irq, softirq, steal] = f;
  return user + nice + system + irq + softirq + (steal ?? 0);
}

function processTicks(pid: number | 'self'): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

export interface LoadReading {
  /** Cores busy machine-wide (0..cpus). */
  busyCores: number;
  /** Cores used by this runner (sampler thread included) and the watched pids. */
  ownCores: number;
  /** The rest: other people's work on this machine. */
  backgroundCores: number;
}

export class LoadMeter {
  private readonly pids: number[];
  private readonly t0 = nowMs();
  private readonly sys0 = systemBusyTicks();
  private readonly own0: number;

  constructor(pids: number[] = []) {
    this.pids = pids;
    this.own0 = this.ownTicks();
  }

  private ownTicks(): number {
    return processTicks('self') + this.pids.reduce((s, p) => s + processTicks(p), 0);
  }

  read(): LoadReading {
    const secs = (nowMs() - this.t0) / 1000;
    const busyCores = (systemBusyTicks() - this.sys0) / USER_HZ / secs;
    const ownCores = (this.ownTicks() - this.own0) / USER_HZ / secs;
    return { busyCores, ownCores, backgroundCores: Math.max(0, busyCores - ownCores) };
  }
}

/**
 * Waits (up to maxSeconds) for a 1 s window in which the rest of the machine
 * uses less than `threshold` cores. Returns the last background reading.
 */
export async function waitIdle(maxSeconds: number, threshold = 0.1): Promise<number> {
  const deadline = nowMs() + maxSeconds * 1000;
  for (;;) {
    const m = new LoadMeter();
    await sleep(1000);
    const bg = m.read().backgroundCores;
    if (bg < threshold || nowMs() >= deadline) return bg;
  }
}

export function cpuCount(): number {
  return cpus().length;
}
