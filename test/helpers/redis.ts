// A real Redis for tests: Debian's redis-server on a loopback port of its own,
// with no persistence (--save '' --appendonly no) and its working dir in a
// temp dir, so it never meets the system service (port 6379, /var/lib/redis)
// that Debian's package starts on install. A restart therefore comes back
// empty, which is what a relay must survive when Redis (routing only) restarts.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
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

export interface RedisServer {
  /** redis://127.0.0.1:PORT */
  url: string;
  port: number;
  /** The current redis-server's pid (a restart changes it). */
  readonly pid: number;
  /** SIGTERM (SIGKILL after 5 s) and remove its temp dir. */
  stop(): Promise<void>;
  /** Stop, then start again on the same port (empty: nothing is persisted). */
  restart(): Promise<void>;
  /** SIGKILL now, as a crash; restart() brings it back. */
  kill(): void;
}

const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;

/**
 * `PING` and `INFO server` over a raw socket: true when the answer is +PONG
 * (not -LOADING) from the process `pid`, not from whoever else holds the port
 * after ours failed to bind it.
 */
function answersPing(port: number, pid: number | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\nINFO server\r\n'));
    socket.on('data', (b: Buffer) => {
      reply += b.toString();
      if (!reply.startsWith('+PONG\r\n')) {
        if (reply.includes('\r\n')) done(false);
        return;
      }
      const m = /\r\nprocess_id:(\d+)\r\n/.exec(reply);
      if (m) done(Number(m[1]) === pid);
    });
  });
}

interface Running {
  child: ChildProcess;
  exited: Promise<void>;
  output: () => string;
}

class AddressInUse extends Error {}

/** Spawns redis-server on `port` and waits until it answers PING. */
async function launch(exe: string, port: number, dir: string): Promise<Running> {
  const child = spawn(exe, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (await answersPing(port, child.pid)) {
      if (!gone) return { child, exited, output: () => out };
    }
    if (gone) {
      if (/Address already in use/i.test(out)) throw new AddressInUse(out);
      throw new Error(`redis-server exited before answering PING on port ${port}${spawnError ? ` (${spawnError.message})` : ''}:\n${out}`);
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`redis-server did not answer PING on port ${port} within ${START_TIMEOUT_MS / 1000} s:\n${out}`);
    }
    await sleep(25);
  }
}

async function halt(running: Running): Promise<void> {
  const { child } = running;
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    await running.exited;
    clearTimeout(timer);
  }
  await running.exited;
}

/**
 * Starts redis-server on a free loopback port. Throws MissingEngineError when
 * Debian's redis-server is not installed.
 */
export async function startRedis(): Promise<RedisServer> {
  const exe = findProgram('redis-server');
  if (exe === undefined) throw new MissingEngineError('redis-server', 'redis-server');
  const dir = tempDataDir();
  mkdirSync(dir, { recursive: true });

  // The free port may be taken between finding and binding it: try a few.
  let running: Running | undefined;
  let port = 0;
  for (let attempt = 1; running === undefined; attempt++) {
    port = await freePort();
    try {
      running = await launch(exe, port, dir);
    } catch (err) {
      if (!(err instanceof AddressInUse) || attempt >= 5) {
        removeDataDir(dir);
        throw err;
      }
    }
  }

  let current: Running = running;
  let stopped = false;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return current.child.pid!;
    },
    async stop() {
      stopped = true;
      await halt(current);
      removeDataDir(dir);
    },
    async restart() {
      if (stopped) throw new Error('this Redis was stopped (its temp dir is gone); start a new one with startRedis()');
      await halt(current);
      // Redis binds with SO_REUSEADDR, so its own port is free again at once;
      // only another program taking it meanwhile makes this fail.
      current = await launch(exe, port, dir);
    },
    kill() {
      if (current.child.exitCode === null && current.child.signalCode === null) current.child.kill('SIGKILL');
    },
  };
}
