// `periscope dump`: one snapshot of every thread's Python stack, like
// `py-spy dump`, as text or JSON.
import { basename } from 'node:path';
import { attach, asPeriscopeError, type NativeFrame, type NativeTask, type NativeThread, type NativeTargetInfo } from './native.ts';
import { descendantsOf } from './processes.ts';
import { isPeriscopeError } from '../shared/errors.ts';
import type { AsyncDump, DumpFrame, DumpTask, DumpTaskSource, DumpThread } from '../shared/protocol.ts';
import { formatDumpText as formatDumpTextOf, formatTasksText as formatTasksTextOf } from '../shared/dump-text.ts';

export interface DumpedProcess {
  info: NativeTargetInfo;
  threads: DumpThread[];
  /** With the asyncio option: its tasks, and whether (or why not) they could be read. */
  tasks?: DumpTask[];
  taskSource?: DumpTaskSource;
}

export interface DumpOptions {
  blocking?: boolean;
  subprocesses?: boolean;
  ignoreSymbols?: boolean;
  /** Also read asyncio tasks (Python 3.14+). */
  asyncio?: boolean;
}

function toFrame(f: NativeFrame): DumpFrame {
  return { name: f.name, filename: f.filename, short_filename: basename(f.filename), line: f.line };
}

function toTask(pid: number, t: NativeTask): DumpTask {
  return {
    pid,
    task_id: t.address,
    thread_id: t.threadId === 0 ? null : t.threadId,
    name: t.name,
    running: t.running,
    truncated: t.truncated,
    frames: t.frames.map(toFrame),
    awaited_by: t.awaitedBy,
  };
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
    frames: t.frames.map(toFrame),
  };
}

export function dumpProcess(pid: number, options: DumpOptions = {}): DumpedProcess {
  const target = attach(pid, { ignoreSymbols: options.ignoreSymbols });
  try {
    const info = target.info();
    if (!options.asyncio) return { info, threads: target.dump({ blocking: options.blocking }).map((t) => toDumped(pid, t)) };
    const d = target.dump({ blocking: options.blocking, asyncio: true });
    return {
      info,
      threads: d.threads.map((t) => toDumped(pid, t)),
      tasks: (d.tasks ?? []).map((t) => toTask(pid, t)),
      taskSource: { pid, unavailable: d.tasks ? null : d.tasksUnavailable ?? 'unknown', truncated: d.tasksTruncated },
    };
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

/** The `--async --json` document: every process's threads and tasks. */
export function asyncDump(processes: DumpedProcess[]): AsyncDump {
  return {
    threads: processes.flatMap((p) => p.threads),
    tasks: processes.flatMap((p) => p.tasks ?? []),
    task_sources: processes.flatMap((p) => (p.taskSource ? [p.taskSource] : [])),
  };
}

/** The text for `--async`: per process, its task tree or why there is none (shared/dump-text.ts). */
export function formatTasksText(processes: DumpedProcess[]): string {
  return formatTasksTextOf(processes.map((p) => ({ pid: p.info.pid, tasks: p.tasks ?? [], source: p.taskSource })));
}
