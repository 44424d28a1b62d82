// speedscope's JSON file format (https://www.speedscope.app/file-format-schema.json):
// one "sampled" profile per thread. Every profile spans the whole capture and gaps
// are filled with empty-stack samples, so threads line up in speedscope's time-order view.

import type { Profile } from '../profile/model.ts';
import { groupFrames } from '../profile/frame-groups.ts';
import { groupStacks, pathToRoot } from '../profile/grouped-stacks.ts';
import { spansSeveralProcesses, threadName } from '../profile/root-frames.ts';
import { selectSamples } from '../profile/sample-filter.ts';
import { buildOrTooLarge } from './build-or-too-large.ts';
import type { ExportOptions } from './options.ts';
import { type ThreadTimeline, threadTimelines } from './thread-timeline.ts';

export const SPEEDSCOPE_SCHEMA = 'https://www.speedscope.app/file-format-schema.json';

export interface SpeedscopeFrame {
  name: string;
  file?: string;
  line?: number;
}

export interface SpeedscopeSampledProfile {
  type: 'sampled';
  name: string;
  unit: 'microseconds';
  startValue: number;
  endValue: number;
  /** Frame indices, root first. */
  samples: number[][];
  weights: number[];
}

export interface SpeedscopeFile {
  $schema: typeof SPEEDSCOPE_SCHEMA;
  shared: { frames: SpeedscopeFrame[] };
  profiles: SpeedscopeSampledProfile[];
  name: string;
  activeProfileIndex: number;
  exporter: string;
}

function profileName(profile: Profile, threadRow: number, withPid: boolean): string {
  const name = threadName(profile, threadRow);
  const thread = `Thread ${profile.threads.tid[threadRow]}${name ? ` "${name}"` : ''}`;
  return withPid ? `Process ${profile.threads.pid[threadRow]} ${thread}` : thread;
}

/** profileName read back: pid (0 without one), tid and name, or null for a name Periscope did not write. */
export function parseProfileName(name: string): { pid: number; tid: number; name: string | undefined } | null {
  const m = /^(?:Process (\d+) )?Thread (\d+)(?: "(.*)")?$/s.exec(name);
  return m ? { pid: m[1] === undefined ? 0 : Number(m[1]), tid: Number(m[2]), name: m[3] } : null;
}

function sampledProfile(
  name: string,
  timeline: ThreadTimeline,
  stackOf: (sampleRow: number) => number[],
  durationUs: number,
): SpeedscopeSampledProfile {
  const startValue = Math.min(0, timeline.start[0] ?? 0);
  const samples: number[][] = [];
  const weights: number[] = [];
  let cursor = startValue;
  for (let i = 0; i < timeline.samples.length; i++) {
    const start = timeline.start[i];
    if (start > cursor) {
      samples.push([]);
      weights.push(start - cursor);
      cursor = start;
    }
    samples.push(stackOf(timeline.samples[i]));
    weights.push(Math.max(0, timeline.end[i] - cursor));
    cursor = Math.max(cursor, timeline.end[i]);
  }
  const endValue = Math.max(durationUs, cursor);
  if (endValue > cursor) {
    samples.push([]);
    weights.push(endValue - cursor);
  }
  return { type: 'sampled', name, unit: 'microseconds', startValue, endValue, samples, weights };
}

export function speedscopeFile(profile: Profile, options: ExportOptions = {}): SpeedscopeFile {
  const selected = selectSamples(profile, options);
  const groups = groupFrames(profile, options);
  const grouped = groupStacks(profile, groups);

  const frames: SpeedscopeFrame[] = [];
  const frameOfGroup = new Int32Array(groups.name.length).fill(-1);
  const frameIndex = (group: number): number => {
    if (frameOfGroup[group] === -1) {
      const frame: SpeedscopeFrame = { name: groups.name[group] };
      if (groups.file[group]) frame.file = groups.file[group];
      const line = groups.line[group];
      if (line !== null) frame.line = line;
      frameOfGroup[group] = frames.push(frame) - 1;
    }
    return frameOfGroup[group];
  };
  // Samples of one stack share one array; JSON output is the same and memory is not.
  const stacks = new Map<number, number[]>();
  const stackOf = (sampleRow: number): number[] => {
    const g = grouped.ofStack[profile.samples.stack[sampleRow]];
    let stack = stacks.get(g);
    if (!stack) stacks.set(g, (stack = pathToRoot(grouped.prefix, g).map((s) => frameIndex(grouped.group[s]))));
    return stack;
  };

  const withPid = spansSeveralProcesses(profile, selected);
  const timelines = threadTimelines(profile, selected);
  const profiles = timelines.map((timeline) =>
    sampledProfile(profileName(profile, timeline.thread, withPid), timeline, stackOf, profile.capture.durationUs),
  );
  if (profiles.length === 0) {
    profiles.push(sampledProfile('no samples', { thread: -1, samples: [], start: [], end: [] }, stackOf, profile.capture.durationUs));
  }
  let busiest = 0;
  timelines.forEach((t, i) => {
    if (t.samples.length > timelines[busiest].samples.length) busiest = i;
  });

  return {
    $schema: SPEEDSCOPE_SCHEMA,
    shared: { frames },
    profiles,
    name: profile.capture.commandLine || 'periscope profile',
    activeProfileIndex: busiest,
    exporter: 'periscope',
  };
}

/** Throws PeriscopeError EXPORT_TOO_LARGE if the JSON cannot be one string. */
export function exportSpeedscope(profile: Profile, options: ExportOptions = {}): string {
  return buildOrTooLarge('speedscope', () => JSON.stringify(speedscopeFile(profile, options)));
}
