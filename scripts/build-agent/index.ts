// Builds dist/periscope-agent-linux-x64 and dist/periscope-agent-linux-arm64
// (see scripts/build.ts), and tells whether an existing one is still fresh,
// so tests can reuse it. The arm64 one is made on this x64 machine: the addon
// cross-compiled, the blob made by the arm64 Node under qemu (cross.ts).
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { writeDownload } from '../../relay/install/agent-binary.ts';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ensureNativeArm64Built, ensureNativeBuilt } from '../build-native.ts';
import { bundle } from './bundle.ts';
import { arm64Command, arm64NodePackage, CROSS_STRIP, ensureCrossTools } from './cross.ts';
import { ADDON, type AgentArch, binaryOf, DIST, PINNED_NODE, ROOT, stampOf } from './paths.ts';
import { inject, makeBlob, strippedNode } from './sea.ts';

/** What one architecture's binary is made from, and how to run its programs here. */
interface Toolchain {
  node: string; // the pinned Node for that machine
  addon: string; // the addon built for it
  strip: string;
  /** `command args` as run here: the Node by default, or another program for that machine. */
  run: (args: string[], command?: string) => [string, string[]];
}

function toolchain(arch: AgentArch, log: (line: string) => void): Toolchain {
  if (arch === 'x64') {
    ensureNativeBuilt();
    return { node: PINNED_NODE, addon: ADDON, strip: 'strip', run: (args: string[], command: string = PINNED_NODE) => [command, args] };
  }
  ensureCrossTools(log);
  const pkg = arm64NodePackage(log);
  log('cross-compiling native/ for arm64 (when its sources changed)');
  const addon = ensureNativeArm64Built(pkg);
  const node = join(pkg, 'bin', 'node');
  return { node, addon, strip: CROSS_STRIP, run: (args: string[], command: string = node) => arm64Command(command, args) };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

/** Files that shape the binary besides the bundles' own sources. */
function toolInputs(tc: Toolchain): string[] {
  const here = relative(ROOT, import.meta.dirname);
  return [
    'scripts/build.ts',
    'scripts/build-native.ts',
    'package.json',
    ...readdirSync(import.meta.dirname).filter((f) => f.endsWith('.ts')).map((f) => join(here, f)),
    // The addon is hashed as embedded; its sources too, so a binary built
    // before a change of native/ is not taken as fresh.
    'native/binding.gyp',
    ...filesUnder(join(ROOT, 'native', 'src')).map((f) => relative(ROOT, f)),
    relative(ROOT, tc.node),
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
export function isFresh(arch: AgentArch = 'x64'): boolean {
  const binary = binaryOf(arch);
  const stampPath = stampOf(arch);
  if (!existsSync(binary) || !existsSync(stampPath)) return false;
  try {
    const stamp = JSON.parse(readFileSync(stampPath, 'utf8')) as Stamp;
    if (sha256(binary) !== stamp.binary) return false;
    return Object.entries(stamp.inputs).every(([p, hash]) => existsSync(join(ROOT, p)) && sha256(join(ROOT, p)) === hash);
  } catch {
    return false;
  }
}

export async function buildAgentBinary(log: (line: string) => void = () => {}, arch: AgentArch = 'x64'): Promise<string> {
  const tc = toolchain(arch, log);
  const work = mkdtempSync(join(tmpdir(), `periscope-sea-${arch}-`));
  const target = binaryOf(arch);
  const stampPath = stampOf(arch);
  try {
    // Hash what we embed, not what the repo holds a moment later.
    const addon = join(work, 'periscope_native.node');
    copyFileSync(tc.addon, addon);
    log(`${arch}: bundling agent/cli.ts (ESM) and agent/sea-bootstrap.ts (CommonJS main) with esbuild`);
    const bundles = await bundle(work);
    log(`${arch}: making the SEA blob with the pinned Node${arch === 'x64' ? '' : ` for ${arch} (under qemu)`}`);
    const blob = makeBlob(work, { main: bundles.main, assets: { 'agent.mjs': bundles.agent, 'periscope_native.node': addon } }, tc.run);
    log(`${arch}: copying and stripping the pinned Node`);
    const binary = join(work, `periscope-agent-linux-${arch}`);
    strippedNode(binary, tc.node, tc.strip);
    log(`${arch}: injecting the blob with postject`);
    inject(binary, blob);

    const [command, args] = tc.run(['--version'], binary);
    const check = spawnSync(command, args, { encoding: 'utf8', env: {} });
    if (check.status !== 0 || !/^periscope \S+/.test(check.stdout)) {
      throw new Error(`the new ${arch} binary does not run: --version gave status ${check.status}\n${check.stdout}${check.stderr}`);
    }

    const inputs: Record<string, string> = {};
    for (const p of [...bundles.inputs, ...toolInputs(tc)].sort()) inputs[p] = sha256(join(ROOT, p));
    inputs[relative(ROOT, tc.addon)] = sha256(addon);
    mkdirSync(DIST, { recursive: true });
    // Copy then rename: a concurrent reader sees the old binary or the new one, never half.
    const tmp = `${target}.tmp-${process.pid}`;
    copyFileSync(binary, tmp);
    renameSync(tmp, target);
    // The x64 agent is also the Alpine one (with the glibc runtime): both must fit 40 MiB, so it gets the smallest gzip there is.
    log(`${arch}: compressing the download relays serve (${arch === 'x64' ? 'pigz -11 where installed, about two minutes' : 'gzip -9'}; kept beside the binary)`);
    await writeDownload(target, arch === 'x64' ? 'smallest' : 9);
    const stamp: Stamp = { binary: sha256(target), inputs };
    writeFileSync(`${stampPath}.tmp-${process.pid}`, JSON.stringify(stamp, null, 2) + '\n');
    renameSync(`${stampPath}.tmp-${process.pid}`, stampPath);
    return target;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The binary, built first unless a fresh one is there. */
export async function ensureAgentBinary(log?: (line: string) => void, arch: AgentArch = 'x64'): Promise<string> {
  return isFresh(arch) ? binaryOf(arch) : buildAgentBinary(log, arch);
}
