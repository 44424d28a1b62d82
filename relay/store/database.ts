// The relay's embedded SQLite database: one file in the data dir holding
// accounts, sessions, agents, captures and the audit log. Chunk payloads live in
// separate append-only files (chunk-files.ts); rows only count them.
import { DatabaseSync } from 'node:sqlite';
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { FILE_MODE } from './data-dir.ts';

const SCHEMA_VERSION = 1;

const SCHEMA = `
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

export function openDatabase(dataDir: string): DatabaseSync {
  const path = join(dataDir, 'relay.db');
  const fresh = !existsSync(path);
  const db = new DatabaseSync(path);
  chmodSync(path, FILE_MODE);
  // WAL: readers (downloads, listings) never block the writer (chunk ingest).
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
  const version = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  if (fresh || version === 0) {
    db.exec('BEGIN');
    db.exec(SCHEMA);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec('COMMIT');
  } else if (version > SCHEMA_VERSION) {
    throw new Error(`the database in ${dataDir} was written by a newer relay (schema ${version}, this relay knows ${SCHEMA_VERSION}); upgrade the relay`);
  }
  return db;
}

/** Runs `fn` in one transaction, so a crash never leaves half an operation behind. */
export function transaction<T>(db: DatabaseSync, fn: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    db.exec('ROLLBACK');
    throw err;
  }
}
