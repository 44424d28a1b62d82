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
import { WebSocket } from 'ws';
import { PROTOCOL_VERSION, encode, parseRelayMessage } from '../../shared/protocol.ts';

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
const sockets: WebSocket[] = [];
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
function join(i: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${o.wsUrl}/ws/agent`, { headers: { authorization: `Bearer ${o.token}` }, perMessageDeflate: false });
    let done = false;
    const finish = (why: string | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(why);
    };
    const timer = setTimeout(() => {
      ws.terminate();
      finish('timeout');
    }, Math.max(1000, deadline - performance.now()));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (b: Buffer) => (body += b.toString()));
      res.on('end', () => {
        let code = '';
        try {
          code = JSON.parse(body).error.code;
        } catch {
          // not JSON
        }
        finish(`http ${res.statusCode} ${code}`);
      });
    });
    ws.on('close', (code) => finish(`close ${code}`));
    ws.on('open', () => {
      ws.send(encode({ type: 'hello', protocol: PROTOCOL_VERSION, agentVersion: '0.1.0-flood', host: `flood-${i}`, containerId: '', arch: 'x64', captures: [] }));
    });
    ws.on('message', (data: Buffer) => {
      const m = parseRelayMessage(new Uint8Array(data));
      if (m.type === 'list_processes') {
        ws.send(encode({ type: 'processes', processes: [{ pid: 1000 + (i % 50), cmdline: `python3 worker.py --shard ${i}`, version: '3.12.1', user: 'app', threads: 4 }] }));
        sockets.push(ws);
        finish(undefined);
      }
    });
  });
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
    for (let ws = sockets.pop(); ws; ws = sockets.pop()) {
      const socket = ws;
      await new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once('close', () => resolve());
        socket.close(1000, 'done');
      });
    }
  }),
);
emit({ ev: 'left', seconds: seconds() });
process.exit(0);
