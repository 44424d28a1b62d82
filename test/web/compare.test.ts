// Comparing two captures in the browser, after the chatbot story: the same
// service recorded with an lru_cache too small for its payloads (baseline) and
// with one large enough (current), through a real relay and agent. The session
// history picks the two; the comparison shows the decoder's share falling and
// respond's rising in the table (sortable by delta) and in the differential
// flame graph, and the diff SVG downloads.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { newestPython } from '../helpers/pythons.ts';
import { adminClient, capturesEnded, createCapture, createSession, onlineAgent } from '../helpers/relay.ts';
import { startTarget } from '../helpers/targets.ts';
import { parseXml, textContent, walkElements } from '../shared/xml-check.ts';
import { adminPage, artifactPath, chromiumMissing, startAgent, startWebRelay } from './harness.ts';

const python = newestPython();
const skip = chromiumMissing() ?? (python ? undefined : 'no Python interpreter found');

test('compare a capture before and after a fix: table with deltas, differential flame graph, diff SVG', { skip, timeout: 180_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const client = await adminClient(relay);
  const session = await createSession(client, 'cache ticket');
  const before = await startTarget(python!, 'cache_story.py', { t, args: ['8', '300'] });
  const after = await startTarget(python!, 'cache_story.py', { t, args: ['128', '300'] });
  await before.truth();
  await after.truth();
  const agent = startAgent(t, relay.url, session.joinToken, ['--pids', `${before.pid},${after.pid}`]);
  const agentId = (await onlineAgent(client, session.id, [before.pid, after.pid], agent.log)).id;
  const baseline = await createCapture(client, agentId, { kind: 'record', pid: before.pid, duration: 3, rate: 200 });
  const current = await createCapture(client, agentId, { kind: 'record', pid: after.pid, duration: 3, rate: 200 });
  await capturesEnded(client, [baseline.id, current.id]);

  const { page, seen } = await adminPage(t, relay, { width: 1280, height: 900 });
  await page.goto(`${relay.url}/#/sessions/${session.id}`);

  // ---- pick the two in the history ----
  const compare = page.getByRole('button', { name: 'Compare selected' });
  await page.locator(`input[data-compare="${baseline.id}"]`).check();
  assert.equal(await compare.isDisabled(), true, 'one capture ticked: nothing to compare yet');
  await page.locator(`input[data-compare="${current.id}"]`).check();
  await compare.click();
  await page.waitForURL(new RegExp(`#/compare/${baseline.id}/${current.id}$`), { timeout: 5000 });

  // ---- the table: decode's total share falls, respond's rises ----
  const row = (fn: string) => page.locator(`.compare-rows tbody tr[data-function="${fn}"]`);
  await row('respond').waitFor({ timeout: 20_000 });
  const cells = async (fn: string) => (await row(fn).locator('td').allTextContents()).map((x) => x.trim());
  const number = (s: string) => Number(s.replace('%', ''));
  await page.waitForFunction(() => document.querySelector('.compare-rows tr[data-function="decode"]') !== null, undefined, { timeout: 10_000 });
  const decode = await cells('decode');
  const respond = await cells('respond');
  // Columns: own before, own after, Δ own, total before, total after, Δ total, function.
  assert.ok(number(decode[3]) > 25 && number(decode[5]) < -20, `decode: ${decode.join(' | ')}`);
  assert.ok(number(respond[5]) > 10, `respond: ${respond.join(' | ')}`);
  // Sorted by Δ Total (the default, ascending): the largest fall first.
  const deltas = (await page.locator('.compare-rows tbody tr td:nth-child(6)').allTextContents()).map(Number);
  assert.deepEqual(deltas, [...deltas].sort((a, b) => a - b), 'rows ascend by Δ Total');
  await page.getByRole('button', { name: 'Δ Total' }).click();
  const flipped = (await page.locator('.compare-rows tbody tr td:nth-child(6)').allTextContents()).map(Number);
  assert.equal(flipped[0], Math.max(...deltas), 'a second click puts the largest rise first');

  // ---- the differential flame graph: CURRENT's boxes, coloured by change ----
  const canvas = page.locator('.flame-canvas');
  await page.waitForFunction(() => Number((document.querySelector('.flame-canvas') as HTMLElement | null)?.dataset.boxes ?? 0) > 3, undefined, { timeout: 10_000 });
  const summary = (await page.locator('.compare-summary').textContent()) ?? '';
  const m = /Baseline ([\d,]+) samples · current [\d,]+ samples(?: · ([\d,]+) baseline samples on paths)?/.exec(summary);
  assert.ok(m, summary);
  // What vanished is the decoder's part of the baseline, not the paths both share.
  const vanished = Number((m[2] ?? '0').replace(/,/g, '')) / Number(m[1].replace(/,/g, ''));
  assert.ok(vanished > 0.2 && vanished < 0.8, `vanished share ${vanished.toFixed(2)}: ${summary}`);
  const box = await canvas.boundingBox();
  assert.ok(box);
  // The root row's hover shows both shares.
  await page.mouse.move(box.x + box.width / 2, box.y + box.height - 8);
  await page.locator('.tooltip:not([hidden])').waitFor({ timeout: 5000 });
  assert.match(await page.locator('.tooltip').textContent() ?? '', /before 100\.00% · after 100\.00%/);
  await page.screenshot({ path: artifactPath('compare.png'), fullPage: true });

  // ---- the diff SVG downloads ----
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download diff SVG' }).click()]);
  const path = await download.path();
  assert.ok(path);
  assert.match(download.suggestedFilename(), /^diff-.*\.svg$/);
  const svg = parseXml(readFileSync(path, 'utf8'));
  const titles = [...walkElements(svg)].filter((e) => e.name === 'title').map((e) => textContent(e));
  assert.ok(titles.some((x) => /^respond \(.*\n.*before [\d.]+% · after [\d.]+% · \+/.test(x)), 'respond grew in the SVG');
  assert.deepEqual(seen.errors, [], 'no page errors');
  assert.deepEqual(seen.csp, [], 'no CSP violations');
});
