// 2. Relay memory with 1k, 5k and 10k idle agent connections.
//
// Light agents (join token → hello → welcome → one `processes` answer, then
// idle; ws answers the relay's 15 s heartbeat pings, and each agent pings the
// relay every 15 s like `periscope connect`) are spread over two generator
// processes. After each level the relay's VmRSS is read from
// /proc/PID/status once it has settled; at the top level the connections are
// held across heartbeat rounds to check none is dropped, and the relay's CPU
// while merely holding them is measured too.
import { adminClient, createSession, metrics } from '../../test/helpers/relay.ts';
import { LoadMeter, cpuSeconds, memStatus, nofileLimits, nowMs, openFds, settledRss, sleep, startRelay, type MemStatus, type RelayProcess } from './lib.ts';
import { Swarm } from './swarm-client.ts';

export const MEMORY_TARGET_BYTES = 1024 ** 3;
export const HEARTBEAT_MS = 15_000;

export interface MemoryLevel {
  agents: number;
  /** Agents the relay reports connected (/metrics). */
  relayConnected: number;
  connectSeconds: number;
  connectsPerSecond: number;
  failed: number;
  /** VmRSS once settled (garbage included, as in production). */
  rssBytes: number;
  rssAnonBytes: number;
  hwmBytes: number;
  /** VmRSS right after a full GC forced through the inspector. */
  rssAfterGcBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  fds: number;
  /** (VmRSS − VmRSS at the first level) / agents added since: what each agent costs, garbage included. */
  perAgentRawBytes: number;
  /** (RSS after GC − the same at the first level) / agents added since. */
  perAgentBytes: number;
  /** (RSS after GC − the same at the previous level) / agents added. */
  marginalPerAgentBytes: number;
  /** heapUsed growth / agents. */
  heapPerAgentBytes: number;
}

export interface MemoryResult {
  baseline: MemStatus;
  baselineAfterGc: MemStatus & { heapUsedBytes: number; externalBytes: number };
  levels: MemoryLevel[];
  hold: {
    seconds: number;
    relayCores: number;
    rssBytes: number;
    stillOpen: number;
    closeCodes: Record<string, number>;
    relayConnected: number;
  } | null;
  generators: number;
  nofile: { soft: number; hard: number; relay: number };
  pass: boolean | null;
  backgroundCores: number;
  errors: string[];
}

async function afterGc(relay: RelayProcess): Promise<MemStatus & { heapUsedBytes: number; externalBytes: number }> {
  const inspector = relay.inspector!;
  const status = await inspector.rssAfterGc(relay.pid);
  const u = await inspector.memoryUsage();
  return { ...status, heapUsedBytes: u.heapUsed, externalBytes: u.external };
}

export async function benchMemory(quick: boolean, log: (s: string) => void): Promise<MemoryResult> {
  const errors: string[] = [];
  const limits = nofileLimits();
  let levels = [1000, 5000, 10_000];
  const generators = 2;
  const relayNofile = Math.min(limits.hard, 10_000 + 4096);
  const fit = levels.filter((n) => n + 512 <= relayNofile && n / generators + 512 <= limits.hard);
  if (fit.length < levels.length) {
    errors.push(`open-files limit (soft ${limits.soft}, hard ${limits.hard}) too low for ${levels.at(-1)} connections; measured up to ${fit.at(-1) ?? 0}`);
    levels = fit;
  }
  const settleMs = quick ? 2000 : 5000;
  const holdMs = quick ? HEARTBEAT_MS + 1000 : 2 * HEARTBEAT_MS + 2000;
  // All agents join one session: the cap on agents per session (1000 by default) is raised to the top level.
  const relay = await startRelay({ nofile: relayNofile, inspect: true, env: { PERISCOPE_MAX_AGENTS_PER_SESSION: String(levels.at(-1) ?? 1000) } });
  const swarms: Swarm[] = [];
  try {
    const api = await adminClient(relay, { timeoutMs: 30_000 });
    const session = await createSession(api, 'bench memory', { ttlHours: 2 });
    const baseline = await settledRss(relay.pid, 2000);
    // Start-up leaves garbage V8 lets go of only after a while (Node's TypeScript
    // stripper's buffers among it); wait until a full GC leaves RSS where it was.
    let baselineAfterGc = await afterGc(relay);
    const stableBy = nowMs() + (quick ? 8000 : 12_000);
    while (nowMs() < stableBy) {
      await sleep(1000);
      const again = await afterGc(relay);
      const stable = Math.abs(again.rssBytes - baselineAfterGc.rssBytes) < 1024 * 1024;
      baselineAfterGc = again;
      if (stable) break;
    }
    for (let g = 0; g < generators; g++) swarms.push(new Swarm(Math.min(limits.hard, 10_000 / generators + 1024), `idle-${g}`));
    const load = new LoadMeter([relay.pid, ...swarms.map((s) => s.pid)]);
    const result: MemoryLevel[] = [];
    let have = 0;
    let prevRss = baselineAfterGc.rssBytes;
    let first: { agents: number; rss: number; rssAfterGc: number } | undefined;
    for (const level of levels) {
      const add = level - have;
      const t0 = nowMs();
      const replies = await Promise.all(
        swarms.map((s, g) => {
          const count = Math.floor(add / generators) + (g < add % generators ? 1 : 0);
          return s.request<{ ready: number; failed: number; errors: Record<string, number> }>(
            { cmd: 'connect', wsUrl: relay.wsUrl, token: session.joinToken, count, concurrency: 64, hostPrefix: `idle-${g}-${have}`, pingIntervalMs: HEARTBEAT_MS, timeoutMs: 120_000 },
            150_000,
          );
        }),
      );
      const connectSeconds = (nowMs() - t0) / 1000;
      const ready = replies.reduce((n, r) => n + r.ready, 0);
      const failed = replies.reduce((n, r) => n + r.failed, 0);
      for (const r of replies) for (const [e, n] of Object.entries(r.errors)) errors.push(`connecting: ${n} × ${e}`);
      have += ready;
      const m = await settledRss(relay.pid, settleMs);
      const g = await afterGc(relay);
      const relayMetrics = await metrics(relay);
      const lvl: MemoryLevel = {
        agents: have,
        relayConnected: relayMetrics.periscope_agents_connected ?? Number.NaN,
        connectSeconds,
        connectsPerSecond: ready / connectSeconds,
        failed,
        rssBytes: m.rssBytes,
        rssAnonBytes: m.rssAnonBytes,
        hwmBytes: m.hwmBytes,
        rssAfterGcBytes: g.rssBytes,
        heapUsedBytes: g.heapUsedBytes,
        externalBytes: g.externalBytes,
        fds: openFds(relay.pid),
        perAgentRawBytes: first ? (m.rssBytes - first.rss) / (have - first.agents) : Number.NaN,
        perAgentBytes: first ? (g.rssBytes - first.rssAfterGc) / (have - first.agents) : Number.NaN,
        marginalPerAgentBytes: (g.rssBytes - prevRss) / ready,
        heapPerAgentBytes: (g.heapUsedBytes - baselineAfterGc.heapUsedBytes) / have,
      };
      prevRss = g.rssBytes;
      first ??= { agents: have, rss: m.rssBytes, rssAfterGc: g.rssBytes };
      result.push(lvl);
      log(`memory: ${have} agents (${ready} in ${connectSeconds.toFixed(1)} s, ${failed} failed): relay RSS ${(m.rssBytes / 1024 / 1024).toFixed(1)} MiB, ${(g.rssBytes / 1024 / 1024).toFixed(1)} MiB after GC`);
    }

    let hold: MemoryResult['hold'] = null;
    if (have > 0) {
      log(`memory: holding ${have} idle agents for ${(holdMs / 1000).toFixed(0)} s (heartbeat rounds)`);
      const c0 = cpuSeconds(relay.pid);
      const t0 = nowMs();
      await sleep(holdMs);
      const seconds = (nowMs() - t0) / 1000;
      const relayCores = (cpuSeconds(relay.pid) - c0) / seconds;
      const m = memStatus(relay.pid);
      const statuses = await Promise.all(swarms.map((s) => s.request<{ open: number; closeCodes: Record<string, number> }>({ cmd: 'status' }, 30_000)));
      const closeCodes: Record<string, number> = {};
      for (const st of statuses) for (const [c, n] of Object.entries(st.closeCodes)) closeCodes[c] = (closeCodes[c] ?? 0) + n;
      const relayMetrics = await metrics(relay);
      hold = {
        seconds,
        relayCores,
        rssBytes: m.rssBytes,
        stillOpen: statuses.reduce((n, s) => n + s.open, 0),
        closeCodes,
        relayConnected: relayMetrics.periscope_agents_connected ?? Number.NaN,
      };
      if (hold.stillOpen !== have) errors.push(`${have - hold.stillOpen} agents were disconnected while idle (close codes ${JSON.stringify(closeCodes)})`);
    }
    const top = result.at(-1);
    const maxRss = Math.max(top?.rssBytes ?? 0, hold?.rssBytes ?? 0);
    return {
      baseline,
      baselineAfterGc,
      levels: result,
      hold,
      generators,
      nofile: { ...limits, relay: relayNofile },
      pass: top && top.agents >= 10_000 ? maxRss < MEMORY_TARGET_BYTES : null,
      backgroundCores: load.read().backgroundCores,
      errors: [...new Set(errors)],
    };
  } finally {
    await Promise.all(swarms.map((s) => s.exit()));
    await relay.stop();
  }
}
