// Collapsed stacks ("folded" format), the same text py-spy writes with --format raw:
// one line per distinct stack, frames root first separated by ';', then the count.

import { callTree, type CallTreeNode } from '../profile/call-tree.ts';
import type { Profile } from '../profile/model.ts';
import { nodeLabel } from './frame-label.ts';
import { buildOrTooLarge } from './build-or-too-large.ts';
import type { ExportOptions } from './options.ts';

// The format has no escaping: a ';' would split a frame and a newline a line.
function foldedSafe(label: string): string {
  return label.replace(/;/g, ':').replace(/[\r\n]+/g, ' ');
}

export function exportRaw(profile: Profile, options: ExportOptions = {}): string {
  const lines: string[] = [];
  const path: string[] = [];
  const pending: { node: CallTreeNode; depth: number }[] = [];
  const root = callTree(profile, options);
  // Depth-first in child order, iteratively because Python stacks can be thousands deep.
  for (let i = root.children.length - 1; i >= 0; i--) pending.push({ node: root.children[i], depth: 0 });
  while (pending.length > 0) {
    const { node, depth } = pending.pop()!;
    path.length = depth;
    path.push(foldedSafe(nodeLabel(node)));
    if (node.self > 0) lines.push(`${path.join(';')} ${node.self}`);
    for (let i = node.children.length - 1; i >= 0; i--) pending.push({ node: node.children[i], depth: depth + 1 });
  }
  return buildOrTooLarge('raw', () => (lines.length > 0 ? `${lines.join('\n')}\n` : ''));
}
