// Live top, like `py-spy top`: the table is refreshed about once a second from
// a TopAccumulator that folds in only the samples appended since the previous
// refresh. While the capture runs, %Own/%Total (and the header's GIL, Active,
// Threads) are over the last one-second window by default, or over the whole
// capture when asked; a finished capture (stopped, or opened from the history)
// only has the whole capture to show. OwnTime/TotalTime are cumulative since
// the start (or the last reset).
//
// py-spy's keys work while the page has no text field or select focused: 1-4
// sort, L lines/functions, R reset, space pause. The listener sits on the
// document and is removed by dispose().

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
  /** True once nothing more will arrive (the capture ended, or was opened from the history). */
  readonly done?: boolean;
}

type SortKey = TopSortKey | 'function';
/** What %Own, %Total and the header are over: the last closed one-second window, or everything counted. */
type Scope = 'window' | 'whole';
const MAX_ROWS = 200;
const REFRESH_MS = 1000;
/** Keys 1-4, in py-spy's column order. */
const KEY_SORTS: TopSortKey[] = ['ownPercent', 'totalPercent', 'ownTime', 'totalTime'];

interface Column {
  key: SortKey;
  label: (byFunction: boolean) => string;
  title: (over: string, since: string, byFunction: boolean) => string;
}

const COLUMNS: Column[] = [
  { key: 'ownPercent', label: () => '%Own', title: (over) => `Share of ${over} spent in the function itself (key 1)` },
  { key: 'totalPercent', label: () => '%Total', title: (over) => `Share of ${over} spent in the function and what it called (key 2)` },
  { key: 'ownTime', label: () => 'OwnTime', title: (_, since) => `Time spent in the function itself ${since} (key 3)` },
  { key: 'totalTime', label: () => 'TotalTime', title: (_, since) => `Time spent in the function and its callees ${since} (key 4)` },
  {
    key: 'function',
    label: (byFunction) => (byFunction ? 'Function (file:first line)' : 'Function (file:line)'),
    title: (_, __, byFunction) =>
      byFunction
        ? 'Sort by function name. The line is the first (lowest) line sampled in the function: profiles do not record where a function is defined'
        : 'Sort by function name',
  },
];

const NO_FIGURE = '–';

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
  /** The scope asked for while running; a finished capture always shows the whole capture. */
  #scope: Scope = 'window';
  #finished = false;
  /** reset() was used on the current accumulator: its cumulative counts do not start at the beginning. */
  #wasReset = false;
  #timer: ReturnType<typeof setInterval>;
  #head: HTMLTableSectionElement;
  #body: HTMLTableSectionElement;
  #header: HTMLDListElement;
  #threadSelect: HTMLSelectElement;
  #modeSelect: HTMLSelectElement;
  #threadCount = -1;
  #pauseButton: HTMLButtonElement;
  #resetButton: HTMLButtonElement;
  #scopeGroup: HTMLSpanElement;
  #windowButton: HTMLButtonElement;
  #wholeButton: HTMLButtonElement;
  #keysHint: HTMLParagraphElement;
  #empty: HTMLParagraphElement;
  readonly #onKey = (ev: KeyboardEvent): void => this.#key(ev);
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
    this.#pauseButton = button('Pause', () => this.#togglePause(), { aria: { pressed: 'false' }, title: 'Freeze the table (sampling goes on) (space)' });
    this.#resetButton = button('Reset', () => this.#reset(), { title: 'Zero OwnTime and TotalTime, and start “whole capture” afresh (R)' });
    this.#windowButton = button('Last second', () => this.#setScope('window'), {
      title: '%Own, %Total and the header over the last second, like py-spy',
      aria: { pressed: 'true' },
    });
    this.#wholeButton = button('Whole capture', () => this.#setScope('whole'), {
      title: '%Own, %Total and the header over every sample since the start (or the last Reset)',
      aria: { pressed: 'false' },
    });
    this.#scopeGroup = h('span', { class: 'segmented top-scope', role: 'group', aria: { label: 'Percentages over' } }, this.#windowButton, this.#wholeButton);
    this.#empty = h('p', { class: 'muted' }, 'Waiting for samples…');
    this.#modeSelect = select(
      [
        { value: 'line', label: 'By line' },
        { value: 'function', label: 'By function' },
      ],
      'function',
      (v) => this.#setByFunction(v === 'function'),
    );
    this.#modeSelect.setAttribute('aria-label', 'Aggregate by line or by function');
    this.#modeSelect.title = 'By function, a row’s line is the first (lowest) line sampled in the function (L)';
    const toolbar = h(
      'div',
      { class: 'toolbar' },
      this.#scopeGroup,
      this.#pauseButton,
      this.#resetButton,
      this.#modeSelect,
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
    this.#keysHint = h('p', { class: 'top-keys muted' });
    this.element = h(
      'div',
      { class: 'top-view' },
      this.#header,
      toolbar,
      h('div', { class: 'table-wrap' }, h('table', { class: 'top-table' }, this.#head, this.#body)),
      this.#empty,
      this.#keysHint,
    );
    this.element.setAttribute('aria-keyshortcuts', '1 2 3 4 L R Space');
    this.#syncFinished();
    this.#syncControls();
    this.#renderHead();
    this.#syncThreads();
    document.addEventListener('keydown', this.#onKey);
    this.#timer = setInterval(() => this.tick(), REFRESH_MS);
    // Show what is already there (a reopened capture) straight away.
    queueMicrotask(() => this.tick());
  }

  dispose(): void {
    clearInterval(this.#timer);
    document.removeEventListener('keydown', this.#onKey);
  }

  /** The source's profile was replaced (capture reset). */
  profileReplaced(): void {
    this.#restart();
  }

  /** Closes a one-second window: fold in new samples and repaint, unless paused. */
  tick(): void {
    this.#syncFinished();
    this.#syncThreads();
    if (this.#paused) return;
    this.#advance();
    this.#render();
  }

  #newAccumulator(): TopAccumulator {
    this.#wasReset = false;
    return new TopAccumulator(this.#source.profile, {
      idle: this.#idle,
      gil: this.#gil,
      threadRows: this.#threadRow >= 0 ? [this.#threadRow] : undefined,
    });
  }

  #advance(): void {
    if (this.#acc.profile !== this.#source.profile) this.#acc = this.#newAccumulator();
    this.#acc.ingest();
    this.#acc.endWindow();
  }

  /** New filters: count everything again. While paused this takes a new snapshot, still frozen. */
  #restart(): void {
    this.#acc = this.#newAccumulator();
    this.#syncThreads();
    this.#advance();
    this.#render();
  }

  #reset(): void {
    if (this.#finished) return;
    this.#acc.reset();
    this.#wasReset = true;
    this.#renderHead();
    this.#render();
  }

  #togglePause(): void {
    if (this.#finished) return;
    this.#setPaused(!this.#paused);
    // Resuming folds in everything sampled meanwhile at once.
    if (!this.#paused) this.tick();
  }

  #setPaused(paused: boolean): void {
    this.#paused = paused;
    setText(this.#pauseButton, paused ? 'Resume' : 'Pause');
    this.#pauseButton.setAttribute('aria-pressed', String(paused));
    this.element.classList.toggle('paused', paused);
  }

  #setSort(key: SortKey): void {
    this.#sort = key;
    this.#renderHead();
    this.#render();
  }

  #setByFunction(byFunction: boolean): void {
    this.#byFunction = byFunction;
    this.#modeSelect.value = byFunction ? 'function' : 'line';
    this.#renderHead();
    this.#render();
  }

  #setScope(scope: Scope): void {
    this.#scope = scope;
    this.#syncControls();
    this.#renderHead();
    this.#render();
  }

  #effectiveScope(): Scope {
    return this.#finished ? 'whole' : this.#scope;
  }

  /** Follows the source into the finished state: whole capture only, nothing to pause or reset. */
  #syncFinished(): void {
    const finished = this.#source.done === true;
    if (finished === this.#finished) return;
    this.#finished = finished;
    if (finished) {
      // "Whole capture" means the whole capture once it is over, even after a Reset;
      // and a paused table would hide the final figures (tick() paints them next).
      if (this.#wasReset) this.#acc = this.#newAccumulator();
      this.#setPaused(false);
    }
    this.#syncControls();
    this.#renderHead();
  }

  #syncControls(): void {
    const whole = this.#effectiveScope() === 'whole';
    this.#scopeGroup.hidden = this.#finished;
    this.#windowButton.setAttribute('aria-pressed', String(!whole));
    this.#wholeButton.setAttribute('aria-pressed', String(whole));
    this.#pauseButton.hidden = this.#finished;
    this.#resetButton.hidden = this.#finished;
    this.element.dataset.scope = whole ? 'whole' : 'window';
    this.element.dataset.finished = String(this.#finished);
    const keys: [string, string][] = [
      ['1–4', 'sort by %Own, %Total, OwnTime, TotalTime'],
      ['L', 'lines / functions'],
    ];
    if (!this.#finished) keys.push(['R', 'reset'], ['Space', 'pause']);
    const parts: (Node | string)[] = ['Keys: '];
    keys.forEach(([k, what], i) => {
      if (i > 0) parts.push(' · ');
      parts.push(h('kbd', null, k), ` ${what}`);
    });
    replace(this.#keysHint, ...parts);
  }

  /** py-spy's keys, unless the user is typing or choosing in a form field, or the key means something there. */
  #key(ev: KeyboardEvent): void {
    if (ev.defaultPrevented || ev.repeat || ev.ctrlKey || ev.metaKey || ev.altKey || ev.isComposing) return;
    if (!this.element.isConnected) return;
    const target = ev.target instanceof Element ? ev.target : null;
    if (target && (target.closest('input, select, textarea, [contenteditable]:not([contenteditable="false"])') || (target as HTMLElement).isContentEditable)) return;
    const key = ev.key;
    const column = key.length === 1 ? '1234'.indexOf(key) : -1;
    if (column >= 0) this.#setSort(KEY_SORTS[column]);
    else if (key === 'l' || key === 'L') this.#setByFunction(!this.#byFunction);
    else if ((key === 'r' || key === 'R') && !this.#finished) this.#reset();
    else if (key === ' ' && !this.#finished) {
      // Space on a button or link already activates it.
      if (target?.closest('button, a[href], summary, [role="button"], [role="tab"]')) return;
      this.#togglePause();
    } else return;
    ev.preventDefault();
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
    const whole = this.#effectiveScope() === 'whole';
    const over = !whole ? 'the last second’s samples' : this.#finished ? 'the whole capture’s samples' : 'the samples since the start (or the last Reset)';
    const since = this.#finished ? 'over the whole capture' : 'since the start (or the last Reset)';
    const cells = COLUMNS.map((c) => {
      const b = button(c.label(this.#byFunction), () => this.#setSort(c.key), { class: 'th-button', title: c.title(over, since, this.#byFunction) });
      const th = h('th', { class: c.key === 'function' ? 'fn' : 'num' }, b);
      th.dataset.sort = c.key;
      th.setAttribute('aria-sort', this.#sort === c.key ? (c.key === 'function' ? 'ascending' : 'descending') : 'none');
      return th;
    });
    replace(this.#head, h('tr', null, ...cells));
  }

  #rows(whole: boolean): LiveTopRow[] {
    if (this.#sort !== 'function') {
      // Over the whole capture the percentages follow the cumulative counts.
      const sortBy = whole && this.#sort === 'ownPercent' ? 'ownTime' : whole && this.#sort === 'totalPercent' ? 'totalTime' : this.#sort;
      return this.#acc.rows(sortBy, this.#byFunction);
    }
    const rows = this.#acc.rows('ownTime', this.#byFunction);
    rows.sort((a, b) => (a.function < b.function ? -1 : a.function > b.function ? 1 : a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0)));
    return rows;
  }

  #render(): void {
    const p = this.#source.profile;
    const whole = this.#effectiveScope() === 'whole';
    const w = whole ? this.#acc.cumulativeWindow : this.#acc.lastWindow;
    const periodS = samplePeriodUs(p) / 1e6;
    this.#renderHeader(w, whole);
    const rows = this.#rows(whole);
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
      setText(tr.cells[0], percent(whole ? r.cumulativeOwn : r.windowOwn, w.counted));
      setText(tr.cells[1], percent(whole ? r.cumulativeTotal : r.windowTotal, w.counted));
      setText(tr.cells[2], seconds(r.cumulativeOwn * periodS));
      setText(tr.cells[3], seconds(r.cumulativeTotal * periodS));
      const fn = tr.cells[4];
      setText(fn.firstChild!, r.function);
      setText(fn.lastChild!, ` (${r.line === null ? r.file : `${r.file}:${r.line}`})`);
      (fn as HTMLElement).title = `${r.function} (${r.file}${r.line === null ? '' : `:${r.line}`})`;
    }
    this.#empty.hidden = shown > 0;
    setText(this.#empty, this.#finished ? 'No samples were counted.' : 'Waiting for samples…');
    this.lastRefreshAt = performance.now();
    const times = p.samples.timeUs;
    this.lastRefreshSample = times.length > 0 ? times[times.length - 1] : 0;
    // The capture's samples this table includes (the page shows that count once, above the tabs).
    this.element.dataset.samples = String(this.#acc.nextSample);
    this.onRefresh?.();
  }

  #renderHeader(w: TopWindow, whole: boolean): void {
    const p = this.#source.profile;
    const stats = this.#source.stats;
    const total = p.samples.stack.length;
    const late = stats && stats.ticks > 0 ? percent(stats.late, stats.ticks) : percent(p.capture.lateSamples, total);
    const none = w.all === 0;
    const over = !whole ? 'last second' : this.#wasReset && !this.#finished ? 'since Reset' : 'whole capture';
    const items: [string, string][] = [
      ['Over', over],
      ['Rate', p.capture.rateHz > 0 ? `${count(p.capture.rateHz)} Hz` : NO_FIGURE],
      ['Late', late],
      ['GIL', none ? NO_FIGURE : percent(w.gil, w.all)],
      ['Active', none ? NO_FIGURE : percent(w.active, w.all)],
      ['Threads', none ? NO_FIGURE : String(w.threads)],
      ['Processes', none ? NO_FIGURE : String(w.processes)],
      ['Duration', seconds(p.capture.durationUs / 1e6)],
    ];
    if (this.#header.childElementCount !== items.length) {
      replace(this.#header, ...items.map(([k]) => h('div', { data: { stat: k.toLowerCase() } }, h('dt', null, k), h('dd'))));
    }
    items.forEach(([, v], i) => setText(this.#header.children[i].lastChild!, v));
  }
}
