// The relay's log. Two shapes of the same calls:
//
// - text (the default): the lines the relay has always printed,
//   `periscope relay: <message>`, info on stdout and warnings/errors on stderr
//   as console.log/console.error put them, so people reading a terminal and
//   tests reading the relay's output see no change. Structured fields are not
//   printed, except `err`, whose stack is appended the way the relay's
//   `${message}: ${err.stack ?? String(err)}` lines always did.
// - json (PERISCOPE_LOG_FORMAT=json): one pino object per line on stderr
//   (level, time, pid, hostname, msg) plus `relay`, the id of this relay, so the
//   logs of several relays behind one load balancer can be merged and searched
//   by session, capture, request or agent. Keys that usually hold secrets are
//   redacted first, since JSON logs are shipped to places a terminal is not.
import { writeSync } from 'node:fs';
import { hostname } from 'node:os';
import pino from 'pino';
import { PeriscopeError } from '../shared/errors.ts';

export type LogFormat = 'json' | 'text';
export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];

/** Context for one line. Known keys are typed so call sites agree on their names. */
export interface LogFields {
  session?: string;
  capture?: string;
  request?: string;
  agent?: string;
  /** An error (or anything thrown): its stack in text mode, pino's err serializer in JSON. */
  err?: unknown;
  [key: string]: unknown;
}

export interface Log {
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A log that adds `fields` to every line (JSON mode; text lines stay as they are). */
  child(fields: LogFields): Log;
}

export interface LogOptions {
  /** This relay's id, the `relay` field of every JSON line. */
  relayId: string;
  /** Default 'text'. */
  format?: LogFormat;
  /** Where every line goes (a stream or a file descriptor). Default: text info → stdout, the rest → stderr; JSON → stderr. */
  destination?: NodeJS.WritableStream | number;
}

export const LOG_PREFIX = 'periscope relay: ';

/** Key names whose values never reach a JSON log (also Capitalized, as some header objects spell them). */
export const REDACTED_KEYS = ['token', 'password', 'credential', 'authorization', 'cookie'] as const;
// pino's redaction matches paths, not key names anywhere: list each key at the
// top level and a few levels down (fields like { headers: { authorization } }
// or { req: { headers: { cookie } } }). Deeper nesting is not something the
// relay logs.
const REDACT_DEPTH = 3;

function redactPaths(): string[] {
  const names = REDACTED_KEYS.flatMap((k) => [k, k[0]!.toUpperCase() + k.slice(1)]);
  const paths: string[] = [];
  for (let depth = 0; depth <= REDACT_DEPTH; depth++) for (const name of names) paths.push([...Array<string>(depth).fill('*'), name].join('.'));
  return paths;
}

/**
 * PERISCOPE_LOG_FORMAT: unset or empty → 'text'; 'text' or 'json' as given.
 * Anything else is refused rather than guessed, so a typo does not silently
 * send unparseable lines to a log pipeline.
 */
export function logFormatFromEnv(env: NodeJS.ProcessEnv = process.env): LogFormat {
  const raw = env.PERISCOPE_LOG_FORMAT;
  if (raw === undefined || raw.trim() === '') return 'text';
  const value = raw.trim();
  if ((LOG_FORMATS as readonly string[]).includes(value)) return value as LogFormat;
  throw new PeriscopeError('BAD_CONFIG', `PERISCOPE_LOG_FORMAT must be one of ${LOG_FORMATS.join(', ')} (or unset for text); got ${JSON.stringify(raw)}`);
}

export function createLog(options: LogOptions): Log {
  const format = options.format ?? 'text';
  if (!LOG_FORMATS.includes(format)) {
    throw new PeriscopeError('BAD_CONFIG', `log format must be one of ${LOG_FORMATS.join(', ')}; got ${JSON.stringify(format)}`);
  }
  return format === 'json' ? jsonLog(options) : textLog(options.destination);
}

// ---- text ---------------------------------------------------------------------------

type Write = (line: string) => void;

function writerTo(destination: NodeJS.WritableStream | number): Write {
  // A file descriptor is written synchronously, like console does for files
  // and pipes, so the last lines before a crash or process.exit are not lost.
  if (typeof destination === 'number') return (line) => writeSync(destination, line);
  return (line) => void destination.write(line);
}

/** `err` as the relay's lines have always shown it: the stack when there is one. */
function describeError(err: unknown): string {
  if (err instanceof Error) return err.stack ?? String(err);
  if (typeof err === 'object' && err !== null && typeof (err as { stack?: unknown }).stack === 'string') return (err as { stack: string }).stack;
  return String(err);
}

function textLine(message: string, fields: LogFields | undefined): string {
  const suffix = fields !== undefined && 'err' in fields && fields.err !== undefined ? `: ${describeError(fields.err)}` : '';
  return `${LOG_PREFIX}${message}${suffix}\n`;
}

function textLog(destination: NodeJS.WritableStream | number | undefined): Log {
  const out = destination === undefined ? writerTo(process.stdout) : writerTo(destination);
  const err = destination === undefined ? writerTo(process.stderr) : out;
  // Bound fields are not printed in text mode, so every child is the same log.
  const log: Log = {
    info: (message, fields) => out(textLine(message, fields)),
    warn: (message, fields) => err(textLine(message, fields)),
    error: (message, fields) => err(textLine(message, fields)),
    child: () => log,
  };
  return log;
}

// ---- json ---------------------------------------------------------------------------

function jsonLog(options: LogOptions): Log {
  const dest = options.destination;
  // Synchronous like the text lines (and console), so nothing logged just
  // before process.exit is dropped; a relay's log volume does not need
  // pino's asynchronous mode.
  const stream = typeof dest === 'number' || dest === undefined ? pino.destination({ dest: dest ?? 2, sync: true }) : dest;
  const logger = pino(
    {
      // pino's default base (pid, hostname) plus the relay id: which process on which machine, and which relay it was.
      base: { pid: process.pid, hostname: hostname(), relay: options.relayId },
      level: 'info',
      redact: { paths: redactPaths() },
    },
    stream,
  );
  return wrap(logger);
}

function wrap(logger: pino.Logger): Log {
  return {
    info: (message, fields) => logger.info(fields ?? {}, message),
    warn: (message, fields) => logger.warn(fields ?? {}, message),
    error: (message, fields) => logger.error(fields ?? {}, message),
    child: (fields) => wrap(logger.child(fields)),
  };
}

// ---- the process's log ----------------------------------------------------------------

let processLog: Log | undefined;

/**
 * The log every part of the relay writes to: set once by startRelay (with
 * the relay's id and format); readable lines until then, so code used
 * outside a relay (tests, tools) still reports.
 */
export function relayLog(): Log {
  return (processLog ??= createLog({ relayId: 'relay', format: 'text' }));
}

export function setRelayLog(log: Log): void {
  processLog = log;
}
