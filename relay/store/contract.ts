// The store's one contract: everything the relay keeps, as an asynchronous
// interface with two implementations — the embedded one (node:sqlite and
// chunk files in PERISCOPE_DATA_DIR, relay/store/sqlite-store.ts) and
// PostgreSQL (relay/store/postgres/), for relays that share their state.
// test/relay/store-contract.test.ts runs the same suite against both.
//
// Calls resolve once the change is durable (committed). Conditional changes
// (close a session, finish a capture, expire overdue captures) say whether
// they did it: with several relays on one database exactly one caller wins,
// which is what makes the relay's timers run once across a cluster.
import type { AgentEndReason, ProcessInfo } from '../../shared/protocol.ts';
import type { User, NewUser } from './users.ts';
import type { WebLogin } from './web-logins.ts';
import type { SupportSession, Member } from './sessions.ts';
import type { JoinToken } from './join-tokens.ts';
import type { AgentRecord } from './agents.ts';
import type { CaptureRecord } from './captures.ts';
import type { AuditEntry } from './audit-log.ts';
import type { ChunkDamage } from './chunk-files.ts';
import type { StorageCounters } from '../metrics.ts';

export type { User, NewUser, WebLogin, SupportSession, Member, JoinToken, AgentRecord, CaptureRecord, AuditEntry, ChunkDamage };

export interface UsersStore {
  count(): Promise<number>;
  /** Every account, oldest first. */
  all(): Promise<User[]>;
  byId(id: string): Promise<User | undefined>;
  byUsername(username: string): Promise<User | undefined>;
  /** Enabled admins, not counting `exceptId`. */
  enabledAdmins(exceptId?: string): Promise<number>;
  insert(user: NewUser, createdBy: string | null): Promise<void>;
  setPasswordHash(id: string, passwordHash: string, what?: string): Promise<void>;
  /** Disables (`at` a time) or enables (null) an account. */
  setDisabled(id: string, at: number | null): Promise<void>;
  /** Keeps the latest of the stored and the given sign-in time. */
  recordSignIn(id: string, at: number): Promise<void>;
  /** Ids of the account's stored sign-ins that still work (not revoked, not expired). */
  liveSignInIds(userId: string, now: number): Promise<string[]>;
}

export interface WebLoginsStore {
  insert(login: WebLogin): Promise<void>;
  byId(id: string): Promise<WebLogin | undefined>;
  revoke(id: string, now: number): Promise<void>;
  /** Forgets sign-ins that expired before `now`. */
  prune(now: number): Promise<void>;
}

export interface SessionsStore {
  insert(session: SupportSession): Promise<void>;
  byId(id: string): Promise<SupportSession | undefined>;
  /** The session if `userId` is a member of it; otherwise undefined, exactly as if it did not exist. */
  forMember(id: string, userId: string): Promise<SupportSession | undefined>;
  /** Newest first. */
  listForMember(userId: string): Promise<SupportSession[]>;
  /** Open sessions whose time is up. */
  expired(now: number): Promise<SupportSession[]>;
  /** Closes an open session; false when it was already closed (by anyone, on any relay). */
  close(id: string, now: number, closedBy: string | null, reason: string): Promise<boolean>;
  isMember(sessionId: string, userId: string): Promise<boolean>;
  /** False when already a member. */
  addMember(sessionId: string, userId: string, addedBy: string | null, now: number): Promise<boolean>;
  members(sessionId: string): Promise<Member[]>;
}

export interface JoinTokensStore {
  insert(t: JoinToken): Promise<void>;
  codeExists(code: string): Promise<boolean>;
  byJti(jti: string): Promise<JoinToken | undefined>;
  byCode(code: string): Promise<JoinToken | undefined>;
  /** The session's current (newest, unrevoked) join token. */
  activeForSession(sessionId: string): Promise<JoinToken | undefined>;
  revokeForSession(sessionId: string, now: number): Promise<void>;
}

export interface AgentHello {
  host: string;
  containerId: string;
  arch: string;
  agentVersion: string;
  protocol: number;
  user: string;
}

export interface AgentsStore {
  insert(a: AgentRecord): Promise<void>;
  byId(id: string): Promise<AgentRecord | undefined>;
  /** Oldest first. */
  forSession(sessionId: string): Promise<AgentRecord[]>;
  reconnected(id: string, hello: AgentHello, now: number): Promise<void>;
  /** The agent left at `now`; `ended` says why, when it is gone for good. */
  seen(id: string, now: number, ended?: AgentEndReason | null): Promise<void>;
  setProcesses(id: string, processes: ProcessInfo[], now: number): Promise<void>;
}

/** Why overdue captures end (the same for every one a sweep ends). */
export interface CaptureEnd {
  status: CaptureRecord['status'];
  reason: NonNullable<CaptureRecord['endReason']>;
  error: { code: string; message: string } | null;
}

export interface CapturesStore {
  insert(c: CaptureRecord): Promise<void>;
  byId(id: string): Promise<CaptureRecord | undefined>;
  /** Newest first. */
  forSession(sessionId: string): Promise<CaptureRecord[]>;
  activeForAgent(agentId: string): Promise<CaptureRecord[]>;
  activeForSession(sessionId: string): Promise<CaptureRecord[]>;
  allActive(): Promise<CaptureRecord[]>;
  /** Writes every field that changes after the start, whatever the stored status (a dump's late result, a capture found damaged). */
  save(c: CaptureRecord): Promise<void>;
  /**
   * Writes the counters and status of a capture that is still active; false
   * (nothing written) once it has ended — another relay may have ended it.
   * Never clears a stop request made elsewhere.
   */
  progress(c: CaptureRecord): Promise<boolean>;
  /** Ends an active capture with `c`'s final state; false when it had already ended. */
  finish(c: CaptureRecord): Promise<boolean>;
  /** Records who asked an active capture to stop; false when it had already ended. */
  requestStop(id: string, by: string): Promise<boolean>;
  /**
   * The capture's agent is connected to relay `owner`: the capture must not
   * time out before `deadline` (a lease the owner renews while it lives).
   * A null owner holds it until `deadline` with nobody renewing.
   */
  hold(id: string, owner: string | null, deadline: number): Promise<void>;
  /** Renews the lease of every active capture `owner` holds. */
  renew(owner: string, deadline: number): Promise<void>;
  /** The agent left relay `owner`: its captures end at `deadline` unless it comes back first. */
  release(agentId: string, owner: string, deadline: number): Promise<void>;
  /** Ends every active capture whose deadline has passed, once across all relays; returns what it ended. */
  expireOverdue(now: number, end: CaptureEnd): Promise<CaptureRecord[]>;
}

export interface AuditStore {
  record(actor: string, action: string, sessionId: string | null, detail?: Record<string, unknown>, now?: number): Promise<void>;
  /** Newest first; `before` pages back by entry id. */
  forSession(sessionId: string, limit: number, before?: number): Promise<AuditEntry[]>;
  all(limit: number, before?: number): Promise<AuditEntry[]>;
}

/** One capture's stored chunks, opened to append to. */
export interface ChunkWriter {
  /** Chunks stored (the next seq). */
  readonly count: number;
  /** Bytes stored. */
  readonly bytes: number;
  /** Set when stored chunks cannot be read (then nothing more is appended). */
  readonly damage: ChunkDamage | undefined;
  /** Stores chunk `count`; durable when it resolves. Rejects CHUNK_TOO_LARGE, DISK_FULL. */
  append(payload: Uint8Array): Promise<void>;
  read(seq: number): Promise<Buffer>;
}

/** A capture's chunks as the render worker reads them. */
export type RenderSource = { path: string } | { payloads: Uint8Array[] };

export interface ChunkStore {
  /** The capture's chunks for appending; what is stored is checked (and a torn tail repaired) first. */
  writer(captureId: string): Promise<ChunkWriter>;
  /** What reads back of a capture's chunks; undefined when none were ever stored. */
  readable(captureId: string): Promise<{ count: number; damage: ChunkDamage | undefined } | undefined>;
  read(captureId: string, seq: number): Promise<Buffer>;
  /** The first `count` chunks, for a download. */
  renderSource(captureId: string, count: number): Promise<RenderSource>;
  /** The capture will get no more chunks: make them final and let go of the writer. */
  finish(captureId: string): Promise<void>;
  /** Where the chunks are, for messages that tell an operator what to restore. */
  describe(captureId: string): string;
  closeAll(): Promise<void>;
}

/** What /healthz says about the store. */
export interface StoreHealth {
  ok: boolean;
  /** 'sqlite' or 'postgres'. */
  engine: string;
  /** Problems now (a full disk, an unreachable database), each with a code and a fix. */
  problems: { code: string; message: string; since: string }[];
  /** Writes waiting for room (embedded, on a full disk). */
  heldWrites: number;
  droppedWrites: number;
}

export interface Store {
  readonly engine: 'sqlite' | 'postgres';
  users: UsersStore;
  logins: WebLoginsStore;
  sessions: SessionsStore;
  joinTokens: JoinTokensStore;
  agents: AgentsStore;
  captures: CapturesStore;
  audit: AuditStore;
  chunks: ChunkStore;
  /**
   * Runs `fn` in one transaction: all of it lands or none, as if no other
   * relay ran at the same time (PostgreSQL: serializable, and `fn` is run
   * again when it lost a race, so it must do nothing but calls on the store
   * it is given). Nested calls are savepoints on PostgreSQL; the embedded
   * store does not nest.
   */
  transaction<T>(fn: (tx: Store) => Promise<T>): Promise<T>;
  /** Why a new capture's chunks would have nowhere to go now (embedded: the disk is full), or undefined. */
  newCaptureRefusal(): Error | undefined;
  /** Reachable, with room? Asks the database. */
  health(): Promise<StoreHealth>;
  /** What /metrics reports about storage. */
  readonly counters: StorageCounters;
  /**
   * The token-signing key every relay on this store shares: read, or made
   * with `create` and kept if none exists yet (several relays starting at
   * once all end up with the same key).
   */
  signingKey(create: () => Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** What the sqlite classes implement: the same calls, answered synchronously. */
export type Sync<T> = { [K in keyof T]: T[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : T[K] };
