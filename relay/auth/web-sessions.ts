// Browser sign-in: a signed JWT in an HttpOnly cookie, backed by a web_logins
// row that logout revokes (a JWT alone could not be taken back before it expires).
// Each sign-in also gets a random CSRF token that state-changing requests must echo.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/index.ts';
import type { User } from '../store/users.ts';
import type { WebLogin } from '../store/web-logins.ts';
import { newId } from '../store/ids.ts';
import { TokenError, type TokenService } from './tokens.ts';

export const SESSION_COOKIE = 'periscope_session';
export const LOGIN_TTL_MS = 12 * 60 * 60 * 1000;

export interface Authenticated {
  user: User;
  login: WebLogin;
}

export class WebSessions {
  #store: Store;
  #tokens: TokenService;
  constructor(store: Store, tokens: TokenService) {
    this.#store = store;
    this.#tokens = tokens;
  }

  async start(user: User, now = Date.now()): Promise<{ token: string; login: WebLogin }> {
    const login: WebLogin = { id: newId(), userId: user.id, csrfToken: randomBytes(24).toString('base64url'), createdAt: now, expiresAt: now + LOGIN_TTL_MS, revokedAt: null };
    await this.#store.logins.prune(now);
    await this.#store.logins.insert(login);
    return { token: await this.#tokens.signWeb({ userId: user.id, loginId: login.id }, login.expiresAt), login };
  }

  /** The signed-in user behind a cookie value, or undefined (expired, revoked, forged, absent). */
  async authenticate(cookie: string | undefined, now = Date.now()): Promise<Authenticated | undefined> {
    if (!cookie) return undefined;
    let claims;
    try {
      claims = await this.#tokens.verifyWeb(cookie);
    } catch (err) {
      if (err instanceof TokenError) return undefined;
      throw err;
    }
    const login = await this.#store.logins.byId(claims.loginId);
    if (!login || login.revokedAt !== null || login.expiresAt <= now || login.userId !== claims.userId) return undefined;
    const user = await this.#store.users.byId(login.userId);
    // A disabled account's sign-ins are revoked when it is disabled; this refuses any that slipped past (one held on a full disk).
    return user && user.disabledAt === null ? { user, login } : undefined;
  }

  /**
   * Revokes every sign-in of `userId` but `exceptLoginId` (disabling the
   * account, a new password): the next request with one of their cookies is
   * 401. Returns the revoked ids, so their WebSockets can be closed too.
   */
  async revokeAll(userId: string, exceptLoginId?: string, now = Date.now()): Promise<string[]> {
    const ids = (await this.#store.users.liveSignInIds(userId, now)).filter((id) => id !== exceptLoginId);
    for (const id of ids) await this.#store.logins.revoke(id, now);
    return ids;
  }

  async end(login: WebLogin, now = Date.now()): Promise<void> {
    await this.#store.logins.revoke(login.id, now);
  }
}

export function csrfTokenMatches(expected: string, given: string | undefined): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}
