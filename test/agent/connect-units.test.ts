// `periscope connect` building blocks that need no relay and no Python:
// backoff, token loading and redaction, bounds, container ids, terminal
// safety, RELAY_URL handling.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Backoff } from '../../agent/remote/backoff.ts';
import { checkSpec, localsRequested, parsePids, type AgentLimits } from '../../agent/remote/bounds.ts';
import { parseContainerId } from '../../agent/remote/container-id.ts';
import { sanitize, TerminalLog } from '../../agent/remote/terminal-log.ts';
import { loadJoinToken, readTokenFile, Redactor, rejectTokenInArgv, TOKEN_ENV } from '../../agent/remote/token.ts';
import { relayEndpoint } from '../../agent/connect.ts';
import { isPeriscopeError } from '../../shared/errors.ts';
import type { CaptureSpec } from '../../shared/protocol.ts';

const JWT = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';

// ---- backoff ----------------------------------------------------------------

test('backoff: full jitter stays within [0, min(cap, base*2^n)) and doubles', () => {
  const seen: number[] = [];
  let r = 0;
  // Deterministic "random": cycle through 0, 0.5, 0.999…
  const values = [0, 0.5, 0.999999];
  const b = new Backoff({ baseMs: 500, capMs: 30_000, random: () => values[r++ % values.length]! });
  const windows: number[] = [];
  for (let i = 0; i < 12; i++) {
    const w = b.window();
    windows.push(w);
    const d = b.next();
    seen.push(d);
    assert.ok(d >= 0 && d < w, `attempt ${i}: delay ${d} outside [0, ${w})`);
  }
  assert.deepEqual(windows.slice(0, 7), [500, 1000, 2000, 4000, 8000, 16000, 30000]);
  assert.ok(windows.slice(6).every((w) => w === 30_000), 'the window is capped at 30 s');
  assert.equal(seen[0], 0);
  assert.equal(seen[1], 500, 'half of the second window (1 s)');
});

test('backoff: real randomness covers the window, never exceeds the cap, survives huge attempt counts', () => {
  const b = new Backoff({ baseMs: 500, capMs: 30_000 });
  let max = 0;
  for (let i = 0; i < 2000; i++) {
    const d = b.next();
    assert.ok(Number.isFinite(d) && d >= 0 && d < 30_000);
    max = Math.max(max, d);
  }
  assert.ok(max > 25_000, `2000 draws in a 30 s window should come near the top, max ${max}`);
});

test('backoff: resets after a connection that stayed up for the stable period, not before', () => {
  const b = new Backoff({ baseMs: 500, capMs: 30_000, stableMs: 30_000, random: () => 0.5 });
  for (let i = 0; i < 5; i++) b.next();
  assert.equal(b.window(), 16_000);
  b.connectionEnded(29_999);
  assert.equal(b.window(), 16_000, 'a short-lived connection does not reset');
  b.connectionEnded(30_000);
  assert.equal(b.attempt, 0);
  assert.equal(b.window(), 500);
  assert.equal(b.next(), 250);
});

// ---- token --------------------------------------------------------------------

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'periscope-token-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('token: from PERISCOPE_TOKEN, trimmed, and removed from the environment', () => {
  const env: NodeJS.ProcessEnv = { [TOKEN_ENV]: `  ${JWT}\n` };
  const got = loadJoinToken({ env });
  assert.equal(got.token, JWT);
  assert.equal(got.origin, TOKEN_ENV);
  assert.equal(env[TOKEN_ENV], undefined, 'the variable is not left for child processes');
});

test('token: missing or empty is a clear error', () => {
  for (const env of [{}, { [TOKEN_ENV]: '   ' }] as NodeJS.ProcessEnv[]) {
    assert.throws(() => loadJoinToken({ env }), (e: unknown) => isPeriscopeError(e, 'BAD_TOKEN') && /PERISCOPE_TOKEN/.test(e.message) && /--token-file/.test(e.message));
  }
  assert.throws(() => loadJoinToken({ env: { [TOKEN_ENV]: 'has space inside' } }), (e: unknown) => isPeriscopeError(e, 'BAD_TOKEN'));
});

test('token: a 0600 (or 0400) file is read; 0644, 0640, 0660 are refused with the chmod fix; never echoes the token', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'token');
  writeFileSync(file, `${JWT}\n`);
  for (const mode of [0o600, 0o400]) {
    chmodSync(file, mode);
    assert.equal(readTokenFile(file).token, JWT);
  }
  for (const mode of [0o644, 0o640, 0o660, 0o604, 0o602]) {
    chmodSync(file, mode);
    assert.throws(
      () => readTokenFile(file),
      (e: unknown) => {
        assert.ok(isPeriscopeError(e, 'BAD_TOKEN'));
        assert.match(e.message, new RegExp(`mode 0${mode.toString(8)}`));
        assert.match(e.message, /chmod 600/);
        assert.ok(!e.message.includes(JWT), 'the message must not contain the token');
        return true;
      },
    );
  }
});

test('token: file preferred over the environment; missing file, directory and fifo refused', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'token');
  writeFileSync(file, 'file-token-123456', { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { [TOKEN_ENV]: 'env-token-123456' };
  const got = loadJoinToken({ tokenFile: file, env });
  assert.equal(got.token, 'file-token-123456');
  assert.equal(got.ignoredEnv, true);
  assert.equal(env[TOKEN_ENV], undefined);
  assert.throws(() => readTokenFile(join(dir, 'nope')), /does not exist/);
  assert.throws(() => readTokenFile(dir), /not a regular file/);
  const fifo = join(dir, 'fifo');
  assert.equal(spawnSync('mkfifo', ['-m', '600', fifo]).status, 0, 'mkfifo');
  assert.throws(() => readTokenFile(fifo), /not a regular file/, 'a fifo is refused without blocking on open');
  assert.throws(() => loadJoinToken({ tokenFile: JWT, env: {} }), /not the token itself/);
});

test('token: argv never accepted (flags, JWT-shaped arguments, the env token itself), and never repeated', () => {
  const cases = [
    ['https://relay', '--token', 'abc'],
    ['https://relay', '--token=abc'],
    ['https://relay', '-token', 'abc'],
    ['https://relay', '--credential=abc'],
    ['https://relay', JWT],
    ['https://relay', '--pids', JWT],
    [`https://relay/?t=${JWT}`],
  ];
  for (const argv of cases) {
    assert.throws(
      () => rejectTokenInArgv(argv, {}),
      (e: unknown) => isPeriscopeError(e, 'BAD_ARGUMENT') && /never accepted on the command line/.test(e.message) && !e.message.includes(JWT) && !e.message.includes('abc'),
      argv.join(' '),
    );
  }
  assert.throws(() => rejectTokenInArgv(['https://relay', 'opaque-secret-value'], { [TOKEN_ENV]: 'opaque-secret-value' }), /never accepted/);
  rejectTokenInArgv(['https://relay.example.com', '--pids', '12,34', '--max-rate', '100', '--token-file', '/run/secrets/periscope'], {});
});

test('redactor: known secrets, JWTs and bearer headers are cut out', () => {
  const r = new Redactor();
  r.add('opaque-credential-42');
  const text = `a ${JWT} b opaque-credential-42 c Authorization: Bearer xyz123 d`;
  const out = r.redact(text);
  assert.ok(!out.includes(JWT) && !out.includes('opaque-credential-42') && !out.includes('xyz123'), out);
  assert.match(out, /^a \[redacted\] b \[redacted\] c Authorization: Bearer \[redacted\] d$/);
  const lines: string[] = [];
  const log = new TerminalLog({ redactor: r, write: (s) => lines.push(s), now: () => new Date(2024, 0, 2, 3, 4, 5) });
  log.line(`token ${JWT}`);
  assert.deepEqual(lines, ['[2024-01-02 03:04:05] token [redacted]\n']);
});

// ---- terminal -------------------------------------------------------------------

test('sanitize: escape sequences, newlines and bidi overrides cannot reach the terminal', () => {
  assert.equal(sanitize('alice\x1b[2J\x1b]0;pwned\x07'), 'alice\\x1b[2J\\x1b]0;pwned\\x07');
  assert.equal(sanitize('a\nb\rc'), 'a\\x0ab\\x0dc');
  assert.equal(sanitize('evil\u202etxt.exe'), 'evil\\u202etxt.exe');
  assert.equal(sanitize('x'.repeat(500), 10), `${'x'.repeat(9)}…`);
  assert.equal(sanitize('中文 ok'), '中文 ok');
});

// ---- bounds ----------------------------------------------------------------------

const limits: AgentLimits = { maxRate: 1000, maxDurationS: 600, allowLocals: false };
function spec(over: Partial<CaptureSpec> = {}): CaptureSpec {
  return { kind: 'record', pid: 42, rate: 100, duration: 10, subprocesses: false, mode: 'wall', idle: false, gil: false, blocking: false, ...over };
}

test('bounds: within limits; top/record "until stopped" capped at --max-duration', () => {
  assert.deepEqual(checkSpec(spec(), spec(), limits, 0), { ok: true, durationS: 10, capped: false });
  assert.deepEqual(checkSpec(spec({ rate: 1000, duration: 600 }), {}, limits, 0), { ok: true, durationS: 600, capped: false });
  assert.deepEqual(checkSpec(spec({ kind: 'top', duration: 0 }), {}, limits, 0), { ok: true, durationS: 600, capped: true });
  assert.deepEqual(checkSpec(spec({ kind: 'record', duration: 0 }), {}, { ...limits, maxDurationS: 30 }, 0), { ok: true, durationS: 30, capped: true });
  // A dump takes one sample: rate and duration do not apply.
  assert.deepEqual(checkSpec(spec({ kind: 'dump', rate: 100_000, duration: 99_999 }), {}, limits, 100), { ok: true, durationS: 0, capped: false });
});

test('bounds: refusals name the bound and the customer flag', () => {
  const refuse = (s: CaptureSpec, l: AgentLimits, raw: unknown = {}, running = 0) => {
    const r = checkSpec(s, raw, l, running);
    assert.equal(r.ok, false);
    assert.ok(!r.ok);
    assert.equal(r.code, 'REFUSED_BY_AGENT');
    return r.message;
  };
  assert.match(refuse(spec({ rate: 1001 }), limits), /1001 Hz.*limit of 1000 Hz.*--max-rate/);
  assert.match(refuse(spec({ rate: 200 }), { ...limits, maxRate: 100 }), /200 Hz.*100 Hz.*--max-rate/);
  assert.match(refuse(spec({ duration: 601 }), limits), /601 s.*600 s.*--max-duration/);
  assert.match(refuse(spec({ pid: 7 }), { ...limits, allowedPids: new Set([12, 34]) }), /pid 7.*--pids \(12, 34\)/);
  assert.match(refuse(spec({ kind: 'dump', pid: 7 }), { ...limits, allowedPids: new Set([12]) }), /--pids/);
  assert.match(refuse(spec(), limits, { locals: true }), /local variables.*--allow-locals/);
  assert.match(refuse(spec(), { ...limits, allowLocals: true }, { dump_locals: 1 }), /never collects local variables, even with --allow-locals/);
  assert.match(refuse(spec(), limits, {}, 8), /8 captures are already running/);
  assert.deepEqual(localsRequested({ locals: false, showLocals: 0, x: true }), []);
  assert.deepEqual(localsRequested({ includeLocals: 'yes' }), ['includeLocals']);
});

test('bounds: --pids parsing', () => {
  assert.deepEqual([...parsePids('12,34 56')], [12, 34, 56]);
  assert.throws(() => parsePids(''), /at least one/);
  assert.throws(() => parsePids('12,abc'), /"abc" is not a process id/);
  assert.throws(() => parsePids('0'), /not a process id/);
});

// ---- container id ----------------------------------------------------------------

const ID = 'a'.repeat(12) + '0123456789abcdef'.repeat(3) + 'b'.repeat(4);

test('container id: cgroup v1 docker, systemd scopes, kubepods, mountinfo; empty outside containers', () => {
  assert.equal(ID.length, 64);
  assert.equal(parseContainerId(`12:memory:/docker/${ID}\n0::/\n`, ''), ID);
  assert.equal(parseContainerId(`0::/system.slice/docker-${ID}.scope\n`, ''), ID);
  assert.equal(parseContainerId(`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-${ID}.scope\n`, ''), ID);
  assert.equal(parseContainerId(`11:cpu:/kubepods/burstable/pod1234/${ID}\n`, ''), ID);
  assert.equal(
    parseContainerId('0::/\n', `612 590 254:1 /var/lib/docker/containers/${ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda1 rw\n`),
    ID,
  );
  assert.equal(parseContainerId('0::/\n', `1 2 0:1 / / rw - overlay overlay rw,lowerdir=/x\n`), '');
  assert.equal(parseContainerId('4:memory:/process_api/07f3e0f39b3e4c724cbbe2f5f12a9fa7\n0::/\n', ''), '');
});

// ---- RELAY_URL -------------------------------------------------------------------

test('RELAY_URL: http→ws, https→wss, /ws/agent appended once, credentials and queries refused', () => {
  assert.deepEqual(relayEndpoint('https://relay.example.com'), { url: 'wss://relay.example.com/ws/agent', display: 'https://relay.example.com', encrypted: true, loopback: false });
  assert.equal(relayEndpoint('https://relay.example.com/base/').url, 'wss://relay.example.com/base/ws/agent');
  assert.equal(relayEndpoint('http://127.0.0.1:8080/ws/agent').url, 'ws://127.0.0.1:8080/ws/agent');
  assert.equal(relayEndpoint('http://localhost:8080').loopback, true);
  assert.equal(relayEndpoint('wss://r.example').url, 'wss://r.example/ws/agent');
  assert.throws(() => relayEndpoint('https://user:pw@relay.example.com'), /user name or password/);
  assert.throws(() => relayEndpoint('https://relay.example.com/?token=x'), /query/);
  assert.throws(() => relayEndpoint('ftp://relay.example.com'), /https:\/\//);
  assert.throws(() => relayEndpoint('relay.example.com'), /URL/);
});
