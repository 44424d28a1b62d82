// Relay configuration comes only from environment variables (documented in
// docs/api.md), so the same `npm start` works on a laptop, in a container and
// behind a process manager without a config file to lose.
import { resolve } from 'node:path';
import { PeriscopeError } from '../shared/errors.ts';

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
}

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
  };
}

/** The URL customers and browsers use; defaults to localhost on the port actually bound. */
export function effectivePublicUrl(config: RelayConfig, boundPort: number): string {
  return config.publicUrl ?? `${config.tls ? 'https' : 'http'}://localhost:${boundPort}`;
}
