// What the customer's terminal says about the process list, coalesced. The
// list is rescanned every 2 s; a service that forks a child per job changes
// it on almost every scan, and a line per change ("the relay sees N Python
// processes …" every 2-4 s) buried the requests the terminal is there to show.
// Likewise a container of another user's Python workers printed one
// PERMISSION_DENIED line per worker. So:
//
//   - the list is printed once at the start; after that a change is printed
//     once the list has stayed the same for `settleMs`, saying how many
//     processes came and went meanwhile; a list that never settles gets one
//     summary line per `summaryEveryMs`;
//   - a process that cannot be read is printed in full for the first one of
//     each cause (error code); the others of that cause are counted and
//     summed up in one line at the end of that scan, then at most once per
//     `skippedEveryMs`.
//
// Time comes from `now`, so the rules are tested with a fake clock.
import type { ProcessInfo } from '../../shared/protocol.ts';
import type { SkippedProcess } from './python-processes.ts';
import { formatSeconds, sanitize } from './terminal-log.ts';

export const DEFAULT_SETTLE_MS = 5000;
export const DEFAULT_SUMMARY_EVERY_MS = 60_000;
export const DEFAULT_SKIPPED_EVERY_MS = 60_000;
/** Processes named in one line; the rest are counted. */
export const MAX_LISTED = 8;

export interface ProcessLogOptions {
  /** Writes one line (the TerminalLog). */
  write: (line: string) => void;
  now?: () => number;
  settleMs?: number;
  summaryEveryMs?: number;
  skippedEveryMs?: number;
  /** The customer restricted the agent with --pids (changes the wording of an empty list). */
  restricted?: boolean;
}

interface Cause {
  code: string;
  /** Pids of this cause not printed yet. */
  pending: number[];
  printedAt: number;
  /** First seen in the current scan: its summary goes out at the end of this scan. */
  fresh: boolean;
}

function plural(n: number, one: string, many = `${one}es`): string {
  return `${n} ${n === 1 ? one : many}`;
}

function pidList(pids: number[]): string {
  const shown = pids.slice(0, MAX_LISTED * 2).join(', ');
  return pids.length > MAX_LISTED * 2 ? `${shown}, and ${pids.length - MAX_LISTED * 2} more` : shown;
}

export class ProcessLog {
  #write: (line: string) => void;
  #now: () => number;
  #settleMs: number;
  #summaryEveryMs: number;
  #skippedEveryMs: number;
  #restricted: boolean;

  /** Pids in the last list printed; undefined before the first. */
  #shownKey: string | undefined;
  #current: ProcessInfo[] = [];
  #currentKey = '';
  #changedAt = 0;
  /** Since the last line about the list: when it first changed, and how many processes started and exited. */
  #pendingSince: number | undefined;
  #started = 0;
  #exited = 0;
  #causes = new Map<string, Cause>();

  constructor(options: ProcessLogOptions) {
    this.#write = options.write;
    this.#now = options.now ?? Date.now;
    this.#settleMs = options.settleMs ?? DEFAULT_SETTLE_MS;
    this.#summaryEveryMs = options.summaryEveryMs ?? DEFAULT_SUMMARY_EVERY_MS;
    this.#skippedEveryMs = options.skippedEveryMs ?? DEFAULT_SKIPPED_EVERY_MS;
    this.#restricted = options.restricted ?? false;
  }

  /** A process the scanner cannot read (PythonProcessScanner's onSkipped). */
  skipped(p: SkippedProcess): void {
    const cause = this.#causes.get(p.code);
    if (cause) {
      cause.pending.push(p.pid);
      return;
    }
    this.#causes.set(p.code, { code: p.code, pending: [], printedAt: this.#now(), fresh: true });
    this.#write(`pid ${p.pid} (${sanitize(p.cmdline, 120)}) looks like Python but cannot be read, so it is not offered: ${p.code}: ${sanitize(p.message, 300)}`);
  }

  /** The result of one scan (every scan, changed or not); prints what is due. */
  scanned(processes: ProcessInfo[]): void {
    const now = this.#now();
    this.#flushSkipped(now);
    const key = processes.map((p) => p.pid).join(',');
    if (this.#shownKey === undefined) {
      this.#current = processes;
      this.#currentKey = key;
      this.#shown(key);
      this.#write(this.#describe(processes));
      return;
    }
    if (key !== this.#currentKey) {
      const before = new Set(this.#current.map((p) => p.pid));
      const after = new Set(processes.map((p) => p.pid));
      for (const pid of after) if (!before.has(pid)) this.#started++;
      for (const pid of before) if (!after.has(pid)) this.#exited++;
      this.#current = processes;
      this.#currentKey = key;
      this.#changedAt = now;
      this.#pendingSince ??= now;
    }
    if (this.#pendingSince === undefined) return;
    if (now - this.#changedAt >= this.#settleMs) {
      this.#write(this.#settled(processes, key));
      this.#shown(key);
    } else if (now - this.#pendingSince >= this.#summaryEveryMs) {
      const churn = `${this.#started} started and ${this.#exited} exited in the last ${formatSeconds((now - this.#pendingSince) / 1000)}`;
      this.#write(`the Python processes keep changing (${churn}); now ${this.#describe(processes)}`);
      this.#shown(key);
    }
  }

  #shown(key: string): void {
    this.#shownKey = key;
    this.#pendingSince = undefined;
    this.#started = 0;
    this.#exited = 0;
  }

  /** The line for a list that has settled: plain for a simple change, with the churn when more came and went. */
  #settled(processes: ProcessInfo[], key: string): string {
    const shown = new Set(this.#shownKey ? this.#shownKey.split(',').map(Number) : []);
    const now = new Set(processes.map((p) => p.pid));
    let added = 0;
    let removed = 0;
    for (const pid of now) if (!shown.has(pid)) added++;
    for (const pid of shown) if (!now.has(pid)) removed++;
    const cameAndWent = Math.min(this.#started - added, this.#exited - removed);
    if (key === this.#shownKey) {
      return `${plural(cameAndWent, 'short-lived Python process', 'short-lived Python processes')} started and exited; the relay sees the same ${plural(processes.length, 'process')} as before`;
    }
    const meanwhile = cameAndWent > 0 ? ` (${plural(cameAndWent, 'more process', 'more processes')} started and exited meanwhile)` : '';
    return `${this.#describe(processes)}${meanwhile}`;
  }

  #describe(processes: ProcessInfo[]): string {
    if (processes.length === 0) return `no Python process visible to this agent${this.#restricted ? ' among --pids' : ''}; the relay sees an empty list`;
    const named = processes.slice(0, MAX_LISTED).map((p) => `${p.pid} (${sanitize(p.cmdline, 60)})`);
    const more = processes.length > MAX_LISTED ? `, and ${processes.length - MAX_LISTED} more` : '';
    return `the relay sees ${plural(processes.length, 'Python process', 'Python processes')}: ${named.join(', ')}${more}`;
  }

  #flushSkipped(now: number): void {
    for (const cause of this.#causes.values()) {
      const due = cause.fresh || now - cause.printedAt >= this.#skippedEveryMs;
      cause.fresh = false;
      if (!due || cause.pending.length === 0) continue;
      const n = cause.pending.length;
      this.#write(
        `${plural(n, 'more Python process', 'more Python processes')} cannot be read for the same reason (${cause.code}), so ${n === 1 ? 'it is' : 'they are'} not offered: ` +
          `pid${n === 1 ? '' : 's'} ${pidList(cause.pending)}; further ones are summed up at most every ${formatSeconds(this.#skippedEveryMs / 1000)}`,
      );
      cause.pending = [];
      cause.printedAt = now;
    }
  }
}
