// A real Redis for tests: Debian's redis-server on a loopback port of its own,
// with no persistence (--save '' --appendonly no) and its working dir in a
// temp dir, so it never meets the system service (port 6379, /var/lib/redis)
// that Debian's package starts on install. A restart therefore comes back
// empty, which is what a relay must survive when Redis (routing only) restarts.
import { connect } from 'node:net';
import { removeDataDir } from './relay.ts';
import { MissingEngineError, findProgram, launchServer, startOnFreePort, stopServer, type ServerProcess } from './servers.ts';

export { MissingEngineError, findProgram, freePort } from './servers.ts';

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

/** Spawns redis-server on `port` and waits until it answers PING. */
function launch(exe: string, port: number, dir: string): Promise<ServerProcess> {
  return launchServer({
    name: 'redis-server',
    exe,
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no'],
    until: `answering PING on port ${port}`,
    ready: (child) => answersPing(port, child.pid),
  });
}

/**
 * Starts redis-server on a free loopback port. Throws MissingEngineError when
 * Debian's redis-server is not installed.
 */
export async function startRedis(): Promise<RedisServer> {
  const exe = findProgram('redis-server');
  if (exe === undefined) throw new MissingEngineError('redis-server', 'redis-server');
  const started = await startOnFreePort((port, dir) => launch(exe, port, dir));
  const { port, dir } = started;
  let current = started.server;
  let stopped = false;
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return current.child.pid!;
    },
    async stop() {
      stopped = true;
      await stopServer(current);
      removeDataDir(dir);
    },
    async restart() {
      if (stopped) throw new Error('this Redis was stopped (its temp dir is gone); start a new one with startRedis()');
      await stopServer(current);
      // Redis binds with SO_REUSEADDR, so its own port is free again at once;
      // only another program taking it meanwhile makes this fail.
      current = await launch(exe, port, dir);
    },
    kill() {
      if (current.child.exitCode === null && current.child.signalCode === null) current.child.kill('SIGKILL');
    },
  };
}
