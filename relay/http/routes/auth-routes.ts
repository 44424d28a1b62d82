// Sign-in, sign-out, "who am I" and the relay-wide audit log; the accounts
// themselves (list, create, disable, passwords) are account-routes.ts.
import { Hono } from 'hono';
import { deleteCookie, setCookie } from 'hono/cookie';
import type { AppEnv, RelayServices } from '../context.ts';
import { PeriscopeError } from '../../../shared/errors.ts';
import { clientIp, currentAuth, jsonBody, requireUser } from '../guards.ts';
import { SESSION_COOKIE } from '../../auth/web-sessions.ts';
import { decoyHash, hashPassword, needsRehash, verifyPassword } from '../../auth/passwords.ts';
import { publicUser } from '../../auth/accounts.ts';
import { accountRoutes } from './account-routes.ts';
import { relayLog } from '../../log.ts';

export function authRoutes(s: RelayServices): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const authed = requireUser(s);

  app.post('/api/login', async (c) => {
    const body = await jsonBody(c);
    const { username, password } = body;
    if (typeof username !== 'string' || typeof password !== 'string' || username.length > 64 || password.length > 1024) {
      throw new PeriscopeError('BAD_ARGUMENT', 'send {"username": "...", "password": "..."}');
    }
    const ip = clientIp(c);
    // Counted before the (slow) password check, so concurrent guesses cannot outrun the limit.
    const wait = s.limiter.attempt(ip, username);
    if (wait > 0) {
      s.metrics.authFailures++;
      const seconds = Math.ceil(wait / 1000);
      throw new PeriscopeError('TOO_MANY_ATTEMPTS', `too many failed sign-ins for ${username} from this address; try again in ${seconds} s`, { retryAfterSeconds: seconds });
    }
    const user = await s.store.users.byUsername(username);
    const ok = await verifyPassword(password, user?.passwordHash ?? (await decoyHash()));
    if (!user || !ok) {
      s.metrics.authFailures++;
      await s.store.audit.record(username, 'login.failed', null, { ip });
      throw new PeriscopeError('BAD_CREDENTIALS', 'wrong username or password');
    }
    // Only once the password is proven, so the refusal tells nothing to someone guessing it.
    if (user.disabledAt !== null) {
      s.metrics.authFailures++;
      await s.store.audit.record(username, 'login.refused', null, { ip, reason: 'disabled' });
      throw new PeriscopeError('ACCOUNT_DISABLED', `the account ${username} is disabled; ask an admin to enable it`);
    }
    s.limiter.succeeded(ip, username);
    if (needsRehash(user.passwordHash)) await upgradeHash(s, user.id, password);
    const { token, login } = await s.webSessions.start(user);
    setCookie(c, SESSION_COOKIE, token, {
      httpOnly: true,
      sameSite: 'Strict',
      secure: s.secure,
      path: '/',
      expires: new Date(login.expiresAt),
    });
    await s.store.users.recordSignIn(user.id, login.createdAt);
    await s.store.audit.record(user.username, 'login', null, { ip });
    return c.json({ user: publicUser(user), csrfToken: login.csrfToken });
  });

  app.post('/api/logout', authed, async (c) => {
    const { user, login } = currentAuth(c);
    await s.webSessions.end(login);
    s.closeLogin(login.id);
    deleteCookie(c, SESSION_COOKIE, { path: '/', secure: s.secure, httpOnly: true, sameSite: 'Strict' });
    await s.store.audit.record(user.username, 'logout', null, {});
    return c.json({ ok: true });
  });

  app.get('/api/me', authed, (c) => {
    const { user, login } = currentAuth(c);
    return c.json({ user: publicUser(user), csrfToken: login.csrfToken });
  });

  app.get('/api/audit', authed, async (c) => {
    const { user } = currentAuth(c);
    if (!user.admin) throw new PeriscopeError('FORBIDDEN', 'only an admin can read the relay-wide audit log; use /api/sessions/:id/audit');
    const { limit, before } = pageParams(c.req.query('limit'), c.req.query('before'));
    return c.json({ entries: (await s.store.audit.all(limit, before)).map(auditView) });
  });

  app.route('/', accountRoutes(s));
  return app;
}

/** A hash from before the current scrypt cost is replaced now that the password is proven; the sign-in goes on if that fails. */
async function upgradeHash(s: RelayServices, userId: string, password: string): Promise<void> {
  try {
    await s.store.users.setPasswordHash(userId, await hashPassword(password));
  } catch (err) {
    relayLog().error(`could not upgrade a password hash (the old one keeps working): ${(err as Error).message}`);
  }
}

export function pageParams(limitRaw: string | undefined, beforeRaw: string | undefined): { limit: number; before: number | undefined } {
  const limit = limitRaw === undefined ? 100 : Number(limitRaw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new PeriscopeError('BAD_ARGUMENT', 'limit must be an integer from 1 to 1000');
  const before = beforeRaw === undefined ? undefined : Number(beforeRaw);
  if (before !== undefined && (!Number.isInteger(before) || before < 1)) throw new PeriscopeError('BAD_ARGUMENT', 'before must be an entry id (a positive integer)');
  return { limit, before };
}

export function auditView(e: { id: number; ts: number; actor: string; sessionId: string | null; action: string; detail: Record<string, unknown> }) {
  return { id: e.id, at: new Date(e.ts).toISOString(), actor: e.actor, sessionId: e.sessionId, action: e.action, detail: e.detail };
}
