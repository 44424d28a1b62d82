// Node Single Executable Application steps: make the preparation blob with
// the pinned Node, copy and strip that Node, inject the blob with postject
// (Node 24 has no built-in --build-sea; it arrived in Node 25).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { PINNED_NODE, ROOT } from './paths.ts';

// The fuse Node looks for to know a blob was injected (from Node's docs).
const SENTINEL_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

function run(what: string, command: string, args: string[], fix = '', cwd = ROOT): void {
  const result = spawnSync(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (result.error || result.status !== 0) {
    const detail = result.error ? String(result.error.message) : `${result.stderr}${result.stdout}`.trim();
    throw new Error(`${what} failed: ${command} ${args.join(' ')}\n${detail}${fix ? `\n${fix}` : ''}`);
  }
}

/**
 * How to run the Node that makes the blob: the blob holds V8's code cache,
 * which only the Node (and the CPU architecture) that will load it accepts,
 * so the arm64 blob is made by the arm64 Node under qemu.
 */
export type NodeRunner = (args: string[]) => [string, string[]];

export interface BlobInputs {
  main: string; // CommonJS main script, in workDir
  assets: Record<string, string>; // asset key -> file in workDir
}

/**
 * Writes sea-config.json and the blob into workDir; returns the blob's path.
 * Paths in the config are relative to workDir, because the main's path
 * becomes its filename inside the binary: no build directory leaks in.
 * (The blob still differs between builds: V8's code cache is not
 * deterministic.)
 */
export function makeBlob(workDir: string, inputs: BlobInputs, node: NodeRunner = (args) => [PINNED_NODE, args]): string {
  const blob = join(workDir, 'sea-prep.blob');
  const config = {
    main: relative(workDir, inputs.main),
    output: relative(workDir, blob),
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    // Besides a faster start, a built-in code cache means Node never looks
    // in NODE_COMPILE_CACHE for the bootstrap (which then restarts without
    // that variable before compiling the agent module).
    useCodeCache: true,
    // Node's own flags for this binary, parsed before anything else:
    // - an explicit OpenSSL config, so OPENSSL_CONF (and /usr/local/ssl's
    //   default file) cannot make OpenSSL load a provider shared library;
    // - no ExperimentalWarning: the bootstrap uses vm's main-context loader
    //   and process.execve, and customers must not see warnings about them.
    execArgv: ['--openssl-config=/dev/null', '--disable-warning=ExperimentalWarning'],
    // The default ("env") lets NODE_OPTIONS add flags such as --require, and
    // customers' containers often set it for their own Node services.
    execArgvExtension: 'none',
    assets: Object.fromEntries(Object.entries(inputs.assets).map(([key, file]) => [key, relative(workDir, file)])),
  };
  const configPath = join(workDir, 'sea-config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  run('making the SEA blob', ...node([`--experimental-sea-config=${configPath}`]), '', workDir);
  return blob;
}

/**
 * Copies a Node to `dest` without its debug info (x64: about 126 MB -> 108
 * MB). The host's strip only knows x86 ELF files: the arm64 Node takes
 * binutils-aarch64-linux-gnu's.
 */
export function strippedNode(dest: string, node = PINNED_NODE, strip = 'strip'): void {
  copyFileSync(node, dest);
  chmodSync(dest, 0o755);
  run('strip', strip, ['--strip-all', dest], `${strip} comes from binutils (arm64: binutils-aarch64-linux-gnu)`);
}

/** Injects the blob into the copied Node as the NODE_SEA_BLOB note. */
export function inject(binary: string, blob: string): void {
  const cli = join(ROOT, 'node_modules', 'postject', 'dist', 'cli.js');
  run('postject', PINNED_NODE, [cli, binary, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SENTINEL_FUSE], 'postject is a devDependency: run `npm install`');
}
