// The wire protocol between agent, relay and browser: every message, the
// protocol version that added each field, and a validator for each one.
//
// Frames are binary msgpack (msgpackr with `moreTypes: true`, so typed arrays
// in profile chunks survive the trip). Every message is a map with a `type`.
// Received frames are decoded by shared/untrusted-msgpack.ts, which accepts
// plain msgpack and typed arrays only (none of msgpackr's records, references
// or bundled strings, which let a small frame expand), within a depth and
// size bound. Nothing received is used before `parse*` has checked it:
// unknown types, missing or mistyped fields, oversized lists and strings
// become a ProtocolError, never a crash.
//
// Connections:
//   agent   ⇄ relay  at /ws/agent  (Authorization: Bearer <join token or agent credential>)
//   browser ⇄ relay  at /ws/ui     (session cookie; same-origin check)
//
// Version history:
//   1  first version: hello/welcome, process lists, captures as chunk streams
//      with sequence numbers and acknowledgements, dump results, stop.
//      Every field without a mark below is from version 1.
//   ui+  (still protocol 1) session_agents: presence to browsers as
//      incremental, coalesced updates after one session_state snapshot; close
//      code 4008 SessionFull for agents. The relay serves the web client it
//      talks to, so the browser side needs no negotiation; an older agent
//      that does not know 4008 retries, and its retry is refused at the
//      upgrade with HTTP 409, which it already treats as final. So
//      PROTOCOL_VERSION stays 1. Marked `ui+` below.
//   dump+  (still protocol 1) dump threads carry `truncated`, and
//      os_thread_id may be -1 (a thread not running yet). A missing
//      `truncated` reads as false, so older agents' results still parse; an
//      older relay drops the field, as it keeps known fields only. Marked `dump+`.
//   2  chunk.chunk is the chunk's own msgpack (encodeChunk), as binary: a
//      ProfileChunk with typed-array columns and the format's fields only,
//      the form the relay stores. The relay decodes those bytes once to check
//      them and stores and forwards exactly them; it used to decode the
//      chunk, rebuild it and encode it again. It refuses a chunk in any other
//      form (lists for columns, extra fields) with INVALID_CHUNK. Version 1
//      sent the chunk as a nested map, which this relay no longer reads, so
//      MIN_PROTOCOL_VERSION is 2 too (a v1 agent also gives up on a welcome
//      whose protocol is not its own). Viewers' capture_chunk is unchanged:
//      the chunk is a nested map there, spliced in from the stored bytes
//      (encodeCaptureChunk). Marked `v2`.
//   bye+  (still protocol 2) Optional fields and one close code, so either
//      side may be older: processes carry `ppid` and `startedAt` (the
//      engineer's process tree and short-lived children); hello carries the
//      `user` the agent runs as; an agent the customer stops (Ctrl-C) ends its
//      running captures with capture_ended `byCustomer: true` and closes with
//      4009 AgentExit, so the relay records it as ended by the customer
//      rather than lost (an older relay just drops the fields and logs the
//      code); browsers get the agent's `user` and why it `ended`. A missing
//      field reads as unknown (false for byCustomer). Marked `bye+`.

import { Packr } from 'msgpackr';
import { PeriscopeError, isPeriscopeError } from './errors.ts';
import { checkUntrustedMsgpack, decodeUntrusted } from './untrusted-msgpack.ts';
import { CAPTURE_END_REASONS, CAPTURE_KINDS, CAPTURE_MODES, CAPTURE_STATUSES, CAPTURE_STAT_NAMES, isCaptureMode, isCaptureStatus } from './capture-states.ts';
import type { CaptureEndReason, CaptureKind, CaptureMode, CaptureStatsWire, CaptureStatus } from './capture-states.ts';
import type { ProfileChunk } from './profile/chunk.ts';

export const PROTOCOL_VERSION = 2;
/** Oldest protocol version a relay of this build still speaks. */
export const MIN_PROTOCOL_VERSION = 2;

/** Largest WebSocket message either side accepts (ws `maxPayload`). */
export const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/**
 * Largest encoded chunk (encodeChunk). It leaves room for the header of the
 * agent's chunk message and of the viewers' capture_chunk around it, and it is
 * the most a record of the relay's chunk files holds.
 */
export const MAX_CHUNK_BYTES = MAX_MESSAGE_BYTES - 1024;

/** WebSocket close codes for protocol states (4000–4999 are application codes). */
export const CloseCode = {
  /** The token was missing, forged, expired, revoked or for another audience. */
  BadAuth: 4001,
  /** A message failed validation. */
  BadMessage: 4002,
  /** The peer's protocol version is not supported. */
  Version: 4003,
  /** The support session was closed; the agent must not reconnect. */
  SessionClosed: 4004,
  /** Another connection took over this agent's identity. */
  Replaced: 4005,
  /** The peer sent nothing (not even a heartbeat reply) for too long. */
  Timeout: 4006,
  /** The relay is shutting down; reconnect later. */
  Restarting: 4007,
  /** The support session already has as many agents as the relay allows (PERISCOPE_MAX_AGENTS_PER_SESSION). ui+ */
  SessionFull: 4008,
  /**
   * Sent by the agent: it is leaving on purpose (the customer pressed Ctrl-C
   * or stopped it) and will not come back. The relay records the agent as
   * ended by the customer and ends its running captures now (customer_ended)
   * instead of waiting the grace period. bye+
   */
  AgentExit: 4009,
} as const;

/** Close codes after which an agent must stop reconnecting. */
// SessionFull is final: slots free up only as agents that left are forgotten (an hour by default), so retrying would just knock.
export const FINAL_CLOSE_CODES: readonly number[] = [CloseCode.BadAuth, CloseCode.Version, CloseCode.SessionClosed, CloseCode.Replaced, CloseCode.SessionFull];

/** What a capture request may ask for; the agent enforces its own bounds on top. */
export interface CaptureSpec {
  kind: CaptureKind;
  pid: number;
  rate: number; // samples per second
  /** Seconds; 0 means until stopped (top). */
  duration: number;
  subprocesses: boolean;
  /** Which samples the agent keeps (CAPTURE_MODES). */
  mode: CaptureMode;
  /** View defaults: show idle samples; only GIL holders. */
  idle: boolean;
  gil: boolean;
  blocking: boolean;
}

export interface ProcessInfo {
  pid: number;
  cmdline: string;
  /** Python version, e.g. "3.11.7". */
  version: string;
  user: string;
  threads: number;
  /** Parent pid (in the agent's pid namespace; 0 for a namespace's first process). Missing from older agents. bye+ */
  ppid?: number;
  /** When the process started, ms since the epoch by the agent's clock (from /proc: boot time + start ticks). bye+ */
  startedAt?: number;
}

// ---- agent → relay --------------------------------------------------------

export interface HelloMessage {
  type: 'hello';
  protocol: number;
  agentVersion: string;
  host: string;
  /** Container id from /proc/self/cgroup or mountinfo; '' when not in a container. */
  containerId: string;
  arch: string;
  /** The user the agent runs as (its name, or the uid when it has none). bye+ */
  user?: string;
  /** Captures this agent is still running, to resume after a reconnect. */
  captures: { captureId: string; nextSeq: number }[];
}

export interface ProcessesMessage {
  type: 'processes';
  processes: ProcessInfo[];
}

/** One slice of a capture's profile; seq counts from 0 per capture. */
export interface ChunkMessage {
  type: 'chunk';
  captureId: string;
  seq: number;
  /**
   * v2: the chunk's msgpack, encodeChunk(profileChunk). parseAgentMessage
   * checks only that it is one msgpack map of the accepted subset; the relay
   * checks what it holds (relay/captures/chunk-codec.ts acceptChunk) and then
   * stores and forwards these very bytes.
   */
  chunk: Uint8Array;
  stats: CaptureStatsWire;
}

export interface CaptureEndedMessage {
  type: 'capture_ended';
  captureId: string;
  reason: CaptureEndReason;
  /** Number of chunks sent in total (the last seq + 1). */
  chunks: number;
  error?: { code: string; message: string };
  /** With reason `stopped`: the customer stopped the agent (Ctrl-C), not an engineer. Missing reads as false. bye+ */
  byCustomer?: boolean;
}

/**
 * One frame of a dumped thread, innermost first. The one dump-thread shape:
 * `periscope dump --json` prints it, the agent sends it, the relay stores it
 * and the web shows it, each after parseDumpThreads.
 */
export interface DumpFrame {
  name: string;
  filename: string;
  short_filename: string;
  line: number;
}

/** One thread of `periscope dump --json`. */
export interface DumpThread {
  pid: number;
  thread_id: number;
  /** -1: a thread state not bound to an OS thread yet (started, not yet running). dump+ */
  os_thread_id: number;
  thread_name: string | null;
  active: boolean;
  owns_gil: boolean;
  /** The reader stopped before the outermost frame: too deep, or torn while the target ran. dump+ */
  truncated: boolean;
  frames: DumpFrame[];
}

/**
 * Bounds of a dump result. The native reader stops at 4096 frames per thread
 * and 4096 code points per string (native/src: kMaxFrames, kMaxStringBytes),
 * which is at most 8192 UTF-16 characters; the totals are more than a message
 * of MAX_MESSAGE_BYTES can hold anyway, so they only stop what is not a dump.
 */
export const DUMP_LIMITS = { threads: 65_536, framesPerThread: 4096, frames: 500_000, textChars: 8192 } as const;

/**
 * One asyncio task of `periscope dump --async --json` (Python 3.14+, read
 * from the target's AsyncioDebug section). The ids are the task objects'
 * addresses, as `python -m asyncio ps` shows them.
 */
export interface DumpTask {
  pid: number;
  task_id: number;
  /** Ident of the thread whose task list holds it (its event loop's thread); null: the interpreter's list (that thread exited). */
  thread_id: number | null;
  /** The task's name; asyncio's counter names read as "Task-N"; null: unreadable. */
  name: string | null;
  /** Its thread's currently running task. */
  running: boolean;
  /** The coroutine chain was torn, cyclic or deeper than the reader follows. */
  truncated: boolean;
  /** Its coroutines, innermost (the one awaiting a future) first. */
  frames: DumpFrame[];
  /** task_ids of the tasks (of the same process) awaiting this one. */
  awaited_by: number[];
}

/** Whether a process's tasks could be read, and if not why. */
export interface DumpTaskSource {
  pid: number;
  /** null: read; else why not (Python before 3.14, asyncio never imported, a table that fails its checks). */
  unavailable: string | null;
  /** A task list was torn, cyclic or longer than the reader walks: some tasks may be missing. */
  truncated: boolean;
}

/** `periscope dump --async --json`: the threads, plus the tasks of every dumped process. */
export interface AsyncDump {
  threads: DumpThread[];
  tasks: DumpTask[];
  task_sources: DumpTaskSource[];
}

/** Native readers stop at 65536 tasks per process and 1024 coroutines per task (native/src/asyncio_tasks.h). */
export const TASK_LIMITS = { tasks: 65_536, framesPerTask: 1024, awaitedBy: 65_536, sources: 65_536 } as const;

export interface DumpResultMessage {
  type: 'dump_result';
  captureId: string;
  /** The same JSON as `periscope dump --json`. */
  threads: DumpThread[];
  /** asyncio tasks, as `periscope dump --async --json` (agents that read them; Python 3.14+ has them). */
  asyncio?: DumpTasks;
}

/** A dump's asyncio part: the tasks and, per process, whether they could be read. */
export interface DumpTasks {
  tasks: DumpTask[];
  task_sources: DumpTaskSource[];
}

// ---- relay → agent --------------------------------------------------------

export interface WelcomeMessage {
  type: 'welcome';
  protocol: number;
  agentId: string;
  sessionId: string;
  /** Credential for reconnects (only after a join token was presented). */
  credential?: string;
  /** For each capture in hello.captures the relay knows: the next seq it needs. */
  resume: { captureId: string; nextSeq: number }[];
}

export interface StartCaptureMessage {
  type: 'start_capture';
  captureId: string;
  spec: CaptureSpec;
  /** Who asked, shown on the customer's terminal. */
  requestedBy: string;
}

export interface StopCaptureMessage {
  type: 'stop_capture';
  captureId: string;
  requestedBy: string;
}

export interface AckMessage {
  type: 'ack';
  captureId: string;
  /** Every chunk with seq < nextSeq is stored. */
  nextSeq: number;
}

export interface ListProcessesMessage {
  type: 'list_processes';
}

/** Either side: a request could not be honoured. */
export interface ErrorMessage {
  type: 'error';
  captureId?: string;
  code: string;
  message: string;
}

export type AgentToRelay = HelloMessage | ProcessesMessage | ChunkMessage | CaptureEndedMessage | DumpResultMessage | ErrorMessage;
export type RelayToAgent = WelcomeMessage | StartCaptureMessage | StopCaptureMessage | AckMessage | ListProcessesMessage | ErrorMessage;

// ---- browser ⇄ relay (/ws/ui) -------------------------------------------

export interface UiSubscribeSession {
  type: 'subscribe_session';
  sessionId: string;
}
export interface UiWatchCapture {
  type: 'watch_capture';
  captureId: string;
}
export interface UiUnwatchCapture {
  type: 'unwatch_capture';
  captureId: string;
}
export type UiToRelay = UiSubscribeSession | UiWatchCapture | UiUnwatchCapture;

/**
 * Why an agent is gone for good (bye+): `customer`, it closed with
 * CloseCode.AgentExit (Ctrl-C on the customer's side); `session_closed`, the
 * relay sent it away when the session was closed or expired. An offline
 * agent without a reason lost its connection and may come back.
 */
export const AGENT_END_REASONS = ['customer', 'session_closed'] as const;
export type AgentEndReason = (typeof AGENT_END_REASONS)[number];

export interface UiAgentState {
  id: string;
  host: string;
  containerId: string;
  arch: string;
  agentVersion: string;
  online: boolean;
  processes: ProcessInfo[];
  /** The user the agent runs as; missing when the agent did not say (older agents). bye+ */
  user?: string;
  /** Set once the agent is gone for good, and why; missing while it is online or may come back. bye+ */
  ended?: AgentEndReason;
}
/** Every agent of the session: sent once on subscribe_session, and again only when the viewer must rebuild (it fell behind). */
export interface UiSessionState {
  type: 'session_state';
  sessionId: string;
  agents: UiAgentState[];
}
/**
 * Presence changes since the last session_state or session_agents, coalesced
 * (a few per second at most, however many agents come and go): apply on top
 * of the snapshot. ui+
 */
export interface UiSessionAgents {
  type: 'session_agents';
  sessionId: string; // ui+
  /** The whole current state of each agent that joined or changed; replaces what the viewer had for that id. New ids go last. ui+ */
  agents: UiAgentState[];
  /** Agents no longer shown: they left long ago and were pruned. ui+ */
  removed: string[];
}
export interface UiCaptureState {
  type: 'capture_state';
  captureId: string;
  status: CaptureStatus; // shared/capture-states.ts
  stats: CaptureStatsWire;
  /** Chunks stored when this was sent: a viewer of an ended capture has all of it once it holds this many. */
  chunks: number;
  error?: { code: string; message: string };
}
/**
 * Chunks of a watched capture: first the stored ones (snapshot), then live.
 * `chunk` is a nested map (a ProfileChunk, checked by applyChunk in the
 * browser); the relay writes it with encodeCaptureChunk from the bytes it stored.
 */
export interface UiCaptureChunk {
  type: 'capture_chunk';
  captureId: string;
  seq: number;
  chunk: unknown;
}
/** The viewer fell behind and must rebuild the capture from seq 0. */
export interface UiCaptureReset {
  type: 'capture_reset';
  captureId: string;
}
export interface UiDumpResult {
  type: 'dump_result';
  captureId: string;
  /** What the relay stored from a DumpResultMessage, checked again by parseRelayToUi. */
  threads: DumpThread[];
  asyncio?: DumpTasks;
}
export type RelayToUi = UiSessionState | UiSessionAgents | UiCaptureState | UiCaptureChunk | UiCaptureReset | UiDumpResult | ErrorMessage;

// ---- encoding -------------------------------------------------------------

// Encoding only: frames from peers are decoded by decodeFrame. No records,
// no structured clone, no bundled strings: what this writes is what
// decodeFrame accepts.
const packr = new Packr({ moreTypes: true, useRecords: false });

export function encode(message: AgentToRelay | RelayToAgent | UiToRelay | RelayToUi): Uint8Array {
  return packr.pack(message);
}

/**
 * A chunk as chunk.chunk carries it and the relay stores it: msgpack of the
 * ProfileChunk, typed-array columns as msgpackr's typed-array extension. A
 * Buffer in Node, so `encode` writes it as msgpack binary.
 */
export function encodeChunk(chunk: ProfileChunk): Uint8Array {
  return packr.pack(chunk);
}

const CAPTURE_CHUNK_KEY = packr.pack('chunk');
/** Frame memory: Node's pooled Buffers on the relay, which builds these frames (a fresh ArrayBuffer per frame costs more than the copy); a plain Uint8Array elsewhere. */
const allocFrame: (bytes: number) => Uint8Array = typeof Buffer === 'function' ? (bytes) => Buffer.allocUnsafe(bytes) : (bytes) => new Uint8Array(bytes);

/**
 * The capture_chunk frame for a chunk's stored bytes (encodeChunk's output,
 * checked when it was stored): byte for byte what
 * `encode({ type: 'capture_chunk', captureId, seq, chunk })` writes for the
 * decoded chunk, without decoding and encoding it again. The one frame not
 * written by `encode`: {type, captureId, seq} as `encode` writes it with its
 * entry count raised to 4, then the `chunk` key and the stored bytes as its value.
 */
export function encodeCaptureChunk(captureId: string, seq: number, chunkBytes: Uint8Array): Uint8Array {
  const head = packr.pack({ type: 'capture_chunk', captureId, seq } satisfies Omit<UiCaptureChunk, 'chunk'>);
  const frame = allocFrame(head.byteLength + CAPTURE_CHUNK_KEY.byteLength + chunkBytes.byteLength);
  frame.set(head, 0);
  // msgpackr writes an object's entry count as map 16 (0xde, then 2 bytes); a fixmap (0x80 + count) is handled too.
  if (head[0] === 0xde && head[1] === 0 && head[2] === 3) frame[2] = 4;
  else if (head[0] === 0x83) frame[0] = 0x84;
  else throw new Error(`capture_chunk header starts with 0x${head[0]?.toString(16)}, not a map of 3 entries`);
  frame.set(CAPTURE_CHUNK_KEY, head.byteLength);
  frame.set(chunkBytes, head.byteLength + CAPTURE_CHUNK_KEY.byteLength);
  return frame;
}

export class ProtocolError extends PeriscopeError {
  constructor(message: string) {
    super('BAD_MESSAGE', message);
    this.name = 'ProtocolError';
  }
}

/**
 * Decodes one received frame into an object with a string `type`, or throws
 * ProtocolError. The only way frames from a peer are decoded (see
 * shared/untrusted-msgpack.ts for what is accepted, and why).
 */
export function decodeFrame(data: Uint8Array): Record<string, unknown> & { type: string } {
  if (data.byteLength > MAX_MESSAGE_BYTES) throw new ProtocolError(`message of ${data.byteLength} bytes exceeds ${MAX_MESSAGE_BYTES}`);
  let value: unknown;
  try {
    value = decodeUntrusted(data);
  } catch (err) {
    if (!isPeriscopeError(err)) throw err;
    throw new ProtocolError(`not a msgpack message: ${err.message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new ProtocolError('a message must be a map');
  }
  const type = (value as { type?: unknown }).type;
  if (typeof type !== 'string') throw new ProtocolError('a message needs a string `type`');
  return value as Record<string, unknown> & { type: string };
}

// ---- field checks -----------------------------------------------------------

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

function field(m: Record<string, unknown>, name: string): unknown {
  return m[name];
}

function strAt(v: unknown, where: string, max: number): string {
  if (typeof v !== 'string') throw new ProtocolError(`${where} must be a string`);
  if (v.length > max) throw new ProtocolError(`${where} is longer than ${max} characters`);
  return v;
}

function intAt(v: unknown, where: string, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ProtocolError(`${where} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function boolAt(v: unknown, where: string): boolean {
  if (typeof v !== 'boolean') throw new ProtocolError(`${where} must be true or false`);
  return v;
}

function str(m: Record<string, unknown>, name: string, max = 4096): string {
  return strAt(field(m, name), `${String(m.type)}.${name}`, max);
}

function id(m: Record<string, unknown>, name: string): string {
  const v = str(m, name, 64);
  if (!ID_RE.test(v)) throw new ProtocolError(`${String(m.type)}.${name} is not a valid id`);
  return v;
}

function int(m: Record<string, unknown>, name: string, min: number, max: number): number {
  return intAt(field(m, name), `${String(m.type)}.${name}`, min, max);
}

function num(m: Record<string, unknown>, name: string, min: number, max: number): number {
  const v = field(m, name);
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new ProtocolError(`${String(m.type)}.${name} must be a number from ${min} to ${max}`);
  }
  return v;
}

function bool(m: Record<string, unknown>, name: string): boolean {
  return boolAt(field(m, name), `${String(m.type)}.${name}`);
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) throw new ProtocolError(`${what} must be a map`);
  return v as Record<string, unknown>;
}

function list(m: Record<string, unknown>, name: string, max: number): unknown[] {
  const v = field(m, name);
  if (!Array.isArray(v)) throw new ProtocolError(`${String(m.type)}.${name} must be a list`);
  if (v.length > max) throw new ProtocolError(`${String(m.type)}.${name} has more than ${max} entries`);
  return v;
}

/** A msgpack map's first byte: fixmap, map 16, map 32. */
function isMapToken(t: number | undefined): boolean {
  return t !== undefined && ((t >= 0x80 && t <= 0x8f) || t === 0xde || t === 0xdf);
}

/**
 * chunk.chunk (v2): the bytes of one msgpack map of the subset decodeFrame
 * accepts. Checked here like the frame around them, so bytes that are not
 * such msgpack are refused the way a malformed frame is; what the map holds
 * is the relay's to check when it stores it.
 */
function chunkBytes(m: Record<string, unknown>, name: string): Uint8Array {
  const v = field(m, name);
  const where = `${String(m.type)}.${name}`;
  if (!(v instanceof Uint8Array)) {
    const is = v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a map' : `a ${typeof v}`;
    throw new ProtocolError(`${where} must be the chunk's msgpack as binary (protocol ${PROTOCOL_VERSION}: encodeChunk), not ${is}`);
  }
  try {
    checkUntrustedMsgpack(v);
  } catch (err) {
    if (!isPeriscopeError(err)) throw err;
    throw new ProtocolError(`${where} is not a msgpack chunk: ${err.message}`);
  }
  if (!isMapToken(v[0])) throw new ProtocolError(`${where} must hold a msgpack map (a profile chunk)`);
  return v;
}

function errorField(m: Record<string, unknown>): { code: string; message: string } | undefined {
  if (m.error === undefined) return undefined;
  const e = obj(m.error, `${String(m.type)}.error`);
  return { code: str(e, 'code', 64), message: str(e, 'message', 4096) };
}

function captureMode(s: Record<string, unknown>): CaptureMode {
  const mode = str(s, 'mode', 8);
  if (!isCaptureMode(mode)) throw new ProtocolError(`capture spec.mode must be one of ${CAPTURE_MODES.join(', ')}`);
  return mode;
}

export function parseCaptureSpec(v: unknown): CaptureSpec {
  const s = obj(v, 'capture spec');
  const kind = str(s, 'kind', 16);
  if (!(CAPTURE_KINDS as readonly string[]).includes(kind)) throw new ProtocolError(`capture kind must be one of ${CAPTURE_KINDS.join(', ')}`);
  return {
    kind: kind as CaptureKind,
    pid: int(s, 'pid', 1, 2 ** 31 - 1),
    rate: int(s, 'rate', 1, 100_000),
    duration: num(s, 'duration', 0, 7 * 24 * 3600),
    subprocesses: bool(s, 'subprocesses'),
    mode: captureMode(s),
    idle: bool(s, 'idle'),
    gil: bool(s, 'gil'),
    blocking: bool(s, 'blocking'),
  };
}

function parseStats(v: unknown): CaptureStatsWire {
  const s = obj(v, 'stats');
  const count = (n: string) => int(s, n, 0, Number.MAX_SAFE_INTEGER);
  return Object.fromEntries(CAPTURE_STAT_NAMES.map((name) => [name, count(name)])) as CaptureStatsWire;
}

function parseProcess(v: unknown): ProcessInfo {
  const p = obj(v, 'process');
  const info: ProcessInfo = {
    pid: int(p, 'pid', 1, 2 ** 31 - 1),
    cmdline: str(p, 'cmdline', 8192),
    version: str(p, 'version', 64),
    user: str(p, 'user', 256),
    threads: int(p, 'threads', 0, 1_000_000),
  };
  // bye+: optional, and left out when missing (older agents).
  if (p.ppid !== undefined) info.ppid = int(p, 'ppid', 0, 2 ** 31 - 1);
  if (p.startedAt !== undefined) info.startedAt = int(p, 'startedAt', 0, Number.MAX_SAFE_INTEGER);
  return info;
}

function parseResumeList(m: Record<string, unknown>, name: string): { captureId: string; nextSeq: number }[] {
  return list(m, name, 1000).map((e) => {
    const r = obj(e, `${String(m.type)}.${name}[]`);
    return { captureId: id(r, 'captureId'), nextSeq: int(r, 'nextSeq', 0, 2 ** 31 - 1) };
  });
}

/**
 * Dump threads, checked field by field and rebuilt with the known fields only
 * (what the relay stores is what was checked). `where` names the list in errors.
 */
export function parseDumpThreads(value: unknown, where: string): DumpThread[] {
  if (!Array.isArray(value)) throw new ProtocolError(`${where} must be a list`);
  if (value.length > DUMP_LIMITS.threads) throw new ProtocolError(`${where} has more than ${DUMP_LIMITS.threads} entries`);
  const text = DUMP_LIMITS.textChars;
  let frameCount = 0;
  return value.map((tv, i) => {
    const tw = `${where}[${i}]`;
    const t = obj(tv, tw);
    const frames = t.frames;
    if (!Array.isArray(frames)) throw new ProtocolError(`${tw}.frames must be a list`);
    if (frames.length > DUMP_LIMITS.framesPerThread) throw new ProtocolError(`${tw}.frames has more than ${DUMP_LIMITS.framesPerThread} entries`);
    frameCount += frames.length;
    if (frameCount > DUMP_LIMITS.frames) throw new ProtocolError(`${where} hold more than ${DUMP_LIMITS.frames} frames in all`);
    return {
      pid: intAt(t.pid, `${tw}.pid`, 1, 2 ** 31 - 1),
      // CPython's thread ids are pthread_t values: unsigned 64-bit.
      thread_id: intAt(t.thread_id, `${tw}.thread_id`, 0, 2 ** 64),
      os_thread_id: intAt(t.os_thread_id, `${tw}.os_thread_id`, -1, 2 ** 31 - 1),
      thread_name: t.thread_name === null ? null : strAt(t.thread_name, `${tw}.thread_name`, text),
      active: boolAt(t.active, `${tw}.active`),
      owns_gil: boolAt(t.owns_gil, `${tw}.owns_gil`),
      truncated: t.truncated === undefined ? false : boolAt(t.truncated, `${tw}.truncated`),
      frames: frames.map((fv, j) => parseDumpFrame(fv, `${tw}.frames[${j}]`)),
    };
  });
}

function parseDumpFrame(fv: unknown, fw: string): DumpFrame {
  const text = DUMP_LIMITS.textChars;
  const f = obj(fv, fw);
  return {
    name: strAt(f.name, `${fw}.name`, text),
    filename: strAt(f.filename, `${fw}.filename`, text),
    short_filename: strAt(f.short_filename, `${fw}.short_filename`, text),
    line: intAt(f.line, `${fw}.line`, -(2 ** 31), 2 ** 31 - 1),
  };
}

function listAt(v: unknown, where: string, max: number): unknown[] {
  if (!Array.isArray(v)) throw new ProtocolError(`${where} must be a list`);
  if (v.length > max) throw new ProtocolError(`${where} has more than ${max} entries`);
  return v;
}

/** Dump tasks, checked field by field and rebuilt with the known fields only, as parseDumpThreads. */
export function parseDumpTasks(value: unknown, where: string): DumpTask[] {
  const text = DUMP_LIMITS.textChars;
  // Task ids are user-space addresses: below 2^53, exact as JSON numbers.
  const taskId = (v: unknown, w: string) => intAt(v, w, 1, Number.MAX_SAFE_INTEGER);
  return listAt(value, where, TASK_LIMITS.tasks).map((tv, i) => {
    const tw = `${where}[${i}]`;
    const t = obj(tv, tw);
    return {
      pid: intAt(t.pid, `${tw}.pid`, 1, 2 ** 31 - 1),
      task_id: taskId(t.task_id, `${tw}.task_id`),
      thread_id: t.thread_id === null ? null : intAt(t.thread_id, `${tw}.thread_id`, 1, 2 ** 64),
      name: t.name === null ? null : strAt(t.name, `${tw}.name`, text),
      running: boolAt(t.running, `${tw}.running`),
      truncated: boolAt(t.truncated, `${tw}.truncated`),
      frames: listAt(t.frames, `${tw}.frames`, TASK_LIMITS.framesPerTask).map((fv, j) => parseDumpFrame(fv, `${tw}.frames[${j}]`)),
      awaited_by: listAt(t.awaited_by, `${tw}.awaited_by`, TASK_LIMITS.awaitedBy).map((v, j) => taskId(v, `${tw}.awaited_by[${j}]`)),
    };
  });
}

/** A dump's asyncio part, checked as parseDumpTasks does. */
export function parseDumpTasksPart(value: unknown, where: string): DumpTasks {
  const d = obj(value, where);
  return {
    tasks: parseDumpTasks(d.tasks, `${where}.tasks`),
    task_sources: listAt(d.task_sources, `${where}.task_sources`, TASK_LIMITS.sources).map((sv, i) => {
      const sw = `${where}.task_sources[${i}]`;
      const src = obj(sv, sw);
      return {
        pid: intAt(src.pid, `${sw}.pid`, 1, 2 ** 31 - 1),
        unavailable: src.unavailable === null ? null : strAt(src.unavailable, `${sw}.unavailable`, DUMP_LIMITS.textChars),
        truncated: boolAt(src.truncated, `${sw}.truncated`),
      };
    }),
  };
}

/** `periscope dump --async --json` output, checked as parseDumpThreads and parseDumpTasks do. */
export function parseAsyncDump(value: unknown, where: string): AsyncDump {
  const d = obj(value, where);
  return { threads: parseDumpThreads(d.threads, `${where}.threads`), ...parseDumpTasksPart(d, where) };
}

function parseStatus(m: Record<string, unknown>): CaptureStatus {
  const status = str(m, 'status', 32);
  if (!isCaptureStatus(status)) throw new ProtocolError(`capture_state.status must be one of ${CAPTURE_STATUSES.join(', ')}, not ${JSON.stringify(status)}`);
  return status;
}

function parseEndReason(m: Record<string, unknown>): CaptureEndReason {
  const reason = str(m, 'reason', 32);
  if (!(CAPTURE_END_REASONS as readonly string[]).includes(reason)) {
    throw new ProtocolError(`capture_ended.reason must be one of ${CAPTURE_END_REASONS.join(', ')}, not ${JSON.stringify(reason)}`);
  }
  return reason as CaptureEndReason;
}

function parseError(m: Record<string, unknown>): ErrorMessage {
  return {
    type: 'error',
    captureId: m.captureId === undefined ? undefined : id(m, 'captureId'),
    code: str(m, 'code', 64),
    message: str(m, 'message', 4096),
  };
}

/** Validates a frame from an agent. */
export function parseAgentMessage(data: Uint8Array): AgentToRelay {
  const m = decodeFrame(data);
  switch (m.type) {
    case 'hello':
      return {
        type: 'hello',
        protocol: int(m, 'protocol', 0, 1_000_000),
        agentVersion: str(m, 'agentVersion', 64),
        host: str(m, 'host', 255),
        containerId: str(m, 'containerId', 128),
        arch: str(m, 'arch', 32),
        ...(m.user === undefined ? {} : { user: str(m, 'user', 256) }),
        captures: parseResumeList(m, 'captures'),
      };
    case 'processes':
      return { type: 'processes', processes: list(m, 'processes', 10_000).map(parseProcess) };
    case 'chunk':
      return {
        type: 'chunk',
        captureId: id(m, 'captureId'),
        seq: int(m, 'seq', 0, 2 ** 31 - 1),
        chunk: chunkBytes(m, 'chunk'),
        stats: parseStats(m.stats),
      };
    case 'capture_ended':
      return {
        type: 'capture_ended',
        captureId: id(m, 'captureId'),
        reason: parseEndReason(m),
        chunks: int(m, 'chunks', 0, 2 ** 31 - 1),
        error: errorField(m),
        ...(m.byCustomer === undefined ? {} : { byCustomer: bool(m, 'byCustomer') }),
      };
    case 'dump_result':
      return { type: 'dump_result', captureId: id(m, 'captureId'), threads: parseDumpThreads(m.threads, `${m.type}.threads`), ...(m.asyncio === undefined ? {} : { asyncio: parseDumpTasksPart(m.asyncio, `${m.type}.asyncio`) }) };
    case 'error':
      return parseError(m);
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(m.type.slice(0, 40))} from an agent`);
  }
}

/** Validates a frame from the relay (on the agent). */
export function parseRelayMessage(data: Uint8Array): RelayToAgent {
  return parseRelayFrame(data).message;
}

/** Like parseRelayMessage, also returning the decoded frame before validation dropped unknown fields (the agent's locals check reads it). */
export function parseRelayFrame(data: Uint8Array): { message: RelayToAgent; raw: Record<string, unknown> } {
  const raw = decodeFrame(data);
  return { message: relayMessageFrom(raw), raw };
}

function relayMessageFrom(m: Record<string, unknown> & { type: string }): RelayToAgent {
  switch (m.type) {
    case 'welcome':
      return {
        type: 'welcome',
        protocol: int(m, 'protocol', 0, 1_000_000),
        agentId: id(m, 'agentId'),
        sessionId: id(m, 'sessionId'),
        credential: m.credential === undefined ? undefined : str(m, 'credential', 4096),
        resume: parseResumeList(m, 'resume'),
      };
    case 'start_capture':
      return { type: 'start_capture', captureId: id(m, 'captureId'), spec: parseCaptureSpec(m.spec), requestedBy: str(m, 'requestedBy', 256) };
    case 'stop_capture':
      return { type: 'stop_capture', captureId: id(m, 'captureId'), requestedBy: str(m, 'requestedBy', 256) };
    case 'ack':
      return { type: 'ack', captureId: id(m, 'captureId'), nextSeq: int(m, 'nextSeq', 0, 2 ** 31 - 1) };
    case 'list_processes':
      return { type: 'list_processes' };
    case 'error':
      return parseError(m);
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(m.type.slice(0, 40))} from the relay`);
  }
}

/** Validates a frame from a browser. */
export function parseUiMessage(data: Uint8Array): UiToRelay {
  const m = decodeFrame(data);
  switch (m.type) {
    case 'subscribe_session':
      return { type: 'subscribe_session', sessionId: id(m, 'sessionId') };
    case 'watch_capture':
      return { type: 'watch_capture', captureId: id(m, 'captureId') };
    case 'unwatch_capture':
      return { type: 'unwatch_capture', captureId: id(m, 'captureId') };
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(m.type.slice(0, 40))} from a browser`);
  }
}

function parseUiAgent(v: unknown): UiAgentState {
  const a = obj(v, 'agent');
  const agent: UiAgentState = {
    id: id(a, 'id'),
    host: str(a, 'host', 255),
    containerId: str(a, 'containerId', 128),
    arch: str(a, 'arch', 32),
    agentVersion: str(a, 'agentVersion', 64),
    online: bool(a, 'online'),
    processes: list(a, 'processes', 10_000).map(parseProcess),
  };
  if (a.user !== undefined) agent.user = str(a, 'user', 256);
  if (a.ended !== undefined) {
    const ended = str(a, 'ended', 32);
    if (!(AGENT_END_REASONS as readonly string[]).includes(ended)) throw new ProtocolError(`agent.ended must be one of ${AGENT_END_REASONS.join(', ')}, not ${JSON.stringify(ended)}`);
    agent.ended = ended as AgentEndReason;
  }
  return agent;
}

/** Validates a frame from the relay (in the browser). */
export function parseRelayToUi(data: Uint8Array): RelayToUi {
  const m = decodeFrame(data);
  switch (m.type) {
    case 'session_state':
      return { type: 'session_state', sessionId: id(m, 'sessionId'), agents: list(m, 'agents', 10_000).map(parseUiAgent) };
    case 'session_agents':
      return {
        type: 'session_agents',
        sessionId: id(m, 'sessionId'),
        agents: list(m, 'agents', 10_000).map(parseUiAgent),
        removed: list(m, 'removed', 10_000).map((v, i) => {
          if (typeof v !== 'string' || !ID_RE.test(v)) throw new ProtocolError(`session_agents.removed[${i}] is not a valid id`);
          return v;
        }),
      };
    case 'capture_state':
      return { type: 'capture_state', captureId: id(m, 'captureId'), status: parseStatus(m), stats: parseStats(m.stats), chunks: int(m, 'chunks', 0, 2 ** 31 - 1), error: errorField(m) };
    case 'capture_chunk':
      return { type: 'capture_chunk', captureId: id(m, 'captureId'), seq: int(m, 'seq', 0, 2 ** 31 - 1), chunk: obj(m.chunk, 'chunk') };
    case 'capture_reset':
      return { type: 'capture_reset', captureId: id(m, 'captureId') };
    case 'dump_result':
      return { type: 'dump_result', captureId: id(m, 'captureId'), threads: parseDumpThreads(m.threads, `${m.type}.threads`), ...(m.asyncio === undefined ? {} : { asyncio: parseDumpTasksPart(m.asyncio, `${m.type}.asyncio`) }) };
    case 'error':
      return { type: 'error', code: str(m, 'code', 64), message: str(m, 'message', 4096) };
    default:
      throw new ProtocolError(`unknown message type ${JSON.stringify(m.type.slice(0, 40))} from the relay`);
  }
}
