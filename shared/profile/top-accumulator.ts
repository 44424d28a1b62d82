// The live version of py-spy top's table, for `periscope top` and the web
// client's live view: the profile only ever grows, so each refresh folds in the
// samples appended since the previous one (cost: new samples × stack depth)
// instead of re-aggregating everything.
//
// Frames are grouped by FrameGrouper and samples filtered by sampleFilter(),
// as in every other view. Two sets of counts are kept per row: the current window (what %Own/%Total
// show: the samples since the last endWindow()) and the cumulative ones (what
// OwnTime/TotalTime show: everything since construction or reset()). The
// header's figures are kept the same two ways (lastWindow, cumulativeWindow),
// so a finished capture can show its percentages over the whole capture. Rows are
// tallied per line and per function at the same time, so switching between
// the two at run time is instant and loses no history.

import { NONE, type Profile, SampleFlag, stringAt } from './model.ts';
import { FrameGrouper } from './frame-groups.ts';
import { sampleFilter, type SampleFilterOptions } from './sample-filter.ts';

export type TopAccumulatorOptions = SampleFilterOptions;

export type TopSortKey = 'ownPercent' | 'totalPercent' | 'ownTime' | 'totalTime';

export interface LiveTopRow {
  function: string;
  file: string;
  /**
   * Line in line mode; in function mode the lowest line seen for the function
   * (FrameGrouper's rule: the profile has no co_firstlineno, and the lowest
   * sampled line is the closest stand-in for the definition line -- never the
   * line sampled last). null when unknown.
   */
  line: number | null;
  /** Samples of the last closed window with this row as the innermost frame. */
  windowOwn: number;
  /** Samples of the last closed window with this row anywhere on the stack (once per sample). */
  windowTotal: number;
  /** Like windowOwn, since construction or the last reset(). */
  cumulativeOwn: number;
  /** Like windowTotal, since construction or the last reset(). */
  cumulativeTotal: number;
}

/** What a closed window saw, for the header; percentages' denominators. */
export interface TopWindow {
  /** Samples that passed the filters: the denominator of %Own and %Total. */
  counted: number;
  /** Every sample taken, idle or not, with or without Python frames. */
  all: number;
  /** Of `all`, those whose thread held the GIL. */
  gil: number;
  /** Of `all`, those whose thread was not idle. */
  active: number;
  /** Distinct threads and processes sampled. */
  threads: number;
  processes: number;
}

function emptyWindow(): TopWindow {
  return { counted: 0, all: 0, gil: 0, active: 0, threads: 0, processes: 0 };
}

/** Own/total counts per frame group, for one way of grouping frames (per line or per function). */
class RowTally {
  readonly groups: FrameGrouper;
  windowOwn: number[] = [];
  windowTotal: number[] = [];
  closedOwn: number[] = [];
  closedTotal: number[] = [];
  readonly cumulativeOwn: number[] = [];
  readonly cumulativeTotal: number[] = [];
  // stamp[g] === visit: group g was already counted for the stack being walked,
  // so recursion counts once per sample towards total.
  readonly #stamp: number[] = [];
  #visit = 0;

  constructor(byFunction: boolean) {
    this.groups = new FrameGrouper(byFunction);
  }

  /** Groups frames appended to the frame table since the last call. */
  catchUp(profile: Profile): void {
    this.groups.catchUp(profile);
    for (let g = this.#stamp.length; g < this.groups.count; g++) {
      for (const column of [this.windowOwn, this.windowTotal, this.closedOwn, this.closedTotal, this.cumulativeOwn, this.cumulativeTotal]) column.push(0);
      this.#stamp.push(-1);
    }
  }

  addStack(profile: Profile, stack: number, count: number): void {
    const { prefix, frame } = profile.stacks;
    const visit = this.#visit++;
    const groupOfFrame = this.groups.groupOfFrame;
    const leaf = groupOfFrame[frame[stack]];
    this.windowOwn[leaf] += count;
    this.cumulativeOwn[leaf] += count;
    for (let s = stack; s !== NONE; s = prefix[s]) {
      const k = groupOfFrame[frame[s]];
      if (this.#stamp[k] === visit) continue;
      this.#stamp[k] = visit;
      this.windowTotal[k] += count;
      this.cumulativeTotal[k] += count;
    }
  }

  endWindow(): void {
    this.closedOwn = this.windowOwn;
    this.closedTotal = this.windowTotal;
    this.windowOwn = new Array<number>(this.groups.count).fill(0);
    this.windowTotal = new Array<number>(this.groups.count).fill(0);
  }

  reset(): void {
    this.cumulativeOwn.fill(0);
    this.cumulativeTotal.fill(0);
  }
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

const SORT_COLUMNS: Record<TopSortKey, (r: LiveTopRow) => number> = {
  ownPercent: (r) => r.windowOwn,
  totalPercent: (r) => r.windowTotal,
  ownTime: (r) => r.cumulativeOwn,
  totalTime: (r) => r.cumulativeTotal,
};

// After the chosen column, the others break ties in py-spy's column order, so
// the order is stable from one refresh to the next.
const TIE_BREAK: TopSortKey[] = ['ownPercent', 'totalPercent', 'ownTime', 'totalTime'];

export class TopAccumulator {
  readonly profile: Profile;
  readonly options: TopAccumulatorOptions;
  readonly #byLine = new RowTally(false);
  readonly #byFunction = new RowTally(true);
  readonly #accepts: (profile: Profile, row: number) => boolean;
  #next = 0;
  #window = emptyWindow();
  #windowThreads = new Set<number>();
  #windowPids = new Set<number>();
  #closed = emptyWindow();
  #total = emptyWindow();
  #totalThreads = new Set<number>();
  #totalPids = new Set<number>();

  /** Starts at sample row `fromSample` (default: the first); earlier samples are never counted. */
  constructor(profile: Profile, options: TopAccumulatorOptions = {}, fromSample = 0) {
    this.profile = profile;
    this.options = options;
    this.#accepts = sampleFilter(options);
    this.#next = fromSample;
  }

  /** Row of the next sample ingest() will read. */
  get nextSample(): number {
    return this.#next;
  }

  /** Every sample taken since construction or reset(), before filters. */
  get cumulativeSamples(): number {
    return this.#total.all;
  }

  /**
   * Like lastWindow, over every sample ingested since construction or reset():
   * the denominators of %Own/%Total over the whole capture.
   */
  get cumulativeWindow(): TopWindow {
    return { ...this.#total, threads: this.#totalThreads.size, processes: this.#totalPids.size };
  }

  /** Counts the samples appended since the previous call into the current window; returns how many. */
  ingest(): number {
    const profile = this.profile;
    const { stack, thread, flags } = profile.samples;
    const end = stack.length;
    if (this.#next >= end) return 0;
    this.#byLine.catchUp(profile);
    this.#byFunction.catchUp(profile);
    const w = this.#window;
    const total = this.#total;
    // Sampling repeats the same stacks over and over: walk each distinct one once.
    const stackCounts = new Map<number, number>();
    for (let i = this.#next; i < end; i++) {
      const f = flags[i];
      const gil = f & SampleFlag.Gil ? 1 : 0;
      const active = f & SampleFlag.Idle ? 0 : 1;
      const pid = profile.threads.pid[thread[i]];
      w.all++;
      w.gil += gil;
      w.active += active;
      total.all++;
      total.gil += gil;
      total.active += active;
      this.#windowThreads.add(thread[i]);
      this.#windowPids.add(pid);
      this.#totalThreads.add(thread[i]);
      this.#totalPids.add(pid);
      if (!this.#accepts(profile, i)) continue;
      w.counted++;
      total.counted++;
      stackCounts.set(stack[i], (stackCounts.get(stack[i]) ?? 0) + 1);
    }
    for (const [s, count] of stackCounts) {
      this.#byLine.addStack(profile, s, count);
      this.#byFunction.addStack(profile, s, count);
    }
    const added = end - this.#next;
    this.#next = end;
    return added;
  }

  /** Closes the current window: its counts become what rows() and lastWindow report. */
  endWindow(): TopWindow {
    this.#window.threads = this.#windowThreads.size;
    this.#window.processes = this.#windowPids.size;
    this.#closed = this.#window;
    this.#window = emptyWindow();
    this.#windowThreads = new Set();
    this.#windowPids = new Set();
    this.#byLine.endWindow();
    this.#byFunction.endWindow();
    return this.#closed;
  }

  /** The last window closed by endWindow() (all zero before the first). */
  get lastWindow(): TopWindow {
    return this.#closed;
  }

  /** Samples counted (after filters) in the window still open. */
  get openWindowCounted(): number {
    return this.#window.counted;
  }

  /** Forgets the cumulative counts (OwnTime/TotalTime, cumulativeWindow); windows are unaffected. */
  reset(): void {
    this.#byLine.reset();
    this.#byFunction.reset();
    this.#total = emptyWindow();
    this.#totalThreads = new Set();
    this.#totalPids = new Set();
  }

  /** Rows with anything in the last closed window or since the last reset, best first by `sortBy`. */
  rows(sortBy: TopSortKey = 'ownTime', byFunction = false): LiveTopRow[] {
    const tally = byFunction ? this.#byFunction : this.#byLine;
    const rows: LiveTopRow[] = [];
    const { groups } = tally;
    for (let k = 0; k < groups.count; k++) {
      if (tally.closedTotal[k] === 0 && tally.cumulativeTotal[k] === 0) continue;
      rows.push({
        function: stringAt(this.profile, groups.name[k]),
        file: stringAt(this.profile, groups.file[k]),
        line: groups.line[k] === 0 ? null : groups.line[k],
        windowOwn: tally.closedOwn[k],
        windowTotal: tally.closedTotal[k],
        cumulativeOwn: tally.cumulativeOwn[k],
        cumulativeTotal: tally.cumulativeTotal[k],
      });
    }
    const order = [sortBy, ...TIE_BREAK.filter((c) => c !== sortBy)].map((c) => SORT_COLUMNS[c]);
    rows.sort((a, b) => {
      for (const column of order) {
        const d = column(b) - column(a);
        if (d !== 0) return d;
      }
      return compareStrings(a.function, b.function) || compareStrings(a.file, b.file) || (a.line ?? 0) - (b.line ?? 0);
    });
    return rows;
  }
}
