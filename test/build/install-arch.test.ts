// The one-liner picks the agent for the customer's machine by `uname -m`
// (relay/install/install-script.ts), and the relay serves one per machine
// (relay/http/routes/install-routes.ts, relay/install/agent-binary.ts).
//
// The script runs for real with sh, against a local HTTP server standing in
// for the relay, with `uname` answered by a shim on PATH; the "agents" are
// tiny shell scripts that say which one ran, so this runs on any machine.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { RelayServices } from '../../relay/http/context.ts';
import { installRoutes } from '../../relay/http/routes/install-routes.ts';
import { AgentBinaries } from '../../relay/install/agent-binary.ts';
import { installScript } from '../../relay/install/install-script.ts';

const work = mkdtempSync(join(tmpdir(), 'periscope-install-arch-'));
const fakeAgent = (name: string) => Buffer.from(`#!/bin/sh\necho "${name} agent: $*"\n`);
const gz = { x86_64: gzipSync(fakeAgent('x86_64')), aarch64: gzipSync(fakeAgent('aarch64')) };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
let server: Server;
let relayUrl = '';

before(async () => {
  server = createServer((req, res) => {
    const m = /^\/agent\/periscope-agent-linux-(x86_64|aarch64)\.gz$/.exec(req.url ?? '');
    if (!m) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'application/gzip' }).end(gz[m[1] as keyof typeof gz]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  relayUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
after(() => {
  server.close();
  rmSync(work, { recursive: true, force: true });
});

/**
 * Runs the install script as `sh` with `uname -s` = Linux and `uname -m` =
 * machine. Asynchronously: the stand-in relay answers from this process.
 */
function runScript(machine: string, sha256: Parameters<typeof installScript>[0]['sha256']): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const shim = join(work, `shim-${machine}`);
  mkdirSync(shim, { recursive: true });
  writeFileSync(join(shim, 'uname'), `#!/bin/sh\ncase "$1" in -s) echo Linux ;; -m) echo ${machine} ;; *) echo Linux ;; esac\n`, { mode: 0o755 });
  const script = installScript({ relayUrl, joinToken: 'join-token', sha256, expiresAt: Date.now() + 3600_000 });
  const child = spawn('sh', ['-c', script], { env: { PATH: `${shim}:${process.env.PATH}`, TMPDIR: work }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

const both = { x86_64: sha(gz.x86_64), aarch64: sha(gz.aarch64) };

for (const [machine, agent] of [['x86_64', 'x86_64'], ['amd64', 'x86_64'], ['aarch64', 'aarch64'], ['arm64', 'aarch64']] as const) {
  test(`install script: uname -m ${machine} runs the ${agent} agent`, async () => {
    const r = await runScript(machine, both);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${agent} agent: connect ${relayUrl}\n`);
    assert.match(r.stderr, new RegExp(`/agent/periscope-agent-linux-${agent}\\.gz`));
    assert.match(r.stderr, /checksum verified/);
  });
}

test('install script: another machine is refused, naming the supported ones', async () => {
  const r = await runScript('riscv64', both);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /this machine is Linux riscv64; the agent is built for Linux x86_64 and aarch64 \(arm64\) only/);
});

test('install script: a machine whose agent the relay has not built is refused clearly', async () => {
  const r = await runScript('aarch64', { x86_64: both.x86_64 });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /this relay has no agent for Linux aarch64/);
});

test("install script: each machine's download is checked against its own checksum", async () => {
  const r = await runScript('aarch64', { x86_64: both.x86_64, aarch64: both.x86_64 });
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '', 'the mismatching download must not run');
  assert.match(r.stderr, /does not match its checksum/);
});

test('relay: serves each built agent under its uname -m name, with its checksum', async () => {
  const dist = join(work, 'dist');
  mkdirSync(dist, { recursive: true });
  writeFileSync(join(dist, 'periscope-agent-linux-x64'), fakeAgent('x86_64'));
  writeFileSync(join(dist, 'periscope-agent-linux-arm64'), fakeAgent('aarch64'));
  const binaries = new AgentBinaries(dist);
  const app = installRoutes({} as RelayServices, binaries);
  for (const machine of ['x86_64', 'aarch64'] as const) {
    const res = await app.request(`/agent/periscope-agent-linux-${machine}.gz`);
    assert.equal(res.status, 200);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(gunzipSync(body).toString(), fakeAgent(machine).toString());
    assert.equal(res.headers.get('X-Checksum-Sha256'), sha(body));
    const sum = await app.request(`/agent/periscope-agent-linux-${machine}.gz.sha256`);
    assert.equal(await sum.text(), `${sha(body)}  periscope-agent-linux-${machine}.gz\n`);
  }
  assert.deepEqual(Object.keys(await binaries.checksums()).sort(), ['aarch64', 'x86_64']);
  assert.notEqual((await app.request('/agent/periscope-agent-linux-riscv64.gz')).status, 200);
});

test('relay: serves the x86_64 glibc runtime as built (already gzipped), with its checksum; the script carries it', async () => {
  const dist = join(work, 'dist-glibc');
  mkdirSync(dist, { recursive: true });
  writeFileSync(join(dist, 'periscope-agent-linux-x64'), fakeAgent('x86_64'));
  const runtime = gzipSync(Buffer.from('not really a tar'));
  writeFileSync(join(dist, 'periscope-glibc-linux-x64.tar.gz'), runtime);
  const binaries = new AgentBinaries(dist);
  const app = installRoutes({} as RelayServices, binaries);
  const res = await app.request('/agent/periscope-glibc-linux-x86_64.tar.gz');
  assert.equal(res.status, 200);
  assert.deepEqual(Buffer.from(await res.arrayBuffer()), runtime, 'served byte for byte');
  assert.equal(res.headers.get('X-Checksum-Sha256'), sha(runtime));
  const sum = await app.request('/agent/periscope-glibc-linux-x86_64.tar.gz.sha256');
  assert.equal(await sum.text(), `${sha(runtime)}  periscope-glibc-linux-x86_64.tar.gz\n`);
  assert.notEqual((await app.request('/agent/periscope-glibc-linux-aarch64.tar.gz')).status, 200);
  assert.deepEqual(await binaries.glibcChecksums(), { x86_64: sha(runtime) });

  const script = installScript({ relayUrl, joinToken: 'join-token', sha256: both, glibcSha256: { x86_64: sha(runtime) }, expiresAt: Date.now() + 3600_000 });
  assert.match(script, new RegExp(`ARCH=x86_64; SHA256='${both.x86_64}'; LOADER='/lib64/ld-linux-x86-64.so.2'; GLIBC_SHA256='${sha(runtime)}'`));
  assert.match(script, /ARCH=aarch64; SHA256='[0-9a-f]+'; LOADER='\/lib\/ld-linux-aarch64.so.1'; GLIBC_SHA256='' ;;/);
});
