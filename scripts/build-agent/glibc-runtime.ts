// What the x64 agent needs to run where there is no glibc (Alpine and other
// musl systems, busybox or distroless images): dist/periscope-glibc-linux-x64.tar.gz.
//
// The single binary is a copy of the pinned Node, linked against glibc, and
// no musl build of that Node can be had here (only the npm registry is
// reached). So the relay offers, beside the unchanged agent, this machine's
// glibc loader and the libraries `ldd` names for the binary and its native
// addon (libc, libm, libstdc++, libgcc_s, libdl, libpthread), flat in one
// tar. The install script detects a machine without the loader the agent
// names, fetches both and starts the agent as
//
//   DIR/ld-linux-x86-64.so.2 --library-path DIR AGENT connect RELAY
//
// (relay/install/install-script.ts). Kept apart from the agent rather than
// packed with it: the agent stays one file, checked once, and the runtime
// adds about 2 MiB to the download instead of a second 40 MiB file.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { ADDON, binaryOf, DIST } from './paths.ts';

export const GLIBC_RUNTIME = join(DIST, 'periscope-glibc-linux-x64.tar.gz');
const STAMP = `${GLIBC_RUNTIME}.inputs.json`;
export const GLIBC_LOADER = 'ld-linux-x86-64.so.2';

/** Every library `ldd` resolves for `files`, and the loader, as paths on this machine. */
export function glibcClosure(files: string[]): string[] {
  const found = new Set<string>();
  for (const file of files) {
    const r = spawnSync('ldd', [file], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ldd ${file} failed (${r.stderr.trim()}); the glibc runtime needs glibc's ldd (Debian's libc-bin)`);
    for (const line of r.stdout.split('\n')) {
      if (/not found/.test(line)) throw new Error(`ldd ${file}: ${line.trim()}; install that library, then build again`);
      const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
      if (m) found.add(m[1]!);
    }
  }
  if (![...found].some((p) => basename(p) === GLIBC_LOADER)) throw new Error(`ldd names no ${GLIBC_LOADER} for ${files.join(', ')}: not an x86_64 glibc build?`);
  return [...found].sort();
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Hashes of the libraries by name: a runtime is fresh while they are the same. */
function inputsOf(libs: string[]): Record<string, string> {
  return Object.fromEntries(libs.map((l) => [basename(l), sha256(readFileSync(l))]));
}

function isFresh(libs: string[]): boolean {
  try {
    const stamp = JSON.parse(readFileSync(STAMP, 'utf8')) as { runtime: string; inputs: Record<string, string> };
    return sha256(readFileSync(GLIBC_RUNTIME)) === stamp.runtime && JSON.stringify(stamp.inputs) === JSON.stringify(inputsOf(libs));
  } catch {
    return false;
  }
}

/** Writes dist/periscope-glibc-linux-x64.tar.gz unless a fresh one is there; returns its path. */
export function ensureGlibcRuntime(log: (line: string) => void = () => {}): string {
  const binary = binaryOf('x64');
  if (!existsSync(binary)) throw new Error(`${binary} is not built; the glibc runtime is made for it (npm run build)`);
  const libs = glibcClosure([binary, ADDON]);
  if (isFresh(libs)) return GLIBC_RUNTIME;
  const work = mkdtempSync(join(tmpdir(), 'periscope-glibc-'));
  try {
    for (const lib of libs) copyFileSync(lib, join(work, basename(lib))); // the files, not the symlinks
    chmodSync(join(work, GLIBC_LOADER), 0o755);
    log(`x64: glibc runtime of ${libs.map((l) => basename(l)).join(', ')}`);
    // Sorted, owned by root, dated 0, gzip -n: the same libraries give the same bytes.
    const names = libs.map((l) => basename(l)).sort();
    const tar = spawnSync('sh', ['-c', 'tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf - -C "$0" "$@" | gzip -9n', work, ...names], {
      maxBuffer: 1 << 28,
    });
    if (tar.status !== 0) throw new Error(`tar | gzip failed: ${tar.stderr.toString()}`);
    mkdirSync(DIST, { recursive: true });
    const tmp = `${GLIBC_RUNTIME}.tmp-${process.pid}`;
    writeFileSync(tmp, tar.stdout);
    renameSync(tmp, GLIBC_RUNTIME);
    writeFileSync(STAMP, JSON.stringify({ runtime: sha256(tar.stdout), inputs: inputsOf(libs) }, null, 2) + '\n');
    return GLIBC_RUNTIME;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
