// Where the agent's join token comes from, and how it is kept out of sight.
//
// The token is a bearer secret: whoever holds it can act as this agent in the
// support session. So it is read from the environment (PERISCOPE_TOKEN) or
// from a file that only its owner can read (mode 0600 or stricter), never
// from argv (any user on the host sees argv in `ps`), never put in a URL
// (URLs end up in proxy and access logs) and never printed: every line the
// agent writes goes through a Redactor that knows the secrets in use and the
// shape of a JWT.
import { closeSync, fstatSync, openSync, readSync, constants } from 'node:fs';
import { PeriscopeError } from '../../shared/errors.ts';

export const TOKEN_ENV = 'PERISCOPE_TOKEN';
const MAX_TOKEN_FILE_BYTES = 64 * 1024;
const MAX_TOKEN_LENGTH = 8192;

export const TOKEN_HELP = `The join token is the secret that lets this agent join the support session.
It is read from the environment variable ${TOKEN_ENV} (the one-liner from the
support engineer sets it), or from a file given with --token-file FILE that
only its owner can read (chmod 600 FILE). It is never accepted on the command
line (every user of this host could read it in \`ps\`), never sent in a URL and
never printed. After the first connection the relay hands the agent its own
credential, kept in memory only, and the join token is not used again.`;

export interface LoadedToken {
  token: string;
  /** For messages: "PERISCOPE_TOKEN" or the file's path. Never the token. */
  origin: string;
}

/** A JWT (three base64url parts, header starting `{"` = `eyJ`). */
const JWT_RE = /eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;

export function looksLikeToken(text: string): boolean {
  JWT_RE.lastIndex = 0;
  return JWT_RE.test(text);
}

function badToken(message: string): PeriscopeError {
  return new PeriscopeError('BAD_TOKEN', message);
}

function checkTokenText(raw: string, origin: string): string {
  const token = raw.trim();
  if (token === '') throw badToken(`${origin} is empty; it must hold the join token from the support engineer`);
  if (token.length > MAX_TOKEN_LENGTH) throw badToken(`${origin} holds ${token.length} characters, more than a token has (at most ${MAX_TOKEN_LENGTH})`);
  // Printable ASCII without spaces: anything else cannot travel in an HTTP header.
  if (!/^[\x21-\x7e]+$/.test(token)) throw badToken(`${origin} holds characters a token cannot have (spaces, control characters or non-ASCII)`);
  return token;
}

/** Error code for a credential from the relay that this agent will not use. */
export const BAD_CREDENTIAL = 'BAD_CREDENTIAL';
export const MIN_CREDENTIAL_LENGTH = 32;
export const MAX_CREDENTIAL_LENGTH = 4096;
/** RFC 6750's b64token: the characters a bearer token may have (the relay's credentials are JWTs, a subset). */
const CREDENTIAL_RE = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Checks the agent credential a relay's welcome hands out before it is used
 * for anything. It goes into the Authorization header of every reconnect
 * (a CR or LF there makes the HTTP client throw, and would split the header),
 * and it is cut out of every line printed, so text that is not a plausible
 * bearer token -- a short word, a sentence -- must not become the secret the
 * customer's log is censored for. The value is never repeated in the error.
 */
export function checkCredential(credential: string): string {
  const fix = 'The relay is misbehaving or is not a Periscope relay: check RELAY_URL. This agent keeps its current connection; after a disconnect it joins again with the join token, as a new agent, while that token is valid.';
  if (credential.length < MIN_CREDENTIAL_LENGTH || credential.length > MAX_CREDENTIAL_LENGTH) {
    throw new PeriscopeError(
      BAD_CREDENTIAL,
      `the relay sent an agent credential of ${credential.length} characters; a credential has ${MIN_CREDENTIAL_LENGTH} to ${MAX_CREDENTIAL_LENGTH}. ${fix}`,
    );
  }
  if (!CREDENTIAL_RE.test(credential)) {
    throw new PeriscopeError(
      BAD_CREDENTIAL,
      `the relay sent an agent credential with characters an Authorization header cannot carry (only A-Z a-z 0-9 - . _ ~ + / and trailing =). ${fix}`,
    );
  }
  return credential;
}

/**
 * Refuses any attempt to pass a token on the command line, before anything
 * else reads argv (so no later error message can echo it). The argument
 * itself is never repeated.
 */
export function rejectTokenInArgv(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): void {
  const envToken = env[TOKEN_ENV]?.trim();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const flag = /^--?(token|jwt|credential|auth|bearer)(=|$)/i.test(arg);
    const secret = looksLikeToken(arg) || (envToken !== undefined && envToken.length >= 8 && arg.includes(envToken));
    if (flag || secret) {
      throw new PeriscopeError(
        'BAD_ARGUMENT',
        `argument ${i + 1} looks like a token; a token is never accepted on the command line (every user of this host can read it in \`ps\`). ` +
          `Put it in the environment variable ${TOKEN_ENV}, or in a file only you can read and pass --token-file FILE.`,
      );
    }
  }
}

/** Reads the token from a file that must be a regular file with no group/other permissions. */
export function readTokenFile(path: string): LoadedToken {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' ? 'cannot be read by this user' : `cannot be opened (${code ?? String(err)})`;
    throw badToken(`token file ${path} ${why}`);
  }
  try {
    // fstat on the open descriptor: the file checked is the file read.
    const st = fstatSync(fd);
    if (!st.isFile()) throw badToken(`token file ${path} is not a regular file`);
    const mode = st.mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw badToken(
        `token file ${path} can be read or written by other users (mode ${mode.toString(8).padStart(4, '0')}); ` +
          `it must be 0600 or stricter: run \`chmod 600 ${path}\``,
      );
    }
    if (st.size > MAX_TOKEN_FILE_BYTES) throw badToken(`token file ${path} is ${st.size} bytes, too large to be a token`);
    const buf = Buffer.alloc(Math.min(MAX_TOKEN_FILE_BYTES, Math.max(1, st.size)) + 1);
    let len = 0;
    for (;;) {
      const n = readSync(fd, buf, len, buf.length - len, null);
      if (n === 0) break;
      len += n;
      if (len >= buf.length) throw badToken(`token file ${path} is too large to be a token`);
    }
    return { token: checkTokenText(buf.subarray(0, len).toString('utf8'), `token file ${path}`), origin: path };
  } finally {
    closeSync(fd);
  }
}

/**
 * The join token: from --token-file if given, else from PERISCOPE_TOKEN.
 * The variable is removed from this process's environment once read, so
 * nothing the agent might start inherits it.
 */
export function loadJoinToken(options: { tokenFile?: string; env?: NodeJS.ProcessEnv }): LoadedToken & { ignoredEnv: boolean } {
  const env = options.env ?? process.env;
  const fromEnv = env[TOKEN_ENV];
  delete env[TOKEN_ENV];
  if (options.tokenFile !== undefined) {
    if (looksLikeToken(options.tokenFile)) {
      throw new PeriscopeError('BAD_ARGUMENT', '--token-file takes the name of a file holding the token, not the token itself');
    }
    return { ...readTokenFile(options.tokenFile), ignoredEnv: fromEnv !== undefined && fromEnv.trim() !== '' };
  }
  if (fromEnv === undefined || fromEnv.trim() === '') {
    throw badToken(`no join token: set ${TOKEN_ENV} or pass --token-file FILE (a file only you can read, chmod 600)`);
  }
  return { token: checkTokenText(fromEnv, TOKEN_ENV), origin: TOKEN_ENV, ignoredEnv: false };
}

/** Replaces secrets in text meant for a human or a log. */
export class Redactor {
  #secrets = new Set<string>();

  /** Remembers a secret (join token, agent credential) to cut out of every line. */
  add(secret: string | undefined): void {
    if (secret && secret.length >= 6) this.#secrets.add(secret);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.#secrets) if (out.includes(s)) out = out.split(s).join('[redacted]');
    JWT_RE.lastIndex = 0;
    out = out.replace(JWT_RE, '[redacted]');
    return out.replace(/\b(Bearer)\s+[^\s"',;]+/gi, '$1 [redacted]');
  }
}
