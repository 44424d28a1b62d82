// Everything the relay keeps across restarts, opened in one place.
import type { DatabaseSync } from 'node:sqlite';
import { join } from 'node:path';
import { openDatabase } from './database.ts';
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
}

export function openStore(dataDir: string): Store {
  ensureDataDir(dataDir);
  const db = openDatabase(dataDir);
  return {
    db,
    dataDir,
    users: new Users(db),
    logins: new WebLogins(db),
    sessions: new Sessions(db),
    joinTokens: new JoinTokens(db),
    agents: new Agents(db),
    captures: new Captures(db),
    audit: new AuditLog(db),
    chunks: new ChunkFiles(join(dataDir, 'captures')),
  };
}
