// The live top in the browser, against a real relay, agent and Python target
// (top_hot.py: a worker ~90 % in hot_function): py-spy's keys (1-4 sort, L
// lines/functions, space pause, R reset), the "Last second | Whole capture"
// switch while running, and a finished top -- after Stop, and reopened from
// its URL -- showing the whole capture instead of an empty last second. The
// keys' document listener must go away with the view.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { newestPython } from '../helpers/pythons.ts';
import { adminClient, createCapture, createSession, onlineAgent, sleep } from '../helpers/relay.ts';
import { startTarget } from '../helpers/targets.ts';
import { adminPage, artifactPath, chromiumMissing, startAgent, startWebRelay, watchPage } from './harness.ts';

const python = newestPython();
const skip = chromiumMissing() ?? (python ? undefined : 'no Python interpreter found');

const SORTS = ['ownPercent', 'totalPercent', 'ownTime', 'totalTime'];

/** Which column the table is sorted by (aria-sort on its header). */
function sortedBy(page: Page): Promise<string | undefined> {
  return page.evaluate(() => (document.querySelector('.top-table th[aria-sort="descending"], .top-table th[aria-sort="ascending"]') as HTMLElement | null)?.dataset.sort);
}

/** The table as rows of cell texts. */
function table(page: Page): Promise<string[][]> {
  return page.evaluate(() => [...document.querySelectorAll('.top-table tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')));
}

const number = (cell: string) => Number(cell.replace(/[%s]/g, ''));

/** The header's figure for `stat` (data-stat). */
async function stat(page: Page, name: string): Promise<string> {
  return ((await page.locator(`.top-header [data-stat="${name}"] dd`).textContent()) ?? '').trim();
}

/** Keys go to the page, not to a focused control. */
async function pressOnPage(page: Page, key: string): Promise<void> {
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.keyboard.press(key);
}

/** %Own of the hot function's row (by function), once the table shows it. */
async function hotOwnPercent(page: Page, hot: string): Promise<number> {
  const rows = await table(page);
  const row = rows.find((r) => r[4].startsWith(`${hot} (`));
  assert.ok(row, `no ${hot} row in ${JSON.stringify(rows)}`);
  return number(row[0]);
}

async function checkFinished(page: Page, hot: string, what: string): Promise<void> {
  await page.locator('.top-view[data-finished="true"]').waitFor({ timeout: 15_000 });
  await page.waitForFunction((h) => [...document.querySelectorAll('.top-table .name')].some((n) => n.textContent === h), hot, { timeout: 15_000 });
  assert.equal(await page.locator('.top-view').getAttribute('data-scope'), 'whole', `${what}: whole capture`);
  assert.equal(await page.locator('.top-scope').isHidden(), true, `${what}: no window switch`);
  assert.equal(await page.getByRole('group', { name: 'Percentages over' }).count(), 0);
  assert.equal(await page.getByRole('button', { name: 'Pause' }).isHidden(), true, `${what}: nothing to pause`);
  assert.equal(await page.getByRole('button', { name: 'Reset', exact: true }).isHidden(), true, `${what}: nothing to reset`);
  // A few refreshes later it still shows the whole capture, not an empty last second.
  await sleep(2200);
  const own = await hotOwnPercent(page, hot);
  assert.ok(own > 60, `${what}: ${hot} %Own over the whole capture ${own}`);
  const active = await stat(page, 'active');
  assert.ok(number(active) > 0, `${what}: Active ${active}`);
  assert.ok(Number(await stat(page, 'threads')) >= 1, `${what}: Threads ${await stat(page, 'threads')}`);
  assert.equal(await stat(page, 'over'), 'whole capture');
  assert.doesNotMatch(await page.locator('.top-header').textContent() ?? '', /sample/i, `${what}: the header does not count samples`);
  assert.match(await page.locator('.capture-status').textContent() ?? '', /[1-9][\d,]* samples/, `${what}: the capture's samples, once`);
}

test('live top: py-spy keys, last second or whole capture, a finished top shows the whole capture', { skip, timeout: 180_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const client = await adminClient(relay);
  const session = await createSession(client, 'top keys');
  const target = await startTarget(python!, 'top_hot.py', { t, args: ['300'] });
  const truth = await target.truth<{ hot: string; cold: string }>();
  const agent = startAgent(t, relay.url, session.joinToken, ['--pids', String(target.pid)]);
  const agentId = (await onlineAgent(client, session.id, [target.pid], agent.log)).id;

  const { context, page, seen } = await adminPage(t, relay);
  await page.goto(`${relay.url}/#/sessions/${session.id}`);
  await page.locator('.agents').waitFor();
  const cdp = await context.newCDPSession(page);
  const documentKeyListeners = async (): Promise<number> => {
    const { result } = await cdp.send('Runtime.evaluate', { expression: 'document' });
    const { listeners } = await cdp.send('DOMDebugger.getEventListeners', { objectId: result.objectId! });
    return listeners.filter((l) => l.type === 'keydown').length;
  };
  const listenersBefore = await documentKeyListeners();

  const capture = await createCapture(client, agentId, { kind: 'top', pid: target.pid });
  const captureUrl = `${relay.url}/#/captures/${capture.id}`;
  await page.goto(captureUrl);
  await page.waitForFunction((hot) => document.querySelector('.top-table tbody tr .name')?.textContent === hot, truth.hot, { timeout: 20_000, polling: 100 });
  assert.equal(await documentKeyListeners(), listenersBefore + 1, 'the top view listens for its keys');

  // ---- running: the window switch, last second by default ----
  const lastSecond = page.getByRole('button', { name: 'Last second' });
  const wholeCapture = page.getByRole('button', { name: 'Whole capture' });
  assert.equal(await page.getByRole('group', { name: 'Percentages over' }).isVisible(), true);
  assert.equal(await lastSecond.getAttribute('aria-pressed'), 'true');
  assert.equal(await page.locator('.top-view').getAttribute('data-scope'), 'window');
  assert.equal(await stat(page, 'over'), 'last second');
  assert.match(await page.locator('.top-keys').textContent() ?? '', /1–4.*L.*R.*Space/);
  await sleep(2500); // a few windows, so the last second is a steady-state figure

  // ---- 1-4 sort in py-spy's column order ----
  for (const [i, key] of SORTS.entries()) {
    await pressOnPage(page, String(i + 1));
    assert.equal(await sortedBy(page), key, `key ${i + 1}`);
    const rows = await table(page);
    for (let r = 1; r < rows.length; r++) assert.ok(number(rows[r - 1][i]) >= number(rows[r][i]), `key ${i + 1}: column ${i} descending: ${JSON.stringify(rows)}`);
  }
  // Typing in a form control is not a key for top.
  await page.getByRole('checkbox', { name: 'Idle' }).focus();
  await page.keyboard.press('1');
  assert.equal(await sortedBy(page), 'totalTime', 'a key typed in a control is left alone');
  await pressOnPage(page, '3');
  assert.equal(await sortedBy(page), 'ownTime');
  assert.equal((await table(page))[0][4].startsWith(`${truth.hot} (`), true, 'the hot function leads by OwnTime');

  // ---- space pauses: the table is frozen while sampling goes on ----
  const samples = () => page.locator('.top-view').getAttribute('data-samples').then(Number);
  await pressOnPage(page, 'Space');
  assert.equal(await page.locator('.top-view.paused').count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Resume' }).getAttribute('aria-pressed'), 'true');
  const frozen = await page.locator('.top-table').textContent();
  const frozenSamples = await samples();
  await sleep(2200);
  assert.equal(await page.locator('.top-table').textContent(), frozen, 'paused table does not change');
  assert.equal(await samples(), frozenSamples);

  // ---- L toggles lines / functions (on the frozen counts, so the two agree exactly) ----
  const fnHeader = page.locator('.top-table th[data-sort="function"] button');
  assert.equal(await fnHeader.textContent(), 'Function (file:first line)');
  assert.match(await fnHeader.getAttribute('title') ?? '', /first \(lowest\) line sampled in the function/);
  const hotRows = async () => (await table(page)).filter((r) => r[4].startsWith(`${truth.hot} (`)).map((r) => Number(/:(\d+)\)$/.exec(r[4])?.[1]));
  const [functionLine] = await hotRows();
  await pressOnPage(page, 'l');
  assert.equal(await page.getByLabel('Aggregate by line or by function').inputValue(), 'line');
  assert.equal(await fnHeader.textContent(), 'Function (file:line)');
  const lines = await hotRows();
  assert.ok(lines.length >= 2, `by line, ${truth.hot} has several rows: ${lines.join(', ')}`);
  assert.equal(functionLine, Math.min(...lines), `by function, the first line sampled in ${truth.hot} (lines ${lines.join(', ')})`);
  await pressOnPage(page, 'L');
  assert.equal(await page.getByLabel('Aggregate by line or by function').inputValue(), 'function');
  assert.deepEqual(await hotRows(), [functionLine]);
  assert.equal(await samples(), frozenSamples, 'still paused');

  await pressOnPage(page, 'Space');
  assert.equal(await page.locator('.top-view.paused').count(), 0);
  await page.waitForFunction((n) => Number((document.querySelector('.top-view') as HTMLElement).dataset.samples) > n, frozenSamples, { timeout: 5000 });

  // ---- R resets the times ----
  const firstOwnTime = async () => number((await table(page))[0][2]);
  await sleep(1200);
  const before = await firstOwnTime();
  await pressOnPage(page, 'r');
  const after = await firstOwnTime();
  assert.ok(after < before, `OwnTime drops after R: ${before} → ${after}`);

  // ---- whole capture while running (since the Reset) ----
  await wholeCapture.click();
  assert.equal(await wholeCapture.getAttribute('aria-pressed'), 'true');
  assert.equal(await page.locator('.top-view').getAttribute('data-scope'), 'whole');
  assert.equal(await stat(page, 'over'), 'since Reset');
  await sleep(1200);
  assert.ok((await hotOwnPercent(page, truth.hot)) > 60, 'hot function over the whole capture while running');
  await lastSecond.click();
  assert.equal(await page.locator('.top-view').getAttribute('data-scope'), 'window');
  await page.screenshot({ path: artifactPath('top-live.png') });

  // ---- stop: the whole capture, not 0 % ----
  await page.getByRole('button', { name: 'Stop' }).click();
  await checkFinished(page, truth.hot, 'after Stop');
  // Space and R mean nothing on a finished top; sorting still works.
  await pressOnPage(page, 'Space');
  assert.equal(await page.locator('.top-view.paused').count(), 0);
  await pressOnPage(page, '1');
  assert.equal(await sortedBy(page), 'ownPercent');
  assert.equal((await table(page))[0][4].startsWith(`${truth.hot} (`), true, 'the hot function leads by %Own over the whole capture');
  await page.screenshot({ path: artifactPath('top-finished.png') });

  // ---- reopened from its URL: the same table ----
  const again = await context.newPage();
  const seenAgain = watchPage(again);
  await again.goto(captureUrl);
  await checkFinished(again, truth.hot, 'reopened');
  await pressOnPage(again, '1');
  const finalSamples = await samples();
  await again.waitForFunction((n) => (document.querySelector('.top-view') as HTMLElement).dataset.samples === String(n), finalSamples, { timeout: 10_000 });
  assert.deepEqual(await table(again), await table(page), 'reopened, the finished top shows what it showed after Stop');
  await again.close();

  // ---- navigating away removes the key listener ----
  await page.locator('nav.crumbs a[href^="#/sessions/"]').click();
  await page.locator('.agents').waitFor();
  assert.equal(await documentKeyListeners(), listenersBefore, 'no key listener left behind');
  for (const key of ['1', 'l', ' ', 'r']) await page.keyboard.press(key);

  assert.deepEqual(seen.errors, [], 'no page errors');
  assert.deepEqual(seenAgain.errors, [], 'no page errors when reopened');
  assert.deepEqual(seen.csp, [], 'no CSP violations');
});
