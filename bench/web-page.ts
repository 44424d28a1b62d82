// Browser side of bench/web.ts: builds synthetic profiles in the page with
// ProfileBuilder and measures the real web client code on them (FlameView,
// FlameCanvas, TopView, CaptureStream), exposing the figures on window.

import { ProfileBuilder } from '../shared/profile/builder.ts';
import type { FrameInput } from '../shared/profile/builder.ts';
import { callTree } from '../shared/profile/call-tree.ts';
import { encode } from '../shared/protocol.ts';
import type { RelayToUi } from '../shared/protocol.ts';
import { parseRelayToUi } from '../shared/protocol.ts';
import { CaptureStream } from '../web/src/capture-stream.ts';
import { FlameView } from '../web/src/flame/flame-view.ts';
import type { UiSocket } from '../web/src/socket.ts';
import { TopView } from '../web/src/views/top-view.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const nextFrame = () => new Promise<number>((resolve) => requestAnimationFrame(resolve));
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
};

export type Shape = 'typical' | 'deep';

/**
 * `distinct` stacks. 'typical': like a real program, each new stack shares a
 * caller chain with an existing one and differs in its last few frames (depths
 * ~10–60). 'deep': worst case, random paths 8–40 frames deep that share little
 * beyond their first frames, so the tree has ~18 nodes per stack.
 */
function syntheticStacks(distinct: number, seed: number, shape: Shape = 'typical'): FrameInput[][] {
  const r = rng(seed);
  const fn = (i: number): FrameInput => ({ name: `fn_${i}`, file: `/srv/app/mod_${i % 397}.py`, line: 1 + (i % 89) });
  const stacks: FrameInput[][] = [];
  const seen = new Set<string>();
  const ids: number[][] = [];
  while (stacks.length < distinct) {
    let path: number[];
    if (shape === 'deep') {
      const depth = 8 + Math.floor(r() * 33);
      path = [];
      let id = 0;
      for (let d = 0; d < depth; d++) {
        const fanout = Math.max(2, Math.floor(2 + d * d * 0.6));
        id = (id * 31 + 1 + Math.floor(r() * fanout)) % 50_000;
        path.push(id);
      }
    } else if (ids.length === 0) {
      path = Array.from({ length: 12 }, (_, d) => d);
    } else {
      const base = ids[Math.floor(ids.length * r() ** 2)];
      const keep = Math.max(1, Math.min(base.length, base.length - Math.floor(r() * 6)));
      path = base.slice(0, keep);
      const add = 1 + Math.floor(r() * 5);
      for (let i = 0; i < add && path.length < 60; i++) path.push(Math.floor(r() * 20_000));
    }
    const key = path.join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    ids.push(path);
    stacks.push(path.map(fn).reverse());
  }
  return stacks;
}

export function buildProfile(distinct: number, samples: number, shape: Shape, seed = 1): ProfileBuilder {
  const b = new ProfileBuilder({ rateHz: 100, commandLine: 'python app.py' });
  b.process(4242, { commandLine: 'python app.py', pythonVersion: '3.12.1' });
  const threads = [b.thread(4242, 1, 'MainThread'), b.thread(4242, 2, 'worker-1'), b.thread(4242, 3, 'worker-2'), b.thread(4242, 4, 'worker-3')];
  const rows = syntheticStacks(distinct, seed, shape).map((s) => b.internStack(s));
  const r = rng(seed + 1);
  // Every stack at least once, the rest Zipf-like.
  for (let i = 0; i < samples; i++) {
    const s = i < rows.length ? rows[i] : rows[Math.floor(rows.length * r() ** 3)];
    b.addSampleOfStack(threads[i & 3], s, i * 2500, { idle: false, gil: (i & 1) === 0 });
  }
  b.updateCapture({ durationUs: samples * 2500 });
  return b;
}

export interface FirstPaint {
  shape: Shape;
  distinct: number;
  samples: number;
  nodes: number;
  /** Decode (msgpack) + apply every chunk, as a reopened capture does. */
  loadMs: number;
  /** From mounting the view to the first painted frame (the graph fills in over a few frames). */
  firstPaintMs: number;
  /** From mounting the view to the painted frame with every sample drawn. */
  completePaintMs: number;
  /** Longest main-thread task while loading (rAF-to-rAF interval). */
  longestFrameMs: number;
  /** shared/profile callTree() on the same profile: the tree built in one go, as the exporters build it. */
  callTreeMs: number;
  zoomMedianMs: number;
  zoomP95Ms: number;
  zoomMaxMs: number;
  /** rAF-to-rAF intervals while zooming once per frame. */
  frameIntervalMedianMs: number;
  frameIntervalP95Ms: number;
  boxesMedian: number;
}

/** A stand-in for the relay socket: frames go through encode → parseRelayToUi as on the wire. */
class LoopbackSocket {
  #listeners = new Set<(m: RelayToUi) => void>();
  onMessage(fn: (m: RelayToUi) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
  watchCapture(): () => void {
    return () => {};
  }
  rewatch(): void {}
  deliver(m: RelayToUi): void {
    this.deliverFrame(encode(m));
  }
  deliverFrame(frame: Uint8Array): void {
    const parsed = parseRelayToUi(frame);
    for (const fn of this.#listeners) fn(parsed);
  }
}

export async function firstPaint(distinct: number, samples: number, shape: Shape, host: HTMLElement): Promise<FirstPaint> {
  // The capture as the relay would send it: 100 chunks.
  const source = buildProfile(distinct, samples, shape);
  const p = source.profile;
  const chunkCount = 100;
  const replay = new ProfileBuilder(p.capture);
  const frames: Uint8Array[] = [];
  // Re-emit samples in order, cutting a chunk every samples/chunkCount.
  const leafFirst = new Map<number, FrameInput[]>();
  const framesOf = (stack: number): FrameInput[] => {
    let f = leafFirst.get(stack);
    if (!f) {
      f = [];
      for (let s = stack; s !== -1; s = p.stacks.prefix[s]) {
        const fr = p.stacks.frame[s];
        f.push({ name: p.strings[p.frames.name[fr]], file: p.strings[p.frames.file[fr]], line: p.frames.line[fr] });
      }
      leafFirst.set(stack, f);
    }
    return f;
  };
  replay.process(4242, { commandLine: 'python app.py', pythonVersion: '3.12.1' });
  const per = Math.ceil(samples / chunkCount);
  const stackRow = new Map<number, number>();
  for (let i = 0; i < samples; i++) {
    const t = p.samples.thread[i];
    const thread = replay.thread(p.threads.pid[t], p.threads.tid[t], p.strings[p.threads.name[t]]);
    const s = p.samples.stack[i];
    let row = stackRow.get(s);
    if (row === undefined) stackRow.set(s, (row = replay.internStack(framesOf(s))));
    replay.addSampleOfStack(thread, row, p.samples.timeUs[i], { gil: (p.samples.flags[i] & 2) !== 0 });
    if ((i + 1) % per === 0 || i === samples - 1) {
      replay.updateCapture({ durationUs: p.samples.timeUs[i] });
      frames.push(encode({ type: 'capture_chunk', captureId: 'bench', seq: frames.length, chunk: replay.takeChunk() }));
    }
  }
  leafFirst.clear();

  // Load: decode + validate + apply, as CaptureStream does for a reopened capture.
  const socket = new LoopbackSocket();
  const stream = new CaptureStream(socket as unknown as UiSocket, 'bench', {});
  const t0 = performance.now();
  for (const f of frames as Uint8Array[]) socket.deliverFrame(f);
  const loadMs = performance.now() - t0;
  if (stream.profile.samples.stack.length !== samples) throw new Error(`loaded ${stream.profile.samples.stack.length} samples, expected ${samples}`);

  const c0 = performance.now();
  callTree(stream.profile, {});
  const callTreeMs = performance.now() - c0;

  // First paint: mount, then wait for the frame that has drawn it.
  await nextFrame();
  const m0 = performance.now();
  const view = new FlameView(stream);
  host.replaceChildren(view.element);
  let firstPaintMs = 0;
  let longestFrameMs = 0;
  let prev = m0;
  for (;;) {
    const now = await nextFrame();
    longestFrameMs = Math.max(longestFrameMs, now - prev);
    prev = now;
    const drawn = Number(view.canvas.canvas.dataset.boxes ?? 0) > 0;
    // A draw happens inside a frame callback; it is on screen at the next frame.
    if (drawn && firstPaintMs === 0) firstPaintMs = -1;
    else if (firstPaintMs === -1) firstPaintMs = now - m0;
    if (firstPaintMs > 0 && view.model.backlog === 0) break;
  }
  await nextFrame();
  const completePaintMs = performance.now() - m0;

  // Zoom: one zoom per frame through a mix of heavy and random boxes.
  const model = view.model;
  const targets: number[] = [];
  const r = rng(99);
  let heavy = 0;
  for (let i = 0; i < 20; i++) {
    const kids = model.sortedChildren(heavy);
    if (kids.length === 0) break;
    heavy = kids.reduce((a, b) => (model.total[b] > model.total[a] ? b : a));
    targets.push(heavy);
  }
  while (targets.length < 60) targets.push(1 + Math.floor(r() * (model.nodeCount - 1)));
  targets.push(0);
  const drawMs: number[] = [];
  const boxes: number[] = [];
  const intervals: number[] = [];
  let last = await nextFrame();
  for (const node of targets) {
    view.canvas.setZoom(node);
    const d0 = performance.now();
    view.canvas.draw();
    drawMs.push(performance.now() - d0);
    boxes.push(view.canvas.boxesDrawn);
    const now = await nextFrame();
    intervals.push(now - last);
    last = now;
  }
  const result: FirstPaint = {
    shape,
    distinct,
    samples,
    nodes: model.nodeCount,
    loadMs,
    firstPaintMs,
    completePaintMs,
    longestFrameMs,
    callTreeMs,
    zoomMedianMs: quantile(drawMs, 0.5),
    zoomP95Ms: quantile(drawMs, 0.95),
    zoomMaxMs: Math.max(...drawMs),
    frameIntervalMedianMs: quantile(intervals, 0.5),
    frameIntervalP95Ms: quantile(intervals, 0.95),
    boxesMedian: quantile(boxes, 0.5),
  };
  view.dispose();
  stream.close();
  host.replaceChildren();
  return result;
}

export interface Latency {
  chunks: number;
  samples: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
  flameMedianMs: number;
  flameP95Ms: number;
}

/**
 * Live top: an agent-like producer emits a chunk of samples every `chunkMs`
 * (100 Hz × 4 threads), through msgpack encode/parse into a CaptureStream, while
 * the TopView refreshes once a second and a FlameView redraws per frame. For
 * each chunk: wall time from its newest sample being taken to the paint that
 * first shows it (top table; flame graph).
 */
export async function liveLatency(seconds: number, chunkMs: number, host: HTMLElement): Promise<Latency> {
  const socket = new LoopbackSocket();
  const stream = new CaptureStream(socket as unknown as UiSocket, 'live', {
    data: () => flame.update(),
  });
  const top = new TopView(stream);
  const flame = new FlameView(stream);
  host.replaceChildren(top.element, flame.element);
  const b = new ProfileBuilder({ rateHz: 100, commandLine: 'python app.py' });
  b.process(1, { commandLine: 'python app.py' });
  const threads = [b.thread(1, 1, 'MainThread'), b.thread(1, 2, 'w1'), b.thread(1, 3, 'w2'), b.thread(1, 4, 'w3')];
  const stacks = syntheticStacks(2000, 5, 'typical').map((s) => b.internStack(s));
  const r = rng(3);
  const start = performance.now();
  /** Sample time (ms, page clock) of the newest sample in each chunk, by chunk index. */
  const takenAt: number[] = [];
  const topSeen: number[] = [];
  const flameSeen: number[] = [];
  let seq = 0;
  let sampleClock = start;
  let samples = 0;

  // Which chunk each paint includes: the number of samples the view has folded in.
  const samplesAtChunk: number[] = [];
  top.onRefresh = () => {
    const shownSamples = Number(top.element.dataset.samples ?? 0);
    requestAnimationFrame(() => {
      const paintedAt = performance.now();
      for (let c = 0; c < samplesAtChunk.length; c++) if (topSeen[c] === undefined && samplesAtChunk[c] <= shownSamples) topSeen[c] = paintedAt - takenAt[c];
    });
  };
  flame.onDrawn = () => {
    const shown = flame.model.nextSample;
    const paintedAt = performance.now();
    for (let c = 0; c < samplesAtChunk.length; c++) if (flameSeen[c] === undefined && samplesAtChunk[c] <= shown) flameSeen[c] = paintedAt - takenAt[c];
  };

  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      // Samples at 100 Hz per thread since the last chunk, stamped when "taken".
      while (sampleClock + 10 <= now) {
        sampleClock += 10;
        for (const t of threads) {
          b.addSampleOfStack(t, stacks[Math.floor(stacks.length * r() ** 3)], (sampleClock - start) * 1000, {});
          samples++;
        }
      }
      b.updateCapture({ durationUs: (sampleClock - start) * 1000 });
      takenAt.push(sampleClock);
      samplesAtChunk.push(samples);
      socket.deliver({ type: 'capture_chunk', captureId: 'live', seq: seq++, chunk: b.takeChunk() });
      if (now - start > seconds * 1000) {
        clearInterval(timer);
        resolve();
      }
    }, chunkMs);
  });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  top.dispose();
  flame.dispose();
  stream.close();
  host.replaceChildren();
  const t = topSeen.filter((x) => x !== undefined);
  const f = flameSeen.filter((x) => x !== undefined);
  return {
    chunks: seq,
    samples,
    medianMs: quantile(t, 0.5),
    p95Ms: quantile(t, 0.95),
    maxMs: Math.max(...t),
    flameMedianMs: quantile(f, 0.5),
    flameP95Ms: quantile(f, 0.95),
  };
}

const host = document.createElement('div');
host.className = 'page wide';
document.body.appendChild(host);
(window as unknown as { periscopeBench: unknown }).periscopeBench = {
  firstPaint: (distinct: number, samples: number, shape: Shape) => firstPaint(distinct, samples, shape, host),
  liveLatency: (seconds: number, chunkMs: number) => liveLatency(seconds, chunkMs, host),
  ready: true,
};
