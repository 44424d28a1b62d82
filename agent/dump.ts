// `periscope dump`: one snapshot of every thread's Python stack, like
// `py-spy dump`, as text or JSON.
import { basename } from 'node:path';
import { attach, asPeriscopeError, type NativeFrame, type NativeTask, type NativeThread, type NativeTargetInfo } from './native.ts';
import { descendantsOf } from './processes.ts';
import { isPeriscopeError } from '../shared/errors.ts';
import type { AsyncDump, DumpFrame, DumpTask, DumpTaskSource, DumpThread } from '../shared/protocol.ts';
import { formatDumpText as formatDumpTextOf } from '../shared/dump-text.ts';
import { inertText } from '../shared/export/inert-text.ts';

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

const hex = (id: number) => `0x${id.toString(16)}`;

/**
 * The task tree of one process, like `python -m asyncio pstree`: each task,
 * under it its coroutines outermost first (each nested in the one awaiting
 * it), and under the innermost one the tasks it awaits (those whose
 * awaited_by names it). A task awaited by several shows under each; a cycle
 * is cut and marked.
 */
export function formatTaskTree(tasks: DumpTask[]): string[] {
  const byId = new Map(tasks.map((t) => [t.task_id, t]));
  const children = new Map<number, DumpTask[]>();
  for (const t of tasks) {
    for (const parent of t.awaited_by) {
      if (!byId.has(parent)) continue;
      const list = children.get(parent) ?? [];
      list.push(t);
      children.set(parent, list);
    }
  }
  const label = (t: DumpTask) => `(T) ${t.name === null ? '<unreadable name>' : inertText(t.name)} [${hex(t.task_id)}]${t.running ? ' (running)' : ''}${t.truncated ? ' (stack truncated)' : ''}`;
  const lines: string[] = [];
  const render = (t: DumpTask, prefix: string, last: boolean, path: Set<number>) => {
    lines.push(`${prefix}${last ? '└── ' : '├── '}${label(t)}${path.has(t.task_id) ? ' (await cycle)' : ''}`);
    if (path.has(t.task_id)) return;
    path.add(t.task_id);
    let pre = prefix + (last ? '    ' : '│   ');
    // Coroutines outermost first, each nested in the one awaiting it.
    for (const f of [...t.frames].reverse()) {
      lines.push(`${pre}└── ${inertText(f.name)} (${inertText(f.filename)}:${f.line})`);
      pre += '    ';
    }
    const kids = children.get(t.task_id) ?? [];
    kids.forEach((k, i) => render(k, pre, i === kids.length - 1, path));
    path.delete(t.task_id);
  };
  const roots = tasks.filter((t) => !t.awaited_by.some((p) => byId.has(p)));
  roots.forEach((r, i) => render(r, '', i === roots.length - 1, new Set()));
  // Tasks only reachable through a cycle have no root: show them too.
  const shown = new Set<number>();
  const mark = (t: DumpTask) => {
    if (shown.has(t.task_id)) return;
    shown.add(t.task_id);
    for (const k of children.get(t.task_id) ?? []) mark(k);
  };
  roots.forEach(mark);
  for (const t of tasks) if (!shown.has(t.task_id)) { render(t, '', true, new Set()); mark(t); }
  return lines;
}

/** The text for `--async`: per process, its task tree or why there is none. */
export function formatTasksText(processes: DumpedProcess[]): string {
  const lines: string[] = [];
  for (const p of processes) {
    lines.push(`Process ${p.info.pid}: asyncio tasks`);
    const src = p.taskSource;
    if (!src || src.unavailable !== null) lines.push(`    no asyncio tasks can be read: ${inertText(src?.unavailable ?? 'not requested')}`);
    else if (!p.tasks || p.tasks.length === 0) lines.push('    no asyncio tasks (asyncio is imported, but no task exists)');
    else lines.push(...formatTaskTree(p.tasks));
    if (src?.truncated) lines.push('    (task list truncated: some tasks may be missing)');
    lines.push('');
  }
  return lines.join('\n');
}
