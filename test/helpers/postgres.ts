// A real, throwaway PostgreSQL for tests: initdb into a fresh temp dir, the
// server on 127.0.0.1 and a free port (and a socket in that dir, nowhere
// else), password auth, fsync off. Stopped and removed when this process
// exits, however it exits.
//
// PostgreSQL refuses to run as root: when the tests run as root the server
// runs as the `postgres` OS user (Debian's postgresql package makes it), via
// setpriv, which execs (so the child we hold is the server itself), and the
// temp dir is handed to that user.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const INSTALL_ROOT = '/usr/lib/postgresql';
export const POSTGRES_USER = 'periscope';
/** In the URLs the tests use, so they can check no message ever shows it. */
export const POSTGRES_PASSWORD = 'pw-Secret-4-tests';
/** The database made for the tests (more with newDatabase). */
const DATABASE = 'periscope';

export interface PostgresServer {
  /** postgres://periscope:PASSWORD@127.0.0.1:PORT/periscope */
  url: string;
  port: number;
  /** The postmaster's pid (its backends are its children); undefined while stopped. */
  readonly pid: number | undefined;
  /** A fresh, empty database on this server; its URL. */
  newDatabase(name?: string): Promise<string>;
  /** Fast shutdown (connections are cut); the data dir stays. */
  stop(): Promise<void>;
  /** stop(), then start again on the same port and data dir. */
  restart(): Promise<void>;
  /** start() after a stop() or kill(). */
  start(): Promise<void>;
  /** SIGKILL to the server and its backends (a crash); the data dir stays. */
  kill(): Promise<void>;
  /** Stops and removes everything. */
  dispose(): Promise<void>;
}

/** The bin dir of the newest installed PostgreSQL, or why there is none. */
export function postgresBin(): { bin: string } | { missing: string } {
  const versions = existsSync(INSTALL_ROOT)
    ? readdirSync(INSTALL_ROOT)
        .filter((v) => existsSync(join(INSTALL_ROOT, v, 'bin', 'initdb')) && existsSync(join(INSTALL_ROOT, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) return { missing: `no PostgreSQL server binaries in ${INSTALL_ROOT}/*/bin (install the postgresql package to run these tests)` };
  if (process.getuid?.() === 0 && spawnSync('id', ['-u', 'postgres']).status !== 0) {
    return { missing: 'tests run as root and there is no `postgres` OS user to run PostgreSQL as (it refuses to run as root)' };
  }
  return { bin: join(INSTALL_ROOT, versions[0]!, 'bin') };
}

/** Why PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresUnavailable(): string | undefined {
  const found = postgresBin();
  return 'missing' in found ? found.missing : undefined;
}

// ---- what we started, gone when this process exits ----

const servers = new Set<ChildProcess>();
const dirs = new Set<string>();
let hooked = false;

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const child of servers) killGroup(child, 'SIGKILL');
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

/** Signals the server and every backend it forked (it leads its own process group). */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** `argv` as the `postgres` OS user when we are root (PostgreSQL will not run as root). */
function asServerUser(argv: string[]): string[] {
  return process.getuid?.() === 0 ? ['setpriv', '--reuid=postgres', '--regid=postgres', '--init-groups', '--', ...argv] : argv;
}

function postgresUid(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  return { uid, gid };
}

/** Starts a fresh PostgreSQL with an empty database `periscope`. Throws when it cannot (see postgresUnavailable first). */
export async function startPostgres(): Promise<PostgresServer> {
  const found = postgresBin();
  if ('missing' in found) throw new Error(found.missing);
  const bin = found.bin;
  hookExit();
  const base = mkdtempSync(join(tmpdir(), 'periscope-pg-'));
  dirs.add(base);
  const owner = postgresUid();
  if (owner) chownSync(base, owner.uid, owner.gid);
  const dataDir = join(base, 'data');
  const pwfile = join(base, 'pwfile');
  writeFileSync(pwfile, `${POSTGRES_PASSWORD}\n`, { mode: 0o600 });
  if (owner) chownSync(pwfile, owner.uid, owner.gid);
  const initArgv = asServerUser([join(bin, 'initdb'), '-D', dataDir, '-U', POSTGRES_USER, `--pwfile=${pwfile}`, '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  const init = spawnSync(initArgv[0]!, initArgv.slice(1), { encoding: 'utf8' });
  if (init.status !== 0) throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
  const port = await freePort();
  const admin = `postgres://${POSTGRES_USER}:${POSTGRES_PASSWORD}@127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output = '';

  async function start(): Promise<void> {
    if (child && child.exitCode === null && child.signalCode === null) return;
    output = '';
    const argv = asServerUser([
      join(bin, 'postgres'),
      '-D',
      dataDir,
      '-p',
      String(port),
      '-k',
      base,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=100',
    ]);
    // Its own process group, so kill() reaches the backends too.
    const started = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    child = started;
    servers.add(started);
    started.once('exit', () => servers.delete(started));
    const ready = new Promise<void>((resolve, reject) => {
      const onData = (data: Buffer) => {
        output += data.toString();
        if (output.includes('database system is ready to accept connections')) resolve();
      };
      started.stdout!.on('data', onData);
      started.stderr!.on('data', onData);
      started.once('exit', (code, signal) => reject(new Error(`postgres exited (${code ?? signal}) while starting: ${output.slice(-2000)}`)));
      setTimeout(() => reject(new Error(`postgres did not start within 30 s: ${output.slice(-2000)}`)), 30_000).unref();
    });
    await ready;
  }

  async function stopWith(signal: NodeJS.Signals): Promise<void> {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
    // SIGINT is PostgreSQL's fast shutdown: cut every connection, checkpoint, exit.
    if (signal === 'SIGKILL') killGroup(running, 'SIGKILL');
    else running.kill(signal);
    await exited;
    if (signal === 'SIGKILL') await sleep(100); // the backends die with it; let the kernel reap them before the next start
  }

  async function newDatabase(name = `db_${Math.random().toString(36).slice(2, 10)}`): Promise<string> {
    const client = new pg.Client({ connectionString: `${admin}/postgres` });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } finally {
      await client.end();
    }
    return `${admin}/${name}`;
  }

  await start();
  await newDatabase(DATABASE);
  return {
    url: `${admin}/${DATABASE}`,
    port,
    get pid() {
      return child && child.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    newDatabase,
    start,
    stop: () => stopWith('SIGINT'),
    async restart() {
      await stopWith('SIGINT');
      await start();
    },
    kill: () => stopWith('SIGKILL'),
    async dispose() {
      await stopWith('SIGINT');
      rmSync(base, { recursive: true, force: true });
      dirs.delete(base);
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
