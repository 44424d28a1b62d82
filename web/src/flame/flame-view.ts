// The record view: live flame graph on a canvas plus a function table beside it.
// Toolbar: reset zoom, search (highlights matches, shows matched %), flame /
// icicle, by function / by line, per-thread roots, idle and GIL filters.

import type { Profile } from '../../../shared/profile/model.ts';
import { TopAccumulator } from '../../../shared/profile/top-accumulator.ts';
import { button, checkbox, h, replace, setText } from '../dom.ts';
import { count, percent } from '../format.ts';
import { FlameCanvas, type HitBox } from './flame-canvas.ts';
import { CallTree, type CallTreeOptions, NodeKind } from '../../../shared/profile/call-tree.ts';
import type { ViewOptions } from '../../../shared/profile/view-options.ts';
import { type SandwichFunction, sandwich } from '../../../shared/profile/sandwich.ts';
import type { FlameState } from '../view-state.ts';
import { FlameSearch } from './flame-search.ts';
import { FlameOverview } from './flame-overview.ts';

/**
 * The options the view's checkboxes toggle (always set), a thread selection,
 * and merged processes (unset: the capture decides, see processRoots).
 */
type ToggledOptions = Required<Pick<CallTreeOptions, 'idle' | 'gil' | 'function' | 'threads'>> & Pick<CallTreeOptions, 'threadRows' | 'mergeProcesses'>;

export interface ProfileSource {
  readonly profile: Profile;
  /** True once the capture has ended and all of it has arrived (nothing will change the profile). */
  readonly complete?: boolean;
}

function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(i + 1) : path;
}

type TableSort = 'self' | 'total';
const TABLE_ROWS = 150;
/** Samples folded in per ingest() call, and how long one frame may spend ingesting. */
const INGEST_SLICE = 20_000;
const INGEST_BUDGET_MS = 10;

export class FlameView {
  readonly element: HTMLDivElement;
  readonly canvas: FlameCanvas;
  #source: ProfileSource;
  #options: ToggledOptions;
  #model: CallTree;
  #table: TopAccumulator;
  #tableSort: TableSort = 'self';
  #tableDirty = true;
  #tableTimer: ReturnType<typeof setTimeout> | undefined;
  #tableCostMs = 0;
  #disposed = false;
  #tableBody: HTMLTableSectionElement;
  #tableHead: HTMLTableSectionElement;
  #search = new FlameSearch('');
  #searchInput: HTMLInputElement;
  #matched: HTMLSpanElement;
  #summary: HTMLSpanElement;
  #tooltip: HTMLDivElement;
  #resetButton: HTMLButtonElement;
  #flameButton: HTMLButtonElement;
  #icicleButton: HTMLButtonElement;
  #pending = 0;
  #frameTimes: number[] = [];
  onDrawn: ((ms: number, boxes: number) => void) | undefined;
  /** The view's options changed (downloads follow them). */
  onOptionsChange: ((options: ViewOptions) => void) | undefined;
  /** Anything a link keeps changed: options, search, layout, order, zoom. */
  onStateChange: (() => void) | undefined;
  /** A zoom to restore once the tree holds its path (from a link). */
  #pendingZoom: number[] | null = null;
  #mergeBox: HTMLLabelElement;
  #mergeInput: HTMLInputElement;
  #heavyButton: HTMLButtonElement;
  #nameButton: HTMLButtonElement;
  #openedOnHotPath = false;
  #overview: FlameOverview | undefined;
  #sandwichBox = h('section', { class: 'sandwich', aria: { label: 'Sandwich view' } });
  #sandwichPanes: { callers: FlameCanvas; callees: FlameCanvas } | null = null;

  constructor(source: ProfileSource, options: Partial<ToggledOptions> = {}) {
    this.#source = source;
    this.#options = { idle: false, gil: false, function: false, threads: false, ...options };
    this.#model = new CallTree(source.profile, this.#options);
    this.#table = this.#newTable();
    this.canvas = new FlameCanvas({
      zoom: () => this.#afterZoom(),
      hover: (hit, x, y) => this.#showTooltip(hit, x, y),
      drawn: (ms, boxes) => {
        this.#overview?.draw();
        this.#frameTimes.push(ms);
        if (this.#frameTimes.length > 240) this.#frameTimes.shift();
        this.onDrawn?.(ms, boxes);
      },
    });
    this.canvas.setModel(this.#model);
    this.#overview = new FlameOverview(this.canvas);

    this.#searchInput = h('input', { type: 'search', placeholder: 'Search functions or files', class: 'search', aria: { label: 'Search functions or files' } });
    this.#searchInput.addEventListener('input', () => this.setSearch(this.#searchInput.value));
    this.#searchInput.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') {
        this.#searchInput.value = '';
        this.setSearch('');
      }
    });
    this.#matched = h('span', { class: 'matched', aria: { live: 'polite' } });
    this.#summary = h('span', { class: 'flame-summary' });
    this.#resetButton = button('Reset zoom', () => this.canvas.setZoom(0), { disabled: true, title: 'Show the whole graph (Escape)' });
    this.#flameButton = button('Flame', () => this.#setLayout(false), { title: 'Root at the bottom', aria: { pressed: 'true' } });
    this.#icicleButton = button('Icicle', () => this.#setLayout(true), { title: 'Root at the top', aria: { pressed: 'false' } });
    const layout = h('span', { class: 'segmented', role: 'group', aria: { label: 'Layout' } }, this.#flameButton, this.#icicleButton);
    this.#nameButton = button('A–Z', () => this.#setOrder('name'), { title: 'Children in name order (flamegraph.pl)', aria: { pressed: 'true' } });
    this.#heavyButton = button('Left heavy', () => this.#setOrder('heavy'), { title: 'Heaviest children first, on the left (speedscope)', aria: { pressed: 'false' } });
    const order = h('span', { class: 'segmented', role: 'group', aria: { label: 'Order' } }, this.#nameButton, this.#heavyButton);
    this.#mergeBox = checkbox('Merge processes', true, (v) => this.#rebuild({ mergeProcesses: v }), { title: 'One tree for every process (a fork-per-job worker’s children); untick for a root per process' });
    this.#mergeInput = this.#mergeBox.querySelector('input')!;
    this.#mergeBox.hidden = true;

    const toolbar = h(
      'div',
      { class: 'toolbar' },
      this.#resetButton,
      this.#searchInput,
      this.#matched,
      layout,
      order,
      checkbox('By function', this.#options.function, (v) => this.#rebuild({ function: v }), { title: 'Merge the lines of a function into one box' }),
      checkbox('Per thread', this.#options.threads, (v) => this.#rebuild({ threads: v }), { title: 'One root per thread' }),
      checkbox('Idle', this.#options.idle, (v) => this.#rebuild({ idle: v }), { title: 'Include samples of idle threads' }),
      checkbox('GIL only', this.#options.gil, (v) => this.#rebuild({ gil: v }), { title: 'Only samples where the thread held the GIL' }),
      this.#mergeBox,
    );

    this.#tableHead = h('thead');
    this.#tableBody = h('tbody');
    this.#renderTableHead();
    const table = h('table', { class: 'fn-table' }, this.#tableHead, this.#tableBody);
    this.#tooltip = h('div', { class: 'tooltip', role: 'tooltip', aria: { hidden: 'true' } });
    this.#tooltip.hidden = true;

    this.element = h(
      'div',
      { class: 'flame-view' },
      toolbar,
      h('div', { class: 'flame-status' }, this.#summary),
      h('div', { class: 'flame-body' }, h('div', { class: 'flame-main' }, this.#overview.element, this.canvas.element, this.#tooltip), h('div', { class: 'fn-table-wrap', aria: { label: 'Functions' } }, table)),
      this.#sandwichBox,
    );
    this.#sandwichBox.hidden = true;
    this.#scheduleTable(1000);
    this.update();
  }

  /**
   * speedscope's sandwich of one function, from what has arrived so far: its
   * callers above it (flame layout: the function at the bottom) and its callees
   * below it (icicle: the function at the top).
   */
  openSandwich(fn: SandwichFunction): void {
    this.closeSandwich();
    const o = this.#options;
    const cut = sandwich(this.#source.profile, fn, { idle: o.idle, gil: o.gil, threadRows: o.threadRows });
    const panes = { callers: new FlameCanvas(), callees: new FlameCanvas() };
    for (const [key, canvas] of Object.entries(panes)) {
      // By function, as speedscope's sandwich: the function is one box whatever line ran.
      const tree = new CallTree(cut[key as keyof typeof panes], { function: true });
      tree.ingest();
      canvas.setModel(tree);
      canvas.setIcicle(key === 'callees');
      canvas.element.dataset.pane = key;
    }
    this.#sandwichPanes = panes;
    const shownSamples = this.#model.total[0];
    replace(
      this.#sandwichBox,
      h(
        'div',
        { class: 'sandwich-head' },
        h('h3', null, 'Sandwich: ', h('span', { class: 'mono' }, fn.name), h('span', { class: 'file' }, ` ${fn.file}`)),
        h('span', { class: 'muted' }, ` ${count(cut.samples)} samples hold it (${percent(cut.samples, shownSamples)})`),
        button('Close', () => this.closeSandwich(), { class: 'link-small' }),
      ),
      h('div', { class: 'sandwich-label muted' }, 'Callers (who calls it, outward)'),
      panes.callers.element,
      h('div', { class: 'sandwich-label muted' }, 'Callees (what it calls)'),
      panes.callees.element,
    );
    this.#sandwichBox.hidden = false;
    this.#sandwichBox.scrollIntoView({ block: 'nearest' });
  }

  closeSandwich(): void {
    if (!this.#sandwichPanes) return;
    this.#sandwichPanes.callers.dispose();
    this.#sandwichPanes.callees.dispose();
    this.#sandwichPanes = null;
    replace(this.#sandwichBox);
    this.#sandwichBox.hidden = true;
  }

  dispose(): void {
    this.closeSandwich();
    this.#disposed = true;
    clearTimeout(this.#tableTimer);
    cancelAnimationFrame(this.#pending);
    this.canvas.dispose();
  }

  get model(): CallTree {
    return this.#model;
  }

  /** Recent draw times, ms (for the benchmark). */
  get frameTimes(): readonly number[] {
    return this.#frameTimes;
  }

  /** The source's profile was replaced (capture reset): start over. */
  profileReplaced(): void {
    this.#rebuild({});
  }

  /** New samples arrived: fold them in on the next animation frame. */
  update(): void {
    if (this.#pending) return;
    this.#pending = requestAnimationFrame(() => {
      this.#pending = 0;
      this.#ingest();
    });
  }

  /**
   * Folds in new samples for at most ~10 ms, draws, and comes back next frame
   * if there is more: a reopened capture of a million samples fills in over a
   * few frames instead of freezing the page.
   */
  #ingest(): void {
    if (this.#model.profile !== this.#source.profile) {
      this.#rebuild({});
      return;
    }
    const before = this.#model.version;
    const deadline = performance.now() + INGEST_BUDGET_MS;
    do {
      if (!this.#model.ingest(INGEST_SLICE, deadline)) this.canvas.modelRebuilt();
    } while (this.#model.backlog > 0 && performance.now() < deadline);
    if (this.#model.version !== before) {
      this.#tableDirty = true;
      this.#updateStatus();
      // Several processes: offer merging, showing what the tree does now.
      this.#mergeBox.hidden = !this.#model.multiProcess;
      this.#mergeInput.checked = !this.#model.processRoots;
      this.canvas.drawNow();
    }
    if (this.#model.backlog > 0) this.update();
    else if (this.#pendingZoom && this.#source.complete) {
      // A link's zoom: once everything has arrived, the path means what it meant.
      const node = this.#nodeAt(this.#pendingZoom);
      this.#pendingZoom = null;
      if (node > 0) this.canvas.setZoom(node);
    } else if (this.#source.complete && !this.#openedOnHotPath && this.#model.total[0] > 0) {
      // A finished capture opens on its hottest path (once: then the user steers).
      this.#openedOnHotPath = true;
      this.canvas.revealHottestPath();
    }
    if (this.#model.backlog === 0 && this.#firstTable) {
      // The table after the graph is on screen.
      this.#firstTable = false;
      this.#scheduleTable(0);
    }
  }

  #firstTable = true;

  /** What the view shows, as download options. */
  get viewOptions(): ViewOptions {
    const { idle, gil, function: fn, threads, mergeProcesses } = this.#options;
    return { idle, gil, function: fn, threads, ...(mergeProcesses === undefined ? {} : { mergeProcesses }) };
  }

  #setOrder(order: 'name' | 'heavy'): void {
    this.#model.setOrder(order);
    this.#nameButton.setAttribute('aria-pressed', String(order === 'name'));
    this.#heavyButton.setAttribute('aria-pressed', String(order === 'heavy'));
    this.canvas.invalidate();
    this.onStateChange?.();
  }

  /** What a link to this view keeps. */
  get state(): FlameState {
    const m = this.#model;
    const zoom: number[] = [];
    const path = m.ancestry(this.canvas.zoom < m.nodeCount ? this.canvas.zoom : 0);
    for (let i = 1; i < path.length; i++) {
      let k = 0;
      for (let c = m.firstSortedChild(path[i - 1]); c !== -1 && c !== path[i]; c = m.nextSibling[c]) k++;
      zoom.push(k);
    }
    return { options: this.viewOptions, search: this.#search.query, icicle: this.canvas.icicle, heavy: m.order === 'heavy', zoom };
  }

  /** Restores what a link kept (its options are given to the constructor). */
  restore(state: FlameState): void {
    if (state.heavy) this.#setOrder('heavy');
    if (state.icicle) this.#setLayout(true);
    if (state.search) this.setSearch(state.search);
    if (state.zoom.length > 0) {
      this.#pendingZoom = state.zoom;
      this.#openedOnHotPath = true;
      // The capture may have arrived whole already (a finished one, replayed at once): no further chunk would apply the zoom.
      this.update();
    }
  }

  /** The node at a path of child positions, or -1 while the tree does not hold it (yet). */
  #nodeAt(path: number[]): number {
    const m = this.#model;
    let n = 0;
    for (const k of path) {
      let c = m.firstSortedChild(n);
      for (let i = 0; i < k && c !== -1; i++) c = m.nextSibling[c];
      if (c === -1) return -1;
      n = c;
    }
    return n;
  }

  #rebuild(change: Partial<ToggledOptions>): void {
    this.#options = { ...this.#options, ...change };
    const order = this.#model.order;
    this.#model = new CallTree(this.#source.profile, this.#options);
    this.#model.setOrder(order);
    this.onOptionsChange?.(this.viewOptions);
    this.onStateChange?.();
    this.#table = this.#newTable();
    this.#tableDirty = true;
    this.#firstTable = true;
    this.canvas.setModel(this.#model);
    this.update();
    this.#search = new FlameSearch(this.#search.query);
    this.canvas.setSearch(this.#search);
    this.#afterZoom();
  }

  #newTable(): TopAccumulator {
    const o = this.#options;
    return new TopAccumulator(this.#source.profile, { idle: o.idle, gil: o.gil, threadRows: o.threadRows });
  }

  setSearch(query: string): void {
    this.#search = new FlameSearch(query.trim());
    this.canvas.setSearch(this.#search);
    if (this.#searchInput.value !== query) this.#searchInput.value = query;
    this.#updateStatus();
    this.onStateChange?.();
  }

  #setLayout(icicle: boolean): void {
    this.canvas.setIcicle(icicle);
    this.#flameButton.setAttribute('aria-pressed', String(!icicle));
    this.#icicleButton.setAttribute('aria-pressed', String(icicle));
    this.onStateChange?.();
  }

  #afterZoom(): void {
    this.#resetButton.disabled = this.canvas.zoom === 0;
    this.#updateStatus();
    this.onStateChange?.();
  }

  #updateStatus(): void {
    const m = this.#model;
    const all = m.total[0];
    const zoom = this.canvas.zoom < m.nodeCount ? this.canvas.zoom : 0;
    const taken = m.profile.samples.stack.length;
    let text = all === taken ? `${count(all)} samples` : `${count(all)} of ${count(taken)} samples shown${this.#options.idle ? '' : ' (idle threads hidden)'}`;
    if (zoom !== 0) text += ` · zoomed to ${m.name(zoom)} (${percent(m.total[zoom], all)})`;
    setText(this.#summary, text);
    this.canvas.canvas.setAttribute('aria-label', `Flame graph of ${count(all)} samples`);
    if (this.#search.active) {
      const base = m.total[zoom];
      const hits = this.#search.matchedSamples(m, zoom);
      setText(this.#matched, `Matched ${percent(hits, base)}`);
      this.#matched.dataset.samples = String(hits);
    } else {
      setText(this.#matched, '');
    }
  }

  #showTooltip(hit: HitBox | null, clientX: number, clientY: number): void {
    const tip = this.#tooltip;
    if (!hit) {
      tip.hidden = true;
      return;
    }
    const m = this.#model;
    const n = hit.node;
    const all = m.total[0];
    const zoom = this.canvas.zoom;
    const lines: (string | HTMLElement)[] = [h('strong', null, m.name(n))];
    if (m.kind[n] === NodeKind.Frame) {
      const line = m.line(n);
      lines.push(h('span', { class: 'mono' }, line === null ? m.file(n) : `${m.file(n)}:${line}`));
    }
    let stat = `${count(m.total[n])} samples, ${percent(m.total[n], all, 2)} of all`;
    if (zoom !== 0 && zoom !== n) stat += `, ${percent(m.total[n], m.total[zoom], 2)} of zoom`;
    lines.push(h('span', null, stat));
    if (m.self[n] > 0) lines.push(h('span', null, `self ${count(m.self[n])} (${percent(m.self[n], all, 2)})`));
    replace(tip, ...lines.map((l) => h('div', null, l)));
    tip.hidden = false;
    const host = tip.parentElement!.getBoundingClientRect();
    const tw = tip.offsetWidth;
    const th = tip.offsetHeight;
    let left = clientX - host.left + 14;
    if (left + tw > host.width) left = Math.max(0, clientX - host.left - tw - 14);
    // Below the pointer, or above it when that would leave the graph or the window.
    let top = clientY - host.top + 16;
    if (top + th > host.height || clientY + 16 + th > window.innerHeight) top = Math.max(0, clientY - host.top - th - 12);
    tip.style.left = `${left}px`;
    tip.style.top = `${top}px`;
  }

  // ---- function table ----

  #renderTableHead(): void {
    const sortButton = (key: TableSort, label: string) => {
      const b = button(label, () => {
        this.#tableSort = key;
        this.#renderTableHead();
        this.#refreshTable(true);
      }, { class: 'th-button', title: `Sort by ${label.toLowerCase()}` });
      const th = h('th', { class: 'num' }, b);
      th.setAttribute('aria-sort', this.#tableSort === key ? 'descending' : 'none');
      return th;
    };
    replace(this.#tableHead, h('tr', null, sortButton('self', 'Self'), sortButton('total', 'Total'), h('th', null, 'Function')));
  }

  /**
   * The table refreshes about once a second while data arrives, less often
   * when a refresh is expensive (huge captures), so it never hogs the page.
   */
  #scheduleTable(delayMs: number): void {
    clearTimeout(this.#tableTimer);
    this.#tableTimer = setTimeout(() => {
      if (this.#disposed) return;
      if (this.#tableDirty && this.#model.backlog === 0) {
        const t0 = performance.now();
        this.#refreshTable(true);
        this.#tableCostMs = performance.now() - t0;
      }
      this.#scheduleTable(Math.max(1000, this.#tableCostMs * 10));
    }, delayMs);
  }

  #refreshTable(force: boolean): void {
    if (!force && !this.#tableDirty) return;
    if (this.#table.profile !== this.#source.profile) this.#table = this.#newTable();
    this.#tableDirty = false;
    this.#table.ingest();
    const rows = this.#table.rows(this.#tableSort === 'self' ? 'ownTime' : 'totalTime', true);
    const all = this.#model.total[0];
    const body = this.#tableBody;
    const shown = Math.min(rows.length, TABLE_ROWS);
    while (body.rows.length > shown) body.deleteRow(-1);
    for (let i = 0; i < shown; i++) {
      const r = rows[i];
      let tr = body.rows[i];
      if (!tr) {
        const nameButton = h('button', { type: 'button', class: 'fn-name' });
        nameButton.addEventListener('click', () => this.setSearch(nameButton.dataset.fn ?? ''));
        const sandwichButton = h('button', { type: 'button', class: 'fn-sandwich', title: 'Sandwich: its callers and callees', aria: { label: 'callers/callees' } }, 'sandwich');
        sandwichButton.addEventListener('click', () => this.openSandwich({ name: nameButton.dataset.fn ?? '', file: nameButton.dataset.file ?? '' }));
        tr = h('tr', null, h('td', { class: 'num' }), h('td', { class: 'num' }), h('td', { class: 'fn' }, nameButton, ' ', sandwichButton, h('span', { class: 'file' })));
        body.appendChild(tr);
      }
      setText(tr.cells[0], percent(r.cumulativeOwn, all));
      setText(tr.cells[1], percent(r.cumulativeTotal, all));
      const b = tr.cells[2].firstChild as HTMLButtonElement;
      const where = r.line === null ? r.file : `${r.file}:${r.line}`;
      b.dataset.fn = r.function;
      b.dataset.file = r.file;
      setText(b, r.function);
      setText(tr.cells[2].lastChild!, baseName(where));
      b.title = `${r.function} (${where}) — self ${count(r.cumulativeOwn)}, total ${count(r.cumulativeTotal)} samples. Click to highlight.`;
    }
  }
}
