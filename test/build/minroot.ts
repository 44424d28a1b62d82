// A minimal Debian root with a Python and no Node, where the single binary
// must run: `debootstrap --variant=minbase --include=python3 bookworm`.
// It has the C library, libstdc++ and libgcc_s (apt needs them) and nothing
// of Node's.
//
// Cached in ~/.cache/periscope/minroot-bookworm (PERISCOPE_MINROOT overrides
// it; PERISCOPE_DEBIAN_MIRROR picks the mirror) and made only when missing:
// about 40 s of debootstrap, 222 MB. It is built beside the cache and renamed
// into place when complete, so an interrupted run leaves no half root; a
// marker file records the recipe, and a root made by another recipe is
// rebuilt. Delete the directory to force a rebuild. Test files run in
// parallel: one builds while the others wait on a lock (a directory beside the
// cache, held by a live pid), so no test ever sees a root being replaced.
//
// Run directly (`node test/build/minroot.ts`) it makes the cache and prints
// how long debootstrap took.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const MINROOT = process.env.PERISCOPE_MINROOT ?? join(homedir(), '.cache', 'periscope', 'minroot-bookworm');
const SUITE = 'bookworm';
const RECIPE = `debootstrap --variant=minbase --include=python3 ${SUITE} (1)`;
const MARKER = '.periscope-minroot';

export type Minroot = { root: string; debootstrapSeconds?: number } | { skip: string };

export function minrootReady(root = MINROOT): boolean {
  try {
    return readFileSync(join(root, MARKER), 'utf8').trim() === RECIPE;
  } catch {
    return false;
  }
}

/**
 * PERISCOPE_DEBIAN_MIRROR, else the Debian mirror apt already uses for the
 * suite (so debootstrap goes where this machine's network allows), else
 * deb.debian.org.
 */
export function debianMirror(): string {
  if (process.env.PERISCOPE_DEBIAN_MIRROR) return process.env.PERISCOPE_DEBIAN_MIRROR;
  const texts: string[] = [];
  for (const dir of ['/etc/apt/sources.list.d']) {
    try {
      for (const f of readdirSync(dir)) if (/\.(sources|list)$/.test(f)) texts.push(readFileSync(join(dir, f), 'utf8'));
    } catch {
      // no such directory
    }
  }
  try {
    texts.push(readFileSync('/etc/apt/sources.list', 'utf8'));
  } catch {
    // none
  }
  for (const text of texts) {
    // deb822 stanzas: "URIs: http://deb.debian.org/debian" with "Suites: bookworm ..."
    for (const stanza of text.split(/\n\s*\n/)) {
      const uris = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (uris && suites.includes(SUITE)) return uris;
    }
    // one-line form: "deb [opts] http://deb.debian.org/debian bookworm main"
    const line = new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${SUITE}\\s`, 'm').exec(text);
    if (line) return line[1]!;
  }
  return 'http://deb.debian.org/debian';
}

function have(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

function tail(text: string, lines = 15): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs `fn` holding the build lock; a lock left by a dead process is taken over. */
async function withBuildLock<T>(log: (line: string) => void, fn: () => Promise<T>): Promise<T> {
  const lock = `${MINROOT}.lock`;
  const owner = join(lock, 'pid');
  mkdirSync(join(MINROOT, '..'), { recursive: true });
  let waited = false;
  for (;;) {
    try {
      mkdirSync(lock);
      writeFileSync(owner, String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder = 0;
      try {
        holder = Number(readFileSync(owner, 'utf8'));
      } catch {
        // created, pid not written yet
      }
      if (holder && !alive(holder)) {
        rmSync(lock, { recursive: true, force: true });
        continue;
      }
      if (!waited) log(`waiting for another test (pid ${holder || '?'}) that is building ${MINROOT}`);
      waited = true;
      // Asynchronously: a test that waits here keeps its event loop (and
      // the sockets it holds to a relay) alive meanwhile.
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * The cached root, made first if missing; or why it cannot be made here
 * (not root, no debootstrap and no apt to install it, no mirror).
 */
export async function ensureMinroot(log: (line: string) => void = () => {}): Promise<Minroot> {
  if (minrootReady()) return { root: MINROOT };
  if (process.getuid?.() !== 0) return { skip: `${MINROOT} is missing and making it needs root (debootstrap)` };
  return withBuildLock(log, async () => (minrootReady() ? { root: MINROOT } : buildMinroot(log)));
}

/** Runs a command without blocking the event loop; resolves with its status and output. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', (err) => resolve({ status: null, output: `${output}${err.message}` }));
    child.on('close', (status) => resolve({ status, output }));
  });
}

async function buildMinroot(log: (line: string) => void): Promise<Minroot> {
  if (!have('debootstrap')) {
    log('installing debootstrap with apt-get');
    const apt = await run('sh', ['-c', 'apt-get install -y -q debootstrap || (apt-get update -q && apt-get install -y -q debootstrap)'], {
      ...process.env,
      DEBIAN_FRONTEND: 'noninteractive',
    });
    if (apt.status !== 0 || !have('debootstrap')) {
      return { skip: `${MINROOT} is missing and debootstrap could not be installed:\n${tail(apt.output)}` };
    }
  }
  const mirror = debianMirror();
  const building = `${MINROOT}.building-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  log(`debootstrap --variant=minbase --include=python3 ${SUITE} from ${mirror} (about a minute)`);
  const started = performance.now();
  const result = await run('debootstrap', ['--variant=minbase', '--include=python3', SUITE, building, mirror]);
  const debootstrapSeconds = (performance.now() - started) / 1000;
  if (result.status !== 0 || !existsSync(join(building, 'usr', 'bin', 'python3'))) {
    rmSync(building, { recursive: true, force: true });
    return { skip: `${MINROOT} is missing and debootstrap failed (${mirror}):\n${tail(result.output)}` };
  }
  // The downloaded packages are not part of the root.
  const archives = join(building, 'var', 'cache', 'apt', 'archives');
  for (const f of readdirSync(archives)) if (f.endsWith('.deb')) rmSync(join(archives, f));
  writeFileSync(join(building, MARKER), `${RECIPE}\n`);
  rmSync(MINROOT, { recursive: true, force: true }); // an older recipe (under the lock, nobody uses it)
  renameSync(building, MINROOT);
  return { root: MINROOT, debootstrapSeconds };
}

if (import.meta.main) {
  const r = await ensureMinroot((line) => console.log(line));
  if ('skip' in r) {
    console.error(`minroot: ${r.skip}`);
    process.exit(1);
  }
  console.log(`minroot: ${r.root}${r.debootstrapSeconds ? ` (debootstrap ${r.debootstrapSeconds.toFixed(1)} s)` : ' (cached)'}`);
}
