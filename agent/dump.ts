// `periscope dump`: one snapshot of every thread's Python stack, like
// `py-spy dump`, as text or JSON.
import { basename } from 'node:path';
import { attach, asPeriscopeError, type NativeThread, type NativeTargetInfo } from './native.ts';
import { descendantsOf } from './processes.ts';
import { isPeriscopeError } from '../shared/errors.ts';
import type { DumpThread } from '../shared/protocol.ts';
import { formatDumpText as formatDumpTextOf } from '../shared/dump-text.ts';

export interface DumpedProcess {
  info: NativeTargetInfo;
  threads: DumpThread[];
}

export interface DumpOptions {
  blocking?: boolean;
  subprocesses?: boolean;
  ignoreSymbols?: boolean;
}

function toDumped(pid: number, t: NativeThread): DumpThread {
  return {
    pid,
    thread_id: t.threadId,
    os_thread_id: t.osThreadId,
    thread_name: t.name,
    active: t.active,
    owns_gil: t.ownsGil,
    truncated: t.truncated,
    frames: t.frames.map((f) => ({ name: f.name, filename: f.filename, short_filename: basename(f.filename), line: f.line })),
  };
}

export function dumpProcess(pid: number, options: DumpOptions = {}): DumpedProcess {
  const target = attach(pid, { ignoreSymbols: options.ignoreSymbols });
  try {
    const info = target.info();
    return { info, threads: target.dump({ blocking: options.blocking }).map((t) => toDumped(pid, t)) };
  } catch (err) {
    throw asPeriscopeError(err);
  }
}

/**
 * Dumps pid and, with subprocesses, every Python descendant. A child that is
 * not Python or exits meanwhile is skipped; the root's errors are fatal.
 */
export function dump(pid: number, options: DumpOptions = {}): DumpedProcess[] {
  const out = [dumpProcess(pid, options)];
  if (!options.subprocesses) return out;
  for (const child of descendantsOf(pid)) {
    try {
      out.push(dumpProcess(child, options));
    } catch (err) {
      if (isPeriscopeError(err) && ['NOT_PYTHON', 'NO_SUCH_PROCESS', 'PROCESS_EXITED'].includes(err.code)) continue;
      throw err;
    }
  }
  return out;
}

/** `periscope dump`'s text (the one formatter, shared/dump-text.ts, which the web uses too). */
export function formatDumpText(processes: DumpedProcess[]): string {
  return formatDumpTextOf(processes.map((p) => ({ pid: p.info.pid, cmdline: p.info.cmdline, version: p.info.version, executable: p.info.executable, threads: p.threads })));
}
