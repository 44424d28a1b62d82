// Synthetic frames placed above the real stacks, py-spy style: one per process when a
// capture spans several (--subprocesses), one per thread when asked (--threads).

import { type Profile, stringAt } from './model.ts';
import type { ViewOptions } from './view-options.ts';

export function processCommandLine(profile: Profile, pid: number): string | undefined {
  const { pid: pids, commandLine } = profile.processes;
  for (let p = pids.length - 1; p >= 0; p--) if (pids[p] === pid) return stringAt(profile, commandLine[p]);
  return undefined;
}

export function processLabel(profile: Profile, pid: number): string {
  const commandLine = processCommandLine(profile, pid);
  return commandLine === undefined ? `process ${pid}` : `process ${pid}: "${commandLine}"`;
}

/** processLabel read back (from a collapsed-stack file): pid and command line, or null when the label is not a process root. */
export function parseProcessLabel(label: string): { pid: number; commandLine: string } | null {
  const m = /^process (\d+)(?:: "(.*)")?$/s.exec(label);
  return m ? { pid: Number(m[1]), commandLine: m[2] ?? '' } : null;
}

export function threadName(profile: Profile, threadRow: number): string {
  return stringAt(profile, profile.threads.name[threadRow]);
}

export function threadLabel(profile: Profile, threadRow: number): string {
  const name = threadName(profile, threadRow);
  const tid = profile.threads.tid[threadRow];
  return name ? `thread (${name}) ${tid}` : `thread ${tid}`;
}

/** threadLabel read back: tid and name (undefined when the label has none), or null when the label is not a thread root. */
export function parseThreadLabel(label: string): { tid: number; name: string | undefined } | null {
  const m = /^thread (?:\((.*)\) )?(\d+)$/s.exec(label);
  return m ? { tid: Number(m[2]), name: m[1] } : null;
}

export function spansSeveralProcesses(profile: Profile, samples: readonly number[]): boolean {
  const { thread } = profile.samples;
  const { pid } = profile.threads;
  if (samples.length === 0) return false;
  const first = pid[thread[samples[0]]];
  return samples.some((s) => pid[thread[s]] !== first);
}

/**
 * A fork-per-job worker's children run the parent's code under the parent's
 * command line (or one of their own, all alike): one tree for all of them
 * shows the job's hot path at full width instead of one thin tower per child.
 */
export function childrenShareCommandLine(profile: Profile): boolean {
  const { commandLine } = profile.processes;
  if (commandLine.length < 2) return false;
  const children = new Set(commandLine.slice(1).map((s) => stringAt(profile, s)));
  return children.size === 1 && (commandLine.length > 2 || children.has(stringAt(profile, commandLine[0])));
}

/**
 * Whether a view of samples from several processes (`spansSeveral`) puts a
 * root per process: yes unless merged — asked for with `mergeProcesses`, or by
 * default when the children share a command line.
 */
export function processRoots(profile: Profile, spansSeveral: boolean, options: Pick<ViewOptions, 'mergeProcesses'>): boolean {
  return spansSeveral && !(options.mergeProcesses ?? childrenShareCommandLine(profile));
}

export interface RootFrame {
  kind: 'process' | 'thread';
  label: string;
}

/**
 * Root frames to put above a thread's stacks, outermost first: one for its
 * process with `withProcess` (see processRoots), one for the thread with
 * `options.threads`. Threads with equal root frames share one subtree.
 */
export function rootFrames(profile: Profile, threadRow: number, withProcess: boolean, options: Pick<ViewOptions, 'threads'>): RootFrame[] {
  const roots: RootFrame[] = [];
  if (withProcess) roots.push({ kind: 'process', label: processLabel(profile, profile.threads.pid[threadRow]) });
  if (options.threads) roots.push({ kind: 'thread', label: threadLabel(profile, threadRow) });
  return roots;
}

/** Identifies the subtree that threads with these root frames share. */
export function rootKey(roots: readonly RootFrame[]): string {
  return JSON.stringify(roots);
}
