// Unauthenticated operational endpoints: health and Prometheus metrics.
import { Hono } from 'hono';
import type { AppEnv, RelayServices } from '../context.ts';
import { PROTOCOL_VERSION } from '../../../shared/protocol.ts';

export function opsRoutes(s: RelayServices): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // 200 even when degraded: a relay with a full disk still serves sign-ins and reads and holds
  // writes in memory, so a liveness probe must not restart it; alert on `status` instead.
  app.get('/healthz', (c) => {
    s.store.db.prepare('SELECT 1').get();
    const problems = s.store.health.problems();
    return c.json({
      status: problems.length > 0 ? 'degraded' : 'ok',
      protocol: PROTOCOL_VERSION,
      uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
      ...(problems.length > 0 ? { problems } : {}),
    });
  });
  app.get('/metrics', (c) => c.body(s.metrics.render(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }));
  return app;
}
