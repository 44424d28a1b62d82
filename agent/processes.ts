// Process-tree facts from /proc that the agent needs without attaching:
// the children and descendants of a process (for --subprocesses).
import { readFileSync, readdirSync } from 'node:fs';

/** Direct children of pid, from /proc/PID/task/TID/children of every thread. */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      for (const c of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/)) {
        if (c) out.push(Number(c));
      }
    } catch {
      // the thread exited while we listed
    }
  }
  return out;
}

/** Every descendant of pid, breadth first. */
export function descendantsOf(pid: number): number[] {
  const out: number[] = [];
  const queue = [pid];
  const seen = new Set<number>([pid]);
  while (queue.length > 0 && out.length < 10_000) {
    for (const c of childrenOf(queue.shift()!)) {
      if (seen.has(c)) continue;
      seen.add(c);
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}
