// Engineer accounts: admins list, add, disable and enable them and reset their
// passwords; every engineer changes their own password. Each change is in the
// relay-wide audit log (GET /api/audit). Disabling an account or setting its
// password signs it out everywhere at once: its sign-ins are revoked (the next
// request with their cookie is 401) and their /ws/ui sockets closed.
import { Hono, type Context } from 'hono';
import type { AppEnv, RelayServices } from '../context.ts';
import type { User } from '../../store/users.ts';
import { PeriscopeError } from '../../../shared/errors.ts';
import { PASSWORD_RULES } from '../../../shared/accounts.ts';
import type { AccountChangedView, AccountListView, PasswordChangedView } from '../../../shared/http-views.ts';
import { clientIp, currentAuth, jsonBody, requireUser } from '../guards.ts';
import { verifyPassword } from '../../auth/passwords.ts';
import { accountById, accountView, checkNewPassword, createUser, publicUser, setDisabled, setPassword } from '../../auth/accounts.ts';

export function accountRoutes(s: RelayServices): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const authed = requireUser(s);

  /** The signed-in admin, or 403 FORBIDDEN saying what only an admin may do. */
  const admin = (c: Context<AppEnv>, what: string): User => {
    const { user } = currentAuth(c);
    if (!user.admin) throw new PeriscopeError('FORBIDDEN', `only an admin can ${what}`);
    return user;
  };

  /** Signs `userId` out everywhere but `except`: their next request is 401, their live views close. */
  const signOut = async (userId: string, except?: string): Promise<number> => {
    const ids = await s.webSessions.revokeAll(userId, except);
    for (const id of ids) s.closeLogin(id);
    return ids.length;
  };

  app.get('/api/users', authed, async (c) => {
    admin(c, 'list accounts');
    const body: AccountListView = { users: (await s.store.users.all()).map(accountView) };
    return c.json(body);
  });

  app.post('/api/users', authed, async (c) => {
    const user = admin(c, 'create accounts');
    const body = await jsonBody(c);
    const { username, password, admin: isAdmin } = body;
    if (typeof username !== 'string' || typeof password !== 'string' || (isAdmin !== undefined && typeof isAdmin !== 'boolean')) {
      throw new PeriscopeError('BAD_ARGUMENT', 'send {"username": "...", "password": "...", "admin": false}');
    }
    const created = await createUser(s.store, { username, password, admin: isAdmin === true }, user.id);
    await s.store.audit.record(user.username, 'user.created', null, { username: created.username, admin: created.admin });
    return c.json({ user: publicUser(created) }, 201);
  });

  for (const action of ['disable', 'enable'] as const) {
    app.post(`/api/users/:id/${action}`, authed, async (c) => {
      const actor = admin(c, `${action} accounts`);
      const { user, changed } = await setDisabled(s.store, actor, c.req.param('id'), action === 'disable');
      const signInsRevoked = changed && action === 'disable' ? await signOut(user.id) : 0;
      if (changed) await s.store.audit.record(actor.username, `user.${action}d`, null, action === 'disable' ? { username: user.username, signInsRevoked } : { username: user.username });
      const view: AccountChangedView = { user: accountView(user), signInsRevoked };
      return c.json(view);
    });
  }

  app.post('/api/users/:id/password', authed, async (c) => {
    const actor = admin(c, "reset another engineer's password");
    const target = await accountById(s.store, c.req.param('id'));
    if (target.id === actor.id) throw new PeriscopeError('BAD_ARGUMENT', 'to change your own password use POST /api/me/password, with your current one');
    const { password } = await jsonBody(c);
    if (typeof password !== 'string') throw new PeriscopeError('BAD_ARGUMENT', 'send {"password": "the new password"}');
    const user = await setPassword(s.store, target.id, password);
    const signInsRevoked = await signOut(user.id);
    await s.store.audit.record(actor.username, 'user.password_reset', null, { username: user.username, signInsRevoked });
    const view: AccountChangedView = { user: accountView(user), signInsRevoked };
    return c.json(view);
  });

  app.post('/api/me/password', authed, async (c) => {
    const { user, login } = currentAuth(c);
    const { currentPassword, newPassword } = await jsonBody(c);
    if (typeof currentPassword !== 'string' || typeof newPassword !== 'string' || currentPassword.length > PASSWORD_RULES.maxLength) {
      throw new PeriscopeError('BAD_ARGUMENT', 'send {"currentPassword": "...", "newPassword": "..."}');
    }
    // The rules first: a new password that would be refused costs no password check.
    checkNewPassword(newPassword);
    // A stolen cookie must not become a way to guess the password: the sign-in limit applies here too.
    const ip = clientIp(c);
    const wait = s.limiter.attempt(ip, user.username);
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new PeriscopeError('TOO_MANY_ATTEMPTS', `too many wrong passwords for ${user.username} from this address; try again in ${seconds} s`, { retryAfterSeconds: seconds });
    }
    if (!(await verifyPassword(currentPassword, user.passwordHash))) {
      s.metrics.authFailures++;
      await s.store.audit.record(user.username, 'user.password_change_failed', null, { ip });
      throw new PeriscopeError('WRONG_PASSWORD', 'the current password is wrong; your password is unchanged');
    }
    s.limiter.succeeded(ip, user.username);
    await setPassword(s.store, user.id, newPassword);
    const signInsRevoked = await signOut(user.id, login.id);
    await s.store.audit.record(user.username, 'user.password_changed', null, { signInsRevoked });
    const view: PasswordChangedView = { ok: true, signInsRevoked };
    return c.json(view);
  });

  return app;
}
