// A dump as text, the way `periscope dump` prints it: one block per process,
// then each thread with its state and its frames, innermost first. One
// formatter for the CLI (agent/dump.ts) and the web's "Copy as text" and
// "Download text" (web/src/views/dump-view.ts). Everything but the numbers
// came from the target, so it is made inert (no escape sequences, no bidi
// tricks) whether it lands on a terminal, a clipboard or a file.
import { inertText } from './export/inert-text.ts';
import type { DumpTask, DumpTaskSource, DumpThread } from './protocol.ts';

/** One dumped process. The CLI knows its command line, version and executable; a stored dump result holds only its threads. */
export interface DumpTextProcess {
  pid: number;
  cmdline?: string;
  version?: string;
  executable?: string;
  threads: DumpThread[];
}

/** Threads of a dump result (`periscope dump --json`) grouped by process, in the order the processes first appear. */
export function dumpProcesses(threads: DumpThread[]): DumpTextProcess[] {
  const byPid = new Map<number, DumpTextProcess>();
  for (const t of threads) {
    let p = byPid.get(t.pid);
    if (!p) byPid.set(t.pid, (p = { pid: t.pid, threads: [] }));
    p.threads.push(t);
  }
  return [...byPid.values()];
}

export function formatDumpText(processes: DumpTextProcess[]): string {
  const lines: string[] = [];
  for (const p of processes) {
    lines.push(p.cmdline === undefined ? `Process ${p.pid}` : `Process ${p.pid}: ${inertText(p.cmdline)}`);
    if (p.version !== undefined) lines.push(`Python v${inertText(p.version)}${p.executable === undefined ? '' : ` (${inertText(p.executable)})`}`);
    lines.push('');
    for (const t of p.threads) {
      const state = [t.active ? 'active' : 'idle', ...(t.owns_gil ? ['gil'] : [])].join(', ');
      const name = t.thread_name === null ? '' : `: "${inertText(t.thread_name).replace(/"/g, '\\"')}"`;
      lines.push(`Thread ${t.os_thread_id} (${state})${name}`);
      for (const f of t.frames) lines.push(`    ${inertText(f.name)} (${inertText(f.filename)}:${f.line})`);
      if (t.truncated) lines.push('    (stack truncated)');
      lines.push('');
    }
  }
  return lines.join('\n');
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

/** One process's asyncio tasks, and whether (or why not) they could be read. */
export interface TasksTextProcess {
  pid: number;
  tasks: DumpTask[];
  source?: DumpTaskSource;
}

/** Tasks and sources of an async dump grouped by process (sources give the order). */
export function tasksProcesses(tasks: DumpTask[], sources: DumpTaskSource[]): TasksTextProcess[] {
  return sources.map((source) => ({ pid: source.pid, source, tasks: tasks.filter((t) => t.pid === source.pid) }));
}

/** The text of `periscope dump --async`: per process, its task tree or why there is none. */
export function formatTasksText(processes: TasksTextProcess[]): string {
  const lines: string[] = [];
  for (const p of processes) {
    lines.push(`Process ${p.pid}: asyncio tasks`);
    const src = p.source;
    if (!src || src.unavailable !== null) lines.push(`    no asyncio tasks can be read: ${inertText(src?.unavailable ?? 'not requested')}`);
    else if (p.tasks.length === 0) lines.push('    no asyncio tasks (asyncio is imported, but no task exists)');
    else lines.push(...formatTaskTree(p.tasks));
    if (src?.truncated) lines.push('    (task list truncated: some tasks may be missing)');
    lines.push('');
  }
  return lines.join('\n');
}
