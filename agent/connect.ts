// `periscope connect RELAY_URL`: the customer's side of a support session.
// Dials out to the relay (no inbound port), lists this container's Python
// processes for the engineer, takes the dumps and captures they ask for
// within the customer's limits, and prints every request here. Ctrl-C ends
// everything.
import { PeriscopeError } from '../shared/errors.ts';
import { CloseCode } from '../shared/protocol.ts';
import { parseArgs, usage, type OptionSpec } from './args.ts';
import { AGENT_VERSION } from './version.ts';
import { DEFAULT_MAX_DURATION_S, DEFAULT_MAX_RATE, MAX_CONCURRENT_CAPTURES, parsePids, type AgentLimits } from './remote/bounds.ts';
import { RelayConnection } from './remote/connection.ts';
import { RemoteSession } from './remote/session.ts';
import { sanitize, TerminalLog } from './remote/terminal-log.ts';
import { loadJoinToken, Redactor, rejectTokenInArgv, TOKEN_ENV, TOKEN_HELP } from './remote/token.ts';

const MAX_RATE_LIMIT = 100_000;
const MAX_DURATION_LIMIT_S = 7 * 24 * 3600;
/** How long Ctrl-C waits for the last chunks to reach the relay. */
const SHUTDOWN_DELIVERY_MS = 3000;

const connectSpecs: OptionSpec[] = [
  { name: 'token-file', type: 'string', description: `read the join token from FILE (mode 0600 or stricter) instead of $${TOKEN_ENV}` },
  { name: 'pids', type: 'string', description: 'only offer these processes, e.g. --pids 12,34 (default: every Python process this agent can see)' },
  { name: 'max-rate', type: 'number', description: 'refuse captures asking for more samples per second', default: DEFAULT_MAX_RATE },
  { name: 'max-duration', type: 'number', description: 'refuse captures asking for longer (seconds); "until stopped" captures end after it', default: DEFAULT_MAX_DURATION_S },
  { name: 'allow-locals', type: 'boolean', description: 'allow requests for local variables (this version never collects them; see below)' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

const HELP = `${usage(
  'connect RELAY_URL [--token-file FILE] [--pids 12,34] [--max-rate N] [--max-duration S] [--allow-locals]',
  `Connects this machine to a support session on the relay at RELAY_URL (https://…), so that
the support engineer can list its Python processes and take dumps, live top views and
recordings of them. The agent dials out (no inbound port) and prints every request here:
who asked, what, for which process, at what rate and for how long. Ctrl-C ends everything.`,
  connectSpecs,
)}

${TOKEN_HELP}

What the engineer can do through this agent, and nothing else: list the Python processes
visible here (pid, command line, Python version, user, thread count), dump their stacks,
and sample them (top, record) within --max-rate and --max-duration, on the processes of
--pids if given (and their children, when a capture asks to follow subprocesses), at most
${MAX_CONCURRENT_CAPTURES} captures at once. No shell, no file reads. Local variables are never collected by
this version; requests for them are refused, and --allow-locals only changes the message.
Captures keep sampling while the connection is down (up to 64 MiB of unsent data) and
resume where the relay left off.`;

/** Splits RELAY_URL (the one positional argument) from the flags. */
function splitPositional(argv: string[]): { positional: string[]; flags: string[] } {
  const takesValue = new Set(connectSpecs.filter((s) => s.type !== 'boolean').flatMap((s) => [`--${s.name}`, ...(s.short ? [`-${s.short}`] : [])]));
  const positional: string[] = [];
  const flags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      flags.push(arg);
      if (takesValue.has(arg) && i + 1 < argv.length) flags.push(argv[++i]!);
    } else {
      positional.push(arg);
    }
  }
  return { positional, flags };
}

/** The agent endpoint and a printable name for RELAY_URL. */
export function relayEndpoint(relayUrl: string): { url: string; display: string; encrypted: boolean; loopback: boolean } {
  let u: URL;
  try {
    u = new URL(relayUrl);
  } catch {
    throw new PeriscopeError('BAD_ARGUMENT', `RELAY_URL is not a URL (expected e.g. https://relay.example.com)`);
  }
  const scheme = ({ 'http:': 'ws:', 'https:': 'wss:', 'ws:': 'ws:', 'wss:': 'wss:' } as Record<string, string>)[u.protocol];
  if (!scheme) throw new PeriscopeError('BAD_ARGUMENT', `RELAY_URL must start with https:// (or http:// for a local relay), not ${u.protocol}//`);
  if (u.username || u.password) {
    throw new PeriscopeError('BAD_ARGUMENT', `RELAY_URL must not carry a user name or password; the token goes in ${TOKEN_ENV} or --token-file`);
  }
  if (u.search || u.hash) throw new PeriscopeError('BAD_ARGUMENT', 'RELAY_URL must not carry a query or fragment; give just the relay address');
  let path = u.pathname.replace(/\/+$/, '');
  if (path.endsWith('/ws/agent')) path = path.slice(0, -'/ws/agent'.length);
  const httpScheme = scheme === 'wss:' ? 'https:' : 'http:';
  const host = u.hostname.replace(/^\[|\]$/g, '');
  return {
    url: `${scheme}//${u.host}${path}/ws/agent`,
    display: `${httpScheme}//${u.host}${path}`,
    encrypted: scheme === 'wss:',
    loopback: host === 'localhost' || host === '::1' || /^127\./.test(host),
  };
}

function limitsFrom(options: Record<string, boolean | number | string | undefined>): AgentLimits {
  const maxRate = options['max-rate'] as number;
  if (!(Number.isInteger(maxRate) && maxRate >= 1 && maxRate <= MAX_RATE_LIMIT)) {
    throw new PeriscopeError('BAD_ARGUMENT', `--max-rate must be a whole number of samples per second from 1 to ${MAX_RATE_LIMIT}, got ${maxRate}`);
  }
  const maxDuration = options['max-duration'] as number;
  if (!(maxDuration > 0 && maxDuration <= MAX_DURATION_LIMIT_S)) {
    throw new PeriscopeError('BAD_ARGUMENT', `--max-duration must be a number of seconds above 0 and at most ${MAX_DURATION_LIMIT_S} (a week), got ${maxDuration}`);
  }
  let allowedPids: Set<number> | undefined;
  if (options.pids !== undefined) {
    try {
      allowedPids = parsePids(String(options.pids));
    } catch (err) {
      throw new PeriscopeError('BAD_ARGUMENT', (err as Error).message);
    }
  }
  return { maxRate, maxDurationS: maxDuration, allowLocals: options['allow-locals'] === true, allowedPids };
}

export interface ConnectTestHooks {
  /** Overrides for tests: timings of the connection and the session. */
  pingIntervalMs?: number;
  deadAfterMs?: number;
  bufferBytes?: number;
}

function testHooksFromEnv(): ConnectTestHooks {
  // Only for the test suite: shorter heartbeats and a smaller buffer, so
  // dead connections and a full buffer can be tested in seconds.
  const raw = process.env.PERISCOPE_CONNECT_TEST_HOOKS;
  if (!raw) return {};
  try {
    const v = JSON.parse(raw) as Record<string, unknown>;
    const n = (k: string) => (typeof v[k] === 'number' && (v[k] as number) > 0 ? (v[k] as number) : undefined);
    return { pingIntervalMs: n('pingIntervalMs'), deadAfterMs: n('deadAfterMs'), bufferBytes: n('bufferBytes') };
  } catch {
    return {};
  }
}

export async function runConnect(argv: string[]): Promise<number> {
  // Before anything else reads argv, so that no message can repeat a token.
  rejectTokenInArgv(argv);
  const { positional, flags } = splitPositional(argv);
  const { options } = parseArgs(flags, connectSpecs);
  if (options.help) {
    console.log(HELP);
    return 0;
  }
  if (positional.length !== 1) {
    throw new PeriscopeError('BAD_ARGUMENT', positional.length === 0 ? 'RELAY_URL is required: periscope connect https://relay.example.com' : 'give exactly one RELAY_URL');
  }
  const endpoint = relayEndpoint(positional[0]!);
  const limits = limitsFrom(options);
  const { token, origin, ignoredEnv } = loadJoinToken({ tokenFile: options['token-file'] as string | undefined });

  const redactor = new Redactor();
  redactor.add(token);
  const log = new TerminalLog({ redactor });
  const hooks = testHooksFromEnv();

  log.line(`periscope agent ${AGENT_VERSION}: connecting to ${endpoint.display} with the join token from ${sanitize(origin, 200)}${ignoredEnv ? ` (${TOKEN_ENV} is ignored)` : ''}`);
  if (!endpoint.encrypted && !endpoint.loopback) log.line(`warning: ${endpoint.display} is not https; the token and the profiles travel unencrypted`);
  log.line(
    `limits: at most ${limits.maxRate} Hz (--max-rate), ${limits.maxDurationS} s per capture (--max-duration), ` +
      `${limits.allowedPids ? `only pids ${[...limits.allowedPids].join(', ')} (--pids)` : 'any Python process visible here (--pids to restrict)'}, ` +
      `never local variables. Every request is printed here; Ctrl-C ends everything.`,
  );

  const session = new RemoteSession({ limits, log, bufferBytes: hooks.bufferBytes });
  const connection = new RelayConnection({
    url: endpoint.url,
    displayUrl: endpoint.display,
    token,
    handler: session,
    log,
    redactor,
    pingIntervalMs: hooks.pingIntervalMs,
    deadAfterMs: hooks.deadAfterMs,
  });

  let interrupted: Promise<void> | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      log.line('second interrupt: quitting at once');
      process.exit(130);
    }
    interrupted = (async () => {
      const running = [...session.streams.values()].filter((s) => s.running).length;
      log.line(`${signal === 'SIGINT' ? 'Ctrl-C' : signal}: ${running > 0 ? `stopping ${running} capture${running === 1 ? '' : 's'} and ` : ''}disconnecting`);
      // The customer ends the agent on purpose: its captures end saying so, and the
      // close code (AgentExit) tells the relay not to wait for it to come back.
      const { undelivered } = await session.shutdown(session.connected ? SHUTDOWN_DELIVERY_MS : 500, { byCustomer: true });
      for (const u of undelivered) log.line(`capture ${u.captureId}: ${u.chunks} chunks could not be delivered to the relay`);
      await connection.stop('agent stopped by the customer', 2000, CloseCode.AgentExit);
    })();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const outcome = await connection.run();
    if (interrupted) {
      await interrupted;
      log.line('disconnected; no capture is running');
      return 0;
    }
    // The relay ended the session (or refused us) for good.
    await session.shutdown(0);
    log.line(outcome.message);
    return outcome.exitCode;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
