// The flame graph on a support engineer's tight ticket, in Chromium against a
// real relay and agent: a fork-per-job worker recorded with subprocesses opens
// merged (one tree, not one thin tower per child) with a per-process view one
// click away, and the downloads follow the view; a deep stack opens on its
// hottest path, saying how many levels are out of sight; left-heavy ordering.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { newestPython } from '../helpers/pythons.ts';
import { adminClient, capturesEnded, createCapture, createSession, onlineAgent } from '../helpers/relay.ts';
import { startTarget } from '../helpers/targets.ts';
import { parseXml, textContent, walkElements } from '../shared/xml-check.ts';
import { adminPage, artifactPath, chromiumMissing, startAgent, startWebRelay } from './harness.ts';

const python = newestPython();
const skip = chromiumMissing() ?? (python ? undefined : 'no Python interpreter found');

async function svgTitles(page: Page): Promise<string[]> {
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('.capture-actions a[data-format="flamegraph"]').click()]);
  const path = await download.path();
  assert.ok(path);
  return [...walkElements(parseXml(readFileSync(path, 'utf8')))].filter((e) => e.name === 'title').map((e) => textContent(e));
}

test('workbench: merged fork-per-job view and downloads, hottest path of a deep stack, left heavy, sandwich', { skip, timeout: 180_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const client = await adminClient(relay);
  const session = await createSession(client, 'rq ticket');
  const worker = await startTarget(python!, 'fork_jobs.py', { t, args: ['300'] });
  const deep = await startTarget(python!, 'deep_busy.py', { t, args: ['300', '300'] });
  await worker.truth();
  await deep.truth();
  const agent = startAgent(t, relay.url, session.joinToken, ['--pids', `${worker.pid},${deep.pid}`]);
  const agentId = (await onlineAgent(client, session.id, [worker.pid, deep.pid], agent.log)).id;
  const fork = await createCapture(client, agentId, { kind: 'record', pid: worker.pid, duration: 3, rate: 200, subprocesses: true });
  const dive = await createCapture(client, agentId, { kind: 'record', pid: deep.pid, duration: 2, rate: 100, mode: 'cpu' });
  await capturesEnded(client, [fork.id, dive.id]);

  const { page, seen } = await adminPage(t, relay, { width: 1280, height: 900 });

  // ---- fork per job: merged by default (the children share the worker's command line) ----
  await page.goto(`${relay.url}/#/captures/${fork.id}`);
  const merge = page.getByLabel('Merge processes');
  await merge.waitFor({ timeout: 20_000 });
  assert.equal(await merge.isChecked(), true);
  const link = page.locator('.capture-actions a[data-format="flamegraph"]');
  assert.doesNotMatch((await link.getAttribute('href')) ?? '', /mergeProcesses/, 'the download lets the capture decide, as the view does');
  await page.screenshot({ path: artifactPath('fork-merged.png') });
  let titles = await svgTitles(page);
  assert.ok(titles.some((x) => x.startsWith('job_work (')), 'job_work in the merged SVG');
  assert.deepEqual(titles.filter((x) => x.startsWith('process ')), [], 'no process roots when merged');

  await merge.uncheck();
  assert.match((await link.getAttribute('href')) ?? '', /mergeProcesses=0/, 'the download follows the view');
  titles = await svgTitles(page);
  const roots = titles.filter((x) => x.startsWith('process '));
  assert.ok(roots.length >= 5, `one root per process: ${roots.length}`);
  await page.getByLabel('By function').check();
  assert.match((await link.getAttribute('href')) ?? '', /function=1/);

  // ---- left heavy ----
  const heavy = page.getByRole('button', { name: 'Left heavy' });
  await heavy.click();
  assert.equal(await heavy.getAttribute('aria-pressed'), 'true');

  // ---- a link reopens the capture as it is shown ----
  await page.getByPlaceholder('Search functions or files').fill('job_work');
  await page.getByRole('button', { name: 'Icicle' }).click();
  const graph = await page.locator('.flame-canvas').boundingBox();
  assert.ok(graph);
  // Icicle: the root on the first row, the merged tree's first box below it.
  await page.mouse.click(graph.x + 40, graph.y + 17 * 1 + 8);
  await page.waitForFunction(() => !(document.querySelector('button[title^="Show the whole graph"]') as HTMLButtonElement).disabled, undefined, { timeout: 5000 });
  const url = page.url();
  const zoomedTo = /zoomed to [^(]+/.exec((await page.locator('.flame-summary').textContent()) ?? '')?.[0];
  assert.ok(zoomedTo, 'the status names the zoomed box');
  for (const part of ['q=job_work', 'layout=icicle', 'order=heavy', 'function=1', 'mergeProcesses=0']) assert.ok(url.includes(part), `${part} in ${url}`);
  assert.match(url, /zoom=\d+(&|$)/);
  await page.goto('about:blank');
  await page.goto(url);
  await page.waitForFunction(() => !(document.querySelector('button[title^="Show the whole graph"]') as HTMLButtonElement | null)?.disabled, undefined, { timeout: 20_000 });
  assert.equal(await page.getByPlaceholder('Search functions or files').inputValue(), 'job_work');
  assert.equal(await page.getByRole('button', { name: 'Icicle' }).getAttribute('aria-pressed'), 'true');
  assert.equal(await page.getByRole('button', { name: 'Left heavy' }).getAttribute('aria-pressed'), 'true');
  assert.equal(await page.getByLabel('By function').isChecked(), true);
  assert.equal(await page.getByLabel('Merge processes').isChecked(), false);
  assert.match((await page.locator('.flame-summary').textContent()) ?? '', new RegExp(zoomedTo.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'the same box is zoomed');

  // ---- a deep stack opens on its hottest path ----
  await page.goto(`${relay.url}/#/captures/${dive.id}`);
  const canvas = page.locator('.flame-canvas');
  await page.waitForFunction(() => (document.querySelector('.flame-canvas') as HTMLElement | null)?.dataset.focus !== undefined, undefined, { timeout: 20_000 });
  assert.match((await page.locator('.capture-meta').textContent()) ?? '', /CPU mode/, 'the capture says which samples it kept');
  assert.equal(await page.getByLabel('Merge processes').isVisible(), false, 'one process: nothing to merge');
  const scroll = await page.locator('.flame-scroll').evaluate((el) => ({ top: el.scrollTop, height: el.scrollHeight, client: el.clientHeight }));
  assert.ok(scroll.height > scroll.client * 2, `a 300-frame stack is taller than the view: ${JSON.stringify(scroll)}`);
  assert.ok(scroll.top < scroll.height - scroll.client - 100, `scrolled up to the hot leaf, away from the root: ${JSON.stringify(scroll)}`);
  // The outlined box is the spinning frame, and it is on screen.
  const focus = await canvas.evaluate((el) => Number((el as HTMLElement).dataset.focus));
  assert.ok(focus > 0);
  await page.screenshot({ path: artifactPath('deep-hot-path.png') });
  // The overview shows the whole graph with the view's window; a click there scrolls the view.
  const overview = page.locator('.flame-overview-canvas');
  await overview.waitFor({ state: 'visible', timeout: 5000 });
  assert.ok(Number(await overview.getAttribute('data-boxes')) > 100, 'every level of the 300-deep stack is in the overview');
  const strip = await overview.boundingBox();
  assert.ok(strip);
  await page.locator('.flame-scroll').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await page.mouse.click(strip.x + strip.width / 2, strip.y + 2);
  await page.waitForFunction(() => {
    const el = document.querySelector('.flame-scroll') as HTMLElement;
    return el.scrollTop < el.clientHeight;
  }, undefined, { timeout: 5000 });
  // The overview redraws after the view: wait for its frame to follow.
  await page.waitForFunction(() => Number(document.querySelector('.flame-overview-canvas')?.getAttribute('data-window')?.split('-')[1] ?? 0) >= 295, undefined, { timeout: 5000 });
  // Scrolled to the root, the graph says how much is above.
  await page.locator('.flame-scroll').evaluate((el) => (el.scrollTop = el.scrollHeight));
  await page.waitForFunction(() => Number((document.querySelector('.flame-canvas') as HTMLElement).dataset.hiddenLevels) > 100, undefined, { timeout: 5000 });
  const box = await canvas.first().boundingBox();
  assert.ok(box && box.height > 400, `the view fills the window: ${box?.height}`);

  // ---- sandwich: the spinning function's 300 callers above it, nothing below ----
  const row = page.locator('.fn-table tbody tr', { has: page.locator('button.fn-name[data-fn="spin_here"]') });
  await row.waitFor({ timeout: 10_000 });
  await row.getByRole('button', { name: 'callers/callees' }).click();
  await page.locator('.sandwich h3', { hasText: 'spin_here' }).waitFor();
  const paneBoxes = async (pane: string) => Number(await page.locator(`.sandwich [data-pane="${pane}"] canvas`).getAttribute('data-boxes'));
  await page.waitForFunction(() => Number(document.querySelector('.sandwich [data-pane="callers"] canvas')?.getAttribute('data-boxes') ?? 0) > 10, undefined, { timeout: 5000 });
  assert.ok((await paneBoxes('callers')) > 10, 'the callers pane draws the dive() chain');
  await page.waitForFunction(() => Number(document.querySelector('.sandwich [data-pane="callees"] canvas')?.getAttribute('data-boxes') ?? 0) >= 2, undefined, { timeout: 5000 });
  assert.ok((await paneBoxes('callees')) <= 3, 'spin_here calls no Python function: its callees pane is the root and itself');
  await page.screenshot({ path: artifactPath('sandwich.png'), fullPage: true });
  await page.getByRole('button', { name: 'Close' }).click();
  assert.equal(await page.locator('.sandwich').isHidden(), true);
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.csp, []);
});
