// What the customer's one-liner fetches: GET /j/CODE (the install script) and
// the agent binary it downloads. Unauthenticated by design: the code in the
// URL is the capability, and it dies with the session or its expiry.
import { Hono } from 'hono';
import type { AppEnv, RelayServices } from '../context.ts';
import { JOIN_CODE_RE } from '../../auth/join-codes.ts';
import { AGENT_ARCHES, type AgentBinary, AgentBinaries, isAgentMachine } from '../../install/agent-binary.ts';
import { installScript, refusalScript } from '../../install/install-script.ts';
import { PeriscopeError } from '../../../shared/errors.ts';

const SCRIPT_HEADERS = { 'Content-Type': 'text/x-shellscript; charset=utf-8', 'Cache-Control': 'no-store' };

export function installRoutes(s: RelayServices, binaries = new AgentBinaries()): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // Ready before the first customer pastes the command.
  for (const machine of AGENT_ARCHES) {
    void binaries.get(machine)?.catch(() => undefined);
    void binaries.glibcRuntime(machine)?.catch(() => undefined);
  }

  // Refusals are served as 200 with a script that prints the reason: with
  // `curl -f`, an HTTP error would only show curl's own terse message.
  app.get('/j/:code', async (c) => {
    const code = c.req.param('code').toUpperCase();
    const refuse = (why: string) => c.body(refusalScript(why), 200, SCRIPT_HEADERS);
    if (!JOIN_CODE_RE.test(code)) return refuse('this join code is not valid; ask your support engineer for the current command');
    const join = await s.store.joinTokens.byCode(code);
    const session = join && (await s.store.sessions.byId(join.sessionId));
    if (!join || !session) return refuse('this join code is not valid; ask your support engineer for the current command');
    // Expiry first: the relay's sweep closes an expired session (closeReason
    // 'expired') and revokes its token, which must still read as expired.
    const now = Date.now();
    if (session.closeReason === 'expired' || (session.closedAt === null && (join.expiresAt <= now || session.expiresAt <= now))) {
      return refuse('this support session has expired; ask your support engineer for a new command');
    }
    if (join.revokedAt !== null || session.closedAt !== null) {
      return refuse('this support session has been closed or its command replaced; ask your support engineer for a new command');
    }
    const sha256 = await binaries.checksums();
    const glibcSha256 = await binaries.glibcChecksums();
    if (Object.keys(sha256).length === 0) return refuse('the relay has no agent binary to offer; its operator must run npm run build');
    await s.store.audit.record('customer', 'join.script_served', session.id, { code });
    return c.body(installScript({ relayUrl: s.publicUrl(), joinToken: join.token, sha256, glibcSha256, expiresAt: join.expiresAt }), 200, SCRIPT_HEADERS);
  });

  // One file per machine, named by `uname -m` (x86_64, aarch64), and the
  // glibc runtime for machines without glibc (periscope-glibc-linux-x86_64.tar.gz).
  app.get('/agent/:file', async (c) => {
    const file = c.req.param('file');
    const g = /^periscope-glibc-linux-([a-z0-9_]+)\.tar\.gz(\.sha256)?$/.exec(file);
    if (g) {
      const machine = g[1]!;
      const runtime = isAgentMachine(machine) ? await binaries.glibcRuntime(machine) : undefined;
      if (!runtime) throw new PeriscopeError('NOT_FOUND', `no glibc runtime for ${machine}; one is built for x86_64 (npm run build)`);
      if (g[2]) return c.text(`${runtime.sha256}  periscope-glibc-linux-${machine}.tar.gz\n`);
      return c.body(new Uint8Array(runtime.gz), 200, gzipHeaders(runtime));
    }
    const m = /^periscope-agent-linux-([a-z0-9_]+)\.gz(\.sha256)?$/.exec(file);
    const machine = m?.[1] ?? '';
    if (!isAgentMachine(machine)) throw new PeriscopeError('NOT_FOUND', `no agent for ${machine || 'that machine'}; agents exist for ${AGENT_ARCHES.join(' and ')}`);
    const binary = await binaries.get(machine);
    if (!binary) throw noAgentBinary(machine);
    if (m?.[2]) return c.text(`${binary.sha256}  periscope-agent-linux-${machine}.gz\n`);
    return c.body(new Uint8Array(binary.gz), 200, gzipHeaders(binary));
  });
  return app;
}

const gzipHeaders = (b: AgentBinary) => ({
  'Content-Type': 'application/gzip',
  'Content-Length': String(b.gz.length),
  'X-Checksum-Sha256': b.sha256,
  'Cache-Control': 'no-cache',
});

const noAgentBinary = (machine: string): PeriscopeError =>
  new PeriscopeError('NO_AGENT_BINARY', `the agent binary for ${machine} is not built; run npm run build on the relay`);
