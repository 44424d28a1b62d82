// Helpers for `periscope record` tests: run the CLI while watching its stderr
// (to know when sampling starts, or to interrupt it), parse py-spy's collapsed
// stacks ("raw") strictly, and sum samples by leaf function / process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { PERISCOPE, ROOT, type RunResult } from './periscope.ts';

export interface RecordRun {
  child: ChildProcess;
  pid: number;
  /** Resolves (with Date.now()) when periscope prints "Sampling process ..." (just before it starts sampling). */
  started: Promise<number>;
  /** Resolves when the process has exited and its output is closed. */
  done: Promise<RunResult>;
  /** stderr so far. */
  stderr(): string;
  /** Resolves (with Date.now()) when stderr first matches `pattern`; rejects if the process exits first. */
  when(pattern: RegExp): Promise<number>;
}

const running = new Set<number>();
let hooked = false;

/**
 * Starts `bin/periscope ...args` in its own process group (killed with the
 * group on timeout and when this process exits). Never rejects.
 */
export function startRecord(args: string[], timeoutMs = 60_000): RecordRun {
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const pid of running) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    });
  }
  const startedAt = Date.now();
  const child = spawn(PERISCOPE, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = child.pid ?? -1;
  if (pid > 0) running.add(pid);
  const out: Buffer[] = [];
  let err = '';
  let spawnError = '';
  let timedOut = false;
  let resolveStarted!: (at: number) => void;
  let rejectStarted!: (e: Error) => void;
  const started = new Promise<number>((resolve, reject) => {
    resolveStarted = resolve;
    rejectStarted = reject;
  });
  // Callers that never await `started` must not see an unhandled rejection.
  started.catch(() => {});
  let sawStart = false;
  let closed = false;
  const watchers: { pattern: RegExp; resolve: (at: number) => void; reject: (e: Error) => void }[] = [];
  const check = (): void => {
    for (let i = watchers.length - 1; i >= 0; i--) {
      const w = watchers[i]!;
      if (w.pattern.test(err)) {
        watchers.splice(i, 1);
        w.resolve(Date.now());
      } else if (closed) {
        watchers.splice(i, 1);
        w.reject(new Error(`periscope exited without printing ${w.pattern}:\n${err}`));
      }
    }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }, timeoutMs);
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => {
    err += b.toString('utf8');
    if (!sawStart && /^Sampling process \d+/m.test(err)) {
      sawStart = true;
      resolveStarted(Date.now());
    }
    check();
  });
  child.on('error', (e) => {
    spawnError = `[spawn error] ${e.message}\n`;
  });
  const done = new Promise<RunResult>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(pid);
      closed = true;
      check();
      if (!sawStart) rejectStarted(new Error(`periscope exited (code ${code}, signal ${signal}) before it started sampling:\n${spawnError}${err}`));
      resolve({
        args,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: spawnError + err,
        timedOut,
        ms: Date.now() - startedAt,
      });
    });
  });
  const when = (pattern: RegExp): Promise<number> => {
    const p = new Promise<number>((resolve, reject) => watchers.push({ pattern, resolve, reject }));
    check();
    return p;
  };
  return { child, pid, started, done, stderr: () => err, when };
}

/** A fresh directory for output files, removed when the test ends. */
export function outputDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'periscope-record-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

// --- collapsed stacks ---------------------------------------------------------

export interface RawFrame {
  /** The whole text between ';'. */
  label: string;
  kind: 'process' | 'thread' | 'frame';
  /** Function name (frames), else the label. */
  name: string;
  file: string;
  line: number | null;
  /** Process root frames only. */
  pid?: number;
}

export interface RawStack {
  frames: RawFrame[];
  count: number;
}

const PROCESS_ROOT = /^process (\d+)(?:: "(.*)")?$/s;
const THREAD_ROOT = /^thread (?:\((.*)\) )?(\d+)$/s;
// `name (file:line)` or `name (file)`; the name itself may contain anything.
const FRAME = /^(.*) \((.*?)(?::(\d+))?\)$/s;

export function parseRawFrame(label: string): RawFrame {
  const p = PROCESS_ROOT.exec(label);
  if (p) return { label, kind: 'process', name: label, file: '', line: null, pid: Number(p[1]) };
  if (THREAD_ROOT.test(label)) return { label, kind: 'thread', name: label, file: '', line: null };
  const f = FRAME.exec(label);
  if (f) return { label, kind: 'frame', name: f[1]!, file: f[2]!, line: f[3] === undefined ? null : Number(f[3]) };
  return { label, kind: 'frame', name: label, file: '', line: null };
}

/** Parses `frame;frame;... COUNT` lines; throws with the offending line on anything else. */
export function parseRaw(text: string): RawStack[] {
  if (text === '') return [];
  if (!text.endsWith('\n')) throw new Error(`raw output does not end with a newline: ...${JSON.stringify(text.slice(-200))}`);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line, i) => {
      const m = /^(.+) ([1-9]\d*)$/s.exec(line);
      if (!m) throw new Error(`raw line ${i + 1} is not "stack COUNT": ${JSON.stringify(line.slice(0, 300))}`);
      const frames = m[1]!.split(';').map(parseRawFrame);
      if (frames.some((f) => f.label === '')) throw new Error(`raw line ${i + 1} has an empty frame: ${JSON.stringify(line.slice(0, 300))}`);
      return { frames, count: Number(m[2]) };
    });
}

export function totalSamples(stacks: RawStack[]): number {
  return stacks.reduce((n, s) => n + s.count, 0);
}

/** The innermost real frame of a stack (not a process/thread root). */
export function leafOf(stack: RawStack): RawFrame | undefined {
  const leaf = stack.frames.at(-1);
  return leaf && leaf.kind === 'frame' ? leaf : undefined;
}

/** Samples per innermost function name, over the stacks `keep` accepts. */
export function leafCounts(stacks: RawStack[], keep: (s: RawStack) => boolean = () => true): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of stacks) {
    if (!keep(s)) continue;
    const leaf = leafOf(s);
    if (!leaf) continue;
    counts.set(leaf.name, (counts.get(leaf.name) ?? 0) + s.count);
  }
  return counts;
}

/** The pid of a stack's `process PID: "..."` root frame, if it has one. */
export function processOf(stack: RawStack): number | undefined {
  return stack.frames[0]?.kind === 'process' ? stack.frames[0].pid : undefined;
}

/** Shares (0..1) of `names` among themselves. */
export function shares(counts: Map<string, number> | Record<string, number>, names: readonly string[]): Record<string, number> {
  const get = (n: string): number => (counts instanceof Map ? (counts.get(n) ?? 0) : (counts[n] ?? 0));
  const total = names.reduce((s, n) => s + get(n), 0);
  const out: Record<string, number> = {};
  for (const n of names) out[n] = total > 0 ? get(n) / total : NaN;
  return out;
}

export function pct(x: number): string {
  return `${(100 * x).toFixed(1)}%`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
