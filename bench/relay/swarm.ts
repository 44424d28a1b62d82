// A load-generator process for the relay benchmarks: holds many LightAgents.
// Driven by the parent over stdin/stdout, one JSON object per line:
//   stdin   {"id": 1, "cmd": "connect" | "status" | "resetStats" | "stopStreams" | "exit", ...}
//   stdout  {"id": 1, ...reply}  (and {"ev": "progress", ...} while connecting)
// Run by bench/relay/swarm-client.ts; not meant to be started by hand.
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { LightAgent } from './agent-client.ts';
import { dist, nowMs, round, sleep } from './lib.ts';

interface ConnectCmd {
  id: number;
  cmd: 'connect';
  wsUrl: string;
  token: string;
  count: number;
  concurrency: number;
  hostPrefix: string;
  pingIntervalMs?: number;
  chunkIntervalMs?: number;
  seed?: number;
  /** Give up connecting after this long. */
  timeoutMs: number;
  /** Return the agent ids (for starting captures). */
  wantIds?: boolean;
}

type Cmd =
  | ConnectCmd
  | { id: number; cmd: 'status' }
  | { id: number; cmd: 'resetStats' }
  | { id: number; cmd: 'stopStreams'; timeoutMs: number }
  | { id: number; cmd: 'exit' };

const agents: LightAgent[] = [];
let ackLags: number[] = [];
let streamsStarted = 0;

function reply(m: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(m)}\n`);
}

async function connect(c: ConnectCmd): Promise<void> {
  const t0 = nowMs();
  const deadline = t0 + c.timeoutMs;
  let next = 0;
  let ready = 0;
  let failed = 0;
  const errors = new Map<string, number>();
  const ids: string[] = [];
  const progress = setInterval(() => reply({ ev: 'progress', ready, failed, of: c.count }), 1000);
  const worker = async () => {
    while (next < c.count && nowMs() < deadline) {
      const i = next++;
      const agent = new LightAgent({
        wsUrl: c.wsUrl,
        token: c.token,
        host: `${c.hostPrefix}-${i}`,
        pingIntervalMs: c.pingIntervalMs,
        chunkIntervalMs: c.chunkIntervalMs,
        seed: (c.seed ?? 1) * 100_003 + i,
        onAck: (_captureId, _seq, lag) => ackLags.push(lag),
        onStreamStarted: () => streamsStarted++,
      });
      try {
        await agent.connect(Math.max(1000, Math.min(60_000, deadline - nowMs())));
        agents.push(agent);
        if (c.wantIds) ids.push(agent.agentId);
        ready++;
      } catch (err) {
        failed++;
        const key = (err as Error).message.slice(0, 120);
        errors.set(key, (errors.get(key) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, c.concurrency) }, worker));
  clearInterval(progress);
  reply({ id: c.id, ready, failed, seconds: round((nowMs() - t0) / 1000, 2), errors: Object.fromEntries(errors), ...(c.wantIds ? { agentIds: ids } : {}) });
}

function status(id: number): void {
  let open = 0;
  let chunksSent = 0;
  let bytesSent = 0;
  let acked = 0;
  let unacked = 0;
  let relayErrors = 0;
  let samplesCut = 0;
  const closeCodes: Record<string, number> = {};
  const errors = new Map<string, number>();
  for (const a of agents) {
    if (a.closedWith) closeCodes[a.closedWith.code] = (closeCodes[a.closedWith.code] ?? 0) + 1;
    else if (a.ws.readyState === WebSocket.OPEN) open++;
    chunksSent += a.chunksSent;
    bytesSent += a.bytesSent;
    acked += a.acked;
    unacked += a.unacked;
    relayErrors += a.relayErrors;
    for (const st of a.streams.values()) samplesCut += st.samplesCut;
    for (const e of [...a.parseErrors, ...a.errors]) errors.set(e.slice(0, 120), (errors.get(e.slice(0, 120)) ?? 0) + 1);
  }
  const d = dist(ackLags);
  reply({
    id,
    agents: agents.length,
    open,
    closeCodes,
    streamsStarted,
    chunksSent,
    bytesSent,
    acked,
    unacked,
    relayErrors,
    samplesCut,
    errors: Object.fromEntries([...errors].slice(0, 5)),
    ackLag: { n: d.n, p50: round(d.p50, 2), p90: round(d.p90, 2), p99: round(d.p99, 2), max: round(d.max, 2), mean: round(d.mean, 2) },
    memoryRssBytes: process.memoryUsage.rss(),
  });
}

async function stopStreams(id: number, timeoutMs: number): Promise<void> {
  for (const a of agents) a.stopStreams();
  const deadline = nowMs() + timeoutMs;
  const pending = () => agents.reduce((n, a) => n + a.unacked, 0);
  while (pending() > 0 && nowMs() < deadline) await sleep(50);
  reply({ id, unacked: pending() });
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  let c: Cmd;
  try {
    c = JSON.parse(line) as Cmd;
  } catch {
    return;
  }
  switch (c.cmd) {
    case 'connect':
      void connect(c);
      return;
    case 'status':
      return status(c.id);
    case 'resetStats':
      ackLags = [];
      return reply({ id: c.id });
    case 'stopStreams':
      void stopStreams(c.id, c.timeoutMs);
      return;
    case 'exit':
      for (const a of agents) a.close();
      reply({ id: c.id });
      setTimeout(() => process.exit(0), 50);
      return;
  }
});
// The parent went away: do not linger with thousands of sockets.
rl.on('close', () => {
  for (const a of agents) a.close();
  process.exit(0);
});
