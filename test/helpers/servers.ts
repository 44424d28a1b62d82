// Server programs the tests start themselves (redis.ts, nginx.ts): finding the
// program, a free loopback port, and one way to spawn a server, wait until it
// is up, try another port when the one picked was taken meanwhile, and stop it.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { killOnExit, removeDataDir, sleep, tempDataDir } from './relay.ts';

/** A server program a test needs is not installed; the message says which Debian package provides it (tests print it as their skip reason). */
export class MissingEngineError extends Error {
  readonly program: string;
  readonly debianPackage: string;
  constructor(program: string, debianPackage: string, detail = '') {
    super(`${program} is not installed${detail}; install Debian's ${debianPackage} package (apt-get install --no-install-recommends ${debianPackage}; .ci/run does this)`);
    this.name = 'MissingEngineError';
    this.program = program;
    this.debianPackage = debianPackage;
  }
}

/** `name` on PATH, else in the given Debian locations; undefined when nowhere. */
export function findProgram(name: string, extraDirs: string[] = ['/usr/bin', '/usr/sbin', '/usr/local/bin', '/usr/local/sbin']): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extraDirs]) {
    const path = join(dir, name);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A loopback port nothing listens on right now (it may be taken before we use it: callers retry). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A server's port was taken (by someone else) before it could bind it. */
export class AddressInUse extends Error {}

/** A started server process. */
export interface ServerProcess {
  child: ChildProcess;
  /** Resolves once it has exited (or could not be spawned at all). */
  exited: Promise<void>;
  /** The last 4000 characters it wrote to stdout and stderr. */
  output(): string;
}

export interface LaunchOptions {
  /** The program's name, for messages. */
  name: string;
  exe: string;
  args: string[];
  /** What `ready` waits for, for messages: "answering PING on port 1234". */
  until: string;
  /** True once the server is up and is this child (not someone else on the port). */
  ready(child: ChildProcess): Promise<boolean>;
  /** More to quote when it fails (a log file of its own); read then. */
  log?: () => string;
  timeoutMs?: number;
}

const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

/**
 * Spawns the server (killed if the test process exits) and waits until
 * `ready`. Rejects AddressInUse when it exited saying its port was taken; any
 * other exit, or not being ready in time, rejects with what it printed.
 */
export async function launchServer(o: LaunchOptions): Promise<ServerProcess> {
  const child = spawn(o.exe, o.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(child);
  let out = '';
  const append = (b: Buffer) => {
    out = (out + b.toString()).slice(-4000);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  // 'close' (not 'exit') so the output is complete when we read why it ended;
  // 'error' when it could not be spawned at all (then 'close' may never come).
  let gone = false;
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
    child.once('error', (err) => {
      spawnError = err;
      resolve();
    });
  }).then(() => {
    gone = true;
  });
  const why = () => `${spawnError ? `${spawnError.message}\n` : ''}${out}${o.log?.() ?? ''}`;
  const timeoutMs = o.timeoutMs ?? START_TIMEOUT_MS;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!gone && (await o.ready(child)) && !gone) return { child, exited, output: () => out };
    if (gone) {
      const text = why();
      if (/Address already in use/i.test(text)) throw new AddressInUse(text);
      throw new Error(`${o.name} exited before ${o.until}:\n${text}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`${o.name} was not ${o.until} within ${timeoutMs / 1000} s:\n${why()}`);
    }
    await sleep(25);
  }
}

/**
 * Starts a server with `launch` in a fresh temp dir of its own (removed again
 * if it fails) on a free loopback port, or on `port` when given (that one is
 * not traded for another). A free port may be taken between finding and
 * binding it: on AddressInUse another is tried, a few times.
 */
export async function startOnFreePort<T>(launch: (port: number, dir: string) => Promise<T>, port?: number): Promise<{ port: number; dir: string; server: T }> {
  const dir = tempDataDir();
  mkdirSync(dir, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const p = port ?? (await freePort());
    try {
      return { port: p, dir, server: await launch(p, dir) };
    } catch (err) {
      if (!(err instanceof AddressInUse) || attempt >= 5 || port !== undefined) {
        removeDataDir(dir);
        throw err;
      }
    }
  }
}

/** SIGTERM, SIGKILL after 5 s; resolves once it has exited. */
export async function stopServer(server: ServerProcess): Promise<void> {
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await server.exited;
    clearTimeout(timer);
  }
  await server.exited;
}
