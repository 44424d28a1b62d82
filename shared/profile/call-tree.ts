// The one call tree behind every flame graph: the browser's live view, the SVG
// and collapsed-stack exporters. Every distinct path from a root to a frame is
// one node, weighted by sample count.
//
// Built incrementally: a profile only grows, so each ingest() folds in the
// samples appended since the last one. A sample costs one array lookup (its
// stack's node is memoized per thread context); totals are propagated once per
// distinct stack per batch, not per sample. The exporters ingest everything at
// once and read it as plain nodes (callTree()).
//
// Nodes live in struct-of-arrays columns. Children are kept unsorted and sorted
// lazily (by name, file, line — flamegraph.pl's order, so the picture is stable
// as it grows) only for the nodes a reader actually visits.
//
// Which samples count, how frames group into boxes and which root boxes sit
// above a thread are this directory's rules (sampleFilter, FrameGrouper,
// rootFrames).

import { NONE, type Profile, stringAt } from './model.ts';
import { FrameGrouper, groupsByFunction } from './frame-groups.ts';
import { processRoots, rootFrames, rootKey } from './root-frames.ts';
import { sampleFilter } from './sample-filter.ts';
import type { ViewOptions } from './view-options.ts';

/** py-spy's --idle, --gil, --function, --nolineno and --threads, a thread selection, and merged processes. */
export type CallTreeOptions = Pick<ViewOptions, 'idle' | 'gil' | 'function' | 'nolineno' | 'threads' | 'threadRows' | 'mergeProcesses'>;

export const NodeKind = { Root: 0, Process: 1, Thread: 2, Frame: 3 } as const;

export type CallTreeOrder = 'name' | 'heavy';

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

export class CallTree {
  readonly profile: Profile;
  readonly options: CallTreeOptions;

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
  readonly #showLines: boolean;
  #firstPid: number | undefined;
  #multiProcess = false;
  #order: CallTreeOrder = 'name';
  #processRoots = false;
  /** processRoots' answer, and the process-table size it was given for (-1: not asked yet). */
  #rootsWanted = false;
  #rootsDecidedAt = -1;
  #next = 0;
  /** Bumped whenever anything a render depends on changes. */
  version = 0;
  #touched: number[] = [];

  constructor(profile: Profile, options: CallTreeOptions = {}) {
    this.profile = profile;
    this.options = options;
    this.#showLines = !options.nolineno;
    this.groups = new FrameGrouper(groupsByFunction(options));
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

  /** True when the capture spans several processes. */
  get multiProcess(): boolean {
    return this.#multiProcess;
  }

  /** True when the tree has a root per process (several processes, not merged: see processRoots). */
  get processRoots(): boolean {
    return this.#processRoots;
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
    if (!this.options.threads && !this.#processRoots) this.#ensureCapacity(p.stacks.prefix.length + 2);
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
        else if (pid !== this.#firstPid) this.#multiProcess = true;
        // Process roots come with a second process unless processes merge (which
        // a new child's command line can change); they change every path: start over.
        // The answer only changes with the process table: a fork-per-job worker
        // brings a new thread per child, and each would otherwise re-read every command line.
        if (this.#rootsDecidedAt !== p.processes.pid.length || !this.#multiProcess) {
          this.#rootsDecidedAt = this.#multiProcess ? p.processes.pid.length : -1;
          this.#rootsWanted = processRoots(p, this.#multiProcess, this.options);
        }
        const withRoots = this.#rootsWanted;
        if (withRoots !== this.#processRoots) {
          this.#processRoots = withRoots;
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
        // Left heavy: totals decide the order, so every list on the way is stale.
        if (this.#order === 'heavy') for (let n = parent[node]; n !== -1; n = parent[n]) this.#sorted[n] = 0;
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
    const roots = rootFrames(this.profile, threadRow, this.#processRoots, this.options);
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

  /** null when unknown, hidden (nolineno) or not a frame. */
  line(node: number): number | null {
    if (this.kind[node] !== NodeKind.Frame || !this.#showLines) return null;
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

  /** How children are ordered: by name (flamegraph.pl) or heaviest first (speedscope's left heavy). */
  get order(): CallTreeOrder {
    return this.#order;
  }

  setOrder(order: CallTreeOrder): void {
    if (order === this.#order) return;
    this.#order = order;
    // Every list is re-sorted lazily, when a reader next visits it.
    this.#sorted.fill(0, 0, this.#count);
    this.version++;
  }

  /**
   * Puts a node's children in display order (by name: name, then file, then
   * line; left heavy: total, heaviest first, then by name) and returns its
   * first child; walk on with `nextSibling`. -1 when it has none.
   */
  firstSortedChild(node: number): number {
    if (!this.#sorted[node]) {
      const list: number[] = [];
      for (let c = this.firstChild[node]; c !== -1; c = this.nextSibling[c]) list.push(c);
      if (list.length === 0) {
        this.#sorted[node] = 1;
        return -1;
      }
      const strings = this.profile.strings;
      const { kind, ref, labels, total } = this;
      const heavy = this.#order === 'heavy';
      const { name: groupName, file: groupFile, line: groupLine } = this.groups;
      const nameOf = (n: number) => (kind[n] === NodeKind.Frame ? strings[groupName[ref[n]]] : labels[ref[n]]);
      list.sort((a, b) => {
        if (heavy && total[a] !== total[b]) return total[b] - total[a];
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

  /**
   * The hottest frame below `node`: the most samples of its own (the deeper on
   * a tie), where a hot path ends. `node` itself when nothing below has samples.
   */
  hottestLeaf(node = 0): number {
    let best = node;
    const pending = [node];
    while (pending.length > 0) {
      const n = pending.pop()!;
      if (this.self[n] > this.self[best] || (this.self[n] === this.self[best] && this.depth[n] > this.depth[best])) best = n;
      for (let c = this.firstChild[n]; c !== -1; c = this.nextSibling[c]) pending.push(c);
    }
    return best;
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

export type CallTreeNodeKind = 'root' | 'process' | 'thread' | 'frame';

const KIND_NAMES: readonly CallTreeNodeKind[] = ['root', 'process', 'thread', 'frame'];

/** A node of the whole tree as a plain object, for exporters that walk it once. */
export interface CallTreeNode {
  kind: CallTreeNodeKind;
  /** Function name, or the whole label of a root/process/thread node. */
  name: string;
  /** '' for nodes that are not source frames. */
  file: string;
  line: number | null;
  /** Samples whose innermost frame is this node. */
  self: number;
  /** Samples passing through this node (self + children's totals). */
  total: number;
  /** In display order: name, then file, then line. */
  children: CallTreeNode[];
}

/**
 * A built tree as plain nodes in display order, each made by `extend` from
 * its node id and base fields (a comparison adds the baseline's samples).
 */
export function plainNodes<N extends CallTreeNode>(tree: CallTree, extend: (node: number, base: CallTreeNode) => N): N {
  const plain = (n: number): N =>
    extend(n, {
      kind: KIND_NAMES[tree.kind[n]],
      name: tree.name(n),
      file: tree.file(n),
      line: tree.line(n),
      self: tree.self[n],
      total: tree.total[n],
      children: [],
    });
  const root = plain(0);
  // Iterative: Python stacks can be thousands deep.
  const pending: [number, N][] = [[0, root]];
  while (pending.length > 0) {
    const [n, node] = pending.pop()!;
    for (let c = tree.firstSortedChild(n); c !== -1; c = tree.nextSibling[c]) {
      const child = plain(c);
      node.children.push(child);
      pending.push([c, child]);
    }
  }
  return root;
}

/** The whole tree of the samples that pass `options`; the root is "all". */
export function callTree(profile: Profile, options: CallTreeOptions = {}): CallTreeNode {
  const tree = new CallTree(profile, options);
  tree.ingest();
  return plainNodes(tree, (_, base) => base);
}
