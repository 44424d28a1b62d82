// Shared pieces of the relay benchmarks: a real relay process on loopback
// started by the test harness (test/helpers/relay.ts) with the bench's extras
// (its inspector, a raised open-files limit), /proc readers, small statistics
// and a plain-text table.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { WebSocket } from 'ws';
import { ROOT, removeDataDir, startRelay as startHarnessRelay, type RelayProcess as HarnessRelay } from '../../test/helpers/relay.ts';

export const HOST = '127.0.0.1';

// ---- time and statistics ------------------------------------------------------

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Monotonic milliseconds. */
export function nowMs(): number {
  return performance.now();
}

/** Wall-clock milliseconds with sub-millisecond resolution (same clock as Date.now()). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

export function quantile(values: number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function mean(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

export interface Dist {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function dist(values: number[]): Dist {
  return {
    n: values.length,
    p50: quantile(values, 0.5),
    p90: quantile(values, 0.9),
    p99: quantile(values, 0.99),
    max: values.length ? values.reduce((a, b) => Math.max(a, b), -Infinity) : Number.NaN,
    mean: mean(values),
  };
}

export function round(value: number, digits = 2): number | null {
  if (!Number.isFinite(value)) return null;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

export function roundDist(d: Dist, digits = 1): Record<string, number | null> {
  return { n: d.n, p50: round(d.p50, digits), p90: round(d.p90, digits), p99: round(d.p99, digits), max: round(d.max, digits), mean: round(d.mean, digits) };
}

export function fixed(value: number | null | undefined, digits: number): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
}

export function mib(bytes: number): string {
  return fixed(bytes / 1024 / 1024, 1);
}

export function renderTable(title: string, header: string[], rows: string[][], notes: string[] = []): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [title, line(header), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of rows) out.push(line(r));
  for (const n of notes) out.push(`  ${n}`);
  return out.join('\n');
}

// ---- /proc ------------------------------------------------------------------------

let clkTck: number | undefined;

/** USER_HZ: the unit of utime/stime in /proc/PID/stat. */
export function clockTicks(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** utime + stime of a process (all its threads), in seconds; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (Number(fields[11]) + Number(fields[12])) / clockTicks();
  } catch {
    return Number.NaN;
  }
}

/** Busy CPU seconds of the whole machine (all cores) from /proc/stat. */
export function machineBusySeconds(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / clockTicks();
}

/**
 * Seconds the process's main thread has waited on a run queue for a CPU
 * (/proc/PID/task/PID/schedstat, field 2): time it was ready but other
 * processes had the cores. NaN when unavailable.
 */
export function runQueueWaitSeconds(pid: number): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[1]) / 1e9;
  } catch {
    return Number.NaN;
  }
}

/**
 * utime+stime of a process, plus what its reaped children used (cutime+cstime),
 * plus the same for each live descendant, in seconds: the CPU of a server that
 * forks workers (PostgreSQL's postmaster and its backends). NaN when it is gone.
 */
export function processTreeCpuSeconds(root: number): number {
  const ticks = new Map<number, number>();
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // fields[1] is ppid (field 4); utime, stime, cutime, cstime are fields 14–17.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const pid = Number(name);
    const ppid = Number(f[1]);
    ticks.set(pid, Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]));
    const siblings = children.get(ppid);
    if (siblings) siblings.push(pid);
    else children.set(ppid, [pid]);
  }
  if (!ticks.has(root)) return Number.NaN;
  let total = 0;
  for (const stack = [root]; stack.length; ) {
    const pid = stack.pop()!;
    total += ticks.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total / clockTicks();
}

export interface MemStatus {
  rssBytes: number;
  hwmBytes: number;
  rssAnonBytes: number;
  threads: number;
}

export function memStatus(pid: number): MemStatus {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : Number.NaN;
  };
  const threads = Number(/^Threads:\s+(\d+)/m.exec(text)?.[1] ?? Number.NaN);
  return { rssBytes: kb('VmRSS'), hwmBytes: kb('VmHWM'), rssAnonBytes: kb('RssAnon'), threads };
}

/** VmRSS settles for a while after a burst of connections (V8 finishing what they left): the last of readings every 500 ms for `ms`. */
export async function settledRss(pid: number, ms: number): Promise<MemStatus> {
  const deadline = nowMs() + ms;
  let m = memStatus(pid);
  while (nowMs() < deadline) {
    await sleep(500);
    m = memStatus(pid);
  }
  return m;
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
}

/** Soft and hard RLIMIT_NOFILE as a child would get it. */
export function nofileLimits(): { soft: number; hard: number } {
  const read = (flag: string) => {
    try {
      const v = execFileSync('sh', ['-c', `ulimit ${flag}`], { encoding: 'utf8' }).trim();
      return v === 'unlimited' ? Number.POSITIVE_INFINITY : Number(v);
    } catch {
      return Number.NaN;
    }
  };
  return { soft: read('-Sn'), hard: read('-Hn') };
}

/**
 * `argv` run with the soft open-files limit raised to `wanted` (capped at
 * the hard limit; raising the hard limit needs CAP_SYS_RESOURCE, which
 * containers often drop even for root).
 */
export function withNofile(wanted: number, argv: string[]): string[] {
  const { soft, hard } = nofileLimits();
  const limit = Math.min(wanted, hard);
  if (!(limit > soft)) return argv;
  return ['sh', '-c', `ulimit -Sn ${limit} && exec "$@"`, 'sh', ...argv];
}

// ---- the relay process ---------------------------------------------------------------

export interface RelayProcess extends HarnessRelay {
  /** The relay's inspector (when started with inspect: true). */
  inspector: Inspector | undefined;
}

export interface RelayOptions {
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  env?: Record<string, string>;
  /** Open-files soft limit to ask for. */
  nofile?: number;
  /**
   * Start the relay with --inspect on loopback and attach to it: lets the
   * benchmark force a full GC, read process.memoryUsage() and profile a chosen
   * window. Nothing runs through it unless asked.
   */
  inspect?: boolean;
}

/** A relay for a benchmark; stop() (SIGTERM: it flushes, --cpu-prof writes its profile; SIGKILL after 15 s) also removes its data. */
export async function startRelay(options: RelayOptions = {}): Promise<RelayProcess> {
  // RELAY_BENCH_NODE_ARGS: extra flags for the relay's node, e.g. --perf-basic-prof to read it with `perf record -p PID`.
  const extra = (process.env.RELAY_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const relay = await startHarnessRelay({
    env: options.env,
    nodeArgs: [...(options.inspect ? [`--inspect=${HOST}:0`] : []), ...(options.nodeArgs ?? []), ...extra],
    launch: (argv) => withNofile(options.nofile ?? 0, argv),
    stopGraceMs: 15_000,
    keepOutput: 100_000,
  });
  let inspector: Inspector | undefined;
  if (options.inspect) {
    // Node's own line on stderr, printed before the relay starts.
    const m = /Debugger listening on (ws:\/\/\S+)/.exec(relay.output());
    if (!m) throw new Error(`relay started without its inspector:\n${relay.output()}`);
    inspector = await Inspector.connect(m[1]!);
  }
  return {
    ...relay,
    inspector,
    async stop() {
      inspector?.close();
      const code = await relay.stop();
      removeDataDir(relay.dataDir);
      return code;
    },
  };
}

// ---- the inspector (Chrome DevTools protocol) -----------------------------------------

export class Inspector {
  readonly #ws: WebSocket;
  #next = 1;
  #waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      if (m.id === undefined) return;
      const w = this.#waiting.get(m.id);
      if (!w) return;
      this.#waiting.delete(m.id);
      if (m.error) w.reject(new Error(m.error.message));
      else w.resolve(m.result);
    });
    ws.on('close', () => {
      for (const w of this.#waiting.values()) w.reject(new Error('inspector connection closed'));
      this.#waiting.clear();
    });
  }

  static async connect(url: string): Promise<Inspector> {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new Inspector(ws);
  }

  call<T = any>(method: string, params: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiting.delete(id);
        reject(new Error(`inspector: ${method} timed out`));
      }, timeoutMs);
      this.#waiting.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.#ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** A full, synchronous GC in the relay. */
  async gc(): Promise<void> {
    await this.call('HeapProfiler.collectGarbage');
  }

  /** The VmRSS of process `pid` (the inspected one) right after two full GCs: what live objects hold, garbage aside. */
  async rssAfterGc(pid: number): Promise<MemStatus> {
    await this.gc();
    await this.gc();
    await sleep(300);
    return memStatus(pid);
  }

  async memoryUsage(): Promise<NodeJS.MemoryUsage> {
    const r = await this.call<{ result: { value: string } }>('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    return JSON.parse(r.result.value) as NodeJS.MemoryUsage;
  }

  /** Starts an event-loop delay histogram inside the relay (perf_hooks.monitorEventLoopDelay, 2 ms resolution). */
  async startLoopDelay(): Promise<void> {
    await this.call('Runtime.evaluate', {
      expression:
        "globalThis.__periscopeBenchEld?.disable(); globalThis.__periscopeBenchEld = process.getBuiltinModule('node:perf_hooks').monitorEventLoopDelay({ resolution: 2 }); globalThis.__periscopeBenchEld.enable(); 1",
      returnByValue: true,
    });
  }

  /** Stops it; delays in ms (the histogram includes the 2 ms sampling resolution). */
  async stopLoopDelay(): Promise<{ p50: number; p99: number; max: number; n: number }> {
    const r = await this.call<{ result: { value: string } }>('Runtime.evaluate', {
      expression:
        '(() => { const h = globalThis.__periscopeBenchEld; h.disable(); delete globalThis.__periscopeBenchEld; return JSON.stringify({ p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, max: h.max / 1e6, n: h.count }); })()',
      returnByValue: true,
    });
    return JSON.parse(r.result.value);
  }

  async startProfiling(intervalUs = 1000): Promise<void> {
    await this.call('Profiler.enable');
    await this.call('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.call('Profiler.start');
  }

  async stopProfiling(): Promise<CpuProfile> {
    const r = await this.call<{ profile: CpuProfile }>('Profiler.stop', {}, 60_000);
    await this.call('Profiler.disable');
    return r.profile;
  }

  close(): void {
    this.#ws.terminate();
  }
}

// ---- CPU profile summary -----------------------------------------------------------

interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface ProfileSummary {
  /** Time on the main thread not idle. */
  totalMs: number;
  idleMs: number;
  gcMs: number;
  /** callers: for native frames and library code, the nearest caller in the project's own code. */
  top: { name: string; where: string; selfMs: number; share: number; callers: string[] }[];
  byFile: { file: string; selfMs: number; share: number }[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function and per file from a V8 CPU profile (a .cpuprofile's contents). */
export function summarizeCpuProfile(prof: CpuProfile, topN = 25): ProfileSummary {
  const selfUs = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i + 1] ?? 0;
    selfUs.set(prof.samples[i]!, (selfUs.get(prof.samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const parent = new Map<number, CpuProfileNode>();
  const byId = new Map<number, CpuProfileNode>();
  for (const node of prof.nodes) {
    byId.set(node.id, node);
    for (const c of node.children ?? []) parent.set(c, node);
  }
  const fileOf = (url: string) => url.replace(/^file:\/\//, '').replace(`${ROOT}/`, '');
  const own = (n: CpuProfileNode) => /^(relay|shared|agent)\//.test(fileOf(n.callFrame.url));
  /** The nearest ancestor in the project's own code (relay/, shared/, agent/), as name@file:line. */
  const ownCaller = (n: CpuProfileNode): string => {
    for (let p = parent.get(n.id); p; p = parent.get(p.id)) {
      if (own(p)) return `${p.callFrame.functionName || '(anonymous)'} ${fileOf(p.callFrame.url)}:${p.callFrame.lineNumber + 1}`;
    }
    return '(no project caller)';
  };
  const byFn = new Map<string, { name: string; where: string; us: number; callers: Map<string, number> }>();
  const byFile = new Map<string, number>();
  let total = 0;
  let idle = 0;
  let gc = 0;
  for (const node of prof.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const f = node.callFrame;
    if (f.functionName === '(idle)') {
      idle += us;
      continue;
    }
    total += us;
    if (f.functionName === '(garbage collector)') gc += us;
    const file = f.url ? fileOf(f.url) : `(${f.functionName || 'native'})`;
    const where = f.url ? `${file}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName}@${where}`;
    const e = byFn.get(key) ?? { name: f.functionName || '(anonymous)', where, us: 0, callers: new Map<string, number>() };
    e.us += us;
    if (!own(node) && !f.functionName.startsWith('(')) {
      const c = ownCaller(node);
      e.callers.set(c, (e.callers.get(c) ?? 0) + us);
    }
    byFn.set(key, e);
    byFile.set(file, (byFile.get(file) ?? 0) + us);
  }
  void byId;
  return {
    totalMs: total / 1000,
    idleMs: idle / 1000,
    gcMs: gc / 1000,
    top: [...byFn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((e) => ({
        name: e.name,
        where: e.where,
        selfMs: e.us / 1000,
        share: e.us / total,
        callers: [...e.callers.entries()].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([c, us]) => `${c} (${Math.round((us / e.us) * 100)}%)`),
      })),
    byFile: [...byFile.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([file, us]) => ({ file, selfMs: us / 1000, share: us / total })),
  };
}

// ---- machine load --------------------------------------------------------------------

/**
 * CPU used meanwhile by the processes we know (this one, the relay, the
 * generators) and by everything else on the machine ("background"): figures
 * taken while the background is busy are skewed, latency tails most.
 */
export class LoadMeter {
  readonly #pids: number[];
  readonly #cpu: (pid: number) => number;
  readonly #t0 = nowMs();
  readonly #busy0 = machineBusySeconds();
  readonly #own0: number;

  /** `cpu` reads one of `pids` (processTreeCpuSeconds to count servers' forked workers as ours). */
  constructor(pids: number[], cpu: (pid: number) => number = cpuSeconds) {
    this.#pids = pids;
    this.#cpu = cpu;
    this.#own0 = this.#own();
  }

  #own(): number {
    return cpuSeconds(process.pid) + this.#pids.reduce((s, p) => s + (this.#cpu(p) || 0), 0);
  }

  read(): { seconds: number; busyCores: number; ownCores: number; backgroundCores: number } {
    const seconds = (nowMs() - this.#t0) / 1000;
    const busyCores = (machineBusySeconds() - this.#busy0) / seconds;
    const ownCores = (this.#own() - this.#own0) / seconds;
    return { seconds, busyCores, ownCores, backgroundCores: Math.max(0, busyCores - ownCores) };
  }
}

/**
 * Waits (up to maxSeconds) for a 1 s window in which the machine is busy less
 * than `threshold` cores (nothing of ours is running then). Returns the last reading.
 */
export async function waitIdle(maxSeconds: number, threshold = 0.3): Promise<number> {
  const deadline = nowMs() + maxSeconds * 1000;
  for (;;) {
    const b0 = machineBusySeconds();
    const t0 = nowMs();
    await sleep(1000);
    const busy = (machineBusySeconds() - b0) / ((nowMs() - t0) / 1000);
    if (busy < threshold || nowMs() >= deadline) return busy;
  }
}
