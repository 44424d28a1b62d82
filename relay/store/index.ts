// Everything the relay keeps across restarts, opened in one place.
import type { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { openDatabase, registerHealth } from './database.ts';
import { DiskFullError, StorageHealth, isDiskFull } from './storage-health.ts';
import { ensureDataDir } from './data-dir.ts';
import { Users } from './users.ts';
import { WebLogins } from './web-logins.ts';
import { Sessions } from './sessions.ts';
import { JoinTokens } from './join-tokens.ts';
import { Agents } from './agents.ts';
import { Captures } from './captures.ts';
import { AuditLog } from './audit-log.ts';
import { ChunkFiles } from './chunk-files.ts';

export interface Store {
  db: DatabaseSync;
  dataDir: string;
  users: Users;
  logins: WebLogins;
  sessions: Sessions;
  joinTokens: JoinTokens;
  agents: Agents;
  captures: Captures;
  audit: AuditLog;
  chunks: ChunkFiles;
  /** Whether the data dir has room; holds writes a full disk refused. */
  health: StorageHealth;
}

export function openStore(dataDir: string): Store {
  try {
    ensureDataDir(dataDir);
  } catch (err) {
    if (isDiskFull(err)) throw new DiskFullError(dataDir, 'the data dir itself', { cause: err, atStart: true });
    throw err;
  }
  const health = new StorageHealth(dataDir);
  const db = openDatabase(dataDir);
  registerHealth(db, health);
  return {
    db,
    dataDir,
    users: new Users(db, health),
    logins: new WebLogins(db, health),
    sessions: new Sessions(db, health),
    joinTokens: new JoinTokens(db, health),
    agents: new Agents(db, health),
    captures: new Captures(db, health),
    audit: new AuditLog(db, health),
    chunks: new ChunkFiles(join(dataDir, 'captures')),
    health,
  };
}
