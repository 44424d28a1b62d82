// Errors the HTTP API returns as `{error: {code, message}}`. The code is stable
// (clients branch on it); the message names the cause and the fix, for humans.
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { PeriscopeError } from '../../shared/errors.ts';

export class ApiError extends PeriscopeError {
  readonly status: ContentfulStatusCode;
  readonly headers: Record<string, string>;

  constructor(status: ContentfulStatusCode, code: string, message: string, headers: Record<string, string> = {}) {
    super(code, message);
    this.name = 'ApiError';
    this.status = status;
    this.headers = headers;
  }
}

export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

export const notFound = (what: string): ApiError =>
  new ApiError(404, 'NOT_FOUND', `no ${what} with that id is visible to you; check the id, or ask a member of its support session to add you`);
