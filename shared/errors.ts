// Every stable error code Periscope emits, in one registry, and the one error
// class that carries them. Callers (relay, CLI, web, scripts) branch on the code;
// the message is for humans and may change. A new code is added here first:
// PeriscopeError only takes a code from this list, and
// test/shared/error-registry.test.ts fails on a code literal anywhere in the
// sources (wire messages, HTTP bodies, native/src/errors.h) that is missing here.
// The HTTP status of each code is the relay's business: relay/http/error-status.ts.

export const ERROR_CODES = {
  // ---- the caller's request -------------------------------------------------
  BAD_ARGUMENT: 'a flag, field, query parameter or value is missing, of the wrong type or out of bounds; the message names it',
  BAD_CONFIG: "a relay setting (PERISCOPE_* environment variable) has a value the relay cannot use",
  BAD_JSON: 'an HTTP request body is missing, not JSON, or not a JSON object',
  UNSUPPORTED_MEDIA_TYPE: 'an HTTP request body was not sent as Content-Type: application/json',
  BODY_TOO_LARGE: "an HTTP request body is over the relay's size limit",
  NOT_FOUND: 'no object (or endpoint) with that id is visible to the caller',
  // ---- accounts and sign-in -------------------------------------------------
  UNAUTHENTICATED: 'the request needs a signed-in engineer',
  BAD_CREDENTIALS: 'wrong username or password',
  TOO_MANY_ATTEMPTS: 'too many failed sign-ins for that account from that address; retry after Retry-After',
  FORBIDDEN: 'the signed-in engineer may not do this (admin only)',
  CSRF_ORIGIN: "a state-changing request came from another site's Origin",
  CSRF_TOKEN: 'a state-changing request is missing the X-CSRF-Token from /api/me, or it is wrong',
  WEAK_PASSWORD: 'a new password is too short or too long',
  USERNAME_TAKEN: 'an account with that username exists',
  USER_NOT_FOUND: 'no account has that username (or id)',
  ACCOUNT_DISABLED: 'the account is disabled by an admin: it cannot sign in, and its sign-ins were revoked',
  CANNOT_DISABLE_SELF: 'an admin tried to disable their own account (another admin must)',
  LAST_ADMIN: 'the change would leave the relay without an enabled admin',
  WRONG_PASSWORD: 'the current password given to change it is wrong',
  // ---- WebSocket upgrades and frames ----------------------------------------
  MISSING_TOKEN: 'an agent connected without an Authorization: Bearer token',
  BAD_TOKEN: 'a join token or agent credential is not valid for this relay',
  TOKEN_EXPIRED: 'a join token or agent credential has expired',
  TOKEN_REVOKED: 'a join token was revoked (rotated or its session closed)',
  TOKEN_IN_URL: 'a token was put in a URL, where it would end up in logs',
  BAD_ORIGIN: "a browser WebSocket did not come from the relay's own pages",
  BAD_REQUEST: 'a WebSocket upgrade request was malformed',
  UNSUPPORTED_PROTOCOL: "the agent speaks a protocol version the relay does not",
  BAD_MESSAGE: 'a WebSocket message was malformed or came out of order',
  MALFORMED_MSGPACK: 'untrusted msgpack bytes did not decode within the strict limits',
  AGENT_ERROR: 'the agent failed while handling a message from the relay',
  TOO_MANY_SUBSCRIPTIONS: 'a browser connection follows the most sessions it may',
  TOO_MANY_WATCHES: 'a browser connection watches the most captures it may',
  // ---- sessions and agents --------------------------------------------------
  SESSION_CLOSED: 'the support session has ended',
  SESSION_FULL: 'the support session has as many agents as the relay allows',
  AGENT_OFFLINE: 'the agent is not connected to the relay',
  AGENT_UNREACHABLE: 'the agent is connected to another relay, which this relay cannot reach now',
  REDIS_UNREACHABLE: 'the relay cannot reach Redis, which routes between relays',
  BAD_CREDENTIAL: 'the relay handed the agent a credential that cannot be a bearer token',
  // ---- captures -------------------------------------------------------------
  TOO_MANY_CAPTURES: 'the agent already runs as many captures as the relay allows',
  CAPTURE_NOT_ACTIVE: 'the capture has ended; it cannot be stopped or fed',
  UNKNOWN_CAPTURE: 'a message names a capture its receiver does not have',
  NOT_A_DUMP: 'a dump result arrived for a capture that is not a dump',
  CAPTURE_EMPTY: 'the capture has no samples (or no dump result) to download yet',
  CAPTURE_FAILED: 'the agent ended the capture with an error and gave no code',
  REFUSED_BY_AGENT: "the agent refused the capture (its bounds, or the customer's --pids)",
  DUMP_RATE_LIMITED: 'the agent refused a dump: too many dumps in a short time',
  AGENT_DISCONNECTED: 'the agent left and did not resume the capture within the grace period',
  AGENT_LOST_CAPTURE: 'the agent came back without the capture (it was restarted)',
  ENDED_BY_CUSTOMER: 'the customer stopped the agent (Ctrl-C) while the capture ran; what arrived before is kept',
  MISSING_CHUNKS: 'some chunks of an ended capture never arrived',
  CHUNKS_LOST: "the agent's offline buffer overflowed and dropped chunks",
  BUFFER_FULL: "the agent's offline buffer is full; sampling paused until the relay is back",
  CAPTURE_TOO_LARGE: "a capture grew over the relay's per-capture disk limit",
  CHUNK_TOO_LARGE: "one chunk is over the per-chunk size limit shared by writer and reader",
  RESULT_TOO_LARGE: "a dump result is over the protocol's size bounds",
  RESULT_INVALID: "a dump result is outside the protocol's bounds",
  // ---- profile data and downloads -------------------------------------------
  INVALID_CHUNK: 'a profile chunk is malformed or references rows that do not exist',
  CHUNK_OUT_OF_SEQUENCE: 'a well-formed chunk does not continue its profile (lost, repeated or reordered)',
  EXPORT_TOO_LARGE: 'an export would exceed the largest string the runtime can build',
  RENDER_FAILED: 'a download could not be rendered for a reason without its own code',
  BUSY: 'too many downloads are being rendered; retry after Retry-After',
  NO_AGENT_BINARY: 'the relay has no built agent binary to serve',
  // ---- relay storage --------------------------------------------------------
  DISK_FULL: "the relay's data dir is full: the write was refused or held until there is room",
  CAPTURE_DAMAGED: "a stored capture's chunk file lost data; only the part before the damage reads back",
  DATABASE_EMPTY: "the relay's database is empty or missing while its data dir holds data",
  DATABASE_DAMAGED: "the relay's database is damaged",
  DATABASE_UNREACHABLE: "the relay cannot reach its PostgreSQL database; it reconnects by itself once the database is back",
  INTERNAL: 'the relay hit an unexpected error (logged on the relay)',
  // ---- the sampler (native/src/errors.h) and the local agent ------------------
  NO_SUCH_PROCESS: 'no process has that pid (in this pid namespace)',
  NOT_PYTHON: 'no CPython interpreter was found in the process',
  PERMISSION_DENIED: "the agent may not read the process's memory (SYS_PTRACE, ptrace_scope)",
  UNSUPPORTED_VERSION: 'the Python version is not one the reader supports',
  PROCESS_EXITED: 'the target process exited',
  READ_FAILED: "reading the target's memory failed",
  MEMORY_UNREADABLE: "neither process_vm_readv nor /proc/PID/mem can be used to read the target's memory (a kernel, sandbox or PERISCOPE_MEMORY_READER setting rules both out)",
  NATIVE_MISSING: 'the native reader addon is not built',
  OUTPUT_FAILED: 'the CLI could not write its output file, nor a copy in the temp dir (path, permissions or a full disk)',
  ERROR: 'an agent-side failure with no code of its own',
  // ---- the web client -------------------------------------------------------
  NETWORK: 'the browser cannot reach the relay',
  TARGET_EXITED: 'shown when a capture ended because its target exited (capture status target_exited)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

/** A code from outside the type system (the native addon, a peer's message): kept when registered, else `fallback`. */
export function asErrorCode(value: unknown, fallback: ErrorCode): ErrorCode {
  return isErrorCode(value) ? value : fallback;
}

export interface PeriscopeErrorOptions extends ErrorOptions {
  /** For codes that mean "not now": when to try again. The HTTP layer turns it into Retry-After. */
  retryAfterSeconds?: number;
}

export class PeriscopeError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options?: PeriscopeErrorOptions) {
    super(message, options);
    this.name = 'PeriscopeError';
    this.code = code;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }
}

export function isPeriscopeError(value: unknown, code?: ErrorCode): value is PeriscopeError {
  return value instanceof PeriscopeError && (code === undefined || value.code === code);
}
