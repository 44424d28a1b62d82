import type { CallTreeNode } from '../profile/call-tree.ts';

/** py-spy's frame text: `name (file:line)`, `name (file)` without a line, `name` without a file. */
export function frameLabel(name: string, file: string, line: number | null): string {
  if (!file) return name;
  return line === null ? `${name} (${file})` : `${name} (${file}:${line})`;
}

export function nodeLabel(node: CallTreeNode): string {
  return node.kind === 'frame' ? frameLabel(node.name, node.file, node.line) : node.name;
}
