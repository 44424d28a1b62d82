import { randomBytes } from 'node:crypto';

/** 128 random bits, URL-safe, and inside the protocol's id pattern [A-Za-z0-9_-]{1,64}. */
export function newId(): string {
  return randomBytes(16).toString('base64url');
}
