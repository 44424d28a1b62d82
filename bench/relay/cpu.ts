// 3. Relay CPU with 200 concurrent 100 Hz captures.
//
// 200 light agents (two generator processes of 100) each stream a `record` at
// 100 Hz: ~30-frame stacks from a synthetic web app, drained every 100 ms and
// cut by the agent's own CaptureStream (250 ms nominal, ~300 ms in practice),
// so ~670 chunks/s reach the relay, each validated, stored, acknowledged and
// offered to viewers. One /ws/ui viewer watches one of the captures (sample
// ages under load). The relay's utime+stime over the window, from
// /proc/PID/stat, is the figure; the generators' CPU is reported beside it to
// show they were not the bottleneck. Afterwards the relay is profiled for a
// further window through its inspector (not during the measured window).
import { adminClient, createCapture, createSession, metrics } from '../../test/helpers/relay.ts';
import { LoadMeter, cpuSeconds, dist, memStatus, nowMs, runQueueWaitSeconds, sleep, startRelay, summarizeCpuProfile, type Dist, type ProfileSummary } from './lib.ts';
import { Swarm, Viewer, chunkAges } from './swarm-client.ts';
import { AGENT_CHUNK_INTERVAL_MS } from './agent-client.ts';

export const CPU_TARGET_CORES = 1;

export interface CpuResult {
  captures: number;
  rateHz: number;
  generators: number;
  windowSeconds: number;
  relayCores: number;
  relayRssBytes: number;
  generatorCores: number[];
  /** This process (the viewer, HTTP). */
  runnerCores: number;
  machineBusyCores: number;
  backgroundCores: number;
  chunksPerSecond: number;
  expectedChunksPerSecond: number;
  /** Samples cut into chunks by the generators (all of them, whatever the chunking). */
  samplesPerSecond: number;
  bytesInPerSecond: number;
  meanChunkBytes: number;
  /** Chunk send → ack, per generator (ms). */
  ackLag: { p50: number; p99: number; max: number; n: number }[];
  viewerSampleAge: Dist;
  /** Viewer receive − the chunk's capture.durationUs (≈ when the agent cut it). */
  viewerCutAge: Dist;
  /** The relay's event-loop delay over the window (ms). */
  relayLoopDelay: { p50: number; p99: number; max: number; n: number } | null;
  /** ms per second the relay's main thread was ready to run but waited for a core. */
  relayRunQueueWaitMsPerS: number;
  lostAcks: number;
  relayErrors: number;
  closed: number;
  pass: boolean;
  profile: (ProfileSummary & { seconds: number; relayCores: number }) | null;
  errors: string[];
}

export async function benchCpu(quick: boolean, log: (s: string) => void, options: { captures?: number; profile?: boolean } = {}): Promise<CpuResult> {
  const captures = options.captures ?? 200;
  const generators = 2;
  const warmupMs = quick ? 3000 : 6000;
  const windowMs = quick ? 10_000 : 30_000;
  const profileMs = quick ? 4000 : 10_000;
  const errors: string[] = [];
  // The inspector only reads (event-loop delay histogram) unless profiling is asked for.
  const relay = await startRelay({ inspect: true });
  const swarms: Swarm[] = [];
  let viewer: Viewer | undefined;
  try {
    const api = await adminClient(relay, { timeoutMs: 30_000 });
    const session = await createSession(api, 'bench cpu', { ttlHours: 2 });
    for (let g = 0; g < generators; g++) swarms.push(new Swarm(4096, `stream-${g}`));
    const per = Math.ceil(captures / generators);
    const connected = await Promise.all(
      swarms.map((s, g) =>
        s.request<{ ready: number; failed: number; agentIds: string[]; errors: Record<string, number> }>(
          { cmd: 'connect', wsUrl: relay.wsUrl, token: session.joinToken, count: Math.min(per, captures - g * per), concurrency: 20, hostPrefix: `stream-${g}`, pingIntervalMs: 15_000, chunkIntervalMs: AGENT_CHUNK_INTERVAL_MS, seed: g + 1, wantIds: true, timeoutMs: 60_000 },
          90_000,
        ),
      ),
    );
    const agentIds = connected.flatMap((c) => c.agentIds);
    for (const c of connected) for (const [e, n] of Object.entries(c.errors)) errors.push(`connecting: ${n} × ${e}`);
    log(`cpu: ${agentIds.length} agents connected; starting ${agentIds.length} captures at 100 Hz`);

    viewer = new Viewer(relay, api);
    await viewer.opened;
    const sampleAges: number[] = [];
    const cutAges: number[] = [];
    let measuring = false;
    viewer.onChunk = (c) => {
      if (!measuring) return;
      const a = chunkAges(c);
      for (const x of a.sampleAgesMs) sampleAges.push(x);
      cutAges.push(a.cutAgeMs);
    };
    const captureIds: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < agentIds.length) {
          const id = agentIds[next++]!;
          captureIds.push((await createCapture(api, id, { kind: 'record', pid: 4242, rate: 100, duration: 3600 })).id);
        }
      }),
    );
    if (captureIds.length) viewer.watch(captureIds[0]!);
    const deadline = nowMs() + 20_000;
    for (;;) {
      const st = await Promise.all(swarms.map((s) => s.request<{ streamsStarted: number }>({ cmd: 'status' }, 10_000)));
      if (st.reduce((n, s) => n + s.streamsStarted, 0) >= captureIds.length || nowMs() > deadline) break;
      await sleep(200);
    }
    log(`cpu: ${captureIds.length} captures streaming; warming up ${warmupMs / 1000} s, then measuring ${windowMs / 1000} s`);
    await sleep(warmupMs);

    await Promise.all(swarms.map((s) => s.request({ cmd: 'resetStats' }, 10_000)));
    const before = await Promise.all(swarms.map((s) => s.request<{ chunksSent: number; bytesSent: number; samplesCut: number }>({ cmd: 'status' }, 10_000)));
    const m0 = await metrics(relay);
    measuring = true;
    const load = new LoadMeter([relay.pid, ...swarms.map((s) => s.pid)]);
    if (relay.inspector) await relay.inspector.startLoopDelay();
    const w0 = runQueueWaitSeconds(relay.pid);
    const r0 = cpuSeconds(relay.pid);
    const g0 = swarms.map((s) => cpuSeconds(s.pid));
    const self0 = cpuSeconds(process.pid);
    const t0 = nowMs();
    await sleep(windowMs);
    const seconds = (nowMs() - t0) / 1000;
    const relayCores = (cpuSeconds(relay.pid) - r0) / seconds;
    const relayRunQueueWaitMsPerS = ((runQueueWaitSeconds(relay.pid) - w0) * 1000) / seconds;
    const relayLoopDelay = relay.inspector ? await relay.inspector.stopLoopDelay().catch(() => null) : null;
    const generatorCores = swarms.map((s, i) => (cpuSeconds(s.pid) - g0[i]!) / seconds);
    const runnerCores = (cpuSeconds(process.pid) - self0) / seconds;
    const machine = load.read();
    measuring = false;
    const m1 = await metrics(relay);
    const relayRssBytes = memStatus(relay.pid).rssBytes;
    const after = await Promise.all(
      swarms.map((s) => s.request<{ chunksSent: number; bytesSent: number; samplesCut: number; ackLag: { p50: number; p99: number; max: number; n: number }; relayErrors: number; open: number; agents: number; errors: Record<string, number> }>({ cmd: 'status' }, 10_000)),
    );
    const chunksIn = (m1.periscope_chunks_in_total ?? 0) - (m0.periscope_chunks_in_total ?? 0);
    const bytesIn = (m1.periscope_bytes_in_total ?? 0) - (m0.periscope_bytes_in_total ?? 0);
    const chunksSent = after.reduce((n, a, i) => n + a.chunksSent - before[i]!.chunksSent, 0);
    const bytesSent = after.reduce((n, a, i) => n + a.bytesSent - before[i]!.bytesSent, 0);
    const samplesCut = after.reduce((n, a, i) => n + a.samplesCut - before[i]!.samplesCut, 0);
    for (const a of after) for (const [e, n] of Object.entries(a.errors)) errors.push(`generator: ${n} × ${e}`);
    log(`cpu: relay ${(relayCores * 100).toFixed(0)}% of a core over ${seconds.toFixed(1)} s; ${(chunksIn / seconds).toFixed(0)} chunks/s`);

    let profile: CpuResult['profile'] = null;
    if (options.profile !== false) {
      log(`cpu: profiling the relay for ${profileMs / 1000} s more`);
      await relay.inspector!.startProfiling(500);
      const p0 = cpuSeconds(relay.pid);
      const pt0 = nowMs();
      await sleep(profileMs);
      const prof = await relay.inspector!.stopProfiling();
      const ps = (nowMs() - pt0) / 1000;
      profile = { ...summarizeCpuProfile(prof), seconds: ps, relayCores: (cpuSeconds(relay.pid) - p0) / ps };
    }

    const stopped = await Promise.all(swarms.map((s) => s.request<{ unacked: number }>({ cmd: 'stopStreams', timeoutMs: 10_000 }, 20_000)));
    const lostAcks = stopped.reduce((n, s) => n + s.unacked, 0);
    if (lostAcks) errors.push(`${lostAcks} chunks were never acknowledged`);
    if (viewer.resets) errors.push(`the viewer was reset ${viewer.resets} times (fell behind)`);
    const closed = after.reduce((n, a) => n + (a.agents - a.open), 0);
    if (closed) errors.push(`${closed} agents were disconnected during the run`);
    const expectedChunksPerSecond = captureIds.length * (1000 / (Math.ceil(AGENT_CHUNK_INTERVAL_MS / 100) * 100));
    return {
      captures: captureIds.length,
      rateHz: 100,
      generators,
      windowSeconds: seconds,
      relayCores,
      relayRssBytes,
      generatorCores,
      runnerCores,
      machineBusyCores: machine.busyCores,
      backgroundCores: machine.backgroundCores,
      chunksPerSecond: chunksIn / seconds,
      expectedChunksPerSecond,
      samplesPerSecond: samplesCut / seconds,
      bytesInPerSecond: bytesIn / seconds,
      meanChunkBytes: bytesSent / Math.max(1, chunksSent),
      ackLag: after.map((a) => a.ackLag),
      viewerSampleAge: dist(sampleAges),
      viewerCutAge: dist(cutAges),
      relayLoopDelay,
      relayRunQueueWaitMsPerS,
      lostAcks,
      relayErrors: after.reduce((n, a) => n + a.relayErrors, 0),
      closed,
      pass: relayCores < CPU_TARGET_CORES,
      profile,
      errors: [...new Set(errors)],
    };
  } finally {
    viewer?.close();
    await Promise.all(swarms.map((s) => s.exit()));
    await relay.stop();
  }
}
