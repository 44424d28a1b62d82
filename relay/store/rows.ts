// The one place stored rows become records, and records become the values
// they are written with, for both engines: the embedded store's classes
// (relay/store/*.ts, node:sqlite) and the PostgreSQL ones (relay/store/postgres/).
// Both schemas have the same columns (postgres/migrations.ts lists how they
// differ); what differs in what a driver hands back is absorbed here or in the
// SQL, never by a second mapper:
//  - users.admin: 0/1 from SQLite, a boolean from PostgreSQL (toUser takes both);
//  - agents.user is os_user in PostgreSQL: the PostgreSQL store selects it AS "user";
//  - times and counters: numbers from both (postgres/connection.ts parses BIGINT).
import type { CaptureSpec, DumpTasks, ProcessInfo, AgentEndReason } from '../../shared/protocol.ts';
import { ACTIVE_CAPTURE_STATUSES, zeroStats, type CaptureKind, type CaptureStatsWire, type CaptureStatus, type EndReason } from '../../shared/capture-states.ts';
import type { User } from './users.ts';
import type { WebLogin } from './web-logins.ts';
import type { SupportSession } from './sessions.ts';
import type { JoinToken } from './join-tokens.ts';
import type { AgentRecord } from './agents.ts';
import type { CaptureRecord } from './captures.ts';
import type { AuditEntry } from './audit-log.ts';

export interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  /** SQLite: 0 or 1; PostgreSQL: BOOLEAN. */
  admin: number | boolean;
  created_at: number;
  disabled_at: number | null;
  last_sign_in_at: number | null;
}

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    username: row.username,
    passwordHash: row.password_hash,
    admin: row.admin === true || row.admin === 1,
    createdAt: row.created_at,
    disabledAt: row.disabled_at,
    lastSignInAt: row.last_sign_in_at,
  };
}

export interface WebLoginRow {
  id: string;
  user_id: string;
  csrf_token: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export function toWebLogin(row: WebLoginRow): WebLogin {
  return {
    id: row.id,
    userId: row.user_id,
    csrfToken: row.csrf_token,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

/** web_logins (id, user_id, csrf_token, created_at, expires_at, revoked_at). */
export function webLoginValues(l: WebLogin): [string, string, string, number, number, number | null] {
  return [l.id, l.userId, l.csrfToken, l.createdAt, l.expiresAt, l.revokedAt];
}

export interface SessionRow {
  id: string;
  name: string;
  created_by: string;
  created_at: number;
  expires_at: number;
  closed_at: number | null;
  closed_by: string | null;
  close_reason: string | null;
}

export function toSession(row: SessionRow): SupportSession {
  return {
    id: row.id,
    name: row.name,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    closedAt: row.closed_at,
    closedBy: row.closed_by,
    closeReason: row.close_reason,
  };
}

/** sessions (id, name, created_by, created_at, expires_at): a new session is open. */
export function sessionValues(s: SupportSession): [string, string, string, number, number] {
  return [s.id, s.name, s.createdBy, s.createdAt, s.expiresAt];
}

export interface JoinTokenRow {
  jti: string;
  session_id: string;
  code: string;
  token: string;
  created_at: number;
  expires_at: number;
  revoked_at: number | null;
}

export function toJoinToken(row: JoinTokenRow): JoinToken {
  return {
    jti: row.jti,
    sessionId: row.session_id,
    code: row.code,
    token: row.token,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

/** join_tokens (jti, session_id, code, token, created_at, expires_at): a new token is not revoked. */
export function joinTokenValues(t: JoinToken): [string, string, string, string, number, number] {
  return [t.jti, t.sessionId, t.code, t.token, t.createdAt, t.expiresAt];
}

export interface AgentRow {
  id: string;
  session_id: string;
  host: string;
  container_id: string;
  arch: string;
  agent_version: string;
  protocol: number;
  created_at: number;
  connected_at: number;
  last_seen: number;
  /** JSON: ProcessInfo[]. */
  processes: string;
  /** The column os_user in PostgreSQL (selected AS "user"). */
  user: string;
  ended: string | null;
}

export function toAgent(row: AgentRow): AgentRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    host: row.host,
    containerId: row.container_id,
    arch: row.arch,
    agentVersion: row.agent_version,
    protocol: row.protocol,
    createdAt: row.created_at,
    connectedAt: row.connected_at,
    lastSeen: row.last_seen,
    processes: JSON.parse(row.processes) as ProcessInfo[],
    user: row.user,
    ended: row.ended as AgentEndReason | null,
  };
}

/** agents (id, session_id, host, container_id, arch, agent_version, protocol, created_at, connected_at, last_seen, processes, user, ended). */
export function agentValues(a: AgentRecord): (string | number | null)[] {
  return [a.id, a.sessionId, a.host, a.containerId, a.arch, a.agentVersion, a.protocol, a.createdAt, a.connectedAt, a.lastSeen, JSON.stringify(a.processes), a.user ?? '', a.ended ?? null];
}

export interface CaptureRow {
  id: string;
  session_id: string;
  agent_id: string;
  requested_by: string;
  kind: string;
  pid: number;
  options: string;
  status: string;
  samples: number;
  chunks: number;
  stats: string | null;
  started_at: number;
  ended_at: number | null;
  end_reason: string | null;
  error: string | null;
  result: string | null;
  tasks: string | null;
  stop_requested_by: string | null;
}

export function toCapture(row: CaptureRow): CaptureRecord {
  return {
    id: row.id,
    sessionId: row.session_id,
    agentId: row.agent_id,
    requestedBy: row.requested_by,
    kind: row.kind as CaptureKind,
    pid: row.pid,
    options: JSON.parse(row.options) as CaptureSpec,
    status: row.status as CaptureStatus,
    samples: row.samples,
    chunks: row.chunks,
    stats: row.stats ? (JSON.parse(row.stats) as CaptureStatsWire) : zeroStats(),
    startedAt: row.started_at,
    endedAt: row.ended_at,
    endReason: row.end_reason as EndReason | null,
    error: row.error ? (JSON.parse(row.error) as { code: string; message: string }) : null,
    result: row.result ? (JSON.parse(row.result) as unknown[]) : null,
    tasks: row.tasks ? (JSON.parse(row.tasks) as DumpTasks) : null,
    stopRequestedBy: row.stop_requested_by,
  };
}

/** `status IN (...)` for the active capture statuses, in either engine's SQL; constants, not input. */
export const ACTIVE_CAPTURE_SQL = `status IN (${ACTIVE_CAPTURE_STATUSES.map((s) => `'${s}'`).join(', ')})`;

/** captures (id, session_id, agent_id, requested_by, kind, pid, options, status, started_at): what a capture starts with. */
export function captureStartValues(c: CaptureRecord): (string | number)[] {
  return [c.id, c.sessionId, c.agentId, c.requestedBy, c.kind, c.pid, JSON.stringify(c.options), c.status, c.startedAt];
}

/** The columns that change after a capture starts, in this order (stop_requested_by, which some writes keep, is apart). */
export const CAPTURE_STATE_COLUMNS = ['status', 'samples', 'chunks', 'stats', 'ended_at', 'end_reason', 'error', 'result', 'tasks'] as const;

/** CAPTURE_STATE_COLUMNS' values for `c`. */
export function captureStateValues(c: CaptureRecord): (string | number | null)[] {
  return [
    c.status,
    c.samples,
    c.chunks,
    JSON.stringify(c.stats),
    c.endedAt,
    c.endReason,
    captureErrorValue(c.error),
    c.result ? JSON.stringify(c.result) : null,
    c.tasks ? JSON.stringify(c.tasks) : null,
  ];
}

/** captures.error: JSON, or null. */
export function captureErrorValue(error: CaptureRecord['error']): string | null {
  return error ? JSON.stringify(error) : null;
}

export interface AuditRow {
  id: number;
  ts: number;
  actor: string;
  session_id: string | null;
  action: string;
  /** JSON: an object. */
  detail: string;
}

export function toAuditEntry(row: AuditRow): AuditEntry {
  return { id: row.id, ts: row.ts, actor: row.actor, sessionId: row.session_id, action: row.action, detail: JSON.parse(row.detail) as Record<string, unknown> };
}
