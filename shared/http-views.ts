// The JSON bodies of the relay's HTTP API (docs/api.md), defined once: the
// relay builds them (relay/http, relay/captures/capture-view.ts,
// relay/sessions) and the web reads them (web/src/api.ts) with these exact
// field names. Times are ISO 8601 strings. Errors are ErrorBody.
import type { ErrorCode } from './errors.ts';
import type { CaptureKind, CaptureStatsWire, CaptureStatus, EndReason } from './capture-states.ts';
import type { CaptureSpec, UiAgentState } from './protocol.ts';

/** Every non-2xx answer. `code` is from shared/errors.ts. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

/** Why a capture failed or ended early, as stored. Codes come from agents too, so not narrowed to ErrorCode. */
export interface CaptureErrorView {
  code: string;
  message: string;
}

export interface UserView {
  id: string;
  username: string;
  admin: boolean;
}

/** POST /api/login, GET /api/me. */
export interface MeView {
  user: UserView;
  csrfToken: string;
}

/** GET /api/users (each) and the admin's account actions: an engineer's account as admins see it. */
export interface AccountView extends UserView {
  /** Disabled by an admin: cannot sign in. */
  disabled: boolean;
  disabledAt: string | null;
  createdAt: string;
  /** The last successful sign-in; null if none since the relay began keeping it. */
  lastSignInAt: string | null;
}

/** GET /api/users. */
export interface AccountListView {
  users: AccountView[];
}

/** POST /api/users/:id/disable, /enable, /password. */
export interface AccountChangedView {
  user: AccountView;
  /** How many of that engineer's sign-ins were revoked (signed out) by the change. */
  signInsRevoked: number;
}

/** POST /api/me/password: your other sign-ins are revoked; this one goes on. */
export interface PasswordChangedView {
  ok: true;
  signInsRevoked: number;
}

/** The customer's one-liners for a session's current join code. */
export interface JoinCommands {
  curl: string;
  wget: string;
  python: string;
  /** For operators and tests: the token goes in the environment, never in argv. */
  env: string;
}

export const SESSION_STATUSES = ['open', 'closed', 'expired'] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/**
 * A support session's own fields, as the relay's store keeps them and the API
 * shows them; `Time` is how a time is written (epoch ms in the store, ISO 8601
 * on the wire).
 */
export interface SessionFields<Time> {
  id: string;
  name: string;
  createdBy: string;
  createdAt: Time;
  expiresAt: Time;
  closedAt: Time | null;
  /** Username of the engineer who closed it; null while open or when it expired. */
  closedBy: string | null;
}

/** GET /api/sessions (each), without the join secrets. */
export interface SessionSummaryView extends SessionFields<string> {
  status: SessionStatus;
  members: { username: string; addedAt: string }[];
}

/** Where the one-liners point (the relay's public URL), and whether the operator chose it. */
export interface PublicUrlView {
  url: string;
  /**
   * false: PERISCOPE_PUBLIC_URL is not set, so the one-liners use
   * http(s)://localhost:PORT, which reaches the relay only from its own
   * machine. The web warns and says how to set it.
   */
  configured: boolean;
}

/** GET /api/sessions/:id, POST /api/sessions and the session's actions. */
export interface SessionView extends SessionSummaryView {
  /** Only while the session is open. */
  code?: string;
  joinToken?: string;
  commands?: JoinCommands;
  /** With `commands`: the address in them. */
  publicUrl?: PublicUrlView;
}

/** An agent as the HTTP API shows it: its live state plus when it was seen. */
export interface AgentView extends UiAgentState {
  connectedAt: string;
  lastSeen: string;
}

/** A capture's own fields, as the relay's store keeps them and the API shows them (`Time` as in SessionFields). */
export interface CaptureFields<Time> {
  id: string;
  sessionId: string;
  agentId: string;
  requestedBy: string;
  kind: CaptureKind;
  pid: number;
  status: CaptureStatus;
  /** Sample rows stored (counted by the relay from the chunks themselves). */
  samples: number;
  /** Chunks stored: the next seq the relay needs. */
  chunks: number;
  /** Last stats the agent reported. */
  stats: CaptureStatsWire;
  startedAt: Time;
  endedAt: Time | null;
  endReason: EndReason | null;
  stopRequestedBy: string | null;
  error: CaptureErrorView | null;
}

export interface CaptureView extends CaptureFields<string> {
  options: Omit<CaptureSpec, 'kind' | 'pid'>;
  /** Wall-clock seconds from request to end (or to now while it runs). */
  durationSeconds: number;
}

/** GET /api/captures/:id: a dump carries its threads (as `periscope dump --json`) once they arrived; readers validate them with parseDumpThreads. */
export interface CaptureDetailView extends CaptureView {
  result?: unknown[] | null;
  /** A dump's asyncio tasks (agents send them; Python 3.14+ has them); readers validate them with parseDumpTasksPart. */
  tasks?: unknown;
}

export interface AuditEntryView {
  id: number;
  at: string;
  actor: string;
  sessionId: string | null;
  action: string;
  detail: Record<string, unknown>;
}

// ---- list and action bodies ---------------------------------------------------

export interface SessionListView {
  sessions: SessionSummaryView[];
}
export interface AgentListView {
  agents: AgentView[];
}
export interface CaptureListView {
  captures: CaptureView[];
}
export interface AuditListView {
  entries: AuditEntryView[];
}
export interface MembersAddedView {
  added: boolean;
  members: SessionView['members'];
}
