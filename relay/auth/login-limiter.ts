// Slows password guessing: at most MAX_ATTEMPTS sign-ins for the same
// (IP, username) per WINDOW_MS, unless one succeeds; further attempts are
// refused until the window ends.
//
// An attempt counts when it starts, before its password is hashed, not when it
// fails: checking the password takes a good fraction of a second, and attempts
// counted only once they had failed let 300 concurrent guesses through to 100
// real password checks before the limit applied. A success forgets the count.
//
// Kept in memory with a size cap, so a flood of distinct keys cannot grow it
// without bound (the oldest entries are forgotten first).

export const MAX_ATTEMPTS = 5;
const WINDOW_MS = 15 * 60 * 1000;
const MAX_ENTRIES = 10_000;

interface Entry {
  attempts: number;
  windowStart: number;
}

export class LoginLimiter {
  #entries = new Map<string, Entry>();

  #key(ip: string, username: string): string {
    return `${ip}\n${username.toLowerCase()}`;
  }

  /**
   * Call before checking a password. Returns 0 when the attempt may go ahead
   * (it is counted now), or how many milliseconds until another is allowed.
   */
  attempt(ip: string, username: string, now = Date.now()): number {
    const key = this.#key(ip, username);
    const entry = this.#entries.get(key);
    if (!entry || now - entry.windowStart >= WINDOW_MS) {
      this.#entries.delete(key);
      this.#entries.set(key, { attempts: 1, windowStart: now });
      if (this.#entries.size > MAX_ENTRIES) {
        const [oldest] = this.#entries.keys();
        this.#entries.delete(oldest);
      }
      return 0;
    }
    if (entry.attempts >= MAX_ATTEMPTS) return entry.windowStart + WINDOW_MS - now;
    entry.attempts++;
    return 0;
  }

  /** The password was right: the count starts over. */
  succeeded(ip: string, username: string): void {
    this.#entries.delete(this.#key(ip, username));
  }
}
