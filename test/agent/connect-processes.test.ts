// The process list `periscope connect` offers the relay: real Python targets
// of every installed version are found with the right version, user and
// thread count; `sleep` (and other non-Python processes) are not; --pids
// restricts; a pid a request names is probed on the spot.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isPythonExecutableName, mapsHaveLibpython, parseStat, parseStatus, PythonProcessScanner } from '../../agent/remote/python-processes.ts';
import { PeriscopeError } from '../../shared/errors.ts';
import { pythons } from '../helpers/pythons.ts';
import { startTarget, type Target } from '../helpers/targets.ts';

interface Truth {
  pid: number;
  version: string;
  threads: { name: string }[];
}

function startSleep(t: { after: (fn: () => void) => void }): number {
  const child = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  return child.pid!;
}

test('python-processes: pure parsers', () => {
  assert.deepEqual(parseStat('123 (a (weird) name) S 1 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 2 3'), { state: 'S', startTime: '98765' });
  assert.equal(parseStat('garbage'), undefined);
  assert.deepEqual(parseStatus('Name:\tpython3\nUid:\t1000\t1001\t1001\t1001\nThreads:\t7\n'), { uid: 1001, threads: 7 });
  for (const name of ['/usr/bin/python3.11', '/root/.pyenv/versions/2.7.18/bin/python2.7', '/usr/bin/python', '/opt/python3.12d', '/usr/bin/python3.11 (deleted)']) {
    assert.ok(isPythonExecutableName(name), name);
  }
  for (const name of ['/bin/sleep', '/usr/bin/node', '/usr/bin/ipython-helper', '/usr/bin/pythonista-app']) {
    assert.ok(!isPythonExecutableName(name), name);
  }
  assert.ok(mapsHaveLibpython('7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0\n'));
  assert.ok(!mapsHaveLibpython('7f00-7f01 r-xp 0 08:01 1 /usr/lib/libc.so.6\n'));
});

test('python-processes: finds real targets of every interpreter with version, user, threads; ignores sleep', async (t) => {
  const all = pythons();
  assert.ok(all.length > 0, 'no Python interpreter found to test with');
  const targets: { target: Target; truth: Truth }[] = [];
  for (const py of all) {
    const target = await startTarget(py, 'parked.py', { t });
    targets.push({ target, truth: await target.truth<Truth>() });
  }
  const sleepPid = startSleep(t);
  await sleep(50);

  const skipped: number[] = [];
  const scanner = new PythonProcessScanner({ onSkipped: (p) => skipped.push(p.pid) });
  const started = performance.now();
  const list = scanner.scan();
  const firstMs = performance.now() - started;
  const byPid = new Map(list.map((p) => [p.pid, p]));
  for (const { target, truth } of targets) {
    const got = byPid.get(target.pid);
    assert.ok(got, `${target.python.label} pid ${target.pid} not listed; got ${JSON.stringify(list.map((p) => p.pid))}`);
    assert.equal(got.version, truth.version, `${target.python.label}: version`);
    assert.equal(got.user, 'root');
    const threads = Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${target.pid}/status`, 'utf8'))![1]);
    assert.equal(got.threads, threads, `${target.python.label}: thread count`);
    assert.ok(got.threads >= truth.threads.length, `${target.python.label}: ${got.threads} threads < ${truth.threads.length} Python threads`);
    assert.ok(got.cmdline.includes('parked.py') && got.cmdline.includes(target.python.exe), got.cmdline);
  }
  assert.ok(!byPid.has(sleepPid), 'sleep is not a Python process');
  assert.ok(!byPid.has(process.pid), 'the agent itself is not listed');
  for (const { target } of targets) assert.ok(!skipped.includes(target.pid), `pid ${target.pid} reported unreadable (tests run as root)`);
  assert.deepEqual(list.map((p) => p.pid), [...list.map((p) => p.pid)].sort((a, b) => a - b), 'sorted by pid');

  // The second scan reuses what it learned (no re-attach), so it is cheap.
  const again = performance.now();
  const list2 = scanner.scan();
  const secondMs = performance.now() - again;
  // (Other Python processes on this machine may come and go meanwhile; ours stay.)
  for (const { target } of targets) assert.ok(list2.some((p) => p.pid === target.pid), `pid ${target.pid} missing from the second scan`);
  console.log(`scan of /proc: first ${firstMs.toFixed(1)} ms (attaching ${targets.length} targets), second ${secondMs.toFixed(1)} ms`);

  // probe(): why a pid is or is not offered.
  const one = targets[0]!;
  const probed = scanner.probe(one.target.pid);
  assert.ok('info' in probed && probed.info.version === one.truth.version);
  const notPython = scanner.probe(sleepPid);
  assert.ok('code' in notPython && notPython.code === 'NOT_PYTHON', JSON.stringify(notPython));
  assert.match((notPython as { message: string }).message, /sleep 60/);
  const gone = scanner.probe(2 ** 22 + 12345);
  assert.ok('code' in gone && gone.code === 'NO_SUCH_PROCESS');

  // A target that exits leaves the list.
  await one.target.kill();
  assert.ok(!scanner.scan().some((p) => p.pid === one.target.pid), 'an exited target is dropped');
});

test('python-processes: --pids restricts the list and the probe', async (t) => {
  const py = pythons().at(-1)!;
  const a = await startTarget(py, 'parked.py', { t });
  const b = await startTarget(py, 'parked.py', { t });
  await Promise.all([a.truth(), b.truth()]);
  const scanner = new PythonProcessScanner({ allowedPids: new Set([b.pid, 999_999_999]) });
  assert.deepEqual(scanner.scan().map((p) => p.pid), [b.pid]);
  const refused = scanner.probe(a.pid);
  assert.ok('code' in refused && refused.code === 'NOT_PYTHON');
});

test('python-processes: a Python process the reader cannot attach is not listed, is reported once, and probe says why', async (t) => {
  const py = pythons().at(-1)!;
  const target = await startTarget(py, 'parked.py', { t });
  await target.truth();
  const reports: string[] = [];
  let attaches = 0;
  const scanner = new PythonProcessScanner({
    allowedPids: new Set([target.pid]),
    pythonVersion: () => {
      attaches++;
      throw new PeriscopeError('PERMISSION_DENIED', 'ptrace is not allowed (test)');
    },
    onSkipped: (p) => reports.push(`${p.pid} ${p.code} ${p.cmdline.includes('parked.py')}`),
  });
  assert.deepEqual(scanner.scan(), []);
  assert.deepEqual(scanner.scan(), []);
  assert.deepEqual(reports, [`${target.pid} PERMISSION_DENIED true`], 'reported once');
  assert.equal(attaches, 1, 'not re-attached on every scan');
  const why = scanner.probe(target.pid);
  assert.ok('code' in why && why.code === 'PERMISSION_DENIED' && /ptrace/.test(why.message), JSON.stringify(why));
  assert.equal(attaches, 2, 'a request probes again at once');
});
