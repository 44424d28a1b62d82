// Runs ./bin/periscope from the repo root with a timeout, capturing stdout,
// stderr, the exit code and any signal; plus checks for the CLI's documented
// output shapes (`periscope dump --json` threads, `periscope: CODE: message`).
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const PERISCOPE = join(ROOT, 'bin', 'periscope');

export const ERROR_CODES = [
  'NO_SUCH_PROCESS',
  'NOT_PYTHON',
  'PERMISSION_DENIED',
  'UNSUPPORTED_VERSION',
  'PROCESS_EXITED',
  'BAD_ARGUMENT',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

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
    const child = spawn(argv[0]!, argv.slice(1), { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
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

export interface DumpFrame {
  name: string;
  filename: string;
  short_filename: string;
  line: number;
}

export interface DumpThread {
  pid: number;
  thread_id: number;
  os_thread_id: number;
  thread_name: string | null;
  active: boolean;
  owns_gil: boolean;
  frames: DumpFrame[];
}

function fail(message: string): never {
  throw new Error(message);
}

/** Parses `dump --json` stdout and checks every field's type; throws a precise message otherwise. */
export function parseDump(stdout: string): DumpThread[] {
  let data: unknown;
  try {
    data = JSON.parse(stdout);
  } catch (e) {
    fail(`stdout is not valid JSON (${(e as Error).message}): ${clip(stdout, 500)}`);
  }
  if (!Array.isArray(data)) fail(`expected a JSON list of threads, got ${typeof data}`);
  data.forEach((t: unknown, i: number) => {
    const where = `threads[${i}]`;
    if (typeof t !== 'object' || t === null) fail(`${where} is not an object`);
    const o = t as Record<string, unknown>;
    for (const key of ['pid', 'thread_id'] as const) {
      if (!Number.isSafeInteger(o[key]) || (o[key] as number) < 0) fail(`${where}.${key} is not a non-negative integer: ${JSON.stringify(o[key])}`);
    }
    // -1: a thread state not bound to an OS thread (yet), e.g. one that
    // threading.Thread.start() has created but whose thread has not run.
    if (!Number.isSafeInteger(o.os_thread_id) || (o.os_thread_id as number) < -1) {
      fail(`${where}.os_thread_id is not an integer >= -1: ${JSON.stringify(o.os_thread_id)}`);
    }
    if (o.thread_name !== null && typeof o.thread_name !== 'string') fail(`${where}.thread_name is not a string or null`);
    if (typeof o.active !== 'boolean') fail(`${where}.active is not a boolean`);
    if (typeof o.owns_gil !== 'boolean') fail(`${where}.owns_gil is not a boolean`);
    if (!Array.isArray(o.frames)) fail(`${where}.frames is not a list`);
    (o.frames as unknown[]).forEach((f: unknown, j: number) => {
      const fw = `${where}.frames[${j}]`;
      if (typeof f !== 'object' || f === null) fail(`${fw} is not an object`);
      const fo = f as Record<string, unknown>;
      if (typeof fo.name !== 'string') fail(`${fw}.name is not a string`);
      if (typeof fo.filename !== 'string') fail(`${fw}.filename is not a string`);
      if (typeof fo.short_filename !== 'string' || fo.short_filename === '') fail(`${fw}.short_filename is not a non-empty string`);
      if (!(fo.filename as string).endsWith(fo.short_filename as string)) {
        fail(`${fw}.short_filename ${JSON.stringify(fo.short_filename)} is not a suffix of filename ${JSON.stringify(fo.filename)}`);
      }
      if (!Number.isSafeInteger(fo.line)) fail(`${fw}.line is not an integer: ${JSON.stringify(fo.line)}`);
    });
  });
  return data as DumpThread[];
}
