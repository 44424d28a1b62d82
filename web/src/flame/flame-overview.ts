// An overview of a flame graph too deep for its view: the whole tree squeezed
// into a strip (every level a thin row), with the rows the view shows framed.
// Clicking or dragging on it scrolls the view there. Drawn after the view is.

import { NodeKind } from '../../../shared/profile/call-tree.ts';
import { h } from '../dom.ts';
import type { FlameCanvas } from './flame-canvas.ts';

const HEIGHT = 64;
/** Boxes narrower than this (css px) are left out, with their subtrees. */
const MIN_WIDTH = 1;

export class FlameOverview {
  readonly element: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  readonly #ctx: CanvasRenderingContext2D;
  readonly #view: FlameCanvas;
  #dragging = false;

  constructor(view: FlameCanvas) {
    this.#view = view;
    this.canvas = h('canvas', { class: 'flame-overview-canvas' });
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', 'Overview of the whole graph; click to scroll there');
    this.element = h('div', { class: 'flame-overview' }, this.canvas);
    this.element.hidden = true;
    const ctx = this.canvas.getContext('2d', { alpha: false });
    if (!ctx) throw new Error('this browser cannot draw on a canvas');
    this.#ctx = ctx;
    this.canvas.addEventListener('pointerdown', (ev) => {
      this.#dragging = true;
      this.canvas.setPointerCapture(ev.pointerId);
      this.#scrollTo(ev.offsetY);
    });
    this.canvas.addEventListener('pointermove', (ev) => {
      if (this.#dragging) this.#scrollTo(ev.offsetY);
    });
    this.canvas.addEventListener('pointerup', () => (this.#dragging = false));
  }

  /** Levels of the tree per overview row band: depth d is drawn at rowY(d). */
  #rowHeight(maxDepth: number): number {
    return HEIGHT / (maxDepth + 1);
  }

  #scrollTo(y: number): void {
    const m = this.#view.model;
    if (!m) return;
    const depth = Math.floor((this.#view.icicle ? y : HEIGHT - y) / this.#rowHeight(m.maxDepth));
    this.#view.scrollToDepth(Math.max(0, Math.min(m.maxDepth, depth)));
  }

  draw(): void {
    const m = this.#view.model;
    const visible = this.#view.visibleDepths();
    // Only worth showing when part of the graph is out of sight.
    const needed = !!m && m.total[0] > 0 && (visible.first > 0 || visible.last < m.maxDepth);
    this.element.hidden = !needed;
    if (!needed || !m) return;
    const width = this.element.clientWidth;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(width * dpr) || this.canvas.height !== Math.round(HEIGHT * dpr)) {
      this.canvas.width = Math.max(1, Math.round(width * dpr));
      this.canvas.height = Math.round(HEIGHT * dpr);
      this.canvas.style.width = `${width}px`;
      this.canvas.style.height = `${HEIGHT}px`;
    }
    const ctx = this.#ctx;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#ffffff';
    ctx.fillRect(0, 0, width, HEIGHT);
    const rowH = this.#rowHeight(m.maxDepth);
    const icicle = this.#view.icicle;
    const rowY = (d: number) => (icicle ? d * rowH : HEIGHT - (d + 1) * rowH);
    let boxes = 0;
    // The whole tree (not the zoom): the overview is where the view sits in all of it.
    const nodes = [0];
    const xs = [0];
    const ws = [width];
    while (nodes.length > 0) {
      const n = nodes.pop()!;
      const x = xs.pop()!;
      const w = ws.pop()!;
      ctx.fillStyle = this.#view.colourOfNode(n);
      ctx.fillRect(x, rowY(m.depth[n]), Math.max(w - (w > 2 ? 0.5 : 0), 0.5), Math.max(rowH, 0.5));
      boxes++;
      const scale = w / m.total[n];
      let cx = x;
      for (let c = m.firstSortedChild(n); c !== -1; c = m.nextSibling[c]) {
        const cw = m.total[c] * scale;
        if (cw >= MIN_WIDTH && m.kind[c] !== NodeKind.Root) {
          nodes.push(c);
          xs.push(cx);
          ws.push(cw);
        }
        cx += cw;
      }
    }
    // The view's window on the levels.
    const top = Math.min(rowY(visible.first), rowY(visible.last));
    const bottom = Math.max(rowY(visible.first), rowY(visible.last)) + rowH;
    ctx.strokeStyle = '#111827';
    ctx.lineWidth = 2;
    ctx.strokeRect(1, Math.max(1, top), width - 2, Math.max(2, Math.min(HEIGHT - 1, bottom) - Math.max(1, top)));
    this.canvas.dataset.boxes = String(boxes);
    this.canvas.dataset.window = `${visible.first}-${visible.last}`;
  }
}
