// The one place a Periscope error code becomes an HTTP status. Domain code
// (relay/captures, relay/sessions, relay/store, relay/auth) throws
// PeriscopeError with a registry code and knows nothing of HTTP; the app's
// error handler (app.ts) looks the status up here. A code without an entry is
// a bug on the relay's side when it reaches HTTP: it is logged and answered
// 500 INTERNAL, so no internal detail leaks.
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { ErrorCode } from '../../shared/errors.ts';

export const HTTP_STATUS = {
  BAD_ARGUMENT: 400,
  BAD_JSON: 400,
  WEAK_PASSWORD: 400,
  UNAUTHENTICATED: 401,
  BAD_CREDENTIALS: 401,
  FORBIDDEN: 403,
  ACCOUNT_DISABLED: 403,
  WRONG_PASSWORD: 403,
  CSRF_ORIGIN: 403,
  CSRF_TOKEN: 403,
  NOT_FOUND: 404,
  USER_NOT_FOUND: 404,
  NO_AGENT_BINARY: 404,
  USERNAME_TAKEN: 409,
  CANNOT_DISABLE_SELF: 409,
  LAST_ADMIN: 409,
  SESSION_CLOSED: 409,
  AGENT_OFFLINE: 409,
  AGENT_UNREACHABLE: 503,
  REDIS_UNREACHABLE: 503,
  TOO_MANY_CAPTURES: 409,
  CAPTURE_NOT_ACTIVE: 409,
  CAPTURE_EMPTY: 409,
  CAPTURE_DAMAGED: 409,
  BODY_TOO_LARGE: 413,
  EXPORT_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_ATTEMPTS: 429,
  // A download whose stored data would not render: the relay's fault, with the cause's own code.
  RENDER_FAILED: 500,
  INVALID_CHUNK: 500,
  CHUNK_OUT_OF_SEQUENCE: 500,
  INTERNAL: 500,
  BUSY: 503,
  DATABASE_UNREACHABLE: 503,
  DISK_FULL: 507,
} as const satisfies Partial<Record<ErrorCode, ContentfulStatusCode>>;

export function httpStatusOf(code: ErrorCode): ContentfulStatusCode | undefined {
  return (HTTP_STATUS as Partial<Record<ErrorCode, ContentfulStatusCode>>)[code];
}
