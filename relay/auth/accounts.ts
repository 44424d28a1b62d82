// Local engineer accounts. The first account is `admin`, created on first start.
// Admins add engineers, disable and enable them and reset their passwords;
// everyone changes their own. What a username and a password must be is
// shared/accounts.ts (the web shows the same rules).
import type { Store } from '../store/index.ts';
import type { User } from '../store/users.ts';
import { newId } from '../store/ids.ts';
import { generatePassword, hashPassword } from './passwords.ts';
import { PeriscopeError } from '../../shared/errors.ts';
import { USERNAME_RE, USERNAME_RULE, passwordProblem, passwordRulesText } from '../../shared/accounts.ts';
import type { AccountView, UserView } from '../../shared/http-views.ts';

export function publicUser(u: User): UserView {
  return { id: u.id, username: u.username, admin: u.admin };
}

/** An account as admins see it in the list of engineers (never the hash). */
export function accountView(u: User): AccountView {
  const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
  return { ...publicUser(u), disabled: u.disabledAt !== null, disabledAt: iso(u.disabledAt), createdAt: new Date(u.createdAt).toISOString(), lastSignInAt: iso(u.lastSignInAt) };
}

/** Refuses a new password that breaks shared/accounts.ts's rules, saying which and what they are. */
export function checkNewPassword(password: string): void {
  const problem = passwordProblem(password);
  if (problem) throw new PeriscopeError('WEAK_PASSWORD', `${problem}; the rule: ${passwordRulesText()}`);
}

export async function createUser(store: Store, input: { username: string; password: string; admin: boolean }, createdBy: string | null): Promise<User> {
  if (!USERNAME_RE.test(input.username)) throw new PeriscopeError('BAD_ARGUMENT', USERNAME_RULE);
  checkNewPassword(input.password);
  if (await store.users.byUsername(input.username)) throw new PeriscopeError('USERNAME_TAKEN', `the username ${input.username} is taken; pick another`);
  const user: User = {
    id: newId(),
    username: input.username,
    passwordHash: await hashPassword(input.password),
    admin: input.admin,
    createdAt: Date.now(),
    disabledAt: null,
    lastSignInAt: null,
  };
  // Re-check after the (async) hash: a concurrent request may have taken the name meanwhile.
  if (await store.users.byUsername(input.username)) throw new PeriscopeError('USERNAME_TAKEN', `the username ${input.username} is taken; pick another`);
  await store.users.insert(user, createdBy);
  return user;
}

/** The account with that id, or USER_NOT_FOUND. */
export async function accountById(store: Store, id: string): Promise<User> {
  const user = await store.users.byId(id);
  if (!user) throw new PeriscopeError('USER_NOT_FOUND', `no account has the id ${id}; GET /api/users lists them`);
  return user;
}

/**
 * Disables or enables `targetId` on behalf of `actor`. Nobody disables their
 * own account, and the relay always keeps an enabled admin. Checked and written
 * in one transaction, so two admins disabling each other at once cannot both
 * succeed. Disabling does not revoke sign-ins: the caller does that
 * (WebSessions.revokeAll), and WebSessions refuses a disabled account's
 * sign-ins meanwhile anyway.
 */
export function setDisabled(store: Store, actor: User, targetId: string, disabled: boolean, now = Date.now()): Promise<{ user: User; changed: boolean }> {
  return store.transaction(async (tx) => {
    const target = await accountById(tx, targetId);
    if ((target.disabledAt !== null) === disabled) return { user: target, changed: false };
    if (disabled) {
      if (target.id === actor.id) throw new PeriscopeError('CANNOT_DISABLE_SELF', 'you cannot disable your own account; another admin can');
      if (target.admin && (await tx.users.enabledAdmins(target.id)) === 0) {
        throw new PeriscopeError('LAST_ADMIN', `${target.username} is the last enabled admin; enable or create another admin first`);
      }
    }
    await tx.users.setDisabled(target.id, disabled ? now : null);
    return { user: { ...target, disabledAt: disabled ? now : null }, changed: true };
  });
}

/** Stores a new password for `userId` (a reset or a change), after checking the rules. */
export async function setPassword(store: Store, userId: string, password: string): Promise<User> {
  checkNewPassword(password);
  const hash = await hashPassword(password);
  const user = await accountById(store, userId);
  await store.users.setPasswordHash(user.id, hash, `the new password of ${user.username}`);
  return { ...user, passwordHash: hash };
}

/** On an empty database, creates `admin`; returns the password only when it was generated here. */
export async function bootstrapAdmin(store: Store, configured: string | undefined): Promise<{ created: boolean; generatedPassword?: string }> {
  if ((await store.users.count()) > 0) return { created: false };
  const password = configured ?? generatePassword();
  const user: User = { id: newId(), username: 'admin', passwordHash: await hashPassword(password), admin: true, createdAt: Date.now(), disabledAt: null, lastSignInAt: null };
  try {
    await store.users.insert(user, null);
  } catch (err) {
    // Relays starting at once on one new database: another one made the admin first.
    if ((await store.users.byUsername('admin')) !== undefined) return { created: false };
    throw err;
  }
  await store.audit.record('relay', 'user.created', null, { username: 'admin', admin: true, bootstrap: true });
  return configured === undefined ? { created: true, generatedPassword: password } : { created: true };
}
