// A dump as text, the way `periscope dump` prints it: one block per process,
// then each thread with its state and its frames, innermost first. One
// formatter for the CLI (agent/dump.ts) and the web's "Copy as text" and
// "Download text" (web/src/views/dump-view.ts). Everything but the numbers
// came from the target, so it is made inert (no escape sequences, no bidi
// tricks) whether it lands on a terminal, a clipboard or a file.
import { inertText } from './export/inert-text.ts';
import type { DumpThread } from './protocol.ts';

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
