// The data dir holds the signing key, password hashes and captured stacks of
// customer code: nobody but the relay's own user may read any of it.
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeSync, fsyncSync } from 'node:fs';
import { join } from 'node:path';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o600;

export function ensureDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  // mkdir leaves an existing directory's mode alone; tighten it anyway.
  chmodSync(dir, DIR_MODE);
  mkdirSync(join(dir, 'captures'), { recursive: true, mode: DIR_MODE });
  chmodSync(join(dir, 'captures'), DIR_MODE);
}

/** Creates `path` with `contents` (0600, fsync'd) unless it exists; returns what the file holds. */
export function readOrCreateSecretFile(path: string, create: () => Buffer): Buffer {
  if (existsSync(path)) {
    chmodSync(path, FILE_MODE);
    return readFileSync(path);
  }
  const contents = create();
  // 'wx' fails if another relay raced us to it; then the other one's key wins.
  const fd = openSync(path, 'wx', FILE_MODE);
  try {
    writeSync(fd, contents);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return contents;
}
