// The agent binary the one-liner downloads: dist/periscope-agent-linux-x64
// (from `npm run build`), served gzipped with its SHA-256 so the install
// script can refuse a tampered or truncated download.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

export const AGENT_ARCHES = ['x86_64'] as const;
export const DIST_DIR = join(import.meta.dirname, '..', '..', 'dist');

export interface AgentBinary {
  gz: Buffer;
  sha256: string; // of the gzipped bytes, as downloaded
}

export class AgentBinaries {
  #dir: string;
  #cached: { mtimeMs: number; size: number; binary: Promise<AgentBinary> } | undefined;

  constructor(dir = DIST_DIR) {
    this.#dir = dir;
  }

  path(): string {
    return join(this.#dir, 'periscope-agent-linux-x64');
  }

  /**
   * undefined when the operator has not built the agent (`npm run build`).
   * Compressing 100 MB takes seconds, so it runs on the thread pool (the
   * event loop keeps serving) and once per build of the binary. Large
   * chunks: with zlib's default 16 KiB, the event loop would run ~6,000
   * completion callbacks (~0.7 s of its time, seen as /healthz stalls).
   */
  get(): Promise<AgentBinary> | undefined {
    const path = this.path();
    if (!existsSync(path)) return undefined;
    const st = statSync(path);
    if (this.#cached && this.#cached.mtimeMs === st.mtimeMs && this.#cached.size === st.size) return this.#cached.binary;
    const binary = gzipAsync(readFileSync(path), { level: 6, chunkSize: 8 << 20 }).then((gz) => ({
      gz,
      sha256: createHash('sha256').update(gz).digest('hex'),
    }));
    this.#cached = { mtimeMs: st.mtimeMs, size: st.size, binary };
    binary.catch(() => (this.#cached = undefined));
    return binary;
  }
}
