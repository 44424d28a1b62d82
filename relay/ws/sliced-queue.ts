// Bookkeeping that may wait a moment, done a slice at a time.
//
// When a crowd of agents drops at once (a customer's network blips, 2,000
// agents on one code stop), each one's store writes are small but they all
// arrive in the same turn of the event loop; done on the spot, they held up
// everything else (/healthz, heartbeats, the genuine agent) for hundreds of
// milliseconds. Here each task waits its turn and the queue runs for at most
// SLICE_MS per turn, so other work gets in between.
//
// Tasks are keyed (by agent id): settle(key) runs a key's task at once, for
// the moment something depends on it having happened (that agent is back).

/** Longest stretch spent on queued tasks before the event loop gets a turn. */
export const SLICE_MS = 5;

export class SlicedQueue {
  #tasks = new Map<string, () => void>();
  #immediate: NodeJS.Immediate | undefined;
  #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  get size(): number {
    return this.#tasks.size;
  }

  /** Queues `task` under `key`; a task already queued under that key runs first. */
  add(key: string, task: () => void): void {
    this.settle(key);
    this.#tasks.set(key, task);
    this.#immediate ??= setImmediate(() => this.#slice());
  }

  /** Runs the task queued under `key`, if any, now. */
  settle(key: string): void {
    const task = this.#tasks.get(key);
    if (!task) return;
    this.#tasks.delete(key);
    this.#run(task);
  }

  /** Runs everything still queued, now (shutdown). */
  drain(): void {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    for (const [key, task] of this.#tasks) {
      this.#tasks.delete(key);
      this.#run(task);
    }
  }

  #slice(): void {
    this.#immediate = undefined;
    const until = performance.now() + SLICE_MS;
    for (const [key, task] of this.#tasks) {
      if (performance.now() >= until) break;
      this.#tasks.delete(key);
      this.#run(task);
    }
    if (this.#tasks.size > 0) this.#immediate = setImmediate(() => this.#slice());
  }

  #run(task: () => void): void {
    try {
      task();
    } catch (err) {
      this.#onError(err);
    }
  }
}
