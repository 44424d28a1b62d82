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
// A task may be asynchronous (store writes are): the slice starts it, and
// settle(key) waits for it to finish.

/** Longest stretch spent on queued tasks before the event loop gets a turn. */
export const SLICE_MS = 5;

export class SlicedQueue {
  #tasks = new Map<string, () => void | Promise<void>>();
  #slicing = false;
  /** Started tasks not finished yet, by key. */
  #running = new Map<string, Promise<void>>();
  #immediate: NodeJS.Immediate | undefined;
  #onError: (err: unknown) => void;

  constructor(onError: (err: unknown) => void) {
    this.#onError = onError;
  }

  get size(): number {
    return this.#tasks.size;
  }

  /** Queues `task` under `key`; a task already queued under that key runs first. */
  add(key: string, task: () => void | Promise<void>): void {
    void this.settle(key);
    this.#tasks.set(key, task);
    // A running slice picks it up, or schedules the next one.
    if (!this.#slicing) this.#immediate ??= setImmediate(() => void this.#slice());
  }

  /** Runs the task queued under `key`, if any, now; resolves once the key's task has finished. */
  settle(key: string): Promise<void> {
    const task = this.#tasks.get(key);
    if (task) {
      this.#tasks.delete(key);
      this.#run(key, task);
    }
    return this.#running.get(key) ?? Promise.resolve();
  }

  /** Runs everything still queued, now (shutdown); resolves once all of it has finished. */
  async drain(): Promise<void> {
    if (this.#immediate) clearImmediate(this.#immediate);
    this.#immediate = undefined;
    for (const [key, task] of this.#tasks) {
      this.#tasks.delete(key);
      this.#run(key, task);
    }
    await Promise.all(this.#running.values());
  }

  /**
   * Runs queued tasks one after another for up to SLICE_MS, then lets the
   * event loop in. Each task is awaited inside the slice: with the embedded
   * store its writes settle at once, and an asynchronous task's work must
   * count against this slice, not pile up behind it.
   */
  async #slice(): Promise<void> {
    this.#immediate = undefined;
    this.#slicing = true;
    try {
      const until = performance.now() + SLICE_MS;
      for (const [key, task] of this.#tasks) {
        if (performance.now() >= until) break;
        this.#tasks.delete(key);
        this.#run(key, task);
        await this.#running.get(key);
      }
    } finally {
      this.#slicing = false;
    }
    if (this.#tasks.size > 0) this.#immediate = setImmediate(() => void this.#slice());
  }

  #run(key: string, task: () => void | Promise<void>): void {
    const start = (): Promise<void> => {
      try {
        return Promise.resolve(task());
      } catch (err) {
        return Promise.reject(err);
      }
    };
    // After the key's previous task (one agent's leave and return are written in order); at once when there is none, inside this slice.
    const previous = this.#running.get(key);
    const done: Promise<void> = (previous ? previous.then(start) : start())
      .catch((err: unknown) => this.#onError(err))
      .finally(() => {
        if (this.#running.get(key) === done) this.#running.delete(key);
      });
    this.#running.set(key, done);
  }
}
