// `npm run bench [-- --quick] [-- LABEL ...]`: performance figures of the
// native reader and sampler, per interpreter found by test/helpers/pythons.ts,
// all measured in this one run:
//   1. dump latency (attach + dump, dump on an existing attach, the CLI)
//   2. sampler CPU per sample at 1 kHz on a thread busy 50 frames deep
//   3. highest rate sustained with < 1 % late samples
//   4. slowdown of the busy target while profiled (100 Hz / 1 kHz,
//      non-blocking / blocking), alternating unprofiled and profiled phases
//   5. beside the peers: whole-process CPU per sample at 1 kHz of
//      `periscope record`, austin 3.7 and CPython 3.15's profiler; CPython's
//      highest rate; a short record's start-up cost (bench/peers.ts)
//   6. instructions per sample under callgrind (bench/callgrind.ts)
// plus, once, a platform baseline for 3: how late a bare sleep loop wakes up.
// Prints tables, then one line `BENCH_JSON {...}` with every figure.
//
// Options: --quick (shorter phases, fewer repetitions), --slowdown-rounds=N (more 100 Hz phases to resolve a small slowdown), --only=timer,dump,cpu,rate,slowdown,peers,callgrind,
// --wait-idle=SECONDS (before each interpreter, wait up to that long for the
// rest of the machine to go quiet), and any other argument filters
// interpreters by label or version prefix ("3.11" matches 3.11.x and
// debian-3.11; "debian" matches debian-3.11).
//
// Everything else running on the machine skews these figures (the slowdown
// most); the "bg" columns show how many cores other processes used meanwhile.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { nativeAddonPath } from '../agent/native.ts';
import { ensureNativeBuilt } from '../scripts/build-native.ts';
import { EXPECTED, type Python, pythons, skippedPythons } from '../test/helpers/pythons.ts';
import { benchCpu, CPU_RATE, type CpuResult } from './cpu.ts';
import { benchDump, DUMP_DEPTH, type DumpResult } from './dump.ts';
import { benchPeers, PEER_RATE, type PeersResult } from './peers.ts';
import { benchCallgrind, type CallgrindResult } from './callgrind.ts';
import { benchMaxRate, LATE_LIMIT, type MaxRateResult } from './maxrate.ts';
import { benchTimer, type TimerBaseline } from './timer.ts';
import { benchSlowdown, CONFIGS, type Estimate, SLOWDOWN_TARGET, type SlowdownResult } from './slowdown.ts';
import { LoadMeter, waitIdle } from './lib/load.ts';
import { startTarget } from './lib/target.ts';
import { fixed, nowMs, pct, rateLabel, round } from './lib/stats.ts';
import { renderTable } from './lib/table.ts';

const BUSY_DEPTH = 50;
const ALL_BENCHES = ['timer', 'dump', 'cpu', 'rate', 'slowdown', 'peers', 'callgrind'] as const;
type BenchName = (typeof ALL_BENCHES)[number];

interface PythonResult {
  label: string;
  version: string;
  exe: string;
  dump: DumpResult | null;
  cpu: CpuResult | null;
  rate: MaxRateResult | null;
  slowdown: SlowdownResult | null;
  peers: PeersResult | null;
  callgrind: CallgrindResult | null;
  errors: string[];
  seconds: number;
  /** Cores used by other processes while the busy-target benchmarks ran. */
  backgroundCores: number;
  /** Background cores measured just before this interpreter started (with --wait-idle). */
  idleBefore: number | null;
}

function usage(): never {
  console.log(`usage: node scripts/with-node.mjs bench/run.ts [--quick] [--only=${ALL_BENCHES.join(',')}] [--wait-idle[=SECONDS]] [--slowdown-rounds=N] [LABEL ...]
  LABEL filters interpreters: a pyenv label (3.12.1), a version prefix (3.11, 3) or "debian".`);
  process.exit(0);
}

interface Args {
  quick: boolean;
  only: Set<BenchName>;
  filters: string[];
  waitIdle: number;
  /** Rounds of the slowdown alternation (each gives three 100 Hz phases); more rounds resolve smaller slowdowns. */
  slowdownRounds: number | undefined;
}

function parseArgs(argv: string[]): Args {
  let quick = false;
  let waitIdleS = 0;
  let slowdownRounds: number | undefined;
  let only = new Set<BenchName>(ALL_BENCHES);
  const filters: string[] = [];
  for (const a of argv) {
    if (a === '--quick') quick = true;
    else if (a === '--help' || a === '-h') usage();
    else if (a.startsWith('--wait-idle')) {
      waitIdleS = a.includes('=') ? Number(a.split('=')[1]) : 60;
      if (!(waitIdleS >= 0)) {
        console.error(`bench: --wait-idle needs a number of seconds, got ${a}`);
        process.exit(2);
      }
    }
    else if (a.startsWith('--slowdown-rounds=')) {
      slowdownRounds = Number(a.split('=')[1]);
      if (!(Number.isInteger(slowdownRounds) && slowdownRounds >= 1 && slowdownRounds <= 100)) {
        console.error(`bench: --slowdown-rounds takes a whole number from 1 to 100, got ${a}`);
        process.exit(2);
      }
    }
    else if (a.startsWith('--only=')) {
      const names = a.slice(7).split(',').filter(Boolean);
      for (const n of names) {
        if (!(ALL_BENCHES as readonly string[]).includes(n)) {
          console.error(`bench: unknown benchmark ${JSON.stringify(n)} (known: ${ALL_BENCHES.join(', ')})`);
          process.exit(2);
        }
      }
      only = new Set(names as BenchName[]);
    } else if (a.startsWith('-')) {
      console.error(`bench: unknown option ${a}`);
      process.exit(2);
    } else filters.push(a);
  }
  return { quick, only, filters, waitIdle: waitIdleS, slowdownRounds };
}

function matches(p: Python, f: string): boolean {
  return p.label === f || p.version === f || p.version.startsWith(`${f}.`) || (!/^\d/.test(f) && p.label.includes(f));
}

function minorOf(version: string): string {
  return version.split('.').slice(0, 2).join('.');
}

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function log(line: string): void {
  console.log(`· ${line}`);
}

function errText(err: unknown): string {
  return err instanceof Error ? `${(err as Error & { code?: string }).code ? `${(err as Error & { code?: string }).code}: ` : ''}${err.message}` : String(err);
}

async function benchPython(py: Python, quick: boolean, only: Set<BenchName>, idleBefore: number | null, slowdownRounds?: number): Promise<PythonResult> {
  const t0 = nowMs();
  const res: PythonResult = {
    label: py.label,
    version: py.version,
    exe: py.exe,
    dump: null,
    cpu: null,
    rate: null,
    slowdown: null,
    peers: null,
    callgrind: null,
    errors: [],
    seconds: 0,
    backgroundCores: Number.NaN,
    idleBefore,
  };
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | null> => {
    const s0 = nowMs();
    try {
      const r = await fn();
      log(`${py.label}: ${name} done in ${((nowMs() - s0) / 1000).toFixed(1)} s`);
      return r;
    } catch (err) {
      const msg = `${name}: ${errText(err)}`;
      res.errors.push(msg);
      log(`${py.label}: ${msg}`);
      return null;
    }
  };

  if (only.has('dump')) {
    res.dump = await step('dump latency', () => benchDump(py, quick));
    if (res.dump?.error) res.errors.push(`dump: ${res.dump.error}`);
  }
  if (['cpu', 'rate', 'slowdown', 'peers', 'callgrind'].some((b) => only.has(b as BenchName))) {
    const target = await step('busy target start', () => startTarget(py, 'busy', BUSY_DEPTH, true));
    if (target) {
      const load = new LoadMeter([target.pid]);
      try {
        if (target.readyDepth !== BUSY_DEPTH) res.errors.push(`busy target reports ${target.readyDepth} frames, expected ${BUSY_DEPTH}`);
        const threads = readdirSync(`/proc/${target.pid}/task`).length;
        if (threads !== 1) res.errors.push(`busy target has ${threads} threads, expected 1`);
        if (only.has('cpu')) res.cpu = await step('sampler CPU', () => benchCpu(py, target, quick));
        if (only.has('rate')) res.rate = await step('max rate', () => benchMaxRate(py, target, quick));
        if (only.has('slowdown')) res.slowdown = await step('slowdown', () => benchSlowdown(py, target, quick, slowdownRounds));
        if (only.has('peers')) res.peers = await step('peers', () => benchPeers(py, target, quick));
        if (only.has('callgrind')) res.callgrind = await step('callgrind', async () => benchCallgrind(target, quick));
      } finally {
        res.backgroundCores = load.read().backgroundCores;
        await target.kill();
      }
    }
  }
  res.seconds = (nowMs() - t0) / 1000;
  return res;
}

function verdict(pass: boolean | null | undefined): string {
  return pass === null || pass === undefined ? '—' : pass ? 'PASS' : 'FAIL';
}

/** "mean ±2SE (n)" of a slowdown estimate. */
function estimateCell(e: Estimate): string {
  if (!Number.isFinite(e.mean)) return '—';
  return `${pct(e.mean)} ±${fixed(2 * e.se * 100, 2)} (${e.values.length})`;
}

function estimateJson(e: Estimate): unknown {
  return {
    mean: round(e.mean, 5),
    se: round(e.se, 5),
    median: round(e.median, 5),
    min: round(e.min, 5),
    max: round(e.max, 5),
    values: e.values.map((v) => round(v, 5)),
  };
}

function timerTable(baselines: TimerBaseline[]): string {
  const rates = [...new Set(baselines.flatMap((b) => b.trials.map((t) => t.rate)))].sort((a, b) => a - b);
  return renderTable(
    `0. Platform baseline: a bare sleep loop on the sampler's grid (${baselines[0]?.python ?? '?'}), busy target on the other core: late % · mean wake-up delay · CPU per wake-up`,
    ['timer slack', ...rates.map((r) => `${rateLabel(r)}Hz`), `max <${LATE_LIMIT * 100}% late`],
    baselines.map((b) => [
      b.slackNs === null ? 'default (50 µs)' : `${b.slackNs / 1000} µs`,
      ...rates.map((r) => {
        const t = b.trials.find((x) => x.rate === r);
        return t ? `${pct(t.lateFraction, 1).replace('+', '')} · ${fixed(t.meanUs, 0)} · ${fixed(t.cpuPerWakeUs, 1)} µs` : '—';
      }),
      b.maxRate ? `${rateLabel(b.maxRate)}Hz` : 'none',
    ]),
    [
      'The ceiling for any sampler that sleeps between samples on this machine (the native sampler thread sets its slack below the interval and spins above 2.5 kHz),',
      'and the CPU that sleeping and waking alone costs per sample here (compare with the sampler\'s CPU µs/sample in table 2).',
    ],
  );
}

function tables(results: PythonResult[], quick: boolean, baselines: TimerBaseline[] | null, only: Set<BenchName>): string {
  const out: string[] = [];
  if (baselines) out.push(timerTable(baselines));
  const dumpRows = results.map((r) => {
    const d = r.dump;
    return [
      r.label,
      d ? String(d.frames) : '—',
      fixed(d?.firstAttachDumpMs, 2),
      fixed(d?.attachDumpMedianMs, 2),
      fixed(d?.dumpMedianMs, 3),
      fixed(d?.blockingDumpMedianMs, 3),
      d ? (d.cliMedianMs !== null ? fixed(d.cliMedianMs, 0) : 'error') : '—',
      d ? (d.peerMedianMs !== null ? fixed(d.peerMedianMs, 0) : 'missing') : '—',
      d && d.cliMedianMs !== null && d.peerMedianMs !== null ? fixed(d.cliMedianMs / d.peerMedianMs, 2) : '—',
    ];
  });
  const n = results.find((r) => r.dump)?.dump;
  if (only.has('dump')) out.push(
    renderTable(
      `1. Dump latency, one thread parked ${DUMP_DEPTH} frames deep (ms; medians)`,
      ['python', 'frames', 'attach+dump 1st', `attach+dump (n=${n?.attachDumpN ?? '?'})`, `dump, attached (n=${n?.dumpN ?? '?'})`, `blocking dump (n=${n?.blockingDumpN ?? '?'})`, `CLI dump (n=${n ? (quick ? 2 : 5) : '?'})`, 'CPython dump', 'CLI / CPython'],
      dumpRows,
      [
        'attach+dump = new Target(pid) + dump() in process (attach(pid).dump()); "1st" is the first for that interpreter in this process.',
        'CLI dump = `bin/periscope dump --pid PID`, Node start-up included.',
        'CPython dump = `python3.X -m profiling.sampling dump PID` (3.15+ only: it reads only its own version), run alternately with the CLI; "missing" = not available here (see the notes below).',
      ],
    ),
  );

  const cpuRows = results.map((r) => {
    const c = r.cpu;
    const m = r.rate;
    const fails = m ? m.trials.filter((t) => t.rate === m.firstFail) : [];
    return [
      r.label,
      c ? fixed(c.run.cpuPerSampleUs, 2) : '—',
      c ? fixed(c.run.walkPerSampleUs, 2) : '—',
      c?.targetUs ? `≤ ${c.targetUs}` : '—',
      verdict(c?.pass),
      c ? fixed(c.run.meanFrames, 0) : '—',
      c ? pct(c.run.lateFraction, 2).replace('+', '') : '—',
      m ? (m.maxRate ? `${rateLabel(m.maxRate)}Hz` : 'none') : '—',
      m?.targetHz ? `≥ ${rateLabel(m.targetHz)}Hz` : '—',
      verdict(m?.pass),
      fails.length
        ? `${rateLabel(fails[0].rate)}Hz: ${fails.map((t) => pct(t.lateFraction, 1).replace('+', '')).join(', ')} late`
        : m
          ? 'none failed'
          : '—',
      fixed(r.backgroundCores, 2),
    ];
  });
  if (only.has('cpu') || only.has('rate')) out.push(
    renderTable(
      `2-3. Sampler on a thread busy ${BUSY_DEPTH} frames deep`,
      ['python', `CPU µs/sample @${rateLabel(CPU_RATE)}Hz`, 'walk µs/sample', 'target', 'verdict', 'frames', 'late', `max rate <${LATE_LIMIT * 100}% late`, 'target', 'verdict', 'first failing', 'bg cores'],
      cpuRows,
      [
        'CPU µs/sample = samplerCpuUs / samples (sampling thread CPU, sleep/wake-up included); walk = walkUs / samples (reading stacks only, wall time).',
        `max rate: ladder 1k,2k,5k,10k,20k,50k,100k (~${quick ? 0.6 : 1} s each) up to the first failure, then geometric bisection; a rate passes if one of two tries does; late = late / ticks.`,
        'bg cores = CPU used by other processes on this machine meanwhile (should be ~0 for trustworthy figures).',
      ],
    ),
  );

  const slowRows = results.map((r) => {
    const s = r.slowdown;
    return [
      r.label,
      s ? fixed(s.offRate, 0) : '—',
      s ? `±${fixed(s.noise * 100, 2)}%` : '—',
      ...CONFIGS.map((c) => {
        const v = s?.configs.find((x) => x.key === c.key);
        return v ? estimateCell(v.wall) : '—';
      }),
      s && s.pass !== null ? `${verdict(s.pass)}${s.resolved ? '' : '?'}` : '—',
      s ? fixed(s.backgroundCores, 2) : '—',
    ];
  });
  const s0 = results.find((r) => r.slowdown)?.slowdown;
  if (only.has('slowdown')) out.push(
    renderTable(
      `4. Target slowdown = 1 - profiled / unprofiled work rate: mean ±2 standard errors (number of ${s0?.phaseSeconds ?? '?'} s phases)`,
      ['python', 'units/s off', 'noise', ...CONFIGS.map((c) => c.key), `100Hz < ${SLOWDOWN_TARGET * 100}%`, 'bg cores'],
      slowRows,
      [
        'Phases alternate off/on/off/on…; each on phase is compared with the mean of the off phases either side of it (negative = faster while profiled).',
        'noise = standard deviation of the same estimator for an off phase against its off neighbours (a placebo); standard error = noise / sqrt(n).',
        'verdict "?" = not resolved: mean ±2 standard errors straddles the target; the verdict then follows the mean.',
      ],
    ),
  );

  const cpuSlowRows = results.map((r) => {
    const s = r.slowdown;
    return [
      r.label,
      s ? fixed(s.offCpuRate, 0) : '—',
      s ? `±${fixed(s.noisePerCpu * 100, 2)}%` : '—',
      ...CONFIGS.map((c) => {
        const v = s?.configs.find((x) => x.key === c.key);
        return v ? estimateCell(v.perCpu) : '—';
      }),
    ];
  });
  if (only.has('slowdown')) out.push(
    renderTable(
      '4b. The same phases, work per CPU second of the target: slowdown from interference (caches, memory, kernel locks) only',
      ['python', 'units/CPU-s off', 'noise', ...CONFIGS.map((c) => c.key)],
      cpuSlowRows,
      ['Excludes time the target spent paused (blocking) or waiting for a core, so it stays readable on a loaded machine; table 4 is the figure users feel.'],
    ),
  );

  const schedRows = results.map((r) => {
    const s = r.slowdown;
    const cell = (wait: number, nvcsw: number) => `${fixed(wait, 0)} / ${fixed(nvcsw, 1)}`;
    return [
      r.label,
      s ? fixed(s.offCpuShare * 100, 1) : '—',
      s ? cell(s.offWaitUsPerS, s.offNvcswPerS) : '—',
      ...CONFIGS.map((c) => {
        const v = s?.configs.find((x) => x.key === c.key);
        return v ? cell(v.waitUsPerS, v.nvcswPerS) : '—';
      }),
      ...CONFIGS.map((c) => {
        const v = s?.configs.find((x) => x.key === c.key);
        return v ? `${fixed(v.cpuPerSampleUs, 1)}/${pct(v.lateFraction, 1).replace('+', '')}${v.errors ? ` err ${v.errors}` : ''}` : '—';
      }),
    ];
  });
  if (only.has('slowdown')) out.push(
    renderTable(
      '4c. Target main thread during the slowdown phases: run-queue wait µs/s / involuntary switches per s; sampler CPU µs/sample / late',
      ['python', 'CPU% off', 'off', ...CONFIGS.map((c) => c.key), ...CONFIGS.map((c) => `${c.key} sampler`)],
      schedRows,
      ['From /proc/PID/task/PID/schedstat and status: non-zero run-queue wait while profiled means the target had to wait for a core.'],
    ),
  );
  if (only.has('peers') || only.has('callgrind')) out.push(peersTable(results));
  return out.join('\n\n');
}

/** a / b as "0.42", or "—" when either is missing. */
function ratio(a: number | null | undefined, b: number | null | undefined): string {
  return a && b ? fixed(a / b, 2) : '—';
}

function peersTable(results: PythonResult[]): string {
  const rows = results.map((r) => {
    const p = r.peers;
    const cell = (f: PeersResult['austin'] | undefined) => (!f ? '—' : f.cpuPerSampleUs === null ? 'missing' : fixed(f.cpuPerSampleUs, 1));
    return [
      r.label,
      cell(p?.periscope),
      cell(p?.austin),
      ratio(p?.periscope.cpuPerSampleUs, p?.austin.cpuPerSampleUs),
      cell(p?.cpython),
      ratio(p?.periscope.cpuPerSampleUs, p?.cpython.cpuPerSampleUs),
      r.rate ? `${rateLabel(r.rate.maxRate)}Hz` : '—',
      p ? (p.cpythonMaxRateHz === null ? 'missing' : `${rateLabel(Math.round(p.cpythonMaxRateHz))}Hz`) : '—',
      ratio(r.rate?.maxRate, p?.cpythonMaxRateHz),
      r.callgrind ? (r.callgrind.instructionsPerSample === null ? 'missing' : String(Math.round(r.callgrind.instructionsPerSample))) : '—',
      p && p.shortRecordColdS !== null && p.shortRecordWarmS !== null ? `${fixed(p.shortRecordColdS, 2)} / ${fixed(p.shortRecordWarmS, 2)}` : '—',
    ];
  });
  const seconds = results.find((r) => r.peers)?.peers?.seconds ?? '?';
  return renderTable(
    `5. Beside the peers, same busy target, same run: whole-process CPU µs/sample at ${rateLabel(PEER_RATE)}Hz for ${seconds} s (goal: periscope ≤ 0.5× each peer), highest rate, instructions per sample`,
    ['python', 'periscope', 'austin 3.7', 'P/austin', 'CPython 3.15', 'P/CPython', 'P max <1% late', 'CPython @100kHz', 'P/CPython rate', 'instr/sample', 'record -d 1 CPU s (no cache / cache)'],
    rows,
    [
      'periscope = `bin/periscope record -r 1000 -d S -f raw` (Node start-up, sampling, building and writing the profile); austin = `austin -i 1000 -x S -p PID`; CPython = `python3.15 -m profiling.sampling attach -r 1000 -d S --collapsed`. CPU = user+sys of the process tree; tools take turns.',
      'P max = bench 3\'s highest rate with < 1 % late samples; CPython @100kHz = samples per second CPython\'s profiler achieved when asked for 100 kHz (it spins between samples).',
      'instr/sample = callgrind instructions in Sampler::sample_once per sample (reading, caching, recording; no kernel time). "missing" = that peer cannot run here (notes below).',
    ],
  );
}

function toJson(results: PythonResult[], meta: Record<string, unknown>): unknown {
  return {
    ...meta,
    pythons: results.map((r) => ({
      label: r.label,
      version: r.version,
      seconds: round(r.seconds, 1),
      errors: r.errors,
      backgroundCores: round(r.backgroundCores, 2),
      idleBefore: r.idleBefore === null ? null : round(r.idleBefore, 2),
      dump: r.dump && {
        frames: r.dump.frames,
        attachDumpFirstMs: round(r.dump.firstAttachDumpMs),
        attachDumpMs: round(r.dump.attachDumpMedianMs),
        dumpMs: round(r.dump.dumpMedianMs, 4),
        blockingDumpMs: round(r.dump.blockingDumpMedianMs, 4),
        cliMs: r.dump.cliMedianMs === null ? null : round(r.dump.cliMedianMs, 1),
        cliError: r.dump.cliError,
        cpythonDumpMs: r.dump.peerMedianMs === null ? null : round(r.dump.peerMedianMs, 1),
        cpythonDumpMissing: r.dump.peerMissing,
      },
      cpu: r.cpu && {
        rate: r.cpu.run.rate,
        samples: r.cpu.run.stats.samples,
        cpuPerSampleUs: round(r.cpu.run.cpuPerSampleUs, 2),
        walkPerSampleUs: round(r.cpu.run.walkPerSampleUs, 2),
        lateFraction: round(r.cpu.run.lateFraction, 4),
        errors: r.cpu.run.stats.errors,
        meanFrames: round(r.cpu.run.meanFrames, 1),
        targetUs: r.cpu.targetUs,
        pass: r.cpu.pass,
      },
      maxRate: r.rate && {
        maxRateHz: r.rate.maxRate,
        firstFailHz: r.rate.firstFail,
        targetHz: r.rate.targetHz,
        pass: r.rate.pass,
        trials: r.rate.trials.map((t) => ({
          rate: t.rate,
          late: round(t.lateFraction, 4),
          cpuUs: round(t.cpuPerSampleUs, 2),
          walkUs: round(t.walkPerSampleUs, 2),
          errors: t.errors,
          pass: t.pass,
        })),
      },
      peers: r.peers && {
        seconds: r.peers.seconds,
        periscopeCpuUs: r.peers.periscope.cpuPerSampleUs && round(r.peers.periscope.cpuPerSampleUs, 2),
        austinCpuUs: r.peers.austin.cpuPerSampleUs && round(r.peers.austin.cpuPerSampleUs, 2),
        austinMissing: r.peers.austin.missing,
        cpythonCpuUs: r.peers.cpython.cpuPerSampleUs && round(r.peers.cpython.cpuPerSampleUs, 2),
        cpythonMissing: r.peers.cpython.missing,
        cpythonMaxRateHz: r.peers.cpythonMaxRateHz && round(r.peers.cpythonMaxRateHz, 0),
        shortRecordCpuS: { noCompileCache: r.peers.shortRecordColdS, compileCache: r.peers.shortRecordWarmS },
        runs: { periscope: r.peers.periscope.runs, austin: r.peers.austin.runs, cpython: r.peers.cpython.runs },
      },
      callgrind: r.callgrind && { instructionsPerSample: r.callgrind.instructionsPerSample && round(r.callgrind.instructionsPerSample, 0), samples: r.callgrind.samples, missing: r.callgrind.missing },
      slowdown: r.slowdown && {
        offRate: round(r.slowdown.offRate, 0),
        noise: round(r.slowdown.noise, 5),
        offCpuRate: round(r.slowdown.offCpuRate, 0),
        noisePerCpu: round(r.slowdown.noisePerCpu, 5),
        pass100HzNonBlocking: r.slowdown.pass,
        resolved: r.slowdown.resolved,
        backgroundCores: round(r.slowdown.backgroundCores, 2),
        offRunQueueWaitUsPerS: round(r.slowdown.offWaitUsPerS, 0),
        configs: Object.fromEntries(
          r.slowdown.configs.map((c) => [
            c.key,
            {
              wall: estimateJson(c.wall),
              perCpu: estimateJson(c.perCpu),
              lateFraction: round(c.lateFraction, 4),
              cpuPerSampleUs: round(c.cpuPerSampleUs, 2),
              errors: c.errors,
              runQueueWaitUsPerS: round(c.waitUsPerS, 0),
            },
          ]),
        ),
      },
    })),
  };
}

async function main(): Promise<void> {
  const { quick, only, filters, waitIdle: waitIdleS, slowdownRounds } = parseArgs(process.argv.slice(2));
  const started = nowMs();
  ensureNativeBuilt();

  const found = pythons();
  const selected = filters.length ? found.filter((p) => filters.some((f) => matches(p, f))) : found;
  const missing = EXPECTED.filter((e) => !found.some((p) => p.label === e || (/^\d+\.\d+\.\d+$/.test(p.label) && minorOf(p.version) === e)));
  const skipped = skippedPythons();

  const addon = nativeAddonPath();
  let addonMtime = '';
  try {
    addonMtime = statSync(addon).mtime.toISOString();
  } catch {
    // reported by ensureNativeBuilt already
  }
  const cpuModel = cpus()[0]?.model ?? '?';
  const meta = {
    date: new Date().toISOString(),
    quick,
    node: process.version,
    kernel: release(),
    cpus: cpus().length,
    cpuModel,
    gitHead: sh('git', ['-C', join(import.meta.dirname, '..'), 'rev-parse', '--short', 'HEAD']),
    addonMtime,
    benches: [...only],
    filters,
    waitIdleS,
    missing,
    timerSlackNs: Number(readFileSync('/proc/self/timerslack_ns', 'utf8').trim()) || null,
  };

  console.log(`Periscope bench${quick ? ' (--quick)' : ''}: ${meta.cpus} × ${cpuModel}, Linux ${meta.kernel}, Node ${meta.node}, HEAD ${meta.gitHead}, addon built ${addonMtime}`);
  console.log(`interpreters found: ${found.map((p) => `${p.label}${p.label.startsWith('debian') ? ` (${p.version})` : ''}`).join(', ') || 'none'}`);
  console.log(`expected but missing: ${missing.length ? missing.join(', ') : 'none'}`);
  for (const s of skipped) if (!missing.includes(s.label as (typeof EXPECTED)[number])) console.log(`  skipped ${s.label}: ${s.reason}`);
  if (filters.length) {
    console.log(`filter ${filters.join(' ')}: running ${selected.map((p) => p.label).join(', ') || 'nothing'}`);
  }
  if (meta.cpus < 2) console.log('warning: fewer than 2 CPUs — the sampler and the busy target share a core; slowdown figures will be meaningless.');
  if (selected.length === 0) {
    console.error('bench: no interpreter selected');
    process.exit(1);
  }

  let baselines: TimerBaseline[] | null = null;
  if (only.has('timer')) {
    const py = [...found, ...selected].reverse().find((p) => Number(p.version.split('.')[0]) === 3 && Number(p.version.split('.')[1]) >= 7);
    if (!py) console.log('· timer baseline skipped: it needs Python 3.7+');
    else {
      try {
        const t0 = nowMs();
        baselines = await benchTimer(py, quick);
        log(`timer baseline (${py.label}) done in ${((nowMs() - t0) / 1000).toFixed(1)} s`);
      } catch (err) {
        log(`timer baseline: ${errText(err)}`);
      }
    }
  }

  const results: PythonResult[] = [];
  for (const py of selected) {
    let idleBefore: number | null = null;
    if (waitIdleS > 0) {
      idleBefore = await waitIdle(waitIdleS);
      log(`background load before ${py.label}: ${idleBefore.toFixed(2)} cores`);
    }
    log(`${py.label} (${py.version}, ${py.exe})`);
    results.push(await benchPython(py, quick, only, idleBefore, slowdownRounds));
  }

  console.log('');
  console.log(tables(results, quick, baselines, only));
  const errors = results.flatMap((r) => r.errors.map((e) => `${r.label}: ${e}`));
  if (errors.length) {
    console.log('');
    console.log('errors:');
    for (const e of errors) console.log(`  ${e}`);
  }
  const loaded = results.filter((r) => r.backgroundCores > 0.2 || (r.slowdown?.backgroundCores ?? 0) > 0.2);
  if (loaded.length) {
    console.log(
      `warning: other processes used CPU during ${loaded.map((r) => `${r.label} (${fixed(Math.max(r.backgroundCores, r.slowdown?.backgroundCores ?? 0), 2)} cores)`).join(', ')}; ` +
        'their figures are skewed (late samples, slowdown noise). Re-run on a quiet machine or with --wait-idle.',
    );
  }
  for (const r of results) if (r.dump?.cliError) console.log(`note: ${r.label} CLI dump failed: ${r.dump.cliError}`);
  for (const r of results) if (r.dump?.peerMissing) console.log(`note: ${r.label} CPython dump baseline missing: ${r.dump.peerMissing}`);
  for (const r of results) {
    if (r.peers?.austin.missing) console.log(`note: ${r.label} austin baseline missing: ${r.peers.austin.missing}`);
    if (r.peers?.cpython.missing) console.log(`note: ${r.label} CPython profiler baseline missing: ${r.peers.cpython.missing}`);
    if (r.peers?.periscope.missing) console.log(`note: ${r.label} periscope record failed: ${r.peers.periscope.missing}`);
    if (r.callgrind?.missing) console.log(`note: ${r.label} callgrind missing: ${r.callgrind.missing}`);
  }
  const totalS = (nowMs() - started) / 1000;
  console.log('');
  console.log(`total ${totalS.toFixed(0)} s; missing interpreters: ${missing.length ? missing.join(', ') : 'none'}`);
  const timerJson = baselines?.map((b) => ({
    python: b.python,
    slackNs: b.slackNs,
    maxRateHz: b.maxRate,
    trials: b.trials.map((t) => ({
      rate: t.rate,
      late: round(t.lateFraction, 4),
      meanUs: round(t.meanUs, 1),
      p99Us: round(t.p99Us, 1),
      cpuPerWakeUs: round(t.cpuPerWakeUs, 1),
    })),
  }));
  console.log(`BENCH_JSON ${JSON.stringify(toJson(results, { ...meta, seconds: round(totalS, 1), timerBaseline: timerJson ?? null }))}`);
  process.exitCode = errors.length ? 1 : 0;
}

await main();
