// The engines of the scaled-out relay tests (issue 13) as the helpers start
// them: a real redis-server (answers, restarts empty on the same port) and a
// real nginx that balances round-robin over two upstreams, passes WebSockets
// and the forwarding headers, and skips an upstream that is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { WebSocket, WebSocketServer } from 'ws';
import { MissingEngineError, startRedis } from './redis.ts';
import { startNginx } from './nginx.ts';
import { eventually } from './relay.ts';

/** The helper's result, or undefined after marking the test skipped when the engine is not installed. */
async function orSkip<T>(t: { skip(message: string): void }, start: () => Promise<T>): Promise<T | undefined> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof MissingEngineError) {
      t.skip(err.message);
      return undefined;
    }
    throw err;
  }
}

test('redis-server answers on its own port and restarts empty on the same port', async (t) => {
  const redis = await orSkip(t, startRedis);
  if (!redis) return;
  // One client across the restart: ioredis reconnects to the same address,
  // as a relay's client must.
  const client = new Redis(redis.url, { maxRetriesPerRequest: 50, retryStrategy: () => 50 });
  // Connection resets while Redis restarts are expected; ioredis reports them as 'error' events.
  client.on('error', () => {});
  // The client goes first: one left reconnecting to a stopped Redis holds the test process open for seconds.
  t.after(async () => {
    client.disconnect();
    await redis.stop();
  });
  assert.equal(redis.url, `redis://127.0.0.1:${redis.port}`);
  assert.notEqual(redis.port, 6379, "never the system service's port");
  assert.equal(await client.ping(), 'PONG');
  assert.equal(await client.set('routing:session:s1', 'relay-a'), 'OK');
  assert.equal(await client.get('routing:session:s1'), 'relay-a');

  await redis.restart();
  assert.equal(await client.ping(), 'PONG');
  assert.equal(await client.get('routing:session:s1'), null, 'nothing is persisted across a restart');

  // A crash, then back on the same port.
  redis.kill();
  // SIGKILL is asynchronous: the port refuses connections once the process is gone.
  await eventually(() => refuses(redis.port), 5000, 'the killed redis-server to stop accepting');
  await redis.restart();
  assert.equal(await client.set('k', 'v'), 'OK');
  assert.equal(await client.get('k'), 'v');
});

/** True when 127.0.0.1:port refuses a TCP connection. */
function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.on('error', () => resolve(true));
    socket.on('connect', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

interface Upstream {
  name: string;
  port: number;
  seen: IncomingHttpHeaders[];
  server: Server;
  close(): Promise<void>;
}

/** A tiny HTTP + WebSocket server that says its name, and records the headers it was sent. */
async function upstream(name: string): Promise<Upstream> {
  const seen: IncomingHttpHeaders[] = [];
  const server = createServer((req, res) => {
    seen.push(req.headers);
    res.setHeader('content-type', 'text/plain');
    res.end(name);
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    seen.push(req.headers);
    ws.on('message', (data) => ws.send(`${name}:${data.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    name,
    port,
    seen,
    server,
    async close() {
      for (const client of wss.clients) client.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test('nginx balances round-robin over two upstreams, passes WebSockets, and skips a dead one', async (t) => {
  const a = await upstream('a');
  const b = await upstream('b');
  t.after(() => Promise.all([a.close(), b.close()]));
  const nginx = await orSkip(t, () => startNginx([{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }]));
  if (!nginx) return;
  t.after(() => nginx.stop());
  const byAddr = new Map([[`127.0.0.1:${a.port}`, 'a'], [`127.0.0.1:${b.port}`, 'b']]);

  await t.test('round-robin, X-Upstream names the answering upstream, forwarding headers pass', async () => {
    const answered: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res: Response = await fetch(`${nginx.url}/api/thing?i=${i}`);
      assert.equal(res.status, 200);
      const body = await res.text();
      assert.equal(byAddr.get(res.headers.get('x-upstream') ?? ''), body, `X-Upstream ${res.headers.get('x-upstream')} answered ${body}`);
      answered.push(body);
    }
    // No stickiness: consecutive requests alternate.
    for (let i = 1; i < answered.length; i++) assert.notEqual(answered[i], answered[i - 1], answered.join(','));
    const headers = a.seen.at(-1)!;
    assert.equal(headers.host, `127.0.0.1:${nginx.port}`);
    assert.equal(headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(headers['x-forwarded-proto'], 'http');
  });

  await t.test('a WebSocket passes through (upgrade, both directions)', async () => {
    const ws = new WebSocket(`${nginx.url.replace(/^http/, 'ws')}/ws/agent`);
    const upgrade = new Promise<string | undefined>((resolve) => ws.once('upgrade', (res) => resolve(res.headers['x-upstream'] as string | undefined)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const name = byAddr.get((await upgrade) ?? '');
    assert.ok(name === 'a' || name === 'b', 'X-Upstream on the 101 response');
    const echoes: string[] = [];
    ws.on('message', (data) => echoes.push(data.toString()));
    ws.send('hello');
    ws.send('again');
    const deadline = Date.now() + 5000;
    while (echoes.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(echoes, [`${name}:hello`, `${name}:again`]);
    ws.close();
  });

  await t.test('with one upstream gone, every request is served by the other', async () => {
    await b.close();
    for (let i = 0; i < 6; i++) {
      const res: Response = await fetch(`${nginx.url}/api/after?i=${i}`, { method: i % 2 ? 'POST' : 'GET', body: i % 2 ? 'x' : undefined });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'a');
      // The request that tried b first shows both: "b-addr, a-addr".
      assert.match(res.headers.get('x-upstream') ?? '', new RegExp(`127\\.0\\.0\\.1:${a.port}$`));
    }
  });
});
