// The Gecko profile format (JSON), which the Firefox Profiler (profiler.firefox.com)
// opens: one thread per sampled thread, each with its own string, frame and stack
// tables, samples in milliseconds since meta.startTime (the capture's start).
//
// Frame locations are written `name (file:line)`: the Firefox Profiler reads that
// pattern as a function `name` in the source `file` at `line` (a frame without a
// line stays `name (file)`, shown whole as its name). Processes and threads are
// separate tracks there, so, like speedscope, no process/thread root frames.
//
// meta.version is 27, the oldest Gecko format whose layout is exactly this one
// (the frame table lost its `optimizations` column in 27; 28-36 changed only
// markers and the optional sources table, which this file leaves out): the
// Firefox Profiler upgrades older versions on load and refuses newer ones, so
// the lowest fitting version opens in the widest range of its releases.

import { NONE, type Profile, samplePeriodUs } from '../profile/model.ts';
import { groupFrames } from '../profile/frame-groups.ts';
import { groupStacks } from '../profile/grouped-stacks.ts';
import { processCommandLine, threadName } from '../profile/root-frames.ts';
import { selectSamples } from '../profile/sample-filter.ts';
import { buildOrTooLarge } from './build-or-too-large.ts';
import type { ExportOptions } from './options.ts';
import { threadTimelines } from './thread-timeline.ts';

export const GECKO_PROFILE_VERSION = 27;

export interface GeckoCategory {
  name: string;
  color: string;
  subcategories: string[];
}

/** Frames are Python code; "Other" is the grey default category the Firefox Profiler requires. */
export const GECKO_CATEGORIES: GeckoCategory[] = [
  { name: 'Python', color: 'yellow', subcategories: ['Other'] },
  { name: 'Other', color: 'grey', subcategories: ['Other'] },
];
const PYTHON_CATEGORY = 0;

/** [location (string index), relevantForJS, innerWindowID, implementation, line, column, category, subcategory] */
export type GeckoFrame = [number, boolean, number, null, number | null, null, number, number];

export interface GeckoThread {
  name: string;
  processType: string;
  processName: string;
  tid: number;
  pid: number;
  registerTime: number;
  unregisterTime: null;
  markers: {
    schema: { name: 0; startTime: 1; endTime: 2; phase: 3; category: 4; data: 5 };
    data: never[];
  };
  samples: {
    schema: { stack: 0; time: 1; eventDelay: 2 };
    /** [stack, milliseconds since meta.startTime, event delay] */
    data: [number | null, number, number][];
  };
  frameTable: {
    schema: { location: 0; relevantForJS: 1; innerWindowID: 2; implementation: 3; line: 4; column: 5; category: 6; subcategory: 7 };
    data: GeckoFrame[];
  };
  stackTable: {
    schema: { prefix: 0; frame: 1 };
    /** [prefix (an earlier row) or null, frame] */
    data: [number | null, number][];
  };
  stringTable: string[];
}

export interface GeckoMeta {
  version: number;
  /** Sampling interval, milliseconds. */
  interval: number;
  /** Milliseconds since the Unix epoch. */
  startTime: number;
  shutdownTime: null;
  profilingStartTime?: number;
  profilingEndTime?: number;
  processType: number;
  product: string;
  stackwalk: 0 | 1;
  debug: 0 | 1;
  gcpoison: 0 | 1;
  asyncstack: 0 | 1;
  /** Names are already resolved: nothing for the Firefox Profiler to symbolicate. */
  presymbolicated: true;
  categories: GeckoCategory[];
  markerSchema: never[];
}

export interface GeckoProfile {
  meta: GeckoMeta;
  libs: never[];
  pausedRanges: never[];
  processes: never[];
  threads: GeckoThread[];
}

/** `name (file:line)`, `name (file)` without a line, `name` without a file. */
export function geckoLocation(name: string, file: string, line: number | null): string {
  if (!file) return name;
  return line === null ? `${name} (${file})` : `${name} (${file}:${line})`;
}

function emptyThread(name: string, pid: number, tid: number, processName: string): GeckoThread {
  return {
    name,
    processType: 'default',
    processName,
    tid,
    pid,
    registerTime: 0,
    unregisterTime: null,
    markers: { schema: { name: 0, startTime: 1, endTime: 2, phase: 3, category: 4, data: 5 }, data: [] },
    samples: { schema: { stack: 0, time: 1, eventDelay: 2 }, data: [] },
    frameTable: {
      schema: { location: 0, relevantForJS: 1, innerWindowID: 2, implementation: 3, line: 4, column: 5, category: 6, subcategory: 7 },
      data: [],
    },
    stackTable: { schema: { prefix: 0, frame: 1 }, data: [] },
    stringTable: [],
  };
}

export function geckoProfile(profile: Profile, options: ExportOptions = {}): GeckoProfile {
  const selected = selectSamples(profile, options);
  const groups = groupFrames(profile, options);
  const grouped = groupStacks(profile, groups);
  const { pid: pids, tid: tids } = profile.threads;

  const threads = threadTimelines(profile, selected).map((timeline): GeckoThread => {
    const row = timeline.thread;
    const pid = pids[row];
    const thread = emptyThread(threadName(profile, row) || `Thread ${tids[row]}`, pid, tids[row], processCommandLine(profile, pid) ?? '');
    const strings = new Map<string, number>();
    const frameOfGroup = new Map<number, number>();
    const stackOfGrouped = new Map<number, number>();
    const stringIndex = (s: string): number => {
      let i = strings.get(s);
      if (i === undefined) {
        i = thread.stringTable.push(s) - 1;
        strings.set(s, i);
      }
      return i;
    };
    const frameIndex = (group: number): number => {
      let i = frameOfGroup.get(group);
      if (i === undefined) {
        const line = groups.line[group];
        const location = stringIndex(geckoLocation(groups.name[group], groups.file[group], line));
        i = thread.frameTable.data.push([location, false, 0, null, line, null, PYTHON_CATEGORY, 0]) - 1;
        frameOfGroup.set(group, i);
      }
      return i;
    };
    // Rows are added root first, so a prefix always precedes its stacks.
    const stackIndex = (g: number): number => {
      const missing: number[] = [];
      let s = g;
      let known: number | undefined;
      while (s !== NONE && (known = stackOfGrouped.get(s)) === undefined) {
        missing.push(s);
        s = grouped.prefix[s];
      }
      let prefix = known ?? null;
      for (let i = missing.length - 1; i >= 0; i--) {
        const row = thread.stackTable.data.push([prefix, frameIndex(grouped.group[missing[i]])]) - 1;
        stackOfGrouped.set(missing[i], row);
        prefix = row;
      }
      return prefix!;
    };
    timeline.samples.forEach((sample, i) => {
      const g = grouped.ofStack[profile.samples.stack[sample]];
      thread.samples.data.push([stackIndex(g), timeline.start[i] / 1000, 0]);
    });
    return thread;
  });

  if (threads.length === 0) {
    // The Firefox Profiler wants a thread to show; an empty one says there were no samples.
    const pid = profile.processes.pid[0] ?? 0;
    threads.push(emptyThread('no samples', pid, 0, processCommandLine(profile, pid) ?? ''));
  }

  const meta: GeckoMeta = {
    version: GECKO_PROFILE_VERSION,
    interval: samplePeriodUs(profile) / 1000,
    startTime: profile.capture.startTimeUs / 1000,
    shutdownTime: null,
    processType: 0,
    product: 'Periscope',
    stackwalk: 0,
    debug: 0,
    gcpoison: 0,
    asyncstack: 0,
    presymbolicated: true,
    categories: GECKO_CATEGORIES,
    markerSchema: [],
  };
  if (profile.capture.durationUs > 0) {
    meta.profilingStartTime = 0;
    meta.profilingEndTime = profile.capture.durationUs / 1000;
  }
  return { meta, libs: [], pausedRanges: [], processes: [], threads };
}

/** Throws PeriscopeError EXPORT_TOO_LARGE if the JSON cannot be one string. */
export function exportGecko(profile: Profile, options: ExportOptions = {}): string {
  return buildOrTooLarge('Gecko profile', () => JSON.stringify(geckoProfile(profile, options)));
}
