// A second engineer who is not a member of a session cannot open it, its
// captures or its one-liner, in the browser or over the WebSocket; once a
// member adds them (through the UI), they can. Also: sign-out, and the pages
// at a narrow (400 px) window without sideways scrolling.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { newestPython } from '../helpers/pythons.ts';
import { startTarget } from '../helpers/targets.ts';
import { adminClient } from '../helpers/relay.ts';
import { artifactPath, chromiumMissing, launchBrowser, signIn, startAgent, startWebRelay, watchPage } from './harness.ts';

const python = newestPython();
const skip = chromiumMissing() ?? (python ? undefined : 'no Python interpreter found');

async function noSidewaysScroll(page: Page, where: string): Promise<void> {
  const { scroll, width } = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, width: window.innerWidth }));
  assert.ok(scroll <= width + 1, `${where}: page is ${scroll}px wide in a ${width}px window`);
}

test('a non-member cannot open a session or its captures; a member can', { skip, timeout: 180_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const target = await startTarget(python!, 'top_hot.py', { t, args: ['300'] });
  await target.truth();
  const admin = await adminClient(relay);
  await admin.ok('POST', '/api/users', { username: 'bob', password: 'bob-password-123', admin: false });
  const session = await admin.ok<{ id: string; joinToken: string; code: string }>('POST', '/api/sessions', { name: 'alice only' });
  startAgent(t, relay.url, session.joinToken, ['--pids', String(target.pid)]);
  let agents: { id: string; processes: { pid: number }[] }[] = [];
  for (let i = 0; i < 100 && !agents.some((a) => a.processes.some((p) => p.pid === target.pid)); i++) {
    agents = (await admin.ok<{ agents: typeof agents }>('GET', `/api/sessions/${session.id}/agents`)).agents;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(agents.length === 1, 'agent joined');
  const capture = await admin.ok<{ id: string }>('POST', `/api/agents/${agents[0].id}/captures`, {
    kind: 'dump', pid: target.pid, rate: 100, duration: 0, subprocesses: false, idle: false, gil: false, blocking: false,
  });

  // Bob, narrow window.
  const bobContext = await launchBrowser(t, { width: 400, height: 800 });
  const bob = await bobContext.newPage();
  const bobSeen = watchPage(bob);
  await bob.goto(`${relay.url}/`);
  await signIn(bob, 'bob', 'bob-password-123');
  await bob.locator('.session-list').getByText(/No sessions yet/).waitFor();
  await noSidewaysScroll(bob, 'sessions list');
  await bob.screenshot({ path: artifactPath('narrow-sessions.png'), fullPage: true });

  await bob.goto(`${relay.url}/#/sessions/${session.id}`);
  await bob.locator('.error-box').first().waitFor();
  assert.match((await bob.locator('.error-box').first().textContent()) ?? '', /Not found/);
  assert.equal(await bob.locator('.command').count(), 0, 'no one-liner (join token) for a non-member');
  assert.equal(await bob.locator(`tr[data-pid]`).count(), 0, 'no processes for a non-member');
  assert.ok(!(await bob.content()).includes(session.joinToken), 'the join token is nowhere in the page');
  // The WebSocket refuses too: subscribing yields an error, never a session_state.
  await bob.goto(`${relay.url}/#/captures/${capture.id}`);
  await bob.locator('.error-box').first().waitFor();
  assert.equal(await bob.locator('.dump .thread').count(), 0, 'no dump for a non-member');

  // Alice (admin) adds bob through the session page.
  const adminContext = await launchBrowser(t);
  const alice = await adminContext.newPage();
  const aliceSeen = watchPage(alice);
  await alice.goto(`${relay.url}/#/sessions/${session.id}`);
  await signIn(alice, 'admin', relay.adminPassword);
  await alice.getByLabel('Engineer’s username').fill('bob');
  await alice.getByRole('button', { name: 'Add member' }).click();
  await alice.getByText('bob can now open this session.').waitFor();
  await alice.locator('.members-list li', { hasText: /^bob$/ }).waitFor();

  // Now bob can open the session, see the process and the dump.
  await bob.goto(`${relay.url}/#/sessions/${session.id}`);
  await bob.locator(`tr[data-pid="${target.pid}"]`).waitFor({ timeout: 15_000 });
  await bob.locator('.history tbody tr').first().waitFor();
  await noSidewaysScroll(bob, 'session page');
  await bob.screenshot({ path: artifactPath('narrow-session.png'), fullPage: true });
  await bob.goto(`${relay.url}/#/captures/${capture.id}`);
  await bob.locator('.dump .thread').first().waitFor({ timeout: 15_000 });
  await noSidewaysScroll(bob, 'dump page');

  // Keyboard: the capture form is reachable and operable without a mouse.
  await bob.goto(`${relay.url}/#/sessions/${session.id}`);
  await bob.locator(`tr[data-pid="${target.pid}"]`).waitFor({ timeout: 15_000 });
  const profileButton = bob.getByRole('button', { name: `Profile process ${target.pid}` });
  // A process-list refresh may re-render the row (and drop focus) between
  // the focus and the key press; the user would simply press again.
  for (let attempt = 1; ; attempt++) {
    await profileButton.focus();
    await bob.keyboard.press('Enter');
    try {
      await bob.locator('.capture-form form').waitFor({ timeout: 5_000 });
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
  await bob.getByRole('radio', { name: /Record/ }).focus();
  await bob.keyboard.press('Space');
  await bob.getByLabel('Duration (s)').fill('2');
  await bob.getByRole('button', { name: 'Start recording' }).focus();
  await bob.keyboard.press('Enter');
  await bob.waitForURL(/#\/captures\//);
  await bob.waitForFunction(() => (document.querySelector('.capture-status') as HTMLElement | null)?.dataset.status === 'complete', undefined, { timeout: 30_000 });
  await bob.locator('.fn-table tbody tr').first().waitFor();
  await noSidewaysScroll(bob, 'flame graph page');
  await bob.screenshot({ path: artifactPath('narrow-flamegraph.png'), fullPage: true });

  // Sign out: back to the sign-in form, and the session is no longer reachable.
  await bob.getByRole('button', { name: 'Sign out' }).click();
  await bob.getByRole('button', { name: 'Sign in' }).waitFor();
  await bob.goto(`${relay.url}/#/sessions/${session.id}`);
  await bob.getByRole('button', { name: 'Sign in' }).waitFor();
  assert.equal(await bob.locator('.agents').count(), 0);

  for (const seen of [bobSeen, aliceSeen]) {
    assert.deepEqual(seen.errors, []);
    assert.deepEqual(seen.dialogs, []);
    assert.deepEqual(seen.csp, []);
  }
});
