// Everything a target reports is hostile: its function, file, thread names and
// command line here are HTML and script. The browser client must show them as
// text in every view — process list, top, flame graph and its table and
// tooltip, thread filter, dump — without running anything or adding elements.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { newestPython } from '../helpers/pythons.ts';
import { startTarget } from '../helpers/targets.ts';
import { adminClient, sleep } from '../helpers/relay.ts';
import { chromiumMissing, launchBrowser, signIn, startAgent, startWebRelay, watchPage } from './harness.ts';

const python = newestPython();
const skip = chromiumMissing() ?? (python ? undefined : 'no Python interpreter found');
// The right-to-left override would show "exe.png" as "gnp.exe" if rendered
// as is: the page must show the control itself, as a visible \u202e.
const HOSTILE_ARG = '<img src=x onerror=alert(2)><script>alert(4)</script>\u202egnp.exe';
const SHOWN_ARG = HOSTILE_ARG.replace('\u202e', '\\u202e');

/** No markup from the target may have become DOM: only our own bundle's script, no images/frames, no on* attributes. */
async function assertNoInjection(page: Page, where: string): Promise<void> {
  const found = await page.evaluate(() => {
    const scripts = [...document.querySelectorAll('script')].map((s) => s.getAttribute('src') ?? `inline:${s.textContent}`);
    const embedded = document.querySelectorAll('img, iframe, object, embed, svg, frame, video, audio, link[rel=import]').length;
    const handlers: string[] = [];
    for (const el of document.querySelectorAll('*')) {
      for (const a of el.attributes) if (a.name.toLowerCase().startsWith('on')) handlers.push(`${el.tagName}[${a.name}]`);
    }
    const stylesInline = document.querySelectorAll('[style]:not(canvas):not(.flame-scroll):not(.flame-sizer):not(.tooltip)').length;
    return { scripts, embedded, handlers, stylesInline, flag: (window as unknown as { __pwned?: boolean }).__pwned === true };
  });
  assert.deepEqual(found.scripts, ['main.js'], `${where}: only the app's own script`);
  assert.equal(found.embedded, 0, `${where}: no injected images or frames`);
  assert.deepEqual(found.handlers, [], `${where}: no inline event handlers`);
  assert.equal(found.stylesInline, 0, `${where}: no unexpected style attributes`);
  assert.equal(found.flag, false);
}

test('hostile function, file, thread names and command line render as text', { skip, timeout: 180_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const target = await startTarget(python!, 'hostile_names.py', { t, args: ['300', HOSTILE_ARG] });
  const truth = await target.truth<{ name: string; filename: string; thread: string }>();
  assert.match(truth.name, /<img/);

  const admin = await adminClient(relay);
  const session = await admin.ok<{ id: string; joinToken: string }>('POST', '/api/sessions', { name: '<b>bold</b> & "quoted"' });
  const agent = startAgent(t, relay.url, session.joinToken, ['--pids', String(target.pid)]);

  const context = await launchBrowser(t);
  const page = await context.newPage();
  const seen = watchPage(page);
  await page.goto(`${relay.url}/#/sessions/${session.id}`);
  await signIn(page, 'admin', relay.adminPassword);
  // The heading reads "Support session" until the session has loaded.
  await page.locator('h1', { hasText: 'quoted' }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('h1').textContent(), '<b>bold</b> & "quoted"');

  // Process list: the command line is text.
  const row = page.locator(`tr[data-pid="${target.pid}"]`);
  try {
    await row.waitFor({ timeout: 30_000 });
  } catch (err) {
    throw new Error(`process never appeared: ${(err as Error).message}\n--- agent ---\n${agent.log()}`);
  }
  const cmdline = (await row.locator('td.cmdline').textContent()) ?? '';
  assert.ok(cmdline.includes(SHOWN_ARG), `command line shown as text, the bidi override visible: ${JSON.stringify(cmdline)}`);
  assert.ok(!cmdline.includes('\u202e'), 'no raw bidi override on the page');
  await assertNoInjection(page, 'session page');

  // Record 2 s.
  await row.getByRole('button', { name: `Profile process ${target.pid}` }).click();
  await page.getByRole('radio', { name: /Record/ }).check();
  await page.getByLabel('Duration (s)').fill('2');
  await page.getByRole('button', { name: 'Start recording' }).click();
  await page.waitForURL(/#\/captures\//);
  await page.waitForFunction(() => (document.querySelector('.capture-status') as HTMLElement | null)?.dataset.status === 'complete', undefined, { timeout: 30_000 });
  await page.waitForFunction((name) => [...document.querySelectorAll('.fn-table .fn-name')].some((b) => b.textContent === name), truth.name, { timeout: 10_000 });
  assert.ok((await page.locator('.capture-status').textContent())?.includes(SHOWN_ARG), 'command line in the status line is text');
  assert.ok((await page.locator('.fn-table').textContent())?.includes(truth.filename.split('/').pop()!), 'file name shown as text');

  // Tooltip over the hostile box (it is the only leaf: the busy thread spins in it).
  await page.getByRole('searchbox', { name: 'Search functions or files' }).fill('<img');
  assert.match((await page.locator('.matched').textContent()) ?? '', /Matched [1-9]/);
  await page.locator('.flame-scroll').scrollIntoViewIfNeeded();
  const box = (await page.locator('.flame-canvas').boundingBox())!;
  // Walk up from the root row until the tooltip names the hostile function.
  let tip = '';
  for (let y = box.y + box.height - 8; y > box.y; y -= 17) {
    await page.mouse.move(box.x + 40, y);
    await sleep(50);
    tip = (await page.locator('.tooltip').textContent()) ?? '';
    if (tip.includes(truth.name)) break;
  }
  assert.ok(tip.includes(truth.name) && tip.includes(truth.filename), `tooltip shows the names as text: ${tip}`);
  await assertNoInjection(page, 'flame graph');

  // The same capture in the Top tab; the thread filter lists the hostile thread name.
  await page.getByRole('tab', { name: 'Top' }).click();
  await page.waitForFunction((name) => [...document.querySelectorAll('.top-table .name')].some((n) => n.textContent === name), truth.name, { timeout: 10_000 });
  const threads = await page.getByLabel('Thread filter').locator('option').allTextContents();
  assert.ok(threads.some((o) => o.includes(truth.thread)), `thread filter lists ${truth.thread}: ${threads.join(' | ')}`);
  await assertNoInjection(page, 'top');

  // Dump.
  await page.locator('nav.crumbs a[href^="#/sessions/"]').click();
  await row.getByRole('button', { name: `Profile process ${target.pid}` }).click();
  await page.getByRole('radio', { name: /Dump/ }).check();
  await page.getByRole('button', { name: 'Dump stacks' }).click();
  await page.locator('.dump .thread').first().waitFor({ timeout: 15_000 });
  const dump = (await page.locator('.dump').textContent()) ?? '';
  assert.ok(dump.includes(truth.name), 'dump shows the function name as text');
  assert.ok(dump.includes(`(${truth.thread})`), 'dump shows the thread name as text');
  await assertNoInjection(page, 'dump');

  // History and audit (the audit's details carry the engineer-supplied session name).
  await page.locator('nav.crumbs a[href^="#/sessions/"]').click();
  await page.locator('.history tbody tr').first().waitFor();
  await page.locator('details.audit summary').click();
  await page.locator('.audit-table tbody tr').first().waitFor();
  await assertNoInjection(page, 'history and audit');

  assert.deepEqual(seen.dialogs, [], 'no script ran (alert dialogs)');
  assert.deepEqual(seen.errors, [], 'no page errors');
  assert.deepEqual(seen.csp, [], 'no CSP violations');
});
