// Hostile or broken input on the WebSocket endpoints: tokens refused before
// the upgrade, and malformed frames refused with a clear error and close code,
// while the relay stays up and what it stored does not change.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { CloseCode, MAX_MESSAGE_BYTES, encode, encodeChunk } from '../../shared/protocol.ts';
import {
  Client,
  adminClient,
  connectAgent,
  connectUi,
  createSession,
  joinedAgent,
  metric,
  refusedUpgrade,
  removeDataDir,
  startCapture,
  startRelay,
  type AgentPeer,
  type RelayProcess,
  type UiPeer,
} from '../helpers/relay.ts';
import { buildChunks, STATS } from './helpers.ts';

let relay: RelayProcess;
let admin: Client;
let session: { id: string; joinToken: string };
let captureId: string;
let baseline: { raw: string; file: string; chunks: number };

before(async () => {
  relay = await startRelay();
  admin = await adminClient(relay);
  const joined = await joinedAgent(relay, admin);
  session = joined.session;
  const started = await startCapture(admin, joined.agent, joined.welcome.agentId);
  captureId = started.captureId;
  const chunks = buildChunks(2);
  for (let seq = 0; seq < 2; seq++) joined.agent.send({ type: 'chunk', captureId, seq, chunk: encodeChunk(chunks[seq]), stats: STATS });
  await joined.agent.nextOfType('ack', 5000, (m) => m.nextSeq === 2);
  joined.agent.send({ type: 'capture_ended', captureId, reason: 'duration', chunks: 2 });
  joined.agent.close();
  baseline = await snapshot();
  assert.equal(baseline.chunks, 2);
});

after(async () => {
  await relay?.stop();
  if (relay) removeDataDir(relay.dataDir);
});

async function snapshot() {
  const raw = (await admin.get(`/api/captures/${captureId}/download?format=raw`)).text;
  const file = createHash('sha256').update(readFileSync(join(relay.dataDir, 'captures', `${captureId}.chunks`))).digest('hex');
  const chunks = (await admin.get(`/api/captures/${captureId}`)).json.chunks;
  return { raw, file, chunks };
}

async function assertRelayUnharmed() {
  const health = await fetch(`${relay.url}/healthz`);
  assert.equal(health.status, 200, 'the relay is still up');
  assert.deepEqual(await snapshot(), baseline, 'stored data is unchanged');
}

function signingKey(): Uint8Array {
  return new Uint8Array(readFileSync(join(relay.dataDir, 'signing-key')));
}

function jwt(claims: Record<string, unknown>, audience: string, exp: number, key = signingKey()): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('periscope-relay').setAudience(audience).setSubject(String(claims.sid ?? 'x')).setIssuedAt().setExpirationTime(exp).sign(key);
}

describe('/ws/agent refuses bad tokens before the upgrade', () => {
  test('missing, forged, expired, wrong-audience, unknown and revoked tokens: HTTP 401, no WebSocket', async () => {
    const claims = JSON.parse(Buffer.from(session.joinToken.split('.')[1], 'base64url').toString());
    const now = Math.floor(Date.now() / 1000);
    const rotated = await createSession(admin, 'rotated');
    const rotate = await admin.post(`/api/sessions/${rotated.id}/join-token`);
    assert.equal(rotate.status, 200, rotate.text);
    assert.notEqual(rotate.json.code, rotated.code);
    assert.notEqual(rotate.json.joinToken, rotated.joinToken);
    const [, , noneSig] = session.joinToken.split('.');
    const cases: [string, Record<string, string>, string][] = [
      ['no header', {}, 'MISSING_TOKEN'],
      ['not bearer', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, 'MISSING_TOKEN'],
      ['garbage', { authorization: 'Bearer not.a.jwt' }, 'BAD_TOKEN'],
      ['forged (other key)', { authorization: `Bearer ${await jwt(claims, 'periscope:join', now + 3600, randomBytes(32))}` }, 'BAD_TOKEN'],
      ['alg none', { authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString('base64url')}.${session.joinToken.split('.')[1]}.` }, 'BAD_TOKEN'],
      ['tampered payload', { authorization: `Bearer ${session.joinToken.split('.')[0]}.${Buffer.from(JSON.stringify({ ...claims, sid: 'other' })).toString('base64url')}.${noneSig}` }, 'BAD_TOKEN'],
      ['expired', { authorization: `Bearer ${await jwt(claims, 'periscope:join', now - 60)}` }, 'TOKEN_EXPIRED'],
      ['browser cookie JWT (aud periscope:web)', { authorization: `Bearer ${admin.cookie!.split('=')[1]}` }, 'BAD_TOKEN'],
      ['right key, wrong audience', { authorization: `Bearer ${await jwt(claims, 'periscope:web', now + 3600)}` }, 'BAD_TOKEN'],
      ['unknown jti', { authorization: `Bearer ${await jwt({ ...claims, jti: 'nope' }, 'periscope:join', now + 3600)}` }, 'BAD_TOKEN'],
      ['credential of an unknown agent', { authorization: `Bearer ${await jwt({ sid: session.id }, 'periscope:agent', now + 3600)}` }, 'BAD_TOKEN'],
      ['revoked (rotated) join token', { authorization: `Bearer ${rotated.joinToken}` }, 'TOKEN_REVOKED'],
    ];
    const failuresBefore = await metric(relay, 'periscope_auth_failures_total');
    for (const [what, headers, code] of cases) {
      const res = await refusedUpgrade(`${relay.wsUrl}/ws/agent`, headers);
      assert.equal(res.status, 401, what);
      assert.equal(res.body.error.code, code, what);
      assert.equal(typeof res.body.error.message, 'string');
    }
    assert.equal(await metric(relay, 'periscope_auth_failures_total'), failuresBefore + cases.length);
    // The rotated session's new token works.
    const ok = await connectAgent(relay, rotate.json.joinToken);
    await ok.hello();
    ok.close();
  });

  test('a token in the URL is refused: tokens go in the header only', async () => {
    const res = await refusedUpgrade(`${relay.wsUrl}/ws/agent?token=${session.joinToken}`, {});
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'TOKEN_IN_URL');
  });

  test('unknown WebSocket paths are 404', async () => {
    const res = await refusedUpgrade(`${relay.wsUrl}/ws/other`, { authorization: `Bearer ${session.joinToken}` });
    assert.equal(res.status, 404);
  });
});

describe('/ws/ui refuses before the upgrade', () => {
  test('without a sign-in cookie (401), or from a foreign or missing Origin (403)', async () => {
    assert.equal((await refusedUpgrade(`${relay.wsUrl}/ws/ui`, { origin: relay.origin })).status, 401);
    assert.equal((await refusedUpgrade(`${relay.wsUrl}/ws/ui`, { origin: relay.origin, cookie: 'periscope_session=forged' })).status, 401);
    const foreign = await refusedUpgrade(`${relay.wsUrl}/ws/ui`, { origin: 'https://evil.example', cookie: admin.cookie! });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.body.error.code, 'BAD_ORIGIN');
    assert.equal((await refusedUpgrade(`${relay.wsUrl}/ws/ui`, { cookie: admin.cookie! })).status, 403);
  });
});

type Abuse = { what: string; frame: () => Uint8Array | string; binary?: boolean; code: number; error?: RegExp };

const truncated = () => {
  const full = encode({ type: 'chunk', captureId: 'abc', seq: 0, chunk: encodeChunk(buildChunks(1)[0]), stats: STATS });
  return full.subarray(0, Math.floor(full.length / 2));
};

const agentAbuses: Abuse[] = [
  { what: 'garbage bytes', frame: () => randomBytes(64).fill(0xc1, 0, 1), code: CloseCode.BadMessage, error: /not a msgpack message/ },
  { what: 'a truncated frame', frame: truncated, code: CloseCode.BadMessage, error: /msgpack|must be/ },
  { what: 'a text frame', frame: () => '{"type":"hello"}', binary: false, code: CloseCode.BadMessage, error: /text frames/ },
  { what: 'a msgpack list', frame: () => encode([1, 2, 3] as never), code: CloseCode.BadMessage, error: /must be a map/ },
  { what: 'an unknown type', frame: () => encode({ type: 'rm -rf' } as never), code: CloseCode.BadMessage, error: /unknown message type/ },
  { what: 'a wrongly typed field', frame: () => encode({ type: 'chunk', captureId, seq: 'one', chunk: {}, stats: STATS } as never), code: CloseCode.BadMessage, error: /chunk\.seq must be an integer/ },
  { what: 'a bad id', frame: () => encode({ type: 'capture_ended', captureId: '../../etc/passwd', reason: 'x', chunks: 0 } as never), code: CloseCode.BadMessage, error: /not a valid id/ },
  { what: 'an oversized frame', frame: () => new Uint8Array(MAX_MESSAGE_BYTES + 1), code: 1009 },
];

describe('malformed frames on /ws/agent', () => {
  for (const abuse of agentAbuses) {
    test(`${abuse.what}: refused with ${abuse.code}${abuse.error ? ' and an error message' : ''}`, async () => {
      const { agent }: { agent: AgentPeer } = await joinedAgent(relay, admin, session);
      agent.sendRaw(abuse.frame(), abuse.binary ?? true);
      if (abuse.error) {
        const err = await agent.nextOfType('error');
        assert.equal(err.code, 'BAD_MESSAGE');
        assert.match(err.message, abuse.error);
      }
      const closed = await agent.closed;
      assert.equal(closed.code, abuse.code, closed.reason);
      await assertRelayUnharmed();
    });
  }

  test('the same garbage before hello is refused too', async () => {
    const agent = await connectAgent(relay, session.joinToken);
    agent.sendRaw(randomBytes(32));
    assert.equal((await agent.closed).code, CloseCode.BadMessage);
    await assertRelayUnharmed();
  });
});

describe('malformed frames on /ws/ui', () => {
  const uiAbuses: Abuse[] = [
    agentAbuses[0],
    agentAbuses[1],
    agentAbuses[2],
    { what: 'an agent message', frame: () => encode({ type: 'chunk', captureId, seq: 2, chunk: encodeChunk(buildChunks(1)[0]), stats: STATS }), code: CloseCode.BadMessage, error: /unknown message type "chunk" from a browser/ },
    { what: 'a wrongly typed field', frame: () => encode({ type: 'watch_capture', captureId: 5 } as never), code: CloseCode.BadMessage, error: /watch_capture\.captureId must be a string/ },
    agentAbuses[7],
  ];
  for (const abuse of uiAbuses) {
    test(`${abuse.what}: refused with ${abuse.code}`, async () => {
      const ui: UiPeer = await connectUi(relay, admin);
      ui.sendRaw(abuse.frame(), abuse.binary ?? true);
      if (abuse.error) {
        const err = await ui.nextOfType('error');
        assert.equal(err.code, 'BAD_MESSAGE');
        assert.match(err.message, abuse.error);
      }
      assert.equal((await ui.closed).code, abuse.code);
      await assertRelayUnharmed();
    });
  }
});
