// Reconnect delays: full-jitter exponential backoff (the "Full Jitter" of
// AWS's "Exponential Backoff and Jitter"): the n-th consecutive failure waits
// a uniformly random time in [0, min(cap, base * 2^n)). Spreading the waits
// over the whole window keeps a fleet of agents from reconnecting in lockstep
// after a relay restart. A connection that stays up for `stableMs` counts as
// healthy and resets the count.

export interface BackoffOptions {
  /** First window, ms (default 500). */
  baseMs?: number;
  /** Largest window, ms (default 30 000). */
  capMs?: number;
  /** A connection up at least this long resets the attempts (default 30 000). */
  stableMs?: number;
  /** Uniform random in [0, 1); injectable for tests. */
  random?: () => number;
}

export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;
  readonly stableMs: number;
  #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.capMs = options.capMs ?? 30_000;
    this.stableMs = options.stableMs ?? 30_000;
    this.#random = options.random ?? Math.random;
    if (!(this.baseMs > 0 && this.capMs >= this.baseMs && this.stableMs >= 0)) {
      throw new RangeError('backoff needs 0 < base <= cap and stable >= 0');
    }
  }

  /** Consecutive failures so far (the exponent of the next window). */
  get attempt(): number {
    return this.#attempt;
  }

  /** The upper bound of the next delay, ms. */
  window(): number {
    // 2^attempt overflows to Infinity long after the cap is reached; min() keeps it finite.
    return Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.#attempt, 1000));
  }

  /** The delay before the next attempt, ms; counts one more failure. */
  next(): number {
    const delay = this.#random() * this.window();
    this.#attempt++;
    return delay;
  }

  reset(): void {
    this.#attempt = 0;
  }

  /** Call when a connection ends: resets first if it had been up for the stable period. */
  connectionEnded(upForMs: number): void {
    if (upForMs >= this.stableMs) this.reset();
  }
}
