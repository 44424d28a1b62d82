// Small profiles with hand-countable contents, shared by the shared/ tests.

import { type FrameInput, ProfileBuilder } from '../../shared/profile/builder.ts';

export const f = (name: string, file: string, line: number): FrameInput => ({ name, file, line });

const moduleFrame = f('<module>', 'app.py', 30);
const main20 = f('main', 'app.py', 20);
const main21 = f('main', 'app.py', 21);
const work10 = f('work', 'app.py', 10);
const work11 = f('work', 'app.py', 11);

export const PERIOD_US = 10_000;
export const DURATION_US = 100_000;

/**
 * Two threads of one process, sampled at 100 Hz for 100 ms.
 *
 * MainThread (pid 100, tid 1):
 *   0, 10, 20 ms  <module>:30 > main:20 > work:10              gil
 *   30 ms         <module>:30 > main:20 > work:11              gil
 *   40 ms         <module>:30 > main:20 > work:10 > helper:5
 *   50 ms         <module>:30 > main:20 > sleep:1               idle
 *   60 ms         <module>:30 > main:21 > recurse:2 > recurse:1 gil
 * worker (pid 100, tid 2):
 *   0, 10 ms      run:1 > loop:3                                gil
 */
export function buildKnownProfile(builder = new ProfileBuilder()): ProfileBuilder {
  builder.updateCapture({ commandLine: 'python app.py', rateHz: 100, startTimeUs: 1_700_000_000_000_000, durationUs: DURATION_US });
  builder.process(100, { commandLine: 'python app.py', pythonVersion: '3.12.1' });
  const main = builder.thread(100, 1, 'MainThread');
  const worker = builder.thread(100, 2, 'worker');
  for (const t of [0, 1, 2]) {
    builder.addSample({ thread: main, timeUs: t * PERIOD_US, gil: true, framesLeafFirst: [work10, main20, moduleFrame] });
  }
  builder.addSample({ thread: main, timeUs: 30_000, gil: true, framesLeafFirst: [work11, main20, moduleFrame] });
  builder.addSample({ thread: main, timeUs: 40_000, framesLeafFirst: [f('helper', 'lib.py', 5), work10, main20, moduleFrame] });
  builder.addSample({ thread: main, timeUs: 50_000, idle: true, framesLeafFirst: [f('sleep', 'time.py', 1), main20, moduleFrame] });
  builder.addSample({
    thread: main,
    timeUs: 60_000,
    gil: true,
    framesLeafFirst: [f('recurse', 'r.py', 1), f('recurse', 'r.py', 2), main21, moduleFrame],
  });
  for (const t of [0, 1]) {
    builder.addSample({ thread: worker, timeUs: t * PERIOD_US, gil: true, framesLeafFirst: [f('loop', 'w.py', 3), f('run', 'w.py', 1)] });
  }
  return builder;
}

export const KNOWN_THREADS = { main: 0, worker: 1 } as const;
