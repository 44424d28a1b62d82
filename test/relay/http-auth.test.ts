// Sign-in, sign-out, CSRF, accounts, security headers and the operational
// endpoints of a real relay process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, Client, adminClient, metric, removeDataDir, startRelay, userClient, type RelayProcess } from '../helpers/relay.ts';
import { PROTOCOL_VERSION } from '../../shared/protocol.ts';

let relay: RelayProcess;
let admin: Client;

before(async () => {
  relay = await startRelay();
  admin = await adminClient(relay);
});

after(async () => {
  await relay?.stop();
  if (relay) removeDataDir(relay.dataDir);
});

describe('startup', () => {
  test('prints where to sign in, never the configured password or any token', () => {
    const out = relay.output();
    assert.match(out, /periscope relay listening on http:\/\/127\.0\.0\.1:\d+/);
    assert.match(out, /open http:\/\/localhost:\d+ and sign in as admin/);
    assert.match(out, /then create a support session and paste its command into the customer's container/);
    assert.doesNotMatch(out, new RegExp(ADMIN_PASSWORD));
    assert.doesNotMatch(out, /eyJ/, 'no JWT is ever printed');
  });

  test('data dir is 0700 and its files 0600', () => {
    assert.equal(statSync(relay.dataDir).mode & 0o777, 0o700);
    for (const f of ['relay.db', 'signing-key']) assert.equal(statSync(join(relay.dataDir, f)).mode & 0o777, 0o600, f);
    assert.equal(statSync(join(relay.dataDir, 'captures')).mode & 0o777, 0o700);
  });

  test('a generated admin password is printed exactly once', async () => {
    const fresh = await startRelay({ env: { PERISCOPE_ADMIN_PASSWORD: '' } });
    try {
      const m = /admin password \(generated now, shown only this once\): (\S+)/.exec(fresh.output());
      assert.ok(m, fresh.output());
      const c = new Client(fresh);
      assert.equal((await c.login('admin', m[1])).status, 200);
      await fresh.stop();
      const again = await startRelay({ dataDir: fresh.dataDir, env: { PERISCOPE_ADMIN_PASSWORD: '' } });
      try {
        assert.doesNotMatch(again.output(), /admin password/);
        assert.equal((await new Client(again).login('admin', m[1])).status, 200, 'the password survives the restart');
      } finally {
        await again.stop();
      }
    } finally {
      await fresh.stop();
      removeDataDir(fresh.dataDir);
    }
  });
});

describe('login, me, logout', () => {
  test('login sets an HttpOnly SameSite=Strict cookie; me returns the user and a CSRF token', async () => {
    const c = new Client(relay);
    const res = await c.post('/api/login', { username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(res.status, 200, res.text);
    const cookie = res.headers.get('set-cookie') ?? '';
    assert.match(cookie, /periscope_session=/);
    assert.match(cookie, /HttpOnly/i);
    assert.match(cookie, /SameSite=Strict/i);
    assert.doesNotMatch(cookie, /Secure/i, 'plain http: no Secure flag');
    const me = await c.get('/api/me');
    assert.equal(me.status, 200);
    assert.equal(me.json.user.username, 'admin');
    assert.equal(me.json.user.admin, true);
    assert.equal(typeof me.json.csrfToken, 'string');
    assert.ok(me.json.csrfToken.length >= 20);
  });

  test('wrong password and unknown user are both 401 BAD_CREDENTIALS', async () => {
    for (const [username, password] of [['admin', 'nope-nope-nope'], ['nobody', 'whatever-123']]) {
      const res = await new Client(relay).post('/api/login', { username, password });
      assert.equal(res.status, 401);
      assert.equal(res.json.error.code, 'BAD_CREDENTIALS');
    }
  });

  test('me without a cookie is 401 with a JSON error naming the fix', async () => {
    const res = await new Client(relay).get('/api/me');
    assert.equal(res.status, 401);
    assert.equal(res.json.error.code, 'UNAUTHENTICATED');
    assert.match(res.json.error.message, /POST \/api\/login/);
  });

  test('a forged cookie is refused', async () => {
    const c = new Client(relay);
    c.cookie = 'periscope_session=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    assert.equal((await c.get('/api/me')).status, 401);
  });

  test('logout revokes the sign-in on the server: the old cookie stops working', async () => {
    const c = new Client(relay);
    await c.login('admin', ADMIN_PASSWORD);
    const stolen = c.cookie;
    const out = await c.post('/api/logout');
    assert.equal(out.status, 200, out.text);
    assert.match(out.headers.get('set-cookie') ?? '', /periscope_session=;/);
    const replay = new Client(relay);
    replay.cookie = stolen;
    assert.equal((await replay.get('/api/me')).status, 401);
  });

  test('repeated failures for one user from one address are rate limited (429 with Retry-After)', async () => {
    const fresh = await userClient(relay, admin, 'ratelimited');
    const c = new Client(relay);
    let last;
    for (let i = 0; i < 6; i++) last = await c.post('/api/login', { username: 'ratelimited', password: 'wrong-password!' });
    assert.equal(last!.status, 429);
    assert.equal(last!.json.error.code, 'TOO_MANY_ATTEMPTS');
    assert.ok(Number(last!.headers.get('retry-after')) > 0);
    // Even the right password is refused while locked.
    const right = await c.post('/api/login', { username: 'ratelimited', password: 'ratelimited-password-123' });
    assert.equal(right.status, 429);
    assert.equal((await fresh.get('/api/me')).status, 200, 'existing sign-ins are unaffected');
    assert.ok((await metric(relay, 'periscope_auth_failures_total')) >= 6);
  });
});

describe('CSRF', () => {
  test('a state-changing request without X-CSRF-Token is refused 403', async () => {
    const res = await admin.post('/api/sessions', { name: 'x' }, { csrf: false });
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'CSRF_TOKEN');
  });

  test('a wrong X-CSRF-Token is refused 403', async () => {
    const res = await admin.request('POST', '/api/sessions', { name: 'x' }, { csrf: false, headers: { 'x-csrf-token': 'not-the-token' } });
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'CSRF_TOKEN');
  });

  test('a foreign Origin is refused 403 even with the right token and cookie', async () => {
    const res = await admin.post('/api/sessions', { name: 'x' }, { origin: 'https://evil.example' });
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'CSRF_ORIGIN');
    const login = await new Client(relay).post('/api/login', { username: 'admin', password: ADMIN_PASSWORD }, { origin: 'https://evil.example' });
    assert.equal(login.status, 403, 'login CSRF is refused too');
  });

  test('the CSRF token of one sign-in does not work for another', async () => {
    const other = new Client(relay);
    await other.login('admin', ADMIN_PASSWORD);
    const res = await admin.request('POST', '/api/sessions', { name: 'x' }, { csrf: false, headers: { 'x-csrf-token': other.csrfToken! } });
    assert.equal(res.status, 403);
  });

  test('with own Origin and token the request goes through; form-encoded bodies are refused', async () => {
    assert.equal((await admin.post('/api/sessions', { name: 'ok' })).status, 201);
    const form = await admin.request('POST', '/api/sessions', undefined, { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.status, 201, 'an empty body is fine: every field is optional');
    const res = await fetch(`${relay.url}/api/sessions`, {
      method: 'POST',
      headers: { cookie: admin.cookie!, 'x-csrf-token': admin.csrfToken!, origin: relay.origin, 'content-type': 'text/plain' },
      body: '{"name":"x"}',
    });
    assert.equal(res.status, 415);
  });
});

describe('accounts', () => {
  test('an admin creates users; they can sign in; duplicates are 409', async () => {
    const res = await admin.post('/api/users', { username: 'alice', password: 'alice-secret-pw' });
    assert.equal(res.status, 201, res.text);
    assert.deepEqual(Object.keys(res.json.user).sort(), ['admin', 'id', 'username']);
    assert.equal(res.json.user.admin, false);
    const dup = await admin.post('/api/users', { username: 'alice', password: 'alice-secret-pw' });
    assert.equal(dup.status, 409);
    assert.equal(dup.json.error.code, 'USERNAME_TAKEN');
    const alice = new Client(relay);
    assert.equal((await alice.login('alice', 'alice-secret-pw')).status, 200);
    const forbidden = await alice.post('/api/users', { username: 'mallory', password: 'mallory-secret' });
    assert.equal(forbidden.status, 403);
    assert.equal(forbidden.json.error.code, 'FORBIDDEN');
  });

  test('bad usernames and short passwords are 400 with the rule in the message', async () => {
    const bad = await admin.post('/api/users', { username: 'Bad Name', password: 'long-enough-pw' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /username/);
    const weak = await admin.post('/api/users', { username: 'weak', password: 'short' });
    assert.equal(weak.status, 400);
    assert.equal(weak.json.error.code, 'WEAK_PASSWORD');
    const junk = await admin.request('POST', '/api/users', undefined, { headers: { 'content-type': 'application/json' } });
    assert.equal(junk.status, 400);
  });

  test('malformed JSON is a 400 BAD_JSON, oversized bodies 413', async () => {
    const res = await fetch(`${relay.url}/api/users`, {
      method: 'POST',
      headers: { cookie: admin.cookie!, 'x-csrf-token': admin.csrfToken!, 'content-type': 'application/json' },
      body: '{"username": ',
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as any).error.code, 'BAD_JSON');
    const big = await admin.post('/api/sessions', { name: 'x'.repeat(100_000) });
    assert.equal(big.status, 413);
  });

  test('the relay-wide audit log records logins, failures and user creation (admin only)', async () => {
    const res = await admin.get('/api/audit?limit=500');
    assert.equal(res.status, 200);
    const actions = new Set(res.json.entries.map((e: { action: string }) => e.action));
    for (const a of ['login', 'login.failed', 'logout', 'user.created']) assert.ok(actions.has(a), `audit has ${a}`);
    for (const e of res.json.entries) {
      assert.equal(typeof e.actor, 'string');
      assert.ok(!Number.isNaN(Date.parse(e.at)));
    }
  });
});

describe('every response', () => {
  test('carries the security headers, errors and unknown routes included', async () => {
    for (const path of ['/healthz', '/api/me', '/no/such/thing', '/']) {
      const res = await fetch(relay.url + path);
      const csp = res.headers.get('content-security-policy') ?? '';
      assert.match(csp, /default-src 'self'/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.doesNotMatch(csp, /unsafe-inline/, path);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
      assert.equal(res.headers.get('referrer-policy'), 'no-referrer', path);
    }
  });

  test('unknown API routes are JSON 404s', async () => {
    const res = await admin.get('/api/nope');
    assert.equal(res.status, 404);
    assert.equal(res.json.error.code, 'NOT_FOUND');
  });

  test('/ serves the web client, or a page saying it is not built', async () => {
    const res = await fetch(relay.url + '/');
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    assert.doesNotMatch(html, /<script>|<style>|\son[a-z]+=/i, 'no inline script or style');
  });

  test('/j/CODE with an unknown code: a script that explains, never the web client', async () => {
    const res = await fetch(`${relay.url}/j/ABCDEFGHJK`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /shellscript/);
    const script = await res.text();
    assert.match(script, /^#!\/bin\/sh\n/);
    assert.match(script, /not valid/);
    assert.match(script, /exit 1\n$/);
  });
});

describe('operations', () => {
  test('/healthz answers ok', async () => {
    const res = await fetch(`${relay.url}/healthz`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { status: string; protocol: number };
    assert.equal(body.status, 'ok');
    assert.equal(body.protocol, PROTOCOL_VERSION);
  });

  test('/metrics is Prometheus text with every documented metric', async () => {
    const res = await fetch(`${relay.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain; version=0\.0\.4/);
    const text = await res.text();
    for (const name of [
      'periscope_agents_connected',
      'periscope_captures_active',
      'periscope_chunks_in_total',
      'periscope_bytes_in_total',
      'periscope_bytes_out_total',
      'periscope_viewers',
      'periscope_viewer_frames_dropped_total',
      'periscope_auth_failures_total',
    ]) {
      assert.match(text, new RegExp(`^# TYPE ${name} (gauge|counter)$`, 'm'), name);
      assert.match(text, new RegExp(`^${name} \\d+$`, 'm'), name);
    }
  });
});
