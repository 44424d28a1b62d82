// Local engineer accounts. The first account is `admin`, created on first start.
import type { Store } from '../store/index.ts';
import type { User } from '../store/users.ts';
import { newId } from '../store/ids.ts';
import { generatePassword, hashPassword } from './passwords.ts';
import { PeriscopeError } from '../../shared/errors.ts';
import type { UserView } from '../../shared/http-views.ts';

export const USERNAME_RE = /^[a-z0-9][a-z0-9._-]{0,31}$/;
export const MIN_PASSWORD_LENGTH = 10;
export const MAX_PASSWORD_LENGTH = 1024;

export function publicUser(u: User): UserView {
  return { id: u.id, username: u.username, admin: u.admin };
}

export async function createUser(store: Store, input: { username: string; password: string; admin: boolean }, createdBy: string | null): Promise<User> {
  if (!USERNAME_RE.test(input.username)) {
    throw new PeriscopeError('BAD_ARGUMENT', 'username must be 1-32 characters of a-z, 0-9, ".", "_" or "-", starting with a letter or digit');
  }
  if (input.password.length < MIN_PASSWORD_LENGTH || input.password.length > MAX_PASSWORD_LENGTH) {
    throw new PeriscopeError('WEAK_PASSWORD', `password must be ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters long`);
  }
  if (store.users.byUsername(input.username)) throw new PeriscopeError('USERNAME_TAKEN', `the username ${input.username} is taken; pick another`);
  const user: User = { id: newId(), username: input.username, passwordHash: await hashPassword(input.password), admin: input.admin, createdAt: Date.now() };
  // Re-check after the (async) hash: a concurrent request may have taken the name meanwhile.
  if (store.users.byUsername(input.username)) throw new PeriscopeError('USERNAME_TAKEN', `the username ${input.username} is taken; pick another`);
  store.users.insert(user, createdBy);
  return user;
}

/** On an empty database, creates `admin`; returns the password only when it was generated here. */
export async function bootstrapAdmin(store: Store, configured: string | undefined): Promise<{ created: boolean; generatedPassword?: string }> {
  if (store.users.count() > 0) return { created: false };
  const password = configured ?? generatePassword();
  const user: User = { id: newId(), username: 'admin', passwordHash: await hashPassword(password), admin: true, createdAt: Date.now() };
  store.users.insert(user, null);
  store.audit.record('relay', 'user.created', null, { username: 'admin', admin: true, bootstrap: true });
  return configured === undefined ? { created: true, generatedPassword: password } : { created: true };
}
