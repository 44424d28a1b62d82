// Trace Event Format (the JSON object form) for Perfetto and chrome://tracing.
// Consecutive samples of a thread that share a stack prefix become one complete ("X")
// event per frame, so a function running across many samples is one long slice.

import type { Profile } from '../profile/model.ts';
import { type FrameGroups, groupFrames } from '../profile/frame-groups.ts';
import { type GroupedStacks, groupStacks, pathToRoot } from '../profile/grouped-stacks.ts';
import { processCommandLine, threadName } from '../profile/root-frames.ts';
import { selectSamples } from '../profile/sample-filter.ts';
import { buildOrTooLarge } from './build-or-too-large.ts';
import type { ExportOptions } from './options.ts';
import { type ThreadTimeline, threadTimelines } from './thread-timeline.ts';

export interface CompleteEvent {
  ph: 'X';
  name: string;
  cat: 'python';
  /** Microseconds since capture start. */
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  args: { file: string; line: number | null };
}

export interface MetadataEvent {
  ph: 'M';
  name: 'process_name' | 'thread_name';
  pid: number;
  tid: number;
  args: { name: string };
}

export type TraceEvent = CompleteEvent | MetadataEvent;

const EVENTS_PER_PART = 2000;

interface Context {
  profile: Profile;
  groups: FrameGroups;
  grouped: GroupedStacks;
  /** Root-first path of each grouped stack, computed once per stack. */
  paths: Map<number, number[]>;
}

/**
 * A thread's slices in the order they open, which is time order with parents before
 * children that start with them: what viewers expect, with no sort needed.
 */
function threadSlices(ctx: Context, timeline: ThreadTimeline): CompleteEvent[] {
  const { profile, groups, grouped } = ctx;
  const pid = profile.threads.pid[timeline.thread];
  const tid = profile.threads.tid[timeline.thread];
  const slices: CompleteEvent[] = [];
  const open: { groupedStack: number; event: CompleteEvent }[] = [];
  const closeDownTo = (depth: number, at: number): void => {
    while (open.length > depth) {
      const { event } = open.pop()!;
      event.dur = at - event.ts;
    }
  };

  let cursor = -Infinity;
  for (let i = 0; i < timeline.samples.length; i++) {
    if (timeline.start[i] > cursor) closeDownTo(0, cursor);
    const start = Math.max(timeline.start[i], cursor);
    const g = grouped.ofStack[profile.samples.stack[timeline.samples[i]]];
    let path = ctx.paths.get(g);
    if (!path) ctx.paths.set(g, (path = pathToRoot(grouped.prefix, g)));
    let common = 0;
    while (common < open.length && common < path.length && open[common].groupedStack === path[common]) common++;
    closeDownTo(common, start);
    for (let d = common; d < path.length; d++) {
      const group = grouped.group[path[d]];
      const event: CompleteEvent = {
        ph: 'X',
        name: groups.name[group],
        cat: 'python',
        ts: start,
        dur: 0,
        pid,
        tid,
        args: { file: groups.file[group], line: groups.line[group] },
      };
      slices.push(event);
      open.push({ groupedStack: path[d], event });
    }
    cursor = Math.max(cursor, timeline.end[i]);
  }
  closeDownTo(0, cursor);
  return slices;
}

function metadataEvents(profile: Profile, timelines: ThreadTimeline[]): MetadataEvent[] {
  const events: MetadataEvent[] = [];
  const namedPids = new Set<number>();
  for (const { thread } of timelines) {
    const pid = profile.threads.pid[thread];
    const tid = profile.threads.tid[thread];
    if (!namedPids.has(pid)) {
      namedPids.add(pid);
      events.push({ ph: 'M', name: 'process_name', pid, tid: 0, args: { name: processCommandLine(profile, pid) || `process ${pid}` } });
    }
    events.push({ ph: 'M', name: 'thread_name', pid, tid, args: { name: threadName(profile, thread) || `thread ${tid}` } });
  }
  return events;
}

function otherData(profile: Profile): Record<string, string | number> {
  const capture = profile.capture;
  return {
    commandLine: capture.commandLine,
    startTime: capture.startTimeUs > 0 ? new Date(capture.startTimeUs / 1000).toISOString() : '',
    rateHz: capture.rateHz,
    durationUs: capture.durationUs,
    lateSamples: capture.lateSamples,
    errors: profile.errors.timeUs.length,
  };
}

/**
 * The trace as consecutive pieces of JSON text, for streaming to a file or HTTP
 * response: busy captures with ever-changing stacks can outgrow a single string.
 */
export function* chromeTraceParts(profile: Profile, options: ExportOptions = {}): Generator<string> {
  const groups = groupFrames(profile, options);
  const ctx: Context = { profile, groups, grouped: groupStacks(profile, groups), paths: new Map() };
  const timelines = threadTimelines(profile, selectSamples(profile, options));

  yield `{"displayTimeUnit":"ms","otherData":${JSON.stringify(otherData(profile))},"traceEvents":[`;
  let first = true;
  const part = (events: TraceEvent[]): string => {
    const text = events.map((e) => JSON.stringify(e)).join(',');
    const out = first || text === '' ? text : `,${text}`;
    if (text !== '') first = false;
    return out;
  };
  yield part(metadataEvents(profile, timelines));
  for (const timeline of timelines) {
    const slices = threadSlices(ctx, timeline);
    for (let i = 0; i < slices.length; i += EVENTS_PER_PART) yield part(slices.slice(i, i + EVENTS_PER_PART));
  }
  yield ']}';
}

/** Throws PeriscopeError EXPORT_TOO_LARGE if the trace cannot be one string; use chromeTraceParts then. */
export function exportChromeTrace(profile: Profile, options: ExportOptions = {}): string {
  return buildOrTooLarge('Chrome trace', () => [...chromeTraceParts(profile, options)].join(''));
}
