// `npm run build`: the agent as one self-contained Linux executable per
// machine, dist/periscope-agent-linux-x64 and dist/periscope-agent-linux-arm64
// (Node Single Executable Applications made from the pinned Node; see
// scripts/build-agent/), and dist/periscope-glibc-linux-x64.tar.gz, the glibc
// the x64 one runs with on machines that have none (glibc-runtime.ts). Prints
// each one's size, raw and gzipped (what the relay serves), and how long it
// takes to start (arm64: under qemu, so only an indication).
import { buildAgentBinary } from './build-agent/index.ts';
import { arm64Command } from './build-agent/cross.ts';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measure, medianWallMs } from './build-agent/figures.ts';
import { ensureGlibcRuntime, GLIBC_LOADER } from './build-agent/glibc-runtime.ts';
import { AGENT_ARCHES, binaryOf } from './build-agent/paths.ts';

for (const arch of AGENT_ARCHES) {
  const started = performance.now();
  const binary = await buildAgentBinary((line) => console.log(`build: ${line}`), arch);
  console.log(`build: wrote ${binary} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const f = await measure(binary, arch === 'x64' ? 7 : 3, arch === 'x64' ? undefined : (args) => arm64Command(binary, args));
  console.log(`size: ${f.rawMiB.toFixed(1)} MiB raw, ${f.gzipMiB.toFixed(1)} MiB gzip -9 (${f.gzipBytes} bytes)`);
  console.log(`start: --version in ${f.versionMs.toFixed(0)} ms (median of ${f.runs}${arch === 'x64' ? '' : ', under qemu-aarch64'})`);
  if (arch === 'x64') reportGlibcRuntime();
}

/** The glibc runtime's size, and --version of the x64 agent started through its loader. */
function reportGlibcRuntime(): void {
  const runtime = ensureGlibcRuntime((line) => console.log(`build: ${line}`));
  const bytes = statSync(runtime).size;
  console.log(`build: wrote ${runtime}`);
  console.log(`size: ${(bytes / (1024 * 1024)).toFixed(1)} MiB gzip -9 (${bytes} bytes; served as it is, beside the x64 agent)`);
  const dir = mkdtempSync(join(tmpdir(), 'periscope-glibc-check-'));
  try {
    execFileSync('tar', ['-xzf', runtime, '-C', dir]);
    const args = ['--library-path', dir, binaryOf('x64'), '--version'];
    console.log(`start: --version through the shipped loader in ${medianWallMs(join(dir, GLIBC_LOADER), args, 7).toFixed(0)} ms (median of 7)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
