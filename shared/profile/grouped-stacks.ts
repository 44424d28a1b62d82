// The stack trie re-keyed by frame group: stacks that differ only in lines merge
// when aggregating by function, so views count them as one path.

import { NONE, type Profile } from './model.ts';
import type { FrameGroups } from './frame-groups.ts';

export interface GroupedStacks {
  /** Profile stack row → grouped stack row. */
  ofStack: Int32Array;
  /** Like the profile's stack table: prefix precedes its stacks, NONE at the root. */
  prefix: number[];
  group: number[];
}

export function groupStacks(profile: Profile, groups: FrameGroups): GroupedStacks {
  const { prefix, frame } = profile.stacks;
  const result: GroupedStacks = { ofStack: new Int32Array(prefix.length), prefix: [], group: [] };
  const groupCount = groups.name.length;
  // A numeric (parent, group) key is much faster than a string while it stays exact.
  const numericKeys = (prefix.length + 1) * groupCount < Number.MAX_SAFE_INTEGER;
  const ids = new Map<number | string, number>();
  // Prefixes always precede their stacks, so one forward pass sees every parent first.
  for (let s = 0; s < prefix.length; s++) {
    const parent = prefix[s] === NONE ? NONE : result.ofStack[prefix[s]];
    const group = groups.groupOfFrame[frame[s]];
    const key = numericKeys ? (parent + 1) * groupCount + group : `${parent},${group}`;
    let id = ids.get(key);
    if (id === undefined) {
      id = result.prefix.push(parent) - 1;
      result.group.push(group);
      ids.set(key, id);
    }
    result.ofStack[s] = id;
  }
  return result;
}

/** Grouped stack rows from the root down to `stack` inclusive. */
export function pathToRoot(prefix: ArrayLike<number>, stack: number): number[] {
  const path: number[] = [];
  for (let s = stack; s !== NONE; s = prefix[s]) path.push(s);
  return path.reverse();
}
