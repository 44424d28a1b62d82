// The capture state machine (relay/captures/capture-service.ts), in process:
// a real store (openSqliteStore: node:sqlite and chunk files in a temp dir),
// a fake agent link that says which relay holds each agent and records what
// is sent to it, a listener that records what viewers would hear, and
// node:test's mock timers for the clock, the wait for missing chunks and the
// open-ended cap (no sleeping). Grace periods are deadlines in the store:
// tests move the clock and call sweep() themselves. Two services on one
// store stand for two relays sharing it. Expected statuses and end reasons come from
// shared/capture-states.ts: the agent's through STATUS_AFTER_END, the relay's
// through names the compiler checks against RELAY_END_REASONS.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import { isPeriscopeError } from '../../shared/errors.ts';
import {
  ACTIVE_CAPTURE_STATUSES,
  CAPTURE_END_REASONS,
  CAPTURE_STATUSES,
  RELAY_END_REASONS,
  STATUS_AFTER_END,
  isActiveStatus,
  type CaptureStatsWire,
  type CaptureStatus,
  type RelayEndReason,
} from '../../shared/capture-states.ts';
import { PROTOCOL_VERSION, encodeChunk, type CaptureSpec, type ChunkMessage, type RelayToAgent } from '../../shared/protocol.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import type { ProfileChunk } from '../../shared/profile/chunk.ts';
import { openSqliteStore } from '../../relay/store/sqlite-store.ts';
import type { ChunkWriter, Store } from '../../relay/store/contract.ts';
import { ChunkLog } from '../../relay/store/chunk-files.ts';
import type { AgentRecord } from '../../relay/store/agents.ts';
import type { CaptureRecord } from '../../relay/store/captures.ts';
import { Metrics } from '../../relay/metrics.ts';
import { relayLog, setRelayLog, type Log } from '../../relay/log.ts';
import { CaptureService, MAX_CAPTURE_BYTES, MAX_OPEN_ENDED_MS, type AgentLink } from '../../relay/captures/capture-service.ts';
import { MAX_STORED_CHUNK_BYTES } from '../../relay/captures/chunk-codec.ts';

const GRACE_MS = 5000;
/** capture_ended with chunks missing waits this long (the service's own rule: the grace period, at least 1 s). */
const MISSING_WAIT_MS = Math.max(GRACE_MS, 1000);
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);

/** Statuses and relay end reasons by name, checked by the compiler against shared/capture-states.ts. */
const S = Object.fromEntries(CAPTURE_STATUSES.map((s) => [s, s])) as { [K in CaptureStatus]: K };
const R = Object.fromEntries(RELAY_END_REASONS.map((r) => [r, r])) as { [K in RelayEndReason]: K };
const [STARTING, RUNNING] = ACTIVE_CAPTURE_STATUSES;

const RECORD: CaptureSpec = { kind: 'record', pid: 4242, rate: 100, duration: 30, subprocesses: false, mode: 'wall', idle: false, gil: false, blocking: false };
const TOP: CaptureSpec = { ...RECORD, kind: 'top', duration: 0 };

// ---- chunks, as an agent makes them ------------------------------------------------------

function profileChunks(count: number, samplesPerChunk = 4): ProfileChunk[] {
  const b = new ProfileBuilder({ commandLine: 'python3 app.py', rateHz: 100, startTimeUs: T0 * 1000 });
  b.process(4242, { commandLine: 'python3 app.py', pythonVersion: '3.12.1' });
  const thread = b.thread(4242, 4242, 'MainThread');
  const chunks: ProfileChunk[] = [];
  let t = 0;
  for (let c = 0; c < count; c++) {
    for (let i = 0; i < samplesPerChunk; i++) {
      t += 10_000;
      b.addSample({ thread, timeUs: t, framesLeafFirst: [{ name: `f${c}`, file: '/app/work.py', line: 10 + i }, { name: '<module>', file: '/app/app.py', line: 1 }] });
    }
    b.updateCapture({ durationUs: t });
    chunks.push(b.takeChunk());
  }
  return chunks;
}

const stats = (ticks: number): CaptureStatsWire => ({ samples: 999, late: 1, ticks, errors: 0 });

function chunkMessage(captureId: string, seq: number, chunk: ProfileChunk | Uint8Array): ChunkMessage {
  return { type: 'chunk', captureId, seq, chunk: chunk instanceof Uint8Array ? chunk : encodeChunk(chunk), stats: stats(seq + 1) };
}

// ---- the harness ---------------------------------------------------------------------------

const RELAY_A = 'relay-a';
const RELAY_B = 'relay-b';

/** Lets what a fired (mocked) timer set off run to its end: the embedded store answers at once, so one turn of the event loop is enough. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** The cluster as the capture service sees it: which relay holds each agent, and what was sent to agents. */
class FakeLink implements AgentLink {
  /** Agent id → the relay its connection is on. */
  online = new Map<string, string>();
  sent: RelayToAgent[] = [];
  connect(agentId: string, relayId = RELAY_A): void {
    this.online.set(agentId, relayId);
  }
  disconnect(agentId: string): void {
    this.online.delete(agentId);
  }
  relayOf(agentId: string): string | undefined {
    return this.online.get(agentId);
  }
  send(agentId: string, message: RelayToAgent): boolean {
    if (!this.online.has(agentId)) return false;
    this.sent.push(message);
    return true;
  }
  take(): RelayToAgent[] {
    const sent = this.sent;
    this.sent = [];
    return sent;
  }
}

/** Another relay's capture service on the same store, with what its viewers heard. */
interface Peer {
  service: CaptureService;
  states: Map<string, CaptureStatus[]>;
  forwarded: { seq: number; payload: Uint8Array }[];
}

interface Harness {
  dir: string;
  store: Store;
  /** relay-a's service: the agent's relay unless a test moves it. */
  service: CaptureService;
  metrics: Metrics;
  link: FakeLink;
  agent: AgentRecord;
  /** Statuses relay-a's viewers were told, in order, per capture. */
  states: Map<string, CaptureStatus[]>;
  /** Chunk payloads relay-a's viewers were given, in order. */
  forwarded: { seq: number; payload: Uint8Array }[];
  /** What the services wrote to their log. */
  logged: string[];
  /** relay-a shuts down and starts again on the reopened store, as after a restart (call recover() next, as the relay does). */
  restart(): Promise<void>;
  /** A second relay on the same store. */
  peer(relayId: string): Peer;
}

async function harness(t: TestContext, dir = mkdtempSync(join(tmpdir(), 'periscope-capture-service-'))): Promise<Harness> {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: T0 });
  const link = new FakeLink();
  const agent: AgentRecord = {
    id: 'agent1',
    sessionId: 'sess1',
    host: 'web-1',
    containerId: '',
    arch: 'x64',
    agentVersion: 'test',
    protocol: PROTOCOL_VERSION,
    createdAt: T0,
    connectedAt: T0,
    lastSeen: T0,
    processes: [],
  };
  link.connect(agent.id, RELAY_A);
  const h = { dir, link, agent, states: new Map(), forwarded: [], logged: [] } as unknown as Harness;
  let services: CaptureService[] = [];
  const relay = (relayId: string, states: Peer['states'], forwarded: Peer['forwarded']): { service: CaptureService; metrics: Metrics } => {
    const metrics = new Metrics();
    const service = new CaptureService({ store: h.store, metrics, graceMs: GRACE_MS, relayId, log: (m) => h.logged.push(m) });
    service.setAgentLink(link);
    service.listen({
      state: (c: CaptureRecord) => states.set(c.id, [...(states.get(c.id) ?? []), c.status]),
      chunk: (_id: string, seq: number, payload: Uint8Array) => forwarded.push({ seq, payload }),
      dumpResult: () => {},
    });
    services.push(service);
    return { service, metrics };
  };
  const open = () => {
    h.store = openSqliteStore(dir);
    ({ service: h.service, metrics: h.metrics } = relay(RELAY_A, h.states, h.forwarded));
  };
  const close = async () => {
    const running = services;
    services = [];
    for (const service of running) await service.shutdown();
    await h.store.close();
  };
  open();
  if (!(await h.store.users.byId('user1'))) {
    await h.store.users.insert({ id: 'user1', username: 'alice', passwordHash: 'x', admin: true, createdAt: T0 }, null);
    await h.store.sessions.insert({ id: 'sess1', name: 'unit', createdBy: 'user1', createdAt: T0, expiresAt: T0 + 3600_000, closedAt: null, closedBy: null, closeReason: null });
    await h.store.agents.insert(agent);
  }
  h.restart = async () => {
    await close();
    open();
  };
  h.peer = (relayId) => {
    const peer: Peer = { states: new Map(), forwarded: [] } as unknown as Peer;
    peer.service = relay(relayId, peer.states, peer.forwarded).service;
    return peer;
  };
  t.after(async () => {
    await close();
    rmSync(dir, { recursive: true, force: true });
  });
  return h;
}

/** A capture started on relay-a with `stored` chunks acked; returns its id and every chunk of its profile. */
async function started(h: Harness, stored: number, spec = RECORD, total = Math.max(stored, 4)): Promise<{ id: string; chunks: ProfileChunk[]; bytes: Uint8Array[] }> {
  const { id } = await h.service.start(h.agent, spec, 'alice');
  const chunks = profileChunks(total);
  const bytes = chunks.map((c) => encodeChunk(c));
  for (let seq = 0; seq < stored; seq++) assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, seq, bytes[seq]!)), [{ type: 'ack', captureId: id, nextSeq: seq + 1 }]);
  h.link.take();
  return { id, chunks, bytes };
}

async function assertEnded(h: Harness, id: string, status: CaptureStatus, endReason: string, errorCode: string | null): Promise<CaptureRecord> {
  for (const record of [(await h.service.get(id))!, (await h.store.captures.byId(id))!]) {
    assert.equal(record.status, status, JSON.stringify(record.error));
    assert.equal(record.endReason, endReason);
    assert.equal(record.error?.code ?? null, errorCode);
    assert.equal(record.endedAt, Date.now());
  }
  assert.ok(!isActiveStatus(status));
  assert.equal(h.states.get(id)!.at(-1), status, 'viewers were told');
  return (await h.service.get(id))!;
}

async function assertStoredChunks(service: CaptureService, id: string, bytes: Uint8Array[]): Promise<void> {
  assert.equal(await service.storedChunks(id), bytes.length);
  for (const [seq, b] of bytes.entries()) assert.deepEqual(Buffer.from(await service.readChunk(id, seq)), Buffer.from(b), `chunk ${seq} reads back as sent`);
}

/** The relay's log (relayLog(): where the store reports a full disk) for this test. */
function relayLogLines(t: TestContext): string[] {
  const lines: string[] = [];
  const previous = relayLog();
  const log: Log = { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m), child: () => log };
  setRelayLog(log);
  t.after(() => setRelayLog(previous));
  return lines;
}

// ---- the happy path ---------------------------------------------------------------------------

describe('start, chunks, capture_ended', () => {
  test('start → chunks acked in order → capture_ended → complete; the agent’s bytes are stored and forwarded as they are', async (t) => {
    const h = await harness(t);
    const record = await h.service.start(h.agent, RECORD, 'alice');
    assert.equal(record.status, STARTING);
    assert.deepEqual(h.link.take(), [{ type: 'start_capture', captureId: record.id, spec: RECORD, requestedBy: 'alice' }]);
    assert.equal(h.service.activeCount(), 1);

    const chunks = profileChunks(4);
    const sent = chunks.map((c, seq) => chunkMessage(record.id, seq, c));
    for (const m of sent) {
      assert.deepEqual(await h.service.chunk(h.agent.id, m), [{ type: 'ack', captureId: record.id, nextSeq: m.seq + 1 }]);
      assert.equal((await h.service.get(record.id))!.status, RUNNING);
    }
    // Forwarded: the very bytes that came in, in order.
    assert.deepEqual(h.forwarded.map((f) => f.seq), [0, 1, 2, 3]);
    h.forwarded.forEach((f, i) => assert.equal(f.payload, sent[i]!.chunk));
    await assertStoredChunks(h.service, record.id, sent.map((m) => m.chunk));
    const live = (await h.service.get(record.id))!;
    assert.equal(live.chunks, 4);
    assert.equal(live.samples, 16, 'counted from the chunks, not taken from the stats');
    assert.deepEqual(live.stats, { ...stats(4), samples: 16 });
    assert.equal(h.metrics.chunksIn, 4);

    t.mock.timers.tick(1234);
    assert.deepEqual(await h.service.ended(h.agent.id, { type: 'capture_ended', captureId: record.id, reason: 'duration', chunks: 4 }), []);
    await assertEnded(h, record.id, STATUS_AFTER_END.duration, 'duration', null);
    assert.equal(h.service.activeCount(), 0);
    assert.deepEqual([...new Set(h.states.get(record.id))], [STARTING, RUNNING, STATUS_AFTER_END.duration]);
    await assertStoredChunks(h.service, record.id, sent.map((m) => m.chunk));
  });

  for (const reason of CAPTURE_END_REASONS) {
    const status = STATUS_AFTER_END[reason];
    test(`capture_ended ${reason} → ${status}`, async (t) => {
      const h = await harness(t);
      const { id } = await started(h, 1);
      await h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason, chunks: 1 });
      const defaultError = reason === 'refused' ? 'REFUSED_BY_AGENT' : status === S.failed ? 'CAPTURE_FAILED' : null;
      await assertEnded(h, id, status, reason, defaultError);
      // With the agent's own error, that one is kept.
      const second = await started(h, 1);
      await h.service.ended(h.agent.id, { type: 'capture_ended', captureId: second.id, reason, chunks: 1, error: { code: 'TARGET_GONE', message: 'the process exited' } });
      assert.deepEqual((await assertEnded(h, second.id, status, reason, 'TARGET_GONE')).error, { code: 'TARGET_GONE', message: 'the process exited' });
    });
  }

  test('an agent error with a capture id fails that capture with the agent’s code', async (t) => {
    const h = await harness(t);
    const { id } = await started(h, 2);
    await h.service.agentError(h.agent.id, { type: 'error', captureId: id, code: 'PERMISSION_DENIED', message: 'ptrace: Operation not permitted' });
    await assertEnded(h, id, S.failed, 'error', 'PERMISSION_DENIED');
  });
});

// ---- sequence numbers -------------------------------------------------------------------------

describe('sequence numbers', () => {
  test('a chunk ahead of the next seq is acked with the seq the relay needs, and not stored', async (t) => {
    const h = await harness(t);
    const { id, bytes } = await started(h, 1);
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 3, bytes[3]!)), [{ type: 'ack', captureId: id, nextSeq: 1 }]);
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!)), [{ type: 'ack', captureId: id, nextSeq: 1 }]);
    await assertStoredChunks(h.service, id, bytes.slice(0, 1));
    assert.equal(h.forwarded.length, 1);
    // The resend from the ack's seq goes through.
    for (let seq = 1; seq < 4; seq++) assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, seq, bytes[seq]!)), [{ type: 'ack', captureId: id, nextSeq: seq + 1 }]);
    await assertStoredChunks(h.service, id, bytes);
  });

  test('a duplicate is re-acked and not stored again, even with other bytes', async (t) => {
    const h = await harness(t);
    const { id, bytes } = await started(h, 2);
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 0, bytes[0]!)), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 1, new Uint8Array([0x80]))), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    await assertStoredChunks(h.service, id, bytes.slice(0, 2));
    assert.equal(h.metrics.chunksIn, 2);
    // After the end too: late duplicates are acked, anything new is refused.
    await h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'stopped', chunks: 2 });
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 1, bytes[1]!)), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    const late = await h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!));
    assert.equal(late.length, 1);
    assert.equal(late[0]!.type === 'error' && late[0]!.code, 'CAPTURE_NOT_ACTIVE');
  });

  test('chunks for a capture that is not this agent’s are refused (UNKNOWN_CAPTURE) and change nothing', async (t) => {
    const h = await harness(t);
    const { id, bytes } = await started(h, 1);
    for (const [agentId, captureId] of [['agentOther', id], [h.agent.id, 'noSuchCapture']] as const) {
      const replies = await h.service.chunk(agentId, chunkMessage(captureId, 1, bytes[1]!));
      assert.equal(replies.length, 1);
      assert.equal(replies[0]!.type === 'error' && replies[0]!.code, 'UNKNOWN_CAPTURE');
    }
    await assertStoredChunks(h.service, id, bytes.slice(0, 1));
  });
});

// ---- chunks that are refused ------------------------------------------------------------------

describe('a chunk that does not validate fails the capture with its code; earlier chunks are kept', () => {
  const cases: { what: string; bad: (next: ProfileChunk, all: ProfileChunk[]) => unknown; code: string; message: RegExp }[] = [
    { what: 'a stack index past the table', bad: (c) => ((c.samples.stack[0] = 99_999), c), code: 'INVALID_CHUNK', message: /samples\.stack\[0\] = 99999 references a stacks row that does not exist/ },
    { what: 'a column sent as a list', bad: (c) => ({ ...c, samples: { ...c.samples, timeUs: Array.from(c.samples.timeUs) } }), code: 'INVALID_CHUNK', message: /samples\.timeUs is a list, not the Float64Array/ },
    { what: 'a field the format does not have', bad: (c) => ({ ...c, comment: 'hi' }), code: 'INVALID_CHUNK', message: /chunk\.comment is not a field of a profile chunk/ },
    { what: 'a chunk continuing from the wrong rows', bad: (_c, all) => all[3], code: 'CHUNK_OUT_OF_SEQUENCE', message: /continues strings from row \d+ but the profile has \d+ rows/ },
  ];
  for (const c of cases) {
    test(c.what, async (t) => {
      const h = await harness(t);
      const { id, chunks, bytes } = await started(h, 2);
      const replies = await h.service.chunk(h.agent.id, chunkMessage(id, 2, encodeChunk(c.bad(structuredClone(chunks[2]!), chunks) as ProfileChunk)));
      assert.equal(replies.length, 2);
      const [error, stop] = replies;
      assert.ok(error?.type === 'error');
      assert.equal(error.code, c.code);
      assert.equal(error.captureId, id);
      assert.match(error.message, /^chunk 2 rejected, capture failed: /);
      assert.match(error.message, c.message);
      assert.deepEqual(stop, { type: 'stop_capture', captureId: id, requestedBy: 'relay' });
      const record = await assertEnded(h, id, S.failed, R.invalid_chunk, c.code);
      assert.match(record.error!.message, /^chunk 2 was rejected: /);
      assert.equal(record.chunks, 2);
      await assertStoredChunks(h.service, id, bytes.slice(0, 2));
      assert.equal(h.forwarded.length, 2, 'nothing refused reaches viewers');
    });
  }
});

describe('chunks the store cannot take', () => {
  test('disk full: the capture fails (disk_full) keeping the chunks before; new captures are refused until there is room', async (t) => {
    const h = await harness(t);
    const logged = relayLogLines(t);
    const { id, bytes } = await started(h, 2);
    // The file system refuses the next write; the store's chunk writer turns that into DISK_FULL.
    t.mock.method(ChunkLog.prototype, 'append', () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    });
    const [error, stop] = await h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!));
    assert.ok(error?.type === 'error');
    assert.equal(error.code, 'DISK_FULL');
    assert.match(error.message, /^chunk 2 was not stored and the capture failed \(the 2 chunks before it are kept\)/);
    assert.deepEqual(stop, { type: 'stop_capture', captureId: id, requestedBy: 'relay' });
    await assertEnded(h, id, S.failed, R.disk_full, 'DISK_FULL');
    await assertStoredChunks(h.service, id, bytes.slice(0, 2));
    assert.equal(h.store.counters.degraded, true);
    assert.ok(logged.some((line) => line.includes('DISK_FULL')), 'the relay says so in its log');
    await assert.rejects(h.service.start(h.agent, RECORD, 'alice'), (err: unknown) => isPeriscopeError(err, 'DISK_FULL'));
  });

  test(`a chunk over ${MAX_STORED_CHUNK_BYTES} bytes: CHUNK_TOO_LARGE, the capture fails (chunk_too_large), nothing stored`, async (t) => {
    const h = await harness(t);
    const { id } = await h.service.start(h.agent, RECORD, 'alice');
    const [first] = profileChunks(1);
    const padded = (n: number): ProfileChunk => ({ ...first!, strings: [...first!.strings, 's'.repeat(n)] });
    const bytes = encodeChunk(padded(MAX_STORED_CHUNK_BYTES + 1 - encodeChunk(padded(70_000)).byteLength + 70_000));
    assert.equal(bytes.byteLength, MAX_STORED_CHUNK_BYTES + 1);
    const [error, stop] = await h.service.chunk(h.agent.id, chunkMessage(id, 0, bytes));
    assert.ok(error?.type === 'error');
    assert.equal(error.code, 'CHUNK_TOO_LARGE');
    assert.ok(error.message.includes(String(MAX_STORED_CHUNK_BYTES)), error.message);
    assert.equal(stop?.type, 'stop_capture');
    await assertEnded(h, id, S.failed, R.chunk_too_large, 'CHUNK_TOO_LARGE');
    assert.equal(await h.service.storedChunks(id), 0);
  });

  test(`a capture reaching ${MAX_CAPTURE_BYTES / 1024 ** 3} GiB ends incomplete (too_large), keeping what it has`, async (t) => {
    const h = await harness(t);
    // The chunk writer the service opens for the capture, to make it report (nearly) the limit.
    const open = h.store.chunks.writer.bind(h.store.chunks);
    const opened = new Map<string, ChunkWriter>();
    t.mock.method(h.store.chunks, 'writer', async (captureId: string) => {
      const writer = await open(captureId);
      opened.set(captureId, writer);
      return writer;
    });
    const { id, bytes } = await started(h, 1);
    Object.defineProperty(opened.get(id)!, 'bytes', { get: () => MAX_CAPTURE_BYTES - 10 });
    const [error, stop] = await h.service.chunk(h.agent.id, chunkMessage(id, 1, bytes[1]!));
    assert.ok(error?.type === 'error');
    assert.equal(error.code, 'CAPTURE_TOO_LARGE');
    assert.equal(stop?.type, 'stop_capture');
    await assertEnded(h, id, S.incomplete, R.too_large, 'CAPTURE_TOO_LARGE');
    await assertStoredChunks(h.service, id, bytes.slice(0, 1));
  });
});

// ---- endings that wait ------------------------------------------------------------------------

describe('capture_ended before every chunk arrived', () => {
  test('the relay asks for the missing chunks and waits; what never comes ends it incomplete', async (t) => {
    const h = await harness(t);
    const { id, bytes } = await started(h, 1);
    assert.deepEqual(await h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'duration', chunks: 3 }), [{ type: 'ack', captureId: id, nextSeq: 1 }]);
    assert.equal((await h.service.get(id))!.status, RUNNING);
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 1, bytes[1]!)), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    t.mock.timers.tick(MISSING_WAIT_MS - 1);
    await settle();
    assert.equal((await h.service.get(id))!.status, RUNNING);
    t.mock.timers.tick(1);
    await settle();
    const record = await assertEnded(h, id, S.incomplete, 'duration', 'MISSING_CHUNKS');
    assert.equal(record.error!.message, '1 chunks never arrived; what arrived is kept');
    await assertStoredChunks(h.service, id, bytes.slice(0, 2));
  });

  test('when the missing chunks come, it ends as the agent said, at the last one', async (t) => {
    const h = await harness(t);
    const { id, bytes } = await started(h, 1);
    await h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'stopped', chunks: 3 });
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 1, bytes[1]!)), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    assert.equal((await h.service.get(id))!.status, RUNNING);
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!)), [{ type: 'ack', captureId: id, nextSeq: 3 }]);
    const ended = structuredClone(await assertEnded(h, id, STATUS_AFTER_END.stopped, 'stopped', null));
    t.mock.timers.tick(MISSING_WAIT_MS * 2);
    await settle();
    assert.deepEqual(await h.store.captures.byId(id), ended, 'the wait for missing chunks was cancelled');
  });
});

// The grace period is a deadline in the store that any relay's sweep() acts on
// (run() sweeps periodically); these tests sweep by hand after moving the clock.
describe('the agent going away', () => {
  test('disconnect → back within the grace period → the capture resumes where the relay is', async (t) => {
    const h = await harness(t);
    const { id, bytes } = await started(h, 2);
    h.link.disconnect(h.agent.id);
    await h.service.agentDisconnected(h.agent.id);
    t.mock.timers.tick(GRACE_MS - 1);
    await h.service.sweep();
    assert.equal((await h.service.get(id))!.status, RUNNING);
    h.link.connect(h.agent.id);
    // The agent thinks it got further than the relay stored: the relay says where it is.
    assert.deepEqual(await h.service.agentConnected(h.agent.id, [{ captureId: id, nextSeq: 3 }]), { resume: [{ captureId: id, nextSeq: 2 }], followUps: [] });
    // Well past the deadline the disconnect set: resuming lifted it.
    t.mock.timers.tick(GRACE_MS * 2);
    await h.service.sweep();
    assert.equal((await h.service.get(id))!.status, RUNNING, 'the grace period ended with the resume');
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!)), [{ type: 'ack', captureId: id, nextSeq: 3 }]);
  });

  test('disconnect past the grace period → incomplete (agent_disconnected); the agent is told to stop when it returns', async (t) => {
    const h = await harness(t);
    const { id, bytes } = await started(h, 2);
    h.link.disconnect(h.agent.id);
    await h.service.agentDisconnected(h.agent.id);
    t.mock.timers.tick(GRACE_MS - 1);
    await h.service.sweep();
    assert.equal((await h.service.get(id))!.status, RUNNING, 'not before the grace period is over');
    t.mock.timers.tick(2);
    await h.service.sweep();
    const record = await assertEnded(h, id, S.incomplete, R.agent_disconnected, 'AGENT_DISCONNECTED');
    assert.match(record.error!.message, new RegExp(`within ${GRACE_MS / 1000} s`));
    await assertStoredChunks(h.service, id, bytes.slice(0, 2));
    h.link.connect(h.agent.id);
    assert.deepEqual(await h.service.agentConnected(h.agent.id, [{ captureId: id, nextSeq: 2 }]), { resume: [], followUps: [{ type: 'stop_capture', captureId: id, requestedBy: 'relay' }] });
  });

  test('back without the capture (the agent restarted) → incomplete (agent_lost_capture)', async (t) => {
    const h = await harness(t);
    const { id } = await started(h, 1);
    await h.service.agentDisconnected(h.agent.id);
    assert.deepEqual(await h.service.agentConnected(h.agent.id, []), { resume: [], followUps: [] });
    await assertEnded(h, id, S.incomplete, R.agent_lost_capture, 'AGENT_LOST_CAPTURE');
  });

  test('a start lost with the old connection is sent again', async (t) => {
    const h = await harness(t);
    const { id } = await started(h, 0);
    await h.service.agentDisconnected(h.agent.id);
    assert.deepEqual(await h.service.agentConnected(h.agent.id, []), { resume: [], followUps: [{ type: 'start_capture', captureId: id, spec: RECORD, requestedBy: 'alice' }] });
    t.mock.timers.tick(GRACE_MS * 2);
    await h.service.sweep();
    assert.equal((await h.service.get(id))!.status, STARTING);
  });

  test('an offline agent cannot be asked for a capture', async (t) => {
    const h = await harness(t);
    h.link.disconnect(h.agent.id);
    await assert.rejects(h.service.start(h.agent, RECORD, 'alice'), (err: unknown) => isPeriscopeError(err, 'AGENT_OFFLINE'));
  });
});

describe('stopping', () => {
  test('stop asks the agent; the capture ends when the agent says so', async (t) => {
    const h = await harness(t);
    const { id } = await started(h, 1);
    await h.service.stop(id, 'bob');
    assert.deepEqual(h.link.take(), [{ type: 'stop_capture', captureId: id, requestedBy: 'bob' }]);
    assert.equal((await h.service.get(id))!.status, RUNNING);
    assert.equal((await h.store.captures.byId(id))!.stopRequestedBy, 'bob');
    await h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'stopped', chunks: 1 });
    await assertEnded(h, id, STATUS_AFTER_END.stopped, 'stopped', null);
    await assert.rejects(h.service.stop(id, 'bob'), (err: unknown) => isPeriscopeError(err, 'CAPTURE_NOT_ACTIVE') && /already ended \(complete\)/.test((err as Error).message));
  });

  test('a stop asked while the agent is away is sent again when it resumes', async (t) => {
    const h = await harness(t);
    const { id } = await started(h, 1);
    h.link.disconnect(h.agent.id);
    await h.service.agentDisconnected(h.agent.id);
    await h.service.stop(id, 'bob');
    assert.deepEqual(h.link.take(), []);
    h.link.connect(h.agent.id);
    assert.deepEqual((await h.service.agentConnected(h.agent.id, [{ captureId: id, nextSeq: 1 }])).followUps, [{ type: 'stop_capture', captureId: id, requestedBy: 'bob' }]);
  });

  test(`an open-ended top is stopped by the relay after ${MAX_OPEN_ENDED_MS / 3600_000} h`, async (t) => {
    const h = await harness(t);
    const { id } = await started(h, 1, TOP);
    t.mock.timers.tick(MAX_OPEN_ENDED_MS - 1);
    await settle();
    assert.deepEqual(h.link.take(), []);
    t.mock.timers.tick(1);
    await settle();
    assert.deepEqual(h.link.take(), [{ type: 'stop_capture', captureId: id, requestedBy: 'relay' }]);
    assert.equal((await h.service.get(id))!.stopRequestedBy, 'relay');
  });

  test('closing the session ends its captures (session_closed) and stops them on the agent', async (t) => {
    const h = await harness(t);
    const { id, bytes } = await started(h, 2);
    await h.service.sessionClosed('sess1', 'alice');
    assert.deepEqual(h.link.take(), [{ type: 'stop_capture', captureId: id, requestedBy: 'alice' }]);
    await assertEnded(h, id, S.incomplete, R.session_closed, 'SESSION_CLOSED');
    await assertStoredChunks(h.service, id, bytes.slice(0, 2));
  });
});

describe('a relay restart', () => {
  test('counts are rebuilt from the stored bytes (checked again) and the capture resumes at the next seq', async (t) => {
    const h = await harness(t);
    const { id, bytes } = await started(h, 3);
    // The row lags the chunk file by one chunk, as a crash right after storing a chunk can leave it.
    await h.store.captures.save({ ...(await h.store.captures.byId(id))!, chunks: 2, samples: 8 });
    await h.restart();
    await h.service.recover();
    assert.deepEqual((await h.service.agentConnected(h.agent.id, [{ captureId: id, nextSeq: 3 }])).resume, [{ captureId: id, nextSeq: 3 }]);
    assert.equal((await h.service.get(id))!.chunks, 3);
    assert.equal((await h.service.get(id))!.samples, 12);
    // Chunk 3 continues the rows of chunks 0-2: accepted only if the counts were rebuilt right.
    assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(id, 3, bytes[3]!)), [{ type: 'ack', captureId: id, nextSeq: 4 }]);
    await h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'duration', chunks: 4 });
    await assertEnded(h, id, STATUS_AFTER_END.duration, 'duration', null);
    await assertStoredChunks(h.service, id, bytes);
  });

  test('a capture nobody resumes ends after the grace period', async (t) => {
    const h = await harness(t);
    const { id } = await started(h, 2);
    await h.restart();
    await h.service.recover();
    t.mock.timers.tick(GRACE_MS - 1);
    await h.service.sweep();
    assert.equal((await h.service.get(id))!.status, RUNNING, 'the grace period counts from the restart');
    t.mock.timers.tick(2);
    await h.service.sweep();
    await assertEnded(h, id, S.incomplete, R.agent_disconnected, 'AGENT_DISCONNECTED');
  });
});

describe('several relays on one store', () => {
  test('a capture asked for on relay-b is acked by relay-a, where its agent is; when the agent moves to relay-b it resumes there with nothing lost', async (t) => {
    const h = await harness(t);
    const b = h.peer(RELAY_B);
    // The engineer's request reaches relay-b; the agent is connected to relay-a.
    const record = await b.service.start(h.agent, RECORD, 'alice');
    assert.equal(record.status, STARTING);
    assert.deepEqual(h.link.take(), [{ type: 'start_capture', captureId: record.id, spec: RECORD, requestedBy: 'alice' }]);
    assert.equal(b.service.activeCount(), 0, 'relay-b does not hold it');
    const bytes = profileChunks(4).map((c) => encodeChunk(c));
    for (let seq = 0; seq < 2; seq++) {
      assert.deepEqual(await h.service.chunk(h.agent.id, chunkMessage(record.id, seq, bytes[seq]!)), [{ type: 'ack', captureId: record.id, nextSeq: seq + 1 }]);
    }
    assert.equal(h.service.activeCount(), 1, 'relay-a holds it');
    assert.equal((await h.store.captures.byId(record.id))!.status, RUNNING);

    // The agent moves: its connection to relay-a closes (chunk 2 was on the way, never stored), and it says hello to relay-b.
    h.link.disconnect(h.agent.id);
    await h.service.agentDisconnected(h.agent.id);
    assert.equal(h.service.activeCount(), 0);
    h.link.connect(h.agent.id, RELAY_B);
    assert.deepEqual(await b.service.agentConnected(h.agent.id, [{ captureId: record.id, nextSeq: 3 }]), { resume: [{ captureId: record.id, nextSeq: 2 }], followUps: [] });
    assert.equal(b.service.activeCount(), 1, 'relay-b holds it now');
    // The grace period relay-a's disconnect started no longer applies, whichever relay sweeps.
    t.mock.timers.tick(GRACE_MS * 2);
    await Promise.all([h.service.sweep(), b.service.sweep()]);
    assert.equal((await b.service.get(record.id))!.status, RUNNING);

    // Chunk 2 continues the rows of chunks 0-1: accepted only if relay-b rebuilt the capture from what relay-a stored.
    for (let seq = 2; seq < 4; seq++) {
      assert.deepEqual(await b.service.chunk(h.agent.id, chunkMessage(record.id, seq, bytes[seq]!)), [{ type: 'ack', captureId: record.id, nextSeq: seq + 1 }]);
    }
    assert.deepEqual(await b.service.ended(h.agent.id, { type: 'capture_ended', captureId: record.id, reason: 'duration', chunks: 4 }), []);
    const ended = (await h.store.captures.byId(record.id))!;
    assert.equal(ended.status, STATUS_AFTER_END.duration);
    assert.equal(ended.endReason, 'duration');
    assert.equal(ended.chunks, 4);
    assert.equal(ended.samples, 16);
    await assertStoredChunks(b.service, record.id, bytes);
    await assertStoredChunks(h.service, record.id, bytes);
    // Each relay's viewers were given the chunks it received.
    assert.deepEqual(h.forwarded.map((f) => f.seq), [0, 1]);
    assert.deepEqual(b.forwarded.map((f) => f.seq), [2, 3]);
    assert.equal(b.states.get(record.id)!.at(-1), STATUS_AFTER_END.duration);
  });

  test('sweeps on two relays at once end an overdue capture exactly once', async (t) => {
    const h = await harness(t);
    const b = h.peer(RELAY_B);
    const { id, bytes } = await started(h, 2);
    h.link.disconnect(h.agent.id);
    await h.service.agentDisconnected(h.agent.id);
    const told = () => [...(h.states.get(id) ?? []), ...(b.states.get(id) ?? [])].filter((s) => !isActiveStatus(s));
    const endings = async () => (await h.store.audit.forSession('sess1', 1000)).filter((e) => e.action === 'capture.ended' && e.detail.captureId === id);
    t.mock.timers.tick(GRACE_MS + 1);
    await Promise.all([h.service.sweep(), b.service.sweep()]);

    const record = (await h.store.captures.byId(id))!;
    assert.equal(record.status, S.incomplete);
    assert.equal(record.endReason, R.agent_disconnected);
    assert.equal(record.error?.code, 'AGENT_DISCONNECTED');
    assert.equal(record.endedAt, Date.now());
    const audited = await endings();
    assert.equal(audited.length, 1, 'one capture.ended entry');
    assert.equal(audited[0]!.actor, 'relay');
    assert.equal(audited[0]!.detail.reason, R.agent_disconnected);
    assert.deepEqual(told(), [S.incomplete], 'viewers were told once, by one relay');
    // Later sweeps, on either relay, find nothing more to end.
    t.mock.timers.tick(GRACE_MS);
    await Promise.all([h.service.sweep(), b.service.sweep()]);
    assert.equal((await endings()).length, 1);
    assert.deepEqual(told(), [S.incomplete]);
    await assertStoredChunks(b.service, id, bytes.slice(0, 2));
  });
});
