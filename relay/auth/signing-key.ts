// The relay's HS256 key signs every token it issues (browser sessions, join
// tokens, agent credentials). Generated on first start; restarts reuse it so
// issued tokens stay valid.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { readOrCreateSecretFile } from '../store/data-dir.ts';

const KEY_BYTES = 32;

export function loadSigningKey(dataDir: string): Uint8Array {
  const key = readOrCreateSecretFile(join(dataDir, 'signing-key'), () => randomBytes(KEY_BYTES));
  if (key.length < KEY_BYTES) throw new Error(`${join(dataDir, 'signing-key')} is shorter than ${KEY_BYTES} bytes; delete it to generate a new one (this signs everyone out)`);
  return new Uint8Array(key);
}
