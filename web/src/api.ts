// The relay's JSON API. Cookie auth (the relay sets an HttpOnly SameSite=Strict
// cookie on login); every state-changing request carries X-CSRF-Token from /api/me.
// Errors come back as {error: {code, message}} and are thrown as ApiError.

import type { CaptureKind } from '../../shared/capture-states.ts';
import type { Format } from '../../shared/export/formats.ts';
import { type ViewOptions, viewQuery } from '../../shared/profile/view-options.ts';
import type {
  AgentListView,
  AgentView,
  AuditEntryView,
  AuditListView,
  CaptureDetailView,
  CaptureListView,
  CaptureView,
  MeView,
  MembersAddedView,
  SessionListView,
  SessionSummaryView,
  SessionView,
  UserView,
} from '../../shared/http-views.ts';

export class ApiError extends Error {
  /** A code of shared/errors.ts, or HTTP_<status> when the answer carried none (a proxy's error page). */
  readonly code: string;
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

// The relay's JSON bodies under the names the views use; the shapes are shared/http-views.ts.
export type User = UserView;
export type Me = MeView;
export type Session = SessionView;
export type SessionSummary = SessionSummaryView;
/** What the views show of an agent: the live state the socket pushes (GET /api/sessions/:id/agents returns a superset, AgentView). */
export type Agent = UiAgentState;
export type Capture = CaptureDetailView;
export type AuditEntry = AuditEntryView;
export type { CaptureKind } from '../../shared/capture-states.ts';
export type { ProcessInfo } from '../../shared/protocol.ts';
import type { CaptureSpec, UiAgentState } from '../../shared/protocol.ts';

/** The body of POST /api/agents/:id/captures: a whole spec (relay/captures/capture-request.ts fills in what is left out). */
export type CaptureOptions = CaptureSpec;

let csrfToken = '';

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Called whenever the relay says we are not signed in (expired cookie...). */
let onUnauthenticated: () => void = () => {};
export function setUnauthenticatedHandler(fn: () => void): void {
  onUnauthenticated = fn;
}

async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['X-CSRF-Token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `Cannot reach the relay (${(err as Error).message}). Check your connection and try again.`);
  }
  const text = await res.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!res.ok) {
    const e = (data as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
    const code = typeof e?.code === 'string' ? e.code : `HTTP_${res.status}`;
    const message = typeof e?.message === 'string' ? e.message : `${res.status} ${res.statusText}`.trim();
    if (res.status === 401 && path !== '/api/login' && path !== '/api/me') onUnauthenticated();
    throw new ApiError(res.status, code, message);
  }
  return data as T;
}

export const api = {
  login: (username: string, password: string) => request<MeView>('POST', '/api/login', { username, password }),
  logout: () => request<{ ok: true }>('POST', '/api/logout'),
  me: () => request<MeView>('GET', '/api/me'),
  createUser: (username: string, password: string, admin: boolean) => request<{ user: UserView }>('POST', '/api/users', { username, password, admin }),
  createSession: (name?: string) => request<SessionView>('POST', '/api/sessions', name ? { name } : {}),
  sessions: async () => (await request<SessionListView>('GET', '/api/sessions')).sessions,
  session: (id: string) => request<SessionView>('GET', `/api/sessions/${encodeURIComponent(id)}`),
  closeSession: (id: string) => request<SessionView>('POST', `/api/sessions/${encodeURIComponent(id)}/close`),
  addMember: (id: string, username: string) => request<MembersAddedView>('POST', `/api/sessions/${encodeURIComponent(id)}/members`, { username }),
  agents: async (id: string) => (await request<AgentListView>('GET', `/api/sessions/${encodeURIComponent(id)}/agents`)).agents,
  startCapture: (agentId: string, options: CaptureOptions) => request<CaptureView>('POST', `/api/agents/${encodeURIComponent(agentId)}/captures`, options),
  captures: async (sessionId: string) => (await request<CaptureListView>('GET', `/api/sessions/${encodeURIComponent(sessionId)}/captures`)).captures,
  capture: (id: string) => request<CaptureDetailView>('GET', `/api/captures/${encodeURIComponent(id)}`),
  stopCapture: (id: string) => request<CaptureView>('POST', `/api/captures/${encodeURIComponent(id)}/stop`),
  audit: async (sessionId: string) => (await request<AuditListView>('GET', `/api/sessions/${encodeURIComponent(sessionId)}/audit`)).entries,
};

export function downloadUrl(captureId: string, format: Format, options: ViewOptions = {}): string {
  const view = viewQuery(options);
  return `/api/captures/${encodeURIComponent(captureId)}/download?format=${format}${view ? `&${view}` : ''}`;
}

/** The differential flame graph of `currentId` against `baselineId` (GET /api/captures/:id/diff). */
export function diffUrl(currentId: string, baselineId: string, options: ViewOptions = {}): string {
  const view = viewQuery(options);
  return `/api/captures/${encodeURIComponent(currentId)}/diff?baseline=${encodeURIComponent(baselineId)}${view ? `&${view}` : ''}`;
}

// ---- engineer accounts (docs/api.md, "Accounts") ----
export type Account = import('../../shared/http-views.ts').AccountView;

export const accountsApi = {
  /** Admin: every engineer's account. */
  list: async () => (await request<import('../../shared/http-views.ts').AccountListView>('GET', '/api/users')).users,
  /** Admin: a new engineer. */
  create: (username: string, password: string, admin: boolean) => request<{ user: User }>('POST', '/api/users', { username, password, admin }),
  /** Admin: disable (signs them out everywhere) or enable an engineer. */
  setDisabled: (id: string, disabled: boolean) =>
    request<import('../../shared/http-views.ts').AccountChangedView>('POST', `/api/users/${encodeURIComponent(id)}/${disabled ? 'disable' : 'enable'}`),
  /** Admin: a new password for another engineer (signs them out everywhere). */
  resetPassword: (id: string, password: string) =>
    request<import('../../shared/http-views.ts').AccountChangedView>('POST', `/api/users/${encodeURIComponent(id)}/password`, { password }),
  /** Anyone: a new password of one's own, given the current one (signs out one's other sign-ins). */
  changeOwnPassword: (currentPassword: string, newPassword: string) =>
    request<import('../../shared/http-views.ts').PasswordChangedView>('POST', '/api/me/password', { currentPassword, newPassword }),
};
