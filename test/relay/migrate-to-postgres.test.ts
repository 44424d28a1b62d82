// scripts/migrate-to-postgres.ts end to end: an embedded data dir written
// through the embedded store (accounts, sign-ins, sessions closed and open,
// members, join tokens, agents, captures with leases and results, audit
// entries, chunks, the signing key) is copied by the real script, run as a
// child process with PERISCOPE_DATABASE_URL, into a real PostgreSQL; then the
// PostgreSQL store must answer exactly what the embedded one did, chunk bytes
// included. Skipped, saying why, without PostgreSQL binaries.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zeroStats } from '../../shared/capture-states.ts';
import { ChunkLog } from '../../relay/store/chunk-files.ts';
import type { CaptureEnd, CaptureRecord, Store } from '../../relay/store/contract.ts';
import { openSqliteStore } from '../../relay/store/sqlite-store.ts';
import { openPostgresStore } from '../../relay/store/postgres/index.ts';
import { NODE, ROOT } from '../helpers/relay.ts';
import { POSTGRES_PASSWORD, postgresUnavailable, startPostgres, type PostgresServer } from '../helpers/postgres.ts';

const SCRIPT = join(ROOT, 'scripts', 'migrate-to-postgres.ts');
const pgMissing = postgresUnavailable();
if (pgMissing) console.log(`# skipped: ${pgMissing}`);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runScript(args: string[], env: Record<string, string | undefined>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const fullEnv = { ...process.env, ...env };
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete fullEnv[k];
    const child = spawn(NODE, [SCRIPT, ...args], { cwd: ROOT, env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Every row the contract can read, from a store that holds the data below. */
async function everything(store: Store, ids: { users: string[]; sessions: string[]; agents: string[]; logins: string[]; jtis: string[] }) {
  return {
    users: await store.users.all(),
    logins: await Promise.all(ids.logins.map((id) => store.logins.byId(id))),
    sessions: await Promise.all(ids.sessions.map((id) => store.sessions.byId(id))),
    members: await Promise.all(ids.sessions.map((id) => store.sessions.members(id))),
    tokens: await Promise.all(ids.jtis.map((id) => store.joinTokens.byJti(id))),
    agents: await Promise.all(ids.sessions.map((id) => store.agents.forSession(id))),
    captures: await Promise.all(ids.sessions.map((id) => store.captures.forSession(id))),
    audit: await store.audit.all(1000),
  };
}

/** A capture's chunks, read back whichever way the engine stores them. */
async function chunksOf(store: Store, captureId: string): Promise<Buffer[]> {
  const readable = await store.chunks.readable(captureId);
  if (!readable) return [];
  const source = await store.chunks.renderSource(captureId, readable.count);
  if ('payloads' in source) return source.payloads.map((p) => Buffer.from(p));
  const log = new ChunkLog(source.path, false);
  try {
    return Array.from({ length: log.count }, (_, i) => log.read(i));
  } finally {
    log.close();
  }
}

describe('npm run migrate-to-postgres', { skip: pgMissing }, () => {
  let server: PostgresServer;
  let base: string;
  let dataDir: string;
  const key = new Uint8Array(Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256));
  const ids = { users: ['u-admin', 'u-alice'], sessions: ['s-open', 's-closed'], agents: ['a-1', 'a-2'], logins: ['l-1', 'l-2'], jtis: ['j-1', 'j-2'] };
  const captureIds = ['c-record', 'c-dump', 'c-leased', 'c-empty'];
  let before_: Awaited<ReturnType<typeof everything>>;
  const chunks = new Map<string, Buffer[]>();

  before(async () => {
    server = await startPostgres();
    base = mkdtempSync(join(tmpdir(), 'periscope-migrate-'));
    dataDir = join(base, 'data');
    const store = openSqliteStore(dataDir);
    await store.signingKey(() => key);
    await store.users.insert({ id: 'u-admin', username: 'admin', passwordHash: 'scrypt$admin', admin: true, createdAt: 1000 }, null);
    await store.users.insert({ id: 'u-alice', username: 'alice', passwordHash: 'scrypt$alice', admin: false, createdAt: 2000, disabledAt: 9000 }, 'u-admin');
    await store.users.recordSignIn('u-admin', 8000);
    await store.logins.insert({ id: 'l-1', userId: 'u-admin', csrfToken: 'csrf-1', createdAt: 8000, expiresAt: 10 ** 13, revokedAt: null });
    await store.logins.insert({ id: 'l-2', userId: 'u-alice', csrfToken: 'csrf-2', createdAt: 8100, expiresAt: 10 ** 13, revokedAt: null });
    await store.logins.revoke('l-2', 8200);
    for (const [id, createdAt] of [['s-open', 3000], ['s-closed', 4000]] as const) {
      await store.sessions.insert({ id, name: `session ${id} ✓`, createdBy: 'u-admin', createdAt, expiresAt: 10 ** 13, closedAt: null, closedBy: null, closeReason: null });
      await store.sessions.addMember(id, 'u-admin', null, createdAt);
    }
    await store.sessions.addMember('s-open', 'u-alice', 'u-admin', 3500);
    await store.sessions.close('s-closed', 7000, 'admin', 'closed');
    await store.joinTokens.insert({ jti: 'j-1', sessionId: 's-open', code: 'CODE000001', token: 'jwt.one', createdAt: 3000, expiresAt: 10 ** 13, revokedAt: null });
    await store.joinTokens.insert({ jti: 'j-2', sessionId: 's-closed', code: 'CODE000002', token: 'jwt.two', createdAt: 4000, expiresAt: 10 ** 13, revokedAt: null });
    await store.joinTokens.revokeForSession('s-closed', 7000);
    const processes = [{ pid: 42, cmdline: 'python app.py --flag "x"', version: '3.12.1', user: 'app', threads: 4, ppid: 1, startedAt: 2500 }];
    await store.agents.insert({ id: 'a-1', sessionId: 's-open', host: 'web-1', containerId: 'abc', arch: 'x86_64', agentVersion: '1.0.0', protocol: 2, createdAt: 3100, connectedAt: 3100, lastSeen: 3100, processes, user: 'app', ended: null });
    await store.agents.insert({ id: 'a-2', sessionId: 's-closed', host: 'web-2', containerId: '', arch: 'aarch64', agentVersion: '1.0.0', protocol: 2, createdAt: 4100, connectedAt: 4100, lastSeen: 4100, processes: [], user: '', ended: null });
    await store.agents.seen('a-2', 7000, 'session_closed');
    const base_: Omit<CaptureRecord, 'id' | 'kind' | 'sessionId' | 'agentId'> = {
      requestedBy: 'admin',
      pid: 42,
      options: { kind: 'record', pid: 42, rate: 100, duration: 10, subprocesses: true, mode: 'cpu', idle: true, gil: false, blocking: false },
      status: 'starting',
      samples: 0,
      chunks: 0,
      stats: zeroStats(),
      startedAt: 5000,
      endedAt: null,
      endReason: null,
      stopRequestedBy: null,
      error: null,
      result: null,
      tasks: null,
    };
    const record = { ...base_, id: 'c-record', kind: 'record' as const, sessionId: 's-open', agentId: 'a-1' };
    const dump = { ...base_, id: 'c-dump', kind: 'dump' as const, sessionId: 's-open', agentId: 'a-1', startedAt: 5100 };
    const leased = { ...base_, id: 'c-leased', kind: 'top' as const, sessionId: 's-open', agentId: 'a-1', startedAt: 5200 };
    const empty = { ...base_, id: 'c-empty', kind: 'record' as const, sessionId: 's-closed', agentId: 'a-2', startedAt: 5300 };
    for (const c of [record, dump, leased, empty]) await store.captures.insert(c);
    const w = await store.chunks.writer('c-record');
    const payloads = [Buffer.from('chunk zero'), Buffer.from([0, 255, 1, 254, 0, 0]), Buffer.alloc(200_000, 0xa5)];
    for (const p of payloads) await w.append(p);
    await store.chunks.finish('c-record');
    await store.captures.finish({ ...record, status: 'complete', samples: 77, chunks: 3, stats: { samples: 77, late: 2, ticks: 80, errors: 1 }, endedAt: 6000, endReason: 'duration' });
    await store.captures.finish({
      ...dump,
      status: 'complete',
      endedAt: 5150,
      endReason: 'dump',
      result: [{ thread_id: 1, name: 'MainThread', frames: [{ func: 'main', file: 'app.py', line: 1 }] }],
      tasks: { tasks: [], task_sources: [] },
    });
    await store.captures.requestStop('c-leased', 'alice');
    await store.captures.hold('c-leased', 'relay-old', 123_456);
    await store.captures.finish({ ...empty, status: 'failed', endedAt: 7000, endReason: 'session_closed', error: { code: 'SESSION_CLOSED', message: 'closed' } });
    await store.audit.record('admin', 'session.create', 's-open', { name: 'x' }, 3000);
    await store.audit.record('relay', 'relay.start', null, {}, 3001);
    await store.audit.record('admin', 'session.close', 's-closed', { reason: 'closed' }, 7000);
    before_ = await everything(store, ids);
    for (const id of captureIds) chunks.set(id, await chunksOf(store, id));
    await store.close();
    // A chunk file of no recorded capture is left behind, and said so.
    writeFileSync(join(dataDir, 'captures', 'stray.chunks'), '');
  });

  after(async () => {
    await server?.dispose();
    if (base) rmSync(base, { recursive: true, force: true });
  });

  test('copies every row, every chunk byte for byte and the signing key; prints the counts', async () => {
    const url = await server.newDatabase();
    const run = await runScript(['--data-dir', dataDir], { PERISCOPE_DATABASE_URL: url, PERISCOPE_DATA_DIR: undefined });
    assert.equal(run.code, 0, run.stderr + run.stdout);
    assert.match(run.stdout, /copied 2 users, 2 sign-ins, 2 sessions, 3 session members, 2 join tokens, 2 agents, 4 captures, 3 audit entries, 3 chunks \(0\.2 MB\), the signing key/);
    assert.match(run.stdout, /warning: 1 chunk files .* belong to no recorded capture/);
    assert.ok(!(run.stdout + run.stderr).includes(POSTGRES_PASSWORD), 'the password is never printed');

    const pg = await openPostgresStore(url);
    try {
      assert.deepEqual(await everything(pg, ids), before_);
      for (const id of captureIds) assert.deepEqual(await chunksOf(pg, id), chunks.get(id), `chunks of ${id}`);
      assert.deepEqual(Buffer.from(await pg.signingKey(() => assert.fail('the copied key must be used, not a new one'))), Buffer.from(key));
      // Audit ids continue after the copied ones.
      await pg.audit.record('admin', 'after.migration', null);
      const [newest] = await pg.audit.all(1);
      assert.ok(newest!.id > Math.max(...before_.audit.map((e) => e.id)));
      // The lease came across: the capture held by the old relay times out at its deadline.
      const end: CaptureEnd = { status: 'failed', reason: 'agent_disconnected', error: null };
      assert.deepEqual(await pg.captures.expireOverdue(123_456, end), []);
      const expired = await pg.captures.expireOverdue(123_457, end);
      assert.deepEqual(expired.map((c) => [c.id, c.stopRequestedBy]), [['c-leased', 'alice']]);
      // Appending continues after the copied chunks.
      const w = await pg.chunks.writer('c-record');
      assert.equal(w.count, 3);
    } finally {
      await pg.close();
    }
  });

  test('refuses a database that is not empty, copying nothing', async () => {
    const url = await server.newDatabase();
    const pg = await openPostgresStore(url);
    await pg.users.insert({ id: 'someone', username: 'someone', passwordHash: 'h', admin: false, createdAt: 1 }, null);
    await pg.close();
    const run = await runScript(['--data-dir', dataDir], { PERISCOPE_DATABASE_URL: url });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /BAD_ARGUMENT: the PostgreSQL database at 127\.0\.0\.1:\d+\/\w+ is not empty \(1 rows in users\).*nothing was copied.*empty database/);
    assert.ok(!(run.stdout + run.stderr).includes(POSTGRES_PASSWORD));
    const after_ = await openPostgresStore(url);
    assert.equal(await after_.users.count(), 1);
    await after_.close();
  });

  test('takes the data dir from PERISCOPE_DATA_DIR; the URL only from PERISCOPE_DATABASE_URL, never argv', async () => {
    const url = await server.newDatabase();
    const viaEnv = await runScript([], { PERISCOPE_DATABASE_URL: url, PERISCOPE_DATA_DIR: dataDir });
    assert.equal(viaEnv.code, 0, viaEnv.stderr);
    const inArgv = await runScript(['--data-dir', dataDir, url], { PERISCOPE_DATABASE_URL: undefined });
    assert.equal(inArgv.code, 1);
    assert.match(inArgv.stderr, /BAD_ARGUMENT: a URL was given on the command line; .*PERISCOPE_DATABASE_URL/);
    assert.ok(!inArgv.stderr.includes(POSTGRES_PASSWORD));
    const noUrl = await runScript(['--data-dir', dataDir], { PERISCOPE_DATABASE_URL: undefined });
    assert.equal(noUrl.code, 1);
    assert.match(noUrl.stderr, /BAD_CONFIG: PERISCOPE_DATABASE_URL is not set/);
    const noData = await runScript(['--data-dir', join(base, 'nothing-here')], { PERISCOPE_DATABASE_URL: url });
    assert.equal(noData.code, 1);
    assert.match(noData.stderr, /BAD_ARGUMENT: .*nothing-here holds no relay\.db/);
  });
});
