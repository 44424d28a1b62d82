// py-spy top's table: per function (or per line), how many samples were spent in it
// directly (own) and anywhere below it on the stack (total).

import type { Profile } from './model.ts';
import { groupFrames } from './frame-groups.ts';
import { groupStacks } from './grouped-stacks.ts';
import { selectSamples } from './sample-filter.ts';
import type { ViewOptions } from './view-options.ts';

export interface TopRow {
  function: string;
  file: string;
  /** null when aggregating without line numbers or when the line is unknown. */
  line: number | null;
  /** Samples where this was the innermost frame. */
  ownSamples: number;
  /** Samples where this appeared anywhere on the stack (counted once per sample under recursion). */
  totalSamples: number;
}

export interface TopTable {
  /** Samples that passed the filters: the denominator for percentages. */
  sampleCount: number;
  /** Most own samples first, then most total samples. */
  rows: TopRow[];
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Rows are per line by default, per function with `options.function` or `options.nolineno`. */
export function topTable(profile: Profile, options: ViewOptions = {}): TopTable {
  const samples = selectSamples(profile, options);
  const groups = groupFrames(profile, options);
  const grouped = groupStacks(profile, groups);

  const stackCounts = new Map<number, number>();
  for (const s of samples) {
    const stack = grouped.ofStack[profile.samples.stack[s]];
    stackCounts.set(stack, (stackCounts.get(stack) ?? 0) + 1);
  }

  const own = new Float64Array(groups.name.length);
  const total = new Float64Array(groups.name.length);
  // lastSeen[g] === visit means g was already counted for the stack being walked.
  const lastSeen = new Int32Array(groups.name.length).fill(-1);
  let visit = 0;
  for (const [stack, count] of stackCounts) {
    own[grouped.group[stack]] += count;
    for (let s = stack; s !== -1; s = grouped.prefix[s]) {
      const g = grouped.group[s];
      if (lastSeen[g] === visit) continue;
      lastSeen[g] = visit;
      total[g] += count;
    }
    visit++;
  }

  const rows: TopRow[] = [];
  for (let g = 0; g < groups.name.length; g++) {
    if (total[g] === 0) continue;
    rows.push({ function: groups.name[g], file: groups.file[g], line: groups.line[g], ownSamples: own[g], totalSamples: total[g] });
  }
  rows.sort(
    (a, b) =>
      b.ownSamples - a.ownSamples ||
      b.totalSamples - a.totalSamples ||
      compareStrings(a.function, b.function) ||
      compareStrings(a.file, b.file) ||
      (a.line ?? 0) - (b.line ?? 0),
  );
  return { sampleCount: samples.length, rows };
}
