// What the customer sees: one plain, timestamped line on stderr per event
// (requests, their end, connection changes). Text that came from elsewhere
// (the engineer's name, a process's command line, a relay's error message)
// is made inert first -- no escape sequences, no bidi tricks, bounded length
// -- and every line goes through the Redactor, so no token is ever printed.
import { inertText } from '../../shared/export/inert-text.ts';
import type { Redactor } from './token.ts';

/** Makes text safe to print on a terminal (see inertText), cut to one readable line. */
export function sanitize(text: string, max = 300): string {
  return inertText(text, max);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Local time as `YYYY-MM-DD HH:MM:SS`. */
export function timestamp(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function formatSeconds(seconds: number): string {
  if (seconds < 1) return `${seconds.toFixed(2)} s`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 120) return `${Math.round(seconds)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return s === 0 ? `${m} min` : `${m} min ${s} s`;
}

export interface TerminalLogOptions {
  redactor: Redactor;
  write?: (text: string) => void;
  now?: () => Date;
}

export class TerminalLog {
  #redactor: Redactor;
  #write: (text: string) => void;
  #now: () => Date;

  constructor(options: TerminalLogOptions) {
    this.#redactor = options.redactor;
    this.#write = options.write ?? ((text) => process.stderr.write(text));
    this.#now = options.now ?? (() => new Date());
  }

  /** One line: `[timestamp] text`. The caller sanitizes foreign parts; redaction happens here. */
  line(text: string): void {
    this.#write(`[${timestamp(this.#now())}] ${this.#redactor.redact(text)}\n`);
  }
}
