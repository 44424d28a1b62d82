// The session page keeps its agent list right from one snapshot plus
// incremental session_agents updates: agents that join appear in join order,
// a changed process list rebuilds only that agent's card, an agent that leaves
// shows offline, and one pruned (gone longer than the retention) disappears.
// Agents here are light protocol peers; the relay and the browser are real.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ProcessInfo, RelayToAgent } from '../../shared/protocol.ts';
import { AgentPeer, adminClient, agentSocket, helloMessage, type RelayProcess } from '../helpers/relay.ts';
import { adminPage, chromiumMissing, startWebRelay } from './harness.ts';

const skip = chromiumMissing();

/** An agent that joins, answers list_processes with `processes`, and can change them or leave. */
class LightAgent extends AgentPeer {
  processes: ProcessInfo[];
  readonly welcomed: Promise<string>;

  constructor(relay: RelayProcess, token: string, host: string, processes: ProcessInfo[]) {
    super(agentSocket(relay.wsUrl, token));
    this.processes = processes;
    this.welcomed = (async () => {
      await this.opened;
      this.send(helloMessage({ agentVersion: '0.1.0-web', host, containerId: '' }));
      return (await this.nextOfType('welcome', 60_000)).agentId;
    })();
  }

  protected override onMessage(m: RelayToAgent, data: Buffer, at: number): void {
    if (m.type === 'list_processes') this.send({ type: 'processes', processes: this.processes });
    super.onMessage(m, data, at);
  }

  setProcesses(processes: ProcessInfo[]): void {
    this.processes = processes;
    this.send({ type: 'processes', processes });
  }
}

const proc = (pid: number, cmdline: string): ProcessInfo => ({ pid, cmdline, version: '3.12.1', user: 'app', threads: 2 });

test('agents join, change, leave and are pruned on the session page without a reload', { skip, timeout: 120_000 }, async (t) => {
  const relay = await startWebRelay(t, { PERISCOPE_AGENT_RETENTION_SECONDS: '2' });
  const admin = await adminClient(relay);
  const session = await admin.ok<{ id: string; joinToken: string }>('POST', '/api/sessions', { name: 'presence' });

  const { page, seen } = await adminPage(t, relay);
  await page.goto(`${relay.url}/#/sessions/${session.id}`);
  await page.locator('.agents .waiting').waitFor();

  const agents: LightAgent[] = [];
  t.after(() => {
    for (const a of agents) a.ws.terminate();
  });
  const ids: string[] = [];
  for (const [host, pid] of [['alpha', 101], ['bravo', 202], ['charlie', 303]] as const) {
    const a = new LightAgent(relay, session.joinToken, host, [proc(pid, `python3 ${host}.py`)]);
    agents.push(a);
    ids.push(await a.welcomed);
  }
  const [alpha, bravo, charlie] = ids;
  const card = (id: string) => page.locator(`.agent[data-agent="${id}"]`);
  for (const [id, pid] of [[alpha, 101], [bravo, 202], [charlie, 303]] as const) await card(id).locator(`tr[data-pid="${pid}"]`).waitFor();
  assert.deepEqual(await page.locator('.agent .host').allTextContents(), ['alpha', 'bravo', 'charlie']);

  // Bravo's processes change: its card shows them; the other cards are left as they were (not rebuilt).
  await card(alpha).evaluate((el) => el.setAttribute('data-untouched', 'yes'));
  agents[1].setProcesses([proc(202, 'python3 bravo.py'), proc(204, 'python3 bravo-worker.py')]);
  await card(bravo).locator('tr[data-pid="204"]').waitFor();
  assert.equal(await card(alpha).getAttribute('data-untouched'), 'yes');

  // Bravo leaves: offline at once, then gone once the retention (2 s) has passed.
  agents[1].ws.close();
  await card(bravo).locator('.badge', { hasText: 'offline' }).waitFor();
  await card(bravo).waitFor({ state: 'detached', timeout: 20_000 });
  assert.deepEqual(await page.locator('.agent .host').allTextContents(), ['alpha', 'charlie']);
  assert.equal(await card(alpha).locator('.badge', { hasText: 'online' }).count(), 1);
  assert.equal(await card(charlie).locator('tr[data-pid="303"]').count(), 1);

  // A new agent goes last.
  const delta = new LightAgent(relay, session.joinToken, 'delta', [proc(404, 'python3 delta.py')]);
  agents.push(delta);
  await card(await delta.welcomed).locator('tr[data-pid="404"]').waitFor();
  assert.deepEqual(await page.locator('.agent .host').allTextContents(), ['alpha', 'charlie', 'delta']);
  assert.deepEqual(seen, { dialogs: [], errors: [], csp: [] });
});
