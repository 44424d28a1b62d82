// Bundles the browser client: web/src/main.ts → web/dist/main.js (esbuild,
// minified, ES modules) and copies index.html, app.css and the icon next to
// it. No network. `--watch` rebuilds on change.
//
// No source map by default: the relay serves web/dist to anyone who asks, and
// a map hands out the client's whole source with comments. `--sourcemap`
// inlines one into main.js for debugging a local build (the relay never
// serves .map files, see relay/http/static-files.ts).
//
//   node scripts/with-node.mjs scripts/build-web.ts [--watch] [--sourcemap] [--outdir DIR]
import { copyFileSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import * as esbuild from 'esbuild';

const root = join(import.meta.dirname, '..');
export const WEB_SRC = join(root, 'web', 'src');
export const WEB_DIST = join(root, 'web', 'dist');
const STATIC_FILES = ['index.html', 'app.css', 'favicon.svg'];

export interface BuildWebOptions {
  outdir?: string;
  /** Extra entry points (name → path), e.g. the benchmark page. */
  extraEntries?: Record<string, string>;
  minify?: boolean;
  watch?: boolean;
  /** Inline a source map into the bundle (local debugging only; off by default). */
  sourcemap?: boolean;
}

function esbuildOptions(outdir: string, options: BuildWebOptions): esbuild.BuildOptions {
  return {
    entryPoints: { main: join(WEB_SRC, 'main.ts'), ...(options.extraEntries ?? {}) },
    outdir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['chrome110', 'firefox115', 'safari16'],
    minify: options.minify ?? true,
    sourcemap: options.sourcemap ? 'inline' : false,
    legalComments: 'none',
    conditions: ['browser'],
    logLevel: 'warning',
    charset: 'utf8',
    define: { 'process.env.NODE_ENV': '"production"' },
  };
}

function copyStatic(outdir: string): void {
  for (const f of STATIC_FILES) copyFileSync(join(WEB_SRC, f), join(outdir, f));
}

/**
 * Builds into `outdir` (default web/dist), replacing what was there. The
 * bundle is written to a sibling temporary directory first and then renamed
 * into place file by file, so a relay serving `outdir` (or another build
 * running at the same time, as parallel tests do) never sees a half-written file.
 */
export async function buildWeb(options: BuildWebOptions = {}): Promise<string> {
  const outdir = resolve(options.outdir ?? WEB_DIST);
  if (options.watch) {
    mkdirSync(outdir, { recursive: true });
    const ctx = await esbuild.context({
      ...esbuildOptions(outdir, options),
      plugins: [{ name: 'copy-static', setup: (b) => b.onEnd(() => copyStatic(outdir)) }],
    });
    await ctx.watch();
    console.log(`watching web/src → ${outdir}`);
    return outdir;
  }
  const staging = join(dirname(outdir), `.${Date.now().toString(36)}-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
  mkdirSync(staging, { recursive: true });
  try {
    await esbuild.build(esbuildOptions(staging, options));
    copyStatic(staging);
    mkdirSync(outdir, { recursive: true });
    const built = readdirSync(staging);
    for (const f of built) renameSync(join(staging, f), join(outdir, f));
    for (const f of readdirSync(outdir)) if (!built.includes(f)) rmSync(join(outdir, f), { recursive: true, force: true });
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return outdir;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const outIndex = args.indexOf('--outdir');
  const outdir = outIndex >= 0 ? args[outIndex + 1] : undefined;
  const started = Date.now();
  const dir = await buildWeb({ outdir, watch: args.includes('--watch'), sourcemap: args.includes('--sourcemap') });
  if (!args.includes('--watch')) console.log(`web client built into ${dir} in ${Date.now() - started} ms`);
}
