// Sign-in and origin hardening: the login limit holds under concurrency,
// passwords are hashed at OWASP's scrypt cost (old hashes upgraded at the next
// sign-in), and the Origin check trusts configured origins only, never what
// the Host header says.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { randomBytes, scryptSync } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { parseTrustedOrigins } from '../../relay/config.ts';
import { isPeriscopeError } from '../../shared/errors.ts';
import { ADMIN_PASSWORD, Client, adminClient, connectUi, refusedUpgrade, removeDataDir, startRelay, tempDataDir, type RelayProcess } from '../helpers/relay.ts';

const relays: RelayProcess[] = [];
after(async () => {
  for (const r of relays) await r.stop();
  for (const dir of new Set(relays.map((r) => r.dataDir))) removeDataDir(dir);
});

async function relayWith(env: Record<string, string> = {}, dataDir?: string): Promise<RelayProcess> {
  const r = await startRelay({ env, dataDir });
  relays.push(r);
  return r;
}

/** A raw HTTP request, so the Host header can be anything (fetch does not let a caller set it). */
function rawPost(relay: RelayProcess, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${relay.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function adminHash(dataDir: string): string {
  const db = new DatabaseSync(join(dataDir, 'relay.db'));
  try {
    return (db.prepare("SELECT password_hash FROM users WHERE username = 'admin'").get() as { password_hash: string }).password_hash;
  } finally {
    db.close();
  }
}

describe('the sign-in limit', () => {
  test('300 concurrent wrong passwords for one account: only 5 are checked, the rest are refused before hashing', { timeout: 120_000 }, async () => {
    const relay = await relayWith();
    const admin = await adminClient(relay);
    const created = await admin.post('/api/users', { username: 'dave', password: 'dave-password-123' });
    assert.equal(created.status, 201, created.text);

    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => new Client(relay).post('/api/login', { username: 'dave', password: `wrong-guess-${i}` })),
    );
    const statuses = new Map<number, number>();
    for (const r of results) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    // 401 means the password was really checked; 429 means refused before that.
    assert.deepEqual(Object.fromEntries(statuses), { 401: 5, 429: 295 });
    const refused = results.find((r) => r.status === 429)!;
    assert.equal(refused.json.error.code, 'TOO_MANY_ATTEMPTS');
    assert.ok(Number(refused.headers.get('retry-after')) > 0);
    // The right password waits out the window too.
    assert.equal((await new Client(relay).post('/api/login', { username: 'dave', password: 'dave-password-123' })).status, 429);
  });
});

describe('password hashing', () => {
  test('new hashes use scrypt N=2^17, r=8, p=1; an older, cheaper hash still signs in and is upgraded then', { timeout: 120_000 }, async () => {
    const dataDir = tempDataDir();
    const first = await relayWith({}, dataDir);
    await first.stop();
    assert.match(adminHash(dataDir), /^scrypt\$131072\$8\$1\$/);

    // What a relay before this change stored: N = 2^14.
    const password = 'an-old-password-from-2025';
    const salt = randomBytes(16);
    const key = scryptSync(password.normalize('NFKC'), salt, 32, { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 });
    const old = `scrypt$16384$8$1$${salt.toString('base64url')}$${key.toString('base64url')}`;
    const db = new DatabaseSync(join(dataDir, 'relay.db'));
    db.prepare("UPDATE users SET password_hash = ? WHERE username = 'admin'").run(old);
    db.close();

    const second = await relayWith({}, dataDir);
    const t0 = performance.now();
    const login = await new Client(second).post('/api/login', { username: 'admin', password });
    console.log(`# sign-in with an old hash, verified and re-hashed at N=2^17: ${Math.round(performance.now() - t0)} ms`);
    assert.equal(login.status, 200, login.text);
    await second.stop();
    const upgraded = adminHash(dataDir);
    assert.match(upgraded, /^scrypt\$131072\$8\$1\$/);
    assert.notEqual(upgraded, old);

    // The upgraded hash is the same password.
    const third = await relayWith({}, dataDir);
    assert.equal((await new Client(third).post('/api/login', { username: 'admin', password })).status, 200);
    assert.equal((await new Client(third).post('/api/login', { username: 'admin', password: ADMIN_PASSWORD })).status, 401);
  });
});

describe('the Origin check', () => {
  test('without PERISCOPE_PUBLIC_URL: the loopback origins on the port are trusted, a page that names itself in Host is not', async () => {
    const relay = await relayWith();
    const port = new URL(relay.url).port;
    // An empty body gets past the origin check to a 400: the origin was accepted.
    for (const origin of [`http://localhost:${port}`, `http://127.0.0.1:${port}`]) {
      assert.equal((await rawPost(relay, '/api/login', { origin }, '{}')).status, 400, origin);
    }
    // DNS rebinding: the attacker's name resolves to the relay, so Origin and Host agree, and both are the attacker's.
    const rebound = await rawPost(relay, '/api/login', { origin: `http://rebind.attacker.example:${port}`, host: `rebind.attacker.example:${port}` }, '{}');
    assert.equal(rebound.status, 403);
    assert.equal(rebound.json.error.code, 'CSRF_ORIGIN');
    assert.match(rebound.json.error.message, /PERISCOPE_TRUSTED_ORIGINS/);

    // The same for /ws/ui, with a valid sign-in cookie.
    const admin = await adminClient(relay);
    const ws = await refusedUpgrade(`${relay.wsUrl}/ws/ui`, { cookie: admin.cookie!, origin: `http://rebind.attacker.example:${port}`, host: `rebind.attacker.example:${port}` });
    assert.equal(ws.status, 403);
    assert.equal(ws.body.error.code, 'BAD_ORIGIN');
    // The relay's own page still connects.
    const own = await connectUi(relay, admin, { origin: `http://127.0.0.1:${port}` });
    own.close();
  });

  test('with PERISCOPE_PUBLIC_URL and PERISCOPE_TRUSTED_ORIGINS: exactly those origins are trusted', async () => {
    const relay = await relayWith({ PERISCOPE_PUBLIC_URL: 'https://periscope.example.com', PERISCOPE_TRUSTED_ORIGINS: 'https://ops.example.org, http://10.1.2.3:8080' });
    const port = new URL(relay.url).port;
    for (const origin of ['https://periscope.example.com', 'https://ops.example.org', 'http://10.1.2.3:8080']) {
      assert.equal((await rawPost(relay, '/api/login', { origin }, '{}')).status, 400, origin);
    }
    for (const [origin, host] of [
      [`http://localhost:${port}`, `localhost:${port}`],
      [`http://127.0.0.1:${port}`, `127.0.0.1:${port}`],
      ['http://periscope.example.com', 'periscope.example.com'],
      ['https://ops.example.org.attacker.example', 'ops.example.org.attacker.example'],
    ]) {
      const res = await rawPost(relay, '/api/login', { origin, host }, '{}');
      assert.equal(res.status, 403, origin);
      assert.equal(res.json.error.code, 'CSRF_ORIGIN');
    }
  });

  test('PERISCOPE_TRUSTED_ORIGINS takes origins only, and says so otherwise', () => {
    assert.deepEqual(parseTrustedOrigins(' https://Ops.Example.org , http://10.1.2.3:8080,https://a.example:443'), ['https://ops.example.org', 'http://10.1.2.3:8080', 'https://a.example']);
    assert.deepEqual(parseTrustedOrigins(''), []);
    for (const bad of ['https://a.example/', 'https://a.example/app', 'ftp://a.example', 'a.example', 'https://user@a.example', '*']) {
      assert.throws(
        () => parseTrustedOrigins(bad),
        (err: unknown) => isPeriscopeError(err, 'BAD_CONFIG') && /PERISCOPE_TRUSTED_ORIGINS/.test(err.message),
        bad,
      );
    }
  });
});
