// A crowd of light agents for test/relay/crowds.test.ts, in its own process so
// the test process that times /healthz is not the one busy with thousands of
// sockets. Every agent speaks the real protocol: Bearer join token → hello →
// welcome → list_processes → processes; then it stays until all have tried,
// and finally all leave, as many at a time as joined at a time. Bounded: it gives up at its deadline and exits by itself.
//
//   node test/relay/join-flood.ts '{"wsUrl": "...", "token": "...", "count": 2000, "concurrency": 40, "deadlineMs": 120000}'
//
// stdout, one JSON object per line:
//   {"ev": "joined", "joined": N, "refused": {"<why>": n}, "seconds": s}   every agent has tried
//   {"ev": "left", "seconds": s}                                         every socket is closed
import { AgentPeer, agentSocket, helloMessage } from '../helpers/relay.ts';

interface Options {
  wsUrl: string;
  token: string;
  count: number;
  concurrency: number;
  deadlineMs: number;
}

const o = JSON.parse(process.argv[2] ?? '{}') as Options;
const started = performance.now();
const deadline = started + o.deadlineMs;
const peers: AgentPeer[] = [];
const refused = new Map<string, number>();
let joined = 0;

const seconds = () => Math.round((performance.now() - started) / 10) / 100;
const emit = (m: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(m)}\n`);
const exitTimer = setTimeout(() => {
  emit({ ev: 'deadline', joined, refused: Object.fromEntries(refused), seconds: seconds() });
  process.exit(2);
}, o.deadlineMs);
exitTimer.unref();

/** One agent joining; resolves once it has sent its process list, or with why it could not. */
async function join(i: number): Promise<string | undefined> {
  const peer = new AgentPeer(agentSocket(o.wsUrl, o.token, { perMessageDeflate: false }));
  const left = Math.max(1000, deadline - performance.now());
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    peer.terminate();
  }, left);
  try {
    await peer.opened;
    peer.send(helloMessage({ agentVersion: '0.1.0-flood', host: `flood-${i}`, containerId: '' }));
    await peer.nextOfType('list_processes', left);
    peer.send({ type: 'processes', processes: [{ pid: 1000 + (i % 50), cmdline: `python3 worker.py --shard ${i}`, version: '3.12.1', user: 'app', threads: 4 }] });
    peers.push(peer);
    return undefined;
  } catch {
    if (timedOut) return 'timeout';
    if (peer.refusal) return `http ${peer.refusal.status} ${peer.refusal.body?.error?.code ?? ''}`;
    return `close ${(await peer.closed).code}`;
  } finally {
    clearTimeout(timer);
  }
}

let next = 0;
await Promise.all(
  Array.from({ length: o.concurrency }, async () => {
    while (next < o.count && performance.now() < deadline) {
      const why = await join(next++);
      if (why === undefined) joined++;
      else refused.set(why, (refused.get(why) ?? 0) + 1);
    }
  }),
);
emit({ ev: 'joined', joined, refused: Object.fromEntries(refused), seconds: seconds() });

// They leave as they came, `concurrency` at a time.
await Promise.all(
  Array.from({ length: o.concurrency }, async () => {
    for (let peer = peers.pop(); peer; peer = peers.pop()) {
      peer.close(1000, 'done');
      await peer.closed;
    }
  }),
);
emit({ ev: 'left', seconds: seconds() });
process.exit(0);
