// The flame graph's call tree, built incrementally: the profile only grows, so
// each ingest() folds in the samples appended since the last one. A sample
// costs one array lookup (its stack's node is memoized per thread context);
// totals are propagated once per distinct stack per batch, not per sample.
//
// Nodes live in struct-of-arrays columns. Children are kept unsorted and sorted
// lazily (by name, file, line — flamegraph.pl's order, so the picture is stable
// as it grows) only for the nodes a render actually visits.
//
// Which samples count, how frames group into boxes and which root boxes sit
// above a thread are shared/profile's rules (sampleFilter, FrameGrouper,
// rootFrames), the same the SVG exporter uses.

import { NONE, type Profile, stringAt } from '../../../shared/profile/model.ts';
import { FrameGrouper } from '../../../shared/profile/frame-groups.ts';
import { rootFrames, rootKey } from '../../../shared/profile/root-frames.ts';
import { sampleFilter } from '../../../shared/profile/sample-filter.ts';
import type { ViewOptions } from '../../../shared/profile/view-options.ts';

/** py-spy's --idle, --gil, --function and --threads, and a thread selection. */
export type FlameOptions = Required<Pick<ViewOptions, 'idle' | 'gil' | 'function' | 'threads'>> & Pick<ViewOptions, 'threadRows'>;

export const NodeKind = { Root: 0, Process: 1, Thread: 2, Frame: 3 } as const;

interface Context {
  top: number;
  /** Profile stack row → node; 0 (the root) means "not resolved yet". */
  nodeOfStack: Int32Array;
}

/** A node with at least this many children gets a group → child map instead of a list scan. */
const CHILD_MAP_THRESHOLD = 12;

function grow<T extends Int32Array | Float64Array | Uint8Array>(a: T, size: number): T {
  if (a.length >= size) return a;
  const next = new (a.constructor as new (n: number) => T)(Math.max(size, a.length * 2));
  next.set(a);
  return next;
}

export class FlameModel {
  readonly profile: Profile;
  readonly options: FlameOptions;

  // ---- nodes (node 0 is the root "all"), in growable typed columns ----
  #count = 1;
  parent = new Int32Array(1024).fill(-1, 0, 1);
  kind = new Uint8Array(1024);
  /** Frame nodes: group id; others: index into `labels`. */
  ref = new Int32Array(1024);
  depth = new Int32Array(1024);
  self = new Float64Array(1024);
  total = new Float64Array(1024);
  /** Children as a linked list: first child, next sibling (-1 ends). */
  firstChild = new Int32Array(1024).fill(-1);
  nextSibling = new Int32Array(1024).fill(-1);
  #lastChild = new Int32Array(1024).fill(-1);
  #childCount = new Int32Array(1024);
  /** 1 when the node's child list is in display order. */
  #sorted = new Uint8Array(1024).fill(1);
  #pending = new Int32Array(1024);
  #childMaps = new Map<number, Map<number, number>>();
  readonly labels: string[] = ['all'];
  maxDepth = 0;

  /** Frame groups: what one box stands for (a frame node's `ref`). */
  readonly groups: FrameGrouper;

  readonly #contexts = new Map<string, Context>();
  readonly #contextOfThread: (Context | undefined)[] = [];
  readonly #accepts: (profile: Profile, row: number) => boolean;
  #firstPid: number | undefined;
  #multiProcess = false;
  #next = 0;
  /** Bumped whenever anything a render depends on changes. */
  version = 0;
  #touched: number[] = [];

  constructor(profile: Profile, options: FlameOptions) {
    this.profile = profile;
    this.options = options;
    this.groups = new FrameGrouper(Boolean(options.function));
    this.#accepts = sampleFilter(options);
    this.kind[0] = NodeKind.Root;
  }

  get nodeCount(): number {
    return this.#count;
  }

  get nextSample(): number {
    return this.#next;
  }

  /** Samples not yet folded in. */
  get backlog(): number {
    return this.profile.samples.stack.length - this.#next;
  }

  /** True when the capture spans several processes, so the tree has a root per process. */
  get multiProcess(): boolean {
    return this.#multiProcess;
  }

  /**
   * Folds in up to `budget` new samples. Returns false when the tree had to be
   * rebuilt from scratch (a second process appeared): callers drop node ids they hold.
   */
  ingest(budget = Infinity, deadline = Infinity): boolean {
    const p = this.profile;
    const { stack, thread } = p.samples;
    let end = Math.min(stack.length, this.#next + budget);
    if (this.#next >= end) return true;
    this.groups.catchUp(p);
    // Without per-thread or per-process roots there is at most one node per
    // stack row: size the columns once instead of growing them step by step.
    if (!this.options.threads && !this.#multiProcess) this.#ensureCapacity(p.stacks.prefix.length + 2);
    const accepts = this.#accepts;
    const touched = this.#touched;
    const pids = p.threads.pid;
    for (let i = this.#next; i < end; i++) {
      // New stacks can cost many new nodes each: look at the clock now and then.
      if ((i & 1023) === 0 && deadline !== Infinity && i > this.#next && performance.now() > deadline) {
        end = i;
        break;
      }
      if (!accepts(p, i)) continue;
      const s = stack[i];
      const t = thread[i];
      let ctx = this.#contextOfThread[t];
      if (ctx === undefined) {
        const pid = pids[t];
        if (this.#firstPid === undefined) this.#firstPid = pid;
        else if (pid !== this.#firstPid && !this.#multiProcess) {
          this.#multiProcess = true;
          this.#clear();
          this.ingest(budget, deadline);
          return false;
        }
        ctx = this.#contextFor(t);
      }
      let node = s < ctx.nodeOfStack.length ? ctx.nodeOfStack[s] : 0;
      if (node === 0) node = this.#resolve(ctx, s);
      // #resolve may have grown the columns: read #pending afresh.
      const pending = this.#pending;
      if (pending[node] === 0) touched.push(node);
      pending[node]++;
    }
    this.#next = end;
    if (touched.length > 0) {
      const { self, total, parent } = this;
      const pending = this.#pending;
      for (const node of touched) {
        const count = pending[node];
        pending[node] = 0;
        self[node] += count;
        for (let n = node; n !== -1; n = parent[n]) total[n] += count;
      }
      touched.length = 0;
      this.version++;
    }
    return true;
  }

  #clear(): void {
    this.#count = 1;
    this.self[0] = 0;
    this.total[0] = 0;
    this.firstChild[0] = -1;
    this.#lastChild[0] = -1;
    this.#childCount[0] = 0;
    this.#sorted[0] = 1;
    this.#pending.fill(0);
    this.labels.length = 1;
    this.#touched.length = 0;
    this.#childMaps.clear();
    this.#contexts.clear();
    this.#contextOfThread.length = 0;
    this.maxDepth = 0;
    this.#next = 0;
    this.version++;
  }

  #contextFor(threadRow: number): Context {
    const roots = rootFrames(this.profile, threadRow, this.#multiProcess, this.options);
    const key = rootKey(roots);
    let ctx = this.#contexts.get(key);
    if (!ctx) {
      let top = 0;
      for (const r of roots) {
        const kind = r.kind === 'process' ? NodeKind.Process : NodeKind.Thread;
        let found = -1;
        for (let c = this.firstChild[top]; c !== -1; c = this.nextSibling[c]) {
          if (this.kind[c] === kind && this.labels[this.ref[c]] === r.label) {
            found = c;
            break;
          }
        }
        if (found < 0) found = this.#addNode(top, kind, this.labels.push(r.label) - 1);
        top = found;
      }
      ctx = { top, nodeOfStack: new Int32Array(Math.max(64, this.profile.stacks.prefix.length)) };
      this.#contexts.set(key, ctx);
    }
    this.#contextOfThread[threadRow] = ctx;
    return ctx;
  }

  #ensureCapacity(size: number): void {
    if (size <= this.parent.length) return;
    this.parent = grow(this.parent, size);
    this.kind = grow(this.kind, size);
    this.ref = grow(this.ref, size);
    this.depth = grow(this.depth, size);
    this.self = grow(this.self, size);
    this.total = grow(this.total, size);
    const old = this.firstChild.length;
    this.firstChild = grow(this.firstChild, size);
    this.firstChild.fill(-1, old);
    this.nextSibling = grow(this.nextSibling, size);
    this.nextSibling.fill(-1, old);
    this.#lastChild = grow(this.#lastChild, size);
    this.#lastChild.fill(-1, old);
    this.#childCount = grow(this.#childCount, size);
    this.#sorted = grow(this.#sorted, size);
    this.#sorted.fill(1, old);
    this.#pending = grow(this.#pending, size);
  }

  #addNode(parent: number, kind: number, ref: number): number {
    const id = this.#count++;
    this.#ensureCapacity(this.#count);
    this.parent[id] = parent;
    this.kind[id] = kind;
    this.ref[id] = ref;
    const d = this.depth[parent] + 1;
    this.depth[id] = d;
    if (d > this.maxDepth) this.maxDepth = d;
    this.self[id] = 0;
    this.total[id] = 0;
    this.firstChild[id] = -1;
    this.nextSibling[id] = -1;
    this.#lastChild[id] = -1;
    this.#childCount[id] = 0;
    this.#sorted[id] = 1;
    // Append to the parent's list.
    const last = this.#lastChild[parent];
    if (last === -1) this.firstChild[parent] = id;
    else this.nextSibling[last] = id;
    this.#lastChild[parent] = id;
    const n = ++this.#childCount[parent];
    this.#sorted[parent] = n <= 1 ? 1 : 0;
    if (kind === NodeKind.Frame) {
      const map = this.#childMaps.get(parent);
      if (map) map.set(ref, id);
      else if (n >= CHILD_MAP_THRESHOLD) {
        const m = new Map<number, number>();
        for (let c = this.firstChild[parent]; c !== -1; c = this.nextSibling[c]) if (this.kind[c] === NodeKind.Frame) m.set(this.ref[c], c);
        this.#childMaps.set(parent, m);
      }
    }
    return id;
  }

  #frameChild(node: number, group: number): number {
    const map = this.#childMaps.get(node);
    if (map) return map.get(group) ?? -1;
    const { kind, ref, nextSibling } = this;
    for (let c = this.firstChild[node]; c !== -1; c = nextSibling[c]) if (ref[c] === group && kind[c] === NodeKind.Frame) return c;
    return -1;
  }

  #resolve(ctx: Context, stack: number): number {
    const { prefix, frame } = this.profile.stacks;
    if (ctx.nodeOfStack.length < prefix.length) ctx.nodeOfStack = grow(ctx.nodeOfStack, prefix.length);
    const memo = ctx.nodeOfStack;
    const missing: number[] = [];
    let s = stack;
    while (s !== NONE && memo[s] === 0) {
      missing.push(s);
      s = prefix[s];
    }
    let node = s === NONE ? ctx.top : memo[s];
    for (let i = missing.length - 1; i >= 0; i--) {
      const row = missing[i];
      const group = this.groups.groupOfFrame[frame[row]];
      let child = this.#frameChild(node, group);
      if (child < 0) child = this.#addNode(node, NodeKind.Frame, group);
      memo[row] = child;
      node = child;
    }
    return node;
  }

  // ---- reading ----

  name(node: number): string {
    return this.kind[node] === NodeKind.Frame ? stringAt(this.profile, this.groups.name[this.ref[node]]) : this.labels[this.ref[node]];
  }

  file(node: number): string {
    return this.kind[node] === NodeKind.Frame ? stringAt(this.profile, this.groups.file[this.ref[node]]) : '';
  }

  /** null when unknown or not a frame. */
  line(node: number): number | null {
    if (this.kind[node] !== NodeKind.Frame) return null;
    const l = this.groups.line[this.ref[node]];
    return l === 0 ? null : l;
  }

  /** py-spy's label: `name (file:line)`. */
  label(node: number): string {
    const name = this.name(node);
    const file = this.file(node);
    if (!file) return name;
    const line = this.line(node);
    return line === null ? `${name} (${file})` : `${name} (${file}:${line})`;
  }

  /**
   * Puts a node's children in display order (name, then file, then line) and
   * returns its first child; walk on with `nextSibling`. -1 when it has none.
   */
  firstSortedChild(node: number): number {
    if (!this.#sorted[node]) {
      const list: number[] = [];
      for (let c = this.firstChild[node]; c !== -1; c = this.nextSibling[c]) list.push(c);
      const strings = this.profile.strings;
      const { kind, ref, labels } = this;
      const { name: groupName, file: groupFile, line: groupLine } = this.groups;
      const nameOf = (n: number) => (kind[n] === NodeKind.Frame ? strings[groupName[ref[n]]] : labels[ref[n]]);
      list.sort((a, b) => {
        const na = nameOf(a);
        const nb = nameOf(b);
        if (na !== nb) return na < nb ? -1 : 1;
        if (kind[a] !== NodeKind.Frame || kind[b] !== NodeKind.Frame) return kind[a] - kind[b];
        const fa = strings[groupFile[ref[a]]];
        const fb = strings[groupFile[ref[b]]];
        if (fa !== fb) return fa < fb ? -1 : 1;
        return groupLine[ref[a]] - groupLine[ref[b]];
      });
      this.firstChild[node] = list[0];
      for (let i = 0; i < list.length - 1; i++) this.nextSibling[list[i]] = list[i + 1];
      this.nextSibling[list[list.length - 1]] = -1;
      this.#lastChild[node] = list[list.length - 1];
      this.#sorted[node] = 1;
    }
    return this.firstChild[node];
  }

  /** Children in display order, as an array (convenient, allocates). */
  sortedChildren(node: number): number[] {
    const list: number[] = [];
    for (let c = this.firstSortedChild(node); c !== -1; c = this.nextSibling[c]) list.push(c);
    return list;
  }

  childCount(node: number): number {
    return this.#childCount[node];
  }

  /** Root-first path to `node`, inclusive. */
  ancestry(node: number): number[] {
    const path: number[] = [];
    for (let n = node; n !== -1; n = this.parent[n]) path.push(n);
    return path.reverse();
  }
}

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

  matches(model: FlameModel, node: number): boolean {
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
  matchedSamples(model: FlameModel, root: number): number {
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
