// speedscope's sandwich view of one function: who calls it (callers, the
// function at the root and its callers above it, outward) and what it calls
// (callees, the function at the root and everything below it), over every
// sample whose stack holds it. Both come back as profiles, so the one
// CallTree draws them like any capture.
import { ProfileBuilder } from './builder.ts';
import { NONE, type Profile, stringAt } from './model.ts';
import { sampleFilter, type SampleFilterOptions } from './sample-filter.ts';

export interface SandwichFunction {
  name: string;
  file: string;
}

export interface Sandwich {
  /** The function at each root, its callers outward above it (an inverted tree). */
  callers: Profile;
  /** The function at each root, what it called below it. */
  callees: Profile;
  /** Samples whose stack holds the function (each counted once, recursion or not). */
  samples: number;
}

export function sandwich(profile: Profile, fn: SandwichFunction, options: SampleFilterOptions = {}): Sandwich {
  const accepts = sampleFilter(options);
  const { frames, stacks } = profile;
  // Frame rows of the function (any line).
  const isFn: boolean[] = [];
  for (let f = 0; f < frames.name.length; f++) isFn[f] = stringAt(profile, frames.name[f]) === fn.name && stringAt(profile, frames.file[f]) === fn.file;
  const frameInput = (f: number) => ({ name: stringAt(profile, frames.name[f]), file: stringAt(profile, frames.file[f]), line: frames.line[f] });
  const callers = new ProfileBuilder({ ...profile.capture });
  const callees = new ProfileBuilder({ ...profile.capture });
  const thread = (b: ProfileBuilder, row: number) => b.thread(profile.threads.pid[row], profile.threads.tid[row], profile.threads.name[row] === NONE ? undefined : stringAt(profile, profile.threads.name[row]));
  let count = 0;
  const path: number[] = [];
  for (let i = 0; i < profile.samples.stack.length; i++) {
    if (!accepts(profile, i)) continue;
    // Leaf first.
    path.length = 0;
    for (let s = profile.samples.stack[i]; s !== NONE; s = stacks.prefix[s]) path.push(stacks.frame[s]);
    const innermost = path.findIndex((f) => isFn[f]);
    if (innermost < 0) continue;
    let outermost = innermost;
    for (let k = path.length - 1; k > innermost; k--) {
      if (isFn[path[k]]) {
        outermost = k;
        break;
      }
    }
    count++;
    const t = profile.samples.thread[i];
    const time = profile.samples.timeUs[i];
    // Callees: from the outermost call of the function down to the leaf.
    callees.addSample({ thread: thread(callees, t), timeUs: time, framesLeafFirst: path.slice(0, outermost + 1).map(frameInput) });
    // Callers: the innermost call at the root, then its callers outward: leaf first is the outermost caller.
    callers.addSample({ thread: thread(callers, t), timeUs: time, framesLeafFirst: path.slice(innermost).reverse().map(frameInput) });
  }
  return { callers: callers.profile, callees: callees.profile, samples: count };
}
