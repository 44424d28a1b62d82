// The capture state machine (relay/captures/capture-service.ts), in process:
// a real store (node:sqlite and chunk files in a temp dir), a fake agent link
// that records what the relay sends, a listener that records what viewers
// would hear, and node:test's mock timers for the grace periods and the
// open-ended cap (no sleeping). Expected statuses and end reasons come from
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
import { openStore, type Store } from '../../relay/store/index.ts';
import type { AgentRecord } from '../../relay/store/agents.ts';
import type { CaptureRecord } from '../../relay/store/captures.ts';
import { Metrics } from '../../relay/metrics.ts';
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

class FakeLink implements AgentLink {
  online = new Set<string>();
  sent: RelayToAgent[] = [];
  isOnline(agentId: string): boolean {
    return this.online.has(agentId);
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

interface Harness {
  dir: string;
  store: Store;
  service: CaptureService;
  metrics: Metrics;
  link: FakeLink;
  agent: AgentRecord;
  /** Statuses viewers were told, in order, per capture. */
  states: Map<string, CaptureStatus[]>;
  /** Chunk payloads viewers were given, in order. */
  forwarded: { seq: number; payload: Uint8Array }[];
  /** A new service on a reopened store, as after a relay restart. */
  restart(): void;
}

function harness(t: TestContext, dir = mkdtempSync(join(tmpdir(), 'periscope-capture-service-'))): Harness {
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
  link.online.add(agent.id);
  const h = { dir, link, agent, states: new Map(), forwarded: [] } as unknown as Harness;
  const open = () => {
    h.store = openStore(dir);
    h.metrics = new Metrics();
    h.service = new CaptureService(h.store, h.metrics, GRACE_MS);
    h.service.setAgentLink(link);
    h.service.listen({
      state: (c: CaptureRecord) => h.states.set(c.id, [...(h.states.get(c.id) ?? []), c.status]),
      chunk: (_c: CaptureRecord, seq: number, payload: Uint8Array) => h.forwarded.push({ seq, payload }),
      dumpResult: () => {},
    });
  };
  const close = () => {
    h.service.shutdown();
    h.store.health.close();
    h.store.db.close();
  };
  open();
  if (!h.store.users.byId('user1')) {
    h.store.users.insert({ id: 'user1', username: 'alice', passwordHash: 'x', admin: true, createdAt: T0 }, null);
    h.store.sessions.insert({ id: 'sess1', name: 'unit', createdBy: 'user1', createdAt: T0, expiresAt: T0 + 3600_000, closedAt: null, closedBy: null, closeReason: null });
    h.store.agents.insert(agent);
  }
  h.restart = () => {
    close();
    open();
  };
  t.after(() => {
    close();
    rmSync(dir, { recursive: true, force: true });
  });
  return h;
}

/** A started capture with `stored` chunks acked; returns its id and every chunk of its profile. */
function started(h: Harness, stored: number, spec = RECORD, total = Math.max(stored, 4)): { id: string; chunks: ProfileChunk[]; bytes: Uint8Array[] } {
  const { id } = h.service.start(h.agent, spec, 'alice');
  const chunks = profileChunks(total);
  const bytes = chunks.map((c) => encodeChunk(c));
  for (let seq = 0; seq < stored; seq++) assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, seq, bytes[seq]!)), [{ type: 'ack', captureId: id, nextSeq: seq + 1 }]);
  h.link.take();
  return { id, chunks, bytes };
}

function assertEnded(h: Harness, id: string, status: CaptureStatus, endReason: string, errorCode: string | null): CaptureRecord {
  for (const record of [h.service.get(id)!, h.store.captures.byId(id)!]) {
    assert.equal(record.status, status, JSON.stringify(record.error));
    assert.equal(record.endReason, endReason);
    assert.equal(record.error?.code ?? null, errorCode);
    assert.equal(record.endedAt, Date.now());
  }
  assert.ok(!isActiveStatus(status));
  assert.equal(h.states.get(id)!.at(-1), status, 'viewers were told');
  return h.service.get(id)!;
}

function assertStoredChunks(h: Harness, id: string, bytes: Uint8Array[]): void {
  assert.equal(h.service.storedChunks(id), bytes.length);
  bytes.forEach((b, seq) => assert.deepEqual(Buffer.from(h.service.readChunk(id, seq)), Buffer.from(b), `chunk ${seq} reads back as sent`));
}

// ---- the happy path ---------------------------------------------------------------------------

describe('start, chunks, capture_ended', () => {
  test('start → chunks acked in order → capture_ended → complete; the agent’s bytes are stored and forwarded as they are', (t) => {
    const h = harness(t);
    const record = h.service.start(h.agent, RECORD, 'alice');
    assert.equal(record.status, STARTING);
    assert.deepEqual(h.link.take(), [{ type: 'start_capture', captureId: record.id, spec: RECORD, requestedBy: 'alice' }]);
    assert.equal(h.service.activeCount(), 1);

    const chunks = profileChunks(4);
    const sent = chunks.map((c, seq) => chunkMessage(record.id, seq, c));
    for (const m of sent) {
      assert.deepEqual(h.service.chunk(h.agent.id, m), [{ type: 'ack', captureId: record.id, nextSeq: m.seq + 1 }]);
      assert.equal(h.service.get(record.id)!.status, RUNNING);
    }
    // Forwarded: the very bytes that came in, in order.
    assert.deepEqual(h.forwarded.map((f) => f.seq), [0, 1, 2, 3]);
    h.forwarded.forEach((f, i) => assert.equal(f.payload, sent[i]!.chunk));
    assertStoredChunks(h, record.id, sent.map((m) => m.chunk));
    const live = h.service.get(record.id)!;
    assert.equal(live.chunks, 4);
    assert.equal(live.samples, 16, 'counted from the chunks, not taken from the stats');
    assert.deepEqual(live.stats, { ...stats(4), samples: 16 });
    assert.equal(h.metrics.chunksIn, 4);

    t.mock.timers.tick(1234);
    assert.deepEqual(h.service.ended(h.agent.id, { type: 'capture_ended', captureId: record.id, reason: 'duration', chunks: 4 }), []);
    assertEnded(h, record.id, STATUS_AFTER_END.duration, 'duration', null);
    assert.equal(h.service.activeCount(), 0);
    assert.deepEqual([...new Set(h.states.get(record.id))], [STARTING, RUNNING, STATUS_AFTER_END.duration]);
    assertStoredChunks(h, record.id, sent.map((m) => m.chunk));
  });

  for (const reason of CAPTURE_END_REASONS) {
    const status = STATUS_AFTER_END[reason];
    test(`capture_ended ${reason} → ${status}`, (t) => {
      const h = harness(t);
      const { id } = started(h, 1);
      h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason, chunks: 1 });
      const defaultError = reason === 'refused' ? 'REFUSED_BY_AGENT' : status === S.failed ? 'CAPTURE_FAILED' : null;
      assertEnded(h, id, status, reason, defaultError);
      // With the agent's own error, that one is kept.
      const second = started(h, 1);
      h.service.ended(h.agent.id, { type: 'capture_ended', captureId: second.id, reason, chunks: 1, error: { code: 'TARGET_GONE', message: 'the process exited' } });
      assert.deepEqual(assertEnded(h, second.id, status, reason, 'TARGET_GONE').error, { code: 'TARGET_GONE', message: 'the process exited' });
    });
  }

  test('an agent error with a capture id fails that capture with the agent’s code', (t) => {
    const h = harness(t);
    const { id } = started(h, 2);
    h.service.agentError(h.agent.id, { type: 'error', captureId: id, code: 'PERMISSION_DENIED', message: 'ptrace: Operation not permitted' });
    assertEnded(h, id, S.failed, 'error', 'PERMISSION_DENIED');
  });
});

// ---- sequence numbers -------------------------------------------------------------------------

describe('sequence numbers', () => {
  test('a chunk ahead of the next seq is acked with the seq the relay needs, and not stored', (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 1);
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 3, bytes[3]!)), [{ type: 'ack', captureId: id, nextSeq: 1 }]);
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!)), [{ type: 'ack', captureId: id, nextSeq: 1 }]);
    assertStoredChunks(h, id, bytes.slice(0, 1));
    assert.equal(h.forwarded.length, 1);
    // The resend from the ack's seq goes through.
    for (let seq = 1; seq < 4; seq++) assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, seq, bytes[seq]!)), [{ type: 'ack', captureId: id, nextSeq: seq + 1 }]);
    assertStoredChunks(h, id, bytes);
  });

  test('a duplicate is re-acked and not stored again, even with other bytes', (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 2);
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 0, bytes[0]!)), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 1, new Uint8Array([0x80]))), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    assertStoredChunks(h, id, bytes.slice(0, 2));
    assert.equal(h.metrics.chunksIn, 2);
    // After the end too: late duplicates are acked, anything new is refused.
    h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'stopped', chunks: 2 });
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 1, bytes[1]!)), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    const late = h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!));
    assert.equal(late.length, 1);
    assert.equal(late[0]!.type === 'error' && late[0]!.code, 'CAPTURE_NOT_ACTIVE');
  });

  test('chunks for a capture that is not this agent’s are refused (UNKNOWN_CAPTURE) and change nothing', (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 1);
    for (const [agentId, captureId] of [['agentOther', id], [h.agent.id, 'noSuchCapture']] as const) {
      const replies = h.service.chunk(agentId, chunkMessage(captureId, 1, bytes[1]!));
      assert.equal(replies.length, 1);
      assert.equal(replies[0]!.type === 'error' && replies[0]!.code, 'UNKNOWN_CAPTURE');
    }
    assertStoredChunks(h, id, bytes.slice(0, 1));
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
    test(c.what, (t) => {
      const h = harness(t);
      const { id, chunks, bytes } = started(h, 2);
      const replies = h.service.chunk(h.agent.id, chunkMessage(id, 2, encodeChunk(c.bad(structuredClone(chunks[2]!), chunks) as ProfileChunk)));
      assert.equal(replies.length, 2);
      const [error, stop] = replies;
      assert.ok(error?.type === 'error');
      assert.equal(error.code, c.code);
      assert.equal(error.captureId, id);
      assert.match(error.message, /^chunk 2 rejected, capture failed: /);
      assert.match(error.message, c.message);
      assert.deepEqual(stop, { type: 'stop_capture', captureId: id, requestedBy: 'relay' });
      const record = assertEnded(h, id, S.failed, R.invalid_chunk, c.code);
      assert.match(record.error!.message, /^chunk 2 was rejected: /);
      assert.equal(record.chunks, 2);
      assertStoredChunks(h, id, bytes.slice(0, 2));
      assert.equal(h.forwarded.length, 2, 'nothing refused reaches viewers');
    });
  }
});

describe('chunks the store cannot take', () => {
  test('disk full: the capture fails (disk_full) keeping the chunks before; new captures are refused until there is room', (t) => {
    const h = harness(t);
    const errors = t.mock.method(console, 'error', () => {});
    const { id, bytes } = started(h, 2);
    const log = h.store.chunks.writer(id);
    log.append = () => {
      throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    };
    const [error, stop] = h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!));
    assert.ok(error?.type === 'error');
    assert.equal(error.code, 'DISK_FULL');
    assert.match(error.message, /^chunk 2 was not stored and the capture failed \(the 2 chunks before it are kept\)/);
    assert.deepEqual(stop, { type: 'stop_capture', captureId: id, requestedBy: 'relay' });
    assertEnded(h, id, S.failed, R.disk_full, 'DISK_FULL');
    assertStoredChunks(h, id, bytes.slice(0, 2));
    assert.equal(h.store.health.degraded, true);
    assert.ok(errors.mock.calls.some((c) => String(c.arguments[0]).includes('DISK_FULL')), 'the relay says so in its log');
    assert.throws(() => h.service.start(h.agent, RECORD, 'alice'), (err: unknown) => isPeriscopeError(err, 'DISK_FULL'));
  });

  test(`a chunk over ${MAX_STORED_CHUNK_BYTES} bytes: CHUNK_TOO_LARGE, the capture fails (chunk_too_large), nothing stored`, (t) => {
    const h = harness(t);
    const { id } = h.service.start(h.agent, RECORD, 'alice');
    const [first] = profileChunks(1);
    const padded = (n: number): ProfileChunk => ({ ...first!, strings: [...first!.strings, 's'.repeat(n)] });
    const bytes = encodeChunk(padded(MAX_STORED_CHUNK_BYTES + 1 - encodeChunk(padded(70_000)).byteLength + 70_000));
    assert.equal(bytes.byteLength, MAX_STORED_CHUNK_BYTES + 1);
    const [error, stop] = h.service.chunk(h.agent.id, chunkMessage(id, 0, bytes));
    assert.ok(error?.type === 'error');
    assert.equal(error.code, 'CHUNK_TOO_LARGE');
    assert.ok(error.message.includes(String(MAX_STORED_CHUNK_BYTES)), error.message);
    assert.equal(stop?.type, 'stop_capture');
    assertEnded(h, id, S.failed, R.chunk_too_large, 'CHUNK_TOO_LARGE');
    assert.equal(h.service.storedChunks(id), 0);
  });

  test(`a capture reaching ${MAX_CAPTURE_BYTES / 1024 ** 3} GiB ends incomplete (too_large), keeping what it has`, (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 1);
    Object.defineProperty(h.store.chunks.writer(id), 'bytes', { get: () => MAX_CAPTURE_BYTES - 10 });
    const [error, stop] = h.service.chunk(h.agent.id, chunkMessage(id, 1, bytes[1]!));
    assert.ok(error?.type === 'error');
    assert.equal(error.code, 'CAPTURE_TOO_LARGE');
    assert.equal(stop?.type, 'stop_capture');
    assertEnded(h, id, S.incomplete, R.too_large, 'CAPTURE_TOO_LARGE');
    assertStoredChunks(h, id, bytes.slice(0, 1));
  });
});

// ---- endings that wait ------------------------------------------------------------------------

describe('capture_ended before every chunk arrived', () => {
  test('the relay asks for the missing chunks and waits; what never comes ends it incomplete', (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 1);
    assert.deepEqual(h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'duration', chunks: 3 }), [{ type: 'ack', captureId: id, nextSeq: 1 }]);
    assert.equal(h.service.get(id)!.status, RUNNING);
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 1, bytes[1]!)), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    t.mock.timers.tick(MISSING_WAIT_MS - 1);
    assert.equal(h.service.get(id)!.status, RUNNING);
    t.mock.timers.tick(1);
    const record = assertEnded(h, id, S.incomplete, 'duration', 'MISSING_CHUNKS');
    assert.equal(record.error!.message, '1 chunks never arrived; what arrived is kept');
    assertStoredChunks(h, id, bytes.slice(0, 2));
  });

  test('when the missing chunks come, it ends as the agent said, at the last one', (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 1);
    h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'stopped', chunks: 3 });
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 1, bytes[1]!)), [{ type: 'ack', captureId: id, nextSeq: 2 }]);
    assert.equal(h.service.get(id)!.status, RUNNING);
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!)), [{ type: 'ack', captureId: id, nextSeq: 3 }]);
    const ended = structuredClone(assertEnded(h, id, STATUS_AFTER_END.stopped, 'stopped', null));
    t.mock.timers.tick(MISSING_WAIT_MS * 2);
    assert.deepEqual(h.store.captures.byId(id), ended, 'the wait for missing chunks was cancelled');
  });
});

describe('the agent going away', () => {
  test('disconnect → back within the grace period → the capture resumes where the relay is', (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 2);
    h.link.online.delete(h.agent.id);
    h.service.agentDisconnected(h.agent.id);
    t.mock.timers.tick(GRACE_MS - 1);
    assert.equal(h.service.get(id)!.status, RUNNING);
    h.link.online.add(h.agent.id);
    // The agent thinks it got further than the relay stored: the relay says where it is.
    assert.deepEqual(h.service.agentConnected(h.agent.id, [{ captureId: id, nextSeq: 3 }]), { resume: [{ captureId: id, nextSeq: 2 }], followUps: [] });
    t.mock.timers.tick(GRACE_MS * 3);
    assert.equal(h.service.get(id)!.status, RUNNING, 'the grace timer was cancelled');
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 2, bytes[2]!)), [{ type: 'ack', captureId: id, nextSeq: 3 }]);
  });

  test('disconnect past the grace period → incomplete (agent_disconnected); the agent is told to stop when it returns', (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 2);
    h.link.online.delete(h.agent.id);
    h.service.agentDisconnected(h.agent.id);
    t.mock.timers.tick(GRACE_MS);
    const record = assertEnded(h, id, S.incomplete, R.agent_disconnected, 'AGENT_DISCONNECTED');
    assert.match(record.error!.message, new RegExp(`within ${GRACE_MS / 1000} s`));
    assertStoredChunks(h, id, bytes.slice(0, 2));
    h.link.online.add(h.agent.id);
    assert.deepEqual(h.service.agentConnected(h.agent.id, [{ captureId: id, nextSeq: 2 }]), { resume: [], followUps: [{ type: 'stop_capture', captureId: id, requestedBy: 'relay' }] });
  });

  test('back without the capture (the agent restarted) → incomplete (agent_lost_capture)', (t) => {
    const h = harness(t);
    const { id } = started(h, 1);
    h.service.agentDisconnected(h.agent.id);
    assert.deepEqual(h.service.agentConnected(h.agent.id, []), { resume: [], followUps: [] });
    assertEnded(h, id, S.incomplete, R.agent_lost_capture, 'AGENT_LOST_CAPTURE');
  });

  test('a start lost with the old connection is sent again', (t) => {
    const h = harness(t);
    const { id } = started(h, 0);
    h.service.agentDisconnected(h.agent.id);
    assert.deepEqual(h.service.agentConnected(h.agent.id, []), { resume: [], followUps: [{ type: 'start_capture', captureId: id, spec: RECORD, requestedBy: 'alice' }] });
    t.mock.timers.tick(GRACE_MS * 2);
    assert.equal(h.service.get(id)!.status, STARTING);
  });

  test('an offline agent cannot be asked for a capture', (t) => {
    const h = harness(t);
    h.link.online.delete(h.agent.id);
    assert.throws(() => h.service.start(h.agent, RECORD, 'alice'), (err: unknown) => isPeriscopeError(err, 'AGENT_OFFLINE'));
  });
});

describe('stopping', () => {
  test('stop asks the agent; the capture ends when the agent says so', (t) => {
    const h = harness(t);
    const { id } = started(h, 1);
    h.service.stop(id, 'bob');
    assert.deepEqual(h.link.take(), [{ type: 'stop_capture', captureId: id, requestedBy: 'bob' }]);
    assert.equal(h.service.get(id)!.status, RUNNING);
    assert.equal(h.store.captures.byId(id)!.stopRequestedBy, 'bob');
    h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'stopped', chunks: 1 });
    assertEnded(h, id, STATUS_AFTER_END.stopped, 'stopped', null);
    assert.throws(() => h.service.stop(id, 'bob'), (err: unknown) => isPeriscopeError(err, 'CAPTURE_NOT_ACTIVE') && /already ended \(complete\)/.test((err as Error).message));
  });

  test('a stop asked while the agent is away is sent again when it resumes', (t) => {
    const h = harness(t);
    const { id } = started(h, 1);
    h.link.online.delete(h.agent.id);
    h.service.agentDisconnected(h.agent.id);
    h.service.stop(id, 'bob');
    assert.deepEqual(h.link.take(), []);
    h.link.online.add(h.agent.id);
    assert.deepEqual(h.service.agentConnected(h.agent.id, [{ captureId: id, nextSeq: 1 }]).followUps, [{ type: 'stop_capture', captureId: id, requestedBy: 'bob' }]);
  });

  test(`an open-ended top is stopped by the relay after ${MAX_OPEN_ENDED_MS / 3600_000} h`, (t) => {
    const h = harness(t);
    const { id } = started(h, 1, TOP);
    t.mock.timers.tick(MAX_OPEN_ENDED_MS - 1);
    assert.deepEqual(h.link.take(), []);
    t.mock.timers.tick(1);
    assert.deepEqual(h.link.take(), [{ type: 'stop_capture', captureId: id, requestedBy: 'relay' }]);
    assert.equal(h.service.get(id)!.stopRequestedBy, 'relay');
  });

  test('closing the session ends its captures (session_closed) and stops them on the agent', (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 2);
    h.service.sessionClosed('sess1', 'alice');
    assert.deepEqual(h.link.take(), [{ type: 'stop_capture', captureId: id, requestedBy: 'alice' }]);
    assertEnded(h, id, S.incomplete, R.session_closed, 'SESSION_CLOSED');
    assertStoredChunks(h, id, bytes.slice(0, 2));
  });
});

describe('a relay restart', () => {
  test('counts are rebuilt from the stored bytes (checked again) and the capture resumes at the next seq', (t) => {
    const h = harness(t);
    const { id, bytes } = started(h, 3);
    h.restart();
    h.service.recover();
    assert.equal(h.service.get(id)!.chunks, 3);
    assert.equal(h.service.get(id)!.samples, 12);
    assert.deepEqual(h.service.agentConnected(h.agent.id, [{ captureId: id, nextSeq: 3 }]).resume, [{ captureId: id, nextSeq: 3 }]);
    // Chunk 3 continues the rows of chunks 0-2: accepted only if the counts were rebuilt right.
    assert.deepEqual(h.service.chunk(h.agent.id, chunkMessage(id, 3, bytes[3]!)), [{ type: 'ack', captureId: id, nextSeq: 4 }]);
    h.service.ended(h.agent.id, { type: 'capture_ended', captureId: id, reason: 'duration', chunks: 4 });
    assertEnded(h, id, STATUS_AFTER_END.duration, 'duration', null);
    assertStoredChunks(h, id, bytes);
  });

  test('a capture nobody resumes ends after the grace period', (t) => {
    const h = harness(t);
    const { id } = started(h, 2);
    h.restart();
    h.service.recover();
    t.mock.timers.tick(GRACE_MS);
    assertEnded(h, id, S.incomplete, R.agent_disconnected, 'AGENT_DISCONNECTED');
  });
});
