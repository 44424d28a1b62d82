// Two captures compared, the way both of Periscope's founding stories ended
// (before and after a fix). The current capture's call tree gives the boxes;
// each box carries the baseline's samples at the same path. Paths match by
// what a reader sees — kind, function, file and line — never by pid, so
// processes are merged. One matching (matchBaseline) serves the browser's
// differential flame graph and the SVG exporter; diffTopRows is the top
// table's before/after/delta.
import { CallTree, type CallTreeNode, type CallTreeOptions, plainNodes } from './call-tree.ts';
import type { Profile } from './model.ts';
import { TopAccumulator } from './top-accumulator.ts';
import type { SampleFilterOptions } from './sample-filter.ts';

export interface BaselineMatch {
  /** Per node of the current tree: samples through the same path in the baseline. */
  baseline: Float64Array;
  baselineTotal: number;
  currentTotal: number;
  /** Baseline samples on paths the current capture no longer has (in no box). */
  vanished: number;
}

/** By function a box shows each capture's lowest line of it, which may differ: match on name and file then. */
function boxKey(tree: CallTree, n: number): string {
  const line = tree.groups.byFunction ? '' : (tree.line(n) ?? '');
  return `${tree.kind[n]}\0${tree.name(n)}\0${tree.file(n)}\0${line}`;
}

/** Both trees fully ingested; the options they were built with must agree. */
export function matchBaseline(current: CallTree, baseline: CallTree): BaselineMatch {
  const out = new Float64Array(current.nodeCount);
  out[0] = baseline.total[0];
  let vanished = 0;
  // Iterative: Python stacks can be thousands deep.
  const pending: [number, number][] = [[0, 0]];
  while (pending.length > 0) {
    const [c, b] = pending.pop()!;
    const unmatched = new Map<string, number>();
    for (let k = baseline.firstChild[b]; k !== -1; k = baseline.nextSibling[k]) unmatched.set(boxKey(baseline, k), k);
    for (let k = current.firstChild[c]; k !== -1; k = current.nextSibling[k]) {
      const key = boxKey(current, k);
      const match = unmatched.get(key);
      if (match === undefined) continue;
      unmatched.delete(key);
      out[k] = baseline.total[match];
      pending.push([k, match]);
    }
    for (const gone of unmatched.values()) vanished += baseline.total[gone];
  }
  return { baseline: out, baselineTotal: baseline.total[0], currentTotal: current.total[0], vanished };
}

/** The options a comparison builds both trees with: processes always merged. */
export type DiffOptions = Omit<CallTreeOptions, 'mergeProcesses'>;

/** Both captures' trees, built and matched. */
export function compareProfiles(baseline: Profile, current: Profile, options: DiffOptions = {}): { current: CallTree; baseline: CallTree; match: BaselineMatch } {
  const merged = { ...options, mergeProcesses: true };
  const before = new CallTree(baseline, merged);
  const after = new CallTree(current, merged);
  before.ingest();
  after.ingest();
  return { current: after, baseline: before, match: matchBaseline(after, before) };
}

/** A node's share of its capture, in percent, before and after, and the change in points. */
export function shareChange(match: BaselineMatch, baselineSamples: number, currentSamples: number): { before: number; after: number; delta: number } {
  const before = match.baselineTotal > 0 ? (100 * baselineSamples) / match.baselineTotal : 0;
  const after = match.currentTotal > 0 ? (100 * currentSamples) / match.currentTotal : 0;
  return { before, after, delta: after - before };
}

/** A change of this many percentage points (or more) gets the deepest colour. */
const FULL_COLOUR_POINTS = 10;

/**
 * A box's colour for a change in share: pale when unchanged, toward red as it
 * grew and toward blue as it shrank. The SVG and the browser draw with this.
 */
export function diffColour(deltaPoints: number): string {
  const k = Math.min(1, Math.abs(deltaPoints) / FULL_COLOUR_POINTS);
  const fade = Math.round(235 - 175 * k);
  return deltaPoints >= 0 ? `rgb(250,${fade},${fade})` : `rgb(${fade},${fade},250)`;
}

/** "+1.50" / "-0.25" / "0.00": a change in points, signed. */
export function signedPoints(points: number): string {
  const text = points.toFixed(2);
  return points > 0 ? `+${text}` : text === '-0.00' ? '0.00' : text;
}

export interface DiffNode extends CallTreeNode {
  /** Samples through the same path in the baseline (0 when the path is new). */
  baseline: number;
  children: DiffNode[];
}

/** The comparison as plain nodes, for exporters that walk it once. */
export function diffCallTrees(baseline: Profile, current: Profile, options: DiffOptions = {}): { root: DiffNode; match: BaselineMatch } {
  const { current: tree, match } = compareProfiles(baseline, current, options);
  const root = plainNodes(tree, (n, base): DiffNode => ({ ...base, baseline: match.baseline[n], children: [] }));
  return { root, match };
}

export interface TopDiffRow {
  function: string;
  file: string;
  line: number | null;
  /** Shares of each capture's counted samples, in percent. */
  ownBefore: number;
  ownAfter: number;
  totalBefore: number;
  totalAfter: number;
}

/**
 * The top table of both captures side by side: one row per function (or
 * line) seen in either, own and total shares before and after.
 */
export function diffTopRows(baseline: Profile, current: Profile, options: SampleFilterOptions = {}, byFunction = false): TopDiffRow[] {
  const rows = new Map<string, TopDiffRow>();
  const side = (profile: Profile, own: 'ownBefore' | 'ownAfter', total: 'totalBefore' | 'totalAfter') => {
    const top = new TopAccumulator(profile, options);
    top.ingest();
    const counted = top.cumulativeSamples;
    for (const r of top.rows('ownTime', byFunction)) {
      // By function the shown line is each capture's lowest: match on name and file only.
      const key = byFunction ? `${r.function}\0${r.file}` : `${r.function}\0${r.file}\0${r.line ?? ''}`;
      let row = rows.get(key);
      if (!row) rows.set(key, (row = { function: r.function, file: r.file, line: r.line, ownBefore: 0, ownAfter: 0, totalBefore: 0, totalAfter: 0 }));
      else if (r.line !== null && (row.line === null || r.line < row.line)) row.line = r.line;
      if (counted > 0) {
        row[own] = (100 * r.cumulativeOwn) / counted;
        row[total] = (100 * r.cumulativeTotal) / counted;
      }
    }
  };
  side(baseline, 'ownBefore', 'totalBefore');
  side(current, 'ownAfter', 'totalAfter');
  return [...rows.values()];
}
