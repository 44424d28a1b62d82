// Views aggregate frames coarser than the frame table stores them: by function
// (ignoring the line) or without line numbers at all. A group is what one box in a
// flame graph or one row in a top table stands for.

import { type Profile, stringAt } from './model.ts';
import type { ViewOptions } from './view-options.ts';

export interface FrameGroups {
  /** Frame row → group. */
  groupOfFrame: Int32Array;
  name: string[];
  file: string[];
  /** Line to show, or null when lines are hidden or unknown (0). */
  line: (number | null)[];
}

export function groupFrames(profile: Profile, options: ViewOptions = {}): FrameGroups {
  const byFunction = Boolean(options.function || options.nolineno);
  const showLines = !options.nolineno;
  const frames = profile.frames;
  const groups: FrameGroups = { groupOfFrame: new Int32Array(frames.name.length), name: [], file: [], line: [] };
  const ids = new Map<string, number>();
  for (let f = 0; f < frames.name.length; f++) {
    const line = frames.line[f];
    const key = byFunction ? `${frames.name[f]},${frames.file[f]}` : `${frames.name[f]},${frames.file[f]},${line}`;
    let g = ids.get(key);
    if (g === undefined) {
      g = groups.name.push(stringAt(profile, frames.name[f])) - 1;
      groups.file.push(stringAt(profile, frames.file[f]));
      groups.line.push(showLines && line !== 0 ? line : null);
      ids.set(key, g);
    } else if (byFunction && showLines && line !== 0) {
      // The frame table only has the executing line, so the lowest one seen is the
      // closest stand-in for the function's first line that py-spy --function shows.
      const shown = groups.line[g];
      if (shown === null || line < shown) groups.line[g] = line;
    }
    groups.groupOfFrame[f] = g;
  }
  return groups;
}
