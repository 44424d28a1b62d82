// Everything the relay keeps across restarts, opened in one place: the
// embedded store in the data dir, or PostgreSQL when PERISCOPE_DATABASE_URL
// says so. Both answer the one contract in contract.ts.
import { openSqliteStore } from './sqlite-store.ts';
import type { Store } from './contract.ts';

export type { Store } from './contract.ts';

export interface StoreConfig {
  dataDir: string;
  /** postgres://… ; unset: the embedded store in dataDir. */
  databaseUrl: string | undefined;
}

export async function openStore(config: StoreConfig): Promise<Store> {
  if (config.databaseUrl === undefined) return openSqliteStore(config.dataDir);
  const { openPostgresStore } = await import('./postgres/index.ts');
  return openPostgresStore(config.databaseUrl);
}
