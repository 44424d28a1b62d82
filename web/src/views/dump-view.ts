// A dump: every thread's stack, innermost frame first (like `py-spy dump`),
// with idle / active and GIL marks. The data is `periscope dump --json`, which
// arrives from the agent untrusted: shared/protocol.ts checks every field, and
// everything is shown as text.

import { h } from '../dom.ts';
import { type DumpThread, parseDumpThreads } from '../../../shared/protocol.ts';

/**
 * A dump the relay served over HTTP, checked with the protocol's own
 * validator (the socket's dump_result was checked on arrival): what is not a
 * dump is reported, never rendered.
 */
export function renderStoredDump(value: unknown): HTMLElement {
  let threads: DumpThread[];
  try {
    threads = parseDumpThreads(value, 'dump');
  } catch (err) {
    return h('p', { class: 'muted' }, `The stored dump cannot be shown: ${(err as Error).message}`);
  }
  return renderDump(threads);
}

export function renderDump(threads: DumpThread[]): HTMLElement {
  if (threads.length === 0) return h('p', { class: 'muted' }, 'The dump holds no threads.');
  const pids = new Set(threads.map((t) => t.pid));
  const list = h('div', { class: 'dump' });
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
