// Protocol fixtures for the relay tests: deterministic profile chunks and
// capture stats to send as an agent. The relay harness itself (start a relay,
// sign in, sessions, agent and browser peers) is test/helpers/relay.ts.
import { ProfileBuilder } from '../../shared/profile/index.ts';
import type { ProfileChunk } from '../../shared/profile/chunk.ts';

/** Deterministic profile chunks: `count` chunks of `samplesPerChunk` samples across two threads. */
export function buildChunks(count: number, samplesPerChunk = 5, commandLine = 'python3 app.py --serve'): ProfileChunk[] {
  const b = new ProfileBuilder({ commandLine, rateHz: 100, startTimeUs: Date.UTC(2026, 0, 2, 3, 4, 5) * 1000 });
  b.process(4242, { commandLine, pythonVersion: '3.12.1' });
  const main = b.thread(4242, 4242, 'MainThread');
  const worker = b.thread(4242, 4243, 'worker');
  const chunks: ProfileChunk[] = [];
  let t = 0;
  for (let c = 0; c < count; c++) {
    for (let i = 0; i < samplesPerChunk; i++) {
      t += 10_000;
      b.addSample({
        thread: i % 2 === 0 ? main : worker,
        timeUs: t,
        framesLeafFirst: [
          { name: i % 3 === 0 ? 'compute' : 'parse_<json>', file: '/app/work.py', line: 10 + (i % 3) },
          { name: 'handle', file: '/app/server.py', line: 42 },
          { name: '<module>', file: '/app/app.py', line: 1 },
        ],
        idle: i % 4 === 3,
      });
    }
    b.updateCapture({ durationUs: t });
    chunks.push(b.takeChunk());
  }
  return chunks;
}

export const STATS = { samples: 0, late: 0, ticks: 0, errors: 0 };
