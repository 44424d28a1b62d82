// `periscope dump`: one snapshot of every thread's Python stack, like
// `py-spy dump`, as text or JSON.
import { basename } from 'node:path';
import { attach, asPeriscopeError, type NativeThread, type NativeTargetInfo } from './native.ts';
import { descendantsOf } from './processes.ts';
import { isPeriscopeError } from '../shared/errors.ts';
import type { DumpThread } from '../shared/protocol.ts';
import { inertText } from '../shared/export/inert-text.ts';

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

export function formatDumpText(processes: DumpedProcess[]): string {
  const lines: string[] = [];
  for (const p of processes) {
    // Everything but the numbers came from the target: made inert for the terminal.
    lines.push(`Process ${p.info.pid}: ${inertText(p.info.cmdline)}`);
    lines.push(`Python v${inertText(p.info.version)} (${inertText(p.info.executable)})`);
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
