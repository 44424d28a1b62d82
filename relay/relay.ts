// Assembles the relay: storage, auth, capture service, hubs, HTTP app and the
// WebSocket upgrade path, all on one HTTP(S) server.
import { createAdaptorServer } from '@hono/node-server';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { WebSocketServer } from 'ws';
import { MAX_MESSAGE_BYTES } from '../shared/protocol.ts';
import { type RelayConfig, allowedOrigins, effectivePublicUrl } from './config.ts';
import { openStore, type Store } from './store/index.ts';
import { loadSigningKey } from './auth/signing-key.ts';
import { newId } from './store/ids.ts';
import { createLog, setRelayLog, type LogFields } from './log.ts';
import { NoBus, type ClusterBus } from './cluster/bus.ts';
import { RedisBus, busKey } from './cluster/redis-bus.ts';
import { AgentRouter } from './cluster/agent-router.ts';
import { ClusterMember } from './cluster/cluster.ts';
import { TokenService } from './auth/tokens.ts';
import { WebSessions } from './auth/web-sessions.ts';
import { LoginLimiter } from './auth/login-limiter.ts';
import { bootstrapAdmin } from './auth/accounts.ts';
import { Metrics } from './metrics.ts';
import { CaptureService } from './captures/capture-service.ts';
import { CaptureRenderer } from './captures/capture-render.ts';
import { SupportSessions } from './sessions/support-sessions.ts';
import { Presence } from './sessions/presence.ts';
import { AgentHub } from './ws/agent-hub.ts';
import { UiHub } from './ws/ui-hub.ts';
import { createUpgradeHandler } from './ws/upgrade.ts';
import { createApp } from './http/app.ts';
import type { RelayServices } from './http/context.ts';

export interface RunningRelay {
  url: string;
  publicUrl: string;
  /** PERISCOPE_PUBLIC_URL was set; otherwise publicUrl is localhost and the one-liners work only on this machine. */
  publicUrlConfigured: boolean;
  port: number;
  /** Set when this start created the admin account with a generated password. */
  generatedAdminPassword: string | undefined;
  adminCreated: boolean;
  close(): Promise<void>;
}

export async function startRelay(config: RelayConfig): Promise<RunningRelay> {
  const relayId = newId();
  const log = createLog({ relayId, format: config.logFormat });
  setRelayLog(log);
  const say = (message: string, fields?: LogFields) => log.error(message, fields);
  const store: Store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  let bus: ClusterBus;
  let signingKey: Uint8Array;
  try {
    signingKey = await loadSigningKey(store, config.signingKeyFile);
    bus = config.redisUrl === undefined ? new NoBus(relayId) : await RedisBus.connect(config.redisUrl, relayId, busKey(signingKey), say);
  } catch (err) {
    await store.close();
    throw err;
  }
  const tokens = new TokenService(signingKey);
  const metrics = new Metrics();
  const admin = await bootstrapAdmin(store, config.adminPassword);
  const webSessions = new WebSessions(store, tokens);
  const captures = new CaptureService({ store, metrics, graceMs: config.captureGraceMs, relayId, log: say });
  // Behind a TLS-terminating proxy the relay speaks http but browsers see https: cookies must still be Secure.
  const secure = config.tls !== undefined || (config.publicUrl?.startsWith('https:') ?? false);

  let boundPort = config.port;
  const publicUrl = () => effectivePublicUrl(config, boundPort);
  let origins: ReadonlySet<string> | undefined;
  // Computed once the port is bound (PORT=0 picks it then).
  const isTrustedOrigin = (origin: string) => (origins ??= allowedOrigins(config, boundPort)).has(origin);
  const sessions = new SupportSessions(store, tokens, captures, publicUrl, config.publicUrl !== undefined);
  const presence = new Presence({
    store,
    relayId,
    maxAgents: config.maxAgentsPerSession,
    retentionMs: config.agentRetentionMs,
    publish: (update) => uiHub.presenceChanged(update),
    announce: (event) => bus.publish(event),
  });
  const agentHub = new AgentHub({
    store,
    captures,
    tokens,
    metrics,
    heartbeatMs: config.heartbeatMs,
    presence,
  });
  const uiHub: UiHub = new UiHub({
    store,
    captures,
    metrics,
    heartbeatMs: config.heartbeatMs,
    sessionState: async (sessionId) => {
      await presence.load(sessionId);
      return { type: 'session_state', sessionId, agents: presence.snapshot(sessionId) };
    },
    stillSignedIn: async (login) => {
      const row = await store.logins.byId(login.id);
      return row !== undefined && row.revokedAt === null && row.expiresAt > Date.now();
    },
  });
  const router = new AgentRouter(agentHub, presence, bus);
  const cluster = new ClusterMember({ bus, presence, captures, router, agentHub, uiHub, log: say });
  captures.setAgentLink(router);
  sessions.setHooks({
    disconnectAgents: (id) => {
      agentHub.closeSession(id);
      cluster.sessionClosed(id);
    },
    sessionChanged: (id) => {
      uiHub.sessionChanged(id);
      cluster.sessionChanged(id);
    },
  });
  metrics.setGauges({ agentsConnected: () => agentHub.connectedCount, capturesActive: () => captures.activeCount(), viewers: () => uiHub.viewerCount });
  metrics.setStorage(store.counters);
  metrics.setCluster({
    relayId,
    store: store.engine,
    bus: bus.shared ? 'redis' : 'none',
    relays: () => cluster.relaysSeen,
    routed: () => router.routed,
    published: () => bus.counters.published,
    received: () => bus.counters.received,
    dropped: () => bus.counters.dropped,
    forged: () => bus.counters.forged,
  });

  const services: RelayServices = {
    store,
    tokens,
    webSessions,
    limiter: new LoginLimiter(),
    sessions,
    presence,
    captures,
    renderer: new CaptureRenderer(store.chunks),
    agentHub,
    agents: router,
    uiHub,
    bus,
    closeLogin: (loginId) => {
      uiHub.closeLogin(loginId);
      cluster.loginRevoked(loginId);
    },
    metrics,
    publicUrl,
    isTrustedOrigin,
    secure,
    startedAt: Date.now(),
  };
  const app = createApp(services);
  const server = (
    config.tls
      ? createAdaptorServer({
          fetch: app.fetch,
          createServer: createHttpsServer,
          serverOptions: { cert: readFileSync(config.tls.certPath), key: readFileSync(config.tls.keyPath) },
        })
      : createAdaptorServer({ fetch: app.fetch })
  ) as Server;

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES, clientTracking: false, perMessageDeflate: false });
  server.on(
    'upgrade',
    createUpgradeHandler({ wss, store, tokens, webSessions, agentHub, uiHub, presence, metrics, isTrustedOrigin, publicOrigin: () => new URL(publicUrl()).origin }),
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  boundPort = (server.address() as AddressInfo).port;
  // Alone on its store, a relay that restarts gives unfinished captures the grace period from now; in a cluster their leases run on.
  if (!bus.shared) await captures.recover();
  captures.run();
  cluster.start();
  sessions.startExpirySweeper();
  presence.start();

  const localHost = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host.includes(':') ? `[${config.host}]` : config.host;
  let closing: Promise<void> | undefined;
  return {
    url: `${config.tls ? 'https' : 'http'}://${localHost}:${boundPort}`,
    publicUrl: publicUrl(),
    publicUrlConfigured: config.publicUrl !== undefined,
    port: boundPort,
    generatedAdminPassword: admin.generatedPassword,
    adminCreated: admin.created,
    close() {
      closing ??= (async () => {
        sessions.stop();
        presence.stop();
        cluster.stop();
        // Hubs first: their close handlers still write presence and audit rows.
        await Promise.all([agentHub.shutdown(), uiHub.shutdown()]);
        await captures.shutdown();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await bus.close();
        await store.close();
      })();
      return closing;
    },
  };
}
