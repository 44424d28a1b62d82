// A dump of an asyncio service from the browser: on Python 3.14+ the agent
// sends the task tree with the threads (what `periscope dump --async` prints)
// and the dump view shows it, live and when reopened from its address.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pythons } from '../helpers/pythons.ts';
import { adminClient, capturesEnded, createCapture, createSession, onlineAgent } from '../helpers/relay.ts';
import { startTarget } from '../helpers/targets.ts';
import { adminPage, chromiumMissing, startAgent, startWebRelay } from './harness.ts';

const withTasks = pythons()
  .filter((p) => !p.freeThreaded && Number(p.version.split('.')[1]) >= 14 && p.version.startsWith('3.'))
  .at(-1);
const skip = chromiumMissing() ?? (withTasks ? undefined : 'no Python 3.14 or newer prepared (asyncio task introspection starts there)');

test('a dump of an asyncio service shows its task tree in the browser', { skip, timeout: 120_000 }, async (t) => {
  const relay = await startWebRelay(t);
  const client = await adminClient(relay);
  const session = await createSession(client, 'async ticket');
  const target = await startTarget(withTasks!, 'async_tree.py', { t, args: ['300'] });
  await target.truth();
  const agent = startAgent(t, relay.url, session.joinToken, ['--pids', String(target.pid)]);
  const agentId = (await onlineAgent(client, session.id, [target.pid], agent.log)).id;

  const { page, seen } = await adminPage(t, relay);
  // Watch the capture page before the result arrives: the live dump_result carries the tasks.
  const dump = await createCapture(client, agentId, { kind: 'dump', pid: target.pid });
  await page.goto(`${relay.url}/#/captures/${dump.id}`);
  const tree = page.locator('.asyncio-tasks .task-tree');
  await tree.waitFor({ timeout: 20_000 });
  const text = (await tree.textContent()) ?? '';
  for (const name of ['(T) main', '(T) fetch-a', '(T) fetch-b', '(T) parse-1', '(T) parse-2']) assert.ok(text.includes(name), `${name} in\n${text}`);
  // parse-1 is drawn under fetch-b (indented deeper), as pstree draws it.
  const indent = (name: string) => /^([ │├└─]*)/.exec(text.split('\n').find((l) => l.includes(`(T) ${name}`))!)![1].length;
  assert.ok(indent('parse-1') > indent('fetch-b') && indent('fetch-b') > indent('main'), text);
  assert.match((await page.locator('.asyncio-tasks h3').textContent()) ?? '', /asyncio tasks \(6\)/);

  // Reopened from its address: the stored result carries the same tree.
  await capturesEnded(client, [dump.id]);
  await page.goto('about:blank');
  await page.goto(`${relay.url}/#/captures/${dump.id}`);
  await tree.waitFor({ timeout: 10_000 });
  assert.equal((await tree.textContent()) ?? '', text);
  const detail = await client.get(`/api/captures/${dump.id}`);
  assert.equal(detail.json.tasks.tasks.length, 6);
  assert.deepEqual(seen.errors, []);
});
