// The customer's whole path, for real: the one-liner from POST /api/sessions
// fetches the install script from a real relay (GET /j/CODE), which downloads
// the real single binary (dist/periscope-agent-linux-x64, gzipped by the
// relay), checks its SHA-256, runs it from a private temporary directory with
// the join token in the environment, and removes the directory when the agent
// ends.
//
//   - the python3 one-liner inside a minimal Debian root with no curl, no wget
//     and no Node (test/build/minroot.ts), profiling a Python in that root;
//   - the curl one-liner on this machine;
//   - the join token (or any JWT) never in `ps`, the relay's log or the
//     customer's terminal;
//   - a download altered on the way is refused, and never run;
//   - closed, expired (before and after the relay's sweep), replaced and
//     unknown codes print one clear line and exit 1.
//
// Ctrl-C is sent the way a terminal sends it: SIGINT to the whole foreground
// process group (the one-liner's python3 or curl, the script's sh, the agent).
// The customer's TMPDIR is a directory of the test's, so that what the script
// leaves behind can be seen. The last test holds the python3 one-liner to a
// slow Ctrl-C, a ps listing and a refused code.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ensureAgentBinary } from '../../scripts/build-agent/index.ts';
import { adminClient, type Client, createSession, type RelayProcess, removeDataDir, sleep, startRelay } from '../helpers/relay.ts';
import { ensureMinroot } from './minroot.ts';

// Function names no interpreter or library has, to find the targets' frames.
const ROOT_HOT = 'periscope_one_liner_root_hot';
const HOST_HOT = 'periscope_one_liner_host_hot';
const targetPy = (fn: string) => `import sys, time
def ${fn}(ready, lifetime):
    open(ready, 'w').close()
    deadline = time.time() + lifetime
    x = 0
    while time.time() < deadline:
        for i in range(5000):
            x += i * i
${fn}(sys.argv[1], float(sys.argv[2]))
`;
/** A JSON Web Token: the join token and the agent credential both are one. */
const JWT_RE = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/;
const REFUSED_CLOSED = 'periscope: this support session has been closed or its command replaced; ask your support engineer for a new command\n';
const REFUSED_EXPIRED = 'periscope: this support session has expired; ask your support engineer for a new command\n';
const REFUSED_UNKNOWN = 'periscope: this join code is not valid; ask your support engineer for the current command\n';
/** PATH of the customer's shell on this machine; the rest of its environment is minimal (no proxies, nothing of ours). */
const HOST_PATH = process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin';

const work = mkdtempSync(join(tmpdir(), 'periscope-one-liner-'));
let relay: RelayProcess;
let admin: Client;
let port: number;

// ---- processes ------------------------------------------------------------------

const live = new Set<Proc>();
process.on('exit', () => {
  for (const p of live) p.killGroup();
});

/** A child in its own process group (like a command typed at a terminal), with its output kept. */
class Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done = false;
  #out = '';
  #err = '';

  constructor(command: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string) {
    this.child = spawn(command, args, { env, detached: true, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`could not start ${command}`);
    this.pid = this.child.pid;
    live.add(this);
    this.child.stdout!.on('data', (b: Buffer) => (this.#out += b.toString('utf8')));
    this.child.stderr!.on('data', (b: Buffer) => (this.#err += b.toString('utf8')));
    if (stdin !== undefined) this.child.stdin!.end(stdin);
    // 'close': the process exited and every process holding its stdout and
    // stderr (the script's sh, the agent) has let go of them too.
    this.closed = new Promise((resolve) =>
      this.child.on('close', (code, signal) => {
        this.done = true;
        live.delete(this);
        resolve({ code, signal });
      }),
    );
  }

  get stdout(): string {
    return this.#out;
  }

  get stderr(): string {
    return this.#err;
  }

  get output(): string {
    return `${this.#out}${this.#err}`;
  }

  /** Ctrl-C at a terminal: SIGINT to the whole foreground process group. */
  interrupt(): void {
    process.kill(-this.pid, 'SIGINT');
  }

  killGroup(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }

  async finished(timeoutMs: number, what: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not end within ${timeoutMs / 1000} s; output:\n${redact(this.output)}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Polls `fn` until it returns a value; fails at once if one of `procs` has ended. */
async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs: number, procs: Proc[] = []): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    const ended = procs.find((p) => p.done);
    if (ended) throw new Error(`waiting for ${what}: the customer's command ended early; output:\n${redact(ended.output)}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; output:\n${procs.map((p) => redact(p.output)).join('\n---\n')}`);
    await sleep(100);
  }
}

function redact(text: string): string {
  return text.replace(new RegExp(JWT_RE.source, 'g'), '[JWT]');
}

/** A python3 target on this machine, in its own process group. */
async function startHostTarget(dir: string, fn: string): Promise<Proc> {
  writeFileSync(join(dir, 'target.py'), targetPy(fn));
  const ready = join(dir, 'ready');
  const target = new Proc('python3', ['-B', '-E', '-s', join(dir, 'target.py'), ready, '90'], { PATH: HOST_PATH, HOME: process.env.HOME });
  await waitFor('the python3 target to start', () => (existsSync(ready) ? true : undefined), 10_000, [target]);
  return target;
}

// ---- secrets --------------------------------------------------------------------

/** `ps -eo pid,pgid,args` (full width); lines of our own process groups marked. */
function psLines(groups: number[]): { text: string; ours: string[] } {
  const r = spawnSync('ps', ['-eo', 'pid,pgid,args', '-ww'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `ps: ${r.stderr}`);
  const ours = r.stdout.split('\n').filter((line) => {
    const pgid = Number(line.trim().split(/\s+/)[1]);
    return groups.includes(pgid);
  });
  return { text: r.stdout, ours };
}

/**
 * Neither the join token nor any part of it appears in `text`; and no JWT at
 * all (the agent credential is one) where `anyJwt`.
 */
function assertNoToken(text: string, where: string, token: string, anyJwt = true): void {
  const signature = token.split('.')[2]!;
  const line = (needle: string) => text.split('\n').find((l) => l.includes(needle)) ?? '';
  assert.ok(!text.includes(token), `${where} shows the join token: ${redact(line(token))}`);
  assert.ok(!text.includes(signature), `${where} shows the join token's signature: ${line(signature).replace(signature, '[signature]')}`);
  if (anyJwt) {
    const m = JWT_RE.exec(text);
    assert.equal(m, null, `${where} shows a JWT (a token or the agent credential): ${redact(m ? line(m[0]) : '')}`);
  }
}

// ---- relay ----------------------------------------------------------------------

async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A relay on a port picked first, so that its public URL can be 127.0.0.1:PORT (the minimal root has no /etc/hosts for localhost). */
async function startRelayOn(dataDir?: string, fixedPort?: number): Promise<RelayProcess> {
  for (let attempt = 1; ; attempt++) {
    const p = fixedPort ?? (await freePort());
    try {
      const r = await startRelay({ dataDir, env: { PORT: String(p), PERISCOPE_PUBLIC_URL: `http://127.0.0.1:${p}` } });
      port = p;
      return r;
    } catch (err) {
      if (attempt >= 3 || fixedPort !== undefined) throw err;
    }
  }
}

interface AgentView {
  id: string;
  online: boolean;
  processes: { pid: number; cmdline: string }[];
}

async function agents(sessionId: string): Promise<AgentView[]> {
  const res = await admin.get(`/api/sessions/${sessionId}/agents`);
  assert.equal(res.status, 200, res.text);
  return res.json.agents;
}

/** The online agent of the session that lists a process matching `match`. */
function onlineWith(sessionId: string, match: (p: { pid: number; cmdline: string }) => boolean) {
  return async () => {
    for (const a of await agents(sessionId)) {
      const p = a.online ? a.processes.find(match) : undefined;
      if (p) return { agent: a, pid: p.pid };
    }
    return undefined;
  };
}

async function capture(agentId: string, spec: Record<string, unknown>, procs: Proc[]): Promise<any> {
  const started = await admin.post(`/api/agents/${agentId}/captures`, spec);
  assert.equal(started.status, 201, started.text);
  return waitFor(
    `the ${spec.kind} to complete`,
    async () => {
      const c = (await admin.get(`/api/captures/${started.json.id}`)).json;
      if (['failed', 'incomplete', 'target_exited'].includes(c.status)) throw new Error(`the ${spec.kind} ended ${c.status}: ${JSON.stringify(c.error)}`);
      return c.status === 'complete' && (spec.kind !== 'dump' || c.result) ? c : undefined;
    },
    30_000,
    procs,
  );
}

/** What a private temporary directory of the script holds: `tmp.XXXXXXXXXX` (mktemp -d) with mode 0700 and the agent alone. */
function assertPrivateTempDir(tmp: string): string {
  const entries = readdirSync(tmp);
  assert.equal(entries.length, 1, `one private directory in TMPDIR while the agent runs: ${entries.join(', ')}`);
  const dir = join(tmp, entries[0]!);
  assert.match(entries[0]!, /^tmp\.[A-Za-z0-9]+$/);
  assert.equal(statSync(dir).mode & 0o777, 0o700, 'the private directory is mode 0700');
  assert.deepEqual(readdirSync(dir), ['periscope-agent'], 'it holds the unpacked agent only (the .gz is removed)');
  assert.equal(statSync(join(dir, 'periscope-agent')).mode & 0o777, 0o700);
  return dir;
}

before(
  async () => {
    await ensureAgentBinary((line) => console.log(`build: ${line}`));
    relay = await startRelayOn();
    admin = await adminClient(relay);
  },
  { timeout: 15 * 60_000 },
);

after(async () => {
  for (const p of live) p.killGroup();
  await relay?.stop();
  if (relay) removeDataDir(relay.dataDir);
  rmSync(work, { recursive: true, force: true });
});

// ---- the tests ------------------------------------------------------------------

test('the python3 one-liner in a minimal root (no curl, wget or Node): agent online, a recording of a Python there, Ctrl-C removes the temp dir', { timeout: 15 * 60_000 }, async (t) => {
  const minroot = await ensureMinroot((line) => t.diagnostic(line));
  if ('skip' in minroot) {
    console.log(`SKIP one-liner in a minimal root: ${minroot.skip}`);
    t.skip(minroot.skip);
    return;
  }
  const { root } = minroot;
  for (const tool of ['curl', 'wget', 'node']) {
    assert.ok(!['usr/bin', 'bin', 'usr/local/bin'].some((d) => existsSync(join(root, d, tool))), `the minimal root has no ${tool}`);
  }
  const t0 = performance.now();
  const session = await createSession(admin, 'one-liner in a minimal root');
  const oneLiner = session.commands.python!;
  assert.ok(oneLiner.startsWith('python3 -c "'), oneLiner);
  assert.ok(oneLiner.includes(`http://127.0.0.1:${port}/j/${session.code}`), oneLiner);

  // Everything of this test inside the root lives under /tmp/periscope-one-liner-PID.
  const inside = `/tmp/periscope-one-liner-${process.pid}`;
  const dir = join(root, inside);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'target.py'), targetPy(ROOT_HOT));

  // pid 1 of a new pid namespace: it starts the target, then the customer's
  // command in the foreground with TMPDIR pointing at a directory this test
  // can watch. Its `trap : INT` keeps it (not its children: a handler is
  // reset by exec) alive through Ctrl-C, to report how the command ended.
  const script = `trap : INT
cd "$2"
python3 -B -E -s target.py "$2/ready" 150 > target.log 2>&1 &
n=0; while [ ! -e ready ] && [ $n -lt 200 ]; do n=$((n + 1)); sleep 0.05; done
[ -e ready ] || { echo "@@target did not start: $(cat target.log)"; exit 1; }
TMPDIR="$2/tmp" sh -c "$1"
echo "@@one-liner exit status $?"
`;
  const shell = new Proc('unshare', ['--mount', '--pid', '--fork', `--mount-proc=${join(root, 'proc')}`, 'chroot', root, '/bin/sh', '-c', script, 'sh', oneLiner, inside], {
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    LANG: 'C.UTF-8',
  });
  const { agent, pid } = await waitFor('the agent to come online listing the target', onlineWith(session.id, (p) => p.cmdline.includes(`target.py ${inside}/ready`)), 90_000, [shell]);
  const tOnline = performance.now();
  t.diagnostic(`agent online in the root after ${((tOnline - t0) / 1000).toFixed(1)} s (download, sha256sum, gzip -d, connect)`);
  assert.match(shell.output, /periscope: downloading the agent from http:\/\/127\.0\.0\.1:\d+\/agent\/periscope-agent-linux-x86_64\.gz\n/);
  assert.match(shell.output, /periscope: checksum verified\n/);

  const privateDir = assertPrivateTempDir(join(dir, 'tmp'));
  const ps1 = psLines([shell.pid]);
  const agentLine = ps1.ours.find((l) => l.includes('/periscope-agent '));
  assert.ok(agentLine, `ps shows the agent:\n${ps1.ours.join('\n')}`);
  assert.match(agentLine, new RegExp(`\\s${inside}/tmp/tmp\\.[A-Za-z0-9]+/periscope-agent connect http://127\\.0\\.0\\.1:${port}$`), 'the agent has no argument but `connect RELAY`');
  assert.ok(ps1.ours.some((l) => / sh$/.test(l)), 'the script runs as a plain `sh` reading its stdin');
  assertNoToken(ps1.text, '`ps -eo pid,args`', session.joinToken, false);
  assertNoToken(ps1.ours.join('\n'), '`ps` of the customer\'s command', session.joinToken);

  const rec = await capture(agent.id, { kind: 'record', pid, duration: 2 }, [shell]);
  const tRecorded = performance.now();
  assert.ok(rec.samples >= 50, `a 2 s recording at 100 Hz has samples: ${rec.samples}`);
  const ps2 = psLines([shell.pid]);
  assertNoToken(ps2.text, '`ps -eo pid,args`', session.joinToken, false);
  assertNoToken(ps2.ours.join('\n'), '`ps` of the customer\'s command', session.joinToken);

  const raw = await admin.get(`/api/captures/${rec.id}/download?format=raw`);
  assert.equal(raw.status, 200, raw.text);
  assert.match(raw.text, new RegExp(`${ROOT_HOT} \\(${inside}/target\\.py:\\d+\\)`), `the recording shows the hot function:\n${raw.text.slice(0, 2000)}`);
  const svg = await admin.get(`/api/captures/${rec.id}/download?format=flamegraph`);
  assert.equal(svg.status, 200, svg.text);
  assert.match(svg.headers.get('content-type') ?? '', /^image\/svg\+xml/);
  assert.match(svg.text, /<svg[\s>]/);
  assert.ok(svg.text.includes(ROOT_HOT), 'the flame graph shows the hot function');

  // Ctrl-C.
  shell.interrupt();
  const tInterrupt = performance.now();
  const end = await shell.finished(30_000, 'the one-liner after Ctrl-C');
  const tEnded = performance.now();
  assert.equal(end.code, 0, `pid 1 reports: ${redact(shell.output)}`);
  assert.match(shell.output, /Ctrl-C: disconnecting/);
  assert.match(shell.output, /disconnected; no capture is running/);
  assert.match(shell.output, /@@one-liner exit status 130\n/, 'the one-liner ends with the status of an interrupt');
  assert.ok(!existsSync(privateDir), `the private directory is removed when the agent ends; the terminal:\n${redact(shell.output)}`);
  assert.deepEqual(readdirSync(join(dir, 'tmp')), [], 'nothing is left in TMPDIR (the agent binary, the extracted addon)');
  await waitFor('the relay to show the agent offline', async () => ((await agents(session.id))[0]!.online ? undefined : true), 10_000);

  assertNoToken(shell.output, "the customer's terminal", session.joinToken);
  assertNoToken(relay.output(), "the relay's log", session.joinToken);
  t.diagnostic(
    `minimal root: online ${((tOnline - t0) / 1000).toFixed(1)} s, record+render ${((tRecorded - tOnline) / 1000).toFixed(1)} s, ` +
      `Ctrl-C to everything gone ${((tEnded - tInterrupt) / 1000).toFixed(2)} s, ${rec.samples} samples`,
  );
});

test('the curl one-liner on this machine: agent online, a dump, Ctrl-C removes the temp dir', { timeout: 120_000 }, async (t) => {
  const t0 = performance.now();
  const dir = mkdtempSync(join(work, 'host-'));
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const target = await startHostTarget(dir, HOST_HOT);
  t.after(() => target.killGroup());
  const session = await createSession(admin, 'curl one-liner');
  assert.equal(session.commands.curl, `curl -fsSL http://127.0.0.1:${port}/j/${session.code} | sh`);

  const shell = new Proc('sh', ['-c', session.commands.curl!], { PATH: HOST_PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', TMPDIR: tmp });
  t.after(() => shell.killGroup());
  const { agent } = await waitFor('the agent to come online listing the target', onlineWith(session.id, (p) => p.pid === target.pid), 60_000, [shell]);
  const tOnline = performance.now();
  const privateDir = assertPrivateTempDir(tmp);
  const ps = psLines([shell.pid]);
  assert.ok(ps.ours.some((l) => l.includes(`${privateDir}/periscope-agent connect http://127.0.0.1:${port}`)), `ps shows the agent:\n${ps.ours.join('\n')}`);
  // (The `sh -c 'curl … | sh'` of this test shows it, as a terminal's shell would not.)
  const others = ps.ours.filter((l) => Number(l.trim().split(/\s+/)[0]) !== shell.pid);
  assert.ok(!others.some((l) => l.includes(session.code)), `curl has ended: nothing else in ps shows the code:\n${others.join('\n')}`);
  assertNoToken(ps.text, '`ps -eo pid,args`', session.joinToken, false);
  assertNoToken(ps.ours.join('\n'), '`ps` of the customer\'s command', session.joinToken);

  const dump = await capture(agent.id, { kind: 'dump', pid: target.pid }, [shell]);
  const frames = (dump.result as { frames: { name: string; filename: string }[] }[]).flatMap((th) => th.frames);
  assert.ok(frames.some((f) => f.name === HOST_HOT && f.filename === join(dir, 'target.py')), `the dump shows ${HOST_HOT}: ${JSON.stringify(dump.result).slice(0, 1500)}`);
  const tDumped = performance.now();

  shell.interrupt();
  await shell.finished(30_000, 'the curl one-liner after Ctrl-C');
  assert.match(shell.output, /Ctrl-C: disconnecting/);
  assert.match(shell.output, /disconnected; no capture is running/);
  assert.ok(!existsSync(privateDir), 'the private directory is removed when the agent ends');
  assert.deepEqual(readdirSync(tmp), [], 'nothing is left in TMPDIR');
  assertNoToken(shell.output, "the customer's terminal", session.joinToken);
  assertNoToken(relay.output(), "the relay's log", session.joinToken);
  t.diagnostic(`host: online ${((tOnline - t0) / 1000).toFixed(1)} s, dump ${((tDumped - tOnline) / 1000).toFixed(1)} s`);
});

/** Between the script and the relay: passes everything through, but alters the agent download. */
async function tamperingProxy(alter: (gz: Buffer) => Buffer): Promise<{ url: string; server: Server; gzRequests: () => number }> {
  let gzRequests = 0;
  const server = createHttpServer((req, res) => {
    const upstream = httpRequest({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: { ...req.headers, host: `127.0.0.1:${port}` } }, (up) => {
      const parts: Buffer[] = [];
      up.on('data', (b: Buffer) => parts.push(b));
      up.on('end', () => {
        let body: Buffer = Buffer.concat(parts);
        if (req.url?.endsWith('.gz') && up.statusCode === 200) {
          gzRequests++;
          body = alter(body);
        }
        const headers: IncomingHttpHeaders = { ...up.headers, 'content-length': String(body.length) };
        delete headers['transfer-encoding'];
        res.writeHead(up.statusCode ?? 502, headers);
        res.end(body);
      });
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server, gzRequests: () => gzRequests };
}

test('an agent download altered on the way is refused and never run', { timeout: 120_000 }, async (t) => {
  const session = await createSession(admin, 'tampered download');
  const script = await (await fetch(`${relay.url}/j/${session.code}`)).text();
  const published = (await (await fetch(`${relay.url}/agent/periscope-agent-linux-x86_64.gz.sha256`)).text()).split(' ')[0]!;
  assert.ok(script.includes(` ARCH=x86_64; SHA256='${published}';`), 'the script carries the digest the relay publishes for this machine');
  const relayLine = `\nRELAY='http://127.0.0.1:${port}'\n`;
  assert.equal(script.split(relayLine).length, 2, 'the script names the relay once');

  const variants: [string, (gz: Buffer, marker: string) => Buffer][] = [
    [
      'bytes flipped',
      (gz) => {
        const out = Buffer.from(gz);
        for (const at of [Math.floor(out.length / 3), Math.floor(out.length / 2), out.length - 100]) out[at] = out[at]! ^ 0xff;
        return out;
      },
    ],
    // A well-formed gzip of a program that leaves a mark if it is ever run.
    ['replaced by another program', (_gz, marker) => gzipSync(`#!/bin/sh\necho ran > '${marker}'\n`)],
  ];
  for (const [what, alter] of variants) {
    const dir = mkdtempSync(join(work, 'tamper-'));
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const marker = join(dir, 'the-download-ran');
    const proxy = await tamperingProxy((gz) => alter(gz, marker));
    t.after(() => proxy.server.close());
    const viaProxy = script.replace(relayLine, `\nRELAY='${proxy.url}'\n`);

    const sh = new Proc('sh', [], { PATH: HOST_PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', TMPDIR: tmp }, viaProxy);
    t.after(() => sh.killGroup());
    const end = await sh.finished(60_000, `the script with a download ${what}`);
    assert.equal(proxy.gzRequests(), 1, `${what}: the script downloaded the agent through the proxy`);
    assert.equal(end.code, 1, `${what}: the script exits 1; output:\n${redact(sh.output)}`);
    const got = /got ([0-9a-f]{64})\)/.exec(sh.stderr)?.[1];
    assert.match(
      sh.stderr,
      new RegExp(`periscope: the downloaded agent does not match its checksum \\(expected ${published}, got [0-9a-f]{64}\\); not running it\\n$`),
      `${what}: the checksum message is the last line`,
    );
    assert.notEqual(got, published);
    assert.doesNotMatch(sh.output, /checksum verified|starting the agent|periscope agent/, `${what}: nothing was run`);
    assert.ok(!existsSync(marker), `${what}: the downloaded program never ran`);
    assert.deepEqual(readdirSync(tmp), [], `${what}: the private directory is removed`);
    assert.equal(sh.stdout, '');
  }
  assert.deepEqual(await agents(session.id), [], 'no agent joined the session');
});

test('closed, replaced, expired and unknown codes print one clear line and exit 1', { timeout: 120_000 }, async (t) => {
  const run = async (command: string): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const sh = new Proc('sh', ['-c', command], { PATH: HOST_PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', TMPDIR: work });
    t.after(() => sh.killGroup());
    const { code } = await sh.finished(30_000, command);
    return { code, stdout: sh.stdout, stderr: sh.stderr };
  };
  const refused = async (command: string, message: string, what: string) => {
    const r = await run(command);
    assert.deepEqual(r, { code: 1, stdout: '', stderr: message }, `${what}: \`${command}\``);
  };

  // Closed by a member.
  const closed = await createSession(admin, 'closed');
  assert.equal((await admin.post(`/api/sessions/${closed.id}/close`)).status, 200);
  await refused(closed.commands.curl!, REFUSED_CLOSED, 'a closed session');
  await refused(closed.commands.wget!, REFUSED_CLOSED, 'a closed session (wget)');

  // Replaced: the engineer rotated the join token.
  const rotated = await createSession(admin, 'rotated');
  const fresh = await admin.post(`/api/sessions/${rotated.id}/join-token`);
  assert.equal(fresh.status, 200, fresh.text);
  assert.notEqual(fresh.json.code, rotated.code);
  await refused(rotated.commands.curl!, REFUSED_CLOSED, 'a replaced command');

  // Expired: ttlHours of 1.5 s.
  const expired = (await admin.post('/api/sessions', { name: 'expiring', ttlHours: 1.5 / 3600 })).json;
  assert.ok(expired.commands?.curl, 'an open session has commands');
  await sleep(Math.max(0, Date.parse(expired.expiresAt) - Date.now()) + 300);
  await refused(expired.commands.curl, REFUSED_EXPIRED, 'an expired session');

  // Unknown, and not a code at all.
  const unknown = closed.code === '0000000000' ? '1111111111' : '0000000000';
  await refused(`curl -fsSL http://127.0.0.1:${port}/j/${unknown} | sh`, REFUSED_UNKNOWN, 'an unknown code');
  await refused(`curl -fsSL 'http://127.0.0.1:${port}/j/not-a-code' | sh`, REFUSED_UNKNOWN, 'a malformed code');

  // The relay sweeps expired sessions (at start and every 30 s), revoking
  // their join tokens: a restart makes that happen now. The code must still
  // read as expired, not as closed by someone.
  const dataDir = relay.dataDir;
  await relay.stop();
  relay = await startRelayOn(dataDir, port);
  admin = await adminClient(relay);
  const swept = (await admin.get(`/api/sessions/${expired.id}`)).json;
  assert.equal(swept.status, 'expired');
  assert.notEqual(swept.closedAt, null, 'the sweep closed it');
  await refused(expired.commands.curl, REFUSED_EXPIRED, 'an expired session after the sweep');
  await refused(closed.commands.curl!, REFUSED_CLOSED, 'a closed session after a restart');
});

test(
  "the python3 one-liner: leaves no process showing the code, nothing behind after a slow Ctrl-C, and no traceback",
  {
    timeout: 120_000,
  },
  async (t) => {
    const problems: string[] = [];
    const dir = mkdtempSync(join(work, 'python-'));
    const tmp = join(dir, 'tmp');
    mkdirSync(tmp);
    const target = await startHostTarget(dir, HOST_HOT);
    t.after(() => target.killGroup());
    const session = await createSession(admin, 'python one-liner, slow stop');
    const shell = new Proc('sh', ['-c', session.commands.python!], { PATH: HOST_PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', TMPDIR: tmp });
    t.after(() => shell.killGroup());
    const { agent } = await waitFor('the agent to come online listing the target', onlineWith(session.id, (p) => p.pid === target.pid), 60_000, [shell]);

    // The code is as good as the token while the session is open: GET /j/CODE hands it out.
    const showing = psLines([shell.pid]).ours.filter((l) => l.includes(session.code) && !/^\s*\d+\s+\d+ sh -c /.test(l));
    if (showing.length > 0) problems.push(`while the agent runs, ps shows the code: ${showing.join(' | ')}`);

    const started = await admin.post(`/api/agents/${agent.id}/captures`, { kind: 'record', pid: target.pid, duration: 30 });
    assert.equal(started.status, 201, started.text);
    await waitFor('chunks of the recording', async () => ((await admin.get(`/api/captures/${started.json.id}`)).json.chunks > 0 ? true : undefined), 15_000, [shell]);
    // A relay slow to take the last chunks (stopped here): the agent takes
    // its time to stop, as it may on any slow network.
    const pid = relay.pid;
    process.kill(pid, 'SIGSTOP');
    try {
      shell.interrupt();
      await shell.finished(30_000, 'the python one-liner after Ctrl-C');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.match(shell.output, /Ctrl-C: stopping 1 capture and disconnecting/);
    const leftover = readdirSync(tmp);
    rmSync(tmp, { recursive: true, force: true });
    if (leftover.length > 0) problems.push(`after Ctrl-C, TMPDIR still holds ${leftover.join(', ')} (the 100 MB agent binary)`);
    if (/Traceback|KeyboardInterrupt/.test(shell.output)) problems.push('Ctrl-C prints a Python traceback');

    assert.equal((await admin.post(`/api/sessions/${session.id}/close`)).status, 200);
    const refused = new Proc('sh', ['-c', session.commands.python!], { PATH: HOST_PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', TMPDIR: work });
    t.after(() => refused.killGroup());
    const { code } = await refused.finished(30_000, 'the python one-liner of a closed session');
    if (code !== 1 || refused.output !== REFUSED_CLOSED) problems.push(`a closed code: exit ${code}, ${JSON.stringify(refused.output.slice(0, 300))}`);
    assert.deepEqual(problems, []);
  },
);
