// Serves the built web client from web/dist when it exists; otherwise a plain
// page saying it is not built (the API and WebSockets work either way).
// Never a source map: the build makes none by default, and one left in
// web/dist by a debugging build must not hand anyone the client's source.
import { Hono } from 'hono';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve, sep } from 'node:path';
import type { AppEnv } from './context.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

const RESERVED = ['/api/', '/ws/', '/j/'];

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Periscope relay</title></head>
<body><h1>Periscope relay</h1>
<p>The relay is running, but the web client is not built (no web/dist/ directory).
Run <code>npm run build</code> and reload. The HTTP API under /api/ works without it.</p></body></html>
`;

export function staticFiles(distDir: string): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const root = resolve(distDir);
  app.get('*', (c, next) => {
    const path = c.req.path;
    // Server-side namespaces: never answered with the client's index page.
    if (RESERVED.some((prefix) => path.startsWith(prefix))) return next();
    if (!existsSync(join(root, 'index.html'))) {
      return path === '/' || path === '/index.html' ? c.html(NOT_BUILT) : next();
    }
    let decoded: string;
    try {
      decoded = decodeURIComponent(path);
    } catch {
      return next();
    }
    if (decoded.toLowerCase().endsWith('.map')) return next();
    let file = resolve(root, `.${decoded}`);
    if (file !== root && !file.startsWith(root + sep)) return next();
    if (!existsSync(file) || statSync(file).isDirectory()) {
      // Client-side routes (no extension) get the app's index page.
      if (extname(decoded) !== '' && decoded !== '/') return next();
      file = join(root, 'index.html');
    }
    const type = TYPES[extname(file)] ?? 'application/octet-stream';
    return c.body(readFileSync(file), 200, { 'Content-Type': type, 'Cache-Control': file.endsWith('index.html') ? 'no-cache' : 'public, max-age=300' });
  });
  return app;
}
