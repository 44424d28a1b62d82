// `node scripts/with-node.mjs bench/relay/run.ts [--quick] [--only=latency,memory,cpu] [--no-profile] [--wait-idle[=S]]`
// `node scripts/with-node.mjs bench/relay/run.ts --cluster [--quick]`: three relays, PostgreSQL, Redis (bench/relay/cluster.ts)
//
// Relay performance, every figure against a real relay process (relay/main.ts)
// on 127.0.0.1:
//   R1. sample-to-viewer latency of a 100 Hz record (the real agent's chunking,
//       a true 250 ms cut, a 100 ms cut), and the relay's own added latency
//   R2. relay RSS with 1k, 5k and 10k idle agents, per-connection cost
//   R3. relay CPU with 200 concurrent 100 Hz captures (+ a CPU profile of it)
// Prints tables, then one line `RELAY_BENCH_JSON {...}` with every figure.
// Environment: RELAY_BENCH_NODE_ARGS adds flags to the relay's node (e.g.
// --perf-basic-prof-only-functions, to read it with `perf record -p PID`).
// Exit status: 0 when everything ran (targets missed are reported, not fatal),
// 1 when a benchmark failed to run, 3 when the time limit cut the run short.
import { RELAY_BENCHES, relayJson, relayTables, runRelayBench, type RelayBenchName } from './bench.ts';

if (process.argv.includes('--cluster')) {
  const { clusterMain } = await import('./cluster.ts');
  process.exit(await clusterMain(process.argv.slice(2).filter((a) => a !== '--cluster')));
}

function usage(): never {
  console.log(`usage: node scripts/with-node.mjs bench/relay/run.ts [--quick] [--only=${RELAY_BENCHES.join(',')}] [--no-profile]
  --quick       shorter windows (under 2 minutes instead of about 4)
  --cluster     the cluster bench instead (bench/relay/cluster.ts; takes --quick)
  --only=...    run only some of the benchmarks
  --no-profile  skip the CPU profile of the relay after the CPU window
  --wait-idle[=SECONDS]  before each benchmark wait (default up to 60 s) for the rest of the machine to go quiet`);
  process.exit(0);
}

let quick = false;
let profile = true;
let waitIdleS = 0;
let only: RelayBenchName[] = [...RELAY_BENCHES];
for (const a of process.argv.slice(2)) {
  if (a === '--quick') quick = true;
  else if (a === '--no-profile') profile = false;
  else if (a === '--help' || a === '-h') usage();
  else if (a.startsWith('--wait-idle')) {
    waitIdleS = a.includes('=') ? Number(a.split('=')[1]) : 60;
    if (!(waitIdleS >= 0)) {
      console.error(`relay bench: --wait-idle needs a number of seconds, got ${a}`);
      process.exit(2);
    }
  }
  else if (a.startsWith('--only=')) {
    const names = a.slice(7).split(',').filter(Boolean);
    for (const n of names) {
      if (!(RELAY_BENCHES as readonly string[]).includes(n)) {
        console.error(`relay bench: unknown benchmark ${JSON.stringify(n)} (known: ${RELAY_BENCHES.join(', ')})`);
        process.exit(2);
      }
    }
    only = names as RelayBenchName[];
  } else {
    console.error(`relay bench: unknown argument ${a} (try --help)`);
    process.exit(2);
  }
}

// Every loop in the benchmarks is bounded; this is the backstop. Children are killed on exit (killOnExit, test/helpers/relay.ts).
const limitS = (quick ? 170 : 470) + 3 * waitIdleS;
setTimeout(() => {
  console.error(`relay bench: time limit of ${limitS} s reached; stopping`);
  process.exit(3);
}, limitS * 1000).unref();
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

console.log(`Periscope relay bench${quick ? ' (--quick)' : ''}: ${only.join(', ')}`);
const result = await runRelayBench({ quick, only, profile, waitIdleS });
console.log('');
console.log(relayTables(result));
console.log('');
console.log(`total ${result.seconds.toFixed(0)} s`);
console.log(`RELAY_BENCH_JSON ${JSON.stringify(relayJson(result))}`);
const ranAll = only.every((n) => result[n] !== null);
process.exitCode = ranAll ? 0 : 1;
