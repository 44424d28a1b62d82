// What every route can reach, and the Hono environment type they share.
import type { HttpBindings } from '@hono/node-server';
import type { Store } from '../store/index.ts';
import type { TokenService } from '../auth/tokens.ts';
import type { Authenticated, WebSessions } from '../auth/web-sessions.ts';
import type { LoginLimiter } from '../auth/login-limiter.ts';
import type { CaptureService } from '../captures/capture-service.ts';
import type { CaptureRenderer } from '../captures/capture-render.ts';
import type { AgentHub } from '../ws/agent-hub.ts';
import type { UiHub } from '../ws/ui-hub.ts';
import type { SupportSessions } from '../sessions/support-sessions.ts';
import type { Presence } from '../sessions/presence.ts';
import type { Metrics } from '../metrics.ts';
import type { AgentRouter } from '../cluster/agent-router.ts';
import type { ClusterBus } from '../cluster/bus.ts';

export interface RelayServices {
  store: Store;
  tokens: TokenService;
  webSessions: WebSessions;
  limiter: LoginLimiter;
  sessions: SupportSessions;
  presence: Presence;
  captures: CaptureService;
  renderer: CaptureRenderer;
  agentHub: AgentHub;
  /** Reaches an agent on whichever relay holds it. */
  agents: AgentRouter;
  uiHub: UiHub;
  bus: ClusterBus;
  /** A browser sign-in ended: its live views close, on every relay. */
  closeLogin: (loginId: string) => void;
  metrics: Metrics;
  /** Known once the server listens (PORT=0 picks the port then). */
  publicUrl: () => string;
  /** The public URL's origin or one of PERISCOPE_TRUSTED_ORIGINS (config.ts allowedOrigins); never the request's Host. */
  isTrustedOrigin: (origin: string) => boolean;
  secure: boolean;
  startedAt: number;
}

export interface AppEnv {
  Bindings: HttpBindings;
  Variables: { auth: Authenticated; requestId: string };
}
