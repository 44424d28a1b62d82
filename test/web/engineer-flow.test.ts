// The support engineer's whole path through the browser client, against a real
// relay, a real agent and a real Python target: sign in, open a session, see the
// agent's process, live top (the known hot function must rise to the top by
// OwnTime), a 3 s recording whose flame graph grows while it runs, every
// download format, reopening from the history, and a dump.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { FORMAT_NAMES, FORMATS } from '../../shared/export/formats.ts';
import { newestPython } from '../helpers/pythons.ts';
import { startTarget } from '../helpers/targets.ts';
import { parseXml, textContent } from '../shared/xml-check.ts';
import { sleep } from '../helpers/relay.ts';
import { artifactPath, chromiumMissing, launchBrowser, signIn, startAgent, startWebRelay, watchPage } from './harness.ts';

const python = newestPython();
const skip = chromiumMissing() ?? (python ? undefined : 'no Python interpreter found');

async function openProfileForm(page: Page, pid: number): Promise<void> {
  const row = page.locator(`tr[data-pid="${pid}"]`);
  await row.waitFor({ timeout: 20_000 });
  await row.getByRole('button', { name: `Profile process ${pid}` }).click();
  await page.locator('.capture-form form').waitFor();
}

async function backToSession(page: Page): Promise<void> {
  await page.locator('nav.crumbs a[href^="#/sessions/"]').click();
  await page.locator('.agents').waitFor();
}

test('engineer flow: session, agent, top, record, downloads, history, dump', { skip, timeout: 240_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const target = await startTarget(python!, 'top_hot.py', { t, args: ['300'] });
  const truth = await target.truth<{ hot: string; cold: string; idle: string }>();

  const context = await launchBrowser(t);
  const page = await context.newPage();
  const seen = watchPage(page);
  await page.goto(`${relay.url}/`);

  // ---- sign in, create a session ----
  await signIn(page, 'admin', relay.adminPassword);
  const created = page.waitForResponse((r) => new URL(r.url()).pathname === '/api/sessions' && r.request().method() === 'POST');
  await page.getByLabel('Name (optional)').fill('ticket 4711');
  await page.getByRole('button', { name: 'New support session' }).click();
  const session = (await (await created).json()) as { id: string; code: string; joinToken: string; commands: { curl: string; python: string } };
  await page.getByText('With curl', { exact: true }).waitFor();
  const shown = await page.locator('.command pre').allTextContents();
  assert.ok(shown.includes(session.commands.curl), `curl one-liner shown: ${JSON.stringify(shown)}`);
  assert.ok(shown.includes(session.commands.python), 'python3 one-liner shown');
  assert.match(await page.locator('.expiry').textContent() ?? '', /expires at/);
  await page.getByRole('button', { name: 'Copy the With curl command' }).click();
  await page.locator('.copy-status', { hasText: /Copied|Select/ }).first().waitFor();

  // ---- the agent joins; its process shows up ----
  const agent = startAgent(t, relay.url, session.joinToken, ['--pids', String(target.pid)]);
  const row = page.locator(`tr[data-pid="${target.pid}"]`);
  try {
    await row.waitFor({ timeout: 30_000 });
  } catch (err) {
    throw new Error(`process never appeared: ${(err as Error).message}\n--- agent ---\n${agent.log()}\n--- relay ---\n${relay.output()}`);
  }
  assert.match(await row.locator('td.cmdline').textContent() ?? '', /top_hot\.py/);
  assert.equal((await row.locator('td').nth(2).textContent())?.trim(), target.python.version);
  await page.locator('.agent .badge', { hasText: 'online' }).waitFor();
  await page.screenshot({ path: artifactPath('session.png'), fullPage: true });

  // ---- live top: the hot function must lead by OwnTime within seconds ----
  await openProfileForm(page, target.pid);
  await page.getByRole('button', { name: 'Start top' }).click();
  await page.waitForURL(/#\/captures\//);
  const topStarted = Date.now();
  const firstName = page.locator('.top-table tbody tr').first().locator('.name');
  await page.waitForFunction(
    (hot) => document.querySelector('.top-table tbody tr .name')?.textContent === hot,
    truth.hot,
    { timeout: 15_000, polling: 100 },
  );
  const topSeconds = (Date.now() - topStarted) / 1000;
  console.log(`top: ${truth.hot} led by OwnTime ${topSeconds.toFixed(1)} s after starting`);
  assert.equal(await firstName.textContent(), truth.hot);
  await sleep(2500); // let a few windows pass so %Own is a steady-state figure
  const firstRow = await page.locator('.top-table tbody tr').first().locator('td').allTextContents();
  const ownPercent = Number(firstRow[0].replace('%', ''));
  assert.ok(ownPercent > 60, `hot function %Own ${ownPercent} (expected ~90)`);
  // One sample count on the screen: the capture's, in the status line (the top header has none).
  assert.match(await page.locator('.capture-status').textContent() ?? '', /[1-9][\d,]* samples/);
  assert.doesNotMatch(await page.locator('.top-header').textContent() ?? '', /sample/i);
  // Sorting by a header: by name puts cold_function before hot_function.
  await page.getByRole('button', { name: 'Function (file:first line)' }).click();
  const names = await page.locator('.top-table tbody .name').allTextContents();
  assert.ok(names.indexOf(truth.cold) >= 0 && names.indexOf(truth.cold) < names.indexOf(truth.hot), `sorted by name: ${names.join(', ')}`);
  await page.getByRole('button', { name: 'OwnTime' }).click();
  await page.screenshot({ path: artifactPath('top.png') });
  // Pause freezes the table while sampling goes on; Resume catches up.
  const samplesNow = () => page.locator('.top-view').getAttribute('data-samples').then(Number);
  await page.getByRole('button', { name: 'Pause' }).click();
  const frozen = await page.locator('.top-table').textContent();
  const frozenSamples = await samplesNow();
  await sleep(2200);
  assert.equal(await page.locator('.top-table').textContent(), frozen, 'paused table does not change');
  assert.equal(await samplesNow(), frozenSamples);
  await page.getByRole('button', { name: 'Resume' }).click();
  await page.waitForFunction((n) => Number((document.querySelector('.top-view') as HTMLElement).dataset.samples) > n, frozenSamples, { timeout: 5000 });
  // Reset zeroes the cumulative columns.
  const ownTime = async () => Number(((await page.locator('.top-table tbody tr').first().locator('td').nth(2).textContent()) ?? '').replace('s', ''));
  const before = await ownTime();
  await page.getByRole('button', { name: 'Reset', exact: true }).click();
  assert.ok((await ownTime()) < before, 'OwnTime drops after Reset');
  // Idle: the sleeping main thread's function appears.
  assert.ok(!(await page.locator('.top-table .name').allTextContents()).includes(truth.idle));
  await page.getByRole('checkbox', { name: 'Idle' }).check();
  await page.waitForFunction((idle) => [...document.querySelectorAll('.top-table .name')].some((n) => n.textContent === idle), truth.idle, { timeout: 5000 });
  await page.getByRole('checkbox', { name: 'Idle' }).uncheck();
  // Thread filter: only the main thread (idle, so nothing counted) → no worker functions.
  const threadOptions = await page.getByLabel('Thread filter').locator('option').allTextContents();
  const main = threadOptions.findIndex((o) => o.includes('MainThread'));
  assert.ok(main > 0, `thread filter lists MainThread: ${threadOptions.join(' | ')}`);
  await page.getByLabel('Thread filter').selectOption({ index: main });
  await page.waitForFunction((hot) => ![...document.querySelectorAll('.top-table .name')].some((n) => n.textContent === hot), truth.hot, { timeout: 5000 });
  await page.getByLabel('Thread filter').selectOption({ index: 0 });
  // By line: the hot function's lines become separate rows.
  await page.getByLabel('Aggregate by line or by function').selectOption('line');
  await page.waitForFunction((hot) => [...document.querySelectorAll('.top-table .name')].filter((n) => n.textContent === hot).length >= 2, truth.hot, { timeout: 5000 });
  await page.getByRole('button', { name: 'Stop' }).click();
  try {
    await page.waitForFunction(() => {
      const s = document.querySelector('.capture-status') as HTMLElement | null;
      return s !== null && s.dataset.status !== undefined && !['starting', 'running'].includes(s.dataset.status);
    }, undefined, { timeout: 15_000 });
  } catch (err) {
    // Say what the relay, the page and the agent knew, so a failure here explains itself.
    const topId = /#\/captures\/([^/?]+)/.exec(page.url())?.[1] ?? '';
    const state = await page.evaluate(async (id) => (await fetch(`/api/captures/${id}`)).text(), topId);
    const errors = await page.locator('.error-box').allTextContents();
    throw new Error(`the top did not end after Stop: ${(err as Error).message}\ncapture: ${state}\npage errors: ${errors.join(' | ')}\n--- agent ---\n${agent.log()}\n--- relay ---\n${relay.output().slice(-4000)}`);
  }

  // ---- record 3 s: the flame graph grows while it runs ----
  await backToSession(page);
  await openProfileForm(page, target.pid);
  await page.getByRole('radio', { name: /Record/ }).check();
  await page.getByLabel('Duration (s)').fill('3');
  await page.getByRole('button', { name: 'Start recording' }).click();
  await page.waitForURL(/#\/captures\//);
  const captureId = decodeURIComponent(new URL(page.url()).hash.split('/')[2]);
  const growth: number[] = [];
  const recordStarted = Date.now();
  for (;;) {
    const state = await page.evaluate(() => {
      const canvas = document.querySelector('.flame-canvas') as HTMLCanvasElement | null;
      const status = (document.querySelector('.capture-status') as HTMLElement | null)?.dataset.status;
      return { samples: Number(canvas?.dataset.samples ?? 0), boxes: Number(canvas?.dataset.boxes ?? 0), status };
    });
    if (state.status === 'running' && state.samples > 0 && growth.at(-1) !== state.samples) growth.push(state.samples);
    if (state.status && !['starting', 'running'].includes(state.status)) break;
    assert.ok(Date.now() - recordStarted < 30_000, `recording did not finish: ${JSON.stringify(state)}`);
    await sleep(150);
  }
  assert.equal(await page.locator('.capture-status').getAttribute('data-status'), 'complete');
  assert.ok(growth.length >= 2, `the flame graph should have grown while recording; saw sample counts ${JSON.stringify(growth)}`);
  console.log(`record: flame graph redrawn live with ${growth.join(' → ')} samples`);
  await page.waitForFunction(() => Number((document.querySelector('.flame-canvas') as HTMLElement).dataset.boxes) > 2);
  const finalSamples = Number(await page.locator('.flame-canvas').getAttribute('data-samples'));
  assert.ok(finalSamples > 150, `3 s at 100 Hz of a busy thread: ${finalSamples} samples`);
  // The hot function is the widest box: the function table leads with it.
  assert.equal(await page.locator('.fn-table tbody tr').first().locator('.fn-name').textContent(), truth.hot);

  // Search highlights and reports the matched share.
  await page.getByRole('searchbox', { name: 'Search functions or files' }).fill(truth.hot);
  const matched = await page.locator('.matched').textContent();
  const matchedPct = Number(/([\d.]+)%/.exec(matched ?? '')?.[1]);
  assert.ok(matchedPct > 60 && matchedPct <= 100, `matched ${matched}`);
  // Hover for a tooltip, then zoom into the box under the pointer.
  await page.locator('.flame-scroll').scrollIntoViewIfNeeded();
  const box = await page.locator('.flame-canvas').boundingBox();
  assert.ok(box);
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height - 30);
  await page.locator('.tooltip:not([hidden])').waitFor();
  assert.match(await page.locator('.tooltip').textContent() ?? '', /samples/);
  await page.screenshot({ path: artifactPath('flamegraph.png') });
  await page.mouse.click(box.x + box.width * 0.3, box.y + box.height - 30);
  await page.getByRole('button', { name: 'Reset zoom' }).waitFor({ state: 'visible' });
  assert.equal(await page.getByRole('button', { name: 'Reset zoom' }).isEnabled(), true);
  await page.getByRole('button', { name: 'Reset zoom' }).click();
  await page.getByRole('button', { name: 'Icicle' }).click();
  assert.equal(await page.getByRole('button', { name: 'Icicle' }).getAttribute('aria-pressed'), 'true');
  await page.screenshot({ path: artifactPath('flamegraph-icicle.png') });

  // ---- every download format ----
  const downloads: Record<string, string> = {};
  const bytes: Record<string, Buffer> = {};
  // Every format of the registry has a link, and each downloads.
  assert.deepEqual(await page.locator('.capture-actions a[data-format]').evaluateAll((links) => links.map((a) => a.getAttribute('data-format'))), [...FORMAT_NAMES]);
  for (const format of FORMAT_NAMES) {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator(`.capture-actions a[data-format="${format}"]`).click()]);
    const path = await download.path();
    assert.ok(path, `${format} download saved`);
    assert.equal(download.suggestedFilename().endsWith(`.${FORMATS[format].extension}`), true, `${format}: ${download.suggestedFilename()}`);
    bytes[format] = readFileSync(path);
    downloads[format] = bytes[format].toString('utf8');
  }
  // The binary and Firefox formats are parsed back in their own tests; here: they arrive whole.
  assert.ok(gunzipSync(bytes.pprof).includes(Buffer.from(truth.hot)), 'pprof names the hot function');
  const gecko = JSON.parse(downloads.gecko) as { threads: { stringTable: string[] }[] };
  assert.ok(gecko.threads.some((th) => th.stringTable.some((x) => x.startsWith(`${truth.hot} (`))), 'the gecko profile names the hot function');
  const svg = parseXml(downloads.flamegraph);
  assert.equal(svg.name, 'svg');
  assert.ok(textContent(svg).includes(truth.hot), 'SVG names the hot function');
  const speedscope = JSON.parse(downloads.speedscope) as { $schema: string; shared: { frames: { name: string }[] }; profiles: unknown[] };
  assert.match(speedscope.$schema, /speedscope/);
  assert.ok(speedscope.profiles.length >= 1);
  assert.ok(speedscope.shared.frames.some((f) => f.name === truth.hot), 'speedscope has the hot function');
  const rawLines = downloads.raw.trim().split('\n');
  let rawTotal = 0;
  for (const line of rawLines) {
    const m = /^(.+) (\d+)$/.exec(line);
    assert.ok(m, `collapsed-stack line: ${line}`);
    rawTotal += Number(m[2]);
  }
  assert.ok(rawLines.some((l) => l.includes(`${truth.hot} (`)), 'raw has the hot function');
  assert.equal(rawTotal, finalSamples, 'raw counts add up to what the flame graph shows');
  const trace = JSON.parse(downloads.chrometrace) as { traceEvents?: { name?: string }[] } | { name?: string }[];
  const events = Array.isArray(trace) ? trace : (trace.traceEvents ?? []);
  assert.ok(events.some((e) => typeof e.name === 'string' && e.name.includes(truth.hot)), 'chrome trace has the hot function');

  // ---- reopen from the history: rebuilt from the stored chunks ----
  await backToSession(page);
  const historyRow = page.locator(`.history tr[data-capture="${captureId}"]`);
  await historyRow.waitFor();
  assert.match(await historyRow.textContent() ?? '', /complete/);
  assert.match(await historyRow.textContent() ?? '', /admin/);
  assert.equal(await page.locator('.history tr[data-kind="top"]').count(), 1, 'the top capture is in the history too');
  await historyRow.getByRole('link', { name: /Open record capture/ }).click();
  await page.waitForFunction((n) => Number((document.querySelector('.flame-canvas') as HTMLElement | null)?.dataset.samples) === n, finalSamples, { timeout: 15_000 });
  await page.locator(`.capture-actions a[data-format="raw"]`).waitFor();

  // ---- dump ----
  await backToSession(page);
  await openProfileForm(page, target.pid);
  await page.getByRole('radio', { name: /Dump/ }).check();
  await page.getByRole('button', { name: 'Dump stacks' }).click();
  await page.locator('.dump .thread').first().waitFor({ timeout: 15_000 });
  const dumpText = await page.locator('.dump').textContent();
  assert.ok(dumpText?.includes(truth.idle), `dump shows the main thread in ${truth.idle}`);
  assert.ok(dumpText?.includes('(worker)'), 'dump names the worker thread');
  assert.ok((await page.locator('.dump .badge-idle').count()) >= 1, 'idle thread marked');
  assert.ok((await page.locator('.dump .badge-active').count()) >= 1, 'active thread marked');
  await page.screenshot({ path: artifactPath('dump.png'), fullPage: true });

  // ---- the audit log records what happened ----
  await backToSession(page);
  await page.locator('details.audit summary').click();
  await page.locator('.audit-table tbody tr').first().waitFor();
  await page.screenshot({ path: artifactPath('session-history.png'), fullPage: true });
  const audit = await page.locator('.audit-table').textContent();
  assert.match(audit ?? '', /capture/);

  assert.deepEqual(seen.errors, [], 'no page errors');
  assert.deepEqual(seen.dialogs, [], 'no dialogs');
  assert.deepEqual(seen.csp, [], 'no CSP violations');
});
