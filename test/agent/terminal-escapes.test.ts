// Names from a target reach the customer's or the engineer's terminal through
// `dump`, `top` and error messages. A target whose function, file and thread
// names carry escape sequences and bidi controls (test/targets/terminal_names.py)
// must not get any of them through raw: each shows as a visible \xNN / \uNNNN.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeRun, runPeriscope } from '../helpers/periscope.ts';
import { newestPython } from '../helpers/pythons.ts';
import { startTarget } from '../helpers/targets.ts';

const py = newestPython();
const skip = py && Number(py.version.split('.')[1]) >= 8 ? undefined : 'needs Python 3.8+ (code.replace)';
// ESC, BEL, C1 CSI, RLO, LRI: none may reach the terminal.
const RAW = /[\u001b\u0007\u009b\u202e\u2066]/;

function assertInert(output: string, context: string): void {
  const at = output.search(RAW);
  assert.equal(at, -1, `a raw control character reached the terminal at ${at}: ${JSON.stringify(output.slice(Math.max(0, at - 40), at + 40))}\n${context}`);
}

test('dump and top show control characters in target names as visible escapes', { skip, timeout: 60_000 }, async (t) => {
  const target = await startTarget(py!, 'terminal_names.py', { args: ['60'], t });
  await target.truth();

  const dump = await runPeriscope(['dump', '--pid', String(target.pid)], { timeoutMs: 30_000 });
  assert.equal(dump.code, 0, describeRun(dump));
  assertInert(dump.stdout + dump.stderr, describeRun(dump));
  assert.ok(dump.stdout.includes('evil\\x1b[2J\\x1b]0;pwned\\x07name\\u202egnp.exe (file\\x1b[31m.py:'), `the function and file are shown escaped:\n${describeRun(dump)}`);
  assert.ok(dump.stdout.includes('"thread\\x9b31m\\u2066x"'), `the thread name is shown escaped:\n${describeRun(dump)}`);

  const top = await runPeriscope(['top', '--pid', String(target.pid), '-d', '2'], { timeoutMs: 30_000 });
  assert.equal(top.code, 0, describeRun(top));
  assertInert(top.stdout + top.stderr, describeRun(top));
  assert.ok(top.stdout.includes('\\x1b[2J'), `top shows the escaped name:\n${describeRun(top)}`);
});
