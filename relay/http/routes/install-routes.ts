// What the customer's one-liner fetches: GET /j/CODE (the install script) and
// the agent binary it downloads. Unauthenticated by design: the code in the
// URL is the capability, and it dies with the session or its expiry.
import { Hono } from 'hono';
import type { AppEnv, RelayServices } from '../context.ts';
import { JOIN_CODE_RE } from '../../auth/join-codes.ts';
import { AGENT_ARCHES, AgentBinaries, isAgentMachine } from '../../install/agent-binary.ts';
import { installScript, refusalScript } from '../../install/install-script.ts';
import { PeriscopeError } from '../../../shared/errors.ts';

const SCRIPT_HEADERS = { 'Content-Type': 'text/x-shellscript; charset=utf-8', 'Cache-Control': 'no-store' };

export function installRoutes(s: RelayServices, binaries = new AgentBinaries()): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  // Ready before the first customer pastes the command.
  for (const machine of AGENT_ARCHES) void binaries.get(machine)?.catch(() => undefined);

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
    if (Object.keys(sha256).length === 0) return refuse('the relay has no agent binary to offer; its operator must run npm run build');
    await s.store.audit.record('customer', 'join.script_served', session.id, { code });
    return c.body(installScript({ relayUrl: s.publicUrl(), joinToken: join.token, sha256, expiresAt: join.expiresAt }), 200, SCRIPT_HEADERS);
  });

  // One file per machine, named by `uname -m` (x86_64, aarch64).
  app.get('/agent/:file', async (c) => {
    const m = /^periscope-agent-linux-([a-z0-9_]+)\.gz(\.sha256)?$/.exec(c.req.param('file'));
    const machine = m?.[1] ?? '';
    if (!isAgentMachine(machine)) throw new PeriscopeError('NOT_FOUND', `no agent for ${machine || 'that machine'}; agents exist for ${AGENT_ARCHES.join(' and ')}`);
    const binary = await binaries.get(machine);
    if (!binary) throw noAgentBinary(machine);
    if (m?.[2]) return c.text(`${binary.sha256}  periscope-agent-linux-${machine}.gz\n`);
    return c.body(new Uint8Array(binary.gz), 200, {
      'Content-Type': 'application/gzip',
      'Content-Length': String(binary.gz.length),
      'X-Checksum-Sha256': binary.sha256,
      'Cache-Control': 'no-cache',
    });
  });
  return app;
}

const noAgentBinary = (machine: string): PeriscopeError =>
  new PeriscopeError('NO_AGENT_BINARY', `the agent binary for ${machine} is not built; run npm run build on the relay`);
