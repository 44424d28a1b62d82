// dist/periscope-agent-linux-x64, the agent as one executable (npm run build):
// what it needs from the system, its size and start time, that the
// environment cannot make it run foreign code, and that it profiles a Python
// inside a minimal Debian root that has no Node at all.
//
// The binary is built first unless a fresh one is in dist/ (see
// scripts/build-agent/index.ts); the Debian root is cached (test/build/minroot.ts).
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { AGENT_VERSION } from '../../agent/version.ts';
import { gzipSize, medianWallMs } from '../../scripts/build-agent/figures.ts';
import { ensureAgentBinary } from '../../scripts/build-agent/index.ts';
import { ADDON, PINNED_NODE } from '../../scripts/build-agent/paths.ts';
import { ensureMinroot } from './minroot.ts';

const MiB = 1024 * 1024;
const GZIP_BUDGET = 40 * MiB;
// What a glibc system has anyway; Node needs nothing more, and neither may we.
const SYSTEM_LIBRARIES = ['linux-vdso.so.1', 'libc.so.6', 'libstdc++.so.6', 'libgcc_s.so.1', 'libm.so.6', 'libdl.so.2', 'libpthread.so.0', 'ld-linux-x86-64.so.2'];
// A function name no interpreter or library has, for finding the target's frame.
const PROBE_FUNCTION = 'periscope_single_binary_probe';
const PROBE_PY = `import sys, time
def ${PROBE_FUNCTION}(ready):
    open(ready, 'w').close()
    deadline = time.time() + 60
    x = 0
    while time.time() < deadline:
        for i in range(5000):
            x += i * i
${PROBE_FUNCTION}(sys.argv[1])
`;

let binary: string;
const work = mkdtempSync(join(tmpdir(), 'periscope-single-binary-'));
const children = new Set<number>();

before(async () => {
  binary = await ensureAgentBinary((line) => console.log(`build: ${line}`));
});

after(() => {
  for (const pid of children) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  rmSync(work, { recursive: true, force: true });
});

function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 60_000): SpawnSyncReturns<string> {
  return spawnSync(command, args, { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout });
}

/** Starts the probe with this machine's python3; resolves once it is inside PROBE_FUNCTION. */
async function startProbe(t: TestContext): Promise<number> {
  const dir = mkdtempSync(join(work, 'probe-'));
  writeFileSync(join(dir, 'probe.py'), PROBE_PY);
  const ready = join(dir, 'ready');
  const child = spawn('python3', ['-B', '-E', '-s', join(dir, 'probe.py'), ready], { stdio: 'ignore' });
  children.add(child.pid!);
  t.after(() => child.kill('SIGKILL'));
  for (let i = 0; i < 200 && !existsSync(ready); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(existsSync(ready), 'the python3 probe did not start');
  return child.pid!;
}

function neededLibraries(lddOutput: string): string[] {
  return lddOutput
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0]!)
    .filter(Boolean)
    .map((lib) => lib.replace(/^.*\//, ''));
}

test('the binary needs only the C and C++ runtime libraries, fits the size budget, and starts fast', async (t) => {
  const ldd = run('ldd', [binary]);
  assert.equal(ldd.status, 0, ldd.stderr);
  assert.doesNotMatch(ldd.stdout, /not found/);
  const extra = neededLibraries(ldd.stdout).filter((lib) => !SYSTEM_LIBRARIES.includes(lib));
  assert.deepEqual(extra, [], `the binary needs libraries beyond glibc/libstdc++/libgcc_s:\n${ldd.stdout}`);
  // The addon inside it too (it is the file the stamp says was embedded).
  const addonNeeds = run('readelf', ['-d', ADDON]).stdout.match(/\(NEEDED\).*\[(.+)\]/g) ?? [];
  const addonExtra = addonNeeds.map((l) => /\[(.+)\]/.exec(l)![1]!).filter((lib) => !SYSTEM_LIBRARIES.includes(lib));
  assert.deepEqual(addonExtra, [], 'the native addon needs libraries beyond glibc/libstdc++/libgcc_s');

  const version = run(binary, ['--version'], {});
  assert.equal(version.status, 0, version.stderr);
  assert.equal(version.stdout, `periscope ${AGENT_VERSION}\n`);
  assert.equal(version.stderr, '', 'nothing on stderr: no SEA or experimental warnings');

  const raw = statSync(binary).size;
  const gz = await gzipSize(binary);
  t.diagnostic(`size: ${(raw / MiB).toFixed(1)} MiB raw, ${(gz / MiB).toFixed(1)} MiB gzip -9 (${gz} bytes; budget ${GZIP_BUDGET / MiB} MiB)`);
  assert.ok(gz <= GZIP_BUDGET, `gzipped binary is ${(gz / MiB).toFixed(1)} MiB, over the ${GZIP_BUDGET / MiB} MiB budget`);

  // Start-up against the plain pinned Node measured in the same run.
  const sea = medianWallMs(binary, ['--version'], 9);
  const node = medianWallMs(PINNED_NODE, ['-e', '0'], 9);
  const pid = await startProbe(t);
  const dumpMs = medianWallMs(binary, ['dump', '--pid', String(pid), '--json'], 5);
  t.diagnostic(`start: --version ${sea.toFixed(0)} ms, dump of a python3 ${dumpMs.toFixed(0)} ms; plain \`node -e 0\` ${node.toFixed(0)} ms (ratio ${(sea / node).toFixed(2)})`);
  assert.ok(sea < node * 3 + 100, `--version takes ${sea.toFixed(0)} ms, against ${node.toFixed(0)} ms for node -e 0`);
});

test('the environment cannot make the binary run code it was not built with', async (t) => {
  const dir = mkdtempSync(join(work, 'env-'));
  const marker = (name: string) => join(dir, `${name}.ran`);
  // Each piece of foreign code leaves a file behind when it runs.
  const evilJs = join(dir, 'evil.cjs');
  writeFileSync(evilJs, `require('fs').writeFileSync(${JSON.stringify(marker('js'))}, 'ran');\n`);
  const nodePath = join(dir, 'node_path');
  for (const pkg of ['bufferutil', 'utf-8-validate', 'msgpackr-extract', 'ws', 'msgpackr']) {
    mkdirSync(join(nodePath, pkg), { recursive: true });
    writeFileSync(join(nodePath, pkg, 'index.js'), `require('fs').writeFileSync(${JSON.stringify(marker(`node_path-${pkg}`))}, 'ran');\n`);
  }
  // An OpenSSL config that loads a "provider": a shared library whose constructor runs.
  let opensslConf: string | undefined;
  const so = join(dir, 'evil.so');
  writeFileSync(
    join(dir, 'evil.c'),
    `#include <fcntl.h>\n#include <unistd.h>\n__attribute__((constructor)) static void evil(void) { int fd = open(${JSON.stringify(marker('openssl'))}, O_CREAT | O_WRONLY, 0600); if (fd >= 0) close(fd); }\nint OSSL_provider_init(void) { return 0; }\n`,
  );
  if (run('cc', ['-shared', '-fPIC', '-o', so, join(dir, 'evil.c')]).status === 0) {
    opensslConf = join(dir, 'openssl.cnf');
    writeFileSync(opensslConf, `nodejs_conf = init\nopenssl_conf = init\n[init]\nproviders = prov\n[prov]\nevil = evil_sect\n[evil_sect]\nmodule = ${so}\nactivate = 1\n`);
  } else {
    t.diagnostic('no C compiler: the OPENSSL_CONF check is left out');
  }
  const cache = join(dir, 'compile-cache');
  const hostile: NodeJS.ProcessEnv = {
    NODE_OPTIONS: `--require ${evilJs} --import ${new URL(`file://${evilJs}`).href}`,
    NODE_PATH: nodePath,
    NODE_COMPILE_CACHE: cache,
    NODE_ICU_DATA: dir,
    ...(opensslConf ? { OPENSSL_CONF: opensslConf } : {}),
  };
  const cacheEntries = () => (existsSync(cache) ? readdirSync(cache, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name) : []);

  // Controls: the same environment does inject code into a plain Node.
  const plainScript = join(dir, 'plain.cjs');
  writeFileSync(plainScript, 'module.exports = 1;\n');
  run(PINNED_NODE, [plainScript], { NODE_OPTIONS: hostile.NODE_OPTIONS, NODE_COMPILE_CACHE: cache });
  assert.ok(existsSync(marker('js')), 'control: NODE_OPTIONS --require runs code in plain Node');
  assert.ok(cacheEntries().length > 0, 'control: plain Node writes its compile cache');
  if (opensslConf) {
    run(PINNED_NODE, ['-e', '0'], { OPENSSL_CONF: opensslConf });
    assert.ok(existsSync(marker('openssl')), 'control: OPENSSL_CONF loads a shared library into plain Node');
  }
  rmSync(cache, { recursive: true, force: true });
  for (const f of readdirSync(dir)) if (f.endsWith('.ran')) rmSync(join(dir, f));

  const pid = await startProbe(t);
  for (const args of [['--version'], ['dump', '--pid', String(pid), '--json']]) {
    const r = run(binary, args, hostile);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, '', `${args.join(' ')}: nothing on stderr`);
    if (args[0] === 'dump') assert.match(r.stdout, new RegExp(PROBE_FUNCTION));
  }
  assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.ran')), [], 'no foreign code ran');
  assert.deepEqual(cacheEntries(), [], 'nothing compiled through NODE_COMPILE_CACHE (a code cache there could replace our code)');

  // NODE_REPL_EXTERNAL_MODULE: Node refuses to start rather than load it.
  const repl = run(binary, ['--version'], { NODE_REPL_EXTERNAL_MODULE: evilJs });
  t.diagnostic(`NODE_REPL_EXTERNAL_MODULE set: exit ${repl.status}, ${repl.stderr.trim()}`);
  assert.ok(!existsSync(marker('js')));
});

test('the addon is loaded from another directory when TMPDIR is mounted noexec, and removed', async (t) => {
  const pid = await startProbe(t);
  const noexec = mkdtempSync(join(work, 'noexec-'));
  // A private mount namespace: the noexec tmpfs disappears with the shell.
  const r = run('unshare', ['--mount', 'sh', '-c', `mount -t tmpfs -o noexec tmpfs "$1" && TMPDIR="$1" "$2" dump --pid "$3" --json`, 'sh', noexec, binary, String(pid)]);
  if (r.status !== 0 && /unshare|mount/.test(r.stderr) && !/periscope/.test(r.stderr)) {
    t.skip(`cannot mount a noexec tmpfs here: ${r.stderr.trim()}`);
    return;
  }
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(PROBE_FUNCTION));
  const leftovers = ['/dev/shm', '/var/tmp'].flatMap((d) => readdirSync(d).filter((name) => /^periscope-[A-Za-z0-9]{6}$/.test(name)).map((name) => join(d, name)));
  assert.deepEqual(leftovers, [], 'the extracted addon is removed after loading');
});

test('runs in a minimal Debian root with python3 and no Node', { timeout: 15 * 60_000 }, async (t) => {
  const minroot = await ensureMinroot((line) => t.diagnostic(line));
  if ('skip' in minroot) {
    console.log(`SKIP single binary in a minimal root: ${minroot.skip}`);
    t.skip(minroot.skip);
    return;
  }
  const { root } = minroot;
  t.diagnostic(minroot.debootstrapSeconds ? `debootstrap took ${minroot.debootstrapSeconds.toFixed(1)} s` : `minimal root from cache: ${root}`);

  const inside = `/tmp/periscope-single-binary-${process.pid}`;
  const dir = join(root, inside);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  copyFileSync(binary, join(dir, 'periscope-agent'));
  run('chmod', ['755', join(dir, 'periscope-agent')]);
  writeFileSync(join(dir, 'probe.py'), PROBE_PY);

  // One shell inside a new mount and pid namespace: /proc is that
  // namespace's, and everything (the target too) dies with it.
  const script = `
cd ${inside}
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
if command -v node >/dev/null 2>&1; then echo yes > has-node; fi
ldd ./periscope-agent > ldd.out 2>&1
t0=$(date +%s%N); ./periscope-agent --version > version.out 2> version.err; echo $? > version.rc; ms $t0 > version.ms
python3 -B -E -s probe.py ${inside}/ready &
P=$!
n=0; while [ ! -e ready ] && [ $n -lt 200 ]; do n=$((n + 1)); sleep 0.05; done
t0=$(date +%s%N); timeout 60 ./periscope-agent dump --pid $P --json > dump.json 2> dump.err; echo $? > dump.rc; ms $t0 > dump.ms
timeout 60 ./periscope-agent record --pid $P -d 2 -f raw -o record.raw > record.out 2> record.err; echo $? > record.rc
ls -a /tmp > tmp.after
kill $P
`;
  // Without root, a user namespace grants chroot and mounts.
  const asUser = process.getuid?.() === 0 ? [] : ['--map-root-user'];
  const r = spawnSync('unshare', [...asUser, '--mount', '--pid', '--fork', `--mount-proc=${join(root, 'proc')}`, 'chroot', root, '/bin/sh', '-c', script], {
    encoding: 'utf8',
    env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    timeout: 180_000,
  });
  assert.equal(r.status, 0, `unshare/chroot failed: ${r.error ?? ''}${r.stderr}`);
  const read = (name: string) => readFileSync(join(dir, name), 'utf8');

  assert.ok(!existsSync(join(dir, 'has-node')), 'the root must not have a node');
  assert.doesNotMatch(read('ldd.out'), /not found/, 'every library the binary needs is in the root');
  assert.equal(read('version.rc').trim(), '0', read('version.err'));
  assert.equal(read('version.out'), `periscope ${AGENT_VERSION}\n`);
  assert.equal(read('version.err'), '');

  assert.equal(read('dump.rc').trim(), '0', read('dump.err'));
  const threads = JSON.parse(read('dump.json')) as { frames: { name: string; filename: string }[] }[];
  const frame = threads.flatMap((th) => th.frames).find((f) => f.name === PROBE_FUNCTION);
  assert.ok(frame, `dump inside the root shows ${PROBE_FUNCTION}: ${read('dump.json').slice(0, 2000)}`);
  assert.equal(frame.filename, `${inside}/probe.py`);

  assert.equal(read('record.rc').trim(), '0', read('record.err'));
  assert.match(read('record.raw'), new RegExp(`${PROBE_FUNCTION} \\(${inside}/probe.py:\\d+\\)`));

  // The addon was written to a private directory and removed once loaded.
  const leftovers = read('tmp.after').split('\n').filter((name) => /^periscope-[A-Za-z0-9]{6}$/.test(name));
  assert.deepEqual(leftovers, [], 'the extracted addon is removed');
  t.diagnostic(`inside the root: --version ${read('version.ms').trim()} ms, dump ${read('dump.ms').trim()} ms (wall, including start)`);
});
