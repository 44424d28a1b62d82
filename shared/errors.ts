// One error class for the whole project so callers (relay, CLI, web) can branch on a
// stable `code` instead of parsing messages, which are for humans and may change.

export const ErrorCode = {
  /** A caller passed a value the API does not accept (bug in the caller). */
  InvalidArgument: 'INVALID_ARGUMENT',
  /** A profile chunk is malformed or references rows that do not exist. */
  InvalidChunk: 'INVALID_CHUNK',
  /** A well-formed chunk that does not continue the profile it is applied to (lost, repeated or reordered chunk). */
  ChunkOutOfSequence: 'CHUNK_OUT_OF_SEQUENCE',
  /** An export would exceed the largest string the runtime can build; stream it instead. */
  ExportTooLarge: 'EXPORT_TOO_LARGE',
  /** The relay's data dir is full: the write was refused (HTTP 507) or held until there is room. */
  DiskFull: 'DISK_FULL',
  /** A stored capture's chunk file lost data; only the part before the damage reads back. */
  CaptureDamaged: 'CAPTURE_DAMAGED',
} as const;

export type KnownErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class PeriscopeError extends Error {
  // Plain string so other modules can add codes without editing this file;
  // ErrorCode lists the ones defined so far.
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PeriscopeError';
    this.code = code;
  }
}

export function isPeriscopeError(value: unknown, code?: string): value is PeriscopeError {
  return value instanceof PeriscopeError && (code === undefined || value.code === code);
}
