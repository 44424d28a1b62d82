// The short code in `curl … /j/CODE | sh`: Crockford's base32 alphabet (no I, L,
// O, U, so it survives being read aloud or retyped), 10 characters = 50 bits.
import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const JOIN_CODE_LENGTH = 10;
export const JOIN_CODE_RE = /^[0-9A-HJKMNP-TV-Z]{10}$/;

export function generateJoinCode(): string {
  const bytes = randomBytes(JOIN_CODE_LENGTH);
  let code = '';
  // 256 is a multiple of 32, so taking the low 5 bits is unbiased.
  for (const b of bytes) code += ALPHABET[b & 31];
  return code;
}
