// scrypt (memory-hard, in node:crypto) with a random salt per user. The stored
// form names its parameters, so the cost can be raised without breaking old
// hashes: a hash below the current cost still verifies, and the sign-in that
// proves the password replaces it (needsRehash).
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

/** OWASP's current scrypt guidance: N = 2^17, r = 8, p = 1 (128 MiB per hash). */
export const SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
/** Highest cost a stored hash may name: a forged or corrupt row must not make the relay allocate gigabytes. */
const MAX_N = 2 ** 20;
/**
 * Hashes at once. Each takes 128 MiB and a libuv thread for a good fraction of
 * a second; two at a time bounds the memory a burst of sign-ins can take and
 * leaves the other threads of the pool to file I/O. The rest wait their turn.
 */
const MAX_CONCURRENT = 2;

let running = 0;
const waiting: (() => void)[] = [];

async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= MAX_CONCURRENT) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await fn();
  } finally {
    // Hand the place straight to the next in line (running stays the same), or give it back.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function derive(password: string, salt: Buffer, n: number, r: number, p: number, length: number): Promise<Buffer> {
  return limited(
    () =>
      new Promise((resolve, reject) => {
        // scrypt needs 128·N·r bytes; node's default maxmem (32 MiB) is below that for N = 2^17.
        scrypt(password.normalize('NFKC'), salt, length, { N: n, r, p, maxmem: 128 * n * r + 16 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
      }),
  );
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p, KEY_LENGTH);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64url')}$${key.toString('base64url')}`;
}

function parse(stored: string): { n: number; r: number; p: number; salt: Buffer; key: Buffer } | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [n, r, p] = parts.slice(1, 4).map(Number);
  if (!Number.isInteger(n) || n < 2 || n > MAX_N || (n & (n - 1)) !== 0) return undefined;
  if (!Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) return undefined;
  const key = Buffer.from(parts[5], 'base64url');
  if (key.length < 16) return undefined;
  return { n, r, p, salt: Buffer.from(parts[4], 'base64url'), key };
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const h = parse(stored);
  if (!h) return false;
  const actual = await derive(password, h.salt, h.n, h.r, h.p, h.key.length);
  return timingSafeEqual(actual, h.key);
}

/** True when `stored` was made at a lower cost than hashPassword uses now: replace it once the password is proven. */
export function needsRehash(stored: string): boolean {
  const h = parse(stored);
  return h === undefined || h.n < SCRYPT.N || h.r < SCRYPT.r || h.p < SCRYPT.p || h.key.length < KEY_LENGTH;
}

// Verifying against this when the username is unknown makes "no such user" take
// as long as "wrong password", so timing does not reveal which accounts exist.
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  decoy ??= hashPassword(randomBytes(16).toString('hex'));
  return decoy;
}

/** A password for the first admin when none was configured: ~100 bits, easy to type. */
export function generatePassword(): string {
  return randomBytes(15).toString('base64url').replace(/[-_]/g, 'x');
}
