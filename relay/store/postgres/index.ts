// The relay's store in PostgreSQL (relay/store/contract.ts), for relays that
// share their state: several relays on one database see the same accounts,
// sessions, captures and chunks, and the conditional calls (close, finish,
// expireOverdue) let exactly one of them win.
//
// openPostgresStore connects, brings the schema up to date (migrations.ts)
// and returns the store. Queries go through one pool; transaction() checks out
// one connection for its whole run.
import type { Pool } from 'pg';
import { isPeriscopeError } from '../../../shared/errors.ts';
import type { StorageCounters } from '../../metrics.ts';
import type { Store, StoreHealth } from '../contract.ts';
import { DATABASE_UNREACHABLE, Db, Link, checkout, createPool, isConnectionError, sqlState, type PoolSettings } from './connection.ts';

/** SQLSTATEs of a transaction that lost a race with another one: run it again. */
const SERIALIZATION_FAILURE = '40001';
const DEADLOCK_DETECTED = '40P01';
const MAX_TRANSACTION_ATTEMPTS = 5;
import { migrate } from './migrations.ts';
import { PgUsers } from './users.ts';
import { PgWebLogins } from './web-logins.ts';
import { PgSessions } from './sessions.ts';
import { PgJoinTokens } from './join-tokens.ts';
import { PgAgents } from './agents.ts';
import { PgCaptures } from './captures.ts';
import { PgAudit } from './audit.ts';
import { PgChunks } from './chunks.ts';

export { DATABASE_UNREACHABLE } from './connection.ts';

export interface PostgresStoreOptions extends PoolSettings {
  /** How long health() waits for the server to answer (default 2000 ms). */
  healthTimeoutMs?: number;
}

/** health()'s SELECT 1 did not answer in time. */
const TIMED_OUT = Symbol('timed out');

/** What the pool-wide store and its transactions' stores share. */
interface Shared {
  pool: Pool;
  link: Link;
  healthTimeoutMs: number;
  closed: boolean;
}

/**
 * Connects to the database at `url` (postgres://USER:PASSWORD@HOST:PORT/DB),
 * migrates it and returns the store. Rejects DATABASE_UNREACHABLE when the
 * server does not answer, BAD_CONFIG for a URL that is not one or a database
 * set up by a newer relay.
 */
export async function openPostgresStore(url: string, options: PostgresStoreOptions = {}): Promise<Store> {
  const link = new Link(url, options.log ?? ((line) => console.error(line)));
  const pool = createPool(url, link, options);
  try {
    await migrate(pool, link);
  } catch (err) {
    await pool.end().catch(() => {});
    if (isPeriscopeError(err, DATABASE_UNREACHABLE)) throw link.unreachable(link.cause, err.cause, 'then start the relay again');
    throw err;
  }
  return new PostgresStore(new Db(pool, link), { pool, link, healthTimeoutMs: options.healthTimeoutMs ?? 2000, closed: false }, 0);
}

class PostgresStore implements Store {
  readonly engine = 'postgres' as const;
  readonly users: PgUsers;
  readonly logins: PgWebLogins;
  readonly sessions: PgSessions;
  readonly joinTokens: PgJoinTokens;
  readonly agents: PgAgents;
  readonly captures: PgCaptures;
  readonly audit: PgAudit;
  readonly chunks: PgChunks;
  readonly counters: StorageCounters;
  #db: Db;
  #shared: Shared;
  /** 0 for the pool-wide store; n inside n nested transactions (on one connection). */
  #depth: number;

  constructor(db: Db, shared: Shared, depth: number) {
    this.#db = db;
    this.#shared = shared;
    this.#depth = depth;
    this.users = new PgUsers(db);
    this.logins = new PgWebLogins(db);
    this.sessions = new PgSessions(db);
    this.joinTokens = new PgJoinTokens(db);
    this.agents = new PgAgents(db);
    this.captures = new PgCaptures(db);
    this.audit = new PgAudit(db);
    this.chunks = new PgChunks(db, depth === 0);
    const link = shared.link;
    // Nothing is held or dropped: a write either reaches the database or fails (DATABASE_UNREACHABLE).
    this.counters = {
      get degraded() {
        return link.degraded;
      },
      heldWrites: 0,
      diskFullErrors: 0,
      writesDropped: 0,
    };
  }

  /** While the server does not answer, a new capture's chunks would have nowhere to go. */
  newCaptureRefusal(): Error | undefined {
    const link = this.#shared.link;
    return link.degraded ? link.unreachable(link.cause) : undefined;
  }

  /**
   * SERIALIZABLE, so a check and the write it allows (the last enabled admin,
   * a session closed once) hold against other relays' transactions too; a
   * transaction that lost such a race is run again.
   */
  async transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    if (this.#depth > 0) return this.#savepoint(fn);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#serializable(fn);
      } catch (err) {
        const state = sqlState(err) ?? sqlState((err as { cause?: unknown }).cause);
        if (attempt >= MAX_TRANSACTION_ATTEMPTS || (state !== SERIALIZATION_FAILURE && state !== DEADLOCK_DETECTED)) throw err;
      }
    }
  }

  async #serializable<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    const { client, release } = await checkout(this.#shared.pool, this.#shared.link);
    const db = new Db(client, this.#shared.link);
    let broken = false;
    try {
      await db.run('BEGIN ISOLATION LEVEL SERIALIZABLE');
      try {
        const result = await fn(new PostgresStore(db, this.#shared, 1));
        await db.run('COMMIT');
        return result;
      } catch (err) {
        // A connection that cannot even roll back is closed rather than reused.
        await db.run('ROLLBACK').catch(() => {
          broken = true;
        });
        throw err;
      }
    } catch (err) {
      if (isConnectionError(err) || isPeriscopeError(err, DATABASE_UNREACHABLE)) broken = true;
      throw err;
    } finally {
      release(broken);
    }
  }

  /** A transaction inside one: a savepoint, so a failure the caller catches undoes only the inner part. */
  async #savepoint<T>(fn: (tx: Store) => Promise<T>): Promise<T> {
    const name = `periscope_${this.#depth}`;
    await this.#db.run(`SAVEPOINT ${name}`);
    try {
      const result = await fn(new PostgresStore(this.#db, this.#shared, this.#depth + 1));
      await this.#db.run(`RELEASE SAVEPOINT ${name}`);
      return result;
    } catch (err) {
      await this.#db.run(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => {});
      throw err;
    }
  }

  async health(): Promise<StoreHealth> {
    const link = this.#shared.link;
    let timer: NodeJS.Timeout | undefined;
    const timeoutMs = this.#shared.healthTimeoutMs;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(TIMED_OUT), timeoutMs);
    });
    try {
      await Promise.race([this.#shared.pool.query('SELECT 1'), timedOut]);
      link.up();
    } catch (err) {
      if (err === TIMED_OUT) link.down(`no answer to SELECT 1 within ${timeoutMs} ms`);
      // Any other answer, even an error, means the server is there: that is for the caller, not a health problem.
      else if (link.failed(err) === err) throw err;
    } finally {
      clearTimeout(timer);
    }
    const problems =
      link.downSince === undefined
        ? []
        : [
            {
              code: DATABASE_UNREACHABLE,
              message:
                `the relay cannot reach its PostgreSQL database at ${link.server} (${link.cause}); sign-ins, sessions and new captures fail until it is back. ` +
                `Check that PostgreSQL runs and accepts connections from the relay (PERISCOPE_DATABASE_URL); the relay reconnects by itself`,
              since: new Date(link.downSince).toISOString(),
            },
          ];
    return { ok: problems.length === 0, engine: 'postgres', problems, heldWrites: 0, droppedWrites: 0 };
  }

  async signingKey(create: () => Uint8Array): Promise<Uint8Array> {
    const existing = await this.#readKey();
    if (existing) return new Uint8Array(existing);
    // Several relays starting at once may each make a key: the first INSERT wins and all read back that one.
    const key = create();
    await this.#db.run('INSERT INTO signing_key (id, key, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING', [Buffer.from(key), Date.now()]);
    return new Uint8Array((await this.#readKey())!);
  }

  async #readKey(): Promise<Buffer | undefined> {
    return (await this.#db.one<{ key: Buffer }>('SELECT key FROM signing_key WHERE id = 1'))?.key;
  }

  async close(): Promise<void> {
    if (this.#depth > 0) throw new Error('close() was called on the store of a transaction; close the store it came from');
    if (this.#shared.closed) return;
    this.#shared.closed = true;
    await this.chunks.closeAll();
    await this.#shared.pool.end();
  }
}
