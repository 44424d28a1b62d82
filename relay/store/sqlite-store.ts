// The embedded store: node:sqlite and one chunk file per capture in the data
// dir, behind the asynchronous contract (contract.ts). The classes underneath
// stay synchronous — SQLite in process answers at once — and each call here
// resolves with what they return.
import { join } from 'node:path';
import { openDatabase, registerHealth } from './database.ts';
import { DiskFullError, StorageHealth, isDiskFull } from './storage-health.ts';
import { ensureDataDir, readOrCreateSecretFile } from './data-dir.ts';
import { Users } from './users.ts';
import { WebLogins } from './web-logins.ts';
import { Sessions } from './sessions.ts';
import { JoinTokens } from './join-tokens.ts';
import { Agents } from './agents.ts';
import { Captures } from './captures.ts';
import { AuditLog } from './audit-log.ts';
import { ChunkFiles, type ChunkLog } from './chunk-files.ts';
import type { AgentsStore, AuditStore, CapturesStore, ChunkStore, ChunkWriter, JoinTokensStore, RenderSource, SessionsStore, Store, StoreHealth, Sync, UsersStore, WebLoginsStore } from './contract.ts';

/**
 * The same object, each method answering with a promise. Synchronous throws
 * become rejections, so callers see one kind of failure whatever the engine.
 */
function promised<T extends object>(impl: Sync<T>): T {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(impl as object, {
    get(target, key) {
      const value = Reflect.get(target, key) as unknown;
      if (typeof value !== 'function') return value;
      let fn = wrapped.get(key);
      if (!fn) {
        fn = (...args: unknown[]) => {
          try {
            return Promise.resolve((value as (...a: unknown[]) => unknown).apply(target, args));
          } catch (err) {
            return Promise.reject(err);
          }
        };
        wrapped.set(key, fn);
      }
      return fn;
    },
  }) as T;
}

class FileChunkWriter implements ChunkWriter {
  #log: ChunkLog;
  #captureId: string;
  #storage: StorageHealth;
  constructor(log: ChunkLog, captureId: string, storage: StorageHealth) {
    this.#log = log;
    this.#captureId = captureId;
    this.#storage = storage;
  }
  get count(): number {
    return this.#log.count;
  }
  get bytes(): number {
    return this.#log.bytes;
  }
  get damage() {
    return this.#log.damage;
  }
  async append(payload: Uint8Array): Promise<void> {
    try {
      this.#log.append(payload);
    } catch (err) {
      // Counted and reported once for the relay (/healthz), and thrown as DISK_FULL.
      if (isDiskFull(err)) throw this.#storage.diskFull(`chunk ${this.#log.count} of capture ${this.#captureId}`, err);
      throw err;
    }
  }
  async read(seq: number): Promise<Buffer> {
    return this.#log.read(seq);
  }
}

class FileChunkStore implements ChunkStore {
  #files: ChunkFiles;
  #storage: StorageHealth;
  constructor(files: ChunkFiles, storage: StorageHealth) {
    this.#files = files;
    this.#storage = storage;
  }
  async writer(captureId: string): Promise<ChunkWriter> {
    return new FileChunkWriter(this.#files.writer(captureId), captureId, this.#storage);
  }
  async readable(captureId: string) {
    const log = this.#files.reader(captureId);
    return log && { count: log.count, damage: log.damage };
  }
  async read(captureId: string, seq: number): Promise<Buffer> {
    const log = this.#files.reader(captureId);
    if (!log) throw new RangeError(`capture ${captureId} has no chunks`);
    return log.read(seq);
  }
  /** The worker reads the file itself: a long capture never passes through the relay's main thread. */
  async renderSource(captureId: string): Promise<RenderSource> {
    return { path: this.#files.pathOf(captureId) };
  }
  async finish(captureId: string): Promise<void> {
    this.#files.finish(captureId);
  }
  describe(captureId: string): string {
    return `the capture's file ${this.#files.pathOf(captureId)}`;
  }
  async closeAll(): Promise<void> {
    this.#files.closeAll();
  }
}

export function openSqliteStore(dataDir: string): Store {
  try {
    ensureDataDir(dataDir);
  } catch (err) {
    if (isDiskFull(err)) throw new DiskFullError(dataDir, 'the data dir itself', { cause: err, atStart: true });
    throw err;
  }
  const storage = new StorageHealth(dataDir);
  const db = openDatabase(dataDir);
  registerHealth(db, storage);
  const store: Store = {
    engine: 'sqlite',
    users: promised<UsersStore>(new Users(db, storage)),
    logins: promised<WebLoginsStore>(new WebLogins(db, storage)),
    sessions: promised<SessionsStore>(new Sessions(db, storage)),
    joinTokens: promised<JoinTokensStore>(new JoinTokens(db, storage)),
    agents: promised<AgentsStore>(new Agents(db, storage)),
    captures: promised<CapturesStore>(new Captures(db, storage)),
    audit: promised<AuditStore>(new AuditLog(db, storage)),
    chunks: new FileChunkStore(new ChunkFiles(join(dataDir, 'captures')), storage),
    counters: storage,
    /**
     * SQLite has one connection, so the transaction is the database's. Safe
     * because `fn` only awaits this store's calls, which settle at once: no
     * other request's work can run in between.
     */
    async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
      storage.required('the change', () => db.exec('BEGIN IMMEDIATE'));
      return finishTransaction(fn);
    },
    newCaptureRefusal() {
      return storage.degraded ? new DiskFullError(dataDir, 'a new capture') : undefined;
    },
    async health(): Promise<StoreHealth> {
      db.prepare('SELECT 1').get();
      const problems = storage.problems();
      return { ok: problems.length === 0, engine: 'sqlite', problems, heldWrites: storage.heldWrites, droppedWrites: storage.writesDropped };
    },
    async signingKey(create) {
      return new Uint8Array(readOrCreateSecretFile(join(dataDir, 'signing-key'), () => Buffer.from(create())));
    },
    async close() {
      storage.close();
      db.close();
    },
  };
  async function finishTransaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    try {
      const result = await fn(store);
      storage.required('the change', () => db.exec('COMMIT'));
      return result;
    } catch (err) {
      // SQLite may already have rolled back (it does on SQLITE_FULL); a second ROLLBACK would hide the cause.
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }
  return store;
}
