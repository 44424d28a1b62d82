// Views aggregate frames coarser than the frame table stores them: by function
// (ignoring the line) or without line numbers at all. A group is what one box in a
// flame graph or one row in a top table stands for. FrameGrouper is the one
// place that keys frames; the exporters, the live top table and the browser's
// flame graph all use it, so a downloaded SVG and the live views group alike.

import { type Profile, stringAt } from './model.ts';
import type { ViewOptions } from './view-options.ts';

/** Frame rows → groups, kept up to date as the (append-only) frame table grows. */
export class FrameGrouper {
  readonly byFunction: boolean;
  /** Frame row → group. */
  readonly groupOfFrame: number[] = [];
  /** String-table rows of each group's name and file. */
  readonly name: number[] = [];
  readonly file: number[] = [];
  /** Each group's line; 0 when unknown. By function: the lowest line seen. */
  readonly line: number[] = [];
  readonly #ids = new Map<string, number>();

  constructor(byFunction: boolean) {
    this.byFunction = byFunction;
  }

  get count(): number {
    return this.name.length;
  }

  /** Groups the frames appended since the last call. */
  catchUp(profile: Profile): void {
    const frames = profile.frames;
    for (let f = this.groupOfFrame.length; f < frames.name.length; f++) {
      const line = frames.line[f];
      const key = this.byFunction ? `${frames.name[f]},${frames.file[f]}` : `${frames.name[f]},${frames.file[f]},${line}`;
      let g = this.#ids.get(key);
      if (g === undefined) {
        g = this.name.push(frames.name[f]) - 1;
        this.file.push(frames.file[f]);
        this.line.push(line);
        this.#ids.set(key, g);
      } else if (line !== 0 && (this.line[g] === 0 || line < this.line[g])) {
        // The frame table only has the executing line, so the lowest one seen is the
        // closest stand-in for the function's first line that py-spy --function shows.
        this.line[g] = line;
      }
      this.groupOfFrame.push(g);
    }
  }
}

/** Whether a view groups by function: asked for, or implied by hiding line numbers. */
export function groupsByFunction(options: ViewOptions): boolean {
  return Boolean(options.function || options.nolineno);
}

export interface FrameGroups {
  /** Frame row → group. */
  groupOfFrame: Int32Array;
  name: string[];
  file: string[];
  /** Line to show, or null when lines are hidden or unknown (0). */
  line: (number | null)[];
}

/** Every frame of the profile grouped at once, with names resolved, for the exporters. */
export function groupFrames(profile: Profile, options: ViewOptions = {}): FrameGroups {
  const grouper = new FrameGrouper(groupsByFunction(options));
  grouper.catchUp(profile);
  const showLines = !options.nolineno;
  return {
    groupOfFrame: Int32Array.from(grouper.groupOfFrame),
    name: grouper.name.map((s) => stringAt(profile, s)),
    file: grouper.file.map((s) => stringAt(profile, s)),
    line: grouper.line.map((l) => (showLines && l !== 0 ? l : null)),
  };
}
