// Support sessions: the unit of access. Creating one mints its join token;
// closing one (or letting it expire) revokes the token, disconnects its agents
// for good and ends its captures.
import type { Store } from '../store/index.ts';
import { isOpen, type SupportSession } from '../store/sessions.ts';
import type { User } from '../store/users.ts';
import type { JoinToken } from '../store/join-tokens.ts';
import { newId } from '../store/ids.ts';
import type { TokenService } from '../auth/tokens.ts';
import { generateJoinCode } from '../auth/join-codes.ts';
import { PeriscopeError, isPeriscopeError } from '../../shared/errors.ts';
import type { CaptureService } from '../captures/capture-service.ts';
import { joinCommands } from './join-commands.ts';
import type { SessionView } from '../../shared/http-views.ts';
import { relayLog } from '../log.ts';

export const DEFAULT_TTL_HOURS = 24;
export const MAX_TTL_HOURS = 7 * 24;
const MAX_NAME_LENGTH = 200;
const EXPIRY_SWEEP_MS = 30_000;

export interface SessionHooks {
  /** Disconnect the session's agents (CloseCode.SessionClosed). */
  disconnectAgents(sessionId: string): void;
  sessionChanged(sessionId: string): void;
}

export class SupportSessions {
  #store: Store;
  #tokens: TokenService;
  #captures: CaptureService;
  #publicUrl: () => string;
  #publicUrlConfigured: boolean;
  #hooks: SessionHooks | undefined;
  #sweeper: NodeJS.Timeout | undefined;

  /** `publicUrlConfigured`: PERISCOPE_PUBLIC_URL was set (otherwise the one-liners point at localhost, and the web says so). */
  constructor(store: Store, tokens: TokenService, captures: CaptureService, publicUrl: () => string, publicUrlConfigured = true) {
    this.#store = store;
    this.#tokens = tokens;
    this.#captures = captures;
    this.#publicUrl = publicUrl;
    this.#publicUrlConfigured = publicUrlConfigured;
  }

  setHooks(hooks: SessionHooks): void {
    this.#hooks = hooks;
  }

  async create(user: User, input: { name?: unknown; ttlHours?: unknown }): Promise<SessionView> {
    const name = input.name ?? '';
    if (typeof name !== 'string' || name.length > MAX_NAME_LENGTH) throw new PeriscopeError('BAD_ARGUMENT', `name must be a string of at most ${MAX_NAME_LENGTH} characters`);
    const ttl = input.ttlHours ?? DEFAULT_TTL_HOURS;
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0 || ttl > MAX_TTL_HOURS) {
      throw new PeriscopeError('BAD_ARGUMENT', `ttlHours must be a number above 0 and at most ${MAX_TTL_HOURS} (7 days); the default is ${DEFAULT_TTL_HOURS}`);
    }
    const now = Date.now();
    const session: SupportSession = {
      id: newId(),
      name: name.trim() || `Support session ${new Date(now).toISOString().slice(0, 16).replace('T', ' ')}`,
      createdBy: user.id,
      createdAt: now,
      expiresAt: now + Math.round(ttl * 3600 * 1000),
      closedAt: null,
      closedBy: null,
      closeReason: null,
    };
    const joinToken = await this.#mintJoinToken(session, now);
    await this.#store.transaction(async (tx) => {
      await tx.sessions.insert(session);
      await tx.sessions.addMember(session.id, user.id, user.id, now);
      await tx.joinTokens.insert(joinToken);
      await tx.audit.record(user.username, 'session.created', session.id, { name: session.name, expiresAt: new Date(session.expiresAt).toISOString() });
    });
    return this.view(session);
  }

  async #mintJoinToken(session: SupportSession, now: number): Promise<JoinToken> {
    const jti = newId();
    const token = await this.#tokens.signJoin({ sessionId: session.id, jti }, session.expiresAt);
    let code = generateJoinCode();
    while (await this.#store.joinTokens.codeExists(code)) code = generateJoinCode();
    return { jti, sessionId: session.id, code, token, createdAt: now, expiresAt: session.expiresAt, revokedAt: null };
  }

  /**
   * Revokes the session's join token and mints a new one (for a one-liner that
   * leaked or was pasted in the wrong place). Agents that already joined keep
   * their own credentials and stay connected.
   */
  async rotateJoinToken(session: SupportSession, by: string): Promise<SessionView> {
    this.requireOpen(session);
    const now = Date.now();
    const joinToken = await this.#mintJoinToken(session, now);
    await this.#store.transaction(async (tx) => {
      await tx.joinTokens.revokeForSession(session.id, now);
      await tx.joinTokens.insert(joinToken);
      await tx.audit.record(by, 'session.join_token_rotated', session.id, {});
    });
    return this.view(session);
  }

  /** The session if `user` is a member; 404 otherwise, exactly as for a session that does not exist. */
  async forMember(sessionId: string, user: User): Promise<SupportSession> {
    const session = await this.#store.sessions.forMember(sessionId, user.id);
    if (!session) throw new PeriscopeError('NOT_FOUND', 'no support session with that id is visible to you; check the id, or ask a member to add you');
    return session;
  }

  requireOpen(session: SupportSession): void {
    if (!isOpen(session, Date.now())) throw new PeriscopeError('SESSION_CLOSED', 'the support session has ended; create a new one');
  }

  /** Closes the session once, whichever relay (or expiry sweep) gets there first. */
  async close(session: SupportSession, by: string, reason: 'closed' | 'expired'): Promise<void> {
    const now = Date.now();
    const changed = await this.#store.transaction(async (tx) => {
      if (!(await tx.sessions.close(session.id, now, reason === 'closed' ? by : null, reason))) return false;
      await tx.joinTokens.revokeForSession(session.id, now);
      await tx.audit.record(by, reason === 'closed' ? 'session.closed' : 'session.expired', session.id, {});
      return true;
    });
    if (!changed) return;
    await this.#captures.sessionClosed(session.id, by);
    this.#hooks?.disconnectAgents(session.id);
    this.#hooks?.sessionChanged(session.id);
  }

  async addMember(session: SupportSession, by: User, username: unknown): Promise<boolean> {
    if (typeof username !== 'string' || username === '') throw new PeriscopeError('BAD_ARGUMENT', 'send {"username": "..."} naming an existing account');
    const user = await this.#store.users.byUsername(username);
    if (!user) throw new PeriscopeError('USER_NOT_FOUND', `there is no account named ${username}; an admin can create it with POST /api/users`);
    const added = await this.#store.sessions.addMember(session.id, user.id, by.id, Date.now());
    if (added) await this.#store.audit.record(by.username, 'session.member_added', session.id, { username: user.username });
    return added;
  }

  async view(session: SupportSession): Promise<SessionView> {
    const now = Date.now();
    const creator = await this.#store.users.byId(session.createdBy);
    const open = isOpen(session, now);
    const view: SessionView = {
      id: session.id,
      name: session.name,
      status: open ? 'open' : session.closeReason === 'closed' ? 'closed' : 'expired',
      createdBy: creator?.username ?? session.createdBy,
      createdAt: new Date(session.createdAt).toISOString(),
      expiresAt: new Date(session.expiresAt).toISOString(),
      closedAt: session.closedAt === null ? null : new Date(session.closedAt).toISOString(),
      closedBy: session.closedBy,
      members: (await this.#store.sessions.members(session.id)).map((m) => ({ username: m.username, addedAt: new Date(m.addedAt).toISOString() })),
    };
    const join = open ? await this.#store.joinTokens.activeForSession(session.id) : undefined;
    if (join) {
      view.code = join.code;
      view.joinToken = join.token;
      view.commands = joinCommands(this.#publicUrl(), join.code, join.token);
      view.publicUrl = { url: this.#publicUrl(), configured: this.#publicUrlConfigured };
    }
    return view;
  }

  /** Closes sessions whose time is up, now and every 30 s. */
  startExpirySweeper(): void {
    const sweep = async () => {
      try {
        for (const s of await this.#store.sessions.expired(Date.now())) await this.close(s, 'relay', 'expired');
      } catch (err) {
        // A timer must not take the relay down; the next sweep tries again (a full disk is on /healthz already).
        if (!isPeriscopeError(err, 'DISK_FULL')) relayLog().error(`closing expired sessions failed`, { err });
      }
    };
    void sweep();
    this.#sweeper = setInterval(() => void sweep(), EXPIRY_SWEEP_MS);
    this.#sweeper.unref();
  }

  stop(): void {
    clearInterval(this.#sweeper);
  }
}
