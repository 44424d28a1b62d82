// A dump: every thread's stack, innermost frame first (like `py-spy dump`),
// with idle / active and GIL marks. The data is `periscope dump --json`, which
// arrives from the agent untrusted: every field is checked and shown as text.

import { h } from '../dom.ts';

export interface DumpFrame {
  name: string;
  filename: string;
  shortFilename: string;
  line: number;
}

export interface DumpThread {
  pid: number;
  threadId: number;
  osThreadId: number;
  name: string | null;
  active: boolean;
  ownsGil: boolean;
  frames: DumpFrame[];
}

const str = (v: unknown, fallback = ''): string => (typeof v === 'string' ? v : fallback);
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);

/** Keeps what is well-formed; anything else is dropped, never rendered raw. */
export function parseDumpThreads(value: unknown): DumpThread[] {
  if (!Array.isArray(value)) return [];
  const threads: DumpThread[] = [];
  for (const t of value) {
    if (!t || typeof t !== 'object') continue;
    const o = t as Record<string, unknown>;
    const frames = Array.isArray(o.frames) ? o.frames : [];
    threads.push({
      pid: num(o.pid),
      threadId: num(o.thread_id),
      osThreadId: num(o.os_thread_id),
      name: typeof o.thread_name === 'string' ? o.thread_name : null,
      active: o.active === true,
      ownsGil: o.owns_gil === true,
      frames: frames
        .filter((f): f is Record<string, unknown> => !!f && typeof f === 'object')
        .map((f) => ({ name: str(f.name, '?'), filename: str(f.filename), shortFilename: str(f.short_filename, str(f.filename)), line: num(f.line) })),
    });
  }
  return threads;
}

export function renderDump(threads: DumpThread[]): HTMLElement {
  if (threads.length === 0) return h('p', { class: 'muted' }, 'The dump holds no threads.');
  const pids = new Set(threads.map((t) => t.pid));
  const list = h('div', { class: 'dump' });
  const active = threads.filter((t) => t.active).length;
  const gil = threads.find((t) => t.ownsGil);
  list.appendChild(
    h(
      'p',
      { class: 'dump-summary' },
      `${threads.length} thread${threads.length === 1 ? '' : 's'} in ${pids.size} process${pids.size === 1 ? '' : 'es'}; ${active} active; `,
      gil ? `GIL held by thread ${gil.osThreadId}${gil.name ? ` (${gil.name})` : ''}` : 'no thread held the GIL',
    ),
  );
  for (const t of threads) {
    const title = h('h3', { class: 'thread-title' }, `Thread ${t.osThreadId > 0 ? t.osThreadId : `0x${t.threadId.toString(16)}`}`);
    if (t.name) title.append(' ', h('span', { class: 'thread-name' }, `(${t.name})`));
    const marks = h(
      'span',
      { class: 'marks' },
      h('span', { class: `badge ${t.active ? 'badge-active' : 'badge-idle'}` }, t.active ? 'active' : 'idle'),
      t.ownsGil ? h('span', { class: 'badge badge-gil', title: 'This thread held the global interpreter lock' }, 'has GIL') : null,
      pids.size > 1 ? h('span', { class: 'badge' }, `pid ${t.pid}`) : null,
    );
    const frames = h('ol', { class: 'stack' });
    for (const f of t.frames) {
      frames.appendChild(h('li', { title: f.filename ? `${f.filename}:${f.line}` : '' }, h('span', { class: 'name' }, f.name), h('span', { class: 'file' }, ` (${f.shortFilename}:${f.line})`)));
    }
    if (t.frames.length === 0) frames.appendChild(h('li', { class: 'muted' }, 'no Python frames'));
    list.appendChild(h('section', { class: `thread ${t.active ? 'is-active' : 'is-idle'}` }, h('div', { class: 'thread-head' }, title, marks), frames));
  }
  return list;
}
