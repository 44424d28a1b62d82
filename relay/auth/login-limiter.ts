// Slows password guessing: after MAX_FAILURES failed sign-ins for the same
// (IP, username) within WINDOW_MS, further attempts are refused until the window
// ends. Kept in memory with a size cap, so a flood of distinct keys cannot grow it
// without bound (the oldest entries are forgotten first).

const MAX_FAILURES = 5;
const WINDOW_MS = 15 * 60 * 1000;
const MAX_ENTRIES = 10_000;

interface Entry {
  failures: number;
  windowStart: number;
}

export class LoginLimiter {
  #entries = new Map<string, Entry>();

  #key(ip: string, username: string): string {
    return `${ip}\n${username.toLowerCase()}`;
  }

  /** Milliseconds until another attempt is allowed, or 0 when allowed now. */
  retryAfterMs(ip: string, username: string, now = Date.now()): number {
    const entry = this.#entries.get(this.#key(ip, username));
    if (!entry) return 0;
    if (now - entry.windowStart >= WINDOW_MS) {
      this.#entries.delete(this.#key(ip, username));
      return 0;
    }
    return entry.failures >= MAX_FAILURES ? entry.windowStart + WINDOW_MS - now : 0;
  }

  failed(ip: string, username: string, now = Date.now()): void {
    const key = this.#key(ip, username);
    const entry = this.#entries.get(key);
    if (!entry || now - entry.windowStart >= WINDOW_MS) {
      this.#entries.delete(key);
      this.#entries.set(key, { failures: 1, windowStart: now });
      if (this.#entries.size > MAX_ENTRIES) {
        const [oldest] = this.#entries.keys();
        this.#entries.delete(oldest);
      }
    } else {
      entry.failures++;
    }
  }

  succeeded(ip: string, username: string): void {
    this.#entries.delete(this.#key(ip, username));
  }
}
