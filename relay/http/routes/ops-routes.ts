// Unauthenticated operational endpoints: health and Prometheus metrics.
import { Hono } from 'hono';
import type { AppEnv, RelayServices } from '../context.ts';
import { PROTOCOL_VERSION } from '../../../shared/protocol.ts';

export function opsRoutes(s: RelayServices): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // 200 even when degraded: a relay with a full disk, or cut off from Redis, still serves
  // sign-ins and its own agents, so a liveness probe must not restart it; alert on `status`.
  // 503 only when the store cannot be reached at all: a load balancer should send requests elsewhere.
  app.get('/healthz', async (c) => {
    const [store, bus] = await Promise.all([s.store.health(), s.bus.health()]);
    const problems = [...store.problems, ...(bus.problem ? [bus.problem] : [])];
    const databaseReachable = !store.problems.some((p) => p.code === 'DATABASE_UNREACHABLE');
    const body = {
      status: !databaseReachable ? 'unavailable' : problems.length > 0 ? 'degraded' : 'ok',
      relay: s.bus.relayId,
      protocol: PROTOCOL_VERSION,
      uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
      database: { engine: store.engine, reachable: databaseReachable },
      redis: { configured: bus.kind !== 'none', reachable: bus.ok },
      ...(problems.length > 0 ? { problems } : {}),
    };
    return c.json(body, body.status === 'unavailable' ? 503 : 200);
  });
  app.get('/metrics', (c) => c.body(s.metrics.render(), 200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }));
  return app;
}
