// Every request gets an id: the load balancer's (X-Request-Id, e.g. nginx's
// $request_id) when it sent a sane one, else a new one. It is echoed in the
// response and put on the relay's log lines for that request, so an operator
// can follow one request through the load balancer's and the relays' logs.
import type { MiddlewareHandler } from 'hono';
import { randomUUID } from 'node:crypto';
import type { AppEnv } from './context.ts';

/** What an id from outside may look like: short and plain, so it is safe in any log. */
const ID_RE = /^[A-Za-z0-9._-]{8,64}$/;

export function requestId(): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const given = c.req.header('x-request-id');
    const id = given !== undefined && ID_RE.test(given) ? given : randomUUID();
    c.set('requestId', id);
    c.header('X-Request-Id', id);
    await next();
  };
}
