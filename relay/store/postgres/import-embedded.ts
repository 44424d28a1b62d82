// Copies an embedded relay's data dir (relay.db, the chunk files, the
// signing-key file) into an empty PostgreSQL database, for
// scripts/migrate-to-postgres.ts. Everything lands in one transaction: on
// any failure the database is left as empty as it was, and the copy can
// simply be run again.
//
// The data dir is only read (relay.db opened read-only, in one read
// transaction for a consistent picture). A relay still running on it would
// keep writing after the picture was taken, so the relay must be stopped.
import { DatabaseSync } from 'node:sqlite';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Pool, PoolClient } from 'pg';
import { PeriscopeError } from '../../../shared/errors.ts';
import { DATABASE_FILE, SCHEMA_VERSION as EMBEDDED_SCHEMA_VERSION } from '../database.ts';
import { ChunkLog } from '../chunk-files.ts';
import { checkout, type Link } from './connection.ts';

/** What was copied, for the operator. */
export interface ImportCounts {
  users: number;
  webLogins: number;
  sessions: number;
  members: number;
  joinTokens: number;
  agents: number;
  captures: number;
  audit: number;
  chunks: number;
  chunkBytes: number;
  signingKey: boolean;
  /** Things copied only in part, or left behind, each in words. */
  warnings: string[];
}

/** PostgreSQL takes at most 65535 parameters per statement; batches stay well below, and below this many payload bytes. */
const MAX_BATCH_PARAMS = 10_000;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

type Row = Record<string, unknown>;

/** One table: how its rows are read from relay.db and which PostgreSQL columns they fill. */
interface TableCopy {
  table: string;
  key: keyof ImportCounts;
  /** In an order that keeps foreign keys satisfied and ids ascending. */
  select: string;
  columns: string[];
  values(row: Row): unknown[];
}

/** Columns a data dir of an older schema lacks read as undefined: they get what the embedded migrations would have given them. */
const orNull = (v: unknown) => (v === undefined ? null : v);

const TABLES: TableCopy[] = [
  {
    table: 'users',
    key: 'users',
    select: 'SELECT * FROM users ORDER BY rowid',
    columns: ['id', 'username', 'password_hash', 'admin', 'created_at', 'created_by', 'disabled_at', 'last_sign_in_at'],
    values: (r) => [r.id, r.username, r.password_hash, r.admin === 1, r.created_at, r.created_by, orNull(r.disabled_at), orNull(r.last_sign_in_at)],
  },
  {
    table: 'web_logins',
    key: 'webLogins',
    select: 'SELECT * FROM web_logins ORDER BY rowid',
    columns: ['id', 'user_id', 'csrf_token', 'created_at', 'expires_at', 'revoked_at'],
    values: (r) => [r.id, r.user_id, r.csrf_token, r.created_at, r.expires_at, r.revoked_at],
  },
  {
    table: 'sessions',
    key: 'sessions',
    select: 'SELECT * FROM sessions ORDER BY rowid',
    columns: ['id', 'name', 'created_by', 'created_at', 'expires_at', 'closed_at', 'closed_by', 'close_reason'],
    values: (r) => [r.id, r.name, r.created_by, r.created_at, r.expires_at, r.closed_at, r.closed_by, r.close_reason],
  },
  {
    table: 'session_members',
    key: 'members',
    select: 'SELECT * FROM session_members ORDER BY rowid',
    columns: ['session_id', 'user_id', 'added_by', 'added_at'],
    values: (r) => [r.session_id, r.user_id, r.added_by, r.added_at],
  },
  {
    table: 'join_tokens',
    key: 'joinTokens',
    select: 'SELECT * FROM join_tokens ORDER BY rowid',
    columns: ['jti', 'session_id', 'code', 'token', 'created_at', 'expires_at', 'revoked_at'],
    values: (r) => [r.jti, r.session_id, r.code, r.token, r.created_at, r.expires_at, r.revoked_at],
  },
  {
    table: 'agents',
    key: 'agents',
    select: 'SELECT * FROM agents ORDER BY rowid',
    columns: ['id', 'session_id', 'host', 'container_id', 'arch', 'agent_version', 'protocol', 'created_at', 'connected_at', 'last_seen', 'processes', 'os_user', 'ended'],
    values: (r) => [r.id, r.session_id, r.host, r.container_id, r.arch, r.agent_version, r.protocol, r.created_at, r.connected_at, r.last_seen, r.processes, r.user ?? '', orNull(r.ended)],
  },
  {
    table: 'captures',
    key: 'captures',
    select: 'SELECT * FROM captures ORDER BY rowid',
    columns: [
      'id', 'session_id', 'agent_id', 'requested_by', 'kind', 'pid', 'options', 'status', 'samples', 'chunks', 'stats', 'started_at', 'ended_at', 'end_reason', 'error', 'result', 'tasks',
      'stop_requested_by', 'owner', 'deadline',
    ],
    values: (r) => [
      r.id, r.session_id, r.agent_id, r.requested_by, r.kind, r.pid, r.options, r.status, r.samples, r.chunks, r.stats, r.started_at, r.ended_at, r.end_reason, r.error, r.result, orNull(r.tasks),
      r.stop_requested_by, orNull(r.owner), orNull(r.deadline),
    ],
  },
  {
    // With their ids: they are how the audit log pages, and links to entries must keep working.
    table: 'audit',
    key: 'audit',
    select: 'SELECT * FROM audit ORDER BY id',
    columns: ['id', 'ts', 'actor', 'session_id', 'action', 'detail'],
    values: (r) => [r.id, r.ts, r.actor, r.session_id, r.action, r.detail],
  },
];

/** Tables that must be empty before the copy: anything there would mix two relays' data. */
const TARGET_TABLES = ['users', 'sessions', 'agents', 'captures', 'audit', 'capture_chunks', 'signing_key'];

/** Opens the data dir's relay.db read-only; refuses one that is missing or from a newer relay. */
export function openEmbeddedReadOnly(dataDir: string): DatabaseSync {
  const path = join(dataDir, DATABASE_FILE);
  if (!existsSync(path)) {
    throw new PeriscopeError('BAD_ARGUMENT', `${dataDir} holds no ${DATABASE_FILE}, so it is not an embedded relay's data dir; give the directory the relay ran with (its PERISCOPE_DATA_DIR)`);
  }
  const db = new DatabaseSync(path, { readOnly: true });
  const version = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  if (version === 0 || version > EMBEDDED_SCHEMA_VERSION) {
    db.close();
    throw new PeriscopeError(
      'BAD_ARGUMENT',
      version === 0
        ? `${path} holds no relay schema; give the data dir of a relay that has run`
        : `${path} has schema ${version}, written by a newer relay than this checkout (which knows ${EMBEDDED_SCHEMA_VERSION}); run the copy from the relay's own version`,
    );
  }
  return db;
}

/** How many rows the target already has, per table that must be empty; empty when none. */
export async function targetContents(pool: Pool, link: Link): Promise<string[]> {
  const found: string[] = [];
  for (const table of TARGET_TABLES) {
    let n: number;
    try {
      n = (await pool.query<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]!.n;
    } catch (err) {
      throw link.failed(err);
    }
    if (n > 0) found.push(`${n} rows in ${table}`);
  }
  return found;
}

/** Copies everything in `source` (relay.db of `dataDir`) into the migrated, empty database behind `pool`, in one transaction. */
export async function importEmbedded(source: DatabaseSync, dataDir: string, pool: Pool, link: Link): Promise<ImportCounts> {
  const counts: ImportCounts = { users: 0, webLogins: 0, sessions: 0, members: 0, joinTokens: 0, agents: 0, captures: 0, audit: 0, chunks: 0, chunkBytes: 0, signingKey: false, warnings: [] };
  const { client, release } = await checkout(pool, link);
  let broken = false;
  // One read transaction: every table as of the same moment.
  source.exec('BEGIN');
  try {
    await client.query('BEGIN');
    try {
      for (const copy of TABLES) (counts[copy.key] as number) = await copyTable(source, client, copy);
      // The next audit entry continues after the copied ones.
      await client.query("SELECT setval(pg_get_serial_sequence('audit', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM audit), false)");
      await copyChunks(source, dataDir, client, counts);
      counts.signingKey = await copySigningKey(dataDir, client);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw err;
    }
  } catch (err) {
    broken = true;
    throw link.failed(err);
  } finally {
    source.exec('ROLLBACK');
    release(broken);
  }
  return counts;
}

async function copyTable(source: DatabaseSync, client: PoolClient, copy: TableCopy): Promise<number> {
  const batch = new Batch(client, copy.table, copy.columns);
  for (const row of source.prepare(copy.select).iterate() as Iterable<Row>) await batch.add(copy.values(row), 0);
  await batch.flush();
  return batch.rows;
}

/** Every recorded capture's chunks, from its chunk file, as rows in seq order. */
async function copyChunks(source: DatabaseSync, dataDir: string, client: PoolClient, counts: ImportCounts): Promise<void> {
  const batch = new Batch(client, 'capture_chunks', ['capture_id', 'seq', 'payload']);
  const recorded = new Set<string>();
  for (const { id } of source.prepare('SELECT id FROM captures ORDER BY rowid').iterate() as Iterable<{ id: string }>) {
    recorded.add(id);
    const path = join(dataDir, 'captures', `${id}.chunks`);
    if (!existsSync(path)) continue;
    const log = new ChunkLog(path, false);
    try {
      for (let seq = 0; seq < log.count; seq++) {
        const payload = log.read(seq);
        await batch.add([id, seq, payload], payload.byteLength);
        counts.chunkBytes += payload.byteLength;
      }
      if (log.damage) {
        counts.warnings.push(
          `${path} is damaged at record ${log.damage.record} (${log.damage.problem}): its first ${log.count} chunks were copied, the rest cannot be read`,
        );
      }
    } finally {
      log.close();
    }
  }
  await batch.flush();
  counts.chunks = batch.rows;
  const dir = join(dataDir, 'captures');
  const orphans = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.chunks') && !recorded.has(f.slice(0, -'.chunks'.length))) : [];
  if (orphans.length > 0) counts.warnings.push(`${orphans.length} chunk files in ${dir} belong to no recorded capture and were not copied (e.g. ${orphans[0]})`);
}

/** The key tokens are signed with: copied, so every sign-in, join token and agent credential stays valid. */
async function copySigningKey(dataDir: string, client: PoolClient): Promise<boolean> {
  const path = join(dataDir, 'signing-key');
  if (!existsSync(path)) return false;
  await client.query('INSERT INTO signing_key (id, key, created_at) VALUES (1, $1, $2)', [readFileSync(path), Date.now()]);
  return true;
}

/** Rows of one table, sent as multi-row INSERTs: one round trip per batch instead of per row. */
class Batch {
  rows = 0;
  #client: PoolClient;
  #table: string;
  #columns: string[];
  #pending: unknown[][] = [];
  #bytes = 0;

  constructor(client: PoolClient, table: string, columns: string[]) {
    this.#client = client;
    this.#table = table;
    this.#columns = columns;
  }

  async add(values: unknown[], bytes: number): Promise<void> {
    this.#pending.push(values);
    this.#bytes += bytes;
    if ((this.#pending.length + 1) * this.#columns.length > MAX_BATCH_PARAMS || this.#bytes >= MAX_BATCH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#pending.length === 0) return;
    const width = this.#columns.length;
    const tuples = this.#pending.map((_, i) => `(${this.#columns.map((__, j) => `$${i * width + j + 1}`).join(', ')})`);
    await this.#client.query(`INSERT INTO ${this.#table} (${this.#columns.join(', ')}) VALUES ${tuples.join(', ')}`, this.#pending.flat());
    this.rows += this.#pending.length;
    this.#pending = [];
    this.#bytes = 0;
  }
}
