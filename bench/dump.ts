// Benchmark 1: dump latency for a target whose only thread is parked 50
// frames deep: a fresh attach + dump (what one `periscope dump` does in
// process), a repeated dump on an existing attach (non-blocking and
// --blocking), and, for context, the whole CLI (`bin/periscope dump --pid PID`,
// Node start-up included).
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
  error: string | null;
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
    let cliError: string | null = null;
    for (let i = 0; i < nCli && !cliError; i++) {
      t0 = nowMs();
      const r = spawnSync(PERISCOPE, ['dump', '--pid', String(target.pid)], { encoding: 'utf8', timeout: 30_000 });
      const ms = nowMs() - t0;
      if (r.status !== 0) cliError = `exit ${r.status}: ${(r.stderr || r.error?.message || '').trim().split('\n')[0]}`;
      else cli.push(ms);
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
      error: frames === DUMP_DEPTH ? null : `dumped ${frames} frames, expected ${DUMP_DEPTH}`,
    };
  } finally {
    await target.kill();
  }
}
