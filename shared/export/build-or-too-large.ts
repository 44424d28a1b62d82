import { PeriscopeError } from '../errors.ts';

/**
 * Runs a string-building step, turning V8's "Invalid string length" (output over
 * ~512 MB) into a typed error callers can report instead of a crash.
 */
export function buildOrTooLarge(format: string, build: () => string): string {
  try {
    return build();
  } catch (error) {
    if (error instanceof RangeError) {
      throw new PeriscopeError('EXPORT_TOO_LARGE', `${format} export is too large to build as one string`, { cause: error });
    }
    throw error;
  }
}
