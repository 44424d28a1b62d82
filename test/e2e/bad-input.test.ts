// Bad input against the REAL agent/relay pair. test/relay/* already checks,
// with a protocol-level test client and hand-made chunks, that the relay
// refuses bad tokens before the upgrade (ws-robustness), malformed frames on
// both sockets (ws-robustness), other agents' chunks (agent-protocol),
// non-members (sessions) and cross-site requests (http-auth). What only a
// real pair can show, and this file checks:
//
//   1. the real agent given a forged, expired, wrong-audience, revoked
//      (rotated) or closed-session token: refused before the upgrade, it stops
//      at once with the relay's reason (no retry storm: one refused upgrade
//      each), never prints the token, and no agent is registered;
//   2. impostor agents (same session, other session, by join token and by
//      agent credential) writing chunks / ends / errors / dump results into a
//      REAL capture while it runs, plus malformed frames on /ws/agent and
//      /ws/ui from other clients: all refused, and the real capture goes on
//      undisturbed to `complete` with 0 samples lost;
//   3. a non-member engineer and cross-site requests (wrong Origin, no CSRF
//      token) aimed at the real agent and its running capture: refused, and
//      nothing reaches the customer's terminal;
//   4. the join token rotated while the real agent records: the agent keeps
//      working on its credential (even across a reconnect), the old token is
//      refused (TOKEN_REVOKED), the new one joins as a new agent;
//   5. the session closed while the real agent records: the agent stops at
//      once and exits 0, the capture is `incomplete` (SESSION_CLOSED) and
//      downloads, and the agent cannot come back.
//
// After every step: /healthz answers and a recording stored before any of
// this (its chunk file, its raw download, its record) has not changed.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SignJWT } from 'jose';
import { CloseCode, encode, MAX_MESSAGE_BYTES, encodeChunk } from '../../shared/protocol.ts';
import { leafCounts, parseRaw } from '../helpers/record.ts';
import {
  connectAgent,
  connectUi,
  createSession,
  eventually,
  joinedAgent,
  metric,
  userClient,
} from '../helpers/relay.ts';
import { buildChunks, STATS } from '../relay/helpers.ts';
import {
  AgentProcess,
  download,
  getCapture,
  log,
  sampleLoss,
  setup,
  startCapture,
  storedProfile,
  TcpProxy,
  topByOwn,
  waitCapture,
} from './harness.ts';

function claimsOf(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

function sign(claims: Record<string, unknown>, audience: string, expSeconds: number, key: Uint8Array): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuer('periscope-relay')
    .setAudience(audience)
    .setSubject(String(claims.sub ?? claims.sid ?? 'x'))
    .setIssuedAt()
    .setExpirationTime(expSeconds)
    .sign(key);
}

test('bad input against the real agent/relay pair: refused, the relay stays up, nothing stored changes', { timeout: 150_000 }, async (t) => {
  let proxy!: TcpProxy;
  const s = await setup(t, {
    agentUrl: async (relay) => {
      proxy = new TcpProxy(Number(new URL(relay.url).port));
      await proxy.listen(t);
      return proxy.url;
    },
  });
  const { relay, eng, session, target, agent, agentId } = s;

  // A recording stored before any abuse: it must not change.
  const base = await startCapture(eng, agentId, { kind: 'record', pid: target.pid, rate: 100, duration: 2 });
  assert.equal((await waitCapture(eng, base.id, 15_000)).status, 'complete');
  const snapshot = async () => {
    const c = await getCapture(eng, base.id);
    return {
      file: createHash('sha256').update(readFileSync(join(relay.dataDir, 'captures', `${base.id}.chunks`))).digest('hex'),
      raw: (await download(eng, base.id, 'format=raw')).body,
      record: { status: c.status, chunks: c.chunks, samples: c.samples, endedAt: c.endedAt, error: c.error },
    };
  };
  const baseline = await snapshot();
  assert.ok(baseline.record.samples > 0);
  const unharmed = async (what: string) => {
    const health = await fetch(`${relay.url}/healthz`);
    assert.equal(health.status, 200, `${what}: the relay is up`);
    assert.deepEqual(await snapshot(), baseline, `${what}: the stored recording is unchanged`);
  };
  const asked = () => (agent.output.match(/ asked for /g) ?? []).length;
  const secret = (token: string) => token.split('.')[2]!;

  await t.test('1. bad tokens: the real agent is refused before the upgrade and stops at once, saying why', async (t) => {
    const key = new Uint8Array(readFileSync(join(relay.dataDir, 'signing-key')));
    const claims = claimsOf(session.joinToken);
    const now = Math.floor(Date.now() / 1000);
    const rotated = await createSession(eng, 'rotated');
    assert.equal((await eng.post(`/api/sessions/${rotated.id}/join-token`)).status, 200);
    const closed = await createSession(eng, 'closed');
    assert.equal((await eng.post(`/api/sessions/${closed.id}/close`)).status, 200);
    const cases: { what: string; token: string; code: string; exit: number; message: RegExp }[] = [
      { what: 'forged (signed with another key)', token: await sign(claims, 'periscope:join', now + 3600, randomBytes(32)), code: 'BAD_TOKEN', exit: 1, message: /refused this agent's join token \(HTTP 401: BAD_TOKEN/ },
      { what: 'expired (right key)', token: await sign(claims, 'periscope:join', now - 60, key), code: 'TOKEN_EXPIRED', exit: 1, message: /HTTP 401: TOKEN_EXPIRED: the token has expired/ },
      { what: 'wrong audience (right key, periscope:web)', token: await sign(claims, 'periscope:web', now + 3600, key), code: 'BAD_TOKEN', exit: 1, message: /HTTP 401: BAD_TOKEN/ },
      { what: "the engineer's own sign-in cookie", token: eng.cookie!.split('=')[1]!, code: 'BAD_TOKEN', exit: 1, message: /HTTP 401: BAD_TOKEN/ },
      { what: 'revoked (rotated) join token', token: rotated.joinToken, code: 'TOKEN_REVOKED', exit: 1, message: /HTTP 401: TOKEN_REVOKED: the join token was revoked/ },
      { what: "a closed session's join token", token: closed.joinToken, code: 'SESSION_CLOSED', exit: 0, message: /the support session was closed \(HTTP 401: SESSION_CLOSED/ },
    ];
    const agentsBefore = (await eng.get(`/api/sessions/${session.id}/agents`)).json.agents.length as number;
    for (const c of cases) {
      const failures = await metric(relay, 'periscope_auth_failures_total');
      const started = Date.now();
      const bad = new AgentProcess(t, relay.url, c.token, ['--pids', String(target.pid)]);
      const exit = await bad.exit(15_000);
      const ms = Date.now() - started;
      assert.equal(exit.code, c.exit, `${c.what}: exit code\n${bad.output}`);
      assert.match(bad.output, c.message, c.what);
      assert.ok(!bad.output.includes(secret(c.token)), `${c.what}: the token is never printed`);
      assert.ok(!/retrying in/.test(bad.output), `${c.what}: a refusal is final, no retry`);
      assert.equal((await metric(relay, 'periscope_auth_failures_total')) - failures, 1, `${c.what}: exactly one refused upgrade`);
      log(`1. ${c.what}: ${c.code}, agent exited ${exit.code} after ${ms} ms`);
    }
    assert.equal((await eng.get(`/api/sessions/${session.id}/agents`)).json.agents.length, agentsBefore, 'no agent was registered');
    for (const id of [rotated.id, closed.id]) assert.deepEqual((await eng.get(`/api/sessions/${id}/agents`)).json.agents, []);
    await unharmed('after bad tokens');
  });

  await t.test('2. impostor agents and malformed frames while a real capture runs: refused, the capture completes with 0 lost', async () => {
    const linesBefore = agent.output.length;
    const rec = await startCapture(eng, agentId, { kind: 'record', pid: target.pid, rate: 100, duration: 5 });
    await waitCapture(eng, rec.id, 10_000, (c) => c.chunks >= 2);

    // Another agent of the same session (join token), and one of another session on its credential.
    const sameSession = await connectAgent(relay, session.joinToken);
    await sameSession.hello();
    const other = await joinedAgent(relay, eng);
    const otherCred = await connectAgent(relay, other.welcome.credential!);
    const w = await otherCred.hello([{ captureId: rec.id, nextSeq: 0 }]);
    assert.deepEqual(w.resume, [], 'claiming the capture in hello gets no resume');
    const [forgedChunk] = buildChunks(1, 50);
    for (const [name, intruder] of [['same session', sameSession], ['other session (credential)', otherCred]] as const) {
      const next = (await getCapture(eng, rec.id)).chunks;
      // The very seq the relay waits for next: only ownership stops it.
      intruder.send({ type: 'chunk', captureId: rec.id, seq: next, chunk: encodeChunk(forgedChunk), stats: STATS });
      const err = await intruder.nextOfType('error', 5000, (m) => m.captureId === rec.id);
      assert.equal(err.code, 'UNKNOWN_CAPTURE', name);
      intruder.send({ type: 'capture_ended', captureId: rec.id, reason: 'error', chunks: 1, error: { code: 'PWNED', message: 'x' } });
      intruder.send({ type: 'error', captureId: rec.id, code: 'PWNED', message: 'fail it' });
      intruder.send({ type: 'dump_result', captureId: rec.id, threads: [] });
      assert.equal((await intruder.nextOfType('error', 5000, (m) => m.captureId === rec.id)).code, 'UNKNOWN_CAPTURE', name);
      assert.equal((await getCapture(eng, rec.id)).status, 'running', `${name}: the capture runs on`);
    }

    // Malformed frames: garbage, truncated, wrongly typed, oversized; on both sockets.
    const full = encode({ type: 'chunk', captureId: rec.id, seq: 0, chunk: encodeChunk(forgedChunk), stats: STATS });
    const abuses: { what: string; frame: Uint8Array; close: number }[] = [
      { what: 'garbage', frame: new Uint8Array(randomBytes(64)).fill(0xc1, 0, 1), close: CloseCode.BadMessage },
      { what: 'truncated', frame: full.subarray(0, Math.floor(full.length / 2)), close: CloseCode.BadMessage },
      { what: 'wrongly typed', frame: encode({ type: 'chunk', captureId: rec.id, seq: 'next', chunk: encodeChunk(forgedChunk), stats: STATS } as never), close: CloseCode.BadMessage },
      { what: 'oversized', frame: new Uint8Array(MAX_MESSAGE_BYTES + 1), close: 1009 },
    ];
    for (const abuse of abuses) {
      const a = await connectAgent(relay, session.joinToken);
      await a.hello();
      a.sendRaw(abuse.frame);
      assert.equal((await a.closed).code, abuse.close, `/ws/agent ${abuse.what}`);
      const ui = await connectUi(relay, eng);
      ui.sendRaw(abuse.what === 'wrongly typed' ? encode({ type: 'watch_capture', captureId: 42 } as never) : abuse.frame);
      assert.equal((await ui.closed).code, abuse.close, `/ws/ui ${abuse.what}`);
    }
    for (const p of [sameSession, other.agent, otherCred]) p.close();

    const done = await waitCapture(eng, rec.id, 15_000);
    assert.equal(done.status, 'complete', JSON.stringify(done));
    const end = await agent.waitEnd(rec.id);
    const { profile } = await storedProfile(relay, eng, rec.id);
    const loss = sampleLoss(profile, end);
    log(`2. impostors + ${abuses.length * 2} malformed frames during a real record: ${done.status}, taken ${loss.taken}, stored ${loss.stored}, LOST ${loss.lost}`);
    assert.equal(loss.lost, 0);
    assert.equal(done.chunks, end.chunks);
    assert.ok(!profile.strings.includes('compute'), "none of the impostor's frames were stored");
    const since = agent.output.slice(linesBefore);
    assert.ok(!/connection to \S+ lost|relay reported an error|malformed/.test(since), `the real agent saw none of it:\n${since}`);
    await unharmed('after impostors and malformed frames');
  });

  await t.test('3. a non-member engineer and cross-site requests cannot reach the real agent', async () => {
    // bob is an engineer with a session of his own, not a member of this one.
    const bob = await userClient(relay, eng, 'bob');
    const bobs = await createSession(bob, "bob's own session");
    assert.equal((await bob.get(`/api/sessions/${bobs.id}/agents`)).status, 200);
    const top = await startCapture(eng, agentId, { kind: 'top', pid: target.pid, rate: 100 });
    await waitCapture(eng, top.id, 10_000, (c) => c.status === 'running');
    const asks = asked();
    const attempts: [string, string, unknown?][] = [
      ['POST', `/api/agents/${agentId}/captures`, { kind: 'dump', pid: target.pid }],
      ['POST', `/api/agents/${agentId}/processes/refresh`],
      ['GET', `/api/agents/${agentId}`],
      ['GET', `/api/sessions/${session.id}/agents`],
      ['GET', `/api/sessions/${session.id}/captures`],
      ['GET', `/api/sessions/${session.id}/audit`],
      ['GET', `/api/captures/${top.id}`],
      ['GET', `/api/captures/${top.id}/download?format=raw`],
      ['POST', `/api/captures/${top.id}/stop`],
      ['POST', `/api/sessions/${session.id}/join-token`],
    ];
    for (const [method, path, body] of attempts) {
      const res = await bob.request(method, path, body);
      assert.equal(res.status, 404, `bob ${method} ${path}: ${res.text}`);
      assert.equal(res.json.error.code, 'NOT_FOUND');
    }
    const ui = await connectUi(relay, bob);
    ui.send({ type: 'subscribe_session', sessionId: session.id });
    ui.send({ type: 'watch_capture', captureId: top.id });
    for (let i = 0; i < 2; i++) assert.equal((await ui.nextOfType('error')).code, 'NOT_FOUND');
    assert.equal(ui.received.filter((m) => m.type !== 'error').length, 0, 'bob sees nothing of the session');
    ui.close();

    // The engineer's own cookie, from another site or without the CSRF token.
    const crossSite: [string, unknown, { csrf?: boolean; origin?: string | null }, string][] = [
      [`/api/agents/${agentId}/captures`, { kind: 'dump', pid: target.pid }, { origin: 'https://evil.example' }, 'CSRF_ORIGIN'],
      [`/api/agents/${agentId}/captures`, { kind: 'record', pid: target.pid, rate: 1000, duration: 3600 }, { csrf: false }, 'CSRF_TOKEN'],
      [`/api/agents/${agentId}/captures`, { kind: 'dump', pid: target.pid }, { csrf: false, origin: null }, 'CSRF_TOKEN'],
      [`/api/captures/${top.id}/stop`, undefined, { csrf: false }, 'CSRF_TOKEN'],
      [`/api/sessions/${session.id}/close`, undefined, { origin: 'https://evil.example', csrf: false }, 'CSRF_ORIGIN'],
      [`/api/sessions/${session.id}/join-token`, undefined, { csrf: false }, 'CSRF_TOKEN'],
    ];
    for (const [path, body, options, code] of crossSite) {
      const res = await eng.post(path, body, options);
      assert.equal(res.status, 403, `${path} ${JSON.stringify(options)}: ${res.text}`);
      assert.equal(res.json.error.code, code);
    }

    await new Promise((r) => setTimeout(r, 300));
    assert.equal(asked(), asks, `no request reached the customer's terminal:\n${agent.output}`);
    assert.equal((await getCapture(eng, top.id)).status, 'running', 'the top runs on');
    assert.equal((await eng.get(`/api/sessions/${session.id}`)).json.status, 'open');
    const audit = (await eng.get(`/api/sessions/${session.id}/audit?limit=1000`)).json.entries as { actor: string }[];
    assert.ok(!audit.some((e) => e.actor === 'bob'), 'nothing by bob in the audit log');
    assert.equal((await eng.post(`/api/captures/${top.id}/stop`)).status, 200);
    assert.equal((await waitCapture(eng, top.id, 10_000)).status, 'complete');
    const end = await agent.waitEnd(top.id);
    const loss = sampleLoss((await storedProfile(relay, eng, top.id)).profile, end);
    log(`3. ${attempts.length + 2} non-member and ${crossSite.length} cross-site attempts refused; the live top: taken ${loss.taken}, stored ${loss.stored}, LOST ${loss.lost}`);
    assert.equal(loss.lost, 0);
    await unharmed('after non-member and cross-site requests');
  });

  let joinToken = session.joinToken;
  await t.test('4. join token rotated while the real agent records: it keeps working on its credential; the old token is refused', async (t) => {
    const rec = await startCapture(eng, agentId, { kind: 'record', pid: target.pid, rate: 100, duration: 6 });
    await waitCapture(eng, rec.id, 10_000, (c) => c.chunks >= 2);
    const rotated = await eng.post(`/api/sessions/${session.id}/join-token`);
    assert.equal(rotated.status, 200, rotated.text);
    assert.notEqual(rotated.json.joinToken, session.joinToken);
    joinToken = rotated.json.joinToken as string;

    // Force a reconnect: the agent must come back on its credential, not the revoked join token.
    const before = (agent.output.match(/connected to \S+ as agent/g) ?? []).length;
    proxy.cutFor(1000);
    await eventually(() => (agent.output.match(/connected to \S+ as agent/g) ?? []).length > before, 30_000, 'the agent to reconnect');
    assert.match(agent.output.split('\n').filter((l) => l.includes('connected to')).at(-1)!, new RegExp(`as agent ${agentId} `));

    const old = new AgentProcess(t, relay.url, session.joinToken, ['--pids', String(target.pid)]);
    assert.equal((await old.exit()).code, 1);
    assert.match(old.output, /TOKEN_REVOKED/);
    const fresh = new AgentProcess(t, relay.url, joinToken, ['--pids', String(target.pid)]);
    const agents = await eventually(async () => {
      const list = (await eng.get(`/api/sessions/${session.id}/agents`)).json.agents as { id: string; online: boolean }[];
      return list.filter((a) => a.online).length === 2 ? list : undefined;
    }, 20_000, 'the new agent to join');
    assert.ok(agents.some((a) => a.id === agentId && a.online), 'the first agent is still online');

    const done = await waitCapture(eng, rec.id, 20_000);
    assert.equal(done.status, 'complete', JSON.stringify(done));
    const end = await agent.waitEnd(rec.id);
    const loss = sampleLoss((await storedProfile(relay, eng, rec.id)).profile, end);
    log(`4. rotated mid-record + 1 s cut: old token refused, new agent joined; the record: taken ${loss.taken}, stored ${loss.stored}, LOST ${loss.lost}`);
    assert.equal(loss.lost, 0);
    fresh.signal('SIGINT');
    assert.equal((await fresh.exit()).code, 0);
    await unharmed('after rotation');
  });

  await t.test('5. the session closed while the real agent records: it stops at once, the capture is incomplete and downloads, no way back', async (t) => {
    const rec = await startCapture(eng, agentId, { kind: 'record', pid: target.pid, rate: 100, duration: 30 });
    await waitCapture(eng, rec.id, 10_000, (c) => c.chunks >= 3);
    const closedAt = Date.now();
    const closed = await eng.post(`/api/sessions/${session.id}/close`);
    assert.equal(closed.status, 200, closed.text);
    assert.equal(closed.json.status, 'closed');
    const exit = await agent.exit(10_000);
    const exitMs = Date.now() - closedAt;
    assert.equal(exit.code, 0, agent.output);
    assert.match(agent.output, /the support session was closed/);
    const done = await getCapture(eng, rec.id);
    assert.equal(done.status, 'incomplete');
    assert.equal(done.error?.code, 'SESSION_CLOSED');
    const raw = await download(eng, rec.id, 'format=raw');
    assert.equal(raw.status, 200);
    assert.equal(topByOwn(leafCounts(parseRaw(raw.body)))[0]?.[0], s.truth.hot);
    assert.ok(!target.exited, 'the target is untouched');

    const again = new AgentProcess(t, relay.url, joinToken, ['--pids', String(target.pid)]);
    assert.equal((await again.exit()).code, 0);
    assert.match(again.output, /the support session was closed \(HTTP 401: SESSION_CLOSED/);
    log(`5. session closed: the agent exited 0 after ${exitMs} ms; capture ${done.status} (${done.error?.code}) with ${done.samples} samples kept; rejoining refused`);
    await unharmed('after closing the session');
  });
});
