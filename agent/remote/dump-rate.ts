// How often the relay may have this agent dump. A dump attaches to the
// target and reads every thread's stack; with --blocking it also stops the
// process while it does. Nothing else bounds how often the relay asks, and
// a relay (or whoever drives it) that asks in a loop could otherwise keep
// the customer's service paused most of the time. So dumps are counted in a
// sliding window, per agent: blocking ones against a tighter limit, and
// every dump against the overall one. A refusal names the limit and when the
// next dump will be taken.
//
// Refusals are printed on the customer's terminal, but a flood of them is
// not: the first refusal in a window is printed, the rest are counted and
// the count goes with the next line printed.

export const DUMP_RATE_LIMITED = 'DUMP_RATE_LIMITED';

export interface DumpRateLimits {
  windowMs: number;
  /** Dumps of any kind per window. */
  dumps: number;
  /** Blocking dumps (the target is paused while it is read) per window. */
  blockingDumps: number;
}

/** Enough for an engineer clicking "dump" again and again; far below anything that keeps the target paused. */
export const DEFAULT_DUMP_RATE: DumpRateLimits = { windowMs: 10_000, dumps: 10, blockingDumps: 3 };

export type DumpAdmission =
  | { ok: true }
  | {
      ok: false;
      code: typeof DUMP_RATE_LIMITED;
      message: string;
      /** Print this refusal on the terminal (the first in its window). */
      print: boolean;
      /** Refusals not printed since the last one printed. */
      unprinted: number;
    };

function seconds(ms: number): string {
  return `${(Math.max(ms, 0) / 1000).toFixed(1)} s`;
}

export class DumpRateLimit {
  readonly limits: DumpRateLimits;
  #now: () => number;
  /** Start times of the dumps taken in the last window, oldest first. */
  #all: number[] = [];
  #blocking: number[] = [];
  #lastPrintedAt = -Infinity;
  #unprinted = 0;

  constructor(limits: DumpRateLimits = DEFAULT_DUMP_RATE, now: () => number = Date.now) {
    this.limits = limits;
    this.#now = now;
  }

  /** Counts a dump about to be taken, or refuses it. */
  admit(blocking: boolean): DumpAdmission {
    const now = this.#now();
    const { windowMs } = this.limits;
    const since = now - windowMs;
    while (this.#all.length > 0 && this.#all[0]! <= since) this.#all.shift();
    while (this.#blocking.length > 0 && this.#blocking[0]! <= since) this.#blocking.shift();
    const window = seconds(windowMs);
    let message: string | undefined;
    if (blocking && this.#blocking.length >= this.limits.blockingDumps) {
      message =
        `${this.#blocking.length} blocking dumps in the last ${window} already; this agent takes at most ${this.limits.blockingDumps} per ${window} ` +
        `(each one pauses the process). The next can be taken in ${seconds(this.#blocking[0]! + windowMs - now)}, or ask for a dump without --blocking`;
    } else if (this.#all.length >= this.limits.dumps) {
      message =
        `${this.#all.length} dumps in the last ${window} already; this agent takes at most ${this.limits.dumps} per ${window}. ` +
        `The next can be taken in ${seconds(this.#all[0]! + windowMs - now)}`;
    }
    if (message === undefined) {
      this.#all.push(now);
      if (blocking) this.#blocking.push(now);
      return { ok: true };
    }
    const print = now - this.#lastPrintedAt >= windowMs;
    const unprinted = this.#unprinted;
    if (print) {
      this.#lastPrintedAt = now;
      this.#unprinted = 0;
    } else {
      this.#unprinted++;
    }
    return { ok: false, code: DUMP_RATE_LIMITED, message, print, unprinted };
  }
}
