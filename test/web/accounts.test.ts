// The Engineers page in Chromium against a real relay: the password rules are
// on screen before anything is submitted (and a password that breaks them is
// caught before it is sent), an admin adds an engineer, disables them (their
// browser, a second one, is signed out and cannot sign back in), enables them,
// resets their password (the new one signs in), and the engineer changes
// their own password.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { Client } from '../helpers/relay.ts';
import { passwordRulesText } from '../../shared/accounts.ts';
import { artifactPath, chromiumMissing, launchBrowser, signIn, startWebRelay, watchPage } from './harness.ts';

const RULES = passwordRulesText();

/** Every password-setting field on the page shows the rules, tied to it by aria-describedby. */
async function rulesShownFor(page: Page, labels: string[]): Promise<void> {
  for (const label of labels) {
    const input = page.getByLabel(label, { exact: true });
    const describedBy = await input.getAttribute('aria-describedby');
    assert.ok(describedBy, `${label} is described by its rules`);
    const hint = page.locator(`[id="${describedBy}"]`);
    assert.equal(await hint.isVisible(), true, `${label}: rules visible`);
    assert.equal(await hint.textContent(), RULES, label);
  }
}

test('engineers page: rules first, add, disable (signed out elsewhere), enable, reset, change own password', { skip: chromiumMissing(), timeout: 120_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const adminContext = await launchBrowser(t);
  const admin = await adminContext.newPage();
  const adminSeen = watchPage(admin);
  const userPosts: string[] = [];
  admin.on('request', (r) => {
    if (r.method() === 'POST' && new URL(r.url()).pathname === '/api/users') userPosts.push(r.postData() ?? '');
  });
  await admin.goto(`${relay.url}/`);
  await signIn(admin, 'admin', relay.adminPassword);

  // ---- the Engineers page, from the top bar; the rules before any attempt ----
  await admin.getByRole('link', { name: 'Engineers' }).click();
  await admin.waitForURL(/#\/engineers$/);
  await admin.locator('tr[data-username="admin"]').waitFor();
  assert.match((await admin.locator('tr[data-username="admin"]').textContent()) ?? '', /admin.*\(you\).*active/);
  assert.equal(await admin.getByRole('button', { name: 'Disable admin' }).count(), 0, 'no way to disable yourself');
  await rulesShownFor(admin, ['Password', 'New password', 'New password again']);
  assert.equal(await admin.locator('.error-box').count(), 0, 'no failure yet');
  await admin.screenshot({ path: artifactPath('engineers.png'), fullPage: true });

  // ---- add: a short password is caught here, with the rule, before it is sent ----
  const add = admin.locator('form.add-engineer');
  await add.getByLabel('Username').fill('dora');
  await add.getByLabel('Password', { exact: true }).fill('short');
  await add.getByRole('button', { name: 'Add engineer' }).click();
  await add.locator('.error-box', { hasText: 'does not follow the rules' }).waitFor();
  assert.ok(((await add.locator('.error-box').textContent()) ?? '').includes(RULES));
  assert.deepEqual(userPosts, [], 'nothing was sent');
  await add.getByLabel('Password', { exact: true }).fill('dora-password-123');
  await add.getByRole('button', { name: 'Add engineer' }).click();
  await add.getByText('Account dora created.').waitFor();
  assert.equal(userPosts.length, 1);
  const doraRow = admin.locator('tr[data-username="dora"]');
  await doraRow.waitFor();
  assert.match((await doraRow.textContent()) ?? '', /dora.*active.*never/);

  // ---- dora signs in, in a browser of her own ----
  const doraContext = await launchBrowser(t);
  const dora = await doraContext.newPage();
  const doraSeen = watchPage(dora);
  await dora.goto(`${relay.url}/`);
  await signIn(dora, 'dora', 'dora-password-123');
  assert.equal(await dora.getByRole('link', { name: 'Engineers' }).count(), 0, 'not an admin: no Engineers link');
  await dora.getByRole('link', { name: 'My account' }).click();
  await dora.getByRole('heading', { name: 'Change my password' }).waitFor();
  assert.equal(await dora.locator('.accounts-table').count(), 0, 'no list of engineers for her');
  await rulesShownFor(dora, ['New password', 'New password again']);

  // ---- disable: asked first, then she is signed out everywhere ----
  await admin.reload();
  await doraRow.waitFor();
  assert.match((await doraRow.textContent()) ?? '', /dora.*active/);
  assert.doesNotMatch((await doraRow.textContent()) ?? '', /never/, 'her sign-in shows');
  await admin.getByRole('button', { name: 'Disable dora' }).click();
  await admin.getByText('Disable dora? They are signed out at once.').waitFor();
  await admin.getByRole('button', { name: 'Yes, disable dora' }).click();
  await admin.getByText('dora is disabled and signed out (1 sign-in ended).').waitFor();
  await doraRow.locator('.badge', { hasText: 'disabled' }).waitFor();

  // Her idle page finds out by itself (the relay closes her socket): the sign-in form replaces the page.
  await dora.getByRole('button', { name: 'Sign in' }).waitFor({ timeout: 10_000 });
  assert.equal(await dora.getByRole('button', { name: 'Sign out' }).count(), 0);
  await dora.getByLabel('Username').fill('dora');
  await dora.getByLabel('Password').fill('dora-password-123');
  await dora.getByRole('button', { name: 'Sign in' }).click();
  await dora.locator('.error-box', { hasText: /disabled/ }).waitFor();
  assert.match((await dora.locator('.error-box').textContent()) ?? '', /ACCOUNT_DISABLED|ask an admin/);

  // ---- enable, then a new password from the admin ----
  await admin.getByRole('button', { name: 'Enable dora' }).click();
  await admin.getByText('dora is enabled again and can sign in.').waitFor();
  await admin.getByRole('button', { name: 'Reset the password of dora' }).click();
  await rulesShownFor(admin, ['New password for dora']);
  await admin.getByLabel('New password for dora').fill('dora-second-password');
  await admin.getByRole('button', { name: 'Set password' }).click();
  await admin.getByText(/^dora has a new password/).waitFor();
  assert.equal(await admin.getByLabel('New password for dora').count(), 0, 'the form closes');

  // The old password no longer works; the new one does.
  await dora.getByLabel('Password').fill('dora-password-123');
  await dora.getByRole('button', { name: 'Sign in' }).click();
  await dora.locator('.error-box', { hasText: /wrong username or password/ }).waitFor();
  await signIn(dora, 'dora', 'dora-second-password');

  // ---- dora changes her own password ----
  await dora.getByRole('link', { name: 'My account' }).click();
  const change = dora.locator('form.change-password');
  await change.getByLabel('Current password').fill('not-my-password');
  await change.getByLabel('New password', { exact: true }).fill('dora-third-password');
  await change.getByLabel('New password again').fill('dora-third-pasword');
  await change.getByRole('button', { name: 'Change my password' }).click();
  await change.getByText('The two new passwords differ').waitFor();
  await change.getByLabel('New password again').fill('dora-third-password');
  await change.getByRole('button', { name: 'Change my password' }).click();
  await change.getByText('Your current password is wrong').waitFor();
  await change.getByLabel('Current password').fill('dora-second-password');
  await change.getByRole('button', { name: 'Change my password' }).click();
  await change.getByText(/^Your password is changed/).waitFor();
  assert.equal(await dora.getByRole('button', { name: 'Sign out' }).count(), 1, 'still signed in here');
  assert.equal((await new Client(relay).login('dora', 'dora-third-password')).status, 200);
  await dora.screenshot({ path: artifactPath('my-account.png'), fullPage: true });

  for (const seen of [adminSeen, doraSeen]) {
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(seen.dialogs, []);
    assert.deepEqual(seen.csp, []);
  }
});
