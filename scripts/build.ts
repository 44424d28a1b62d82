// `npm run build`: the agent as one self-contained Linux executable per
// machine, dist/periscope-agent-linux-x64 and dist/periscope-agent-linux-arm64
// (Node Single Executable Applications made from the pinned Node; see
// scripts/build-agent/). Prints each one's size, raw and gzipped (what the
// relay serves), and how long it takes to start (arm64: under qemu, so only
// an indication).
import { buildAgentBinary } from './build-agent/index.ts';
import { arm64Command } from './build-agent/cross.ts';
import { measure } from './build-agent/figures.ts';
import { AGENT_ARCHES } from './build-agent/paths.ts';

for (const arch of AGENT_ARCHES) {
  const started = performance.now();
  const binary = await buildAgentBinary((line) => console.log(`build: ${line}`), arch);
  console.log(`build: wrote ${binary} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  const f = await measure(binary, arch === 'x64' ? 7 : 3, arch === 'x64' ? undefined : (args) => arm64Command(binary, args));
  console.log(`size: ${f.rawMiB.toFixed(1)} MiB raw, ${f.gzipMiB.toFixed(1)} MiB gzip -9 (${f.gzipBytes} bytes)`);
  console.log(`start: --version in ${f.versionMs.toFixed(0)} ms (median of ${f.runs}${arch === 'x64' ? '' : ', under qemu-aarch64'})`);
}
