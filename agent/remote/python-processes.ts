// The Python processes this agent can see (its own pid namespace's /proc),
// as the relay shows them to the engineer: pid, command line, Python
// version, user, thread count, parent pid and start time (for the tree and
// for grouping short-lived children).
//
// Cheap first, exact second: a process is a candidate when its executable's
// name starts with "python" or it maps a libpython (uwsgi, embedded
// interpreters); a candidate is listed only if the native reader attaches and
// reads its version -- the same check a capture would make. What we learn
// about a pid is cached under (pid, start time), so a long-running service
// is attached once, not every 2 s, and a recycled pid is looked at afresh.
// Processes the reader cannot read (no permission, unsupported version) are
// left out of the list and reported once through onSkipped.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename } from 'node:path';
import type { ProcessInfo } from '../../shared/protocol.ts';
import { isPeriscopeError } from '../../shared/errors.ts';
import { attach } from '../native.ts';

const RETRY_FAILED_MS = 10_000;
const MAX_CMDLINE = 8192;
/** /proc counts start times in USER_HZ ticks, which Linux fixes at 100 per second for /proc whatever the kernel's HZ. */
const TICKS_PER_SECOND = 100;

interface Known {
  startTime: string;
  python: boolean;
  version?: string;
  /** For a candidate that failed to attach: when to try again. */
  retryAt?: number;
  reported?: boolean;
  /** Why the latest attach failed (not for NOT_PYTHON / NO_SUCH_PROCESS). */
  failure?: { code: string; message: string };
}

export interface SkippedProcess {
  pid: number;
  cmdline: string;
  code: string;
  message: string;
}

export interface ScannerOptions {
  /** Only these pids are ever listed (the customer's --pids). */
  allowedPids?: ReadonlySet<number>;
  /** Reads the interpreter version; default attaches with the native reader. */
  pythonVersion?: (pid: number) => string;
  /** Called once per process that looks like Python but cannot be read. */
  onSkipped?: (p: SkippedProcess) => void;
  /** /proc, for tests. */
  procRoot?: string;
  now?: () => number;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Start time (field 22) and state (field 3) from /proc/PID/stat; comm may hold spaces and ')'. */
export function parseStat(stat: string): { state: string; startTime: string } | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const rest = stat.slice(close + 2).split(' ');
  // rest[0] is field 3 (state); field 22 is rest[19].
  if (rest.length < 20) return undefined;
  return { state: rest[0]!, startTime: rest[19]! };
}

/** Parent pid (field 4) from /proc/PID/stat. */
export function parseStatParent(stat: string): number | undefined {
  const close = stat.lastIndexOf(')');
  if (close < 0) return undefined;
  const ppid = Number(stat.slice(close + 2).split(' ')[1]);
  return Number.isInteger(ppid) && ppid >= 0 ? ppid : undefined;
}

/** Boot time in seconds since the epoch (`btime` of /proc/stat). */
export function parseBootTime(procStat: string): number | undefined {
  const m = /^btime\s+(\d+)$/m.exec(procStat);
  return m ? Number(m[1]) : undefined;
}

export function parseStatus(status: string): { uid: number; threads: number } {
  const uid = /^Uid:\s+\d+\s+(\d+)/m.exec(status); // effective uid, as ps shows it
  const threads = /^Threads:\s+(\d+)/m.exec(status);
  return { uid: uid ? Number(uid[1]) : -1, threads: threads ? Number(threads[1]) : 0 };
}

export function parsePasswd(text: string): Map<number, string> {
  const users = new Map<number, string>();
  for (const line of text.split('\n')) {
    const parts = line.split(':');
    if (parts.length >= 3 && /^\d+$/.test(parts[2]!)) {
      const uid = Number(parts[2]);
      if (!users.has(uid)) users.set(uid, parts[0]!);
    }
  }
  return users;
}

/** Does the executable's name say Python (python, python3.11, python2.7d, …)? */
export function isPythonExecutableName(exePath: string): boolean {
  return /^python(\d+(\.\d+)*)?[a-z]*$/i.test(basename(exePath.replace(/ \(deleted\)$/, '')));
}

export function mapsHaveLibpython(maps: string): boolean {
  return /\/libpython\d[\d.]*[a-z]*\.so/.test(maps);
}

export class PythonProcessScanner {
  #known = new Map<number, Known>();
  #options: ScannerOptions;
  #proc: string;
  #now: () => number;
  #users = new Map<number, string>();
  #usersLoadedAt = -Infinity;
  #last: ProcessInfo[] = [];
  /** Boot time (s since the epoch), read once; null when /proc/stat does not say. */
  #bootTime: number | null | undefined;

  constructor(options: ScannerOptions = {}) {
    this.#options = options;
    this.#proc = options.procRoot ?? '/proc';
    this.#now = options.now ?? Date.now;
  }

  /** The list from the latest scan(). */
  get last(): ProcessInfo[] {
    return this.#last;
  }

  /** Lists the visible Python processes, by pid. */
  scan(): ProcessInfo[] {
    const seen = new Set<number>();
    const out: ProcessInfo[] = [];
    let names: string[] = [];
    try {
      names = readdirSync(this.#proc);
    } catch {
      names = [];
    }
    for (const name of names) {
      if (!/^\d+$/.test(name)) continue;
      const pid = Number(name);
      if (pid === process.pid) continue;
      if (this.#options.allowedPids && !this.#options.allowedPids.has(pid)) continue;
      seen.add(pid);
      const info = this.#look(pid);
      if (info) out.push(info);
    }
    for (const pid of this.#known.keys()) if (!seen.has(pid)) this.#known.delete(pid);
    out.sort((a, b) => a.pid - b.pid);
    this.#last = out;
    return out;
  }

  /**
   * Looks at one pid right now (a request may name a process newer than the
   * last scan): its listing, or why it is not listed, as an error code the
   * relay understands (NO_SUCH_PROCESS, NOT_PYTHON, PERMISSION_DENIED, …).
   */
  probe(pid: number): { info: ProcessInfo } | { code: string; message: string } {
    if (!Number.isInteger(pid) || pid <= 0 || readText(`${this.#proc}/${pid}/stat`) === undefined) {
      return { code: 'NO_SUCH_PROCESS', message: `no process has pid ${pid} in this agent's pid namespace` };
    }
    const notPython = { code: 'NOT_PYTHON', message: `pid ${pid} (${this.#cmdline(`${this.#proc}/${pid}`)}) is not a Python process this agent can read` };
    if (pid === process.pid || (this.#options.allowedPids && !this.#options.allowedPids.has(pid))) return notPython;
    const known = this.#known.get(pid);
    // A failed candidate is retried on demand, not only every RETRY_FAILED_MS.
    if (known && known.python === false && known.retryAt !== undefined) known.retryAt = 0;
    const info = this.#look(pid);
    if (info) return { info };
    const failed = this.#known.get(pid)?.failure;
    return failed ?? notPython;
  }

  #look(pid: number): ProcessInfo | undefined {
    const dir = `${this.#proc}/${pid}`;
    const stat = readText(`${dir}/stat`);
    const parsed = stat === undefined ? undefined : parseStat(stat);
    if (!parsed || parsed.state === 'Z' || parsed.state === 'X') {
      this.#known.delete(pid);
      return undefined;
    }
    let known = this.#known.get(pid);
    if (!known || known.startTime !== parsed.startTime) {
      known = { startTime: parsed.startTime, python: false };
      if (this.#isCandidate(dir)) known.retryAt = 0;
      this.#known.set(pid, known);
    }
    if (!known.python) {
      if (known.retryAt === undefined || this.#now() < known.retryAt) return undefined;
      this.#attach(pid, known);
      if (!known.python) return undefined;
    }
    const status = readText(`${dir}/status`);
    if (status === undefined) return undefined; // gone meanwhile
    const { uid, threads } = parseStatus(status);
    const info: ProcessInfo = { pid, cmdline: this.#cmdline(dir), version: known.version ?? '', user: this.#user(uid), threads };
    const ppid = parseStatParent(stat!);
    if (ppid !== undefined) info.ppid = ppid;
    const startedAt = this.#startedAt(parsed.startTime);
    if (startedAt !== undefined) info.startedAt = startedAt;
    return info;
  }

  /** A start time in ticks since boot as ms since the epoch (stable per process, so the list only changes when processes do). */
  #startedAt(startTicks: string): number | undefined {
    this.#bootTime ??= parseBootTime(readText(`${this.#proc}/stat`) ?? '') ?? null;
    const ticks = Number(startTicks);
    if (this.#bootTime === null || !Number.isFinite(ticks)) return undefined;
    return this.#bootTime * 1000 + Math.round((ticks * 1000) / TICKS_PER_SECOND);
  }

  #isCandidate(dir: string): boolean {
    try {
      if (isPythonExecutableName(readlinkSync(`${dir}/exe`))) return true;
    } catch {
      // Not allowed to see the executable (another user's process without
      // CAP_SYS_PTRACE): fall back to the name the process gives itself, so
      // the attach below can explain why it cannot be read.
      const comm = readText(`${dir}/comm`)?.trim() ?? '';
      return /^python/i.test(comm);
    }
    const maps = readText(`${dir}/maps`);
    return maps !== undefined && mapsHaveLibpython(maps);
  }

  #attach(pid: number, known: Known): void {
    try {
      const version = this.#options.pythonVersion ? this.#options.pythonVersion(pid) : attach(pid).info().version;
      known.python = true;
      known.version = version;
      known.retryAt = undefined;
      known.failure = undefined;
    } catch (err) {
      const code = isPeriscopeError(err) ? err.code : 'ERROR';
      if (code === 'NO_SUCH_PROCESS' || code === 'NOT_PYTHON' || code === 'PROCESS_EXITED') {
        // Gone, or not (yet) an interpreter we can find -- a just-started
        // python may not have initialized; look again later, quietly.
        known.retryAt = this.#now() + RETRY_FAILED_MS;
        return;
      }
      known.retryAt = this.#now() + RETRY_FAILED_MS;
      known.failure = { code, message: (err as Error).message };
      if (!known.reported) {
        known.reported = true;
        this.#options.onSkipped?.({ pid, cmdline: this.#cmdline(`${this.#proc}/${pid}`), code, message: (err as Error).message });
      }
    }
  }

  #cmdline(dir: string): string {
    const raw = readText(`${dir}/cmdline`) ?? '';
    let text = raw.replace(/\0+$/, '').split('\0').join(' ');
    if (text === '') text = `[${readText(`${dir}/comm`)?.trim() ?? '?'}]`;
    return text.length > MAX_CMDLINE ? text.slice(0, MAX_CMDLINE) : text;
  }

  #user(uid: number): string {
    if (uid < 0) return '?';
    let name = this.#users.get(uid);
    if (name === undefined && this.#now() - this.#usersLoadedAt > 60_000) {
      this.#users = parsePasswd(readText('/etc/passwd') ?? '');
      this.#usersLoadedAt = this.#now();
      name = this.#users.get(uid);
    }
    return name ?? String(uid);
  }
}
