// Does the generated offsets table (probed with x86-64 headers) hold for
// arm64 CPython? For every set of headers on this machine (pyenv installs,
// and Debian's arm64 libpython3.11-dev from the arm64 root that
// scripts/test-pythons/prepare.sh prepares), native/tools/probe.c is compiled
// twice, with the host's cc and with Debian's aarch64-linux-gnu-gcc, and the
// arm64 probe is run under qemu. The two must differ exactly where
// native/src/arch_offsets.cc says (a larger pthread_mutex_t moves 3.7-3.11's
// gilstate.tstate_current), by exactly the values it holds.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { arm64Command, CACHE, missingCrossTools } from '../../scripts/build-agent/cross.ts';
import { ROOT } from '../../scripts/build-agent/paths.ts';
import { PYENV_VERSIONS } from '../helpers/pythons.ts';

const PROBE = join(ROOT, 'native', 'tools', 'probe.c');
const CFLAGS = ['-std=gnu11', '-O0', '-DPy_BUILD_CORE=1', '-DPy_BUILD_CORE_BUILTIN=1'];
const ARM64_ROOT = join(CACHE, 'arm64', 'root');
const work = mkdtempSync(join(tmpdir(), 'periscope-arm64-offsets-'));
after(() => rmSync(work, { recursive: true, force: true }));

/** { "3.11": { runtime_gilstate_tstate_current: 592 } } from arch_offsets.cc's table. */
function declaredFixes(): Map<string, Record<string, number>> {
  const src = readFileSync(join(ROOT, 'native', 'src', 'arch_offsets.cc'), 'utf8');
  const fixes = new Map<string, Record<string, number>>();
  for (const m of src.matchAll(/\{(\d+), (\d+), (\d+)\}/g)) fixes.set(`${m[1]}.${m[2]}`, { runtime_gilstate_tstate_current: Number(m[3]) });
  return fixes;
}

function probe(cc: string[], includes: string[], name: string): Map<string, string> {
  const exe = join(work, name);
  const build = spawnSync(cc[0]!, [...cc.slice(1), ...CFLAGS, ...includes.map((i) => `-I${i}`), PROBE, '-o', exe], { encoding: 'utf8' });
  assert.equal(build.status, 0, `${cc.join(' ')} ${includes.join(' ')}: ${build.stderr}`);
  const [command, args] = cc[0] === 'gcc' ? [exe, []] : arm64Command(exe, [], ARM64_ROOT);
  const run = spawnSync(command, args, { encoding: 'utf8' });
  assert.equal(run.status, 0, `${name}: ${run.stderr}`);
  return new Map(run.stdout.trim().split('\n').map((l) => l.split(' ')).filter((w) => w[0] !== 'meta').map((w) => [w[0]!, w[1]!]));
}

function differences(x64: Map<string, string>, arm64: Map<string, string>): Record<string, number> {
  assert.deepEqual([...arm64.keys()].sort(), [...x64.keys()].sort(), 'the probes printed different fields');
  const out: Record<string, number> = {};
  for (const [field, value] of arm64) if (x64.get(field) !== value) out[field] = Number(value);
  return out;
}

const missing = missingCrossTools();
const noRoot = !existsSync(join(ARM64_ROOT, 'usr', 'bin', 'python3.11')) ? `no arm64 root at ${ARM64_ROOT} (bash scripts/test-pythons/prepare.sh --only arm64)` : undefined;
const skip = missing.length > 0 ? `needs Debian's ${missing.join(', ')}` : noRoot;
const fixes = declaredFixes();

const headerSets: { label: string; minor: string; x64: string[]; arm64: string[] }[] = [];
for (const name of existsSync(PYENV_VERSIONS) ? readdirSync(PYENV_VERSIONS).sort() : []) {
  const inc = join(PYENV_VERSIONS, name, 'include');
  const dir = existsSync(inc) ? readdirSync(inc).find((d) => d.startsWith('python')) : undefined;
  const m = /^(\d+\.\d+)\.\d+$/.exec(name);
  // 3.13+ targets describe their own layout (_Py_DebugOffsets).
  if (dir && m && !['3.13', '3.14', '3.15'].includes(m[1]!)) headerSets.push({ label: `pyenv ${name}`, minor: m[1]!, x64: [join(inc, dir)], arm64: [join(inc, dir)] });
}
// Debian's own headers for each machine: the x64 ones on this system, the arm64 ones from the root.
if (existsSync('/usr/include/python3.11/Python.h')) {
  headerSets.push({ label: 'Debian libpython3.11-dev, amd64 vs arm64', minor: '3.11', x64: ['/usr/include/python3.11'], arm64: [join(ARM64_ROOT, 'usr', 'include', 'python3.11'), join(ARM64_ROOT, 'usr', 'include')] });
}

for (const set of headerSets) {
  test(`arm64 offsets: ${set.label}`, { skip }, () => {
    const x64 = probe(['gcc'], set.x64, `x64-${set.label.replace(/\W+/g, '_')}`);
    const arm64 = probe(['aarch64-linux-gnu-gcc'], set.arm64, `arm64-${set.label.replace(/\W+/g, '_')}`);
    assert.deepEqual(differences(x64, arm64), fixes.get(set.minor) ?? {}, `arm64 differs from x86-64 otherwise than native/src/arch_offsets.cc says for ${set.minor}`);
  });
}
