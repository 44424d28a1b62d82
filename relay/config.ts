// Relay configuration comes only from environment variables (documented in
// docs/api.md), so the same `npm start` works on a laptop, in a container and
// behind a process manager without a config file to lose.
import { resolve } from 'node:path';
import { PeriscopeError } from '../shared/errors.ts';
import { logFormatFromEnv, type LogFormat } from './log.ts';

export interface RelayConfig {
  /** 0 asks the OS for a free port (tests). */
  port: number;
  host: string;
  dataDir: string;
  /** Explicit PERISCOPE_PUBLIC_URL, or undefined to derive http(s)://localhost:PORT once the port is known. */
  publicUrl: string | undefined;
  adminPassword: string | undefined;
  tls: { certPath: string; keyPath: string } | undefined;
  heartbeatMs: number;
  /** How long a disconnected agent's running capture waits for the agent to come back. */
  captureGraceMs: number;
  /** Agents a session holds at once (online, or gone less than agentRetentionMs); one more is refused with SESSION_FULL. */
  maxAgentsPerSession: number;
  /** An agent that left this long ago is pruned from presence and stops counting towards the cap. */
  agentRetentionMs: number;
  /** Origins, besides the public URL's, whose pages may send state-changing requests and open /ws/ui (PERISCOPE_TRUSTED_ORIGINS). */
  trustedOrigins: string[];
  /** PERISCOPE_DATABASE_URL (postgres://…): all state in PostgreSQL instead of the data dir. Secret: never logged. */
  databaseUrl: string | undefined;
  /** PERISCOPE_REDIS_URL (redis://…): relays route between each other through Redis. */
  redisUrl: string | undefined;
  /** PERISCOPE_SIGNING_KEY_FILE: the token-signing key from this file rather than the store. */
  signingKeyFile: string | undefined;
  /** PERISCOPE_LOG_FORMAT: readable lines (text, the default) or one JSON object per event (json). */
  logFormat: LogFormat;
}

/** Ceiling for PERISCOPE_MAX_AGENTS_PER_SESSION: what one session_state may list (shared/protocol.ts). */
export const MAX_AGENTS_PER_SESSION_LIMIT = 10_000;
export const DEFAULT_MAX_AGENTS_PER_SESSION = 1000;

function configError(message: string): never {
  throw new PeriscopeError('BAD_CONFIG', message);
}

// Only characters that need no quoting in a shell or Python one-liner: the
// public URL is pasted verbatim into the commands shown to customers.
const PUBLIC_URL_RE = /^https?:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?(\/[A-Za-z0-9._~/-]*)?$/;

export function normalizePublicUrl(value: string): string {
  const trimmed = value.trim().replace(/\/+$/, '');
  if (!PUBLIC_URL_RE.test(trimmed)) {
    configError(
      `PERISCOPE_PUBLIC_URL must be an http(s) URL made of letters, digits, '.', '-', ':' and '/' (it is pasted into shell one-liners); got ${JSON.stringify(value)}`,
    );
  }
  return trimmed;
}

/** PERISCOPE_TRUSTED_ORIGINS: comma-separated origins (scheme://host[:port], nothing after). */
export function parseTrustedOrigins(value: string | undefined): string[] {
  if (value === undefined || value.trim() === '') return [];
  return value.split(',').map((raw) => {
    const item = raw.trim();
    let url: URL | undefined;
    try {
      url = new URL(item);
    } catch {
      url = undefined;
    }
    const bare = url !== undefined && url.pathname === '/' && !item.endsWith('/') && url.search === '' && url.hash === '' && url.username === '' && url.password === '';
    if (!url || !bare || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
      configError(`PERISCOPE_TRUSTED_ORIGINS must be a comma-separated list of origins like https://periscope.example.com or http://10.0.0.5:8080 (scheme, host and port only); got ${JSON.stringify(item)}`);
    }
    // Normalized as browsers send it (lower-case host, no default port).
    return url.origin;
  });
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) configError(`${name} must be an integer from ${min} to ${max}; got ${JSON.stringify(raw)}`);
  return n;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): RelayConfig {
  const port = integer(env, 'PORT', 8080, 0, 65535);
  const cert = env.PERISCOPE_TLS_CERT || undefined;
  const key = env.PERISCOPE_TLS_KEY || undefined;
  if ((cert === undefined) !== (key === undefined)) {
    configError('set both PERISCOPE_TLS_CERT and PERISCOPE_TLS_KEY (PEM file paths) to serve https, or neither to serve http');
  }
  return {
    port,
    host: env.HOST || '0.0.0.0',
    dataDir: resolve(env.PERISCOPE_DATA_DIR || './data'),
    publicUrl: env.PERISCOPE_PUBLIC_URL ? normalizePublicUrl(env.PERISCOPE_PUBLIC_URL) : undefined,
    adminPassword: env.PERISCOPE_ADMIN_PASSWORD || undefined,
    tls: cert !== undefined && key !== undefined ? { certPath: resolve(cert), keyPath: resolve(key) } : undefined,
    heartbeatMs: integer(env, 'PERISCOPE_HEARTBEAT_SECONDS', 15, 1, 3600) * 1000,
    captureGraceMs: integer(env, 'PERISCOPE_CAPTURE_GRACE_SECONDS', 60, 0, 86_400) * 1000,
    maxAgentsPerSession: integer(env, 'PERISCOPE_MAX_AGENTS_PER_SESSION', DEFAULT_MAX_AGENTS_PER_SESSION, 1, MAX_AGENTS_PER_SESSION_LIMIT),
    agentRetentionMs: integer(env, 'PERISCOPE_AGENT_RETENTION_SECONDS', 3600, 1, 30 * 86_400) * 1000,
    trustedOrigins: parseTrustedOrigins(env.PERISCOPE_TRUSTED_ORIGINS),
    databaseUrl: urlSetting(env, 'PERISCOPE_DATABASE_URL', ['postgres:', 'postgresql:'], 'postgres://USER:PASSWORD@HOST:5432/DATABASE'),
    redisUrl: urlSetting(env, 'PERISCOPE_REDIS_URL', ['redis:', 'rediss:'], 'redis://HOST:6379'),
    signingKeyFile: env.PERISCOPE_SIGNING_KEY_FILE ? resolve(env.PERISCOPE_SIGNING_KEY_FILE) : undefined,
    logFormat: logFormatFromEnv(env),
  };
}

/** A connection URL from the environment, checked for its scheme; the message never repeats the value (it may hold a password). */
function urlSetting(env: NodeJS.ProcessEnv, name: string, schemes: string[], example: string): string | undefined {
  const value = env[name];
  if (!value) return undefined;
  let scheme: string;
  try {
    scheme = new URL(value).protocol;
  } catch {
    configError(`${name} is not a URL; set it like ${example}`);
  }
  if (!schemes.includes(scheme)) configError(`${name} must start with ${schemes.map((s) => `${s}//`).join(' or ')} (like ${example}), not ${scheme}//`);
  return value;
}

/**
 * Origins whose pages may send state-changing requests and open /ws/ui: the
 * public URL's and PERISCOPE_TRUSTED_ORIGINS. Never derived from a request's
 * Host header: a DNS-rebinding page sends a Host of its own name with a
 * matching Origin. Without PERISCOPE_PUBLIC_URL, the loopback names on the
 * bound port also count, so a plain `npm start` works at localhost or 127.0.0.1.
 */
export function allowedOrigins(config: RelayConfig, boundPort: number): ReadonlySet<string> {
  const origins = new Set<string>([new URL(effectivePublicUrl(config, boundPort)).origin, ...config.trustedOrigins]);
  if (config.publicUrl === undefined) {
    const scheme = config.tls ? 'https' : 'http';
    for (const host of ['localhost', '127.0.0.1', '[::1]']) origins.add(`${scheme}://${host}:${boundPort}`);
  }
  return origins;
}

/**
 * What the relay prints at start when PERISCOPE_PUBLIC_URL is not set: the
 * one-liners then point at `url` (localhost), which a customer's container
 * cannot reach. The session page shows the same warning (SessionView.publicUrl).
 */
export function publicUrlWarning(url: string): string[] {
  return [
    `warning: PERISCOPE_PUBLIC_URL is not set, so the customer one-liners point at ${url}, which works only on this machine.`,
    '         Set it to the address customers reach this relay by and restart, e.g. PERISCOPE_PUBLIC_URL=https://periscope.example.com npm start',
  ];
}

/** The URL customers and browsers use; defaults to localhost on the port actually bound. */
export function effectivePublicUrl(config: RelayConfig, boundPort: number): string {
  return config.publicUrl ?? `${config.tls ? 'https' : 'http'}://localhost:${boundPort}`;
}
