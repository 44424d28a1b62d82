// Live top, like `py-spy top`: the table is refreshed about once a second from
// a TopAccumulator that folds in only the samples appended since the previous
// refresh. %Own/%Total are over the last one-second window; OwnTime/TotalTime
// are cumulative since the start (or the last reset).

import type { Profile } from '../../../shared/profile/model.ts';
import { samplePeriodUs } from '../../../shared/profile/model.ts';
import { threadLabel } from '../../../shared/profile/root-frames.ts';
import { type LiveTopRow, TopAccumulator, type TopSortKey, type TopWindow } from '../../../shared/profile/top-accumulator.ts';
import { button, checkbox, h, replace, select, setText } from '../dom.ts';
import { count, percent, seconds } from '../format.ts';

export interface TopSource {
  readonly profile: Profile;
  /** Capture statistics from the relay (late samples, ticks), when known. */
  readonly stats?: { samples: number; late: number; ticks: number; errors: number };
}

type SortKey = TopSortKey | 'function';
const MAX_ROWS = 200;
const REFRESH_MS = 1000;

const COLUMNS: { key: SortKey; label: string; title: string }[] = [
  { key: 'ownPercent', label: '%Own', title: 'Share of the last second spent in the function itself' },
  { key: 'totalPercent', label: '%Total', title: 'Share of the last second spent in the function and what it called' },
  { key: 'ownTime', label: 'OwnTime', title: 'Time spent in the function itself since the start' },
  { key: 'totalTime', label: 'TotalTime', title: 'Time spent in the function and its callees since the start' },
  { key: 'function', label: 'Function (file:line)', title: 'Sort by function name' },
];

export class TopView {
  readonly element: HTMLDivElement;
  #source: TopSource;
  #acc: TopAccumulator;
  #sort: SortKey = 'ownTime';
  #byFunction = true;
  #idle = false;
  #gil = false;
  #threadRow = -1;
  #paused = false;
  #timer: ReturnType<typeof setInterval>;
  #head: HTMLTableSectionElement;
  #body: HTMLTableSectionElement;
  #header: HTMLDListElement;
  #threadSelect: HTMLSelectElement;
  #threadCount = -1;
  #pauseButton: HTMLButtonElement;
  #empty: HTMLParagraphElement;
  /** performance.now() of the last table paint, and the newest sample time it included. */
  lastRefreshAt = 0;
  lastRefreshSample = 0;
  onRefresh: (() => void) | undefined;

  constructor(source: TopSource) {
    this.#source = source;
    this.#acc = this.#newAccumulator();
    this.#head = h('thead');
    this.#body = h('tbody');
    this.#header = h('dl', { class: 'top-header' });
    this.#threadSelect = h('select', { aria: { label: 'Thread filter' } });
    this.#threadSelect.addEventListener('change', () => {
      this.#threadRow = Number(this.#threadSelect.value);
      this.#restart();
    });
    this.#pauseButton = button('Pause', () => this.#togglePause(), { aria: { pressed: 'false' }, title: 'Freeze the table (sampling goes on)' });
    this.#empty = h('p', { class: 'muted' }, 'Waiting for samples…');
    const modeSelect = select(
      [
        { value: 'line', label: 'By line' },
        { value: 'function', label: 'By function' },
      ],
      'function',
      (v) => {
        this.#byFunction = v === 'function';
        this.#render();
      },
    );
    modeSelect.setAttribute('aria-label', 'Aggregate by line or by function');
    const toolbar = h(
      'div',
      { class: 'toolbar' },
      this.#pauseButton,
      button('Reset', () => this.#reset(), { title: 'Zero OwnTime and TotalTime' }),
      modeSelect,
      this.#threadSelect,
      checkbox('Idle', false, (v) => {
        this.#idle = v;
        this.#restart();
      }, { title: 'Include samples of idle threads' }),
      checkbox('GIL only', false, (v) => {
        this.#gil = v;
        this.#restart();
      }, { title: 'Only samples where the thread held the GIL' }),
    );
    this.#renderHead();
    this.element = h(
      'div',
      { class: 'top-view' },
      this.#header,
      toolbar,
      h('div', { class: 'table-wrap' }, h('table', { class: 'top-table' }, this.#head, this.#body)),
      this.#empty,
    );
    this.#syncThreads();
    this.#timer = setInterval(() => this.tick(), REFRESH_MS);
    // Show what is already there (a reopened capture) straight away.
    queueMicrotask(() => this.tick());
  }

  dispose(): void {
    clearInterval(this.#timer);
  }

  /** The source's profile was replaced (capture reset). */
  profileReplaced(): void {
    this.#restart();
  }

  #newAccumulator(): TopAccumulator {
    return new TopAccumulator(this.#source.profile, {
      idle: this.#idle,
      gil: this.#gil,
      threadRows: this.#threadRow >= 0 ? [this.#threadRow] : undefined,
    });
  }

  #restart(): void {
    this.#acc = this.#newAccumulator();
    this.tick();
  }

  #reset(): void {
    this.#acc.reset();
    this.#render();
  }

  #togglePause(): void {
    this.#paused = !this.#paused;
    setText(this.#pauseButton, this.#paused ? 'Resume' : 'Pause');
    this.#pauseButton.setAttribute('aria-pressed', String(this.#paused));
    this.element.classList.toggle('paused', this.#paused);
    if (!this.#paused) this.#render();
  }

  /** Closes a one-second window: fold in new samples, then repaint unless paused. */
  tick(): void {
    if (this.#acc.profile !== this.#source.profile) this.#acc = this.#newAccumulator();
    this.#acc.ingest();
    this.#acc.endWindow();
    this.#syncThreads();
    if (!this.#paused) this.#render();
  }

  #syncThreads(): void {
    const p = this.#source.profile;
    const n = p.threads.pid.length;
    if (n === this.#threadCount) return;
    this.#threadCount = n;
    const options = [h('option', { value: '-1' }, 'All threads')];
    for (let t = 0; t < n; t++) options.push(h('option', { value: String(t) }, threadLabel(p, t)));
    replace(this.#threadSelect, ...options);
    this.#threadSelect.value = String(this.#threadRow);
  }

  #renderHead(): void {
    const cells = COLUMNS.map((c) => {
      const b = button(c.label, () => {
        this.#sort = c.key;
        this.#renderHead();
        this.#render();
      }, { class: 'th-button', title: c.title });
      const th = h('th', { class: c.key === 'function' ? 'fn' : 'num' }, b);
      th.setAttribute('aria-sort', this.#sort === c.key ? (c.key === 'function' ? 'ascending' : 'descending') : 'none');
      return th;
    });
    replace(this.#head, h('tr', null, ...cells));
  }

  #rows(): LiveTopRow[] {
    if (this.#sort !== 'function') return this.#acc.rows(this.#sort, this.#byFunction);
    const rows = this.#acc.rows('ownTime', this.#byFunction);
    rows.sort((a, b) => (a.function < b.function ? -1 : a.function > b.function ? 1 : a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0)));
    return rows;
  }

  #render(): void {
    const p = this.#source.profile;
    const w = this.#acc.lastWindow;
    const periodS = samplePeriodUs(p) / 1e6;
    this.#renderHeader(w);
    const rows = this.#rows();
    const body = this.#body;
    const shown = Math.min(rows.length, MAX_ROWS);
    while (body.rows.length > shown) body.deleteRow(-1);
    for (let i = 0; i < shown; i++) {
      const r = rows[i];
      let tr = body.rows[i];
      if (!tr) {
        tr = h('tr', null, h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'fn' }, h('span', { class: 'name' }), h('span', { class: 'file' })));
        body.appendChild(tr);
      }
      setText(tr.cells[0], percent(r.windowOwn, w.counted));
      setText(tr.cells[1], percent(r.windowTotal, w.counted));
      setText(tr.cells[2], seconds(r.cumulativeOwn * periodS));
      setText(tr.cells[3], seconds(r.cumulativeTotal * periodS));
      const fn = tr.cells[4];
      setText(fn.firstChild!, r.function);
      setText(fn.lastChild!, ` (${r.line === null ? r.file : `${r.file}:${r.line}`})`);
      (fn as HTMLElement).title = `${r.function} (${r.file}${r.line === null ? '' : `:${r.line}`})`;
    }
    this.#empty.hidden = shown > 0;
    this.lastRefreshAt = performance.now();
    const times = p.samples.timeUs;
    this.lastRefreshSample = times.length > 0 ? times[times.length - 1] : 0;
    this.element.dataset.samples = String(this.#acc.cumulativeSamples);
    this.onRefresh?.();
  }

  #renderHeader(w: TopWindow): void {
    const p = this.#source.profile;
    const stats = this.#source.stats;
    const total = p.samples.stack.length;
    const late = stats && stats.ticks > 0 ? percent(stats.late, stats.ticks) : percent(p.capture.lateSamples, total);
    const items: [string, string][] = [
      ['Samples', count(this.#acc.cumulativeSamples)],
      ['Rate', p.capture.rateHz > 0 ? `${count(p.capture.rateHz)} Hz` : '–'],
      ['Late', late],
      ['GIL', percent(w.gil, w.all)],
      ['Active', percent(w.active, w.all)],
      ['Threads', String(w.threads)],
      ['Processes', String(w.processes)],
      ['Duration', seconds(p.capture.durationUs / 1e6)],
    ];
    if (this.#header.childElementCount !== items.length) {
      replace(this.#header, ...items.map(([k]) => h('div', { data: { stat: k.toLowerCase() } }, h('dt', null, k), h('dd'))));
    }
    items.forEach(([, v], i) => setText(this.#header.children[i].lastChild!, v));
  }
}
