// The merged call tree behind flame graphs and the collapsed-stack exporter: every
// distinct path from a root to a frame becomes one node, weighted by sample count.

import { NONE, type Profile } from './model.ts';
import { groupFrames } from './frame-groups.ts';
import { groupStacks } from './grouped-stacks.ts';
import { type RootFrame, rootFramesFor } from './root-frames.ts';
import { selectSamples } from './sample-filter.ts';
import type { ViewOptions } from './view-options.ts';

export type CallTreeNodeKind = 'root' | 'process' | 'thread' | 'frame';

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
  /** Sorted by name, then file, then line, so output is stable. */
  children: CallTreeNode[];
}

function newNode(kind: CallTreeNodeKind, name: string, file = '', line: number | null = null): CallTreeNode {
  return { kind, name, file, line, self: 0, total: 0, children: [] };
}

function compareNodes(a: CallTreeNode, b: CallTreeNode): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1;
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  return (a.line ?? -1) - (b.line ?? -1);
}

/** Children sorted, totals summed bottom-up; iterative because stacks can be thousands deep. */
function finish(root: CallTreeNode): void {
  const order: CallTreeNode[] = [root];
  for (let i = 0; i < order.length; i++) {
    order[i].children.sort(compareNodes);
    for (const child of order[i].children) order.push(child);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    node.total = node.self;
    for (const child of node.children) node.total += child.total;
  }
}

/** Root node named "all" whose total is the number of samples that passed the filters. */
export function callTree(profile: Profile, options: ViewOptions = {}): CallTreeNode {
  const samples = selectSamples(profile, options);
  const groups = groupFrames(profile, options);
  const grouped = groupStacks(profile, groups);
  const rootFrames = rootFramesFor(profile, samples, options);
  const root = newNode('root', 'all');

  // Below its root frames, a thread's part of the tree mirrors the grouped stack
  // trie, so each grouped stack maps to exactly one node per set of root frames.
  interface Subtree {
    top: CallTreeNode;
    nodeOf: (CallTreeNode | undefined)[];
  }
  const subtrees = new Map<string, Subtree>();
  const subtreeOfThread = new Map<number, Subtree>();
  const subtreeFor = (thread: number): Subtree => {
    let subtree = subtreeOfThread.get(thread);
    if (subtree) return subtree;
    const roots: RootFrame[] = rootFrames(thread);
    const key = JSON.stringify(roots);
    subtree = subtrees.get(key);
    if (!subtree) {
      let top = root;
      for (const { kind, label } of roots) {
        let next = top.children.find((c) => c.kind === kind && c.name === label);
        if (!next) top.children.push((next = newNode(kind, label)));
        top = next;
      }
      subtrees.set(key, (subtree = { top, nodeOf: [] }));
    }
    subtreeOfThread.set(thread, subtree);
    return subtree;
  };
  const nodeFor = (subtree: Subtree, stack: number): CallTreeNode => {
    const missing: number[] = [];
    let s = stack;
    while (s !== NONE && subtree.nodeOf[s] === undefined) {
      missing.push(s);
      s = grouped.prefix[s];
    }
    let parent = s === NONE ? subtree.top : subtree.nodeOf[s]!;
    for (let i = missing.length - 1; i >= 0; i--) {
      const group = grouped.group[missing[i]];
      const node = newNode('frame', groups.name[group], groups.file[group], groups.line[group]);
      parent.children.push(node);
      subtree.nodeOf[missing[i]] = node;
      parent = node;
    }
    return parent;
  };

  for (const s of samples) {
    const subtree = subtreeFor(profile.samples.thread[s]);
    nodeFor(subtree, grouped.ofStack[profile.samples.stack[s]]).self++;
  }
  finish(root);
  return root;
}
