// The relay's embedded SQLite database: one file in the data dir holding
// accounts, sessions, agents, captures and the audit log. Chunk payloads live in
// separate append-only files (chunk-files.ts); rows only count them.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { chmodSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PeriscopeError } from '../../shared/errors.ts';
import { FILE_MODE } from './data-dir.ts';
import { type StorageHealth, DiskFullError, isDiskFull } from './storage-health.ts';

export const DATABASE_FILE = 'relay.db';
/** relay.db is missing or empty although the data dir holds what it described. */
export const DATABASE_EMPTY = 'DATABASE_EMPTY';
/** relay.db is not a readable SQLite database, or fails its integrity check. */
export const DATABASE_DAMAGED = 'DATABASE_DAMAGED';

const SQLITE_CORRUPT = 11;
const SQLITE_NOTADB = 26;
/** How many problems from quick_check the start-up error quotes. */
const QUICK_CHECK_QUOTED = 5;

/** The schema a new database gets, then MIGRATIONS brings it (and any older database) to SCHEMA_VERSION. */
export const BASE_SCHEMA_VERSION = 1;
/**
 * MIGRATIONS[i] takes a database from schema BASE_SCHEMA_VERSION + i to the
 * next, in one transaction with the version bump. Only ever append: data dirs
 * of every released relay must keep opening.
 */
const MIGRATIONS: string[] = [
  // 2: accounts can be disabled (by an admin) and show when they last signed in.
  `ALTER TABLE users ADD COLUMN disabled_at INTEGER;
   ALTER TABLE users ADD COLUMN last_sign_in_at INTEGER;`,
  // 3: the user an agent runs as, and why it is gone for good (AGENT_END_REASONS in shared/protocol.ts).
  `ALTER TABLE agents ADD COLUMN user TEXT NOT NULL DEFAULT '';
   ALTER TABLE agents ADD COLUMN ended TEXT;`,
  // 4: a dump's asyncio tasks (DumpTasks in shared/protocol.ts), beside its threads in result.
  `ALTER TABLE captures ADD COLUMN tasks TEXT;`,
  // 5: the relay holding an active capture's agent, and when the capture times out unless renewed (contract.ts CapturesStore.hold).
  `ALTER TABLE captures ADD COLUMN owner TEXT;
   ALTER TABLE captures ADD COLUMN deadline INTEGER;`,
];
export const SCHEMA_VERSION = BASE_SCHEMA_VERSION + MIGRATIONS.length;

/** Schema BASE_SCHEMA_VERSION, as the first relays created it; frozen (changes are MIGRATIONS). Exported for tests that make an old data dir. */
export const BASE_SCHEMA = `
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  admin INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  created_by TEXT
);
-- One row per sign-in; deleting or revoking it invalidates the cookie's JWT.
CREATE TABLE web_logins (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  csrf_token TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_by TEXT NOT NULL REFERENCES users(id),
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  closed_at INTEGER,
  closed_by TEXT,
  close_reason TEXT
);
CREATE TABLE session_members (
  session_id TEXT NOT NULL REFERENCES sessions(id),
  user_id TEXT NOT NULL REFERENCES users(id),
  added_by TEXT,
  added_at INTEGER NOT NULL,
  PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_members_by_user ON session_members(user_id);
CREATE TABLE join_tokens (
  jti TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  code TEXT NOT NULL UNIQUE,
  token TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  host TEXT NOT NULL,
  container_id TEXT NOT NULL,
  arch TEXT NOT NULL,
  agent_version TEXT NOT NULL,
  protocol INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  connected_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  processes TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX agents_by_session ON agents(session_id);
CREATE TABLE captures (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  agent_id TEXT NOT NULL REFERENCES agents(id),
  requested_by TEXT NOT NULL,
  kind TEXT NOT NULL,
  pid INTEGER NOT NULL,
  options TEXT NOT NULL,
  status TEXT NOT NULL,
  samples INTEGER NOT NULL DEFAULT 0,
  chunks INTEGER NOT NULL DEFAULT 0,
  stats TEXT,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  end_reason TEXT,
  error TEXT,
  result TEXT,
  stop_requested_by TEXT
);
CREATE INDEX captures_by_session ON captures(session_id);
CREATE INDEX captures_by_agent ON captures(agent_id);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts INTEGER NOT NULL,
  actor TEXT NOT NULL,
  session_id TEXT,
  action TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_by_session ON audit(session_id, id);
`;

/**
 * Opens (or, for a new data dir, creates) the database. Refuses to start, with
 * a PeriscopeError naming the file and the fix, rather than ever initialise a
 * data dir that already holds data, or run on a damaged database.
 */
/**
 * Every store call prepared its SQL again: under 2,000 joins that compiling
 * was a fifth of the relay's CPU. A prepared statement is reusable, so each
 * SQL text is compiled once per database. (Safe for the store's calls, which
 * finish a statement before the next runs; nothing iterates one while
 * running the same SQL again.)
 */
function cacheStatements(db: DatabaseSync): void {
  const prepare = db.prepare.bind(db);
  const compiled = new Map<string, StatementSync>();
  db.prepare = ((sql: string) => {
    let statement = compiled.get(sql);
    if (!statement) {
      statement = prepare(sql);
      compiled.set(sql, statement);
    }
    return statement;
  }) as DatabaseSync['prepare'];
}

export function openDatabase(dataDir: string): DatabaseSync {
  const path = join(dataDir, DATABASE_FILE);
  const existed = existsSync(path);
  const leftovers = dataLeftBehind(dataDir);
  // Checked before SQLite touches the file: opening a 0-byte file in WAL mode writes a fresh header into it.
  if (existed && statSync(path).size === 0 && leftovers.length > 0) throw emptyDatabase(path, dataDir, 'is empty (0 bytes)', leftovers);
  if (!existed && leftovers.some((l) => l.endsWith('capture files'))) throw emptyDatabase(path, dataDir, 'is missing', leftovers);
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path);
    quickCheck(db, path);
    const version = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
    if (version === 0) {
      const tables = Number((db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n);
      if (tables > 0) throw damaged(path, `it has ${tables} tables but no schema version`);
      if (existed && leftovers.length > 0) throw emptyDatabase(path, dataDir, 'holds no tables', leftovers);
    } else if (version > SCHEMA_VERSION) {
      throw new Error(`the database in ${dataDir} was written by a newer relay (schema ${version}, this relay knows ${SCHEMA_VERSION}); upgrade the relay`);
    }
    chmodSync(path, FILE_MODE);
    // WAL: readers (downloads, listings) never block the writer (chunk ingest).
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
    if (version === 0) {
      db.exec('BEGIN');
      db.exec(BASE_SCHEMA);
      db.exec(`PRAGMA user_version = ${BASE_SCHEMA_VERSION}`);
      db.exec('COMMIT');
    }
    migrate(db, Math.max(version, BASE_SCHEMA_VERSION));
    cacheStatements(db);
    return db;
  } catch (err) {
    db?.close();
    if (err instanceof PeriscopeError || !(err instanceof Error)) throw err;
    if (isDiskFull(err)) throw new DiskFullError(dataDir, `the journal files SQLite needs next to ${path}`, { cause: err, atStart: true });
    const code = sqliteCode(err);
    if (code === SQLITE_CORRUPT || code === SQLITE_NOTADB) throw damaged(path, err.message);
    throw err;
  }
}

/** Runs each migration the database has not had yet, each with its version bump in one transaction. */
function migrate(db: DatabaseSync, from: number): void {
  for (let version = from; version < SCHEMA_VERSION; version++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[version - BASE_SCHEMA_VERSION]!);
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  }
}

/** What in the data dir shows it has been used: a relay.db that lost its contents would orphan these. */
function dataLeftBehind(dataDir: string): string[] {
  const found: string[] = [];
  if (existsSync(join(dataDir, 'signing-key'))) found.push('signing-key');
  const dir = join(dataDir, 'captures');
  const captures = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.chunks')).length : 0;
  if (captures > 0) found.push(`${captures} capture files`);
  return found;
}

/** PRAGMA quick_check reads every page: a malformed one is found now, not at some later sign-in. */
function quickCheck(db: DatabaseSync, path: string): void {
  const rows = db.prepare(`PRAGMA quick_check(${QUICK_CHECK_QUOTED})`).all() as { quick_check: string }[];
  const problems = rows.map((r) => r.quick_check).filter((p) => p !== 'ok');
  if (problems.length > 0) throw damaged(path, `SQLite's quick_check found: ${problems.join('; ')}`);
}

function sqliteCode(err: Error): number | undefined {
  const code = (err as { errcode?: unknown }).errcode;
  return typeof code === 'number' ? code & 0xff : undefined;
}

function damaged(path: string, detail: string): PeriscopeError {
  return new PeriscopeError(
    DATABASE_DAMAGED,
    `${path} is damaged (${detail}). The relay will not run on it. Stop here and restore ${path} from a backup (with ${path}-wal and ${path}-shm removed); ` +
      `or salvage what is readable with \`sqlite3 ${path} .recover | sqlite3 ${path}.recovered\` and move ${path}.recovered to ${path}`,
  );
}

function emptyDatabase(path: string, dataDir: string, state: string, leftovers: string[]): PeriscopeError {
  return new PeriscopeError(
    DATABASE_EMPTY,
    `${path} ${state}, but ${dataDir} holds a relay's data (${leftovers.join(', ')}); starting would create a new admin and lose every account, session and capture record. ` +
      `Restore ${path} from a backup; or, to really start over, move ${dataDir} away and start with an empty data dir`,
  );
}

/** Lets the storage health hold or refuse writes by whether a transaction is open (storage-health.ts). */
export function registerHealth(db: DatabaseSync, health: StorageHealth): void {
  health.attach(db);
}
