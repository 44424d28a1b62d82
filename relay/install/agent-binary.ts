// The agent binaries the one-liner downloads: dist/periscope-agent-linux-x64
// and dist/periscope-agent-linux-arm64 (from `npm run build`), named by what
// `uname -m` says on each machine, served gzipped with their SHA-256 so the
// install script can refuse a tampered or truncated download; and the glibc
// runtime the x64 agent runs with where the machine has no glibc
// (dist/periscope-glibc-linux-x64.tar.gz, already gzipped:
// scripts/build-agent/glibc-runtime.ts).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

/** Machines by `uname -m`, and the dist/ file built for each. */
export const AGENT_ARCHES = ['x86_64', 'aarch64'] as const;
export type AgentMachine = (typeof AGENT_ARCHES)[number];
const DIST_NAMES: Record<AgentMachine, string> = { x86_64: 'periscope-agent-linux-x64', aarch64: 'periscope-agent-linux-arm64' };
/** The glibc runtimes that are built (none for aarch64 yet). */
const RUNTIME_NAMES: Partial<Record<AgentMachine, string>> = { x86_64: 'periscope-glibc-linux-x64.tar.gz' };

export function isAgentMachine(value: string): value is AgentMachine {
  return (AGENT_ARCHES as readonly string[]).includes(value);
}
export const DIST_DIR = join(import.meta.dirname, '..', '..', 'dist');

export interface AgentBinary {
  gz: Buffer;
  sha256: string; // of the gzipped bytes, as downloaded
}

export class AgentBinaries {
  #dir: string;
  #cached = new Map<string, { mtimeMs: number; size: number; binary: Promise<AgentBinary> }>();

  constructor(dir = DIST_DIR) {
    this.#dir = dir;
  }

  path(machine: AgentMachine = 'x86_64'): string {
    return join(this.#dir, DIST_NAMES[machine]);
  }

  /**
   * undefined when the operator has not built the agent (`npm run build`).
   * Compressing 100 MB takes seconds, so it runs on the thread pool (the
   * event loop keeps serving) and once per build of the binary. Large
   * chunks: with zlib's default 16 KiB, the event loop would run ~6,000
   * completion callbacks (~0.7 s of its time, seen as /healthz stalls).
   */
  get(machine: AgentMachine = 'x86_64'): Promise<AgentBinary> | undefined {
    return this.#load(this.path(machine), true);
  }

  /** The glibc runtime for `machine` (served as built: it is a .tar.gz); undefined when not built. */
  glibcRuntime(machine: AgentMachine): Promise<AgentBinary> | undefined {
    const name = RUNTIME_NAMES[machine];
    return name ? this.#load(join(this.#dir, name), false) : undefined;
  }

  #load(path: string, compress: boolean): Promise<AgentBinary> | undefined {
    if (!existsSync(path)) return undefined;
    const st = statSync(path);
    const cached = this.#cached.get(path);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.binary;
    const bytes = readFileSync(path);
    const binary = (compress ? gzipAsync(bytes, { level: 6, chunkSize: 8 << 20 }) : Promise.resolve(bytes)).then((gz) => ({
      gz,
      sha256: createHash('sha256').update(gz).digest('hex'),
    }));
    this.#cached.set(path, { mtimeMs: st.mtimeMs, size: st.size, binary });
    binary.catch(() => this.#cached.delete(path));
    return binary;
  }

  /** The checksum of every machine's binary that is built; {} when none is. */
  async checksums(): Promise<Partial<Record<AgentMachine, string>>> {
    const out: Partial<Record<AgentMachine, string>> = {};
    for (const machine of AGENT_ARCHES) {
      const binary = await this.get(machine);
      if (binary) out[machine] = binary.sha256;
    }
    return out;
  }

  /** The checksum of every machine's glibc runtime that is built. */
  async glibcChecksums(): Promise<Partial<Record<AgentMachine, string>>> {
    const out: Partial<Record<AgentMachine, string>> = {};
    for (const machine of AGENT_ARCHES) {
      const runtime = await this.glibcRuntime(machine);
      if (runtime) out[machine] = runtime.sha256;
    }
    return out;
  }
}
