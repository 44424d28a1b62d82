// The arm64 one-liner against a local relay, on this x64 machine, with
// binfmt_misc left alone (nothing is registered machine-wide): the install
// script runs for real with `uname -m` answering aarch64 (a shim on PATH),
// so it picks, downloads and checks the arm64 agent; a `chmod` shim then puts
// a wrapper in place of the checked agent that runs it under
// qemu-aarch64-static explicitly, and the script starts it as always, with
// PERISCOPE_TOKEN in its environment. The relay must list it online.
//
// Also the figures of the issue: start-to-connected (spawn of the agent to its
// "connected to" line) of the x64 agent natively, of the x64 agent through
// the glibc runtime's loader (the musl machines' way), and of the arm64 agent
// under qemu (reported only).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { arm64Command, CROSS_SYSROOT, missingCrossTools, qemuAarch64 } from '../../scripts/build-agent/cross.ts';
import { ensureGlibcRuntime, GLIBC_LOADER } from '../../scripts/build-agent/glibc-runtime.ts';
import { ensureAgentBinary } from '../../scripts/build-agent/index.ts';
import { binaryOf } from '../../scripts/build-agent/paths.ts';
import { adminClient, type Client, createSession, type RelayProcess, removeDataDir, sleep, startRelay } from '../helpers/relay.ts';
import { freePort } from '../helpers/servers.ts';

const missing = missingCrossTools();
const skip = missing.length > 0 ? `needs Debian's ${missing.join(', ')} (npm run build installs them as root)` : undefined;
const work = mkdtempSync(join(tmpdir(), 'periscope-arm64-one-liner-'));
let relay: RelayProcess;
let admin: Client;
let port = 0;
const children = new Set<number>();

before(
  async () => {
    await ensureAgentBinary((line) => console.log(`build: ${line}`));
    ensureGlibcRuntime((line) => console.log(`build: ${line}`));
    if (!skip) await ensureAgentBinary((line) => console.log(`build: ${line}`), 'arm64');
    port = await freePort();
    relay = await startRelay({ env: { PORT: String(port), PERISCOPE_PUBLIC_URL: `http://127.0.0.1:${port}` } });
    admin = await adminClient(relay);
  },
  { timeout: 20 * 60_000 },
);

after(async () => {
  for (const pid of children) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await relay?.stop();
  if (relay) removeDataDir(relay.dataDir);
  rmSync(work, { recursive: true, force: true });
});

interface Run {
  output: () => string;
  /** ms from spawn until `pattern` first appears in the output. */
  until: (pattern: RegExp, timeoutMs: number) => Promise<number>;
  interrupt: () => void;
  closed: Promise<number | null>;
}

/** Spawns in its own process group; output kept, with JWTs redacted when shown. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Run {
  const t0 = performance.now();
  const child = spawn(command, args, { env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child.pid!);
  let out = '';
  const waiters: (() => void)[] = [];
  const onData = (b: Buffer) => {
    out += b.toString();
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const closed = new Promise<number | null>((resolve) => child.on('close', (code) => (children.delete(child.pid!), resolve(code))));
  const output = () => out.replace(/eyJ[A-Za-z0-9_.-]+/g, '[JWT]');
  return {
    output,
    closed,
    interrupt: () => process.kill(-child.pid!, 'SIGINT'),
    until: async (pattern, timeoutMs) => {
      const deadline = t0 + timeoutMs;
      while (!pattern.test(out)) {
        if (performance.now() > deadline) throw new Error(`no ${pattern} within ${timeoutMs / 1000} s; output:\n${output()}`);
        await Promise.race([new Promise<void>((resolve) => waiters.push(resolve)), sleep(200), closed]);
      }
      return performance.now() - t0;
    },
  };
}

async function onlineAgents(sessionId: string): Promise<number> {
  const res = await admin.get(`/api/sessions/${sessionId}/agents`);
  return (res.json.agents as { online: boolean }[]).filter((a) => a.online).length;
}

const CONNECTED = /connected to http:\/\/127\.0\.0\.1:\d+ as agent /;

test('arm64 one-liner (uname -m aarch64): the arm64 agent downloaded, checked, and run under qemu joins the relay', { skip, timeout: 5 * 60_000 }, async (t) => {
  const shims = join(work, 'shims');
  mkdirSync(shims, { recursive: true });
  const tmp = join(work, 'tmp');
  mkdirSync(tmp, { recursive: true });
  // `uname -m` says aarch64; `chmod 700 …/periscope-agent` (the script's
  // last step before running it) leaves the checked arm64 file beside a
  // wrapper that runs it under qemu, since nothing here can exec it directly.
  const q = qemuAarch64();
  const write = (name: string, text: string) => writeFileSync(join(shims, name), text, { mode: 0o755 });
  write('uname', '#!/bin/sh\ncase "$1" in -m) echo aarch64 ;; *) /bin/uname "$@" ;; esac\n');
  write(
    'chmod',
    `#!/bin/sh\n/bin/chmod "$@" || exit\ncase "$2" in\n  */periscope-agent)\n    mv "$2" "$2.arm64"\n    printf '#!/bin/sh\\nexec ${q} -L ${CROSS_SYSROOT} "$0.arm64" "$@"\\n' > "$2"\n    /bin/chmod 700 "$2" ;;\nesac\n`,
  );

  const session = await createSession(admin, 'arm64 one-liner');
  const r = run('sh', ['-c', session.commands.curl!], { PATH: `${shims}:${process.env.PATH}`, HOME: process.env.HOME, TMPDIR: tmp, LANG: 'C.UTF-8' });
  await r.until(/periscope: starting the agent/, 120_000);
  const started = performance.now();
  await r.until(CONNECTED, 180_000);
  const connectedMs = performance.now() - started;
  await waitOnline(session.id, 30_000, r.output);
  assert.match(r.output(), new RegExp(`periscope: downloading the agent from http://127\\.0\\.0\\.1:${port}/agent/periscope-agent-linux-aarch64\\.gz\\n`));
  assert.match(r.output(), /periscope: checksum verified\n/);
  // (The agent's addon directory, periscope-*, is there only until the addon is mapped.)
  const entries = readdirSync(tmp).filter((e) => e.startsWith('tmp.'));
  assert.equal(entries.length, 1, `one private directory of the script in TMPDIR: ${readdirSync(tmp).join(', ')}`);
  const dir = join(tmp, entries[0]!);
  const header = readFileSync(join(dir, 'periscope-agent.arm64')).subarray(0, 20);
  assert.equal(header.readUInt16LE(18), 183, 'the downloaded, checked agent is an aarch64 executable (e_machine EM_AARCH64)');
  assert.equal(readFileSync(binaryOf('arm64')).subarray(0, 4096).equals(readFileSync(join(dir, 'periscope-agent.arm64')).subarray(0, 4096)), true, 'it is dist/periscope-agent-linux-arm64');
  r.interrupt();
  await r.closed;
  assert.match(r.output(), /disconnected; no capture is running/);
  assert.ok(!r.output().includes(session.joinToken), 'the join token is not printed');
  t.diagnostic(`arm64 under qemu: "starting the agent" to "connected" ${connectedMs.toFixed(0)} ms (emulated; reported, not judged)`);
});

async function waitOnline(sessionId: string, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await onlineAgents(sessionId)) === 0) {
    if (Date.now() > deadline) throw new Error(`the relay never listed the agent online; output:\n${output()}`);
    await sleep(100);
  }
}

/** Spawn-to-"connected" of `command args` with the session's join token, `runs` times; the agent is interrupted after each. */
async function startToConnected(sessionId: string, token: string, command: string, args: string[], runs: number, timeoutMs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = run(command, [...args, 'connect', `http://127.0.0.1:${port}`], { PATH: process.env.PATH, HOME: process.env.HOME, PERISCOPE_TOKEN: token });
    times.push(await r.until(CONNECTED, timeoutMs));
    await waitOnline(sessionId, 10_000, r.output);
    r.interrupt();
    await r.closed;
  }
  return times;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

test('start-to-connected: x64 native < 1 s (also through the glibc runtime); arm64 under qemu reported', { timeout: 5 * 60_000 }, async (t) => {
  const session = await createSession(admin, 'start to connected');
  const x64 = await startToConnected(session.id, session.joinToken, binaryOf('x64'), [], 5, 10_000);
  t.diagnostic(`x64 native: median ${median(x64).toFixed(0)} ms of ${x64.map((v) => v.toFixed(0)).join(', ')}`);
  assert.ok(median(x64) < 1000, `the x64 agent takes ${median(x64).toFixed(0)} ms from start to connected (budget 1 s)`);

  const runtime = join(work, 'glibc');
  mkdirSync(runtime, { recursive: true });
  const tar = spawn('tar', ['-xzf', ensureGlibcRuntime(), '-C', runtime]);
  await new Promise((resolve) => tar.on('close', resolve));
  const viaLoader = await startToConnected(session.id, session.joinToken, join(runtime, GLIBC_LOADER), ['--library-path', runtime, binaryOf('x64')], 5, 10_000);
  t.diagnostic(`x64 through the glibc runtime's loader: median ${median(viaLoader).toFixed(0)} ms of ${viaLoader.map((v) => v.toFixed(0)).join(', ')}`);
  assert.ok(median(viaLoader) < 1000, `through the glibc runtime the x64 agent takes ${median(viaLoader).toFixed(0)} ms (budget 1 s)`);

  if (skip) return void t.diagnostic(`arm64 not measured: ${skip}`);
  const [q, qargs] = arm64Command(binaryOf('arm64'), []);
  const arm = await startToConnected(session.id, session.joinToken, q, qargs, 3, 120_000);
  t.diagnostic(`arm64 under qemu-aarch64: median ${median(arm).toFixed(0)} ms of ${arm.map((v) => v.toFixed(0)).join(', ')} (emulated; reported, not judged)`);
});
