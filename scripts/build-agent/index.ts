// Builds dist/periscope-agent-linux-x64 (see scripts/build.ts), and tells
// whether an existing one is still fresh, so tests can reuse it.
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ensureNativeBuilt } from '../build-native.ts';
import { bundle } from './bundle.ts';
import { ADDON, BINARY, DIST, PINNED_NODE, ROOT, STAMP } from './paths.ts';
import { inject, makeBlob, strippedNode } from './sea.ts';

/** Files that shape the binary besides the bundles' own sources. */
function toolInputs(): string[] {
  const here = relative(ROOT, import.meta.dirname);
  return [
    'scripts/build.ts',
    ...readdirSync(import.meta.dirname).filter((f) => f.endsWith('.ts')).map((f) => join(here, f)),
    relative(ROOT, PINNED_NODE),
    relative(ROOT, ADDON),
    'node_modules/esbuild/package.json',
    'node_modules/postject/package.json',
  ];
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

interface Stamp {
  binary: string; // sha256 of the binary
  inputs: Record<string, string>; // path relative to ROOT -> sha256
}

/** True when the binary exists and nothing it was built from has changed since. */
export function isFresh(): boolean {
  if (!existsSync(BINARY) || !existsSync(STAMP)) return false;
  try {
    const stamp = JSON.parse(readFileSync(STAMP, 'utf8')) as Stamp;
    if (sha256(BINARY) !== stamp.binary) return false;
    return Object.entries(stamp.inputs).every(([p, hash]) => existsSync(join(ROOT, p)) && sha256(join(ROOT, p)) === hash);
  } catch {
    return false;
  }
}

export async function buildAgentBinary(log: (line: string) => void = () => {}): Promise<string> {
  ensureNativeBuilt();
  const work = mkdtempSync(join(tmpdir(), 'periscope-sea-'));
  try {
    // Hash what we embed, not what the repo holds a moment later.
    const addon = join(work, 'periscope_native.node');
    copyFileSync(ADDON, addon);
    log('bundling agent/cli.ts (ESM) and agent/sea-bootstrap.ts (CommonJS main) with esbuild');
    const bundles = await bundle(work);
    log('making the SEA blob with the pinned Node');
    const blob = makeBlob(work, { main: bundles.main, assets: { 'agent.mjs': bundles.agent, 'periscope_native.node': addon } });
    log('copying and stripping the pinned Node');
    const binary = join(work, 'periscope-agent-linux-x64');
    strippedNode(binary);
    log('injecting the blob with postject');
    inject(binary, blob);

    const check = spawnSync(binary, ['--version'], { encoding: 'utf8', env: {} });
    if (check.status !== 0 || !/^periscope \S+/.test(check.stdout)) {
      throw new Error(`the new binary does not run: --version gave status ${check.status}\n${check.stdout}${check.stderr}`);
    }

    const inputs: Record<string, string> = {};
    for (const p of [...bundles.inputs, ...toolInputs()].sort()) inputs[p] = sha256(join(ROOT, p));
    inputs[relative(ROOT, ADDON)] = sha256(addon);
    mkdirSync(DIST, { recursive: true });
    // Copy then rename: a concurrent reader sees the old binary or the new one, never half.
    const tmp = `${BINARY}.tmp-${process.pid}`;
    copyFileSync(binary, tmp);
    renameSync(tmp, BINARY);
    const stamp: Stamp = { binary: sha256(BINARY), inputs };
    writeFileSync(`${STAMP}.tmp-${process.pid}`, JSON.stringify(stamp, null, 2) + '\n');
    renameSync(`${STAMP}.tmp-${process.pid}`, STAMP);
    return BINARY;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The binary, built first unless a fresh one is there. */
export async function ensureAgentBinary(log?: (line: string) => void): Promise<string> {
  return isFresh() ? BINARY : buildAgentBinary(log);
}
