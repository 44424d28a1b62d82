// `npm run migrate-to-postgres -- [--data-dir DIR]`: copies an embedded
// relay's data dir into an empty PostgreSQL database, so the relay (or
// several) can run on PostgreSQL without losing an account, session,
// capture, audit entry or sign-in. The copy itself is
// relay/store/postgres/import-embedded.ts; this is the command around it.
//
// Stop the relay first: the data dir is only read, but a relay still running
// would go on writing after the copy was taken. The database URL comes from
// PERISCOPE_DATABASE_URL only, never the command line: it holds a password,
// and command lines are visible to every user of the machine (ps).
import { resolve } from 'node:path';
import { ERROR_CODES, PeriscopeError, isPeriscopeError } from '../shared/errors.ts';
import { Link, createPool } from '../relay/store/postgres/connection.ts';
import { migrate } from '../relay/store/postgres/migrations.ts';
import { importEmbedded, openEmbeddedReadOnly, targetContents, type ImportCounts } from '../relay/store/postgres/import-embedded.ts';

const NAME = 'periscope migrate-to-postgres';

const USAGE = `usage: PERISCOPE_DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/DB npm run migrate-to-postgres -- [--data-dir DIR]

Copies the embedded relay's data dir (DIR, or PERISCOPE_DATA_DIR, or ./data)
into the PostgreSQL database at PERISCOPE_DATABASE_URL, which must be empty.
Stop the relay first. The data dir is only read and stays as it was.`;

function fail(code: keyof typeof ERROR_CODES, message: string): never {
  throw new PeriscopeError(code, message);
}

function parseArgs(argv: string[]): { dataDir: string } {
  let dataDir = process.env.PERISCOPE_DATA_DIR || './data';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (/:\/\//.test(arg)) {
      fail('BAD_ARGUMENT', 'a URL was given on the command line; the database URL goes in PERISCOPE_DATABASE_URL only, since it holds a password and command lines are visible to every user (ps)');
    }
    if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else if (arg === '--data-dir') {
      const value = argv[++i];
      if (!value) fail('BAD_ARGUMENT', '--data-dir needs a directory');
      dataDir = value;
    } else if (arg.startsWith('--data-dir=')) {
      dataDir = arg.slice('--data-dir='.length);
    } else {
      fail('BAD_ARGUMENT', `unknown argument ${JSON.stringify(arg)}\n${USAGE}`);
    }
  }
  return { dataDir: resolve(dataDir) };
}

function summary(c: ImportCounts): string {
  const mb = (c.chunkBytes / 1024 / 1024).toFixed(1);
  return [
    `${c.users} users`,
    `${c.webLogins} sign-ins`,
    `${c.sessions} sessions`,
    `${c.members} session members`,
    `${c.joinTokens} join tokens`,
    `${c.agents} agents`,
    `${c.captures} captures`,
    `${c.audit} audit entries`,
    `${c.chunks} chunks (${mb} MB)`,
    c.signingKey ? 'the signing key' : 'no signing key (the data dir had none: the relay makes a new one, and earlier sign-ins and tokens stop working)',
  ].join(', ');
}

async function main(): Promise<void> {
  const { dataDir } = parseArgs(process.argv.slice(2));
  const url = process.env.PERISCOPE_DATABASE_URL;
  if (!url) fail('BAD_CONFIG', `PERISCOPE_DATABASE_URL is not set; set it to the PostgreSQL database to copy into (postgres://USER:PASSWORD@HOST:PORT/DB)\n${USAGE}`);
  const source = openEmbeddedReadOnly(dataDir);
  // Quiet: the relay's running commentary on the connection is no use here; a failure is the one error printed at the end.
  const link = new Link(url, () => {}, 'migrate-to-postgres');
  const pool = createPool(url, link, { maxConnections: 2 });
  try {
    console.log(`${NAME}: copying ${dataDir} into PostgreSQL at ${link.server} (the relay must be stopped)`);
    await migrate(pool, link);
    const there = await targetContents(pool, link);
    if (there.length > 0) {
      fail(
        'BAD_ARGUMENT',
        `the PostgreSQL database at ${link.server} is not empty (${there.join(', ')}); copying would mix two relays' data, so nothing was copied. ` +
          'Create an empty database (e.g. `createdb periscope_new`) and point PERISCOPE_DATABASE_URL at it',
      );
    }
    const counts = await importEmbedded(source, dataDir, pool, link);
    console.log(`${NAME}: copied ${summary(counts)}`);
    for (const warning of counts.warnings) console.log(`${NAME}: warning: ${warning}`);
    console.log(`${NAME}: done. Start the relay with PERISCOPE_DATABASE_URL set; keep ${dataDir} as a backup until you are happy`);
  } catch (err) {
    // The copy is one transaction: whatever failed, the database is as empty as before.
    if (isPeriscopeError(err, 'DATABASE_UNREACHABLE')) throw link.unreachable(link.cause, err, 'nothing was copied; run this again once it is reachable');
    throw err;
  } finally {
    source.close();
    await pool.end();
  }
}

try {
  await main();
} catch (err) {
  const code = isPeriscopeError(err) ? err.code : 'INTERNAL';
  const message = err instanceof Error ? err.message : String(err);
  // Messages never hold the URL; cut the password out anyway, should a driver ever quote it.
  const password = passwordOf(process.env.PERISCOPE_DATABASE_URL);
  console.error(`${NAME}: ${code}: ${password ? message.split(password).join('***') : message}`);
  process.exitCode = 1;
}

function passwordOf(url: string | undefined): string {
  try {
    return url ? decodeURIComponent(new URL(url).password) : '';
  } catch {
    return '';
  }
}
