// Authenticates WebSocket upgrades BEFORE completing the handshake, so an
// unauthenticated peer never gets a WebSocket at all: it gets a plain HTTP error
// (401/403/404 with a JSON body naming the cause) on the raw socket.
//
//   /ws/agent  Authorization: Bearer <join token | agent credential>  (never a URL query)
//   /ws/ui     the sign-in cookie, and an Origin the relay trusts (never one derived from Host)
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import { STATUS_CODES } from 'node:http';
import type { Store } from '../store/index.ts';
import { isOpen } from '../store/sessions.ts';
import { AUD_AGENT, AUD_JOIN, TokenError, agentClaims, joinClaims, type TokenService } from '../auth/tokens.ts';
import { SESSION_COOKIE, type WebSessions } from '../auth/web-sessions.ts';
import type { Metrics } from '../metrics.ts';
import type { AgentAuth, AgentHub } from './agent-hub.ts';
import type { UiHub } from './ui-hub.ts';
import type { Presence } from '../sessions/presence.ts';
import { readCookie, untrustedOriginMessage } from '../http/origin.ts';
import { isPeriscopeError, type ErrorCode } from '../../shared/errors.ts';
import { httpStatusOf } from '../http/error-status.ts';
import { relayLog } from '../log.ts';

export interface UpgradeDeps {
  wss: WebSocketServer;
  store: Store;
  tokens: TokenService;
  webSessions: WebSessions;
  agentHub: AgentHub;
  uiHub: UiHub;
  presence: Presence;
  metrics: Metrics;
  isTrustedOrigin: (origin: string) => boolean;
  /** For refusal messages only. */
  publicOrigin: () => string;
}

class Refusal extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  constructor(status: number, code: ErrorCode, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function refuse(socket: Duplex, r: Refusal): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ error: { code: r.code, message: r.message } });
  socket.end(
    `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      'Cache-Control: no-store\r\n' +
      'X-Content-Type-Options: nosniff\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export async function authenticateAgent(deps: Pick<UpgradeDeps, 'store' | 'tokens'>, authorization: string | undefined): Promise<AgentAuth> {
  const match = /^Bearer ([A-Za-z0-9._-]+)$/.exec(authorization ?? '');
  if (!match) throw new Refusal(401, 'MISSING_TOKEN', 'send the join token or agent credential as "Authorization: Bearer <token>"');
  let verified;
  try {
    verified = await deps.tokens.verify(match[1], [AUD_JOIN, AUD_AGENT]);
  } catch (err) {
    if (!(err instanceof TokenError)) throw err;
    if (err.reason === 'expired') throw new Refusal(401, 'TOKEN_EXPIRED', 'the token has expired; ask the support engineer for a new command');
    throw new Refusal(401, 'BAD_TOKEN', 'the token is not valid for this relay; ask the support engineer for a new command');
  }
  const now = Date.now();
  const bad = () => new Refusal(401, 'BAD_TOKEN', 'the token is not valid for this relay; ask the support engineer for a new command');
  const closed = () => new Refusal(401, 'SESSION_CLOSED', 'the support session has ended; do not reconnect');
  try {
    if (verified.audience === AUD_JOIN) {
      const claims = joinClaims(verified.payload);
      const row = await deps.store.joinTokens.byJti(claims.jti);
      if (!row || row.sessionId !== claims.sessionId) throw bad();
      const session = await deps.store.sessions.byId(row.sessionId);
      if (!session || !isOpen(session, now)) throw closed();
      if (row.revokedAt !== null) throw new Refusal(401, 'TOKEN_REVOKED', 'the join token was revoked; ask the support engineer for a new command');
      return { kind: 'join', sessionId: row.sessionId, jti: row.jti };
    }
    const claims = agentClaims(verified.payload);
    const agent = await deps.store.agents.byId(claims.agentId);
    if (!agent || agent.sessionId !== claims.sessionId) throw bad();
    const session = await deps.store.sessions.byId(agent.sessionId);
    if (!session || !isOpen(session, now)) throw closed();
    return { kind: 'agent', sessionId: agent.sessionId, agentId: agent.id };
  } catch (err) {
    if (err instanceof TokenError) throw bad();
    throw err;
  }
}

export function createUpgradeHandler(deps: UpgradeDeps): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  return (req, socket, head) => {
    socket.on('error', () => socket.destroy());
    void (async () => {
      let path: string;
      let query: URLSearchParams;
      try {
        const url = new URL(req.url ?? '/', 'http://relay.invalid');
        path = url.pathname;
        query = url.searchParams;
      } catch {
        return refuse(socket, new Refusal(400, 'BAD_REQUEST', 'malformed request URL'));
      }
      try {
        if (path === '/ws/agent') {
          if (query.has('token') || query.has('access_token')) {
            throw new Refusal(400, 'TOKEN_IN_URL', 'tokens go in the Authorization header, never in the URL (URLs end up in logs)');
          }
          const auth = await authenticateAgent(deps, req.headers.authorization);
          // Cheap early refusal for a crowd on one code: no WebSocket, no hello. The hello re-checks (and holds the place).
          await deps.presence.load(auth.sessionId);
          if (!deps.presence.hasRoom(auth.sessionId, auth.kind === 'agent' ? auth.agentId : undefined)) {
            throw new Refusal(409, 'SESSION_FULL', deps.presence.fullMessage);
          }
          if (socket.destroyed) return;
          deps.wss.handleUpgrade(req, socket, head, (ws) => deps.agentHub.accept(ws, auth));
          return;
        }
        if (path === '/ws/ui') {
          const origin = req.headers.origin;
          if (!origin) throw new Refusal(403, 'BAD_ORIGIN', "connections to /ws/ui must come from the relay's own pages, and carry their Origin header");
          if (!deps.isTrustedOrigin(origin)) throw new Refusal(403, 'BAD_ORIGIN', untrustedOriginMessage(origin, deps.publicOrigin()));
          const auth = await deps.webSessions.authenticate(readCookie(req.headers.cookie, SESSION_COOKIE));
          if (!auth) throw new Refusal(401, 'UNAUTHENTICATED', 'sign in first (POST /api/login)');
          if (socket.destroyed) return;
          deps.wss.handleUpgrade(req, socket, head, (ws) => deps.uiHub.accept(ws, auth.user, auth.login));
          return;
        }
        refuse(socket, new Refusal(404, 'NOT_FOUND', 'WebSocket endpoints are /ws/agent and /ws/ui'));
      } catch (err) {
        if (err instanceof Refusal) {
          if (err.status === 401 || err.status === 403 || err.code === 'TOKEN_IN_URL') deps.metrics.authFailures++;
          return refuse(socket, err);
        }
        // The relay's own trouble with a reason (its database out of reach): say so, with the status that means "try again".
        const status = isPeriscopeError(err) ? httpStatusOf(err.code) : undefined;
        if (isPeriscopeError(err) && status !== undefined) return refuse(socket, new Refusal(status, err.code, err.message));
        relayLog().error(`upgrade failed`, { err });
        refuse(socket, new Refusal(500, 'INTERNAL', 'the relay failed to handle the connection; try again'));
      }
    })();
  };
}
