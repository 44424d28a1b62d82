// Errors the HTTP API returns as `{error: {code, message}}`. The code is stable
// (clients branch on it; shared/errors.ts lists them); the message names the
// cause and the fix, for humans. The status comes from error-status.ts.
import { PeriscopeError, type ErrorCode } from '../../shared/errors.ts';
import type { ErrorBody } from '../../shared/http-views.ts';

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}

export const notFound = (what: string): PeriscopeError =>
  new PeriscopeError('NOT_FOUND', `no ${what} with that id is visible to you; check the id, or ask a member of its support session to add you`);
