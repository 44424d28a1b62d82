// Time-based exporters need to know how long each sample "lasted". A sample stands for
// the time until the same thread's next sample, except across gaps (filtered-out idle
// samples, a thread that was not running), where it stands for one sampling period and
// the rest of the gap stays empty.

import { type Profile, samplePeriodUs } from '../profile/model.ts';

export interface ThreadTimeline {
  /** Row in the thread table. */
  thread: number;
  /** Sample rows in time order. */
  samples: number[];
  /** Span of each sample, microseconds since capture start. */
  start: number[];
  end: number[];
}

// Jitter and a late sample or two stretch intervals a little; a whole missing sample
// (2 periods) must not, or idle time would be attributed to the previous stack.
const CONTIGUOUS_GAP_PERIODS = 1.5;

/** One timeline per thread that has samples, in thread-row order. */
export function threadTimelines(profile: Profile, samples: readonly number[]): ThreadTimeline[] {
  const period = samplePeriodUs(profile);
  const { thread, timeUs } = profile.samples;
  const byThread = new Map<number, number[]>();
  for (const s of samples) {
    let rows = byThread.get(thread[s]);
    if (!rows) byThread.set(thread[s], (rows = []));
    rows.push(s);
  }
  const timelines: ThreadTimeline[] = [];
  for (const row of [...byThread.keys()].sort((a, b) => a - b)) {
    const rows = byThread.get(row)!.sort((a, b) => timeUs[a] - timeUs[b] || a - b);
    const start = rows.map((s) => timeUs[s]);
    const end = start.map((t, i) => {
      const next = i + 1 < start.length ? start[i + 1] : Infinity;
      return next - t <= CONTIGUOUS_GAP_PERIODS * period ? next : t + period;
    });
    timelines.push({ thread: row, samples: rows, start, end });
  }
  return timelines;
}
