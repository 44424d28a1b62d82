// The browser's flame graph reads shared/profile's CallTree, the same tree the
// SVG and collapsed-stack exporters walk; this module adds what only the
// browser does with it: search.

import { type CallTree, NodeKind } from '../../../shared/profile/call-tree.ts';

/**
 * Search over a model: which boxes match (name or file, case-insensitive
 * substring), and how many samples that is without double counting nested matches.
 */
export class FlameSearch {
  readonly query: string;
  readonly #needle: string;
  #groupMatch = new Int8Array(0);
  #labelMatch = new Map<number, boolean>();

  constructor(query: string) {
    this.query = query;
    this.#needle = query.toLowerCase();
  }

  get active(): boolean {
    return this.#needle.length > 0;
  }

  matches(model: CallTree, node: number): boolean {
    if (!this.#needle) return false;
    const ref = model.ref[node];
    if (model.kind[node] === NodeKind.Root) return false;
    if (model.kind[node] !== NodeKind.Frame) {
      let m = this.#labelMatch.get(ref);
      if (m === undefined) this.#labelMatch.set(ref, (m = model.labels[ref].toLowerCase().includes(this.#needle)));
      return m;
    }
    if (ref >= this.#groupMatch.length) {
      const grown = new Int8Array(Math.max(model.groups.count, this.#groupMatch.length * 2, 64));
      grown.set(this.#groupMatch);
      this.#groupMatch = grown;
    }
    let m = this.#groupMatch[ref];
    if (m === 0) {
      const s = model.profile.strings;
      const name = s[model.groups.name[ref]].toLowerCase();
      const file = s[model.groups.file[ref]].toLowerCase();
      m = name.includes(this.#needle) || file.includes(this.#needle) ? 1 : 2;
      this.#groupMatch[ref] = m;
    }
    return m === 1;
  }

  /** Samples under `root` that pass through at least one match. */
  matchedSamples(model: CallTree, root: number): number {
    if (!this.#needle) return 0;
    let sum = 0;
    const stack = [root];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (this.matches(model, n)) {
        sum += model.total[n];
        continue;
      }
      for (let c = model.firstChild[n]; c !== -1; c = model.nextSibling[c]) stack.push(c);
    }
    return sum;
  }
}
