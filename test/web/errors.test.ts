// Errors are shown where they happen, in plain words with the fix: a capture
// the agent may not take (no ptrace permission: the Docker / Kubernetes fix),
// a target that exits mid-recording (what was captured is kept), an agent
// that goes offline.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { PERISCOPE } from '../helpers/periscope.ts';
import { newestPython } from '../helpers/pythons.ts';
import { startTarget } from '../helpers/targets.ts';
import { adminClient } from '../helpers/relay.ts';
import { artifactPath, chromiumMissing, launchBrowser, signIn, startAgent, startWebRelay, watchPage } from './harness.ts';

const python = newestPython();
const skip = chromiumMissing() ?? (python ? undefined : 'no Python interpreter found');
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'];

function cannotRunAsNobody(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to start the agent as another user';
  const r = spawnSync(NOBODY[0], [...NOBODY.slice(1), PERISCOPE, '--version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `cannot run the agent as nobody: ${r.stderr || r.error?.message}`;
}

async function startRecord(page: Page, pid: number, seconds: number): Promise<void> {
  const row = page.locator(`tr[data-pid="${pid}"]`);
  await row.waitFor({ timeout: 30_000 });
  await row.getByRole('button', { name: `Profile process ${pid}` }).click();
  await page.getByRole('radio', { name: /Record/ }).check();
  await page.getByLabel('Duration (s)').fill(String(seconds));
  await page.getByRole('button', { name: 'Start recording' }).click();
  await page.waitForURL(/#\/captures\//);
}

async function finalStatus(page: Page, timeout = 45_000): Promise<string> {
  await page.waitForFunction(() => {
    const s = (document.querySelector('.capture-status') as HTMLElement | null)?.dataset.status;
    return s !== undefined && !['starting', 'running'].includes(s);
  }, undefined, { timeout });
  return (await page.locator('.capture-status').getAttribute('data-status')) ?? '';
}

test('permission denied in the container is explained with its fix', { skip: skip ?? cannotRunAsNobody(), timeout: 120_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const target = await startTarget(python!, 'top_hot.py', { t, args: ['120'] });
  await target.truth();
  const admin = await adminClient(relay);
  const session = await admin.ok<{ id: string; joinToken: string }>('POST', '/api/sessions', {});
  // The agent runs as nobody; the target as root: ptrace is not allowed.
  const agent = startAgent(t, relay.url, session.joinToken, ['--pids', String(target.pid)], NOBODY);
  const context = await launchBrowser(t);
  const page = await context.newPage();
  const seen = watchPage(page);
  await page.goto(`${relay.url}/#/sessions/${session.id}`);
  await signIn(page, 'admin', relay.adminPassword);
  // The agent does not offer a process it cannot read; the page says why and how to fix it.
  const notice = page.locator('.agent .notice');
  try {
    await notice.waitFor({ timeout: 30_000 });
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- agent ---\n${agent.log()}`);
  }
  assert.equal(await page.locator(`tr[data-pid="${target.pid}"]`).count(), 0);
  const hint = (await notice.textContent()) ?? '';
  assert.match(hint, /not allowed to read/);
  assert.match(hint, /--cap-add SYS_PTRACE/);
  assert.match(hint, /securityContext\.capabilities\.add/);
  await page.screenshot({ path: artifactPath('error-permission-list.png') });

  // Asked anyway (a pid from elsewhere), the capture fails and the page explains it.
  const agents = (await admin.ok<{ agents: { id: string }[] }>('GET', `/api/sessions/${session.id}/agents`)).agents;
  const capture = await admin.ok<{ id: string }>('POST', `/api/agents/${agents[0].id}/captures`, {
    kind: 'record', pid: target.pid, rate: 100, duration: 5, subprocesses: false, idle: false, gil: false, blocking: false,
  });
  await page.goto(`${relay.url}/#/captures/${capture.id}`);
  assert.equal(await finalStatus(page), 'failed');
  const box = page.locator('.error-box').first();
  await box.waitFor();
  const text = (await box.textContent()) ?? '';
  assert.match(text, /Permission denied in the container/);
  assert.match(text, /--cap-add SYS_PTRACE/);
  assert.match(text, /securityContext\.capabilities\.add/);
  await page.screenshot({ path: artifactPath('error-permission.png') });
  assert.deepEqual(seen.errors, []);
});

test('a target that exits mid-recording, and an agent that goes offline', { skip, timeout: 120_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const target = await startTarget(python!, 'top_hot.py', { t, args: ['300'] });
  await target.truth();
  const admin = await adminClient(relay);
  const session = await admin.ok<{ id: string; joinToken: string }>('POST', '/api/sessions', {});
  const agent = startAgent(t, relay.url, session.joinToken, ['--pids', String(target.pid)]);
  const context = await launchBrowser(t);
  const page = await context.newPage();
  const seen = watchPage(page);
  await page.goto(`${relay.url}/#/sessions/${session.id}`);
  await signIn(page, 'admin', relay.adminPassword);
  await startRecord(page, target.pid, 60);
  // Once the flame graph shows samples, the target dies.
  await page.waitForFunction(() => Number((document.querySelector('.flame-canvas') as HTMLElement | null)?.dataset.samples) > 50, undefined, { timeout: 30_000 });
  await target.kill();
  assert.equal(await finalStatus(page, 60_000), 'target_exited');
  const text = (await page.locator('.error-box').first().textContent()) ?? '';
  assert.match(text, /The target process exited/);
  // What was captured until then is shown and downloadable.
  assert.ok(Number(await page.locator('.flame-canvas').getAttribute('data-samples')) > 50);
  await page.locator('.capture-actions a[data-format="raw"]').waitFor();

  // The customer presses Ctrl-C: the session page says the agent was ended by them
  // (it told the relay so), not that it lost its connection, and offers no Profile button.
  agent.child.kill('SIGINT');
  await page.locator('nav.crumbs a[href^="#/sessions/"]').click();
  await page.locator('.agent .badge', { hasText: 'ended by the customer' }).waitFor({ timeout: 30_000 });
  assert.equal(await page.locator('.agent .error-box').count(), 0, 'not “lost its connection”');
  assert.match((await page.locator('.agent').textContent()) ?? '', /The customer stopped this agent \(Ctrl-C\)/);
  assert.equal(await page.getByRole('button', { name: /Profile process/ }).count(), 0);
  await page.screenshot({ path: artifactPath('error-offline.png'), fullPage: true });
  assert.deepEqual(seen.errors, []);
});
