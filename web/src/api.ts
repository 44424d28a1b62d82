// The relay's JSON API. Cookie auth (the relay sets an HttpOnly SameSite=Strict
// cookie on login); every state-changing request carries X-CSRF-Token from /api/me.
// Errors come back as {error: {code, message}} and are thrown as ApiError.

import type { CaptureKind, UiAgentState } from '../../shared/protocol.ts';

export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

export interface User {
  id: string;
  username: string;
  admin: boolean;
}

export interface Me {
  user: User;
  csrfToken: string;
}

export interface JoinCommands {
  curl?: string;
  wget?: string;
  python?: string;
  env?: string;
}

export interface Session {
  id: string;
  name?: string;
  code?: string;
  expiresAt?: string | number;
  createdAt?: string | number;
  createdBy?: string;
  closed?: boolean;
  closedAt?: string | number | null;
  status?: string;
  members?: (string | { username: string })[];
  joinToken?: string;
  commands?: JoinCommands;
  [key: string]: unknown;
}

export type { ProcessInfo } from '../../shared/protocol.ts';
export type Agent = UiAgentState;

export type { CaptureKind } from '../../shared/protocol.ts';

export interface CaptureOptions {
  kind: CaptureKind;
  pid: number;
  rate: number;
  duration: number;
  subprocesses: boolean;
  idle: boolean;
  gil: boolean;
  blocking: boolean;
}

export interface Capture {
  id: string;
  kind: CaptureKind;
  pid: number;
  sessionId?: string;
  agentId?: string;
  requestedBy?: string;
  startedAt?: string | number | null;
  endedAt?: string | number | null;
  options?: Partial<CaptureOptions>;
  samples?: number;
  status: string;
  error?: { code: string; message: string } | string | null;
  threads?: unknown[];
  result?: unknown;
  [key: string]: unknown;
}

export interface AuditEntry {
  id?: string | number;
  at?: string | number;
  time?: string | number;
  ts?: string | number;
  actor?: string;
  user?: string;
  username?: string;
  action?: string;
  detail?: unknown;
  details?: unknown;
  [key: string]: unknown;
}

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

/** Some endpoints may wrap lists ({sessions: [...]}) — accept both shapes. */
function listOf<T>(data: unknown, key: string): T[] {
  if (Array.isArray(data)) return data as T[];
  if (data && typeof data === 'object') {
    const v = (data as Record<string, unknown>)[key];
    if (Array.isArray(v)) return v as T[];
    for (const value of Object.values(data)) if (Array.isArray(value)) return value as T[];
  }
  return [];
}

function one<T>(data: unknown, key: string): T {
  if (data && typeof data === 'object' && key in (data as object)) {
    const v = (data as Record<string, unknown>)[key];
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as T;
  }
  return data as T;
}

export const api = {
  login: (username: string, password: string) => request<unknown>('POST', '/api/login', { username, password }),
  logout: () => request<unknown>('POST', '/api/logout'),
  me: () => request<Me>('GET', '/api/me'),
  createUser: (username: string, password: string, admin: boolean) => request<unknown>('POST', '/api/users', { username, password, admin }),
  createSession: (name?: string) => request<Session>('POST', '/api/sessions', name ? { name } : {}),
  sessions: async () => listOf<Session>(await request<unknown>('GET', '/api/sessions'), 'sessions'),
  session: async (id: string) => one<Session>(await request<unknown>('GET', `/api/sessions/${encodeURIComponent(id)}`), 'session'),
  closeSession: (id: string) => request<unknown>('POST', `/api/sessions/${encodeURIComponent(id)}/close`),
  addMember: (id: string, username: string) => request<unknown>('POST', `/api/sessions/${encodeURIComponent(id)}/members`, { username }),
  agents: async (id: string) => listOf<Agent>(await request<unknown>('GET', `/api/sessions/${encodeURIComponent(id)}/agents`), 'agents'),
  startCapture: (agentId: string, options: CaptureOptions) =>
    request<{ id: string; status: string }>('POST', `/api/agents/${encodeURIComponent(agentId)}/captures`, options),
  captures: async (sessionId: string) => listOf<Capture>(await request<unknown>('GET', `/api/sessions/${encodeURIComponent(sessionId)}/captures`), 'captures'),
  capture: async (id: string) => one<Capture>(await request<unknown>('GET', `/api/captures/${encodeURIComponent(id)}`), 'capture'),
  stopCapture: (id: string) => request<unknown>('POST', `/api/captures/${encodeURIComponent(id)}/stop`),
  audit: async (sessionId: string) => listOf<AuditEntry>(await request<unknown>('GET', `/api/sessions/${encodeURIComponent(sessionId)}/audit`), 'audit'),
};

export type DownloadFormat = 'flamegraph' | 'speedscope' | 'raw' | 'chrometrace';

export function downloadUrl(captureId: string, format: DownloadFormat): string {
  return `/api/captures/${encodeURIComponent(captureId)}/download?format=${format}`;
}
