// The agent's WebSocket to the relay: dial out, say hello, wait for welcome,
// then pass every (validated) message to the session; keep the connection
// honest with heartbeats; when it drops, reconnect with full-jitter backoff
// until the relay says stop for good (a final close code or HTTP refusal).
//
//   - `${relay}/ws/agent`, `Authorization: Bearer <token>`: the join token
//     the first time, then the credential the relay's welcome hands out
//     (kept in memory only). Redirects are not followed (the header would
//     go along), per-message compression is off (CPU on the customer's box;
//     and no decompression bombs), maxPayload = MAX_MESSAGE_BYTES.
//   - Heartbeats: ws answers the relay's pings; we ping every 15 s and drop
//     a connection that has been silent (no message, ping or pong) for 45 s.
//   - Every frame goes through parseRelayFrame (the protocol's decoder for
//     untrusted bytes, then validation); a bad one is answered with an
//     `error` and skipped, and a relay that keeps sending them is hung up on
//     (BadMessage) and redialled.
//   - The credential a welcome hands out is checked (checkCredential) before
//     it goes into a header or the redactor; a bad one is refused with
//     BAD_CREDENTIAL and the agent carries on with what it has.
import WebSocket from 'ws';
import type { IncomingMessage } from 'node:http';
import {
  CloseCode,
  encode,
  FINAL_CLOSE_CODES,
  MAX_MESSAGE_BYTES,
  parseRelayFrame,
  PROTOCOL_VERSION,
  type AgentToRelay,
  type HelloMessage,
  type RelayToAgent,
  type WelcomeMessage,
} from '../../shared/protocol.ts';
import { Backoff } from './backoff.ts';
import type { Link } from './session.ts';
import { formatSeconds, sanitize, type TerminalLog } from './terminal-log.ts';
import { checkCredential, type Redactor } from './token.ts';
import { isPeriscopeError } from '../../shared/errors.ts';

export interface ConnectionHandler {
  hello(): HelloMessage;
  welcome(welcome: WelcomeMessage, link: Link): void;
  message(message: RelayToAgent, raw: Record<string, unknown>): void;
  linkLost(): void;
}

export interface ConnectionOptions {
  /** The agent endpoint, ws:// or wss://, e.g. wss://relay.example/ws/agent. */
  url: string;
  /** The relay as printed for the customer (no credentials, no query). */
  displayUrl: string;
  /** The join token; replaced by the relay's credential after the first welcome. */
  token: string;
  handler: ConnectionHandler;
  log: TerminalLog;
  redactor: Redactor;
  backoff?: Backoff;
  pingIntervalMs?: number;
  deadAfterMs?: number;
  /** From open to welcome. */
  welcomeTimeoutMs?: number;
  handshakeTimeoutMs?: number;
  /** Malformed frames tolerated per connection before hanging up. */
  maxBadFrames?: number;
}

/** Why the agent stopped for good. */
export interface Outcome {
  exitCode: number;
  message: string;
  closeCode?: number;
}

interface Attempt {
  opened: boolean;
  welcomed: boolean;
  welcomedAt: number;
  closeCode?: number;
  closeReason?: string;
  httpStatus?: number;
  httpBody?: string;
  error?: string;
  /** Set when this attempt decided the agent must stop. */
  final?: Outcome;
}

function describeClose(code: number | undefined, reason: string | undefined): string {
  const names: Record<number, string> = {
    1000: 'normal close',
    1001: 'relay going away',
    1006: 'connection dropped',
    1011: 'relay error',
    1012: 'relay restarting',
    [CloseCode.BadMessage]: 'bad message',
    [CloseCode.Timeout]: 'timed out',
    [CloseCode.Restarting]: 'relay restarting',
  };
  const name = code === undefined ? 'no close code' : `${code}${names[code] ? ` ${names[code]}` : ''}`;
  return reason ? `${name}: ${reason}` : name;
}

export class RelayConnection {
  #o: ConnectionOptions;
  #token: string;
  #usingCredential = false;
  #backoff: Backoff;
  #ws: WebSocket | undefined;
  #stopping = false;
  #wakeSleep: (() => void) | undefined;
  #closed: Promise<void> = Promise.resolve();
  #agentId = '';

  constructor(options: ConnectionOptions) {
    this.#o = options;
    this.#token = options.token;
    this.#backoff = options.backoff ?? new Backoff();
    options.redactor.add(options.token);
  }

  get agentId(): string {
    return this.#agentId;
  }

  /** Runs until a final close (or stop()); resolves with how the agent should exit. */
  async run(): Promise<Outcome> {
    while (!this.#stopping) {
      const attempt = await this.#connectOnce();
      if (attempt.final) return attempt.final;
      if (this.#stopping) break;
      if (attempt.welcomed) this.#backoff.connectionEnded(Date.now() - attempt.welcomedAt);
      const delay = this.#backoff.next();
      const why = attempt.httpStatus !== undefined
        ? `the relay answered HTTP ${attempt.httpStatus}${attempt.httpBody ? ` (${attempt.httpBody})` : ''}`
        : attempt.opened
          ? describeClose(attempt.closeCode, attempt.closeReason)
          : (attempt.error ?? 'no connection');
      this.#o.log.line(
        attempt.welcomed
          ? `connection to ${this.#o.displayUrl} lost (${why}); retrying in ${formatSeconds(delay / 1000)}`
          : `could not connect to ${this.#o.displayUrl} (${why}); retrying in ${formatSeconds(delay / 1000)}`,
      );
      await this.#sleep(delay);
    }
    return { exitCode: 0, message: 'stopped' };
  }

  /**
   * Closes with `code` (1000; CloseCode.AgentExit when the customer stops the
   * agent, so the relay records it as ended rather than lost) and stops
   * reconnecting; resolves once the socket is closed (at most `timeoutMs`).
   */
  async stop(reason = 'agent stopped by the customer', timeoutMs = 2000, code = 1000): Promise<void> {
    this.#stopping = true;
    this.#wakeSleep?.();
    const ws = this.#ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.OPEN) ws.close(code, reason);
    else if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    await Promise.race([this.#closed, new Promise((r) => setTimeout(r, timeoutMs).unref?.())]);
    if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#wakeSleep = done;
    });
  }

  #connectOnce(): Promise<Attempt> {
    const o = this.#o;
    const attempt: Attempt = { opened: false, welcomed: false, welcomedAt: 0 };
    const pingIntervalMs = o.pingIntervalMs ?? 15_000;
    const deadAfterMs = o.deadAfterMs ?? 45_000;
    const maxBad = o.maxBadFrames ?? 16;
    let resolveClosed!: () => void;
    this.#closed = new Promise((r) => (resolveClosed = r));

    return new Promise<Attempt>((resolve) => {
      let ws: WebSocket;
      try {
        ws = new WebSocket(o.url, {
          headers: { Authorization: `Bearer ${this.#token}` },
          maxPayload: MAX_MESSAGE_BYTES,
          handshakeTimeout: o.handshakeTimeoutMs ?? 15_000,
          perMessageDeflate: false,
          followRedirects: false,
        });
      } catch (err) {
        // The HTTP client refuses a header it cannot send; checkCredential
        // keeps that from happening, and if it ever does, it is one failed
        // attempt (retried with backoff), not a crash. The error names a
        // header, never its value.
        attempt.error = sanitize(o.redactor.redact(String((err as Error)?.message ?? err)), 200);
        resolveClosed();
        resolve(attempt);
        return;
      }
      this.#ws = ws;
      let lastSeen = Date.now();
      let lastPing = Date.now();
      let badFrames = 0;
      let timer: NodeJS.Timeout | undefined;
      const link: Link = {
        send: (frame, done) => {
          if (ws.readyState !== WebSocket.OPEN) {
            done?.(new Error('not connected'));
            return;
          }
          ws.send(frame, { binary: true }, done);
        },
        get bufferedAmount() {
          return ws.bufferedAmount;
        },
      };
      const send = (m: AgentToRelay) => link.send(encode(m));
      const fail = (outcome: Outcome, code: number, reason: string) => {
        attempt.final = outcome;
        if (ws.readyState === WebSocket.OPEN) ws.close(code, reason.slice(0, 120));
        else ws.terminate();
      };

      ws.on('unexpected-response', (req, res: IncomingMessage) => {
        attempt.httpStatus = res.statusCode;
        const parts: Buffer[] = [];
        let size = 0;
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          const text = Buffer.concat(parts).toString('utf8');
          // The relay refuses with {"error": {"code", "message"}}; anything else is shown as text.
          let code: string | undefined;
          let body = text.replace(/\s+/g, ' ').trim();
          try {
            const e = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
            if (e && typeof e.code === 'string') {
              code = e.code;
              body = typeof e.message === 'string' ? `${e.code}: ${e.message}` : e.code;
            }
          } catch {
            // not JSON
          }
          attempt.httpBody = body ? sanitize(o.redactor.redact(body), 240) : undefined;
          const final = this.#httpOutcome(res.statusCode ?? 0, attempt.httpBody, code);
          if (final) attempt.final = final;
          req.destroy();
          ws.terminate();
        };
        res.on('data', (b: Buffer) => {
          if (size < 2048) parts.push(b);
          size += b.length;
        });
        res.on('end', finish);
        res.on('error', finish);
        setTimeout(finish, 2000).unref?.();
      });

      ws.on('open', () => {
        attempt.opened = true;
        lastSeen = Date.now();
        send(o.handler.hello());
        const welcomeBy = Date.now() + (o.welcomeTimeoutMs ?? 15_000);
        timer = setInterval(() => {
          const now = Date.now();
          if (!attempt.welcomed && now > welcomeBy) {
            attempt.error = 'no welcome from the relay';
            ws.close(CloseCode.Timeout, 'no welcome');
            setTimeout(() => ws.terminate(), 1000).unref?.();
            clearInterval(timer);
            return;
          }
          if (now - lastSeen > deadAfterMs) {
            o.log.line(`no sign of life from the relay for ${formatSeconds((now - lastSeen) / 1000)}; reconnecting`);
            attempt.closeReason = 'heartbeat timeout';
            ws.terminate();
            clearInterval(timer);
            return;
          }
          if (now - lastPing >= pingIntervalMs) {
            lastPing = now;
            ws.ping();
          }
        }, Math.max(10, Math.min(pingIntervalMs, deadAfterMs / 3, 1000)));
      });

      const alive = () => {
        lastSeen = Date.now();
      };
      ws.on('ping', alive);
      ws.on('pong', alive);

      ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
        alive();
        const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
        let message: RelayToAgent;
        let raw: Record<string, unknown>;
        try {
          if (!isBinary) throw new Error('a text frame; the protocol uses binary msgpack frames');
          ({ message, raw } = parseRelayFrame(bytes));
        } catch (err) {
          badFrames++;
          const text = sanitize(o.redactor.redact((err as Error).message), 300);
          if (badFrames === 1) o.log.line(`the relay sent a malformed message (${text}); ignored`);
          send({ type: 'error', code: 'BAD_MESSAGE', message: `malformed message ignored: ${text}` });
          if (badFrames > maxBad) {
            o.log.line(`the relay sent ${badFrames} malformed messages; reconnecting`);
            ws.close(CloseCode.BadMessage, 'too many malformed messages');
          }
          return;
        }
        try {
          this.#dispatch(message, raw, attempt, link, fail, send);
        } catch (err) {
          // A bug of ours must not take the agent down with it.
          const text = sanitize(o.redactor.redact(String((err as Error)?.stack ?? err)), 600);
          o.log.line(`internal error while handling a ${message.type} message: ${text}`);
          send({ type: 'error', code: 'AGENT_ERROR', message: `the agent failed to handle a ${message.type} message` });
        }
      });

      ws.on('error', (err: Error & { code?: string }) => {
        const text = err.code && !err.message.includes(err.code) ? `${err.code}: ${err.message}` : err.message;
        attempt.error ??= sanitize(o.redactor.redact(text), 200);
      });

      ws.on('close', (code: number, reason: Buffer) => {
        clearInterval(timer);
        if (attempt.opened) {
          attempt.closeCode = code;
          const text = reason.toString('utf8');
          if (text) attempt.closeReason = sanitize(o.redactor.redact(text), 200);
        }
        if (attempt.welcomed) o.handler.linkLost();
        if (!attempt.final && attempt.opened && FINAL_CLOSE_CODES.includes(code)) attempt.final = this.#closeOutcome(code, attempt.closeReason);
        if (this.#ws === ws) this.#ws = undefined;
        resolveClosed();
        resolve(attempt);
      });
    });
  }

  #dispatch(
    message: RelayToAgent,
    raw: Record<string, unknown>,
    attempt: Attempt,
    link: Link,
    fail: (outcome: Outcome, code: number, reason: string) => void,
    send: (m: AgentToRelay) => void,
  ): void {
    const o = this.#o;
    if (!attempt.welcomed) {
      if (message.type === 'error') {
        o.log.line(`the relay reported an error: ${sanitize(`${message.code}: ${message.message}`, 400)}`);
        return;
      }
      if (message.type !== 'welcome') {
        send({ type: 'error', code: 'BAD_MESSAGE', message: `expected welcome before ${message.type}` });
        return;
      }
      if (message.protocol !== PROTOCOL_VERSION) {
        fail(
          {
            exitCode: 1,
            message: `the relay wants protocol version ${message.protocol}; this agent speaks ${PROTOCOL_VERSION}. Download the agent the relay serves (the one-liner does) and run it again.`,
            closeCode: CloseCode.Version,
          },
          CloseCode.Version,
          `agent speaks protocol ${PROTOCOL_VERSION}`,
        );
        return;
      }
      if (message.credential !== undefined) this.#adoptCredential(message.credential, send);
      attempt.welcomed = true;
      attempt.welcomedAt = Date.now();
      this.#agentId = message.agentId;
      o.log.line(`connected to ${o.displayUrl} as agent ${message.agentId} in session ${message.sessionId}`);
      o.handler.welcome(message, link);
      return;
    }
    if (message.type === 'welcome') return; // only one per connection
    o.handler.message(message, raw);
  }

  /** Uses the relay's credential for reconnects, if it is one; otherwise says why not, on both ends, and keeps what we have. */
  #adoptCredential(credential: string, send: (m: AgentToRelay) => void): void {
    let checked: string;
    try {
      checked = checkCredential(credential);
    } catch (err) {
      if (!isPeriscopeError(err)) throw err;
      this.#o.log.line(`refused the credential the relay sent: ${err.code}: ${err.message}`);
      send({ type: 'error', code: err.code, message: err.message });
      return;
    }
    this.#o.redactor.add(checked);
    this.#token = checked;
    this.#usingCredential = true;
  }

  #closeOutcome(code: number, reason: string | undefined): Outcome {
    const because = reason ? ` (${reason})` : '';
    switch (code) {
      case CloseCode.SessionClosed:
        return { exitCode: 0, message: `the support session was closed${reason && !/session (was|is|has been) closed/i.test(reason) ? because : ''}`, closeCode: code };
      case CloseCode.BadAuth:
        return {
          exitCode: 1,
          message: `the relay rejected this agent's ${this.#usingCredential ? 'credential' : 'join token'}${because}; ask the support engineer for a new one-liner`,
          closeCode: code,
        };
      case CloseCode.Version:
        return { exitCode: 1, message: `the relay does not speak this agent's protocol version ${PROTOCOL_VERSION}${because}; run the agent the relay serves`, closeCode: code };
      case CloseCode.Replaced:
        return { exitCode: 1, message: `another agent connected with this agent's identity${because}; this one stops`, closeCode: code };
      default:
        return { exitCode: 1, message: `the relay closed the connection for good (${describeClose(code, reason)})`, closeCode: code };
    }
  }

  /** A refused handshake that retrying cannot fix; undefined to retry (5xx, 408, 429, …). */
  #httpOutcome(status: number, body: string | undefined, code: string | undefined): Outcome | undefined {
    const because = body ? `: ${body}` : '';
    if (code === 'SESSION_CLOSED' || status === 410) return { exitCode: 0, message: `the support session was closed (HTTP ${status}${because})` };
    if (status === 401 || status === 403) {
      return {
        exitCode: 1,
        message: `the relay refused this agent's ${this.#usingCredential ? 'credential' : 'join token'} (HTTP ${status}${because}); ask the support engineer for a new one-liner`,
      };
    }
    if (status === 426) return { exitCode: 1, message: `the relay does not speak this agent's protocol version ${PROTOCOL_VERSION} (HTTP 426${because}); run the agent the relay serves` };
    if (status === 404) return { exitCode: 1, message: `the relay has no agent endpoint at ${this.#o.displayUrl} (HTTP 404${because}); check RELAY_URL` };
    if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
      return { exitCode: 1, message: `the relay refused the connection (HTTP ${status}${because})` };
    }
    return undefined;
  }
}
