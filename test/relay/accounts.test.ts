// Engineer accounts on a real relay process: the list, disabling and enabling
// (a disabled engineer cannot sign in and is signed out at once, HTTP and
// WebSocket), password resets by an admin and changes by the engineer (both
// sign the other sign-ins out), the refusals (non-admin, CSRF, self-disable,
// the last admin, weak and wrong passwords), the audit trail, and a data dir
// from before accounts could be disabled.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { ADMIN_PASSWORD, Client, adminClient, connectUi, removeDataDir, startRelay, tempDataDir, userClient, type RelayProcess } from '../helpers/relay.ts';
import { PASSWORD_RULES, passwordRulesText } from '../../shared/accounts.ts';
import type { AccountView } from '../../shared/http-views.ts';
import { openSqliteStore } from '../../relay/store/sqlite-store.ts';
import { BASE_SCHEMA, BASE_SCHEMA_VERSION, SCHEMA_VERSION } from '../../relay/store/database.ts';
import { hashPassword } from '../../relay/auth/passwords.ts';
import { setDisabled } from '../../relay/auth/accounts.ts';
import { isPeriscopeError } from '../../shared/errors.ts';

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

async function account(username: string): Promise<AccountView> {
  const users = (await admin.ok<{ users: AccountView[] }>('GET', '/api/users')).users;
  const found = users.find((u) => u.username === username);
  assert.ok(found, `${username} is listed: ${users.map((u) => u.username).join(', ')}`);
  return found;
}

async function signedIn(username: string, password = `${username}-password-123`): Promise<Client> {
  const c = new Client(relay);
  const res = await c.login(username, password);
  assert.equal(res.status, 200, res.text);
  return c;
}

async function auditActions(): Promise<{ action: string; actor: string; detail: Record<string, unknown> }[]> {
  return (await admin.ok('GET', '/api/audit?limit=1000')).entries;
}

describe('the list of engineers', () => {
  test('admins see every account with its state and last sign-in; never a hash', async () => {
    await userClient(relay, admin, 'listed');
    const res = await admin.get('/api/users');
    assert.equal(res.status, 200, res.text);
    const me = res.json.users.find((u: AccountView) => u.username === 'admin') as AccountView;
    assert.equal(me.admin, true);
    assert.equal(me.disabled, false);
    assert.equal(me.disabledAt, null);
    assert.ok(Date.parse(me.createdAt) > 0);
    assert.ok(me.lastSignInAt && Date.now() - Date.parse(me.lastSignInAt) < 60_000, `admin's last sign-in: ${me.lastSignInAt}`);
    const listed = await account('listed');
    assert.deepEqual(Object.keys(listed).sort(), ['admin', 'createdAt', 'disabled', 'disabledAt', 'id', 'lastSignInAt', 'username']);
    assert.ok(listed.lastSignInAt, 'the sign-in of userClient is recorded');
    assert.doesNotMatch(res.text, /scrypt|password/i);
  });

  test('an engineer created but never signed in has no last sign-in', async () => {
    const created = await admin.post('/api/users', { username: 'fresh', password: 'fresh-password-123' });
    assert.equal(created.status, 201, created.text);
    assert.equal(created.json.user.username, 'fresh');
    assert.equal((await account('fresh')).lastSignInAt, null);
  });

  test('non-admins get 403 FORBIDDEN, the signed-out 401', async () => {
    const bob = await userClient(relay, admin, 'plain');
    const res = await bob.get('/api/users');
    assert.equal(res.status, 403);
    assert.equal(res.json.error.code, 'FORBIDDEN');
    assert.equal((await new Client(relay).get('/api/users')).status, 401);
  });
});

describe('refusals on every state-changing account route', () => {
  test('non-admins are refused 403 FORBIDDEN; the target is unchanged', async () => {
    const target = await userClient(relay, admin, 'target');
    const targetId = (await account('target')).id;
    const mallory = await userClient(relay, admin, 'mallory');
    for (const [path, body] of [
      ['/api/users', { username: 'sneaky', password: 'sneaky-password-1' }],
      [`/api/users/${targetId}/disable`, undefined],
      [`/api/users/${targetId}/enable`, undefined],
      [`/api/users/${targetId}/password`, { password: 'taken-over-password' }],
    ] as const) {
      const res = await mallory.post(path, body);
      assert.equal(res.status, 403, `${path}: ${res.text}`);
      assert.equal(res.json.error.code, 'FORBIDDEN', path);
    }
    assert.equal((await account('target')).disabled, false);
    assert.equal((await target.get('/api/me')).status, 200, 'not signed out');
  });

  test('without the CSRF token or from a foreign Origin they are refused 403, and nothing changes', async () => {
    const bob = await userClient(relay, admin, 'csrfvictim');
    const id = (await account('csrfvictim')).id;
    const routes: [Client, string, unknown][] = [
      [admin, '/api/users', { username: 'forged', password: 'forged-password-1' }],
      [admin, `/api/users/${id}/disable`, undefined],
      [admin, `/api/users/${id}/enable`, undefined],
      [admin, `/api/users/${id}/password`, { password: 'forged-password-1' }],
      [bob, '/api/me/password', { currentPassword: 'csrfvictim-password-123', newPassword: 'forged-password-1' }],
    ];
    for (const [client, path, body] of routes) {
      const noToken = await client.post(path, body, { csrf: false });
      assert.equal(noToken.status, 403, `${path} without token: ${noToken.text}`);
      assert.equal(noToken.json.error.code, 'CSRF_TOKEN');
      const foreign = await client.post(path, body, { origin: 'https://evil.example' });
      assert.equal(foreign.status, 403, `${path} from evil: ${foreign.text}`);
      assert.equal(foreign.json.error.code, 'CSRF_ORIGIN');
    }
    assert.equal((await account('csrfvictim')).disabled, false);
    assert.equal((await admin.get('/api/users')).json.users.some((u: AccountView) => u.username === 'forged'), false);
    assert.equal((await bob.get('/api/me')).status, 200, 'still signed in with the old password');
    assert.equal((await new Client(relay).login('csrfvictim', 'csrfvictim-password-123')).status, 200, 'the password is unchanged');
  });

  test('an unknown account is 404 USER_NOT_FOUND', async () => {
    for (const path of ['/api/users/no-such-id/disable', '/api/users/no-such-id/enable']) {
      const res = await admin.post(path);
      assert.equal(res.status, 404, res.text);
      assert.equal(res.json.error.code, 'USER_NOT_FOUND');
    }
    const reset = await admin.post('/api/users/no-such-id/password', { password: 'long-enough-password' });
    assert.equal(reset.json.error.code, 'USER_NOT_FOUND');
  });
});

describe('disabling and enabling', () => {
  test('a disabled engineer is signed out at once (HTTP and WebSocket) and cannot sign in; enabling lets them back', async () => {
    const laptop = await userClient(relay, admin, 'dora');
    const phone = await signedIn('dora');
    const socket = await connectUi(relay, laptop);
    const id = (await account('dora')).id;

    const res = await admin.post(`/api/users/${id}/disable`);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.user.disabled, true);
    assert.ok(Date.parse(res.json.user.disabledAt) > 0);
    assert.equal(res.json.signInsRevoked, 2);
    for (const c of [laptop, phone]) {
      const me = await c.get('/api/me');
      assert.equal(me.status, 401, 'the next request is refused');
      assert.equal(me.json.error.code, 'UNAUTHENTICATED');
    }
    assert.equal((await socket.closed).code, 4001, 'the live view is closed');
    assert.equal((await account('dora')).disabled, true);

    const right = await new Client(relay).login('dora', 'dora-password-123');
    assert.equal(right.status, 403, right.text);
    assert.equal(right.json.error.code, 'ACCOUNT_DISABLED');
    assert.match(right.json.error.message, /disabled.*admin/);
    assert.equal(right.headers.get('set-cookie'), null, 'no cookie for a disabled account');
    const wrong = await new Client(relay).login('dora', 'not-doras-password');
    assert.equal(wrong.status, 401, 'a wrong password does not learn that the account is disabled');
    assert.equal(wrong.json.error.code, 'BAD_CREDENTIALS');

    const again = await admin.post(`/api/users/${id}/disable`);
    assert.equal(again.status, 200, 'disabling twice is harmless');
    assert.equal(again.json.signInsRevoked, 0);

    const enabled = await admin.post(`/api/users/${id}/enable`);
    assert.equal(enabled.status, 200, enabled.text);
    assert.equal(enabled.json.user.disabled, false);
    assert.equal(enabled.json.user.disabledAt, null);
    assert.equal((await laptop.get('/api/me')).status, 401, 'revoked sign-ins stay revoked');
    const back = await signedIn('dora');
    assert.equal((await back.get('/api/me')).json.user.username, 'dora');

    const entries = await auditActions();
    const disabled = entries.find((e) => e.action === 'user.disabled' && e.detail.username === 'dora');
    assert.ok(disabled, 'user.disabled audited');
    assert.equal(disabled.actor, 'admin');
    assert.equal(disabled.detail.signInsRevoked, 2);
    assert.equal(entries.filter((e) => e.action === 'user.disabled' && e.detail.username === 'dora').length, 1, 'a no-op is not audited');
    assert.ok(entries.some((e) => e.action === 'user.enabled' && e.detail.username === 'dora' && e.actor === 'admin'));
    assert.ok(entries.some((e) => e.action === 'login.refused' && e.actor === 'dora' && e.detail.reason === 'disabled'));
  });

  test('an admin cannot disable themselves: 409 CANNOT_DISABLE_SELF', async () => {
    const me = await account('admin');
    const res = await admin.post(`/api/users/${me.id}/disable`);
    assert.equal(res.status, 409, res.text);
    assert.equal(res.json.error.code, 'CANNOT_DISABLE_SELF');
    assert.equal((await admin.get('/api/me')).status, 200);
  });

  test('the last enabled admin cannot be disabled: 409 LAST_ADMIN', async () => {
    const dataDir = tempDataDir();
    const store = openSqliteStore(dataDir);
    try {
      await store.users.insert({ id: 'a1', username: 'root', passwordHash: 'x', admin: true, createdAt: 1 }, null);
      await store.users.insert({ id: 'a2', username: 'second', passwordHash: 'x', admin: true, createdAt: 2 }, null);
      await store.users.insert({ id: 'u1', username: 'someone', passwordHash: 'x', admin: false, createdAt: 3 }, null);
      const root = (await store.users.byId('a1'))!;
      assert.equal((await setDisabled(store, root, 'a2', true)).changed, true, 'one of two admins can go');
      // Whoever asks (here an engineer who is not an admin, as no HTTP caller could be), the last enabled admin stays.
      const someone = (await store.users.byId('u1'))!;
      await assert.rejects(setDisabled(store, someone, 'a1', true), (err) => isPeriscopeError(err, 'LAST_ADMIN'));
      assert.equal((await store.users.byId('a1'))!.disabledAt, null);
      assert.equal((await setDisabled(store, root, 'u1', true)).changed, true, 'engineers who are not admins can all go');
    } finally {
      await store.close();
      removeDataDir(dataDir);
    }
  });

  test('two admins disabling each other at once: one wins, an enabled admin remains', async (t) => {
    const own = await startRelay({ t });
    const first = await adminClient(own);
    const second = await userClient(own, first, 'second', true);
    const users = (await first.ok<{ users: AccountView[] }>('GET', '/api/users')).users;
    const id = (name: string) => users.find((u) => u.username === name)!.id;
    const [a, b] = await Promise.all([first.post(`/api/users/${id('second')}/disable`), second.post(`/api/users/${id('admin')}/disable`)]);
    const outcomes = [a, b].map((r) => `${r.status} ${r.json?.error?.code ?? ''}`.trim()).sort();
    assert.equal(outcomes.filter((o) => o === '200').length, 1, `exactly one succeeds: ${outcomes.join(', ')}`);
    const loser = outcomes.find((o) => o !== '200')!;
    assert.ok(['401 UNAUTHENTICATED', '409 LAST_ADMIN'].includes(loser), loser);
    const winner = a.status === 200 ? first : second;
    const after = (await winner.ok<{ users: AccountView[] }>('GET', '/api/users')).users;
    assert.equal(after.filter((u) => u.admin && !u.disabled).length, 1);
  });
});

describe('passwords', () => {
  test('an admin resets a password: the rules apply, every sign-in of that engineer ends, the new one works', async () => {
    const laptop = await userClient(relay, admin, 'erin');
    const phone = await signedIn('erin');
    const id = (await account('erin')).id;

    const weak = await admin.post(`/api/users/${id}/password`, { password: 'short' });
    assert.equal(weak.status, 400);
    assert.equal(weak.json.error.code, 'WEAK_PASSWORD');
    assert.ok(weak.json.error.message.includes(passwordRulesText()), weak.json.error.message);
    const long = await admin.post(`/api/users/${id}/password`, { password: 'x'.repeat(PASSWORD_RULES.maxLength + 1) });
    assert.equal(long.json.error.code, 'WEAK_PASSWORD');
    assert.equal((await laptop.get('/api/me')).status, 200, 'a refused reset signs nobody out');
    const missing = await admin.post(`/api/users/${id}/password`, {});
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error.code, 'BAD_ARGUMENT');

    const res = await admin.post(`/api/users/${id}/password`, { password: 'erin-new-password' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.signInsRevoked, 2);
    assert.equal(res.json.user.username, 'erin');
    for (const c of [laptop, phone]) assert.equal((await c.get('/api/me')).status, 401);
    assert.equal((await new Client(relay).login('erin', 'erin-password-123')).status, 401, 'the old password is gone');
    await signedIn('erin', 'erin-new-password');
    assert.equal((await admin.get('/api/me')).status, 200, "the admin's own sign-in goes on");

    const entry = (await auditActions()).find((e) => e.action === 'user.password_reset' && e.detail.username === 'erin');
    assert.ok(entry);
    assert.equal(entry.actor, 'admin');
    assert.doesNotMatch(JSON.stringify(entry), /erin-new-password/);
  });

  test('an admin does not reset their own password without the current one', async () => {
    const me = await account('admin');
    const res = await admin.post(`/api/users/${me.id}/password`, { password: 'admin-new-password' });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, 'BAD_ARGUMENT');
    assert.match(res.json.error.message, /\/api\/me\/password/);
  });

  test('an engineer changes their own password with the current one; their other sign-ins end, this one goes on', async () => {
    const here = await userClient(relay, admin, 'finn');
    const elsewhere = await signedIn('finn');

    const wrong = await here.post('/api/me/password', { currentPassword: 'not-the-password', newPassword: 'finn-new-password' });
    assert.equal(wrong.status, 403, wrong.text);
    assert.equal(wrong.json.error.code, 'WRONG_PASSWORD');
    assert.equal((await here.get('/api/me')).status, 200, 'a wrong current password does not sign out');
    const weak = await here.post('/api/me/password', { currentPassword: 'finn-password-123', newPassword: 'short' });
    assert.equal(weak.status, 400);
    assert.equal(weak.json.error.code, 'WEAK_PASSWORD');
    const bad = await here.post('/api/me/password', { newPassword: 'finn-new-password' });
    assert.equal(bad.json.error.code, 'BAD_ARGUMENT');

    const res = await here.post('/api/me/password', { currentPassword: 'finn-password-123', newPassword: 'finn-new-password' });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json, { ok: true, signInsRevoked: 1 });
    assert.equal((await here.get('/api/me')).status, 200, 'this sign-in goes on');
    assert.equal((await elsewhere.get('/api/me')).status, 401, 'the other one ends');
    assert.equal((await new Client(relay).login('finn', 'finn-password-123')).status, 401);
    await signedIn('finn', 'finn-new-password');
    const entries = await auditActions();
    assert.ok(entries.some((e) => e.action === 'user.password_changed' && e.actor === 'finn'));
    assert.ok(entries.some((e) => e.action === 'user.password_change_failed' && e.actor === 'finn'));
  });

  test('guessing the current password through a stolen cookie is rate limited like sign-ins', async () => {
    const thief = await userClient(relay, admin, 'gwen');
    let last;
    for (let i = 0; i < 6; i++) last = await thief.post('/api/me/password', { currentPassword: `guess-${i}-guess`, newPassword: 'gwen-stolen-password' });
    assert.equal(last!.status, 429, last!.text);
    assert.equal(last!.json.error.code, 'TOO_MANY_ATTEMPTS');
    assert.ok(Number(last!.headers.get('retry-after')) > 0);
  });
});

describe('a data dir from before accounts could be disabled', () => {
  test('is migrated on start: its accounts sign in, list and can be disabled', async (t) => {
    // A relay.db as a schema-1 relay left it: its tables, its version, two accounts.
    const dataDir = tempDataDir();
    mkdirSync(dataDir, { mode: 0o700 });
    const db = new DatabaseSync(join(dataDir, 'relay.db'));
    db.exec(BASE_SCHEMA);
    db.exec(`PRAGMA user_version = ${BASE_SCHEMA_VERSION}`);
    const insert = db.prepare('INSERT INTO users (id, username, password_hash, admin, created_at, created_by) VALUES (?, ?, ?, ?, ?, ?)');
    insert.run('old-admin', 'admin', await hashPassword(ADMIN_PASSWORD), 1, Date.parse('2024-01-01T00:00:00Z'), null);
    insert.run('old-engineer', 'veteran', await hashPassword('veteran-password-1'), 0, Date.parse('2024-01-02T00:00:00Z'), 'old-admin');
    db.close();

    const migrated = await startRelay({ t, dataDir });
    const oldAdmin = await adminClient(migrated);
    const users = (await oldAdmin.ok<{ users: AccountView[] }>('GET', '/api/users')).users;
    assert.deepEqual(users.map((u) => [u.id, u.username, u.disabled, u.createdAt]), [
      ['old-admin', 'admin', false, '2024-01-01T00:00:00.000Z'],
      ['old-engineer', 'veteran', false, '2024-01-02T00:00:00.000Z'],
    ]);
    assert.equal(users[1]!.lastSignInAt, null);
    const veteran = new Client(migrated);
    assert.equal((await veteran.login('veteran', 'veteran-password-1')).status, 200);
    assert.equal((await oldAdmin.post('/api/users/old-engineer/disable')).status, 200);
    assert.equal((await veteran.get('/api/me')).status, 401);
    assert.equal(await migrated.stop(), 0);
    const check = new DatabaseSync(join(dataDir, 'relay.db'));
    try {
      assert.equal((check.prepare('PRAGMA user_version').get() as { user_version: number }).user_version, SCHEMA_VERSION);
      const row = check.prepare("SELECT disabled_at, last_sign_in_at FROM users WHERE id = 'old-engineer'").get() as { disabled_at: number; last_sign_in_at: number };
      assert.ok(row.disabled_at > 0 && row.last_sign_in_at > 0, JSON.stringify(row));
    } finally {
      check.close();
    }
    removeDataDir(dataDir);
  });
});

test('the admin password of the harness still signs in (nothing above changed it)', async () => {
  assert.equal((await new Client(relay).login('admin', ADMIN_PASSWORD)).status, 200);
});
