// Keeps the relay serving when its data dir fills up. A full disk must not take
// the process down (an uncaught SQLITE_FULL in a close handler used to), nor
// lose what is already stored, nor stop engineers from signing in and reading.
//
// Writes come in two kinds:
//  - required: the caller cannot go on without it (creating a session, a user, a
//    capture). On a full disk it fails with DISK_FULL (HTTP 507) and nothing changes.
//  - deferrable: it must land but may wait (audit entries, presence, capture
//    state, sign-ins). On a full disk it is held in memory, in order, and written
//    as soon as there is room; the store classes keep the held rows readable
//    (HeldRows) so the relay behaves the same meanwhile.
// Held writes are replayed strictly in the order they were made, and nothing
// new is written around them, so a revoke can never land before its insert.
import { statfsSync } from 'node:fs';
import type { DatabaseSync } from 'node:sqlite';
import { PeriscopeError } from '../../shared/errors.ts';
import { MAX_STORED_CHUNK_BYTES } from '../captures/chunk-codec.ts';
import { relayLog } from '../log.ts';

export const DISK_FULL = 'DISK_FULL' as const;

/** Free space the data dir needs before the relay calls itself healthy again: a whole chunk and room for the database to grow. */
export const MIN_FREE_BYTES = MAX_STORED_CHUNK_BYTES + 8 * 1024 * 1024;
/** How often a degraded relay retries its held writes and looks for free space. */
export const RECHECK_MS = 1000;
/** Held writes beyond this are dropped (and counted) rather than growing memory without bound. */
export const MAX_HELD_WRITES = 10_000;

const SQLITE_FULL = 13;
/** SQLite could not grow the WAL index (`relay.db-shm`): on a full disk, opening or growing the WAL fails with this. */
const SQLITE_IOERR_SHMSIZE = 4874;

/** True for "no space left" from the file system (ENOSPC, EDQUOT) or SQLite (SQLITE_FULL, SQLITE_IOERR_SHMSIZE). */
export function isDiskFull(err: unknown): boolean {
  if (err instanceof DiskFullError) return true;
  const e = err as { code?: unknown; errcode?: unknown } | null;
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') return true;
  if (e?.code !== 'ERR_SQLITE_ERROR' || typeof e.errcode !== 'number') return false;
  return (e.errcode & 0xff) === SQLITE_FULL || e.errcode === SQLITE_IOERR_SHMSIZE;
}

/** A write refused because the data dir is full. Its code, DISK_FULL, is what HTTP routes answer 507 for (relay/http/error-status.ts). */
export class DiskFullError extends PeriscopeError {
  constructor(dataDir: string, what: string, options?: ErrorOptions & { atStart?: boolean }) {
    const then = options?.atStart ? 'then start the relay again' : 'the relay carries on by itself once there is room (GET /healthz says when)';
    super(DISK_FULL, `the relay's data dir ${dataDir} is full, so ${what} could not be saved; free space on that volume (captures are in ${dataDir}/captures) or make it larger; ${then}`, options?.cause !== undefined ? { cause: options.cause } : undefined);
  }
}

export interface StorageProblem {
  code: string;
  message: string;
  since: string;
}

interface HeldWrite {
  what: string;
  write: () => void;
}

export class StorageHealth {
  readonly dataDir: string;
  /** Writes that found the disk full (chunk appends and database writes; retries are not counted again). */
  diskFullErrors = 0;
  /** Held writes dropped because too many were waiting (see MAX_HELD_WRITES). */
  writesDropped = 0;
  #db: DatabaseSync | undefined;
  /** Keyed so a newer state of the same row replaces the older one; Map keeps insertion order. */
  #held = new Map<string, HeldWrite>();
  #fullSince: number | undefined;
  #lastWhat = '';
  #timer: NodeJS.Timeout | undefined;
  #minFreeBytes: number;

  constructor(dataDir: string, minFreeBytes = MIN_FREE_BYTES) {
    this.dataDir = dataDir;
    this.#minFreeBytes = minFreeBytes;
  }

  /** The database whose transactions the write kinds must respect. */
  attach(db: DatabaseSync): void {
    this.#db = db;
  }

  get degraded(): boolean {
    return this.#fullSince !== undefined;
  }

  get heldWrites(): number {
    return this.#held.size;
  }

  problems(): StorageProblem[] {
    if (this.#fullSince === undefined) return [];
    const held = this.#held.size;
    return [
      {
        code: DISK_FULL,
        message:
          `the data dir ${this.dataDir} is full (last refused: ${this.#lastWhat}); new captures are refused and running ones that could not store a chunk ended as failed. ` +
          `${held} database write${held === 1 ? ' is' : 's are'} held in memory until there is room${this.writesDropped ? ` (${this.writesDropped} dropped)` : ''}. ` +
          `Free space on that volume or make it larger; the relay recovers by itself`,
        since: new Date(this.#fullSince).toISOString(),
      },
    ];
  }

  /** Records a write that found the disk full; returns the error to throw or report. */
  diskFull(what: string, cause?: unknown): DiskFullError {
    this.diskFullErrors++;
    this.#lastWhat = what;
    if (this.#fullSince === undefined) {
      this.#fullSince = Date.now();
      relayLog().error(`${DISK_FULL}: the data dir ${this.dataDir} is full (${what} could not be saved); serving reads and sign-ins, refusing new captures until there is room. Free space on that volume or make it larger`);
      this.#timer = setInterval(() => this.#recheck(), RECHECK_MS);
      this.#timer.unref();
    }
    return cause instanceof DiskFullError ? cause : new DiskFullError(this.dataDir, what, { cause });
  }

  /**
   * Runs a write the caller cannot go on without. Held writes go first (order is
   * kept); if they cannot, or this one finds the disk full, throws DiskFullError.
   */
  required<T>(what: string, write: () => T): T {
    if (this.#inTransaction()) return write();
    if (this.#held.size > 0 && !this.#flush()) throw new DiskFullError(this.dataDir, what);
    try {
      return write();
    } catch (err) {
      if (isDiskFull(err)) throw this.diskFull(what, err);
      throw err;
    }
  }

  /**
   * Runs a write that may wait: on a full disk it is held (replacing a held
   * write with the same key) and retried in order once there is room.
   */
  deferrable(key: string, what: string, write: () => void): void {
    // Inside a transaction a failure must undo the whole transaction, not be held on its own.
    if (this.#inTransaction()) return write();
    if (this.#held.size > 0) {
      this.#hold(key, what, write);
      this.#flush();
      return;
    }
    try {
      write();
    } catch (err) {
      if (!isDiskFull(err)) throw err;
      this.diskFull(what, err);
      this.#hold(key, what, write);
    }
  }

  /** Last chance before the database closes; returns how many held writes are lost. */
  close(): number {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#flush();
    const lost = this.#held.size;
    if (lost > 0) relayLog().error(`${DISK_FULL}: ${lost} held database writes could not be saved before shutting down (the data dir ${this.dataDir} is still full); they are lost`);
    return lost;
  }

  #inTransaction(): boolean {
    return this.#db?.isTransaction ?? false;
  }

  #hold(key: string, what: string, write: () => void): void {
    if (this.#held.has(key)) this.#held.delete(key);
    else if (this.#held.size >= MAX_HELD_WRITES) {
      if (this.writesDropped++ === 0) relayLog().error(`${DISK_FULL}: more than ${MAX_HELD_WRITES} writes are waiting for space; dropping new ones (first dropped: ${what})`);
      return;
    }
    this.#held.set(key, { what, write });
  }

  /** Writes held writes in order; false when the disk is still full. */
  #flush(): boolean {
    for (const [key, held] of this.#held) {
      try {
        held.write();
      } catch (err) {
        if (isDiskFull(err)) return false;
        // Not a space problem: retrying will not help, and it must not block the rest.
        relayLog().error(`a held write (${held.what}) failed and is dropped: ${(err as Error).message}`);
      }
      this.#held.delete(key);
    }
    return true;
  }

  #recheck(): void {
    try {
      if (!this.#flush() || !this.#roomAgain()) return;
    } catch (err) {
      relayLog().error(`checking the data dir for free space failed: ${(err as Error).message}`);
      return;
    }
    const since = this.#fullSince ?? Date.now();
    this.#fullSince = undefined;
    clearInterval(this.#timer);
    this.#timer = undefined;
    relayLog().info(`the data dir ${this.dataDir} has room again after ${Math.round((Date.now() - since) / 1000)} s; held writes are saved and new captures are accepted`);
  }

  /** Whether there is room again; on a small volume a tenth of it counts as room. */
  #roomAgain(): boolean {
    const s = statfsSync(this.dataDir);
    return s.bavail * s.bsize >= Math.min(this.#minFreeBytes, (s.blocks * s.bsize) / 10);
  }
}

/**
 * Rows whose newest state is only in memory because the disk was full. Store
 * classes read through it so a held row looks saved; it empties as the held
 * writes land.
 */
export class HeldRows<T> {
  #health: StorageHealth;
  #table: string;
  #rows = new Map<string, T>();

  constructor(health: StorageHealth, table: string) {
    this.#health = health;
    this.#table = table;
  }

  get(id: string): T | undefined {
    return this.#rows.get(id);
  }

  values(): IterableIterator<T> {
    return this.#rows.values();
  }

  /** Saves the whole row with `write` (an upsert), now or, on a full disk, once there is room. */
  save(id: string, what: string, row: T, write: (row: T) => void): void {
    // Set first: if the write is held, reads must already see the new state.
    this.#rows.set(id, row);
    const forget = () => {
      if (this.#rows.get(id) === row) this.#rows.delete(id);
    };
    try {
      this.#health.deferrable(`${this.#table}:${id}`, what, () => {
        write(row);
        forget();
      });
    } catch (err) {
      // Refused outright (not held): the row is not saved, so reads must not pretend it is.
      forget();
      throw err;
    }
  }
}
