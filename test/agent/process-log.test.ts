// The customer's terminal stays readable under fork churn and a container
// full of processes the agent may not read (agent/remote/process-log.ts):
// the list is printed when it settles (or summed up once a minute while it
// keeps changing), and PERMISSION_DENIED is printed once per cause with a
// count. A fake clock drives every rule; no sleeping.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_SETTLE_MS, DEFAULT_SKIPPED_EVERY_MS, DEFAULT_SUMMARY_EVERY_MS, ProcessLog } from '../../agent/remote/process-log.ts';
import { RemoteSession } from '../../agent/remote/session.ts';
import { PythonProcessScanner } from '../../agent/remote/python-processes.ts';
import { TerminalLog } from '../../agent/remote/terminal-log.ts';
import { Redactor } from '../../agent/remote/token.ts';
import type { ProcessInfo } from '../../shared/protocol.ts';

const SCAN_MS = 2000;

function proc(pid: number, cmdline = `python3 job.py ${pid}`): ProcessInfo {
  return { pid, cmdline, version: '3.12.1', user: 'app', threads: 1, ppid: 100 };
}

function fakeLog(options: { restricted?: boolean } = {}) {
  let now = 1_000_000;
  const lines: string[] = [];
  const log = new ProcessLog({ write: (l) => lines.push(l), now: () => now, ...options });
  return {
    log,
    lines,
    advance(ms: number) {
      now += ms;
    },
    /** One scan every SCAN_MS for `ms`, each seeing `list(i)`. */
    scans(count: number, list: (i: number) => ProcessInfo[]) {
      for (let i = 0; i < count; i++) {
        now += SCAN_MS;
        log.scanned(list(i));
      }
    },
  };
}

test('process log: the first list is printed at once; an unchanged list never again', () => {
  const f = fakeLog();
  f.log.scanned([proc(100, 'python3 worker.py'), proc(200)]);
  assert.deepEqual(f.lines, ['the relay sees 2 Python processes: 100 (python3 worker.py), 200 (python3 job.py 200)']);
  f.scans(100, () => [proc(100, 'python3 worker.py'), proc(200)]);
  assert.equal(f.lines.length, 1);
});

test('process log: a change is printed once it has settled, not at every scan', () => {
  const f = fakeLog();
  f.log.scanned([proc(100)]);
  f.advance(SCAN_MS);
  f.log.scanned([proc(100), proc(300)]);
  assert.equal(f.lines.length, 1, 'not yet: it may keep changing');
  f.scans(Math.ceil(DEFAULT_SETTLE_MS / SCAN_MS) - 1, () => [proc(100), proc(300)]);
  assert.equal(f.lines.length, 1, `still within ${DEFAULT_SETTLE_MS} ms`);
  f.scans(1, () => [proc(100), proc(300)]);
  assert.deepEqual(f.lines.slice(1), ['the relay sees 2 Python processes: 100 (python3 job.py 100), 300 (python3 job.py 300)'], 'a plain change reads as before');
});

test('process log: fork churn every 2-4 s gives a line when it settles, counting what came and went', () => {
  const f = fakeLog();
  const parent = proc(100, 'python3 rq worker');
  f.log.scanned([parent]);
  // A child per job: a new pid on every other scan for 40 s, each gone by the next job.
  f.scans(20, (i) => (i % 2 === 0 ? [parent, proc(1000 + i)] : [parent]));
  assert.equal(f.lines.length, 1, `no line per change: ${JSON.stringify(f.lines)}`);
  // Quiet again: one line saying the list is what it was, and how many came and went.
  f.scans(3, () => [parent]);
  assert.deepEqual(f.lines.slice(1), ['10 short-lived Python processes started and exited; the relay sees the same 1 process as before']);
  f.scans(30, () => [parent]);
  assert.equal(f.lines.length, 2);
});

test('process log: a list that never settles is summed up at most once a minute', () => {
  const f = fakeLog();
  f.log.scanned([proc(100)]);
  // A new child on every scan for 3 minutes (each lives 4 s).
  f.scans(90, (i) => [proc(100), proc(5000 + i), proc(5000 + i - 1)]);
  const summaries = f.lines.slice(1);
  assert.ok(summaries.length >= 2 && summaries.length <= Math.ceil((90 * SCAN_MS) / DEFAULT_SUMMARY_EVERY_MS), `one summary a minute: ${JSON.stringify(summaries)}`);
  for (const line of summaries) assert.match(line, /^the Python processes keep changing \(\d+ started and \d+ exited in the last 60 s\); now the relay sees 3 Python processes: 100 /);
});

test('process log: a settled list with churn says how many more came and went; long lists are cut', () => {
  const f = fakeLog();
  f.log.scanned([proc(1)]);
  f.scans(1, () => [proc(1), proc(2)]);
  f.scans(1, () => [proc(1), proc(3)]);
  f.scans(1, () => Array.from({ length: 12 }, (_, i) => proc(10 + i)));
  f.scans(3, () => Array.from({ length: 12 }, (_, i) => proc(10 + i)));
  assert.equal(f.lines.length, 2);
  assert.match(f.lines[1]!, /^the relay sees 12 Python processes: 10 \(.*\), 17 \(python3 job\.py 17\), and 4 more \(2 more processes started and exited meanwhile\)$/);
});

test('process log: an empty list says so (among --pids when restricted)', () => {
  const f = fakeLog({ restricted: true });
  f.log.scanned([]);
  assert.deepEqual(f.lines, ['no Python process visible to this agent among --pids; the relay sees an empty list']);
});

test('process log: PERMISSION_DENIED once per cause, with a count; later ones summed up at most once a minute', () => {
  const f = fakeLog();
  const denied = (pid: number) => ({ pid, cmdline: `python3 other.py ${pid}`, code: 'PERMISSION_DENIED', message: 'ptrace: Operation not permitted' });
  // The first scan meets 20 processes of another user.
  for (let pid = 200; pid < 220; pid++) f.log.skipped(denied(pid));
  f.log.skipped({ pid: 300, cmdline: 'python2.6 old.py', code: 'UNSUPPORTED_VERSION', message: 'Python 2.6 is not supported' });
  f.advance(SCAN_MS);
  f.log.scanned([]);
  assert.deepEqual(f.lines, [
    'pid 200 (python3 other.py 200) looks like Python but cannot be read, so it is not offered: PERMISSION_DENIED: ptrace: Operation not permitted',
    'pid 300 (python2.6 old.py) looks like Python but cannot be read, so it is not offered: UNSUPPORTED_VERSION: Python 2.6 is not supported',
    '19 more Python processes cannot be read for the same reason (PERMISSION_DENIED), so they are not offered: pids 201, 202, 203, 204, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216, and 3 more; further ones are summed up at most every 60 s',
    'no Python process visible to this agent; the relay sees an empty list',
  ]);
  // Their fork churn: one more unreadable child per scan, summed up once a minute.
  const before = f.lines.length;
  for (let i = 0; i < 60; i++) {
    f.log.skipped(denied(1000 + i));
    f.advance(SCAN_MS);
    f.log.scanned([]);
  }
  const later = f.lines.slice(before);
  assert.equal(later.length, Math.floor((60 * SCAN_MS) / DEFAULT_SKIPPED_EVERY_MS), JSON.stringify(later));
  assert.match(later[0]!, /^\d+ more Python processes cannot be read for the same reason \(PERMISSION_DENIED\)/);
  const counted = later.map((l) => Number(/^(\d+) more/.exec(l)![1])).reduce((a, b) => a + b, 0);
  assert.ok(counted >= 55 && counted <= 60, `every one is counted once: ${counted}`);
});

test('session: the terminal gets no line per scan from a churning process list', async () => {
  const lines: string[] = [];
  let list: ProcessInfo[] = [proc(100, 'python3 app.py')];
  const scanner = new PythonProcessScanner({ procRoot: '/nonexistent' });
  scanner.scan = () => list;
  const session = new RemoteSession({
    limits: { maxRate: 100, maxDurationS: 60, allowLocals: false, allowedPids: undefined },
    log: new TerminalLog({ redactor: new Redactor(), write: (s) => lines.push(s) }),
    scanner,
    processRefreshMs: 10,
  });
  const sent: Uint8Array[] = [];
  session.welcome({ type: 'welcome', protocol: 2, agentId: 'a1', sessionId: 's1', resume: [] }, { send: (f) => sent.push(f), bufferedAmount: 0 });
  for (let i = 0; i < 30; i++) {
    list = i % 2 === 0 ? [proc(100, 'python3 app.py'), proc(2000 + i)] : [proc(100, 'python3 app.py')];
    await new Promise((r) => setTimeout(r, 12));
  }
  await session.shutdown(0);
  const about = lines.filter((l) => /relay sees|keep changing/.test(l));
  assert.equal(about.length, 1, `only the first list is printed while it churns: ${JSON.stringify(about)}`);
  assert.ok(sent.length > 10, 'the relay still gets every change');
});
