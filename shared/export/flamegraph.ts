// A self-contained interactive flame graph: one SVG file with inline CSS and script,
// nothing fetched from anywhere, so it can be mailed to a customer and opened offline.
// Root at the bottom, callees above, children in name order (flamegraph.pl's layout).

import { callTree, type CallTreeNode } from '../profile/call-tree.ts';
import type { Profile } from '../profile/model.ts';
import { flamegraphScript } from './flamegraph-script.ts';
import { nodeLabel } from './frame-label.ts';
import { buildOrTooLarge } from './build-or-too-large.ts';
import type { ExportOptions } from './options.ts';
import { escapeXmlAttribute, escapeXmlText } from './xml-escape.ts';

const IMAGE_WIDTH = 1200;
const FRAME_HEIGHT = 16;
const FONT_SIZE = 12;
const TITLE_FONT_SIZE = 17;
const X_PAD = 10;
const HEADER_HEIGHT = 56;
const FOOTER_HEIGHT = 30;
const CHAR_WIDTH = FONT_SIZE * 0.59;
/** Frames narrower than this share of all samples are left out: invisible, and they bloat the file. */
const MIN_FRAME_SHARE = 0.001;

const STYLE = `
text { font-family: Verdana, sans-serif; font-size: ${FONT_SIZE}px; fill: rgb(0,0,0); }
#title { font-size: ${TITLE_FONT_SIZE}px; text-anchor: middle; }
#subtitle { text-anchor: middle; fill: rgb(90,90,90); }
#search, #matched { text-anchor: end; }
#search, #unzoom { cursor: pointer; fill: rgb(60,60,160); }
g.f { cursor: pointer; }
g.f:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }
g.f text { pointer-events: none; }
.hide { display: none; }
.parent { opacity: 0.5; }
.match rect { fill: rgb(230,0,230); }
`;

interface PlacedFrame<N extends CallTreeNode = CallTreeNode> {
  node: N;
  /** Offset of the frame's first sample from the left edge, in samples. */
  start: number;
  depth: number;
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** flamegraph.pl's "hot" palette, keyed on the function name so a function keeps its colour everywhere. */
function frameColour(node: CallTreeNode): string {
  if (node.kind === 'root') return 'rgb(200,200,200)';
  if (node.kind !== 'frame') return 'rgb(160,185,225)';
  const h = fnv1a(node.name);
  const v1 = (h & 0xff) / 255;
  const v2 = ((h >>> 8) & 0xff) / 255;
  const v3 = ((h >>> 16) & 0xff) / 255;
  return `rgb(${205 + Math.round(50 * v3)},${Math.round(230 * v1)},${Math.round(55 * v2)})`;
}

function fitText(text: string, width: number): string {
  const room = Math.floor((width - 6) / CHAR_WIDTH);
  if (room < 3) return '';
  return text.length <= room ? text : `${text.slice(0, room - 2)}..`;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

/** Frames wide enough to draw, parents before children. */
function placeFrames<N extends CallTreeNode>(root: N): PlacedFrame<N>[] {
  const minSamples = root.total * MIN_FRAME_SHARE;
  const placed: PlacedFrame<N>[] = [];
  const pending: PlacedFrame<N>[] = [{ node: root, start: 0, depth: 0 }];
  while (pending.length > 0) {
    const frame = pending.pop()!;
    placed.push(frame);
    const children: PlacedFrame<N>[] = [];
    let start = frame.start;
    for (const child of frame.node.children as N[]) {
      if (child.total >= minSamples && child.total > 0) children.push({ node: child, start, depth: frame.depth + 1 });
      start += child.total;
    }
    // Reversed onto the stack so frames come out left to right.
    for (let i = children.length - 1; i >= 0; i--) pending.push(children[i]);
  }
  return placed;
}

function describeCapture(profile: Profile, sampleCount: number, options: ExportOptions): string {
  const { rateHz, durationUs } = profile.capture;
  const parts = [`${sampleCount} samples`];
  if (rateHz > 0) parts.push(`${rateHz} Hz`);
  if (durationUs > 0) parts.push(`${(durationUs / 1e6).toFixed(1)} s`);
  if (options.idle) parts.push('idle included');
  if (options.gil) parts.push('GIL holders only');
  if (options.function || options.nolineno) parts.push('by function');
  return parts.join(' · ');
}

/** How one drawing colours and describes its boxes: a capture's, or a comparison's. */
export interface FlameStyle<N extends CallTreeNode> {
  colour(node: N): string;
  /** Lines after the label in the box's tooltip. */
  details(node: N, total: number): string;
}

function frameElement<N extends CallTreeNode>(frame: PlacedFrame<N>, total: number, chartWidth: number, bottomY: number, style: FlameStyle<N>): string {
  const { node } = frame;
  const label = oneLine(nodeLabel(node));
  const x = X_PAD + (frame.start / total) * chartWidth;
  const width = (node.total / total) * chartWidth;
  const y = bottomY - (frame.depth + 1) * FRAME_HEIGHT;
  return (
    `<g class="f" data-s="${frame.start}" data-n="${node.total}" data-d="${frame.depth}">` +
    `<title>${escapeXmlText(label)}\n${escapeXmlText(style.details(node, total))}</title>` +
    `<rect x="${x.toFixed(2)}" y="${y}" width="${width.toFixed(2)}" height="${FRAME_HEIGHT - 1}" rx="2" ry="2" fill="${style.colour(node)}"/>` +
    `<text x="${(x + 3).toFixed(2)}" y="${y + FRAME_HEIGHT - 4.5}">${escapeXmlText(fitText(label, width))}</text>` +
    `</g>`
  );
}

function samplesAndShare(node: CallTreeNode, total: number): string {
  const percent = ((100 * node.total) / total).toFixed(2);
  const samples = node.total === 1 ? '1 sample' : `${node.total} samples`;
  return `${samples} (${percent}%)`;
}

const CAPTURE_STYLE: FlameStyle<CallTreeNode> = { colour: frameColour, details: samplesAndShare };

export function exportFlamegraph(profile: Profile, options: ExportOptions = {}): string {
  const root = callTree(profile, options);
  return flameSvg(root, oneLine(profile.capture.commandLine) || 'Flame graph', describeCapture(profile, root.total, options), CAPTURE_STYLE);
}

/** The self-contained SVG of a tree (root at the bottom), with zoom and search. */
export function flameSvg<N extends CallTreeNode>(root: N, title: string, subtitle: string, style: FlameStyle<N>): string {
  const frames = root.total > 0 ? placeFrames(root) : [];
  const depth = frames.reduce((max, f) => Math.max(max, f.depth + 1), 1);
  const height = HEADER_HEIGHT + depth * FRAME_HEIGHT + FOOTER_HEIGHT;
  const chartWidth = IMAGE_WIDTH - 2 * X_PAD;
  const bottomY = HEADER_HEIGHT + depth * FRAME_HEIGHT;
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
    `<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="${IMAGE_WIDTH}" height="${height}" viewBox="0 0 ${IMAGE_WIDTH} ${height}">`,
    `<style type="text/css"><![CDATA[${STYLE}]]></style>`,
    `<rect x="0" y="0" width="${IMAGE_WIDTH}" height="${height}" fill="rgb(240,240,235)"/>`,
    `<text id="title" x="${IMAGE_WIDTH / 2}" y="24"><title>${escapeXmlText(title)}</title>${escapeXmlText(fitText(title, ((IMAGE_WIDTH - 40) * FONT_SIZE) / TITLE_FONT_SIZE))}</text>`,
    `<text id="subtitle" x="${IMAGE_WIDTH / 2}" y="44">${escapeXmlText(subtitle)}</text>`,
    `<text id="unzoom" class="hide" x="${X_PAD}" y="44">Reset Zoom</text>`,
    `<text id="search" x="${IMAGE_WIDTH - X_PAD}" y="44">Search</text>`,
    `<text id="details" x="${X_PAD}" y="${height - 10}"> </text>`,
    `<text id="matched" class="hide" x="${IMAGE_WIDTH - X_PAD}" y="${height - 10}"> </text>`,
  ];
  if (frames.length === 0) {
    out.push(`<text x="${IMAGE_WIDTH / 2}" y="${bottomY - 4}" text-anchor="middle">No samples</text>`);
  }
  out.push('<g id="frames">');
  for (const frame of frames) out.push(frameElement(frame, root.total, chartWidth, bottomY, style));
  out.push('</g>');
  out.push(
    `<script type="text/ecmascript"><![CDATA[${flamegraphScript({ xPad: X_PAD, width: chartWidth, fontSize: FONT_SIZE })}]]></script>`,
  );
  out.push('</svg>');
  return buildOrTooLarge('flame graph', () => `${out.join('\n')}\n`);
}

