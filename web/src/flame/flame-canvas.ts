// Draws a CallTree on a <canvas>: only the boxes that are on screen and at
// least half a pixel wide (a box narrower than that has only narrower children,
// so whole subtrees are skipped), at most once per animation frame.
//
// The canvas is sticky inside a scroll container whose inner "sizer" is as
// tall as the whole graph, so deep stacks scroll natively while the canvas
// stays the size of the viewport. Flame layout puts the root at the bottom,
// icicle at the top. Text goes through fillText only.

import { type CallTree, NodeKind } from '../../../shared/profile/call-tree.ts';
import { FlameSearch } from './flame-search.ts';
import { h, shown } from '../dom.ts';

export const ROW_HEIGHT = 17;
const MIN_BOX_WIDTH = 0.5;
const MIN_VIEW_HEIGHT = 220;
const FONT = '11px ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace';

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** flamegraph.pl's "hot" palette keyed on the function name (as the SVG export does). */
export function frameColour(name: string): string {
  const h = fnv1a(name);
  const v1 = (h & 0xff) / 255;
  const v2 = ((h >>> 8) & 0xff) / 255;
  const v3 = ((h >>> 16) & 0xff) / 255;
  return `rgb(${205 + Math.round(50 * v3)},${Math.round(230 * v1)},${Math.round(55 * v2)})`;
}

const MATCH_COLOUR = 'rgb(230,0,230)';
const ROOT_COLOUR = 'rgb(200,200,200)';
const SYNTHETIC_COLOUR = 'rgb(160,185,225)';

export interface HitBox {
  node: number;
  x: number;
  width: number;
  depth: number;
}

export interface FlameCanvasEvents {
  /** The zoomed node changed (0 = whole graph). */
  zoom?: (node: number) => void;
  hover?: (hit: HitBox | null, clientX: number, clientY: number) => void;
  /** Called after each draw with how long it took (ms) and how many boxes were drawn. */
  drawn?: (ms: number, boxes: number) => void;
}

export class FlameCanvas {
  readonly element: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  readonly #sizer: HTMLDivElement;
  readonly #ctx: CanvasRenderingContext2D;
  #model: CallTree | null = null;
  #zoom = 0;
  #hover = -1;
  #icicle = false;
  #search = new FlameSearch('');
  #events: FlameCanvasEvents;
  #cssWidth = 0;
  #cssHeight = 0;
  #dpr = 1;
  #raf = 0;
  #charWidth = 6.6;
  #colourOfGroup: string[] = [];
  #contentHeight = 0;
  #pinBottom = true;
  #resize: ResizeObserver;
  #lastDrawnBoxes = 0;
  #viewHeight = 0;
  /** Outlined like a hovered box: the end of the hottest path once revealed. */
  #focus = -1;
  /** Shown while there is nothing to draw. */
  emptyText = 'Waiting for samples…';
  /** Colours frame boxes instead of the name palette (a comparison colours by change). */
  colourOf: ((node: number) => string) | null = null;

  constructor(events: FlameCanvasEvents = {}) {
    this.#events = events;
    this.canvas = h('canvas', { class: 'flame-canvas' });
    this.canvas.setAttribute('role', 'img');
    this.#sizer = h('div', { class: 'flame-sizer' }, this.canvas);
    this.element = h('div', { class: 'flame-scroll', tabindex: 0, aria: { label: 'Flame graph. Click a box to zoom, Escape to reset zoom.' } }, this.#sizer);
    const ctx = this.canvas.getContext('2d', { alpha: false });
    if (!ctx) throw new Error('this browser cannot draw on a canvas');
    this.#ctx = ctx;
    this.element.addEventListener('scroll', () => {
      this.#pinBottom = this.element.scrollTop + this.element.clientHeight >= this.element.scrollHeight - 2;
      this.invalidate();
    });
    this.canvas.addEventListener('mousemove', (ev) => this.#onMove(ev));
    this.canvas.addEventListener('mouseleave', () => {
      this.#setHover(-1);
      this.#events.hover?.(null, 0, 0);
    });
    this.canvas.addEventListener('click', (ev) => {
      const hit = this.hitTest(ev.offsetX, ev.offsetY);
      if (hit) this.setZoom(hit.node);
    });
    this.element.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape') {
        this.setZoom(0);
        ev.preventDefault();
      }
    });
    this.#resize = new ResizeObserver(() => this.#measure());
    this.#resize.observe(this.element);
  }

  dispose(): void {
    this.#resize.disconnect();
    cancelAnimationFrame(this.#raf);
  }

  get model(): CallTree | null {
    return this.#model;
  }

  get zoom(): number {
    return this.#zoom;
  }

  get boxesDrawn(): number {
    return this.#lastDrawnBoxes;
  }

  setModel(model: CallTree | null): void {
    this.#model = model;
    this.#zoom = 0;
    this.#hover = -1;
    this.#focus = -1;
    this.#colourOfGroup = [];
    this.invalidate();
  }

  /** The model was rebuilt in place (node ids changed). */
  modelRebuilt(): void {
    this.#zoom = 0;
    this.#hover = -1;
    this.#focus = -1;
    this.invalidate();
  }

  setZoom(node: number): void {
    if (node === this.#zoom) return;
    this.#zoom = node;
    this.#events.zoom?.(node);
    this.invalidate();
  }

  setSearch(search: FlameSearch): void {
    this.#search = search;
    this.invalidate();
  }

  get icicle(): boolean {
    return this.#icicle;
  }

  setIcicle(icicle: boolean): void {
    if (icicle === this.#icicle) return;
    this.#icicle = icicle;
    this.#pinBottom = !icicle;
    this.invalidate();
    // Keep the root in view after the flip.
    requestAnimationFrame(() => {
      this.element.scrollTop = icicle ? 0 : this.element.scrollHeight;
    });
  }

  /** Draws now (from inside an animation frame), dropping any pending redraw. */
  drawNow(): void {
    if (this.#raf) cancelAnimationFrame(this.#raf);
    this.#raf = 0;
    this.draw();
  }

  invalidate(): void {
    if (this.#raf) return;
    this.#raf = requestAnimationFrame(() => {
      this.#raf = 0;
      this.draw();
    });
  }

  #measure(): void {
    const width = this.element.clientWidth;
    const height = this.element.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    if (width === this.#cssWidth && height === this.#cssHeight && dpr === this.#dpr) return;
    this.#cssWidth = width;
    this.#cssHeight = height;
    this.#dpr = dpr;
    this.canvas.width = Math.max(1, Math.round(width * dpr));
    this.canvas.height = Math.max(1, Math.round(height * dpr));
    // CSSOM (not a style attribute), which the page's CSP allows.
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${height}px`;
    this.invalidate();
  }

  /** A box's fill, as drawn here (the overview draws with it). */
  colourOfNode(node: number): string {
    return this.#colour(node);
  }

  /** The depths with a row (partly) on screen. */
  visibleDepths(): { first: number; last: number } {
    const m = this.#model;
    const H = this.#cssHeight;
    if (!m) return { first: 0, last: 0 };
    const a = this.#depthAt(0);
    const b = this.#depthAt(Math.max(0, H - 1));
    return { first: Math.max(0, Math.min(a, b)), last: Math.min(m.maxDepth, Math.max(a, b)) };
  }

  /** Scrolls so that depth `d` is in the middle of the view. */
  scrollToDepth(d: number): void {
    const rowTop = this.#icicle ? d * ROW_HEIGHT : this.#contentHeight - (d + 1) * ROW_HEIGHT;
    this.element.scrollTop = Math.max(0, rowTop - this.#cssHeight / 2);
    this.#pinBottom = this.element.scrollTop + this.element.clientHeight >= this.element.scrollHeight - 2;
    this.invalidate();
  }

  #colour(node: number): string {
    const m = this.#model!;
    const kind = m.kind[node];
    if (kind === NodeKind.Root) return ROOT_COLOUR;
    if (kind !== NodeKind.Frame) return SYNTHETIC_COLOUR;
    if (this.colourOf) return this.colourOf(node);
    const g = m.ref[node];
    let c = this.#colourOfGroup[g];
    if (c === undefined) this.#colourOfGroup[g] = c = frameColour(m.name(node));
    return c;
  }

  /** Top y (css px, canvas coordinates) of a depth row. */
  #rowY(depth: number): number {
    const top = this.element.scrollTop;
    return this.#icicle ? depth * ROW_HEIGHT - top : this.#contentHeight - (depth + 1) * ROW_HEIGHT - top;
  }

  #depthAt(y: number): number {
    const top = this.element.scrollTop;
    return this.#icicle ? Math.floor((y + top) / ROW_HEIGHT) : Math.floor((this.#contentHeight - top - y) / ROW_HEIGHT);
  }

  draw(): void {
    const started = performance.now();
    if (this.#cssWidth === 0) this.#measure();
    const ctx = this.#ctx;
    const W = this.#cssWidth;
    const H = this.#cssHeight;
    ctx.setTransform(this.#dpr, 0, 0, this.#dpr, 0, 0);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, W, H);
    const m = this.#model;
    let boxes = 0;
    if (!m || W === 0 || H === 0) {
      this.#lastDrawnBoxes = 0;
      return;
    }
    // The viewport is as tall as the graph, between a minimum and ~70% of the
    // window; deeper graphs scroll. In flame layout stay pinned to the root at
    // the bottom while the graph grows, unless the user scrolled away.
    // The viewport fills the window below the graph's top edge (a deep graph
    // then shows as much as fits), and shrinks to a shallow graph.
    const graphHeight = (m.maxDepth + 1) * ROW_HEIGHT + 4;
    const top = this.element.getBoundingClientRect().top + window.scrollY;
    const available = window.innerHeight - Math.min(top, window.innerHeight / 2) - 16;
    const wanted = Math.round(Math.max(MIN_VIEW_HEIGHT, Math.min(graphHeight + 2, available)));
    if (wanted !== this.#viewHeight) {
      this.#viewHeight = wanted;
      this.element.style.height = `${wanted}px`;
      this.#measure();
      if (this.#raf) cancelAnimationFrame(this.#raf);
      this.#raf = 0;
      this.draw();
      return;
    }
    const contentHeight = Math.max(graphHeight, H);
    if (contentHeight !== this.#contentHeight) {
      this.#contentHeight = contentHeight;
      this.#sizer.style.height = `${contentHeight}px`;
      if (!this.#icicle && this.#pinBottom) this.element.scrollTop = contentHeight;
    }
    ctx.font = FONT;
    ctx.textBaseline = 'middle';
    this.#charWidth = ctx.measureText('MMMMMMMMMM').width / 10 || 6.6;

    const zoom = this.#zoom < m.nodeCount ? this.#zoom : 0;
    const zoomTotal = m.total[zoom];
    if (zoomTotal === 0) {
      ctx.fillStyle = '#444';
      ctx.fillText(this.emptyText, 12, this.#icicle ? 12 : H - 12);
      this.#lastDrawnBoxes = 0;
      this.canvas.dataset.boxes = '0';
      this.canvas.dataset.samples = String(m.total[0]);
      this.#events.drawn?.(performance.now() - started, 0);
      return;
    }
    const first = Math.max(0, Math.min(this.#depthAt(0), this.#depthAt(H)) - 1);
    const last = Math.max(this.#depthAt(0), this.#depthAt(H)) + 1;

    // Ancestors of the zoomed box span the full width, dimmed.
    const path = m.ancestry(zoom);
    ctx.globalAlpha = 0.55;
    for (let i = 0; i < path.length - 1; i++) {
      const d = m.depth[path[i]];
      if (d >= first && d <= last) {
        this.#box(path[i], 0, W, d);
        boxes++;
      }
    }
    ctx.globalAlpha = 1;

    const nodes: number[] = [zoom];
    const xs: number[] = [0];
    const ws: number[] = [W];
    const { total, depth, nextSibling } = m;
    while (nodes.length > 0) {
      const n = nodes.pop()!;
      const x = xs.pop()!;
      const w = ws.pop()!;
      const d = depth[n];
      if (d > last) continue;
      if (d >= first) {
        this.#box(n, x, w, d);
        boxes++;
      }
      if (d === last) continue;
      const scale = w / total[n];
      let cx = x;
      for (let c = m.firstSortedChild(n); c !== -1; c = nextSibling[c]) {
        const cw = total[c] * scale;
        if (cw >= MIN_BOX_WIDTH) {
          nodes.push(c);
          xs.push(cx);
          ws.push(cw);
        }
        cx += cw;
      }
    }
    this.#drawHiddenHint(m, zoom, H);
    this.#lastDrawnBoxes = boxes;
    this.canvas.dataset.boxes = String(boxes);
    this.canvas.dataset.samples = String(m.total[0]);
    this.#events.drawn?.(performance.now() - started, boxes);
  }

  /** Says how many levels of the graph are scrolled out of sight, at the edge where they are. */
  #drawHiddenHint(m: CallTree, zoom: number, H: number): void {
    const deepestShown = this.#icicle ? this.#depthAt(H - 1) : this.#depthAt(0);
    const hidden = m.maxDepth - Math.max(deepestShown, m.depth[zoom]);
    this.canvas.dataset.hiddenLevels = String(Math.max(0, hidden));
    if (hidden <= 0) return;
    const ctx = this.#ctx;
    const text = `${this.#icicle ? '▼' : '▲'} ${hidden} more level${hidden === 1 ? '' : 's'} ${this.#icicle ? 'below' : 'above'}: scroll`;
    const w = ctx.measureText(text).width + 12;
    const y = this.#icicle ? H - ROW_HEIGHT - 2 : 2;
    ctx.fillStyle = 'rgba(17,24,39,0.8)';
    ctx.fillRect(this.#cssWidth - w - 6, y, w, ROW_HEIGHT);
    ctx.fillStyle = '#f9fafb';
    ctx.fillText(text, this.#cssWidth - w, y + ROW_HEIGHT / 2);
  }

  /**
   * Shows the hottest path: scrolls so the frame with the most samples of its
   * own is in view, its callers below it, and outlines it. A deep stack's hot
   * frames would otherwise start out of sight.
   */
  revealHottestPath(): number {
    const m = this.#model;
    if (!m || m.total[0] === 0) return -1;
    const leaf = m.hottestLeaf(this.#zoom < m.nodeCount ? this.#zoom : 0);
    this.#focus = leaf;
    // Size the view and the scrolled content first: scrolling clamps to them.
    this.drawNow();
    const d = m.depth[leaf];
    const rowTop = this.#icicle ? d * ROW_HEIGHT : this.#contentHeight - (d + 1) * ROW_HEIGHT;
    // The leaf a few rows from the top edge (flame) or bottom edge (icicle), its callers below it.
    const target = this.#icicle ? rowTop - this.#cssHeight + 4 * ROW_HEIGHT : rowTop - 3 * ROW_HEIGHT;
    this.element.scrollTop = Math.max(0, target);
    // Growing content must not pull the view back to the root now.
    this.#pinBottom = false;
    this.canvas.dataset.focus = String(leaf);
    this.invalidate();
    return leaf;
  }

  #box(node: number, x: number, w: number, depth: number): void {
    const ctx = this.#ctx;
    const m = this.#model!;
    const y = this.#rowY(depth);
    ctx.fillStyle = this.#search.active && this.#search.matches(m, node) ? MATCH_COLOUR : this.#colour(node);
    const bw = w >= 3 ? w - 1 : w;
    ctx.fillRect(x, y, bw, ROW_HEIGHT - 1);
    if (node === this.#hover || node === this.#focus) {
      ctx.strokeStyle = '#000';
      ctx.lineWidth = 1;
      ctx.strokeRect(x + 0.5, y + 0.5, Math.max(0, bw - 1), ROW_HEIGHT - 2);
    }
    const room = Math.floor((w - 6) / this.#charWidth);
    if (room < 3) return;
    let text = shown(m.label(node));
    if (text.length > room) {
      const name = shown(m.name(node));
      text = name.length <= room ? name : `${name.slice(0, room - 1)}…`;
    }
    ctx.fillStyle = '#000';
    ctx.fillText(text, x + 3, y + ROW_HEIGHT / 2);
  }

  /** The box under a point (canvas css px), or null. */
  hitTest(px: number, py: number): HitBox | null {
    const m = this.#model;
    if (!m) return null;
    const W = this.#cssWidth;
    const d = this.#depthAt(py);
    const zoom = this.#zoom < m.nodeCount ? this.#zoom : 0;
    if (m.total[zoom] === 0 || d < 0) return null;
    const zd = m.depth[zoom];
    if (d < zd) {
      const path = m.ancestry(zoom);
      return { node: path[d], x: 0, width: W, depth: d };
    }
    let n = zoom;
    let x = 0;
    let w = W;
    while (m.depth[n] < d) {
      const scale = w / m.total[n];
      let cx = x;
      let found = -1;
      for (let c = m.firstSortedChild(n); c !== -1; c = m.nextSibling[c]) {
        const cw = m.total[c] * scale;
        if (px >= cx && px < cx + cw) {
          found = c;
          w = cw;
          x = cx;
          break;
        }
        cx += cw;
      }
      if (found < 0) return null;
      n = found;
    }
    if (px < x || px >= x + w) return null;
    return { node: n, x, width: w, depth: d };
  }

  #onMove(ev: MouseEvent): void {
    const hit = this.hitTest(ev.offsetX, ev.offsetY);
    this.#setHover(hit ? hit.node : -1);
    this.canvas.classList.toggle('pointer', hit !== null);
    this.#events.hover?.(hit, ev.clientX, ev.clientY);
  }

  #setHover(node: number): void {
    if (node === this.#hover) return;
    this.#hover = node;
    this.invalidate();
  }
}
