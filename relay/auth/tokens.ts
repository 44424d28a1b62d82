// Every token the relay issues is an HS256 JWT whose audience says what it is
// for, so one kind can never be replayed as another:
//   periscope:web    browser sign-in (cookie), sub = user id, jti = web_logins row
//   periscope:join   support-session join token, sid = session, jti = join_tokens row
//   periscope:agent  agent credential for reconnects, sub = agent id, sid = session
import { SignJWT, errors, jwtVerify, type JWTPayload } from 'jose';

export const AUD_WEB = 'periscope:web';
export const AUD_JOIN = 'periscope:join';
export const AUD_AGENT = 'periscope:agent';
const ISSUER = 'periscope-relay';
const ALG = 'HS256';

export interface WebClaims {
  userId: string;
  loginId: string;
}
export interface JoinClaims {
  sessionId: string;
  jti: string;
}
export interface AgentClaims {
  agentId: string;
  sessionId: string;
}

/** Why a token was refused; the relay only ever says "refused" to the caller, this is for logs and metrics. */
export type TokenFailure = 'missing' | 'malformed' | 'bad_signature' | 'expired' | 'wrong_audience' | 'invalid';

export class TokenError extends Error {
  readonly reason: TokenFailure;
  constructor(reason: TokenFailure, message: string) {
    super(message);
    this.name = 'TokenError';
    this.reason = reason;
  }
}

function unixSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

export class TokenService {
  // Imported once: handing jose the raw bytes re-imports the key on every sign and verify,
  // a quarter of the relay's CPU per agent when a crowd joins.
  #key: Promise<CryptoKey>;
  constructor(key: Uint8Array) {
    this.#key = crypto.subtle.importKey('raw', new Uint8Array(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
  }

  async #sign(payload: JWTPayload, audience: string, subject: string, expiresAtMs: number): Promise<string> {
    const key = await this.#key;
    return new SignJWT(payload)
      .setProtectedHeader({ alg: ALG, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime(unixSeconds(expiresAtMs))
      .sign(key);
  }

  signWeb(c: WebClaims, expiresAtMs: number): Promise<string> {
    return this.#sign({ jti: c.loginId }, AUD_WEB, c.userId, expiresAtMs);
  }

  signJoin(c: JoinClaims, expiresAtMs: number): Promise<string> {
    return this.#sign({ jti: c.jti, sid: c.sessionId }, AUD_JOIN, c.sessionId, expiresAtMs);
  }

  signAgent(c: AgentClaims, expiresAtMs: number): Promise<string> {
    return this.#sign({ sid: c.sessionId }, AUD_AGENT, c.agentId, expiresAtMs);
  }

  /** Verifies signature, issuer, expiry and that the audience is one of `audiences`. */
  async verify(token: string, audiences: readonly string[]): Promise<{ audience: string; payload: JWTPayload }> {
    if (!token) throw new TokenError('missing', 'no token');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await this.#key, { algorithms: [ALG], issuer: ISSUER, audience: [...audiences], requiredClaims: ['sub', 'exp'] }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) throw new TokenError('expired', 'token expired');
      if (err instanceof errors.JWSSignatureVerificationFailed) throw new TokenError('bad_signature', 'signature does not verify');
      if (err instanceof errors.JWTClaimValidationFailed && err.claim === 'aud') throw new TokenError('wrong_audience', 'token is for another audience');
      if (err instanceof errors.JOSEError) throw new TokenError('malformed', `token rejected: ${err.code}`);
      throw err;
    }
    const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const audience = audiences.find((a) => aud.includes(a));
    if (audience === undefined || aud.length !== 1) throw new TokenError('wrong_audience', 'token is for another audience');
    return { audience, payload };
  }

  async verifyWeb(token: string): Promise<WebClaims> {
    const { payload } = await this.verify(token, [AUD_WEB]);
    if (typeof payload.jti !== 'string') throw new TokenError('invalid', 'web token without jti');
    return { userId: payload.sub as string, loginId: payload.jti };
  }
}

export function joinClaims(payload: JWTPayload): JoinClaims {
  if (typeof payload.jti !== 'string' || typeof payload.sid !== 'string') throw new TokenError('invalid', 'join token without jti/sid');
  return { jti: payload.jti, sessionId: payload.sid };
}

export function agentClaims(payload: JWTPayload): AgentClaims {
  if (typeof payload.sid !== 'string' || typeof payload.sub !== 'string') throw new TokenError('invalid', 'agent credential without sub/sid');
  return { agentId: payload.sub, sessionId: payload.sid };
}
