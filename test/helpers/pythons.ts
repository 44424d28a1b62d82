// The Python interpreters the native tests run against: every CPython under
// $PYENV_ROOT/versions (default /root/.pyenv), Debian's /usr/bin/python3.11,
// and what scripts/test-pythons/prepare.sh leaves in the cache
// ($PERISCOPE_CACHE or ~/.cache/periscope): Debian sid's python3.14 and
// python3.15 and a free-threaded 3.13 ("3.13t"). An expected interpreter that
// is missing is reported with a printed reason, never dropped silently.
//
// PERISCOPE_PYTHONS=3.12,2.7,debian-3.11 narrows the list for a local run
// (matching labels or major.minor prefixes); what it leaves out is printed too.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, readdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Python {
  /** pyenv version directory name (e.g. "3.12.1"), "debian-3.11", "debian-3.14", "debian-3.15" or "3.13t". */
  label: string;
  /** Absolute path of the interpreter binary. */
  exe: string;
  /** major.minor.micro as reported by the interpreter itself. */
  version: string;
  /** A free-threaded (--disable-gil) build. */
  freeThreaded: boolean;
}

export const PYENV_ROOT = process.env.PYENV_ROOT || '/root/.pyenv';
export const PYENV_VERSIONS = join(PYENV_ROOT, 'versions');
export const DEBIAN_PYTHON = '/usr/bin/python3.11';
export const PYTHONS_CACHE = join(process.env.PERISCOPE_CACHE || join(homedir(), '.cache', 'periscope'), 'pythons');
const PREPARE = 'bash scripts/test-pythons/prepare.sh';

/** Interpreters outside pyenv, by label: where they are and what prepares them. */
const EXTRA: { label: string; exe: string; how: string }[] = [
  { label: 'debian-3.11', exe: DEBIAN_PYTHON, how: "Debian's python3.11 package" },
  { label: 'debian-3.14', exe: join(PYTHONS_CACHE, 'sid', 'usr', 'bin', 'python3.14'), how: PREPARE },
  { label: 'debian-3.15', exe: join(PYTHONS_CACHE, 'sid', 'usr', 'bin', 'python3.15'), how: PREPARE },
  { label: '3.13t', exe: join(PYTHONS_CACHE, '3.13t', 'bin', 'python3.13t'), how: PREPARE },
];

/** The interpreters the suite is meant to cover; each missing one is reported. */
export const EXPECTED = ['2.7', '3.6', '3.7', '3.8', '3.9', '3.10', '3.11', '3.12', '3.13', ...EXTRA.map((e) => e.label)] as const;

const VERSION_SCRIPT =
  "import sys, sysconfig; sys.stdout.write('%d.%d.%d %d' % (tuple(sys.version_info[:3]) + (1 if sysconfig.get_config_var('Py_GIL_DISABLED') else 0,)))";

let cached: Python[] | undefined;
const skipped: { label: string; reason: string }[] = [];

function skip(label: string, reason: string): void {
  skipped.push({ label, reason });
  console.log(`skip python ${label}: ${reason}`);
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Asks the interpreter for its version; null (with a printed reason) if it does not run. */
function probe(label: string, exe: string): Python | null {
  try {
    const out = execFileSync(exe, ['-E', '-s', '-c', VERSION_SCRIPT], {
      encoding: 'utf8',
      timeout: 15_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
    const m = /^(\d+\.\d+\.\d+) ([01])$/.exec(out);
    if (!m) {
      skip(label, `${exe} printed an unexpected version ${JSON.stringify(out)}`);
      return null;
    }
    return { label, exe, version: m[1]!, freeThreaded: m[2] === '1' };
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    skip(label, `${exe} does not run (${why})`);
    return null;
  }
}

function minorOf(version: string): string {
  return version.split('.').slice(0, 2).join('.');
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < 3; i++) if ((pa[i] ?? 0) !== (pb[i] ?? 0)) return (pa[i] ?? 0) - (pb[i] ?? 0);
  return 0;
}

function discover(): Python[] {
  const found: Python[] = [];

  let entries: string[] = [];
  try {
    entries = readdirSync(PYENV_VERSIONS).sort();
  } catch {
    console.log(`note: no pyenv versions directory at ${PYENV_VERSIONS}`);
  }
  for (const name of entries) {
    const exe = join(PYENV_VERSIONS, name, 'bin', 'python');
    if (!/^\d+\.\d+\.\d+$/.test(name)) {
      skip(name, `not a CPython release directory (${join(PYENV_VERSIONS, name)})`);
      continue;
    }
    if (!isExecutable(exe)) {
      skip(name, `not installed at ${exe}`);
      continue;
    }
    const py = probe(name, exe);
    if (py) found.push(py);
  }
  found.sort((a, b) => compareVersions(a.version, b.version));

  for (const minor of EXPECTED) {
    if (EXTRA.some((e) => e.label === minor)) continue;
    if (!found.some((p) => minorOf(p.version) === minor)) {
      skip(minor, `not installed at ${join(PYENV_VERSIONS, `${minor}.*`, 'bin', 'python')}`);
    }
  }

  for (const extra of EXTRA) {
    if (!isExecutable(extra.exe)) {
      skip(extra.label, `not installed at ${extra.exe} (${extra.how} provides it)`);
      continue;
    }
    const py = probe(extra.label, extra.exe);
    if (py) found.push(py);
  }

  const filter = (process.env.PERISCOPE_PYTHONS ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (filter.length === 0) return found;
  return found.filter((p) => {
    const keep = filter.some((f) => p.label === f || (/^\d+\.\d+\.\d+$/.test(p.label) && (p.version === f || p.version.startsWith(`${f}.`))));
    if (!keep) skip(p.label, `excluded by PERISCOPE_PYTHONS=${process.env.PERISCOPE_PYTHONS}`);
    return keep;
  });
}

/** Every usable interpreter: pyenv's oldest first, then the others. Computed (and its skips printed) once. */
export function pythons(): Python[] {
  cached ??= discover();
  return cached;
}

/** The expected or found interpreters that were left out, each with its (already printed) reason. */
export function skippedPythons(): { label: string; reason: string }[] {
  pythons();
  return [...skipped];
}

/** The newest GIL-enabled interpreter (what most customers run), for tests that need just one Python. */
export function newestPython(): Python | undefined {
  const all = pythons().filter((p) => !p.freeThreaded);
  return [...all].sort((a, b) => compareVersions(a.version, b.version)).at(-1);
}

/**
 * CPython 3.13 built with musl-gcc (scripts/test-pythons/musl.sh): the
 * interpreter of Alpine-like systems. Kept out of pythons() (the musl tests
 * use it by name: test/native/musl.test.ts, test/build/musl.test.ts), so
 * every other test's interpreter list stays what it was.
 */
export const MUSL_PYTHON_DIR = join(PYTHONS_CACHE, '3.13-musl');
export const MUSL_PYTHON = join(MUSL_PYTHON_DIR, 'usr', 'local', 'bin', 'python3.13');

/** The musl interpreter, or why it cannot be used. */
export function muslPython(): Python | { skip: string } {
  if (!isExecutable(MUSL_PYTHON)) return { skip: `no musl CPython at ${MUSL_PYTHON} (bash scripts/test-pythons/prepare.sh --only musl)` };
  const before = skipped.length;
  const py = probe('3.13-musl', MUSL_PYTHON);
  return py ?? { skip: skipped.splice(before).map((s) => s.reason).join('; ') };
}
