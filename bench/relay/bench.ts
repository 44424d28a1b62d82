// The relay benchmarks as a library: runRelayBench() runs them against real
// relay processes on 127.0.0.1, relayTables() renders the figures and
// relayJson() gives the compact JSON. bench/relay/run.ts is the command line.
import { cpus, release } from 'node:os';
import { benchLatency, LATENCY_TARGET_P99_MS, type LatencyResult } from './latency.ts';
import { benchMemory, MEMORY_TARGET_BYTES, type MemoryResult } from './memory.ts';
import { benchCpu, CPU_TARGET_CORES, type CpuResult } from './cpu.ts';
import { fixed, mib, nofileLimits, nowMs, renderTable, round, roundDist, waitIdle } from './lib.ts';

export const RELAY_BENCHES = ['latency', 'memory', 'cpu'] as const;
export type RelayBenchName = (typeof RELAY_BENCHES)[number];

export interface RelayBenchOptions {
  quick: boolean;
  only?: readonly RelayBenchName[];
  /** Profile the relay after the CPU window (default true). */
  profile?: boolean;
  /** Before each benchmark, wait up to this many seconds for the machine to go quiet. */
  waitIdleS?: number;
  log?: (line: string) => void;
}

export interface RelayBenchResult {
  meta: Record<string, unknown>;
  latency: LatencyResult | null;
  memory: MemoryResult | null;
  cpu: CpuResult | null;
  errors: string[];
  seconds: number;
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message.split('\n').slice(0, 6).join('\n') : String(err);
}

export async function runRelayBench(options: RelayBenchOptions): Promise<RelayBenchResult> {
  const log = options.log ?? ((l: string) => console.log(`· ${l}`));
  const only = new Set(options.only ?? RELAY_BENCHES);
  const t0 = nowMs();
  const result: RelayBenchResult = {
    meta: {
      date: new Date().toISOString(),
      quick: options.quick,
      node: process.version,
      kernel: release(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? '?',
      nofile: nofileLimits(),
      benches: [...only],
      waitIdleS: options.waitIdleS ?? 0,
      busyBefore: {} as Record<string, number>,
    },
    latency: null,
    memory: null,
    cpu: null,
    errors: [],
    seconds: 0,
  };
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | null> => {
    if (options.waitIdleS) {
      const busy = await waitIdle(options.waitIdleS);
      (result.meta.busyBefore as Record<string, number>)[name] = round(busy, 2) ?? Number.NaN;
      log(`${name}: machine busy ${busy.toFixed(2)} cores before starting`);
    }
    const s0 = nowMs();
    try {
      const r = await fn();
      log(`${name} done in ${((nowMs() - s0) / 1000).toFixed(1)} s`);
      return r;
    } catch (err) {
      result.errors.push(`${name}: ${errText(err)}`);
      log(`${name} FAILED: ${errText(err)}`);
      return null;
    }
  };
  if (only.has('latency')) result.latency = await step('latency', () => benchLatency(options.quick, log));
  if (only.has('memory')) result.memory = await step('memory', () => benchMemory(options.quick, log));
  if (only.has('cpu')) result.cpu = await step('cpu', () => benchCpu(options.quick, log, { profile: options.profile }));
  for (const e of result.latency?.errors ?? []) result.errors.push(`latency: ${e}`);
  for (const e of result.memory?.errors ?? []) result.errors.push(`memory: ${e}`);
  for (const e of result.cpu?.errors ?? []) result.errors.push(`cpu: ${e}`);
  result.seconds = (nowMs() - t0) / 1000;
  return result;
}

function verdict(pass: boolean | null | undefined): string {
  return pass === null || pass === undefined ? '—' : pass ? 'PASS' : 'FAIL';
}

const ms = (v: number) => fixed(v, 1);
const kib = (b: number) => fixed(b / 1024, 1);

export function relayTables(r: RelayBenchResult): string {
  const out: string[] = [];
  if (r.latency) {
    out.push(
      renderTable(
        `R1. Sample-to-viewer latency through the relay, one 100 Hz record, one /ws/ui viewer (ms)`,
        ['chunking', 'cut every', 'samples/chunk', 'bytes/chunk', 'age p50', 'age p99', 'age max', `p99 < ${LATENCY_TARGET_P99_MS}`, 'relay p50', 'relay p99', 'relay max', 'chunks', 'ack p50', 'ack p99', 'loop p99', 'rq wait', 'bg cores'],
        r.latency.runs.map((x) => [
          x.label,
          ms(x.meanCutIntervalMs),
          fixed(x.samplesPerChunk, 1),
          fixed(x.chunkBytes, 0),
          ms(x.sampleAge.p50),
          ms(x.sampleAge.p99),
          ms(x.sampleAge.max),
          verdict(x.pass),
          fixed(x.relayAdded.p50, 2),
          ms(x.relayAdded.p99),
          ms(x.relayAdded.max),
          String(x.relayAdded.n),
          fixed(x.ackLag.p50, 2),
          ms(x.ackLag.p99),
          ms(x.relayLoopDelay?.p99 ?? Number.NaN),
          fixed(x.relayRunQueueWaitMsPerS, 1),
          fixed(x.backgroundCores, 2),
        ]),
        [
          'age = viewer receive − sample wall time (capture.startTimeUs + timeUs), every sample; it includes the wait for the drain and the cut on the agent.',
          'relay = agent ws.send → viewer ws message, per chunk (same process, monotonic clock): what the relay (and loopback) adds.',
          `the real agent drains every 100 ms and cuts at the first drain ≥ 250 ms after the last cut, so "cut every" is ~300 ms; "cut 250 ms, drain 50 ms" shows the nominal 250.`,
          'a sample waits up to one cut interval on the agent before it is sent, so age p99 ≈ 0.98 × cut interval + relay: ~300 ms is the floor for the real agent as it cuts today.',
          'loop p99 = the relay\'s event-loop delay (perf_hooks histogram set up through its inspector); rq wait = ms per s the relay\'s main thread was runnable but waited for a core (schedstat).',
          'bg cores = CPU used by other processes meanwhile; tails (p99, max) are only trustworthy when it and rq wait are near 0.',
        ],
      ),
    );
  }
  if (r.memory) {
    const m = r.memory;
    const rows: string[][] = [
      ['0 (baseline)', '—', mib(m.baseline.rssBytes), mib(m.baselineAfterGc.rssBytes), mib(m.baselineAfterGc.heapUsedBytes), mib(m.baselineAfterGc.externalBytes), '—', '—', '—', '—', '—', '—'],
      ...m.levels.map((l) => [
        String(l.agents),
        fixed(l.connectsPerSecond, 0),
        mib(l.rssBytes),
        mib(l.rssAfterGcBytes),
        mib(l.heapUsedBytes),
        mib(l.externalBytes),
        kib(l.perAgentRawBytes),
        kib(l.perAgentBytes),
        kib(l.marginalPerAgentBytes),
        kib(l.heapPerAgentBytes),
        String(l.fds),
        `${l.relayConnected}${l.failed ? ` (${l.failed} failed)` : ''}`,
      ]),
    ];
    const notes = [
      'RSS = VmRSS from /proc/RELAY_PID/status once settled; "after GC" = right after a full GC forced through the relay\'s inspector.',
      `KiB/agent = growth since the ${m.levels[0]?.agents ?? '?'}-agent level / agents added (raw VmRSS, and after GC); marginal = after-GC growth from the previous level (the first from the idle baseline, which still`,
      '  holds start-up garbage and allocator slack, so RSS moves ±25 MiB on its own there); heap KiB/agent = V8 heapUsed growth from the baseline / agents.',
    ];
    if (m.hold) {
      notes.push(
        `held ${m.levels.at(-1)?.agents ?? 0} idle agents for ${fixed(m.hold.seconds, 0)} s (heartbeats every 15 s both ways): relay ${fixed(m.hold.relayCores * 100, 1)}% of a core, RSS ${mib(m.hold.rssBytes)} MiB, ` +
          `${m.hold.stillOpen} still connected (relay says ${m.hold.relayConnected})${Object.keys(m.hold.closeCodes).length ? `, closed: ${JSON.stringify(m.hold.closeCodes)}` : ''}.`,
      );
    }
    const peak = Math.max(...m.levels.map((l) => l.hwmBytes), 0);
    notes.push(`peak RSS (VmHWM) ${mib(peak)} MiB; target: 10k idle agents < ${mib(MEMORY_TARGET_BYTES)} MiB → ${verdict(m.pass)}. Agents from ${m.generators} generator processes; open-files limit soft ${m.nofile.soft} / hard ${m.nofile.hard}. bg cores ${fixed(m.backgroundCores, 2)}.`);
    out.push(
      renderTable(
        'R2. Relay memory with idle agents (join token → hello → welcome → processes, then idle)',
        ['agents', 'connects/s', 'RSS MiB', 'after GC', 'heap MiB', 'external', 'KiB/agent', 'after GC', 'marginal', 'heap KiB/agent', 'fds', 'connected'],
        rows,
        notes,
      ),
    );
  }
  if (r.cpu) {
    const c = r.cpu;
    const ack = c.ackLag.reduce((a, b) => (b.p99 > a.p99 ? b : a), c.ackLag[0] ?? { p50: Number.NaN, p99: Number.NaN, max: Number.NaN, n: 0 });
    out.push(
      renderTable(
        `R3. Relay CPU with ${c.captures} concurrent 100 Hz captures (~30-frame stacks), ${fixed(c.windowSeconds, 0)} s window`,
        ['captures', 'samples/s', 'chunks/s', 'expected', 'KiB/s in', 'bytes/chunk', 'relay % core', `< ${CPU_TARGET_CORES} core`, 'relay RSS MiB', 'generators % core', 'ack p50', 'ack p99', 'viewer age p99', 'viewer relay p99', 'loop p99', 'rq wait', 'bg cores'],
        [
          [
            String(c.captures),
            fixed(c.samplesPerSecond, 0),
            fixed(c.chunksPerSecond, 0),
            fixed(c.expectedChunksPerSecond, 0),
            fixed(c.bytesInPerSecond / 1024, 0),
            fixed(c.meanChunkBytes, 0),
            fixed(c.relayCores * 100, 1),
            verdict(c.pass),
            mib(c.relayRssBytes),
            c.generatorCores.map((g) => fixed(g * 100, 1)).join(' + '),
            fixed(ack.p50, 2),
            ms(ack.p99),
            ms(c.viewerSampleAge.p99),
            ms(c.viewerCutAge.p99),
            ms(c.relayLoopDelay?.p99 ?? Number.NaN),
            fixed(c.relayRunQueueWaitMsPerS, 1),
            fixed(c.backgroundCores, 2),
          ],
        ],
        [
          'relay % core = Δ(utime+stime) of the relay process / wall time (all its threads); generators = the two load-generator processes.',
          'samples/s = samples the generators cut into chunks (target 100 Hz × captures); expected chunks/s = one per ~300 ms per capture (the real agent\'s cut).',
          'ack = agent chunk send → ack (relay validated, stored, fanned out and answered), worst generator; viewer: one /ws/ui viewer watching one capture.',
          'viewer relay = viewer receive − capture.durationUs of the chunk (set when the agent drained, just before it cut): the relay-added part under load.',
          `lost acks ${c.lostAcks}, relay errors ${c.relayErrors}, agents disconnected ${c.closed}; machine busy ${fixed(c.machineBusyCores, 2)} cores of ${r.meta.cpus}.`,
        ],
      ),
    );
    if (c.profile) {
      const p = c.profile;
      out.push(
        renderTable(
          `R3b. Where the relay's main thread spends its time (V8 CPU profile, ${fixed(p.seconds, 0)} s after the window; ${fixed(p.relayCores * 100, 1)}% of a core while profiled, GC ${fixed((p.gcMs / Math.max(1, p.totalMs)) * 100, 1)}% of busy)`,
          ['function', 'where', 'self ms', 'share', 'called from (project code)'],
          p.top.slice(0, 15).map((t) => [t.name, t.where || '(native)', fixed(t.selfMs, 1), `${fixed(t.share * 100, 1)}%`, t.callers.join(', ')]),
          [
            `by file: ${p.byFile.slice(0, 8).map((f) => `${f.file} ${fixed(f.share * 100, 1)}%`).join(', ')}`,
            'native frames: writev = socket writes of ws frames (acks, viewer frames), run/prepare = node:sqlite statements, writeBuffer = fs.writeSync of chunk records and single-buffer socket writes (pings).',
          ],
        ),
      );
    }
  }
  if (r.errors.length) out.push(['errors:', ...r.errors.map((e) => `  ${e}`)].join('\n'));
  return out.join('\n\n');
}

export function relayJson(r: RelayBenchResult): unknown {
  return {
    ...r.meta,
    seconds: round(r.seconds, 1),
    errors: r.errors,
    latency: r.latency && {
      targetP99Ms: LATENCY_TARGET_P99_MS,
      runs: r.latency.runs.map((x) => ({
        key: x.key,
        chunkIntervalMs: x.chunkIntervalMs,
        drainIntervalMs: x.drainIntervalMs,
        meanCutIntervalMs: round(x.meanCutIntervalMs, 1),
        seconds: round(x.seconds, 1),
        chunks: x.chunks,
        samples: x.samples,
        expectedSamples: x.expectedSamples,
        samplesPerChunk: round(x.samplesPerChunk, 1),
        chunkBytes: round(x.chunkBytes, 0),
        sampleAgeMs: roundDist(x.sampleAge),
        relayAddedMs: roundDist(x.relayAdded, 2),
        ackLagMs: roundDist(x.ackLag, 2),
        pass: x.pass,
        backgroundCores: round(x.backgroundCores, 2),
        relayLoopDelayMs: x.relayLoopDelay,
        relayRunQueueWaitMsPerS: round(x.relayRunQueueWaitMsPerS, 1),
      })),
      viewerResets: r.latency.viewerResets,
    },
    memory: r.memory && {
      targetBytes: MEMORY_TARGET_BYTES,
      baselineRssBytes: r.memory.baseline.rssBytes,
      baselineRssAfterGcBytes: r.memory.baselineAfterGc.rssBytes,
      levels: r.memory.levels.map((l) => ({
        agents: l.agents,
        relayConnected: l.relayConnected,
        failed: l.failed,
        connectsPerSecond: round(l.connectsPerSecond, 0),
        rssBytes: l.rssBytes,
        rssAfterGcBytes: l.rssAfterGcBytes,
        hwmBytes: l.hwmBytes,
        heapUsedBytes: l.heapUsedBytes,
        externalBytes: l.externalBytes,
        perAgentRawBytes: round(l.perAgentRawBytes, 0),
        perAgentBytes: round(l.perAgentBytes, 0),
        marginalPerAgentBytes: round(l.marginalPerAgentBytes, 0),
        heapPerAgentBytes: round(l.heapPerAgentBytes, 0),
        fds: l.fds,
      })),
      hold: r.memory.hold && { ...r.memory.hold, seconds: round(r.memory.hold.seconds, 1), relayCores: round(r.memory.hold.relayCores, 4) },
      pass: r.memory.pass,
      backgroundCores: round(r.memory.backgroundCores, 2),
    },
    cpu: r.cpu && {
      targetCores: CPU_TARGET_CORES,
      captures: r.cpu.captures,
      rateHz: r.cpu.rateHz,
      windowSeconds: round(r.cpu.windowSeconds, 1),
      relayCores: round(r.cpu.relayCores, 4),
      relayRssBytes: r.cpu.relayRssBytes,
      generatorCores: r.cpu.generatorCores.map((g) => round(g, 4)),
      runnerCores: round(r.cpu.runnerCores, 4),
      machineBusyCores: round(r.cpu.machineBusyCores, 2),
      backgroundCores: round(r.cpu.backgroundCores, 2),
      samplesPerSecond: round(r.cpu.samplesPerSecond, 0),
      chunksPerSecond: round(r.cpu.chunksPerSecond, 1),
      expectedChunksPerSecond: round(r.cpu.expectedChunksPerSecond, 1),
      bytesInPerSecond: round(r.cpu.bytesInPerSecond, 0),
      meanChunkBytes: round(r.cpu.meanChunkBytes, 0),
      ackLagMs: r.cpu.ackLag,
      viewerSampleAgeMs: roundDist(r.cpu.viewerSampleAge),
      viewerRelayAddedMs: roundDist(r.cpu.viewerCutAge),
      relayLoopDelayMs: r.cpu.relayLoopDelay,
      relayRunQueueWaitMsPerS: round(r.cpu.relayRunQueueWaitMsPerS, 1),
      lostAcks: r.cpu.lostAcks,
      relayErrors: r.cpu.relayErrors,
      disconnected: r.cpu.closed,
      pass: r.cpu.pass,
      profile: r.cpu.profile && {
        seconds: round(r.cpu.profile.seconds, 1),
        relayCores: round(r.cpu.profile.relayCores, 4),
        busyMs: round(r.cpu.profile.totalMs, 0),
        gcMs: round(r.cpu.profile.gcMs, 0),
        top: r.cpu.profile.top.slice(0, 12).map((t) => ({ fn: t.name, where: t.where, share: round(t.share, 4), callers: t.callers })),
      },
    },
  };
}
