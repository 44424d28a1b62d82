// `npm run build`: the agent as one self-contained Linux x64 executable,
// dist/periscope-agent-linux-x64 (a Node Single Executable Application made
// from the pinned Node; see scripts/build-agent/). Prints its size, raw and
// gzipped (what the relay serves), and how long it takes to start.
import { buildAgentBinary } from './build-agent/index.ts';
import { measure } from './build-agent/figures.ts';

const started = performance.now();
const binary = await buildAgentBinary((line) => console.log(`build: ${line}`));
console.log(`build: wrote ${binary} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
const f = await measure(binary);
console.log(`size: ${f.rawMiB.toFixed(1)} MiB raw, ${f.gzipMiB.toFixed(1)} MiB gzip -9 (${f.gzipBytes} bytes)`);
console.log(`start: --version in ${f.versionMs.toFixed(0)} ms (median of ${f.runs})`);
