// `node scripts/with-node.mjs bench/relay/cluster.ts [--quick]`
// (also `node scripts/with-node.mjs bench/relay/run.ts --cluster [--quick]`)
//
// The relay as a cluster, every figure against real processes on 127.0.0.1:
// a throwaway PostgreSQL (test/helpers/postgres.ts), a Redis
// (test/helpers/redis.ts) and three relays (relay/main.ts with
// PERISCOPE_DATABASE_URL and PERISCOPE_REDIS_URL), called A, B and C. No load
// balancer: each fake agent and viewer dials the relay chosen for it, so the
// path a chunk takes is known.
//   C1. chunk send → viewer latency of a 100 Hz record, agent on A and viewer
//       on B (through Redis), beside agent and viewer both on A, at the same time
//   C2. RSS of relay A holding 10k idle agents (1k with --quick), beside an
//       embedded relay (SQLite, alone) holding as many
//   C3. CPU per 100 Hz capture of each relay, PostgreSQL and Redis: 20 captures
//       (5 with --quick) from agents spread over the relays, each watched from
//       another relay; beside the same load on an embedded relay
// The embedded comparisons run after the cluster is stopped. Prints tables,
// then one line `RELAY_CLUSTER_BENCH_JSON {...}` with every figure.
// Exit status: 0 when everything ran (targets missed are reported, not fatal),
// 1 when a part failed to run, 3 when the time limit cut the run short.
import { cpus, loadavg } from 'node:os';
import { adminClient, createCapture, createSession, eventually, metrics, type Client } from '../../test/helpers/relay.ts';
import { startPostgres, type PostgresServer } from '../../test/helpers/postgres.ts';
import { startRedis, type RedisServer } from '../../test/helpers/redis.ts';
import {
  LoadMeter,
  cpuSeconds,
  dist,
  fixed,
  memStatus,
  mib,
  nofileLimits,
  nowMs,
  processTreeCpuSeconds,
  renderTable,
  round,
  roundDist,
  runQueueWaitSeconds,
  settledRss,
  sleep,
  startRelay,
  type Dist,
  type RelayProcess,
} from './lib.ts';
import { AGENT_CHUNK_INTERVAL_MS, AGENT_DRAIN_INTERVAL_MS, LightAgent } from './agent-client.ts';
import { Swarm, Viewer, chunkAges } from './swarm-client.ts';
import { LATENCY_TARGET_P99_MS } from './latency.ts';
import { MEMORY_TARGET_BYTES } from './memory.ts';

const TOP_AGENTS = 10_000;
const NAMES = ['A', 'B', 'C'];

// ---- the cluster -----------------------------------------------------------------

interface Cluster {
  pg: PostgresServer;
  redis: RedisServer;
  relays: RelayProcess[];
}

/** Every relay may hold all the idle agents (C2 picks A); one session takes them all, as in memory.ts. */
function relayNofile(): number {
  return Math.min(nofileLimits().hard, TOP_AGENTS + 4096);
}

const capEnv = { PERISCOPE_MAX_AGENTS_PER_SESSION: String(TOP_AGENTS) };

async function startCluster(log: (s: string) => void): Promise<Cluster> {
  const pg = await startPostgres();
  const redis = await startRedis();
  const env = { ...capEnv, PERISCOPE_DATABASE_URL: pg.url, PERISCOPE_REDIS_URL: redis.url };
  const relays: RelayProcess[] = [];
  // One at a time: the first creates the schema and the admin, the others find them (as test/cluster does).
  // Inspectors let C2 force a GC; nothing else runs through them.
  for (let i = 0; i < 3; i++) relays.push(await startRelay({ env, inspect: true, nofile: relayNofile() }));
  log(`cluster: PostgreSQL pid ${pg.pid}, Redis pid ${redis.pid}, relays ${relays.map((r, i) => `${NAMES[i]} pid ${r.pid}`).join(', ')}`);
  return { pg, redis, relays };
}

async function stopCluster(c: Cluster): Promise<void> {
  await Promise.all(c.relays.map((r) => r.stop()));
  await c.redis.stop();
  await c.pg.dispose();
}

/** POST a capture on `api`'s relay, retried while that relay has not yet heard (through Redis) that the agent is online elsewhere. */
function startRecord(api: Client, agentId: string, seconds: number): Promise<string> {
  return eventually(
    async () => ((await createCapture(api, agentId, { kind: 'record', pid: 4242, rate: 100, duration: seconds })).id as string),
    15_000,
    `a capture of agent ${agentId}`,
  );
}

// ---- C1: latency ---------------------------------------------------------------------

interface LatencyPath {
  label: string;
  chunks: number;
  /** Agent ws.send → viewer 'message', per chunk (same process, same monotonic clock). */
  sendToViewer: Dist;
  /** Viewer receive − sample wall time, per sample (includes the wait for the cut on the agent). */
  sampleAge: Dist;
  pass: boolean;
}

interface LatencyResult {
  seconds: number;
  cutMs: number;
  paths: LatencyPath[];
  backgroundCores: number;
  /** ms per second the main thread of relay A, of relay B and of this process (agents, viewers) was ready to run but had no core. */
  runQueueWaitMsPerS: { relayA: number; relayB: number; bench: number };
  errors: string[];
}

// Cut every 100 ms (draining like the real agent): three times the chunks of the real agent's ~300 ms cut, so p99 rests on more of them.
const LATENCY_CUT_MS = 100;

async function benchLatency(c: Cluster, quick: boolean, log: (s: string) => void): Promise<LatencyResult> {
  const seconds = quick ? 10 : 30;
  const warmupMs = 1000;
  const [a, b] = c.relays as [RelayProcess, RelayProcess];
  const apiA = await adminClient(a, { timeoutMs: 30_000 });
  const apiB = await adminClient(b, { timeoutMs: 30_000 });
  const session = await createSession(apiA, 'bench cluster latency', { ttlHours: 2 });
  const routes = [
    { label: 'agent on A → viewer on B (via Redis)', viewerRelay: b, api: apiB },
    { label: 'agent and viewer on A', viewerRelay: a, api: apiA },
  ];
  const errors: string[] = [];
  // Both paths at once, so they share whatever else the machine is doing.
  const runs = await Promise.all(
    routes.map(async (route, i) => {
      const sentAt = new Map<number, number>();
      const agent = new LightAgent({
        wsUrl: a.wsUrl,
        token: session.joinToken,
        host: `bench-latency-${i}`,
        chunkIntervalMs: LATENCY_CUT_MS,
        drainIntervalMs: AGENT_DRAIN_INTERVAL_MS,
        onChunkSent: (x) => sentAt.set(x.seq, x.at),
      });
      await agent.connect(10_000);
      const viewer = new Viewer(route.viewerRelay, route.api);
      await viewer.opened;
      return { route, agent, viewer, sentAt, sendToViewer: [] as number[], ages: [] as number[] };
    }),
  );
  const load = new LoadMeter([...c.relays.map((r) => r.pid), c.redis.pid, c.pg.pid ?? 0], processTreeCpuSeconds);
  const waits = () => [a.pid, b.pid, process.pid].map(runQueueWaitSeconds);
  const wait0 = waits();
  try {
    await Promise.all(
      runs.map(async (r) => {
        const captureId = await startRecord(r.route.api, r.agent.agentId, seconds + 30);
        const startedAt = nowMs();
        r.viewer.onChunk = (x) => {
          const sent = r.sentAt.get(x.seq);
          r.sentAt.delete(x.seq);
          // The first chunks reach the viewer from the store while its watch catches up (resync), not live.
          if (x.at - startedAt < warmupMs || x.seq < 1) return;
          if (sent !== undefined) r.sendToViewer.push(x.at - sent);
          r.ages.push(...chunkAges(x).sampleAgesMs);
        };
        r.viewer.watch(captureId);
      }),
    );
    log(`latency: two records streaming for ${seconds} s`);
    await sleep(seconds * 1000 + warmupMs);
    const { seconds: measured, backgroundCores } = load.read();
    const [relayA, relayB, bench] = waits().map((w, i) => ((w - wait0[i]!) * 1000) / measured) as [number, number, number];
    const paths = runs.map((r): LatencyPath => {
      const sendToViewer = dist(r.sendToViewer);
      return { label: r.route.label, chunks: sendToViewer.n, sendToViewer, sampleAge: dist(r.ages), pass: sendToViewer.p99 < LATENCY_TARGET_P99_MS };
    });
    for (const r of runs) {
      if (r.agent.relayErrors) errors.push(`${r.route.label}: relay sent ${r.agent.relayErrors} errors: ${r.agent.errors.slice(0, 3).join('; ')}`);
      const viewerErrors = [...r.viewer.parseErrors, ...r.viewer.errors];
      if (viewerErrors.length) errors.push(`${r.route.label}: viewer: ${viewerErrors.slice(0, 3).join('; ')}`);
    }
    return { seconds, cutMs: LATENCY_CUT_MS, paths, backgroundCores, runQueueWaitMsPerS: { relayA, relayB, bench }, errors };
  } finally {
    for (const r of runs) {
      r.agent.stopStreams();
      r.agent.close();
      r.viewer.close();
    }
  }
}

// ---- C2: idle agents -------------------------------------------------------------------

interface IdleResult {
  label: string;
  agents: number;
  /** periscope_agents_connected of the relay once they are all in. */
  relayConnected: number;
  failed: number;
  connectsPerSecond: number;
  /** VmRSS before, right after full GCs (stable). */
  rssBeforeBytes: number;
  /** VmRSS with the agents, settled (garbage included, as in production). */
  rssAfterBytes: number;
  /** The same right after full GCs. */
  rssAfterGcBytes: number;
  perAgentBytes: number;
  perAgentAfterGcBytes: number;
  /** RSS growth of the cluster's other relays meanwhile (they hear of every agent through Redis). */
  othersGrowthBytes: number[];
  pass: boolean | null;
  backgroundCores: number;
  errors: string[];
}

async function benchIdle(label: string, relay: RelayProcess, others: RelayProcess[], want: number, quick: boolean, log: (s: string) => void): Promise<IdleResult> {
  const errors: string[] = [];
  const { hard } = nofileLimits();
  const generators = 2;
  // As many as the open-files limits allow (the relay's, and each generator's half).
  const count = Math.min(want, relayNofile() - 512, generators * (hard - 512));
  if (count < want) errors.push(`open-files limit (hard ${hard}) too low for ${want} connections; measured ${count}`);
  const api = await adminClient(relay, { timeoutMs: 30_000 });
  const session = await createSession(api, 'bench cluster idle', { ttlHours: 2 });
  // The baseline after full GCs, once one more leaves RSS where it was: a relay keeps ~150 MiB of start-up
  // garbage (Node's TypeScript stripper among it) until V8 lets go of it, which would make any raw growth negative.
  let before = await relay.inspector!.rssAfterGc(relay.pid);
  for (const stableBy = nowMs() + 10_000; nowMs() < stableBy; ) {
    const again = await relay.inspector!.rssAfterGc(relay.pid);
    const stable = Math.abs(again.rssBytes - before.rssBytes) < 1024 * 1024;
    before = again;
    if (stable) break;
    await sleep(1000);
  }
  const othersBefore = others.map((r) => memStatus(r.pid).rssBytes);
  const swarms = Array.from({ length: generators }, (_, g) => new Swarm(Math.min(hard, Math.ceil(count / generators) + 1024), `idle-${g}`));
  try {
    const load = new LoadMeter([relay.pid, ...others.map((r) => r.pid), ...swarms.map((s) => s.pid)]);
    const t0 = nowMs();
    const replies = await Promise.all(
      swarms.map((s, g) =>
        s.request<{ ready: number; failed: number; errors: Record<string, number> }>(
          {
            cmd: 'connect',
            wsUrl: relay.wsUrl,
            token: session.joinToken,
            count: Math.floor(count / generators) + (g < count % generators ? 1 : 0),
            concurrency: 64,
            hostPrefix: `idle-${g}`,
            // Like `periscope connect`; the relay pings every 15 s too.
            pingIntervalMs: 15_000,
            timeoutMs: 240_000,
          },
          270_000,
        ),
      ),
    );
    const seconds = (nowMs() - t0) / 1000;
    const ready = replies.reduce((n, r) => n + r.ready, 0);
    for (const r of replies) for (const [e, n] of Object.entries(r.errors)) errors.push(`connecting: ${n} × ${e}`);
    const after = await settledRss(relay.pid, quick ? 3000 : 8000);
    const afterGc = await relay.inspector!.rssAfterGc(relay.pid);
    const relayConnected = (await metrics(relay)).periscope_agents_connected ?? Number.NaN;
    log(`idle: ${label}: ${ready} agents in ${seconds.toFixed(1)} s; RSS ${mib(before.rssBytes)} → ${mib(after.rssBytes)} MiB`);
    return {
      label,
      agents: ready,
      relayConnected,
      failed: replies.reduce((n, r) => n + r.failed, 0),
      connectsPerSecond: ready / seconds,
      rssBeforeBytes: before.rssBytes,
      rssAfterBytes: after.rssBytes,
      rssAfterGcBytes: afterGc.rssBytes,
      perAgentBytes: (after.rssBytes - before.rssBytes) / ready,
      perAgentAfterGcBytes: (afterGc.rssBytes - before.rssBytes) / ready,
      othersGrowthBytes: others.map((r, i) => memStatus(r.pid).rssBytes - othersBefore[i]!),
      pass: ready >= TOP_AGENTS ? Math.max(after.rssBytes, after.hwmBytes) < MEMORY_TARGET_BYTES : null,
      backgroundCores: load.read().backgroundCores,
      errors: [...new Set(errors)],
    };
  } finally {
    // Agents go before the relay stops, so its shutdown does not write thousands of presence rows against its grace period.
    await Promise.all(swarms.map((s) => s.exit()));
    await sleep(2000);
  }
}

// ---- C3: CPU per capture ------------------------------------------------------------------

interface CpuRow {
  name: string;
  /** CPU seconds per second (cores) over the window. */
  cores: number;
}

interface CpuResult {
  label: string;
  captures: number;
  windowSeconds: number;
  /** The relays, then the engines (PostgreSQL with its backends, Redis). */
  rows: CpuRow[];
  totalCores: number;
  chunksPerSecond: number;
  expectedChunksPerSecond: number;
  /** Chunks the viewers received per second (every capture has one viewer). */
  viewerChunksPerSecond: number;
  /** Viewer receive − the chunk's capture.durationUs (≈ when the agent cut it), wall clock. */
  viewerCutAge: Dist;
  generatorCores: number;
  backgroundCores: number;
  errors: string[];
}

async function benchCpu(
  label: string,
  relays: RelayProcess[],
  engines: { name: string; pid: number }[],
  captures: number,
  quick: boolean,
  log: (s: string) => void,
): Promise<CpuResult> {
  const warmupMs = quick ? 3000 : 6000;
  const windowMs = quick ? 10_000 : 30_000;
  const errors: string[] = [];
  const n = relays.length;
  const apis = await Promise.all(relays.map((r) => adminClient(r, { timeoutMs: 30_000 })));
  const session = await createSession(apis[0]!, `bench ${label} cpu`, { ttlHours: 2 });
  // One generator process for every agent: its CPU is its own, not this process's or a relay's.
  const swarm = new Swarm(4096, 'cpu');
  const viewers: Viewer[] = [];
  try {
    // Agent i on relay i mod n; its capture started and watched from the next relay (the same one when alone).
    const agents: { relay: number; id: string }[] = [];
    for (let r = 0; r < n; r++) {
      const count = Math.floor(captures / n) + (r < captures % n ? 1 : 0);
      const reply = await swarm.request<{ agentIds: string[]; errors: Record<string, number> }>(
        { cmd: 'connect', wsUrl: relays[r]!.wsUrl, token: session.joinToken, count, concurrency: 10, hostPrefix: `cpu-${r}`, pingIntervalMs: 15_000, chunkIntervalMs: AGENT_CHUNK_INTERVAL_MS, seed: r + 1, wantIds: true, timeoutMs: 60_000 },
        90_000,
      );
      for (const [e, k] of Object.entries(reply.errors)) errors.push(`connecting: ${k} × ${e}`);
      for (const id of reply.agentIds) agents.push({ relay: r, id });
    }
    let measuring = false;
    let viewerChunks = 0;
    const cutAges: number[] = [];
    for (const agent of agents) {
      const v = (agent.relay + 1) % n;
      const captureId = await startRecord(apis[v]!, agent.id, 3600);
      const viewer = new Viewer(relays[v]!, apis[v]!);
      await viewer.opened;
      viewer.onChunk = (c) => {
        if (!measuring) return;
        viewerChunks++;
        cutAges.push(chunkAges(c).cutAgeMs);
      };
      viewer.watch(captureId);
      viewers.push(viewer);
    }
    await eventually(async () => (await swarm.request<{ streamsStarted: number }>({ cmd: 'status' }, 10_000)).streamsStarted >= agents.length, 20_000, 'every stream to start');
    log(`cpu: ${label}: ${agents.length} captures streaming; warming up ${warmupMs / 1000} s, then measuring ${windowMs / 1000} s`);
    await sleep(warmupMs);

    const chunksIn = async () => (await Promise.all(relays.map((r) => metrics(r)))).reduce((s, m) => s + (m.periscope_chunks_in_total ?? 0), 0);
    const readAll = () => [...relays.map((r) => cpuSeconds(r.pid)), ...engines.map((e) => processTreeCpuSeconds(e.pid))];
    const chunks0 = await chunksIn();
    const load = new LoadMeter([...relays.map((r) => r.pid), ...engines.map((e) => e.pid), swarm.pid], processTreeCpuSeconds);
    const gen0 = cpuSeconds(swarm.pid);
    const cpu0 = readAll();
    const t0 = nowMs();
    measuring = true;
    await sleep(windowMs);
    measuring = false;
    const seconds = (nowMs() - t0) / 1000;
    const cpu1 = readAll();
    const generatorCores = (cpuSeconds(swarm.pid) - gen0) / seconds;
    const backgroundCores = load.read().backgroundCores;
    const chunksPerSecond = ((await chunksIn()) - chunks0) / seconds;
    const names = [...relays.map((_, i) => (n === 1 ? 'relay' : `relay ${NAMES[i]}`)), ...engines.map((e) => e.name)];
    const rows = names.map((name, i) => ({ name, cores: (cpu1[i]! - cpu0[i]!) / seconds }));
    log(`cpu: ${label}: ${rows.map((r) => `${r.name} ${fixed(r.cores * 100, 1)}%`).join(', ')} of a core`);

    const status = await swarm.request<{ relayErrors: number; agents: number; open: number; errors: Record<string, number> }>({ cmd: 'status' }, 10_000);
    for (const [e, k] of Object.entries(status.errors)) errors.push(`generator: ${k} × ${e}`);
    if (status.open < status.agents) errors.push(`${status.agents - status.open} agents were disconnected during the run`);
    const stopped = await swarm.request<{ unacked: number }>({ cmd: 'stopStreams', timeoutMs: 10_000 }, 20_000);
    if (stopped.unacked) errors.push(`${stopped.unacked} chunks were never acknowledged`);
    const resets = viewers.reduce((k, v) => k + v.resets, 0);
    if (resets) errors.push(`viewers were reset ${resets} times (fell behind)`);
    return {
      label,
      captures: agents.length,
      windowSeconds: seconds,
      rows,
      totalCores: rows.reduce((s, r) => s + r.cores, 0),
      chunksPerSecond,
      // The real agent drains every 100 ms and cuts at the first drain ≥ 250 ms after the last: a chunk every ~300 ms.
      expectedChunksPerSecond: agents.length * (1000 / (Math.ceil(AGENT_CHUNK_INTERVAL_MS / AGENT_DRAIN_INTERVAL_MS) * AGENT_DRAIN_INTERVAL_MS)),
      viewerChunksPerSecond: viewerChunks / seconds,
      viewerCutAge: dist(cutAges),
      generatorCores,
      backgroundCores,
      errors: [...new Set(errors)],
    };
  } finally {
    for (const v of viewers) v.close();
    await swarm.exit();
  }
}

// ---- output ------------------------------------------------------------------------------

interface ClusterBenchResult {
  meta: Record<string, unknown>;
  latency: LatencyResult | null;
  idle: IdleResult[];
  cpu: CpuResult[];
  errors: string[];
  seconds: number;
}

function verdict(pass: boolean | null | undefined): string {
  return pass === null || pass === undefined ? '—' : pass ? 'PASS' : 'FAIL';
}

const ms = (v: number) => fixed(v, 1);
const kib = (b: number) => fixed(b / 1024, 1);
const loads = () => loadavg().map((l) => l.toFixed(2)).join(' ');

function tables(r: ClusterBenchResult): string {
  const out: string[] = [];
  const lat = r.latency;
  if (lat) {
    const [cross, same] = lat.paths;
    out.push(
      renderTable(
        `C1. Chunk send → viewer latency, one 100 Hz record per path (cut every ${lat.cutMs} ms), both paths at once for ${lat.seconds} s (ms)`,
        ['path', 'chunks', 'p50', 'p90', 'p99', 'max', `p99 < ${LATENCY_TARGET_P99_MS}`, 'sample age p50', 'sample age p99'],
        lat.paths.map((p) => [p.label, String(p.chunks), fixed(p.sendToViewer.p50, 2), ms(p.sendToViewer.p90), ms(p.sendToViewer.p99), ms(p.sendToViewer.max), verdict(p.pass), ms(p.sampleAge.p50), ms(p.sampleAge.p99)]),
        [
          "p50…max = the agent's ws.send of a capture_chunk → the viewer's ws 'message' (agent and viewers live in this process: one monotonic clock).",
          '  Across relays it includes A storing the chunk (PostgreSQL), publishing it on Redis and B forwarding it to the viewer.',
          `sample age = viewer receive − the sample's wall time: adds the wait on the agent for the cut (≤ ${lat.cutMs} ms here; the real agent cuts every ~300 ms).`,
          cross && same
            ? `cross-relay − same relay: p50 ${fixed(cross.sendToViewer.p50 - same.sendToViewer.p50, 2)} ms, p99 ${ms(cross.sendToViewer.p99 - same.sendToViewer.p99)} ms.`
            : '',
          `bg cores ${fixed(lat.backgroundCores, 2)} (other processes meanwhile); run-queue wait (ms per s a main thread was ready but had no core): relay A ${fixed(lat.runQueueWaitMsPerS.relayA, 1)},`,
          `  relay B ${fixed(lat.runQueueWaitMsPerS.relayB, 1)}, this process (agents, viewers) ${fixed(lat.runQueueWaitMsPerS.bench, 1)}: tails are only the relays' own when these are near 0.`,
        ].filter(Boolean),
      ),
    );
  }
  if (r.idle.length) {
    const [cl, emb] = r.idle;
    const notes = [
      "RSS = VmRSS from /proc/PID/status. before = right after full GCs forced through the relay's inspector (start-up garbage gone); after = settled with the agents",
      '  connected (their garbage included, as in production); after GC = the same after full GCs. KiB/agent = growth from before / agents connected.',
      `other relays +MiB = RSS growth of the cluster's other relays meanwhile (they learn of each agent through Redis). Target: ${TOP_AGENTS / 1000}k idle agents < ${mib(MEMORY_TARGET_BYTES)} MiB (VmRSS and VmHWM).`,
    ];
    if (cl && emb) notes.push(`cluster relay / embedded relay per agent: ${fixed(cl.perAgentBytes / emb.perAgentBytes, 2)}× raw, ${fixed(cl.perAgentAfterGcBytes / emb.perAgentAfterGcBytes, 2)}× after GC.`);
    notes.push(`bg cores ${r.idle.map((i) => fixed(i.backgroundCores, 2)).join(' / ')}.`);
    out.push(
      renderTable(
        'C2. Relay memory with idle agents (join token → hello → welcome → processes, then idle), all on one relay',
        ['relay', 'agents', 'connected', 'connects/s', 'RSS before MiB', 'after', 'KiB/agent', 'after GC', 'KiB/agent', 'other relays +MiB', `${TOP_AGENTS / 1000}k < 1 GiB`],
        r.idle.map((i) => [
          i.label,
          `${i.agents}${i.failed ? ` (${i.failed} failed)` : ''}`,
          String(i.relayConnected),
          fixed(i.connectsPerSecond, 0),
          mib(i.rssBeforeBytes),
          mib(i.rssAfterBytes),
          kib(i.perAgentBytes),
          mib(i.rssAfterGcBytes),
          kib(i.perAgentAfterGcBytes),
          i.othersGrowthBytes.length ? i.othersGrowthBytes.map((b) => mib(b)).join(' + ') : '—',
          verdict(i.pass),
        ]),
        notes,
      ),
    );
  }
  if (r.cpu.length) {
    const rows: string[][] = [];
    for (const c of r.cpu) {
      for (const row of c.rows) rows.push([`${c.label}: ${row.name}`, fixed(row.cores * 100, 1), fixed(row.cores / c.captures, 4)]);
      if (c.rows.length > 1) rows.push([`${c.label}: total`, fixed(c.totalCores * 100, 1), fixed(c.totalCores / c.captures, 4)]);
    }
    const notes = [
      'CPU s/s per capture = Δ(utime+stime) over the window / seconds / captures; PostgreSQL = the postmaster, its backends and workers (reaped ones included).',
      ...r.cpu.map(
        (c) =>
          `${c.label}: ${c.captures} captures, ${fixed(c.windowSeconds, 0)} s; chunks in ${fixed(c.chunksPerSecond, 1)}/s (expected ~${fixed(c.expectedChunksPerSecond, 1)}), to viewers ${fixed(c.viewerChunksPerSecond, 1)}/s, ` +
          `viewer cut age p50 ${ms(c.viewerCutAge.p50)} / p99 ${ms(c.viewerCutAge.p99)} ms; generator ${fixed(c.generatorCores * 100, 1)}% of a core; bg cores ${fixed(c.backgroundCores, 2)}.`,
      ),
    ];
    const [cl, emb] = r.cpu;
    if (cl && emb && cl.rows.length > 1) {
      const busiest = Math.max(...cl.rows.filter((x) => x.name.startsWith('relay')).map((x) => x.cores)) / cl.captures;
      const embedded = emb.totalCores / emb.captures;
      notes.push(`per capture, cluster total / embedded relay: ${fixed(cl.totalCores / cl.captures / embedded, 2)}×; busiest cluster relay / embedded relay: ${fixed(busiest / embedded, 2)}×.`);
    }
    out.push(renderTable('C3. CPU per 100 Hz capture (~30-frame stacks, the real agent\'s chunking), agents spread over the relays, each capture watched from another relay', ['process', '% of a core', 'CPU s/s per capture'], rows, notes));
  }
  out.push(`load average at start ${String(r.meta.loadStart)}, at end ${String(r.meta.loadEnd)} (${String(r.meta.cpus)} cores)`);
  if (r.errors.length) out.push(['errors:', ...r.errors.map((e) => `  ${e}`)].join('\n'));
  return out.join('\n\n');
}

function json(r: ClusterBenchResult): unknown {
  return {
    ...r.meta,
    seconds: round(r.seconds, 1),
    errors: r.errors,
    latency: r.latency && {
      targetP99Ms: LATENCY_TARGET_P99_MS,
      seconds: r.latency.seconds,
      cutMs: r.latency.cutMs,
      backgroundCores: round(r.latency.backgroundCores, 2),
      runQueueWaitMsPerS: Object.fromEntries(Object.entries(r.latency.runQueueWaitMsPerS).map(([k, v]) => [k, round(v, 1)])),
      paths: r.latency.paths.map((p) => ({ path: p.label, sendToViewerMs: roundDist(p.sendToViewer, 2), sampleAgeMs: roundDist(p.sampleAge), pass: p.pass })),
    },
    idle: r.idle.map((i) => ({ ...i, perAgentBytes: round(i.perAgentBytes, 0), perAgentAfterGcBytes: round(i.perAgentAfterGcBytes, 0), connectsPerSecond: round(i.connectsPerSecond, 0), backgroundCores: round(i.backgroundCores, 2) })),
    cpu: r.cpu.map((c) => ({
      ...c,
      rows: c.rows.map((x) => ({ name: x.name, cores: round(x.cores, 4), perCapture: round(x.cores / c.captures, 5) })),
      totalCores: round(c.totalCores, 4),
      windowSeconds: round(c.windowSeconds, 1),
      chunksPerSecond: round(c.chunksPerSecond, 1),
      viewerChunksPerSecond: round(c.viewerChunksPerSecond, 1),
      viewerCutAge: roundDist(c.viewerCutAge),
      generatorCores: round(c.generatorCores, 4),
      backgroundCores: round(c.backgroundCores, 2),
    })),
  };
}

// ---- the command line ----------------------------------------------------------------------

function errText(err: unknown): string {
  return err instanceof Error ? err.message.split('\n').slice(0, 6).join('\n') : String(err);
}

/** Runs the cluster bench with these arguments (--quick); its exit status. */
export async function clusterMain(args: string[]): Promise<number> {
  let quick = false;
  for (const a of args) {
    if (a === '--quick') quick = true;
    else if (a === '--help' || a === '-h') {
      console.log('usage: node scripts/with-node.mjs bench/relay/cluster.ts [--quick]\n  --quick  1k idle agents, 5 captures, shorter windows');
      return 0;
    } else {
      console.error(`relay cluster bench: unknown argument ${a} (try --help)`);
      return 2;
    }
  }
  // Every wait is bounded; this is the backstop. Children are killed on exit (killOnExit, test/helpers).
  const limitS = quick ? 420 : 1200;
  setTimeout(() => {
    console.error(`relay cluster bench: time limit of ${limitS} s reached; stopping`);
    process.exit(3);
  }, limitS * 1000).unref();
  process.on('SIGINT', () => process.exit(130));
  process.on('SIGTERM', () => process.exit(143));

  const log = (l: string) => console.log(`· ${l}`);
  const idleAgents = quick ? 1000 : TOP_AGENTS;
  const captures = quick ? 5 : 20;
  const t0 = nowMs();
  const result: ClusterBenchResult = {
    meta: { date: new Date().toISOString(), quick, node: process.version, cpus: cpus().length, nofile: nofileLimits(), idleAgents, captures, loadStart: loads(), loadEnd: '' },
    latency: null,
    idle: [],
    cpu: [],
    errors: [],
    seconds: 0,
  };
  const step = async <T>(name: string, fn: () => Promise<T>): Promise<T | null> => {
    const s0 = nowMs();
    try {
      const r = await fn();
      log(`${name} done in ${((nowMs() - s0) / 1000).toFixed(1)} s (load average ${loads()})`);
      return r;
    } catch (err) {
      result.errors.push(`${name}: ${errText(err)}`);
      log(`${name} FAILED: ${errText(err)}`);
      return null;
    }
  };
  console.log(`Periscope relay cluster bench${quick ? ' (--quick)' : ''}: load average ${loads()}`);

  const cluster = await step('starting the cluster', () => startCluster(log));
  if (cluster) {
    try {
      result.latency = await step('latency', () => benchLatency(cluster, quick, log));
      const engines = [
        { name: 'PostgreSQL', pid: cluster.pg.pid ?? 0 },
        { name: 'Redis', pid: cluster.redis.pid },
      ];
      const cpu = await step('cpu (cluster)', () => benchCpu('cluster', cluster.relays, engines, captures, quick, log));
      if (cpu) result.cpu.push(cpu);
      const idle = await step('idle agents (cluster)', () => benchIdle('cluster relay A', cluster.relays[0]!, cluster.relays.slice(1), idleAgents, quick, log));
      if (idle) result.idle.push(idle);
    } finally {
      await stopCluster(cluster);
    }
  }
  // The same loads on one relay with no database or Redis URL (SQLite, alone), after the cluster is gone.
  const embedded = await step('starting an embedded relay', () => startRelay({ env: capEnv, inspect: true, nofile: relayNofile() }));
  if (embedded) {
    try {
      const cpu = await step('cpu (embedded)', () => benchCpu('embedded', [embedded], [], captures, quick, log));
      if (cpu) result.cpu.push(cpu);
      const idle = await step('idle agents (embedded)', () => benchIdle('embedded relay', embedded, [], idleAgents, quick, log));
      if (idle) result.idle.push(idle);
    } finally {
      await embedded.stop();
    }
  }
  for (const e of result.latency?.errors ?? []) result.errors.push(`latency: ${e}`);
  for (const c of result.cpu) for (const e of c.errors) result.errors.push(`cpu (${c.label}): ${e}`);
  for (const i of result.idle) for (const e of i.errors) result.errors.push(`idle (${i.label}): ${e}`);
  result.seconds = (nowMs() - t0) / 1000;
  result.meta.loadEnd = loads();
  console.log('');
  console.log(tables(result));
  console.log('');
  console.log(`total ${result.seconds.toFixed(0)} s`);
  console.log(`RELAY_CLUSTER_BENCH_JSON ${JSON.stringify(json(result))}`);
  const ranAll = result.latency !== null && result.cpu.length === 2 && result.idle.length === 2;
  return ranAll ? 0 : 1;
}

if (import.meta.main) process.exit(await clusterMain(process.argv.slice(2)));
