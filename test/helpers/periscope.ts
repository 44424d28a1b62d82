// Runs ./bin/periscope from the repo root with a timeout, capturing stdout,
// stderr, the exit code and any signal; plus checks for the CLI's documented
// output shapes (`periscope dump --json` threads, `periscope: CODE: message`).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { type DumpThread, parseDumpThreads } from '../../shared/protocol.ts';

export const ROOT = join(import.meta.dirname, '..', '..');
export const PERISCOPE = join(ROOT, 'bin', 'periscope');

export interface RunResult {
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Prefix the command (e.g. ['setpriv', '--reuid=65534', ...,'--']). */
  wrapper?: string[];
  /** Variables added to this process's environment for the run. */
  env?: NodeJS.ProcessEnv;
}

const running = new Set<number>();
let hooked = false;

/** Runs `bin/periscope ...args`; never rejects (a failed spawn is reported as code null). */
export function runPeriscope(args: string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const argv = [...(options.wrapper ?? []), PERISCOPE, ...args];
  const started = Date.now();
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
  return new Promise((resolve) => {
    const env = options.env ? { ...process.env, ...options.env } : process.env;
    const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError = '';
    if (child.pid !== undefined) running.add(child.pid);
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid ?? 0), 'SIGKILL');
      } catch {
        // gone
      }
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      spawnError = `[spawn error] ${e.message}\n`;
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (child.pid !== undefined) running.delete(child.pid);
      resolve({
        args,
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: spawnError + Buffer.concat(err).toString('utf8'),
        timedOut,
        ms: Date.now() - started,
      });
    });
  });
}

function clip(text: string, max = 4000): string {
  return text.length > max ? `${text.slice(0, max)}\n... (${text.length - max} more chars)` : text;
}

/** A readable account of a run, for assertion messages. */
export function describeRun(r: RunResult): string {
  return [
    `periscope ${r.args.join(' ')}`,
    `  exit code ${r.code}, signal ${r.signal}${r.timedOut ? ' (TIMED OUT, killed)' : ''}, ${r.ms} ms`,
    `  --- stderr ---\n${clip(r.stderr)}`,
    `  --- stdout ---\n${clip(r.stdout)}`,
  ].join('\n');
}

/** The CODE of the first `periscope: CODE: message` line on stderr, if any. */
export function errorCode(stderr: string): string | undefined {
  return /^periscope: ([A-Z_]+): \S.*$/m.exec(stderr)?.[1];
}

function fail(message: string): never {
  throw new Error(message);
}

/**
 * Parses `dump --json` stdout with the protocol's own dump validator (the
 * shape the agent sends and the web shows), plus what only a local dump
 * promises: short_filename is a non-empty suffix of filename.
 */
export function parseDump(stdout: string): DumpThread[] {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch (e) {
    fail(`stdout is not valid JSON (${(e as Error).message}): ${clip(stdout, 500)}`);
  }
  const threads = parseDumpThreads(data, 'threads');
  threads.forEach((t, i) => {
    const raw = (data as Record<string, unknown>[])[i];
    // The validator reads a missing `truncated` as false (older agents); the CLI always prints it.
    if (typeof raw.truncated !== 'boolean') fail(`threads[${i}].truncated is not a boolean`);
    t.frames.forEach((f, j) => {
      const fw = `threads[${i}].frames[${j}]`;
      if (f.short_filename === '') fail(`${fw}.short_filename is empty`);
      if (!f.filename.endsWith(f.short_filename)) {
        fail(`${fw}.short_filename ${JSON.stringify(f.short_filename)} is not a suffix of filename ${JSON.stringify(f.filename)}`);
      }
    });
  });
  return threads;
}
