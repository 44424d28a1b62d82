// Benchmark 1: dump latency for a target whose only thread is parked 50
// frames deep: a fresh attach + dump (what one `periscope dump` does in
// process), a repeated dump on an existing attach (non-blocking and
// --blocking), and, for context, the whole CLI (`bin/periscope dump --pid PID`,
// Node start-up included). On 3.15+ the same target is also dumped by
// CPython's own profiler (`python3.X -m profiling.sampling dump PID`, which
// reads only its own version), alternating with the CLI so that both see the
// same machine load.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { attach, type NativeThread } from '../agent/native.ts';
import type { Python } from '../test/helpers/pythons.ts';
import { median, nowMs } from './lib/stats.ts';
import { startTarget } from './lib/target.ts';

export const DUMP_DEPTH = 50;
const PERISCOPE = join(import.meta.dirname, '..', 'bin', 'periscope');

export interface DumpResult {
  /** Frames of the parked thread as dumped (should be DUMP_DEPTH). */
  frames: number;
  /** The first attach + dump of this interpreter in this process (cold ELF/symbol work). */
  firstAttachDumpMs: number;
  attachDumpMedianMs: number;
  attachDumpN: number;
  dumpMedianMs: number;
  dumpN: number;
  blockingDumpMedianMs: number;
  blockingDumpN: number;
  cliMedianMs: number | null;
  cliN: number;
  cliError: string | null;
  /** CPython's `-m profiling.sampling dump` on the same target, whole command; null where it cannot run. */
  peerMedianMs: number | null;
  peerN: number;
  /** Why there is no peer figure (missing module, failure), else null. */
  peerMissing: string | null;
  error: string | null;
}

const PEER_MIN_MINOR = 15;

function runPeer(python: Python, pid: number): { ms: number; error: string | null } {
  const t0 = nowMs();
  const r = spawnSync(python.exe, ['-m', 'profiling.sampling', 'dump', String(pid)], { encoding: 'utf8', timeout: 30_000 });
  const ms = nowMs() - t0;
  if (r.status !== 0) return { ms, error: `exit ${r.status}: ${(r.stderr || r.error?.message || '').trim().split('\n').at(-1)}` };
  // Its output has a "File ..., line N, in NAME" line per frame.
  const frames = (r.stdout.match(/^\s+File ".*", line \d+, in /gm) ?? []).length;
  if (frames < DUMP_DEPTH) return { ms, error: `printed ${frames} frames, expected at least ${DUMP_DEPTH}` };
  return { ms, error: null };
}

function parkedFrames(threads: NativeThread[]): number {
  return Math.max(0, ...threads.map((t) => t.frames.length));
}

export async function benchDump(python: Python, quick: boolean): Promise<DumpResult> {
  const nAttach = quick ? 10 : 30;
  const nDump = quick ? 100 : 300;
  const nBlocking = quick ? 20 : 50;
  const nCli = quick ? 2 : 5;
  const target = await startTarget(python, 'park', DUMP_DEPTH);
  try {
    let t0 = nowMs();
    const first = attach(target.pid).dump();
    const firstAttachDumpMs = nowMs() - t0;
    const frames = parkedFrames(first);

    const attachDump: number[] = [];
    for (let i = 0; i < nAttach; i++) {
      t0 = nowMs();
      attach(target.pid).dump();
      attachDump.push(nowMs() - t0);
    }

    const existing = attach(target.pid);
    existing.dump(); // warm the code cache, as a repeated dump would be
    const dumps: number[] = [];
    for (let i = 0; i < nDump; i++) {
      t0 = nowMs();
      existing.dump();
      dumps.push(nowMs() - t0);
    }
    const blocking: number[] = [];
    for (let i = 0; i < nBlocking; i++) {
      t0 = nowMs();
      existing.dump({ blocking: true });
      blocking.push(nowMs() - t0);
    }

    const cli: number[] = [];
    const peer: number[] = [];
    let cliError: string | null = null;
    const minor = Number(python.version.split('.')[1]);
    let peerMissing: string | null = python.version.startsWith('3.') && minor >= PEER_MIN_MINOR ? null : `CPython's profiler reads only its own version (3.${PEER_MIN_MINOR}+)`;
    for (let i = 0; i < nCli && !cliError; i++) {
      t0 = nowMs();
      const r = spawnSync(PERISCOPE, ['dump', '--pid', String(target.pid)], { encoding: 'utf8', timeout: 30_000 });
      const ms = nowMs() - t0;
      if (r.status !== 0) cliError = `exit ${r.status}: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`;
      else cli.push(ms);
      if (peerMissing) continue;
      const p = runPeer(python, target.pid);
      if (p.error) peerMissing = `python -m profiling.sampling dump failed: ${p.error}`;
      else peer.push(p.ms);
    }

    return {
      frames,
      firstAttachDumpMs,
      attachDumpMedianMs: median(attachDump),
      attachDumpN: nAttach,
      dumpMedianMs: median(dumps),
      dumpN: nDump,
      blockingDumpMedianMs: median(blocking),
      blockingDumpN: nBlocking,
      cliMedianMs: cli.length ? median(cli) : null,
      cliN: cli.length,
      cliError,
      peerMedianMs: peer.length && !peerMissing ? median(peer) : null,
      peerN: peer.length,
      peerMissing,
      error: frames === DUMP_DEPTH ? null : `dumped ${frames} frames, expected ${DUMP_DEPTH}`,
    };
  } finally {
    await target.kill();
  }
}
