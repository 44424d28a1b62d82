// Which samples a view counts: py-spy's idle and GIL filters plus a thread
// selection. sampleFilter() is the one rule; exporters select all rows at once,
// the live top table and flame graph test each sample as it arrives.

import { NONE, type Profile, SampleFlag } from './model.ts';
import type { ViewOptions } from './view-options.ts';
import type { CaptureMode } from '../capture-states.ts';

export type SampleFilterOptions = Pick<ViewOptions, 'idle' | 'gil' | 'threadRows'>;

/**
 * Whether sample `row` passes the idle / GIL / thread filters. Samples without
 * Python frames never pass: there is nothing to attribute them to.
 */
export function sampleFilter(options: SampleFilterOptions = {}): (profile: Profile, row: number) => boolean {
  const idle = Boolean(options.idle);
  const gil = Boolean(options.gil);
  const threads = options.threadRows ? new Set(options.threadRows) : undefined;
  return (profile, row) => {
    const { stack, thread, flags } = profile.samples;
    if (stack[row] === NONE) return false;
    if (!idle && flags[row] & SampleFlag.Idle) return false;
    if (gil && !(flags[row] & SampleFlag.Gil)) return false;
    return !threads || threads.has(thread[row]);
  };
}

/** Rows of the samples that pass the filters, in table order. */
export function selectSamples(profile: Profile, options: SampleFilterOptions = {}): number[] {
  const accepts = sampleFilter(options);
  const selected: number[] = [];
  for (let i = 0; i < profile.samples.stack.length; i++) if (accepts(profile, i)) selected.push(i);
  return selected;
}

/** Whether a capture in `mode` keeps a sample with these SampleFlag bits. */
export function keptByMode(mode: CaptureMode, flags: number): boolean {
  if (mode === 'cpu') return (flags & SampleFlag.Idle) === 0;
  if (mode === 'gil') return (flags & SampleFlag.Gil) !== 0;
  return true;
}
