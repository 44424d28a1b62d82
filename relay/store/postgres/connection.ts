// The relay's link to PostgreSQL: one pg Pool, and the one place its errors
// are sorted. A lost connection (PostgreSQL restarting, a network cut) must
// neither crash the relay nor need a restart of it: idle connections that die
// are dropped by the pool, a query that finds the server gone rejects with
// DATABASE_UNREACHABLE (HTTP 503), and the next query opens a fresh connection.
// Nothing here ever prints the URL: it carries the database password.
import pg from 'pg';
import type { Pool, PoolClient, QueryResult, QueryResultRow } from 'pg';
import { PeriscopeError } from '../../../shared/errors.ts';

export const DATABASE_UNREACHABLE = 'DATABASE_UNREACHABLE' as const;

/** PostgreSQL's type id of int8 (BIGINT, count(*), sum(integer), BIGSERIAL). */
const INT8_OID = 20;

/** Socket errors that mean the server is not there (or stopped answering). */
const CONNECTION_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);
/**
 * SQLSTATEs of a server shutting down or starting up (57P01 admin_shutdown,
 * 57P02 crash_shutdown, 57P03 cannot_connect_now), of a database the relay
 * may not use (28xxx authorization, 3D000 no such database); class 08 is
 * "connection exception" as a whole.
 */
const UNREACHABLE_STATES = new Set(['57P01', '57P02', '57P03', '3D000']);
/** What pg itself says when a connection it had (or was opening) is gone; it gives these no code. */
const PG_CONNECTION_MESSAGES = /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Query read timeout/i;

export interface PoolSettings {
  /** Most connections this relay opens (default 10). */
  maxConnections?: number;
  /** How long a query waits to get a connection before it fails DATABASE_UNREACHABLE (default 5000 ms). */
  connectTimeoutMs?: number;
  /** Where connection trouble is reported, one line each (default console.error). */
  log?: (line: string) => void;
}

/**
 * Where the database is, as `host:port/database`, for messages. Refuses
 * (BAD_CONFIG) a URL that is not one, without quoting it.
 */
export function describeServer(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new PeriscopeError('BAD_CONFIG', 'PERISCOPE_DATABASE_URL is not a URL; give it as postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new PeriscopeError('BAD_CONFIG', `PERISCOPE_DATABASE_URL must start with postgres:// (it starts with ${u.protocol}//); give it as postgres://USER:PASSWORD@HOST:PORT/DATABASE`);
  }
  // libpq-style URLs may name a socket directory or host in ?host=.
  const host = u.searchParams.get('host') || u.hostname || 'localhost';
  const port = u.searchParams.get('port') || u.port || '5432';
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || decodeURIComponent(u.username) || 'postgres';
  return `${host}:${port}/${database}`;
}

/** The URL's password, so it can be cut out of any text that might quote it. */
function passwordOf(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}

/** True when `err` means the server could not be reached or the connection to it broke (not: a query it refused). */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_ERRNOS.has(code) || UNREACHABLE_STATES.has(code) || code.startsWith('08') || code.startsWith('28'))) return true;
  // Node reports a refused connection to each address of a name as one AggregateError.
  if (err instanceof AggregateError && err.errors.some(isConnectionError)) return true;
  return PG_CONNECTION_MESSAGES.test(err.message);
}

/**
 * The state of the link to the server, shared by every query of one store:
 * degraded from the first query that found the server gone until one gets an
 * answer again. Turns errors into the typed ones the relay shows.
 */
export class Link {
  /** `host:port/database`: never the URL (it holds the password). */
  readonly server: string;
  #password: string;
  #log: (line: string) => void;
  #downSince: number | undefined;
  #cause = '';

  /** Who uses the database, for messages: 'the relay', or a script's name. */
  #who: string;

  constructor(url: string, log: (line: string) => void, who = 'the relay') {
    this.server = describeServer(url);
    this.#password = passwordOf(url);
    this.#log = log;
    this.#who = who;
  }

  get degraded(): boolean {
    return this.#downSince !== undefined;
  }

  /** When the server stopped answering (epoch ms); undefined while it answers. */
  get downSince(): number | undefined {
    return this.#downSince;
  }

  /** Why it stopped answering, in pg's words (password removed). */
  get cause(): string {
    return this.#cause;
  }

  /** The server answered. */
  up(): void {
    if (this.#downSince === undefined) return;
    this.#log(`periscope relay: PostgreSQL at ${this.server} answers again after ${Math.round((Date.now() - this.#downSince) / 1000)} s`);
    this.#downSince = undefined;
    this.#cause = '';
  }

  /**
   * What to throw for `err` from a query: DATABASE_UNREACHABLE (and the link
   * is degraded) when the server is gone; otherwise `err` itself, since the
   * server answered.
   */
  failed(err: unknown): unknown {
    if (err instanceof PeriscopeError) return err;
    if (!isConnectionError(err)) {
      this.up();
      return err;
    }
    return this.unreachable(this.down(messageOf(err)), err);
  }

  /** Marks the link down (logging the first time) because of `cause`; returns the cause without the password. */
  down(cause: string): string {
    const clean = this.redact(cause);
    if (this.#downSince === undefined) {
      this.#downSince = Date.now();
      this.#log(`periscope relay: ${DATABASE_UNREACHABLE}: PostgreSQL at ${this.server} does not answer (${clean}); requests that need the database fail with 503 until it is back, and the relay reconnects by itself`);
    }
    this.#cause = clean;
    return clean;
  }

  /** The error for a server that does not answer; `then` says what to do (by default: nothing, the relay retries). */
  unreachable(cause: string, err?: unknown, then = 'the relay reconnects by itself: retry once it is back'): PeriscopeError {
    return new PeriscopeError(
      DATABASE_UNREACHABLE,
      `${this.#who} cannot reach its PostgreSQL database at ${this.server} (${cause}); check that PostgreSQL runs and accepts connections from ${this.#who} (PERISCOPE_DATABASE_URL); ${then}`,
      err === undefined ? undefined : { cause: err },
    );
  }

  /** `text` without the password, should a driver ever quote it. */
  redact(text: string): string {
    return this.#password ? text.split(this.#password).join('***') : text;
  }

  /** A pooled connection broke while idle: expected when PostgreSQL restarts; the pool drops it and opens a new one when needed. */
  idleConnectionLost(err: unknown): void {
    if (this.#downSince !== undefined) return; // already said
    this.#log(`periscope relay: a pooled connection to PostgreSQL at ${this.server} closed (${this.redact(messageOf(err))}); the next query opens a new one`);
  }
}

function messageOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(messageOf).join('; ');
  return err instanceof Error ? err.message || String((err as { code?: unknown }).code ?? err.name) : String(err);
}

/** A pool whose BIGINTs read back as numbers (epoch ms, counts, audit ids: all far below 2^53), set on this pool only. */
export function createPool(url: string, link: Link, settings: PoolSettings = {}): Pool {
  const types = new pg.TypeOverrides();
  types.setTypeParser(INT8_OID, 'text', Number);
  const pool = new pg.Pool({
    connectionString: url,
    types,
    max: settings.maxConnections ?? 10,
    connectionTimeoutMillis: settings.connectTimeoutMs ?? 5000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    application_name: 'periscope-relay',
  });
  // Without a listener an idle connection's error (the server restarted) would be an uncaught 'error' event: the relay would exit.
  pool.on('error', (err) => link.idleConnectionLost(err));
  return pool;
}

/** A connection taken from the pool for a run of queries that must share it (a transaction, migrating). */
export interface Checkout {
  client: PoolClient;
  /** Back to the pool; `broken` (it failed half-way, may still be in a transaction or hold a lock) closes it instead. */
  release(broken: boolean): void;
}

export async function checkout(pool: Pool, link: Link): Promise<Checkout> {
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (err) {
    throw link.failed(err);
  }
  // The pool listens for errors only on idle connections: a checked-out one that breaks would otherwise crash the relay.
  // Its pending query rejects with the error, which is what reports it.
  const onError = (): void => {};
  client.on('error', onError);
  let released = false;
  return {
    client,
    release(broken: boolean) {
      if (released) return;
      released = true;
      client.removeListener('error', onError);
      client.release(broken);
    },
  };
}

/** One way to send queries: the pool (each query on any connection) or one checked-out connection (a transaction). */
export class Db {
  readonly link: Link;
  #target: Pool | PoolClient;

  constructor(target: Pool | PoolClient, link: Link) {
    this.#target = target;
    this.link = link;
  }

  async query<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<QueryResult<R>> {
    try {
      const result = await this.#target.query<R>(sql, params);
      this.link.up();
      return result;
    } catch (err) {
      throw this.link.failed(err);
    }
  }

  async rows<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
    return (await this.query<R>(sql, params)).rows;
  }

  async one<R extends QueryResultRow>(sql: string, params: unknown[] = []): Promise<R | undefined> {
    return (await this.query<R>(sql, params)).rows[0];
  }

  /** Runs a change; how many rows it touched. */
  async run(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.query(sql, params)).rowCount ?? 0;
  }
}

/** A pg error's SQLSTATE, if it has one. */
export function sqlState(err: unknown): string | undefined {
  return err instanceof pg.DatabaseError ? err.code : undefined;
}

export const UNIQUE_VIOLATION = '23505';
export const FOREIGN_KEY_VIOLATION = '23503';
