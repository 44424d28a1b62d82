import type { CallTreeNode } from '../profile/call-tree.ts';

/** py-spy's frame text: `name (file:line)`, `name (file)` without a line, `name` without a file. */
export function frameLabel(name: string, file: string, line: number | null): string {
  if (!file) return name;
  return line === null ? `${name} (${file})` : `${name} (${file}:${line})`;
}

export function nodeLabel(node: CallTreeNode): string {
  return node.kind === 'frame' ? frameLabel(node.name, node.file, node.line) : node.name;
}

/**
 * frameLabel read back: `name (file:line)`, `name (file)` or `name`. The name
 * ends at the first ` (`: Python names hold no spaces (`<lambda>`, `<module>`
 * included) while paths may hold both spaces and parentheses.
 */
export function parseFrameLabel(label: string): { name: string; file: string; line: number | null } {
  const withLine = /^(.*?) \((.*):(\d+)\)$/s.exec(label);
  if (withLine) return { name: withLine[1], file: withLine[2], line: Number(withLine[3]) };
  const withFile = /^(.*?) \((.*)\)$/s.exec(label);
  if (withFile) return { name: withFile[1], file: withFile[2], line: null };
  return { name: label, file: '', line: null };
}
