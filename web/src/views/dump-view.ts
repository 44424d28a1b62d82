// A dump: every thread's stack, innermost frame first (like `py-spy dump`),
// with idle / active and GIL marks. The data is `periscope dump --json`, which
// arrives from the agent untrusted: shared/protocol.ts checks every field, and
// everything is shown as text. It can be copied as text and downloaded as
// text or JSON, the text being what `periscope dump` prints (one formatter:
// shared/dump-text.ts), the JSON what `periscope dump --json` prints.

import { button, copyText, h, saveFile, setText } from '../dom.ts';
import { type DumpTasks, type DumpThread, parseDumpTasksPart, parseDumpThreads } from '../../../shared/protocol.ts';
import { dumpProcesses, formatDumpText, formatTasksText, tasksProcesses } from '../../../shared/dump-text.ts';

/**
 * A dump the relay served over HTTP, checked with the protocol's own
 * validator (the socket's dump_result was checked on arrival): what is not a
 * dump is reported, never rendered.
 */
export function renderStoredDump(value: unknown, tasksValue?: unknown): HTMLElement {
  let threads: DumpThread[];
  let tasks: DumpTasks | undefined;
  try {
    threads = parseDumpThreads(value, 'dump');
    if (tasksValue !== undefined && tasksValue !== null) tasks = parseDumpTasksPart(tasksValue, 'dump.tasks');
  } catch (err) {
    return h('p', { class: 'muted' }, `The stored dump cannot be shown: ${(err as Error).message}`);
  }
  return renderDump(threads, tasks);
}

/**
 * The asyncio task tree, as `periscope dump --async` and `python -m asyncio
 * pstree` print it: each task, its coroutines, the tasks it awaits below.
 */
function renderTasks(asyncio: DumpTasks): HTMLElement | null {
  // Nothing to show without tasks (before Python 3.14, no asyncio, or a loop that is not running).
  if (asyncio.tasks.length === 0) return null;
  const text = formatTasksText(tasksProcesses(asyncio.tasks, asyncio.task_sources));
  return h(
    'section',
    { class: 'asyncio-tasks', aria: { label: 'asyncio tasks' } },
    h('h3', null, `asyncio tasks (${asyncio.tasks.length})`),
    h('pre', { class: 'task-tree' }, text),
  );
}

/** The dump as `periscope dump` prints it. */
export function dumpText(threads: DumpThread[]): string {
  return formatDumpText(dumpProcesses(threads));
}

/** Copy as text, Download text, Download JSON: files made in the page from the checked threads. */
function dumpActions(threads: DumpThread[]): HTMLElement {
  const status = h('span', { class: 'copy-status', aria: { live: 'polite' } });
  const pids = [...new Set(threads.map((t) => t.pid))];
  const stamp = new Date().toISOString().slice(0, 19).replace(/:/g, '-');
  const name = `dump-${pids[0]}${pids.length > 1 ? `-and-${pids.length - 1}-more` : ''}-${stamp}`;
  let clear: ReturnType<typeof setTimeout> | undefined;
  const say = (text: string) => {
    setText(status, text);
    clearTimeout(clear);
    clear = setTimeout(() => setText(status, ''), 2500);
  };
  return h(
    'div',
    { class: 'dump-actions' },
    button('Copy as text', async () => say((await copyText(dumpText(threads))) ? 'Copied' : 'Your browser would not copy; use Download text'), { aria: { label: 'Copy the dump as text' } }),
    button('Download text', () => saveFile(`${name}.txt`, dumpText(threads), 'text/plain'), { data: { format: 'text' } }),
    button('Download JSON', () => saveFile(`${name}.json`, `${JSON.stringify(threads, null, 2)}\n`, 'application/json'), { data: { format: 'json' } }),
    status,
  );
}

export function renderDump(threads: DumpThread[], asyncio?: DumpTasks): HTMLElement {
  if (threads.length === 0) return h('p', { class: 'muted' }, 'The dump holds no threads.');
  const pids = new Set(threads.map((t) => t.pid));
  const list = h('div', { class: 'dump' });
  list.appendChild(dumpActions(threads));
  const tasks = asyncio ? renderTasks(asyncio) : null;
  if (tasks) list.appendChild(tasks);
  const active = threads.filter((t) => t.active).length;
  const gil = threads.find((t) => t.owns_gil);
  list.appendChild(
    h(
      'p',
      { class: 'dump-summary' },
      `${threads.length} thread${threads.length === 1 ? '' : 's'} in ${pids.size} process${pids.size === 1 ? '' : 'es'}; ${active} active; `,
      gil ? `GIL held by thread ${gil.os_thread_id}${gil.thread_name ? ` (${gil.thread_name})` : ''}` : 'no thread held the GIL',
    ),
  );
  for (const t of threads) {
    const title = h('h3', { class: 'thread-title' }, `Thread ${t.os_thread_id > 0 ? t.os_thread_id : `0x${t.thread_id.toString(16)}`}`);
    if (t.thread_name) title.append(' ', h('span', { class: 'thread-name' }, `(${t.thread_name})`));
    const marks = h(
      'span',
      { class: 'marks' },
      h('span', { class: `badge ${t.active ? 'badge-active' : 'badge-idle'}` }, t.active ? 'active' : 'idle'),
      t.owns_gil ? h('span', { class: 'badge badge-gil', title: 'This thread held the global interpreter lock' }, 'has GIL') : null,
      pids.size > 1 ? h('span', { class: 'badge' }, `pid ${t.pid}`) : null,
    );
    const frames = h('ol', { class: 'stack' });
    for (const f of t.frames) {
      frames.appendChild(h('li', { title: f.filename ? `${f.filename}:${f.line}` : '' }, h('span', { class: 'name' }, f.name), h('span', { class: 'file' }, ` (${f.short_filename}:${f.line})`)));
    }
    if (t.frames.length === 0) frames.appendChild(h('li', { class: 'muted' }, 'no Python frames'));
    if (t.truncated) frames.appendChild(h('li', { class: 'muted truncated', title: 'The reader stopped before the outermost frame' }, '(stack truncated)'));
    list.appendChild(h('section', { class: `thread ${t.active ? 'is-active' : 'is-idle'}` }, h('div', { class: 'thread-head' }, title, marks), frames));
  }
  return list;
}
