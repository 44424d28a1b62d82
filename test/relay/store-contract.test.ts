// The store contract (relay/store/contract.ts), one suite run against both
// engines: the embedded store (openSqliteStore, a temp data dir) and
// PostgreSQL (openPostgresStore, a real throwaway server from
// test/helpers/postgres.ts). Each test gets empty storage of its own. What
// only matters with several relays on one database (concurrent sweeps,
// migrations racing, a restarting server) is in the PostgreSQL-only part
// at the end. Without PostgreSQL binaries only that half is skipped, saying why.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { isPeriscopeError } from '../../shared/errors.ts';
import { zeroStats } from '../../shared/capture-states.ts';
import { MAX_STORED_CHUNK_BYTES } from '../../relay/captures/chunk-codec.ts';
import { ChunkLog } from '../../relay/store/chunk-files.ts';
import type { AgentRecord, CaptureEnd, CaptureRecord, Store, SupportSession, User } from '../../relay/store/contract.ts';
import { openSqliteStore } from '../../relay/store/sqlite-store.ts';
import { openPostgresStore } from '../../relay/store/postgres/index.ts';
import { POSTGRES_PASSWORD, postgresUnavailable, startPostgres, type PostgresServer } from '../helpers/postgres.ts';

interface Opened {
  store: Store;
  /** Another store on the same storage: what a second relay would open. */
  again(): Promise<Store>;
}

interface Engine {
  name: 'sqlite' | 'postgres';
  skip: string | undefined;
  fresh(t: TestContext): Promise<Opened>;
}

// ---- the engines ----

const tempDirs: string[] = [];
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const sqlite: Engine = {
  name: 'sqlite',
  skip: undefined,
  async fresh(t) {
    const base = mkdtempSync(join(tmpdir(), 'periscope-store-contract-'));
    tempDirs.push(base);
    const dataDir = join(base, 'data');
    const opened: Store[] = [];
    const open = async () => {
      const s = openSqliteStore(dataDir);
      opened.push(s);
      return s;
    };
    t.after(async () => {
      for (const s of opened) await s.close();
    });
    return { store: await open(), again: open };
  },
};

const pgMissing = postgresUnavailable();
if (pgMissing) console.log(`# PostgreSQL half skipped: ${pgMissing}`);
let server: PostgresServer | undefined;
/** Every line the PostgreSQL stores logged: none may show the password. */
const pgLog: string[] = [];

const postgres: Engine = {
  name: 'postgres',
  skip: pgMissing,
  async fresh(t) {
    server ??= await startPostgres();
    const url = await server.newDatabase();
    const opened: Store[] = [];
    const open = async () => {
      const s = await openPostgresStore(url, { log: (line) => pgLog.push(line) });
      opened.push(s);
      return s;
    };
    t.after(async () => {
      for (const s of opened) await s.close();
    });
    return { store: await open(), again: open };
  },
};

after(async () => {
  await server?.dispose();
  const leaked = pgLog.filter((line) => line.includes(POSTGRES_PASSWORD));
  assert.deepEqual(leaked, [], 'no log line may show the database password');
});

// ---- records to store ----

let serial = 0;
const uniq = (prefix: string) => `${prefix}${++serial}`;

function user(over: Partial<User> = {}): User {
  const id = over.id ?? uniq('user-');
  return { id, username: `name-${id}`, passwordHash: `hash-${id}`, admin: false, createdAt: 1000, disabledAt: null, lastSignInAt: null, ...over };
}

function session(createdBy: string, over: Partial<SupportSession> = {}): SupportSession {
  return { id: uniq('session-'), name: 'ACME', createdBy, createdAt: 1000, expiresAt: 100_000, closedAt: null, closedBy: null, closeReason: null, ...over };
}

function agent(sessionId: string, over: Partial<AgentRecord> = {}): AgentRecord {
  return {
    id: uniq('agent-'),
    sessionId,
    host: 'web-1',
    containerId: 'c0ffee',
    arch: 'x86_64',
    agentVersion: '1.2.3',
    protocol: 2,
    createdAt: 1000,
    connectedAt: 1000,
    lastSeen: 1000,
    processes: [{ pid: 42, cmdline: 'python app.py', version: '3.12.1', user: 'app', threads: 3, ppid: 1, startedAt: 999 }],
    user: 'app',
    ended: null,
    ...over,
  };
}

function capture(sessionId: string, agentId: string, over: Partial<CaptureRecord> = {}): CaptureRecord {
  return {
    id: uniq('capture-'),
    sessionId,
    agentId,
    requestedBy: 'alice',
    kind: 'record',
    pid: 42,
    options: { kind: 'record', pid: 42, rate: 100, duration: 30, subprocesses: false, mode: 'wall', idle: false, gil: false, blocking: false },
    status: 'starting',
    samples: 0,
    chunks: 0,
    stats: zeroStats(),
    startedAt: 2000,
    endedAt: null,
    endReason: null,
    stopRequestedBy: null,
    error: null,
    result: null,
    tasks: null,
    ...over,
  };
}

/** A user, a session of theirs (with them as member) and an agent in it. */
async function world(store: Store): Promise<{ u: User; s: SupportSession; a: AgentRecord }> {
  const u = user();
  await store.users.insert(u, null);
  const s = session(u.id);
  await store.sessions.insert(s);
  await store.sessions.addMember(s.id, u.id, null, 1000);
  const a = agent(s.id);
  await store.agents.insert(a);
  return { u, s, a };
}

/** The first `count` chunks as the render worker would read them, whichever form the engine gives. */
async function rendered(store: Store, captureId: string, count: number): Promise<Buffer[]> {
  const source = await store.chunks.renderSource(captureId, count);
  if ('payloads' in source) return source.payloads.map((p) => Buffer.from(p));
  const log = new ChunkLog(source.path, false);
  try {
    return Array.from({ length: Math.min(count, log.count) }, (_, i) => log.read(i));
  } finally {
    log.close();
  }
}

const EXPIRED: CaptureEnd = { status: 'failed', reason: 'agent_disconnected', error: { code: 'AGENT_DISCONNECTED', message: 'the agent left' } };
const ids = (cs: { id: string }[]) => cs.map((c) => c.id).sort();

// ---- the suite, once per engine ----

for (const engine of [sqlite, postgres]) {
  describe(`the ${engine.name} store`, { skip: engine.skip }, () => {
    const fresh = (t: TestContext) => engine.fresh(t);

    test('says which engine it is, is healthy and degrades nothing', async (t) => {
      const { store } = await fresh(t);
      assert.equal(store.engine, engine.name);
      const health = await store.health();
      assert.equal(health.ok, true);
      assert.equal(health.engine, engine.name);
      assert.deepEqual(health.problems, []);
      assert.equal(store.counters.degraded, false);
      assert.equal(store.counters.heldWrites, 0);
      assert.equal(store.newCaptureRefusal(), undefined);
    });

    describe('users', () => {
      test('insert, look up by id and username, count, and list oldest first (then by username)', async (t) => {
        const { store } = await fresh(t);
        assert.equal(await store.users.count(), 0);
        const b = user({ username: 'bob', createdAt: 2000 });
        const a = user({ username: 'alice', createdAt: 2000, admin: true });
        const old = user({ username: 'zed', createdAt: 1000, disabledAt: 1500, lastSignInAt: 1400 });
        for (const u of [b, a, old]) await store.users.insert(u, 'admin');
        assert.equal(await store.users.count(), 3);
        assert.deepEqual(await store.users.byId(a.id), a);
        assert.deepEqual(await store.users.byUsername('zed'), old);
        assert.equal(await store.users.byId('nobody'), undefined);
        assert.equal(await store.users.byUsername('nobody'), undefined);
        assert.deepEqual((await store.users.all()).map((u) => u.username), ['zed', 'alice', 'bob']);
      });

      test('a new user without disabledAt and lastSignInAt is enabled and never signed in', async (t) => {
        const { store } = await fresh(t);
        await store.users.insert({ id: 'u1', username: 'carol', passwordHash: 'h', admin: false, createdAt: 5 }, null);
        assert.deepEqual(await store.users.byId('u1'), { id: 'u1', username: 'carol', passwordHash: 'h', admin: false, createdAt: 5, disabledAt: null, lastSignInAt: null });
      });

      test('a username is taken once', async (t) => {
        const { store } = await fresh(t);
        await store.users.insert(user({ username: 'dup' }), null);
        await assert.rejects(store.users.insert(user({ username: 'dup' }), null));
        assert.equal(await store.users.count(), 1);
      });

      test('enabledAdmins counts enabled admins, not counting the one excepted', async (t) => {
        const { store } = await fresh(t);
        const a1 = user({ admin: true });
        const a2 = user({ admin: true });
        const off = user({ admin: true, disabledAt: 5 });
        for (const u of [a1, a2, off, user()]) await store.users.insert(u, null);
        assert.equal(await store.users.enabledAdmins(), 2);
        assert.equal(await store.users.enabledAdmins(a1.id), 1);
        await store.users.setDisabled(a2.id, 77);
        assert.equal(await store.users.enabledAdmins(a1.id), 0);
        assert.equal((await store.users.byId(a2.id))!.disabledAt, 77);
        await store.users.setDisabled(a2.id, null);
        assert.equal((await store.users.byId(a2.id))!.disabledAt, null);
      });

      test('setPasswordHash replaces the hash; recordSignIn keeps the latest sign-in', async (t) => {
        const { store } = await fresh(t);
        const u = user();
        await store.users.insert(u, null);
        await store.users.setPasswordHash(u.id, 'new-hash', 'a new password');
        assert.equal((await store.users.byId(u.id))!.passwordHash, 'new-hash');
        await store.users.recordSignIn(u.id, 5000);
        await store.users.recordSignIn(u.id, 3000);
        assert.equal((await store.users.byId(u.id))!.lastSignInAt, 5000);
        await store.users.recordSignIn(u.id, 6000);
        assert.equal((await store.users.byId(u.id))!.lastSignInAt, 6000);
      });

      test('liveSignInIds: only sign-ins neither revoked nor expired', async (t) => {
        const { store } = await fresh(t);
        const u = user();
        await store.users.insert(u, null);
        const login = (id: string, expiresAt: number, revokedAt: number | null = null) => ({ id, userId: u.id, csrfToken: `csrf-${id}`, createdAt: 1, expiresAt, revokedAt });
        await store.logins.insert(login('live', 10_000));
        await store.logins.insert(login('expired', 500));
        await store.logins.insert(login('revoked', 10_000, 700));
        assert.deepEqual(await store.users.liveSignInIds(u.id, 1000), ['live']);
        assert.deepEqual(await store.users.liveSignInIds('nobody', 1000), []);
      });
    });

    describe('web logins', () => {
      test('insert and byId round-trip; revoke keeps the first revocation; prune forgets expired ones', async (t) => {
        const { store } = await fresh(t);
        const u = user();
        await store.users.insert(u, null);
        const login = { id: 'L1', userId: u.id, csrfToken: 'csrf', createdAt: 100, expiresAt: 5000, revokedAt: null };
        await store.logins.insert(login);
        assert.deepEqual(await store.logins.byId('L1'), login);
        assert.equal(await store.logins.byId('nope'), undefined);
        await store.logins.revoke('L1', 200);
        await store.logins.revoke('L1', 300);
        assert.equal((await store.logins.byId('L1'))!.revokedAt, 200);
        await store.logins.revoke('nope', 300); // nothing to revoke: no error
        await store.logins.insert({ ...login, id: 'L2', expiresAt: 900 });
        await store.logins.prune(1000);
        assert.equal(await store.logins.byId('L2'), undefined);
        assert.ok(await store.logins.byId('L1'));
      });
    });

    describe('sessions', () => {
      test('insert and look up; forMember hides a session from non-members', async (t) => {
        const { store } = await fresh(t);
        const { u, s } = await world(store);
        const other = user();
        await store.users.insert(other, null);
        assert.deepEqual(await store.sessions.byId(s.id), s);
        assert.deepEqual(await store.sessions.forMember(s.id, u.id), s);
        assert.equal(await store.sessions.forMember(s.id, other.id), undefined);
        assert.equal(await store.sessions.forMember('nope', u.id), undefined);
        assert.equal(await store.sessions.isMember(s.id, u.id), true);
        assert.equal(await store.sessions.isMember(s.id, other.id), false);
      });

      test('listForMember: newest first, only the member’s', async (t) => {
        const { store } = await fresh(t);
        const u = user();
        const v = user();
        await store.users.insert(u, null);
        await store.users.insert(v, null);
        const older = session(u.id, { createdAt: 100 });
        const newer = session(u.id, { createdAt: 300 });
        const middle = session(u.id, { createdAt: 200 });
        const theirs = session(v.id, { createdAt: 400 });
        for (const s of [older, newer, middle, theirs]) await store.sessions.insert(s);
        for (const s of [older, newer, middle]) await store.sessions.addMember(s.id, u.id, null, 1);
        await store.sessions.addMember(theirs.id, v.id, null, 1);
        assert.deepEqual((await store.sessions.listForMember(u.id)).map((s) => s.id), [newer.id, middle.id, older.id]);
      });

      test('expired: open sessions whose time is up (expiresAt <= now)', async (t) => {
        const { store } = await fresh(t);
        const u = user();
        await store.users.insert(u, null);
        const due = session(u.id, { expiresAt: 1000 });
        const later = session(u.id, { expiresAt: 1001 });
        const closed = session(u.id, { expiresAt: 500 });
        for (const s of [due, later, closed]) await store.sessions.insert(s);
        await store.sessions.close(closed.id, 400, u.username, 'closed');
        assert.deepEqual(ids(await store.sessions.expired(1000)), [due.id]);
      });

      test('close: true the first time, false after; the first close stands', async (t) => {
        const { store } = await fresh(t);
        const { s } = await world(store);
        assert.equal(await store.sessions.close(s.id, 5000, 'alice', 'closed'), true);
        assert.equal(await store.sessions.close(s.id, 6000, null, 'expired'), false);
        const got = await store.sessions.byId(s.id);
        assert.equal(got!.closedAt, 5000);
        assert.equal(got!.closedBy, 'alice');
        assert.equal(got!.closeReason, 'closed');
        assert.equal(await store.sessions.close('nope', 1, null, 'expired'), false);
      });

      test('addMember: true once, false when already a member; members by time added, then username', async (t) => {
        const { store } = await fresh(t);
        const { u, s } = await world(store);
        const zoe = user({ username: 'zoe' });
        const amy = user({ username: 'amy' });
        await store.users.insert(zoe, null);
        await store.users.insert(amy, null);
        assert.equal(await store.sessions.addMember(s.id, zoe.id, u.id, 2000), true);
        assert.equal(await store.sessions.addMember(s.id, zoe.id, u.id, 3000), false);
        assert.equal(await store.sessions.addMember(s.id, amy.id, u.id, 2000), true);
        assert.deepEqual(await store.sessions.members(s.id), [
          { userId: u.id, username: u.username, addedAt: 1000 },
          { userId: amy.id, username: 'amy', addedAt: 2000 },
          { userId: zoe.id, username: 'zoe', addedAt: 2000 },
        ]);
      });
    });

    describe('join tokens', () => {
      test('insert, look up by jti and code, the newest unrevoked is active, revoking ends it', async (t) => {
        const { store } = await fresh(t);
        const { s } = await world(store);
        const token = (jti: string, code: string, createdAt: number) => ({ jti, sessionId: s.id, code, token: `jwt-${jti}`, createdAt, expiresAt: 9000, revokedAt: null });
        await store.joinTokens.insert(token('j1', 'CODE1', 100));
        await store.joinTokens.insert(token('j2', 'CODE2', 200));
        assert.equal(await store.joinTokens.codeExists('CODE1'), true);
        assert.equal(await store.joinTokens.codeExists('NOPE'), false);
        assert.deepEqual(await store.joinTokens.byJti('j1'), token('j1', 'CODE1', 100));
        assert.deepEqual(await store.joinTokens.byCode('CODE2'), token('j2', 'CODE2', 200));
        assert.equal(await store.joinTokens.byCode('NOPE'), undefined);
        assert.equal((await store.joinTokens.activeForSession(s.id))!.jti, 'j2');
        await store.joinTokens.revokeForSession(s.id, 300);
        assert.equal(await store.joinTokens.activeForSession(s.id), undefined);
        assert.equal((await store.joinTokens.byJti('j1'))!.revokedAt, 300);
        await store.joinTokens.insert(token('j3', 'CODE3', 400));
        assert.equal((await store.joinTokens.activeForSession(s.id))!.jti, 'j3');
        await assert.rejects(store.joinTokens.insert(token('j4', 'CODE3', 500)), 'a code is unique');
      });
    });

    describe('agents', () => {
      test('insert and byId round-trip every field; forSession oldest first', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        assert.deepEqual(await store.agents.byId(a.id), a);
        const older = agent(s.id, { createdAt: 500, user: '', processes: [] });
        await store.agents.insert(older);
        assert.deepEqual((await store.agents.forSession(s.id)).map((x) => x.id), [older.id, a.id]);
        assert.deepEqual(await store.agents.byId(older.id), older);
        assert.equal(await store.agents.byId('nope'), undefined);
        assert.deepEqual(await store.agents.forSession('nope'), []);
      });

      test('reconnected takes the new hello and clears ended; seen records the leaving and why; setProcesses', async (t) => {
        const { store } = await fresh(t);
        const { a } = await world(store);
        await store.agents.seen(a.id, 3000, 'customer');
        let got = await store.agents.byId(a.id);
        assert.equal(got!.lastSeen, 3000);
        assert.equal(got!.ended, 'customer');
        await store.agents.reconnected(a.id, { host: 'web-2', containerId: 'beef', arch: 'aarch64', agentVersion: '1.3.0', protocol: 3, user: 'root' }, 4000);
        got = await store.agents.byId(a.id);
        assert.deepEqual(got, { ...a, host: 'web-2', containerId: 'beef', arch: 'aarch64', agentVersion: '1.3.0', protocol: 3, user: 'root', connectedAt: 4000, lastSeen: 4000, ended: null });
        await store.agents.seen(a.id, 4500);
        assert.equal((await store.agents.byId(a.id))!.ended, null);
        const processes = [{ pid: 7, cmdline: 'python -m worker "x"', version: '3.13.0', user: 'w', threads: 1 }];
        await store.agents.setProcesses(a.id, processes, 5000);
        got = await store.agents.byId(a.id);
        assert.deepEqual(got!.processes, processes);
        assert.equal(got!.lastSeen, 5000);
        assert.equal(got!.connectedAt, 4000);
        await store.agents.seen('nope', 1); // an unknown agent: nothing happens
      });
    });

    describe('captures', () => {
      test('insert and byId: a new capture has zero counters and no end', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const c = capture(s.id, a.id);
        await store.captures.insert(c);
        assert.deepEqual(await store.captures.byId(c.id), c);
        assert.equal(await store.captures.byId('nope'), undefined);
      });

      test('forSession newest first; the active lists hold only starting and running captures', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const other = agent(s.id);
        await store.agents.insert(other);
        const first = capture(s.id, a.id, { startedAt: 100 });
        const second = capture(s.id, other.id, { startedAt: 200, status: 'running' });
        const third = capture(s.id, a.id, { startedAt: 300 });
        for (const c of [first, second, third]) await store.captures.insert(c);
        await store.captures.finish({ ...third, status: 'complete', endedAt: 400, endReason: 'duration' });
        assert.deepEqual((await store.captures.forSession(s.id)).map((c) => c.id), [third.id, second.id, first.id]);
        assert.deepEqual(ids(await store.captures.activeForAgent(a.id)), [first.id]);
        assert.deepEqual(ids(await store.captures.activeForSession(s.id)), ids([first, second]));
        assert.deepEqual(ids(await store.captures.allActive()), ids([first, second]));
        assert.deepEqual(await store.captures.activeForSession('nope'), []);
      });

      test('save writes every later field, whatever the stored status; JSON fields round-trip exactly', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const c = capture(s.id, a.id, { kind: 'dump' });
        await store.captures.insert(c);
        await store.captures.finish({ ...c, status: 'complete', endedAt: 3000, endReason: 'dump' });
        const late: CaptureRecord = {
          ...c,
          status: 'complete',
          samples: 12,
          chunks: 0,
          stats: { samples: 12, late: 1, ticks: 13, errors: 0 },
          endedAt: 3000,
          endReason: 'dump',
          result: [{ thread_id: 1, name: 'MainThread', frames: [{ func: 'héllo ☃', line: 3, b: 'z', a: null }] }],
          tasks: { tasks: [], task_sources: [] },
          stopRequestedBy: 'bob',
          error: { code: 'PROCESS_EXITED', message: 'gone "quoted"' },
        };
        await store.captures.save(late);
        assert.deepEqual(await store.captures.byId(c.id), late);
      });

      test('progress writes an active capture and says so; never clears a stop requested elsewhere', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const c = capture(s.id, a.id);
        await store.captures.insert(c);
        const running = { ...c, status: 'running' as const, samples: 10, chunks: 2, stats: { samples: 10, late: 0, ticks: 10, errors: 0 } };
        assert.equal(await store.captures.progress(running), true);
        assert.deepEqual(await store.captures.byId(c.id), running);
        assert.equal(await store.captures.requestStop(c.id, 'bob'), true);
        // This relay's copy does not know of the stop: writing it must not undo it.
        assert.equal(await store.captures.progress({ ...running, samples: 20, chunks: 3 }), true);
        const got = await store.captures.byId(c.id);
        assert.equal(got!.stopRequestedBy, 'bob');
        assert.equal(got!.samples, 20);
        assert.equal(got!.chunks, 3);
      });

      test('finish: true once, then false; progress and requestStop after it are refused and change nothing', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const c = capture(s.id, a.id, { status: 'running', samples: 5 });
        await store.captures.insert(c);
        await store.captures.requestStop(c.id, 'alice');
        const done: CaptureRecord = { ...c, status: 'complete', samples: 8, chunks: 2, endedAt: 5000, endReason: 'stopped' };
        assert.equal(await store.captures.finish(done), true);
        const ended = await store.captures.byId(c.id);
        assert.deepEqual(ended, { ...done, stopRequestedBy: 'alice' }, 'finish keeps the stop request too');
        assert.equal(await store.captures.finish({ ...done, status: 'failed', endReason: 'agent_disconnected', endedAt: 6000 }), false);
        assert.equal(await store.captures.progress({ ...c, status: 'running', samples: 99 }), false);
        assert.equal(await store.captures.requestStop(c.id, 'bob'), false);
        assert.deepEqual(await store.captures.byId(c.id), ended);
        assert.equal(await store.captures.finish(capture(s.id, a.id, { id: 'never-inserted' })), false);
        assert.equal(await store.captures.requestStop('never-inserted', 'bob'), false);
      });

      test('expireOverdue ends exactly the active captures whose deadline passed, once', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const overdue = capture(s.id, a.id, { startedAt: 1, status: 'running', samples: 3, stopRequestedBy: 'carol' });
        const due = capture(s.id, a.id, { startedAt: 2 });
        const noDeadline = capture(s.id, a.id, { startedAt: 3 });
        const ended = capture(s.id, a.id, { startedAt: 4 });
        for (const c of [overdue, due, noDeadline, ended]) await store.captures.insert(c);
        await store.captures.progress(overdue);
        await store.captures.hold(overdue.id, 'relay-A', 999);
        await store.captures.hold(due.id, null, 1000);
        await store.captures.hold(ended.id, 'relay-A', 10);
        await store.captures.finish({ ...ended, status: 'complete', endedAt: 20, endReason: 'duration' });
        const swept = await store.captures.expireOverdue(1000, EXPIRED);
        assert.deepEqual(swept, [{ ...overdue, status: 'failed', endReason: 'agent_disconnected', error: EXPIRED.error, endedAt: 1000 }]);
        assert.deepEqual(await store.captures.byId(overdue.id), swept[0]);
        assert.deepEqual(await store.captures.expireOverdue(1000, EXPIRED), [], 'never twice');
        assert.equal((await store.captures.byId(ended.id))!.status, 'complete', 'an ended capture is left alone');
        assert.deepEqual(ids(await store.captures.expireOverdue(1001, EXPIRED)), [due.id], 'deadline < now: due at 1000 ends from 1001');
        assert.equal((await store.captures.byId(noDeadline.id))!.status, 'starting');
      });

      test('renew extends the leases of one owner’s active captures only', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const mine = capture(s.id, a.id);
        const theirs = capture(s.id, a.id);
        for (const c of [mine, theirs]) await store.captures.insert(c);
        await store.captures.hold(mine.id, 'relay-A', 100);
        await store.captures.hold(theirs.id, 'relay-B', 100);
        await store.captures.renew('relay-A', 500);
        assert.deepEqual(ids(await store.captures.expireOverdue(200, EXPIRED)), [theirs.id]);
        assert.deepEqual(ids(await store.captures.expireOverdue(501, EXPIRED)), [mine.id]);
      });

      test('release hands an agent’s captures of one owner a final deadline that renew no longer moves', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const other = agent(s.id);
        await store.agents.insert(other);
        const left = capture(s.id, a.id);
        const stays = capture(s.id, other.id);
        const elsewhere = capture(s.id, a.id);
        for (const c of [left, stays, elsewhere]) await store.captures.insert(c);
        await store.captures.hold(left.id, 'relay-A', 1000);
        await store.captures.hold(stays.id, 'relay-A', 1000);
        await store.captures.hold(elsewhere.id, 'relay-B', 1000);
        await store.captures.release(a.id, 'relay-A', 300);
        await store.captures.renew('relay-A', 2000); // `left` has no owner now: not renewed
        assert.deepEqual(ids(await store.captures.expireOverdue(301, EXPIRED)), [left.id]);
        assert.deepEqual(ids(await store.captures.expireOverdue(1001, EXPIRED)), [elsewhere.id]);
        assert.deepEqual(ids(await store.captures.expireOverdue(2001, EXPIRED)), [stays.id]);
      });

      test('hold again (the agent came back) replaces the deadline', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const c = capture(s.id, a.id);
        await store.captures.insert(c);
        await store.captures.hold(c.id, 'relay-A', 100);
        await store.captures.release(a.id, 'relay-A', 150);
        await store.captures.hold(c.id, 'relay-B', 900);
        assert.deepEqual(await store.captures.expireOverdue(500, EXPIRED), []);
        assert.deepEqual(ids(await store.captures.expireOverdue(901, EXPIRED)), [c.id]);
      });

      test('two stores on the same storage sweeping at once end each overdue capture exactly once', async (t) => {
        const { store, again } = await fresh(t);
        const other = await again();
        const { s, a } = await world(store);
        const all: CaptureRecord[] = [];
        for (let i = 0; i < 40; i++) {
          const c = capture(s.id, a.id, { startedAt: i });
          all.push(c);
          await store.captures.insert(c);
          await store.captures.hold(c.id, null, 100 + i);
        }
        for (let round = 0; round < 4; round++) {
          const now = 111 + round * 10;
          const [x, y] = await Promise.all([store.captures.expireOverdue(now, EXPIRED), other.captures.expireOverdue(now, EXPIRED)]);
          const both = ids([...x, ...y]);
          assert.equal(new Set(both).size, both.length, `round ${round}: a capture was ended twice`);
        }
        const [x, y] = await Promise.all([store.captures.expireOverdue(10_000, EXPIRED), other.captures.expireOverdue(10_000, EXPIRED)]);
        assert.deepEqual(await store.captures.allActive(), []);
        assert.ok(x.length + y.length <= all.length);
      });
    });

    describe('audit', () => {
      test('newest first, by session, paged back by id; detail round-trips', async (t) => {
        const { store } = await fresh(t);
        const { s } = await world(store);
        await store.audit.record('alice', 'session.create', s.id, { name: 'ACME', n: 1, nested: { ok: true } }, 100);
        await store.audit.record('relay', 'relay.start', null, undefined, 200);
        await store.audit.record('agent:x', 'agent.join', s.id, {}, 300);
        await store.audit.record('bob', 'capture.start', s.id, { pid: 42 }, 400);
        const all = await store.audit.all(10);
        assert.deepEqual(all.map((e) => e.action), ['capture.start', 'agent.join', 'relay.start', 'session.create']);
        assert.ok(all.every((e, i) => i === 0 || e.id < all[i - 1]!.id), 'ids descend');
        const oldest = all[3]!;
        assert.deepEqual(oldest, { id: oldest.id, ts: 100, actor: 'alice', sessionId: s.id, action: 'session.create', detail: { name: 'ACME', n: 1, nested: { ok: true } } });
        assert.deepEqual(all[2]!.detail, {});
        assert.equal(all[2]!.sessionId, null);
        const forSession = await store.audit.forSession(s.id, 2);
        assert.deepEqual(forSession.map((e) => e.action), ['capture.start', 'agent.join']);
        const next = await store.audit.forSession(s.id, 2, forSession[1]!.id);
        assert.deepEqual(next.map((e) => e.action), ['session.create']);
        assert.deepEqual((await store.audit.all(2, all[1]!.id)).map((e) => e.action), ['relay.start', 'session.create']);
        await store.audit.record('alice', 'later', null);
        const [newest] = await store.audit.all(1);
        assert.ok(Math.abs(newest!.ts - Date.now()) < 60_000, 'ts defaults to now');
      });
    });

    describe('transactions', () => {
      test('all of it lands, and the result comes back', async (t) => {
        const { store } = await fresh(t);
        const result = await store.transaction(async (tx) => {
          await tx.users.insert(user({ id: 'tx-1' }), null);
          await tx.users.insert(user({ id: 'tx-2' }), null);
          return tx.users.count();
        });
        assert.equal(result, 2);
        assert.equal(await store.users.count(), 2);
      });

      test('a throw undoes all of it and is rethrown', async (t) => {
        const { store } = await fresh(t);
        const { s } = await world(store);
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.users.insert(user({ id: 'gone' }), null);
            assert.equal(await tx.sessions.close(s.id, 5, null, 'closed'), true);
            assert.ok(await tx.users.byId('gone'), 'seen inside the transaction');
            throw new Error('changed my mind');
          }),
          /changed my mind/,
        );
        assert.equal(await store.users.byId('gone'), undefined);
        assert.equal((await store.sessions.byId(s.id))!.closedAt, null);
        // The store still works after a rollback.
        assert.equal(await store.sessions.close(s.id, 6, null, 'closed'), true);
      });

      test('a failing statement undoes the statements before it', async (t) => {
        const { store } = await fresh(t);
        const u = user({ username: 'taken' });
        await store.users.insert(u, null);
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.users.insert(user({ id: 'first' }), null);
            await tx.users.insert(user({ username: 'taken' }), null);
          }),
        );
        assert.equal(await store.users.byId('first'), undefined);
        assert.equal(await store.users.count(), 1);
      });
    });

    describe('chunks', () => {
      test('append, count, bytes, read, readable and renderSource; a reopened writer continues', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const c = capture(s.id, a.id);
        await store.captures.insert(c);
        assert.equal(await store.chunks.readable(c.id), undefined, 'nothing stored yet');
        const w = await store.chunks.writer(c.id);
        assert.equal(w.count, 0);
        assert.equal(w.damage, undefined);
        const payloads = [Buffer.from('first'), new Uint8Array([0, 1, 2, 255, 0]), Buffer.alloc(70_000, 7)];
        let total = 0;
        for (const p of payloads) {
          const before = w.bytes;
          await w.append(p);
          total += p.byteLength;
          assert.ok(w.bytes >= before + p.byteLength, 'bytes grow by at least the payload');
        }
        assert.equal(w.count, 3);
        assert.ok(w.bytes >= total);
        assert.deepEqual(await w.read(1), Buffer.from([0, 1, 2, 255, 0]));
        assert.deepEqual(await store.chunks.read(c.id, 2), Buffer.alloc(70_000, 7));
        assert.deepEqual(await store.chunks.readable(c.id), { count: 3, damage: undefined });
        await store.chunks.finish(c.id);
        assert.deepEqual(await rendered(store, c.id, 2), payloads.slice(0, 2).map((p) => Buffer.from(p)));
        assert.deepEqual(await rendered(store, c.id, 3), payloads.map((p) => Buffer.from(p)));
        const again = await store.chunks.writer(c.id);
        assert.equal(again.count, 3);
        await again.append(Buffer.from('fourth'));
        assert.deepEqual(await store.chunks.read(c.id, 3), Buffer.from('fourth'));
        await assert.rejects(store.chunks.read(c.id, 4), RangeError);
        assert.match(store.chunks.describe(c.id), new RegExp(c.id));
        await store.chunks.closeAll();
      });

      test('an empty chunk and one over the limit are refused CHUNK_TOO_LARGE, and nothing is stored', async (t) => {
        const { store } = await fresh(t);
        const { s, a } = await world(store);
        const c = capture(s.id, a.id);
        await store.captures.insert(c);
        const w = await store.chunks.writer(c.id);
        await assert.rejects(w.append(new Uint8Array(0)), (err) => isPeriscopeError(err, 'CHUNK_TOO_LARGE'));
        await assert.rejects(w.append(Buffer.alloc(MAX_STORED_CHUNK_BYTES + 1)), (err) => isPeriscopeError(err, 'CHUNK_TOO_LARGE') && /limit of \d+ bytes/.test(err.message));
        assert.equal(w.count, 0);
        await w.append(Buffer.alloc(MAX_STORED_CHUNK_BYTES, 1));
        assert.equal(w.count, 1);
        assert.equal((await store.chunks.read(c.id, 0)).length, MAX_STORED_CHUNK_BYTES);
      });
    });

    describe('the signing key', () => {
      test('made once, then read back; a second store on the same storage gets the same key', async (t) => {
        const { store, again } = await fresh(t);
        let made = 0;
        const create = () => {
          made++;
          return new Uint8Array(Array.from({ length: 32 }, () => Math.floor(Math.random() * 256)));
        };
        const key = await store.signingKey(create);
        assert.equal(key.length, 32);
        assert.deepEqual(Buffer.from(await store.signingKey(create)), Buffer.from(key));
        assert.equal(made, 1);
        const other = await again();
        assert.deepEqual(Buffer.from(await other.signingKey(create)), Buffer.from(key));
      });
    });
  });
}

// ---- PostgreSQL only: several relays on one database, and a database that goes away ----

describe('the postgres store with several relays and an unreliable server', { skip: pgMissing }, () => {
  let url: string;
  before(async () => {
    server ??= await startPostgres();
    url = await server.newDatabase();
  });

  test('relays starting at once on a fresh database agree on one schema and one signing key', async () => {
    const fresh = await server!.newDatabase();
    const stores = await Promise.all(Array.from({ length: 4 }, () => openPostgresStore(fresh, { log: (line) => pgLog.push(line) })));
    try {
      const keys = await Promise.all(stores.map((s, i) => s.signingKey(() => new Uint8Array(32).fill(i + 1))));
      for (const k of keys) assert.deepEqual(Buffer.from(k), Buffer.from(keys[0]!));
      const client = new pg.Client({ connectionString: fresh });
      await client.connect();
      try {
        const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
        assert.deepEqual(rows.map((r) => r.version), rows.map((_, i) => i + 1), 'each migration recorded once');
        assert.ok(rows.length >= 1);
      } finally {
        await client.end();
      }
      await stores[0]!.users.insert(user(), null);
      assert.equal(await stores[3]!.users.count(), 1, 'they share one database');
    } finally {
      for (const s of stores) await s.close();
    }
  });

  test('opening again is a no-op for the schema; a database from a newer relay is refused BAD_CONFIG', async () => {
    const fresh = await server!.newDatabase();
    const first = await openPostgresStore(fresh, { log: (line) => pgLog.push(line) });
    await first.users.insert(user({ id: 'kept' }), null);
    await first.close();
    const second = await openPostgresStore(fresh, { log: (line) => pgLog.push(line) });
    assert.ok(await second.users.byId('kept'));
    await second.close();
    const client = new pg.Client({ connectionString: fresh });
    await client.connect();
    await client.query("INSERT INTO schema_migrations (version, description, applied_at) VALUES (999, 'from the future', 0)");
    await client.end();
    await assert.rejects(openPostgresStore(fresh, { log: (line) => pgLog.push(line) }), (err) => isPeriscopeError(err, 'BAD_CONFIG') && /newer relay/.test(err.message));
  });

  test('two relays appending the same seq: the second gets CHUNK_OUT_OF_SEQUENCE and takes up the stored count', async (t) => {
    const a = await openPostgresStore(url, { log: (line) => pgLog.push(line) });
    const b = await openPostgresStore(url, { log: (line) => pgLog.push(line) });
    t.after(async () => {
      await a.close();
      await b.close();
    });
    const { s, a: ag } = await world(a);
    const c = capture(s.id, ag.id);
    await a.captures.insert(c);
    const wa = await a.chunks.writer(c.id);
    const wb = await b.chunks.writer(c.id);
    await wa.append(Buffer.from('from A'));
    await assert.rejects(wb.append(Buffer.from('from B')), (err) => isPeriscopeError(err, 'CHUNK_OUT_OF_SEQUENCE') && err.message.includes(c.id));
    assert.equal(wb.count, 1);
    await wb.append(Buffer.from('B next'));
    assert.deepEqual(await rendered(a, c.id, 10), [Buffer.from('from A'), Buffer.from('B next')]);
  });

  test('a transaction inside a transaction is a savepoint: its failure, caught, undoes only its own part', async (t) => {
    const store = await openPostgresStore(url, { log: (line) => pgLog.push(line) });
    t.after(() => store.close());
    await store.transaction(async (tx) => {
      await tx.users.insert(user({ id: 'outer' }), null);
      await assert.rejects(
        tx.transaction(async (inner) => {
          await inner.users.insert(user({ id: 'inner' }), null);
          throw new Error('inner fails');
        }),
        /inner fails/,
      );
      await tx.users.insert(user({ id: 'outer-after' }), null);
    });
    assert.ok(await store.users.byId('outer'));
    assert.ok(await store.users.byId('outer-after'));
    assert.equal(await store.users.byId('inner'), undefined);
  });

  test('two relays each disabling the other admin at the same moment: one wins, an enabled admin remains (serializable transactions)', async (t) => {
    const fresh = await server!.newDatabase();
    const a = await openPostgresStore(fresh, { log: (line) => pgLog.push(line) });
    const b = await openPostgresStore(fresh, { log: (line) => pgLog.push(line) });
    t.after(async () => {
      await a.close();
      await b.close();
    });
    const ann = user({ id: 'ann', username: 'ann', admin: true });
    const bob = user({ id: 'bob', username: 'bob', admin: true });
    for (const u of [ann, bob]) await a.users.insert(u, null);
    // Both read "one other enabled admin" before either writes: only serializable transactions stop the second write.
    let reads = 0;
    let bothRead!: () => void;
    const met = new Promise<void>((resolve) => (bothRead = resolve));
    const disable = (store: Store, actor: User, target: User) =>
      store.transaction(async (tx) => {
        const others = await tx.users.enabledAdmins(target.id);
        if (++reads === 2) bothRead();
        await Promise.race([met, new Promise((r) => setTimeout(r, 2000))]);
        if (others === 0) throw new Error('LAST_ADMIN');
        await tx.users.setDisabled(target.id, Date.now());
        return actor.id;
      });
    const results = await Promise.allSettled([disable(a, ann, bob), disable(b, bob, ann)]);
    const enabled = (await a.users.all()).filter((u) => u.admin && u.disabledAt === null);
    assert.equal(enabled.length, 1, `one admin stays enabled: ${JSON.stringify(results.map((r) => r.status))}`);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
  });

  test('chunks of a capture that is not recorded are refused UNKNOWN_CAPTURE', async (t) => {
    const store = await openPostgresStore(url, { log: (line) => pgLog.push(line) });
    t.after(() => store.close());
    const w = await store.chunks.writer('no-such-capture');
    await assert.rejects(w.append(Buffer.from('x')), (err) => isPeriscopeError(err, 'UNKNOWN_CAPTURE'));
    assert.match(store.chunks.describe('abc'), /the rows of capture abc in PostgreSQL table capture_chunks/);
  });

  test('BIGINT columns read back as numbers, without changing pg’s parsers for anyone else', async (t) => {
    const store = await openPostgresStore(url, { log: (line) => pgLog.push(line) });
    t.after(() => store.close());
    const u = user({ createdAt: Date.UTC(2030, 0, 1), lastSignInAt: 2 ** 52 });
    await store.users.insert(u, null);
    assert.deepEqual(await store.users.byId(u.id), u);
    assert.equal(pg.types.getTypeParser(20, 'text')('5'), '5', "pg's global int8 parser is untouched");
  });

  test('unreachable at start: rejects DATABASE_UNREACHABLE naming host:port, never the password', async () => {
    const closedPort = `postgres://periscope:${POSTGRES_PASSWORD}@127.0.0.1:1/periscope`;
    const lines: string[] = [];
    await assert.rejects(openPostgresStore(closedPort, { log: (line) => lines.push(line), connectTimeoutMs: 2000 }), (err) => {
      assert.ok(isPeriscopeError(err, 'DATABASE_UNREACHABLE'), String(err));
      assert.match(err.message, /127\.0\.0\.1:1\/periscope/);
      assert.match(err.message, /start the relay again/);
      assert.ok(!err.message.includes(POSTGRES_PASSWORD));
      return true;
    });
    assert.ok(lines.every((l) => !l.includes(POSTGRES_PASSWORD)));
  });

  test('a URL that is not one is refused BAD_CONFIG without quoting it', async () => {
    await assert.rejects(openPostgresStore(`not a url ${POSTGRES_PASSWORD}`), (err) => isPeriscopeError(err, 'BAD_CONFIG') && !err.message.includes(POSTGRES_PASSWORD));
    await assert.rejects(openPostgresStore(`mysql://u:${POSTGRES_PASSWORD}@h/db`), (err) => isPeriscopeError(err, 'BAD_CONFIG') && !err.message.includes(POSTGRES_PASSWORD));
  });

  describe('while PostgreSQL restarts, stops and crashes', () => {
    // A server of its own: stopping it must not disturb the other tests.
    let own: PostgresServer;
    let store: Store;
    const lines: string[] = [];
    before(async () => {
      own = await startPostgres();
      store = await openPostgresStore(own.url, { log: (line) => lines.push(line), connectTimeoutMs: 2000, healthTimeoutMs: 2000 });
    });
    after(async () => {
      await store?.close();
      await own?.dispose();
      assert.ok(lines.every((l) => !l.includes(POSTGRES_PASSWORD)), 'no log line shows the password');
    });

    test('a restart drops idle connections without crashing; the next queries work', async () => {
      const u = user();
      await store.users.insert(u, null);
      // Several idle connections in the pool, so the restart kills more than one.
      await Promise.all(Array.from({ length: 5 }, () => store.users.count()));
      await own.restart();
      assert.deepEqual(await eventually(() => store.users.byId(u.id)), u);
      assert.equal((await store.health()).ok, true);
    });

    test('while it is stopped: DATABASE_UNREACHABLE (503) naming the server, health says so, new captures are refused; all back after it starts', async () => {
      await store.users.count();
      await own.stop();
      await assert.rejects(store.users.count(), (err) => {
        assert.ok(isPeriscopeError(err, 'DATABASE_UNREACHABLE'), String(err));
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${own.port}/periscope`));
        assert.match(err.message, /reconnects by itself/);
        assert.ok(!err.message.includes(POSTGRES_PASSWORD));
        return true;
      });
      await assert.rejects(
        store.transaction(async (tx) => tx.users.count()),
        (err) => isPeriscopeError(err, 'DATABASE_UNREACHABLE'),
      );
      assert.equal(store.counters.degraded, true);
      const refusal = store.newCaptureRefusal();
      assert.ok(isPeriscopeError(refusal, 'DATABASE_UNREACHABLE'));
      const health = await store.health();
      assert.equal(health.ok, false);
      assert.equal(health.problems.length, 1);
      assert.equal(health.problems[0]!.code, 'DATABASE_UNREACHABLE');
      assert.match(health.problems[0]!.message, new RegExp(`127\\.0\\.0\\.1:${own.port}`));
      assert.ok(!Number.isNaN(Date.parse(health.problems[0]!.since)));
      assert.ok(!JSON.stringify(health).includes(POSTGRES_PASSWORD));
      await own.start();
      assert.equal(await store.users.count(), 1);
      assert.equal(store.counters.degraded, false);
      assert.equal(store.newCaptureRefusal(), undefined);
      assert.equal((await store.health()).ok, true);
      assert.ok(lines.some((l) => l.includes('DATABASE_UNREACHABLE')) && lines.some((l) => /answers again/.test(l)), lines.join('\n'));
    });

    test('a crash in the middle of a transaction rejects it DATABASE_UNREACHABLE; nothing of it lands', async () => {
      let release!: () => void;
      const paused = new Promise<void>((resolve) => (release = resolve));
      let inside!: () => void;
      const started = new Promise<void>((resolve) => (inside = resolve));
      const tx = store.transaction(async (t) => {
        await t.users.insert(user({ id: 'half' }), null);
        inside();
        await paused;
        await t.users.insert(user({ id: 'other-half' }), null);
      });
      await started;
      await own.kill();
      release();
      await assert.rejects(tx, (err) => isPeriscopeError(err, 'DATABASE_UNREACHABLE'));
      await own.start();
      assert.equal(await eventually(() => store.users.byId('half').then((u) => (u === undefined ? 'absent' : 'present'))), 'absent');
      assert.equal(await store.users.byId('other-half'), undefined);
    });
  });
});

/** Retries `fn` while it rejects DATABASE_UNREACHABLE (the first query after a restart may find a dead connection). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isPeriscopeError(err, 'DATABASE_UNREACHABLE') || Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
