// Writing the CLI's output file. A record can be minutes of samples: when the
// chosen path cannot be written (a missing directory, permissions, a full
// disk), the file goes to the temp dir instead and the user is told where,
// rather than losing the capture.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { PeriscopeError } from '../shared/errors.ts';
import { inertText } from '../shared/export/inert-text.ts';

function reason(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}

/** Writes `data` to `path`, or to a copy in the temp dir; returns where it went. */
export function writeOutput(path: string, data: string | Uint8Array): string {
  try {
    writeFileSync(path, data);
    return path;
  } catch (first) {
    const fallback = join(tmpdir(), `periscope-${process.pid}-${basename(path) || 'output'}`);
    try {
      writeFileSync(fallback, data, { flag: 'wx', mode: 0o600 });
    } catch (second) {
      throw new PeriscopeError(
        'OUTPUT_FAILED',
        `cannot write ${inertText(path)} (${reason(first)}) nor ${fallback} (${reason(second)}); free some disk space or give another --output`,
      );
    }
    process.stderr.write(`periscope: cannot write ${inertText(path)} (${reason(first)}); wrote ${fallback} instead\n`);
    return fallback;
  }
}
