// The PostgreSQL schema, as numbered migrations recorded in schema_migrations.
// Several relays may start at once on one database: each takes the same
// advisory lock before looking at the schema, so exactly one applies a
// migration and the others find it done. Each migration lands with its
// version row in one transaction, so a crash never leaves half of one.
//
// The tables mirror the embedded schema (relay/store/database.ts) so the
// stores read alike and scripts/migrate-to-postgres.ts copies column by
// column. Differences, each for a reason:
//  - times and counters are BIGINT (epoch ms outgrow INTEGER); they read back as numbers (connection.ts);
//  - users.admin is BOOLEAN;
//  - agents.user is agents.os_user: USER is a reserved word in PostgreSQL, and unquoted it silently means current_user;
//  - JSON columns stay TEXT: they round-trip byte for byte (JSONB would reorder keys);
//  - chunks are rows of capture_chunks, and the token-signing key is the one row of signing_key (the embedded relay keeps both as files).
import type { Pool } from 'pg';
import { PeriscopeError } from '../../../shared/errors.ts';
import { checkout, type Link } from './connection.ts';

/** The advisory lock every relay takes to migrate: any constant, the same in every release ('peri' 'scop'). */
const MIGRATION_LOCK = 0x70657269_73636f70n;

/**
 * MIGRATIONS[i] is schema version i + 1. Only ever append: databases of every
 * released relay must keep opening. Never edit one that has shipped.
 */
export const MIGRATIONS: { description: string; sql: string }[] = [
  {
    description: 'the tables of the embedded schema 5, chunk rows and the signing key',
    sql: `
CREATE TABLE users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  admin BOOLEAN NOT NULL DEFAULT FALSE,
  created_at BIGINT NOT NULL,
  created_by TEXT,
  disabled_at BIGINT,
  last_sign_in_at BIGINT
);
CREATE TABLE web_logins (
  id TEXT PRIMARY KEY,
  user_id TEXT NOT NULL REFERENCES users(id),
  csrf_token TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE INDEX web_logins_by_user ON web_logins(user_id);
CREATE TABLE sessions (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_by TEXT NOT NULL REFERENCES users(id),
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  closed_at BIGINT,
  closed_by TEXT,
  close_reason TEXT
);
CREATE TABLE session_members (
  session_id TEXT NOT NULL REFERENCES sessions(id),
  user_id TEXT NOT NULL REFERENCES users(id),
  added_by TEXT,
  added_at BIGINT NOT NULL,
  PRIMARY KEY (session_id, user_id)
);
CREATE INDEX session_members_by_user ON session_members(user_id);
CREATE TABLE join_tokens (
  jti TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  code TEXT NOT NULL UNIQUE,
  token TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  revoked_at BIGINT
);
CREATE INDEX join_tokens_by_session ON join_tokens(session_id);
CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  session_id TEXT NOT NULL REFERENCES sessions(id),
  host TEXT NOT NULL,
  container_id TEXT NOT NULL,
  arch TEXT NOT NULL,
  agent_version TEXT NOT NULL,
  protocol INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  connected_at BIGINT NOT NULL,
  last_seen BIGINT NOT NULL,
  processes TEXT NOT NULL DEFAULT '[]',
  os_user TEXT NOT NULL DEFAULT '',
  ended TEXT
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
  samples BIGINT NOT NULL DEFAULT 0,
  chunks INTEGER NOT NULL DEFAULT 0,
  stats TEXT,
  started_at BIGINT NOT NULL,
  ended_at BIGINT,
  end_reason TEXT,
  error TEXT,
  result TEXT,
  tasks TEXT,
  stop_requested_by TEXT,
  owner TEXT,
  deadline BIGINT
);
CREATE INDEX captures_by_session ON captures(session_id);
CREATE INDEX captures_by_agent ON captures(agent_id);
CREATE INDEX captures_by_status ON captures(status);
CREATE TABLE audit (
  id BIGSERIAL PRIMARY KEY,
  ts BIGINT NOT NULL,
  actor TEXT NOT NULL,
  session_id TEXT,
  action TEXT NOT NULL,
  detail TEXT NOT NULL
);
CREATE INDEX audit_by_session ON audit(session_id, id);
CREATE TABLE capture_chunks (
  capture_id TEXT NOT NULL REFERENCES captures(id),
  seq INTEGER NOT NULL,
  payload BYTEA NOT NULL,
  PRIMARY KEY (capture_id, seq)
);
-- One row, ever: the key every relay on this database signs tokens with.
CREATE TABLE signing_key (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  key BYTEA NOT NULL,
  created_at BIGINT NOT NULL
);
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Brings the database to SCHEMA_VERSION. Safe to run from several relays at
 * once (they take turns); refuses (BAD_CONFIG) a database a newer relay set up.
 */
export async function migrate(pool: Pool, link: Link): Promise<void> {
  const { client, release } = await checkout(pool, link);
  let broken = false;
  try {
    // A session lock, held across all migrations: released by the unlock below, or by PostgreSQL should this connection die.
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK.toString()]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY,
        description TEXT NOT NULL,
        applied_at BIGINT NOT NULL
      )`);
      const row = (await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0];
      const current = row?.v ?? 0;
      if (current > SCHEMA_VERSION) {
        throw new PeriscopeError(
          'BAD_CONFIG',
          `the PostgreSQL database at ${link.server} has schema version ${current}, set up by a newer relay (this one knows up to ${SCHEMA_VERSION}); upgrade this relay, or point PERISCOPE_DATABASE_URL at another database`,
        );
      }
      for (let version = current + 1; version <= SCHEMA_VERSION; version++) {
        const migration = MIGRATIONS[version - 1]!;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, description, applied_at) VALUES ($1, $2, $3)', [version, migration.description, Date.now()]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {
            broken = true;
          });
          throw err;
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK.toString()]).catch(() => {
        broken = true;
      });
    }
  } catch (err) {
    broken = true;
    throw link.failed(err);
  } finally {
    // A connection that failed half-way may still hold the lock or a transaction: never hand it to anyone else.
    release(broken);
  }
}
