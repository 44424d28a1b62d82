// The agent binaries the one-liner downloads: dist/periscope-agent-linux-x64
// and dist/periscope-agent-linux-arm64 (from `npm run build`), named by what
// `uname -m` says on each machine, served gzipped with their SHA-256 so the
// install script can refuse a tampered or truncated download; and the glibc
// runtime the x64 agent runs with where the machine has no glibc
// (dist/periscope-glibc-linux-x64.tar.gz, already gzipped:
// scripts/build-agent/glibc-runtime.ts).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipAsync = promisify(gzip);

/** Where the download of `binary` is kept beside it: its gzip, and the SHA-256 of those bytes. */
export function downloadPaths(binary: string): { gz: string; sha256: string } {
  return { gz: `${binary}.gz`, sha256: `${binary}.gz.sha256` };
}

/**
 * Compresses `binary` as the relay serves it and keeps the result beside it.
 * `smallest` (the x64 agent, which Alpine machines download with the glibc
 * runtime) spends minutes on it when pigz is installed.
 * (`npm run build` does this once per build). Compressing 100 MB takes
 * seconds of a core; done by every relay at every start it held up whatever
 * else the machine ran. On the thread pool, in large chunks: with zlib's
 * default 16 KiB the event loop would run ~6,000 completion callbacks.
 */
export async function writeDownload(binary: string, level: 6 | 9 | 'smallest' = 9): Promise<AgentBinary> {
  const gz =
    (level === 'smallest' && (await external('pigz', ['-11', '-I', '1', '-n', '-c', binary]))) ||
    (level !== 6 && (await external('gzip', ['-9', '-n', '-c', binary]))) ||
    (await gzipAsync(await readFile(binary), { level: level === 6 ? 6 : 9, chunkSize: 8 << 20 }));
  const sha256 = createHash('sha256').update(gz).digest('hex');
  const paths = downloadPaths(binary);
  const tmp = `.tmp-${process.pid}`;
  // Renamed into place: a relay reading meanwhile sees the old pair or the new one.
  await writeFile(paths.sha256 + tmp, `${sha256}\n`);
  await writeFile(paths.gz + tmp, gz);
  await rename(paths.gz + tmp, paths.gz);
  await rename(paths.sha256 + tmp, paths.sha256);
  return { gz, sha256 };
}

/**
 * Smaller downloads for every customer, still plain gzip: pigz's -11 (zopfli,
 * one iteration; about two minutes of both cores, once per build) packs the
 * x64 agent to 38.8 MB, GNU gzip -9 to 40.1 MB, zlib's level 9 to 41.3 MB.
 * The first gives the Alpine download (agent and glibc runtime) room under
 * 40 MiB. Undefined where the program is missing or fails.
 */
function external(program: string, args: string[]): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    const parts: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => parts.push(b));
    child.on('error', () => resolve(undefined));
    child.on('close', (code) => resolve(code === 0 ? Buffer.concat(parts) : undefined));
  });
}

/** The kept download, if it was written after the binary it compresses. */
async function keptDownload(binary: string, binaryMtimeMs: number): Promise<AgentBinary | undefined> {
  const paths = downloadPaths(binary);
  if (!existsSync(paths.gz) || !existsSync(paths.sha256)) return undefined;
  if (statSync(paths.gz).mtimeMs < binaryMtimeMs || statSync(paths.sha256).mtimeMs < binaryMtimeMs) return undefined;
  const [gz, sum] = await Promise.all([readFile(paths.gz), readFile(paths.sha256, 'utf8')]);
  const sha256 = sum.trim();
  return /^[0-9a-f]{64}$/.test(sha256) ? { gz, sha256 } : undefined;
}

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
   * Served from the download the build kept beside the binary; a binary
   * without one (built by an older build) is compressed once, here, and its
   * download kept for the next start.
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
    const binary = compress
      ? keptDownload(path, st.mtimeMs).then((kept) => kept ?? writeDownload(path, 6))
      : readFile(path).then((gz) => ({ gz, sha256: createHash('sha256').update(gz).digest('hex') }));
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
