// `node scripts/with-node.mjs bench/web.ts [--quick]`: figures for the browser
// client in headless Chromium, on synthetic profiles built in the page with
// ProfileBuilder (bench/web-page.ts bundles the real web/src views):
//   1. reopening a capture of 1k / 10k / 100k distinct stacks (1M samples):
//      decode + apply its chunks, then time to the first painted flame graph,
//      against shared callTree() on the same profile (the same tree built in one go and read as plain nodes, what the exporters do);
//   2. frame time while zooming (one zoom per frame), against the 16.7 ms budget;
//   3. sample-to-pixel latency in live top (1 s refresh) and the live flame graph.
// Prints tables, then `BENCH_JSON {...}`.
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS } from '../test/web/harness.ts';
import { renderTable } from './lib/table.ts';

const root = join(import.meta.dirname, '..');
const quick = process.argv.includes('--quick');
const CHROMIUM = process.env.PERISCOPE_CHROMIUM || '/usr/bin/chromium';
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'";

const dir = mkdtempSync(join(tmpdir(), 'periscope-webbench-'));
await esbuild.build({
  entryPoints: { bench: join(import.meta.dirname, 'web-page.ts') },
  outdir: dir,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome110'],
  minify: true,
  conditions: ['browser'],
  logLevel: 'warning',
});
copyFileSync(join(root, 'web', 'src', 'app.css'), join(dir, 'app.css'));
writeFileSync(
  join(dir, 'index.html'),
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>bench</title><link rel="icon" href="data:,"><link rel="stylesheet" href="app.css"><script type="module" src="bench.js"></script></head><body></body></html>',
);
const TYPES: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
const server = createServer((req, res) => {
  const name = (req.url ?? '/').split('?')[0] === '/' ? 'index.html' : (req.url ?? '').slice(1).split('?')[0];
  try {
    const body = readFileSync(join(dir, name.replace(/[^A-Za-z0-9._-]/g, '')));
    res.writeHead(200, { 'Content-Type': TYPES[extname(name)] ?? 'application/octet-stream', 'Content-Security-Policy': CSP });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as { port: number }).port;

const profileDir = mkdtempSync(join(tmpdir(), 'periscope-webbench-chromium-'));
const context = await chromium.launchPersistentContext(profileDir, { executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, viewport: { width: 1280, height: 800 } });
const page = await context.newPage();
const problems: string[] = [];
page.on('pageerror', (e) => problems.push(e.message));
page.on('console', (m) => {
  if (m.type() === 'error') problems.push(m.text());
});

interface FirstPaint {
  shape: string;
  distinct: number;
  samples: number;
  nodes: number;
  loadMs: number;
  firstPaintMs: number;
  completePaintMs: number;
  longestFrameMs: number;
  callTreeMs: number;
  zoomMedianMs: number;
  zoomP95Ms: number;
  zoomMaxMs: number;
  frameIntervalMedianMs: number;
  frameIntervalP95Ms: number;
  boxesMedian: number;
}
interface Latency {
  chunks: number;
  samples: number;
  medianMs: number;
  p95Ms: number;
  maxMs: number;
  flameMedianMs: number;
  flameP95Ms: number;
}

try {
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => (window as unknown as { periscopeBench?: { ready: boolean } }).periscopeBench?.ready === true);
  const samples = quick ? 300_000 : 1_000_000;
  const cases: [number, string][] = [[1000, 'typical'], [10_000, 'typical'], [100_000, 'typical'], [100_000, 'deep']];
  const paints: FirstPaint[] = [];
  // Warm-up (JIT, fonts, canvas), not reported.
  await page.evaluate(() => (window as unknown as { periscopeBench: { firstPaint(d: number, s: number, sh: string): Promise<unknown> } }).periscopeBench.firstPaint(1000, 100_000, 'typical'));
  for (const [distinct, shape] of cases) {
    const r = await page.evaluate(
      ([d, s, sh]) => (window as unknown as { periscopeBench: { firstPaint(d: number, s: number, sh: string): Promise<unknown> } }).periscopeBench.firstPaint(d, s, sh),
      [distinct, samples, shape] as const,
    );
    paints.push(r as FirstPaint);
  }
  const f1 = (x: number) => x.toFixed(1);
  const k = (n: number) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1e3 ? `${n / 1e3}k` : String(n));
  const label = (p: FirstPaint) => `${k(p.distinct)}${p.shape === 'deep' ? ' (deep)' : ''}`;
  console.log(
    renderTable(
      'Reopen a capture: decode + apply its 100 chunks, then paint the flame graph',
      ['distinct stacks', 'samples', 'tree nodes', 'load ms', 'first paint ms', 'complete ms', 'longest frame ms', 'callTree() ms', 'complete / callTree'],
      paints.map((p) => [label(p), k(p.samples), String(p.nodes), f1(p.loadMs), f1(p.firstPaintMs), f1(p.completePaintMs), f1(p.longestFrameMs), f1(p.callTreeMs), `${(p.completePaintMs / p.callTreeMs).toFixed(2)}x`]),
      [
        'first paint: mount → first frame on screen (≤10 ms of ingest per frame, so the graph fills in over frames); complete: every sample drawn',
        "callTree(): the same CallTree built in one go and read as plain nodes (what the SVG and raw exporters do), in the same page, the baseline",
        "deep: worst-case shape, random 8–40-frame paths sharing little (≈18 tree nodes per stack)",
      ],
    ),
  );
  console.log();
  console.log(
    renderTable(
      'Zooming (one zoom per animation frame, 61 zooms: heaviest path, random boxes, back to the root)',
      ['distinct stacks', 'draw median ms', 'draw p95 ms', 'draw max ms', 'p95 / 16.7 ms budget', 'frame interval median', 'p95', 'boxes drawn'],
      paints.map((p) => [label(p), f1(p.zoomMedianMs), f1(p.zoomP95Ms), f1(p.zoomMaxMs), `${(p.zoomP95Ms / 16.7).toFixed(2)}x`, f1(p.frameIntervalMedianMs), f1(p.frameIntervalP95Ms), String(p.boxesMedian)]),
    ),
  );
  console.log();
  const seconds = quick ? 5 : 12;
  const lat = (await page.evaluate(
    ([s, c]) => (window as unknown as { periscopeBench: { liveLatency(s: number, c: number): Promise<unknown> } }).periscopeBench.liveLatency(s, c),
    [seconds, 100] as const,
  )) as Latency;
  console.log(
    renderTable(
      `Sample-to-pixel latency, live (${seconds} s, chunk every 100 ms, 4 threads at 100 Hz)`,
      ['view', 'median ms', 'p95 ms', 'max ms', 'median / refresh period'],
      [
        ['top (1 s refresh)', f1(lat.medianMs), f1(lat.p95Ms), f1(lat.maxMs), `${(lat.medianMs / 1000).toFixed(2)}x of 1000 ms`],
        ['flame graph (per frame)', f1(lat.flameMedianMs), f1(lat.flameP95Ms), '', `${(lat.flameMedianMs / 16.7).toFixed(2)}x of 16.7 ms`],
      ],
      [`${lat.chunks} chunks, ${lat.samples} samples; latency = newest sample of a chunk taken → first paint that includes it (the agent's own batching comes on top)`],
    ),
  );
  if (problems.length) console.log(`page problems: ${problems.join(' | ')}`);
  console.log(`BENCH_JSON ${JSON.stringify({ web: { firstPaint: paints, live: lat } })}`);
} finally {
  await context.close();
  server.close();
  rmSync(dir, { recursive: true, force: true });
  rmSync(profileDir, { recursive: true, force: true });
}
