// The relay's HS256 key signs every token it issues (browser sessions, join
// tokens, agent credentials). Made on first start and kept by the store (a
// file in the embedded data dir, a row in PostgreSQL), so restarts — and
// every relay sharing the store — sign alike. PERISCOPE_SIGNING_KEY_FILE
// takes it from a file instead (a secret store's mount).
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PeriscopeError } from '../../shared/errors.ts';
import type { Store } from '../store/contract.ts';

export const KEY_BYTES = 32;

export async function loadSigningKey(store: Store, keyFile: string | undefined): Promise<Uint8Array> {
  let key: Uint8Array;
  let where: string;
  if (keyFile !== undefined) {
    where = keyFile;
    try {
      key = new Uint8Array(readFileSync(keyFile));
    } catch (err) {
      throw new PeriscopeError('BAD_CONFIG', `PERISCOPE_SIGNING_KEY_FILE ${keyFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); make it readable by the relay's user, or unset it to keep the key in the store`);
    }
  } else {
    where = store.engine === 'sqlite' ? 'the data dir file signing-key' : 'the signing_key table';
    key = await store.signingKey(() => new Uint8Array(randomBytes(KEY_BYTES)));
  }
  if (key.length < KEY_BYTES) {
    throw new PeriscopeError('BAD_CONFIG', `the token-signing key in ${where} is shorter than ${KEY_BYTES} bytes; replace it with ${KEY_BYTES} random bytes (e.g. head -c ${KEY_BYTES} /dev/urandom), which signs everyone out`);
  }
  return key;
}
