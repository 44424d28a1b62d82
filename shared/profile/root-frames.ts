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

export function threadName(profile: Profile, threadRow: number): string {
  return stringAt(profile, profile.threads.name[threadRow]);
}

export function threadLabel(profile: Profile, threadRow: number): string {
  const name = threadName(profile, threadRow);
  const tid = profile.threads.tid[threadRow];
  return name ? `thread (${name}) ${tid}` : `thread ${tid}`;
}

export function spansSeveralProcesses(profile: Profile, samples: readonly number[]): boolean {
  const { thread } = profile.samples;
  const { pid } = profile.threads;
  if (samples.length === 0) return false;
  const first = pid[thread[samples[0]]];
  return samples.some((s) => pid[thread[s]] !== first);
}

export interface RootFrame {
  kind: 'process' | 'thread';
  label: string;
}

/**
 * Root frames to put above a thread's stacks, outermost first: one for its
 * process when the view spans several (`withProcess`), one for the thread with
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

/**
 * rootFrames() memoized per thread row, for a fixed set of samples: the
 * process frame appears only when `samples` come from more than one process.
 */
export function rootFramesFor(
  profile: Profile,
  samples: readonly number[],
  options: Pick<ViewOptions, 'threads'>,
): (threadRow: number) => RootFrame[] {
  const withProcess = spansSeveralProcesses(profile, samples);
  const cache = new Map<number, RootFrame[]>();
  return (threadRow) => {
    let roots = cache.get(threadRow);
    if (!roots) cache.set(threadRow, (roots = rootFrames(profile, threadRow, withProcess, options)));
    return roots;
  };
}
