// Authentication and CSRF checks for API routes.
//
// CSRF defence in depth: the cookie is SameSite=Strict; every state-changing
// request with an Origin header must carry the relay's own origin; and every
// state-changing request of a signed-in user must echo the per-sign-in
// X-CSRF-Token that GET /api/me hands out (a cross-site page can neither read
// it nor set custom headers without a CORS preflight the relay never grants).
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import type { AppEnv, RelayServices } from './context.ts';
import { PeriscopeError } from '../../shared/errors.ts';
import { SESSION_COOKIE, csrfTokenMatches, type Authenticated } from '../auth/web-sessions.ts';
import { untrustedOriginMessage } from './origin.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isUnsafe(method: string): boolean {
  return !SAFE_METHODS.has(method.toUpperCase());
}

/** Refuses state-changing requests whose Origin is not the relay's own. */
export function originGuard(services: RelayServices): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const origin = c.req.header('origin');
    if (isUnsafe(c.req.method) && origin !== undefined && !services.isTrustedOrigin(origin)) {
      throw new PeriscopeError('CSRF_ORIGIN', untrustedOriginMessage(origin, new URL(services.publicUrl()).origin));
    }
    await next();
  };
}

/** Requires a signed-in user; on state-changing requests also the CSRF token. */
export function requireUser(services: RelayServices): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const auth = await services.webSessions.authenticate(getCookie(c, SESSION_COOKIE));
    if (!auth) throw new PeriscopeError('UNAUTHENTICATED', 'sign in first: POST /api/login with {"username", "password"}');
    if (isUnsafe(c.req.method) && !csrfTokenMatches(auth.login.csrfToken, c.req.header('x-csrf-token'))) {
      throw new PeriscopeError('CSRF_TOKEN', 'missing or wrong X-CSRF-Token header; send the csrfToken from GET /api/me');
    }
    c.set('auth', auth);
    await next();
  };
}

export function currentAuth(c: Context<AppEnv>): Authenticated {
  return c.get('auth');
}

/** The JSON body of a request, or {} when `optional` and there is none. */
export async function jsonBody(c: Context<AppEnv>, optional = false): Promise<Record<string, unknown>> {
  const text = await c.req.text();
  if (text.trim() === '') {
    if (optional) return {};
    throw new PeriscopeError('BAD_JSON', 'this endpoint needs a JSON body');
  }
  const type = c.req.header('content-type') ?? '';
  if (!/^application\/json\b/i.test(type)) throw new PeriscopeError('UNSUPPORTED_MEDIA_TYPE', 'send the body as JSON with Content-Type: application/json');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new PeriscopeError('BAD_JSON', `the body is not valid JSON: ${(err as Error).message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new PeriscopeError('BAD_JSON', 'the body must be a JSON object');
  return body as Record<string, unknown>;
}

export function clientIp(c: Context<AppEnv>): string {
  return c.env.incoming?.socket?.remoteAddress ?? 'unknown';
}
