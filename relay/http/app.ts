// The HTTP application: middleware order is security headers (on everything,
// errors included), body limit, the Origin check for state-changing requests,
// then the routes.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { join } from 'node:path';
import type { AppEnv, RelayServices } from './context.ts';
import { errorBody } from './api-error.ts';
import { httpStatusOf } from './error-status.ts';
import { PeriscopeError, isPeriscopeError } from '../../shared/errors.ts';
import { securityHeaders } from './security-headers.ts';
import { originGuard } from './guards.ts';
import { authRoutes } from './routes/auth-routes.ts';
import { sessionRoutes } from './routes/session-routes.ts';
import { captureRoutes } from './routes/capture-routes.ts';
import { opsRoutes } from './routes/ops-routes.ts';
import { installRoutes } from './routes/install-routes.ts';
import { staticFiles } from './static-files.ts';
import { relayLog } from '../log.ts';
import { requestId } from './request-id.ts';

const MAX_BODY_BYTES = 64 * 1024;
export const WEB_DIST = join(import.meta.dirname, '..', '..', 'web', 'dist');

export function createApp(s: RelayServices, webDist = WEB_DIST): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use('*', requestId());
  app.use('*', securityHeaders(s.secure));
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new PeriscopeError('BODY_TOO_LARGE', `request bodies are limited to ${MAX_BODY_BYTES / 1024} KiB`);
      },
    }),
  );
  app.use('/api/*', originGuard(s));
  app.route('/', authRoutes(s));
  app.route('/', sessionRoutes(s));
  app.route('/', captureRoutes(s));
  app.route('/', opsRoutes(s));
  app.route('/', installRoutes(s));
  app.route('/', staticFiles(webDist));

  app.notFound((c) => c.json(errorBody('NOT_FOUND', `no such endpoint: ${c.req.method} ${c.req.path}; see docs/api.md`), 404));
  app.onError((err, c) => {
    const status = isPeriscopeError(err) ? httpStatusOf(err.code) : undefined;
    if (isPeriscopeError(err) && status !== undefined) {
      const headers: Record<string, string> = err.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(err.retryAfterSeconds) };
      // The relay's own trouble (a database or Redis out of reach) is the operator's to see; a client's mistake is not.
      if (status >= 500) relayLog().warn(`${err.code} on ${c.req.method} ${c.req.path}: ${err.message}`, { request: c.get('requestId') });
      return c.json(errorBody(err.code, err.message), status, headers);
    }
    relayLog().error(`internal error on ${c.req.method} ${c.req.path}`, { err, request: c.get('requestId') });
    return c.json(errorBody('INTERNAL', 'the relay hit an internal error; it has been logged. Try again, and report it if it persists'), 500);
  });
  return app;
}
