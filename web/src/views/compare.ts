// Two captures compared (#/compare/BASELINE/CURRENT), as both of Periscope's
// founding stories ended: a differential flame graph — CURRENT's boxes, red
// where a box's share grew since BASELINE, blue where it shrank — and the top
// table side by side with before, after and delta columns, sortable. Both
// profiles stream in like any capture's (a running one keeps growing); the
// matching and the table rows are shared/profile's (call-tree-diff.ts), the
// same the downloadable diff SVG uses.

import { type Capture, api, diffUrl } from '../api.ts';
import { app, type Screen } from '../app.ts';
import { CaptureStream } from '../capture-stream.ts';
import { checkbox, h, replace, setText } from '../dom.ts';
import { errorFrom } from '../errors.ts';
import { count, dateTime, shortId } from '../format.ts';
import { FlameCanvas } from '../flame/flame-canvas.ts';
import { socket } from '../socket.ts';
import { statusBadge } from './session.ts';
import { type BaselineMatch, type TopDiffRow, compareProfiles, diffColour, diffTopRows, shareChange, signedPoints } from '../../../shared/profile/call-tree-diff.ts';
import type { CallTree } from '../../../shared/profile/call-tree.ts';

type SortKey = 'ownDelta' | 'totalDelta' | 'ownBefore' | 'ownAfter' | 'totalBefore' | 'totalAfter' | 'function';

const COLUMNS: { key: SortKey; label: string; title: string }[] = [
  { key: 'ownBefore', label: 'Own before', title: 'Share of the baseline spent in the function itself' },
  { key: 'ownAfter', label: 'Own after', title: 'Share of the current capture spent in the function itself' },
  { key: 'ownDelta', label: 'Δ Own', title: 'Change in points of the own share' },
  { key: 'totalBefore', label: 'Total before', title: 'Share of the baseline spent in the function and what it called' },
  { key: 'totalAfter', label: 'Total after', title: 'Share of the current capture spent in the function and what it called' },
  { key: 'totalDelta', label: 'Δ Total', title: 'Change in points of the total share' },
  { key: 'function', label: 'Function (file:line)', title: 'Sort by function name' },
];

const MAX_ROWS = 200;

function valueOf(r: TopDiffRow, key: Exclude<SortKey, 'function'>): number {
  if (key === 'ownDelta') return r.ownAfter - r.ownBefore;
  if (key === 'totalDelta') return r.totalAfter - r.totalBefore;
  return r[key];
}

function pct(x: number): string {
  return `${x.toFixed(2)}%`;
}

function location(r: TopDiffRow): string {
  return r.line === null ? r.file : `${r.file}:${r.line}`;
}

export const compareScreen: Screen = (root, params) => {
  const ids = { baseline: params.baseline, current: params.current };
  let alive = true;
  let byFunction = true;
  let sort: SortKey = 'totalDelta';
  let descending = false;
  const captures: { baseline?: Capture; current?: Capture } = {};
  const streams: CaptureStream[] = [];
  let tree: CallTree | null = null;
  let match: BaselineMatch | null = null;
  let dirty = true;

  const title = h('h1', null, 'Compare captures');
  const meta = h('div', { class: 'compare-meta' });
  const errorArea = h('div');
  const download = h('a', { class: 'button-link', download: '', data: { format: 'diff' } }, 'Download diff SVG');
  const summary = h('p', { class: 'muted compare-summary', aria: { live: 'polite' } });
  const tooltip = h('div', { class: 'tooltip', role: 'tooltip' });
  tooltip.hidden = true;
  const canvas = new FlameCanvas({
    hover: (hit, x, y) => {
      if (!hit || !tree || !match) {
        tooltip.hidden = true;
        return;
      }
      const { before, after, delta } = shareChange(match, match.baseline[hit.node], tree.total[hit.node]);
      replace(
        tooltip,
        h('div', { class: 'mono' }, tree.label(hit.node)),
        h('div', null, `before ${pct(before)} · after ${pct(after)} · ${signedPoints(delta)} points`),
        h('div', { class: 'muted' }, `${count(match.baseline[hit.node])} → ${count(tree.total[hit.node])} samples`),
      );
      tooltip.hidden = false;
      const host = tooltip.parentElement!.getBoundingClientRect();
      tooltip.style.left = `${Math.max(0, Math.min(x - host.left + 14, host.width - tooltip.offsetWidth))}px`;
      tooltip.style.top = `${y - host.top + 14}px`;
    },
  });
  canvas.emptyText = 'Waiting for both captures…';
  const table = h('div', { class: 'table-wrap compare-table' });
  const toggles = h(
    'div',
    { class: 'toolbar' },
    checkbox('By function', byFunction, (v) => {
      byFunction = v;
      dirty = true;
      render();
    }, { title: 'Merge the lines of a function into one box and one row' }),
    h('span', { class: 'legend' }, h('span', { class: 'swatch grew' }), ' grew ', h('span', { class: 'swatch shrank' }), ' shrank (share of each capture)'),
  );
  replace(root, h('div', { class: 'page wide' }, h('nav', { class: 'crumbs' }, h('a', { href: '#/' }, 'Sessions')), h('div', { class: 'capture-head' }, title, h('div', { class: 'capture-actions' }, download)), meta, errorArea, toggles, summary, h('div', { class: 'flame-main' }, canvas.element, tooltip), h('h2', null, 'Functions'), table));

  function describe(c: Capture | undefined, role: string): HTMLElement {
    if (!c) return h('span', { class: 'muted' }, `${role}: loading…`);
    return h(
      'span',
      { class: 'compare-side', data: { role } },
      `${role}: `,
      h('a', { href: `#/captures/${encodeURIComponent(c.id)}` }, `${c.kind} ${shortId(c.id)}`),
      ` · pid ${c.pid} · ${dateTime(c.startedAt)} · `,
      statusBadge(streams.find((s) => s.captureId === c.id)?.status ?? c.status),
    );
  }

  function renderHead(): void {
    replace(meta, describe(captures.baseline, 'Baseline'), h('span', null, ' → '), describe(captures.current, 'Current'));
    download.setAttribute('href', diffUrl(ids.current, ids.baseline, { function: byFunction }));
    if (captures.baseline && captures.current && captures.baseline.sessionId === captures.current.sessionId) {
      replace(root.querySelector('.crumbs')!, h('a', { href: '#/' }, 'Sessions'), ' / ', h('a', { href: `#/sessions/${encodeURIComponent(captures.current.sessionId)}` }, 'Session'), ' / ', h('span', null, 'compare'));
    }
  }

  function renderTable(rows: TopDiffRow[]): void {
    const key = sort;
    const sorted = [...rows].sort((a, b) => {
      const d = key === 'function' ? a.function.localeCompare(b.function) : valueOf(a, key) - valueOf(b, key);
      return (descending ? -d : d) || a.function.localeCompare(b.function);
    });
    const head = h(
      'tr',
      null,
      ...COLUMNS.map((c) =>
        h(
          'th',
          { class: c.key === 'function' ? '' : 'num', aria: { sort: c.key === sort ? (descending ? 'descending' : 'ascending') : 'none' } },
          h('button', {
            class: 'link sort',
            title: c.title,
            data: { sort: c.key },
            onclick: () => {
              if (sort === c.key) descending = !descending;
              else {
                sort = c.key;
                descending = c.key !== 'ownDelta' && c.key !== 'totalDelta' && c.key !== 'function';
              }
              renderTable(rows);
            },
          }, c.label),
        ),
      ),
    );
    const body = sorted.slice(0, MAX_ROWS).map((r) => {
      const own = r.ownAfter - r.ownBefore;
      const total = r.totalAfter - r.totalBefore;
      return h(
        'tr',
        { data: { function: r.function } },
        h('td', { class: 'num' }, pct(r.ownBefore)),
        h('td', { class: 'num' }, pct(r.ownAfter)),
        h('td', { class: `num delta ${own > 0 ? 'grew' : own < 0 ? 'shrank' : ''}` }, signedPoints(own)),
        h('td', { class: 'num' }, pct(r.totalBefore)),
        h('td', { class: 'num' }, pct(r.totalAfter)),
        h('td', { class: `num delta ${total > 0 ? 'grew' : total < 0 ? 'shrank' : ''}` }, signedPoints(total)),
        h('td', { class: 'mono' }, `${r.function} `, h('span', { class: 'muted' }, `(${location(r)})`)),
      );
    });
    replace(table, h('table', { class: 'data compare-rows' }, h('thead', null, head), h('tbody', null, ...body)));
  }

  function render(): void {
    if (!alive || !dirty) return;
    const [b, c] = streams;
    if (!b || !c) return;
    dirty = false;
    const compared = compareProfiles(b.profile, c.profile, { function: byFunction });
    tree = compared.current;
    match = compared.match;
    const m = match;
    const t = tree;
    canvas.colourOf = (node) => diffColour(shareChange(m, m.baseline[node], t.total[node]).delta);
    canvas.setModel(tree);
    renderHead();
    let text = `Baseline ${count(match.baselineTotal)} samples · current ${count(match.currentTotal)} samples`;
    if (match.vanished > 0) text += ` · ${count(match.vanished)} baseline samples on paths the current capture no longer has`;
    setText(summary, text);
    renderTable(diffTopRows(b.profile, c.profile, {}, byFunction));
  }

  void (async () => {
    try {
      const [baseline, current] = await Promise.all([api.capture(ids.baseline), api.capture(ids.current)]);
      if (!alive) return;
      captures.baseline = baseline;
      captures.current = current;
      app.setTitle(`compare ${shortId(baseline.id)} → ${shortId(current.id)}`);
      for (const c of [baseline, current]) {
        streams.push(
          new CaptureStream(socket, c.id, {
            data: () => (dirty = true),
            reset: () => (dirty = true),
            status: () => {
              dirty = true;
              renderHead();
            },
            error: (code, message) => replace(errorArea, errorFrom({ code, message })),
          }),
        );
      }
      renderHead();
      render();
    } catch (err) {
      if (alive) replace(errorArea, errorFrom(err));
    }
  })();
  // Redraw at most once a second while chunks arrive (a running capture keeps growing).
  const timer = setInterval(render, 1000);

  return () => {
    alive = false;
    clearInterval(timer);
    for (const s of streams) s.close();
    canvas.dispose();
  };
};
