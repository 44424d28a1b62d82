import { NONE, type Profile, SampleFlag } from './model.ts';
import type { ViewOptions } from './view-options.ts';

/**
 * Rows of the samples that pass the idle / GIL / thread filters, in table order.
 * Samples without Python frames never pass: there is nothing to attribute them to.
 */
export function selectSamples(profile: Profile, options: ViewOptions = {}): number[] {
  const { stack, thread, flags } = profile.samples;
  const threads = options.threadRows ? new Set(options.threadRows) : undefined;
  const selected: number[] = [];
  for (let i = 0; i < stack.length; i++) {
    if (stack[i] === NONE) continue;
    if (!options.idle && flags[i] & SampleFlag.Idle) continue;
    if (options.gil && !(flags[i] & SampleFlag.Gil)) continue;
    if (threads && !threads.has(thread[i])) continue;
    selected.push(i);
  }
  return selected;
}
