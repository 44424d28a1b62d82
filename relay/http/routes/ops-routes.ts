// Unauthenticated operational endpoints: liveness and Prometheus metrics.
import { Hono } from 'hono';
import type { AppEnv, RelayServices } from '../context.ts';
import { PROTOCOL_VERSION } from '../../../shared/protocol.ts';

export function opsRoutes(s: RelayServices): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get('/healthz', (c) => {
    s.store.db.prepare('SELECT 1').get();
    return c.json({ status: 'ok', protocol: PROTOCOL_VERSION, uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000) });
  });
  app.get('/metrics', (c) => c.body(s.metrics.render(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }));
  return app;
}
