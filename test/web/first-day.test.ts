// First-day rough edges of the support engineer's workbench, in Chromium
// against a real relay: no "Disconnected" banner before anyone signs in; a
// relay without PERISCOPE_PUBLIC_URL says its one-liners only work locally
// (and one with it does not); the process list is a tree with short-lived
// children grouped and a filter box, agents labelled with their user and
// container; an agent the customer stopped shows "ended by the customer" with
// no Profile button, and a closed session offers no Profile or Dump at all; a
// dump copies and downloads as text and JSON; dark mode keeps badges
// readable. Agents here are light protocol peers (no Python needed).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { Page } from 'playwright-core';
import { CloseCode, type DumpThread, type ProcessInfo, type RelayToAgent } from '../../shared/protocol.ts';
import { dumpProcesses, formatDumpText } from '../../shared/dump-text.ts';
import { dateTime } from '../../web/src/format.ts';
import { processTree } from '../../web/src/views/session.ts';
import { AgentPeer, adminClient, agentSocket, createCapture, helloMessage, type RelayProcess, sleep } from '../helpers/relay.ts';
import { artifactPath, chromiumMissing, launchBrowser, signIn, startWebRelay, watchPage } from './harness.ts';
import { freePort } from '../helpers/servers.ts';

const skip = chromiumMissing();

/** An agent that joins as `user`, answers list_processes with `processes` and dumps with `threads`. */
class LightAgent extends AgentPeer {
  processes: ProcessInfo[];
  threads: DumpThread[] = [];
  readonly welcomed: Promise<string>;

  constructor(relay: RelayProcess, token: string, processes: ProcessInfo[], user = 'app') {
    super(agentSocket(relay.wsUrl, token));
    this.processes = processes;
    this.welcomed = (async () => {
      await this.opened;
      this.send(helloMessage({ agentVersion: '0.1.0-web', host: 'web-1', containerId: '3f2a9c1d77e0aa11', user }));
      return (await this.nextOfType('welcome', 60_000)).agentId;
    })();
  }

  protected override onMessage(m: RelayToAgent, data: Buffer, at: number): void {
    if (m.type === 'list_processes') this.send({ type: 'processes', processes: this.processes });
    if (m.type === 'start_capture' && m.spec.kind === 'dump') this.send({ type: 'dump_result', captureId: m.captureId, threads: this.threads });
    super.onMessage(m, data, at);
  }
}

function proc(pid: number, ppid: number, cmdline: string, startedAt: number): ProcessInfo {
  return { pid, cmdline, version: '3.12.1', user: 'app', threads: 2, ppid, startedAt };
}


async function openSession(page: Page, relay: RelayProcess, sessionId: string): Promise<void> {
  await page.goto(`${relay.url}/#/sessions/${sessionId}`);
  await page.locator('.join-head').waitFor();
}

test('times show their date unless they are today', () => {
  const now = new Date(2026, 0, 2, 15, 0, 0);
  assert.equal(dateTime(new Date(2026, 0, 2, 9, 5, 7).toISOString(), now), '09:05:07');
  assert.equal(dateTime(new Date(2026, 0, 1, 23, 59, 0).toISOString(), now), '2026-01-01 23:59:00');
  assert.equal(dateTime(new Date(2025, 11, 31, 8, 0, 0).getTime(), now), '2025-12-31 08:00:00');
  assert.equal(dateTime(null, now), '–');
});

test('the process tree: children under their parent, by pid; orphans and parent loops start at a root', () => {
  const p = (pid: number, ppid?: number): ProcessInfo => ({ pid, cmdline: `python3 ${pid}.py`, version: '3.12.1', user: 'app', threads: 1, ...(ppid === undefined ? {} : { ppid }) });
  const shape = (nodes: ReturnType<typeof processTree>): unknown[] => nodes.map((n) => (n.children.length ? [n.p.pid, shape(n.children)] : n.p.pid));
  assert.deepEqual(shape(processTree([p(30, 10), p(10, 1), p(20, 10), p(40, 20), p(50), p(60, 61), p(61, 60)])), [[10, [[20, [40]], 30]], 50, 60, 61]);
});

test('first day: sign-in page, public URL warning, process tree and filter, agent ends, closed session, dump copy and download, dark mode', { skip, timeout: 180_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const admin = await adminClient(relay);
  const session = await admin.ok<{ id: string; joinToken: string; publicUrl: { url: string; configured: boolean } }>('POST', '/api/sessions', { name: 'first day' });
  assert.deepEqual(session.publicUrl, { url: session.publicUrl.url, configured: false }, 'the session view says the public URL was not set');
  assert.match(session.publicUrl.url, /^http:\/\/localhost:\d+$/);
  assert.match(relay.output(), /warning: PERISCOPE_PUBLIC_URL is not set, so the customer one-liners point at http:\/\/localhost:\d+/, 'and so does the relay at start');

  const context = await launchBrowser(t);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: relay.url });
  const page = await context.newPage();
  const seen = watchPage(page);

  // ---- the sign-in page: nobody signed in, nothing is disconnected ----
  await page.goto(`${relay.url}/`);
  await page.getByLabel('Username').waitFor();
  await sleep(1500);
  assert.equal((await page.locator('.connection').textContent()) ?? '', '', 'no connection banner before signing in');
  await signIn(page, 'admin', relay.adminPassword);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('Username').waitFor();
  await sleep(500);
  assert.equal((await page.locator('.connection').textContent()) ?? '', '', 'nor after signing out');
  await signIn(page, 'admin', relay.adminPassword);

  // ---- the one-liner without PERISCOPE_PUBLIC_URL ----
  await openSession(page, relay, session.id);
  const warning = page.locator('.public-url-warning');
  await warning.waitFor();
  const warned = (await warning.textContent()) ?? '';
  assert.match(warned, /localhost:\d+/);
  assert.match(warned, /PERISCOPE_PUBLIC_URL=https:\/\/periscope\.example\.com/, 'says how to set it');

  // ---- a process tree: a worker, a long-lived child, short-lived job children ----
  const now = Date.now();
  const agent = new LightAgent(relay, session.joinToken, [
    proc(100, 1, 'python3 -m rq worker', now - 3_600_000),
    proc(101, 100, 'python3 -m rq worker --scheduler', now - 600_000),
    proc(102, 100, 'python3 -m rq worker', now - 2000),
    proc(103, 100, 'python3 -m rq worker', now - 1000),
    proc(104, 100, 'python3 -m rq worker', now),
    proc(200, 1, 'python3 manage.py runserver', now - 3_600_000),
  ]);
  t.after(() => agent.ws.terminate());
  const agentId = await agent.welcomed;
  const card = page.locator(`.agent[data-agent="${agentId}"]`);
  await card.locator('tr[data-pid="100"]').waitFor();
  assert.equal(await card.locator('.badge', { hasText: 'user app' }).count(), 1, 'labelled with its user');
  assert.equal(await card.locator('.badge', { hasText: 'container 3f2a9c1d77e0' }).count(), 1, 'and its container');
  assert.equal(await card.locator('tr[data-pid="101"]').getAttribute('class'), 'child depth-1', 'a child is indented under its parent');
  assert.deepEqual(await card.locator('tbody tr[data-pid]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.pid)), ['100', '101', '200'], 'short-lived children are grouped, not listed');
  const group = card.getByRole('button', { name: '+ 3 short-lived children of 100' });
  assert.equal(await group.getAttribute('aria-expanded'), 'false');
  await group.click();
  await card.locator('tr[data-pid="104"]').waitFor();
  assert.deepEqual(await card.locator('tbody tr[data-pid]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.pid)), ['100', '101', '102', '103', '104', '200'], 'opened: listed under their parent');
  await card.getByRole('button', { name: '− 3 short-lived children of 100' }).click();
  await card.locator('tr[data-pid="104"]').waitFor({ state: 'detached' });
  await page.screenshot({ path: artifactPath('process-tree.png'), fullPage: true });

  // ---- the filter box: pid or command line ----
  const filter = page.getByLabel('Filter processes by pid or command line');
  await filter.fill('runserver');
  await card.locator('tr[data-pid="100"]').waitFor({ state: 'detached' });
  assert.deepEqual(await card.locator('tbody tr[data-pid]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.pid)), ['200']);
  assert.match((await card.locator('.filter-count').textContent()) ?? '', /1 of 6 processes match/);
  await filter.fill('103');
  await card.locator('tr[data-pid="103"]').waitFor();
  assert.deepEqual(await card.locator('tbody tr[data-pid]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.pid)), ['103'], 'a short-lived child is found by its pid');
  await filter.fill('no such thing');
  await card.locator('.filter-count', { hasText: 'No process of 6 matches' }).waitFor();
  await filter.fill('');
  await card.locator('tr[data-pid="100"]').waitFor();

  // ---- a dump: copy as text, download text and JSON ----
  agent.threads = [
    { pid: 100, thread_id: 140000000001, os_thread_id: 4242, thread_name: 'MainThread', active: true, owns_gil: true, truncated: false, frames: [{ name: 'work', filename: '/app/jobs.py', short_filename: 'jobs.py', line: 12 }, { name: '<module>', filename: '/app/main.py', short_filename: 'main.py', line: 3 }] },
    { pid: 100, thread_id: 140000000002, os_thread_id: 4243, thread_name: '<img src=x onerror=alert(1)>', active: false, owns_gil: false, truncated: true, frames: [{ name: '<b>wait</b>', filename: '/usr/lib/python3.12/threading.py', short_filename: 'threading.py', line: 320 }] },
  ];
  const dump = await createCapture(admin, agentId, { kind: 'dump', pid: 100 });
  await page.goto(`${relay.url}/#/captures/${dump.id}`);
  await page.locator('.dump .thread').first().waitFor({ timeout: 15_000 });
  const expectedText = formatDumpText(dumpProcesses(agent.threads));
  await page.getByRole('button', { name: 'Copy the dump as text' }).click();
  await page.locator('.dump-actions .copy-status', { hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), expectedText, 'copied: the text `periscope dump` prints');
  const [textDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download text' }).click()]);
  assert.match(textDownload.suggestedFilename(), /^dump-100-.*\.txt$/);
  assert.equal(readFileSync((await textDownload.path())!, 'utf8'), expectedText);
  assert.ok(expectedText.includes('Thread 4243 (idle): "<img src=x onerror=alert(1)>"') && expectedText.includes('    (stack truncated)'), expectedText);
  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download JSON' }).click()]);
  assert.match(jsonDownload.suggestedFilename(), /^dump-100-.*\.json$/);
  assert.deepEqual(JSON.parse(readFileSync((await jsonDownload.path())!, 'utf8')), agent.threads, 'the JSON `periscope dump --json` prints');
  assert.equal(await page.locator('.dump img, .dump b').count(), 0, 'names are text, never markup');

  // ---- dark mode: the palette switches and badges stay readable ----
  await page.emulateMedia({ colorScheme: 'dark' });
  await openSession(page, relay, session.id);
  await card.locator('tr[data-pid="100"]').waitFor();
  assert.equal(await page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(15, 17, 21)');
  const contrasts = await page.locator('.badge').evaluateAll((badges) => {
    const lum = (c: string) => {
      const [r, g, b] = (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((x) => Number(x) / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
      return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
    };
    return badges.map((b) => {
      const s = getComputedStyle(b);
      const [hi, lo] = [lum(s.color), lum(s.backgroundColor)].sort((x, y) => y - x);
      return { text: b.textContent, ratio: (hi! + 0.05) / (lo! + 0.05) };
    });
  });
  for (const c of contrasts) assert.ok(c.ratio >= 4.5, `badge "${c.text}" contrast ${c.ratio.toFixed(2)} in dark mode`);
  await page.screenshot({ path: artifactPath('session-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });

  // ---- the customer stops the agent: ended, not lost; no Profile button ----
  await card.getByRole('button', { name: 'Profile process 100' }).waitFor();
  agent.close(CloseCode.AgentExit, 'agent stopped by the customer');
  await card.locator('.badge', { hasText: 'ended by the customer' }).waitFor({ timeout: 10_000 });
  assert.equal(await card.locator('.error-box').count(), 0, 'not “lost its connection”');
  assert.match((await card.textContent()) ?? '', /The customer stopped this agent \(Ctrl-C\)/);
  assert.equal(await card.getByRole('button', { name: /Profile process/ }).count(), 0, 'no Profile button for an agent that is gone');

  // ---- a closed session: no Profile or Dump anywhere ----
  const other = new LightAgent(relay, session.joinToken, [proc(300, 1, 'python3 api.py', now - 60_000)]);
  t.after(() => other.ws.terminate());
  const otherId = await other.welcomed;
  const otherCard = page.locator(`.agent[data-agent="${otherId}"]`);
  await otherCard.getByRole('button', { name: 'Profile process 300' }).click();
  await page.locator('.capture-form form').waitFor();
  await page.getByRole('button', { name: 'Close session' }).click();
  await page.getByRole('button', { name: 'Yes, close it' }).click();
  await otherCard.locator('.badge', { hasText: 'session closed' }).waitFor({ timeout: 10_000 });
  assert.equal(await page.getByRole('button', { name: /Profile process/ }).count(), 0, 'no Profile button in a closed session');
  assert.equal(await page.locator('.capture-form').isVisible(), false, 'the capture form (Dump, Top, Record) is gone');
  assert.equal(await page.getByRole('button', { name: /Dump stacks|Start top|Start recording/ }).count(), 0);
  assert.equal(await page.locator('.public-url-warning').count(), 0, 'no one-liner, no warning about it');
  await page.reload();
  await otherCard.locator('.badge', { hasText: 'session closed' }).waitFor({ timeout: 10_000 });
  await page.locator('.agent .badge', { hasText: 'ended by the customer' }).waitFor();
  assert.equal(await page.getByRole('button', { name: /Profile process/ }).count(), 0, 'still none after a reload');
  await page.screenshot({ path: artifactPath('session-closed.png'), fullPage: true });
  assert.deepEqual(seen, { dialogs: [], errors: [], csp: [] });
});

test('with PERISCOPE_PUBLIC_URL the session page shows no warning', { skip, timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const relay = await startWebRelay(t, { PORT: String(port), PERISCOPE_PUBLIC_URL: `http://127.0.0.1:${port}` });
  assert.doesNotMatch(relay.output(), /PERISCOPE_PUBLIC_URL is not set/);
  const admin = await adminClient(relay);
  const session = await admin.ok<{ id: string; publicUrl: { url: string; configured: boolean } }>('POST', '/api/sessions', { name: 'configured' });
  assert.deepEqual(session.publicUrl, { url: `http://127.0.0.1:${port}`, configured: true });
  const context = await launchBrowser(t);
  const page = await context.newPage();
  await page.goto(`${relay.url}/`);
  await signIn(page, 'admin', relay.adminPassword);
  await openSession(page, relay, session.id);
  await page.getByText('With curl', { exact: true }).waitFor();
  assert.equal(await page.locator('.public-url-warning').count(), 0);
});
