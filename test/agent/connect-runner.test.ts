// Capture streams of `periscope connect`: seq numbering, acknowledgements,
// resending after a reconnect, the bounded buffer -- first against a
// scripted source (exact control of what is sampled when), then end to end
// through RemoteSession with the real native sampler on a real Python target.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChunkBudget, CaptureStream, type ChunkSource } from '../../agent/remote/capture-runner.ts';
import { RemoteSession, type Link } from '../../agent/remote/session.ts';
import { TerminalLog } from '../../agent/remote/terminal-log.ts';
import { Redactor } from '../../agent/remote/token.ts';
import type { EndReason } from '../../agent/capture.ts';
import { ProfileBuilder, profileFromChunks } from '../../shared/profile/index.ts';
import { decodeUntrusted } from '../../shared/untrusted-msgpack.ts';
import { parseAgentMessage, type AgentToRelay, type CaptureSpec, type ChunkMessage } from '../../shared/protocol.ts';
import { newestPython } from '../helpers/pythons.ts';
import { startTarget } from '../helpers/targets.ts';

const SPEC: CaptureSpec = { kind: 'record', pid: 1, rate: 100, duration: 0, subprocesses: false, mode: 'wall', idle: false, gil: false, blocking: false };

/** A capture whose samples the test adds by hand. */
class ScriptedSource implements ChunkSource {
  readonly builder = new ProfileBuilder({ commandLine: 'python app.py', rateHz: 100, startTimeUs: 1_700_000_000_000_000 });
  readonly progress = { stats: { samples: 0, late: 0, ticks: 0, errors: 0 }, lastError: null as { code: string; message: string } | null };
  readonly done: Promise<EndReason>;
  started = false;
  stopCalls = 0;
  #resolve!: (r: EndReason) => void;
  #listeners: (() => void)[] = [];
  #t = 0;

  constructor() {
    this.done = new Promise((r) => (this.#resolve = r));
  }
  onProgress(l: () => void): void {
    this.#listeners.push(l);
  }
  start(): void {
    this.started = true;
  }
  stop(): Promise<EndReason> {
    this.stopCalls++;
    this.end('stopped');
    return this.done;
  }
  /** n samples of a few distinct stacks, then a progress notification (like Capture.pump). */
  sample(n: number, notify = true): void {
    const thread = this.builder.thread(100, 101, 'MainThread');
    for (let i = 0; i < n; i++) {
      this.#t += 10_000;
      const k = this.progress.stats.samples % 7;
      this.builder.addSample({ thread, framesLeafFirst: [{ name: `leaf${k}`, file: 'app.py', line: 10 + k }, { name: 'main', file: 'app.py', line: 1 }], timeUs: this.#t });
      this.progress.stats.samples++;
      this.progress.stats.ticks++;
    }
    if (notify) for (const l of this.#listeners) l();
  }
  end(reason: EndReason): void {
    this.#resolve(reason);
  }
}

function harness(options: { budget?: number; maxPending?: number } = {}) {
  let now = 0;
  const source = new ScriptedSource();
  const budget = new ChunkBudget(options.budget ?? 64 * 1024 * 1024);
  const ends: unknown[] = [];
  let ready = 0;
  const stream = new CaptureStream({
    captureId: 'cap1',
    spec: SPEC,
    source,
    budget,
    onReady: () => ready++,
    onEnded: (e) => ends.push(e),
    chunkIntervalMs: 250,
    maxPendingBytes: options.maxPending,
    now: () => now,
  });
  budget.onRelease(() => stream.tick());
  stream.start();
  return {
    source,
    budget,
    stream,
    ends,
    get ready() {
      return ready;
    },
    advance(ms: number) {
      now += ms;
    },
    /** Everything the stream would send now, decoded and validated as the relay would. */
    drain(): AgentToRelay[] {
      const out: AgentToRelay[] = [];
      for (let f = stream.nextFrame(); f; f = stream.nextFrame()) out.push(parseAgentMessage(f));
      return out;
    },
  };
}

const chunks = (msgs: AgentToRelay[]) => msgs.filter((m): m is ChunkMessage => m.type === 'chunk');
const seqs = (msgs: AgentToRelay[]) => chunks(msgs).map((m) => m.seq);

test('runner: chunks every interval with seq 0,1,2…; nothing cut before the interval or without news', () => {
  const h = harness();
  assert.ok(h.source.started);
  h.source.sample(5);
  assert.deepEqual(h.drain(), [], 'not due yet');
  h.advance(250);
  h.source.sample(5);
  let sent = h.drain();
  assert.deepEqual(seqs(sent), [0]);
  assert.equal(chunks(sent)[0]!.stats.samples, 10);
  h.advance(250);
  h.stream.tick();
  assert.deepEqual(h.drain(), [], 'no new rows and unchanged stats: no chunk');
  h.source.progress.stats.late++;
  h.advance(250);
  h.stream.tick();
  assert.deepEqual(h.drain(), [], 'stats-only news waits for the stats interval');
  h.advance(1000);
  h.stream.tick();
  sent = h.drain();
  assert.deepEqual(seqs(sent), [1], 'a stats-only chunk keeps stats flowing');
  assert.equal(chunks(sent)[0]!.stats.late, 1);
  for (let i = 0; i < 5; i++) {
    h.advance(250);
    h.source.sample(3);
  }
  assert.deepEqual(seqs(h.drain()), [2, 3, 4, 5, 6]);
  assert.equal(h.stream.cutCount, 7);
});

test('runner: a big backlog is cut early (before the interval) so chunks stay small', () => {
  const h = harness();
  h.source.sample(80_000); // ~1.4 MB pending, above the eager threshold
  const sent = h.drain();
  assert.deepEqual(seqs(sent), [0]);
});

test('runner: ack frees chunks; after a drop the relay’s resume point is resent in order; the end comes last', async () => {
  const h = harness();
  const relay = { stored: [] as ChunkMessage[] };
  for (let i = 0; i < 6; i++) {
    h.advance(250);
    h.source.sample(10);
  }
  const first = chunks(h.drain());
  assert.deepEqual(first.map((c) => c.seq), [0, 1, 2, 3, 4, 5]);
  relay.stored.push(...first.slice(0, 3)); // the relay stored 0..2; 3..5 were lost in the drop
  h.stream.ack(2);
  assert.equal(h.stream.heldChunks, 4, 'acked chunks are freed, the rest held');
  const heldAfterAck = h.budget.usedBytes;
  assert.equal(heldAfterAck, h.stream.heldBytes);

  h.stream.linkLost();
  // Sampling goes on while disconnected.
  for (let i = 0; i < 3; i++) {
    h.advance(250);
    h.source.sample(10);
  }
  assert.deepEqual(h.stream.helloEntry(), { captureId: 'cap1', nextSeq: 9 });
  assert.equal(h.stream.resume(3), undefined);
  assert.equal(h.stream.heldChunks, 6);
  h.source.sample(4, false);
  h.source.end('duration');
  await sleep(0);
  const resent = h.drain();
  const resentChunks = chunks(resent);
  assert.deepEqual(resentChunks.map((c) => c.seq), [3, 4, 5, 6, 7, 8, 9], 'resent from 3, in order, plus the final rows');
  relay.stored.push(...resentChunks);
  const end = resent.at(-1)!;
  assert.equal(end.type, 'capture_ended');
  assert.deepEqual(end, { type: 'capture_ended', captureId: 'cap1', reason: 'duration', chunks: 10, error: undefined });
  assert.deepEqual(h.ends.length, 1);

  const replay = profileFromChunks(relay.stored.map((c) => decodeUntrusted(c.chunk))); // throws on any gap or repeat
  assert.equal(replay.samples.stack.length, h.source.builder.profile.samples.stack.length);
  assert.equal(replay.samples.stack.length, 94);
  assert.equal(relay.stored.at(-1)!.stats.samples, 94);

  assert.equal(h.stream.finished, false, 'not finished until everything is acknowledged');
  h.stream.ack(10);
  assert.equal(h.stream.finished, true);
  assert.equal(h.budget.usedBytes, 0);
});

test('runner: resume answers: unknown capture abandons it; a resume point below the acknowledged one is reported; bad acks are clamped', () => {
  const a = harness();
  a.advance(250);
  a.source.sample(10);
  a.drain();
  assert.match(a.stream.resume(undefined)!, /no longer knows capture cap1/);
  assert.ok(a.stream.abandoned && a.source.stopCalls === 1);
  assert.equal(a.budget.usedBytes, 0, 'an abandoned stream frees its buffer');
  assert.equal(a.stream.nextFrame(), undefined);

  const b = harness();
  for (let i = 0; i < 3; i++) {
    b.advance(250);
    b.source.sample(10);
  }
  b.drain();
  assert.match(b.stream.ack(7)!, /does not exist yet/);
  assert.equal(b.stream.ackedSeq, 3, 'clamped to what was cut');
  b.stream.linkLost();
  assert.match(b.stream.resume(1)!, /acknowledged chunks up to 3/);
});

test('runner: bounded buffer -- cutting pauses when full, no cut chunk is dropped, overflow ends the capture with BUFFER_FULL, the rest is delivered later', async () => {
  const limit = 40_000;
  const h = harness({ budget: limit, maxPending: 20_000 });
  const relay: ChunkMessage[] = [];
  let maxUsed = 0;
  // Disconnected: nothing is acknowledged.
  for (let i = 0; i < 200 && h.stream.running; i++) {
    h.advance(250);
    h.source.sample(100);
    maxUsed = Math.max(maxUsed, h.budget.usedBytes);
    assert.ok(h.budget.usedBytes <= limit, `buffer ${h.budget.usedBytes} over its limit ${limit}`);
  }
  await sleep(0);
  assert.equal(h.stream.running, false, 'the capture was stopped once the backlog outgrew the pending limit');
  assert.ok(maxUsed > limit / 2, `the buffer filled up (${maxUsed})`);
  const cutWhileFull = h.stream.cutCount;
  assert.equal(h.stream.end, undefined, 'the end waits for its last rows to be cut');
  const beforeAck = h.drain();
  assert.deepEqual(seqs(beforeAck), [...Array(cutWhileFull).keys()], 'every chunk cut so far goes out, in order');
  assert.ok(!beforeAck.some((m) => m.type === 'capture_ended'));
  relay.push(...chunks(beforeAck));
  // Reconnected: the relay acknowledges; space frees; the remaining rows are cut.
  for (let guard = 0; guard < 50 && !h.stream.finished; guard++) {
    h.stream.ack(h.stream.cutCount);
    await sleep(0);
    const more = h.drain();
    relay.push(...chunks(more));
    const end = more.find((m) => m.type === 'capture_ended');
    if (end && end.type === 'capture_ended') {
      assert.equal(end.reason, 'error');
      assert.equal(end.error?.code, 'BUFFER_FULL');
      assert.match(end.error!.message, /has not acknowledged .* MiB .* at most 0\.0 MiB|buffer holds at most/);
      assert.equal(end.chunks, relay.length);
    }
  }
  assert.ok(h.stream.finished);
  assert.deepEqual(relay.map((c) => c.seq), [...relay.keys()], 'seqs contiguous from 0');
  const replay = profileFromChunks(relay.map((c) => decodeUntrusted(c.chunk)));
  assert.equal(replay.samples.stack.length, h.source.builder.profile.samples.stack.length, 'every sample taken reached the relay');
  assert.equal(h.budget.usedBytes, 0);
});

// ---- end to end: RemoteSession + native sampler + real Python ----------------

class RecordingLink implements Link {
  frames: AgentToRelay[] = [];
  bufferedAmount = 0;
  send(frame: Uint8Array, done?: (err?: Error) => void): void {
    this.frames.push(parseAgentMessage(frame));
    done?.();
  }
}

test('session: a real record with a tiny buffer and no acks ends with BUFFER_FULL; after reconnect every sample arrives, in order', async (t) => {
  const py = newestPython();
  assert.ok(py, 'no Python interpreter');
  const target = await startTarget(py, 'parked.py', { t });
  await target.truth();
  const lines: string[] = [];
  const session = new RemoteSession({
    limits: { maxRate: 1000, maxDurationS: 60, allowLocals: false },
    log: new TerminalLog({ redactor: new Redactor(), write: (s) => lines.push(s) }),
    // The first chunk (every frame of 700-deep stacks) is ~90 KB; the buffer holds a few.
    bufferBytes: 256 * 1024,
    maxPendingBytes: 128 * 1024,
    processRefreshMs: 60_000,
  });
  const link1 = new RecordingLink();
  session.welcome({ type: 'welcome', protocol: 1, agentId: 'a1', sessionId: 's1', resume: [] }, link1);
  session.message(
    { type: 'start_capture', captureId: 'rec1', spec: { ...SPEC, pid: target.pid, rate: 1000, duration: 30 }, requestedBy: 'eve@support' },
    { spec: {} },
  );
  const stream = session.streams.get('rec1');
  assert.ok(stream, `capture not started: ${lines.join('')}`);
  // Drop the link at once: nothing is ever acknowledged.
  await sleep(300);
  session.linkLost();
  const deadline = Date.now() + 20_000;
  while (stream.running && Date.now() < deadline) await sleep(50);
  assert.equal(stream.running, false, `the capture should stop on a full buffer: ${lines.join('')}`);
  assert.ok(session.budget.usedBytes <= 256 * 1024, `buffer within bound: ${session.budget.usedBytes}`);

  // Reconnect: the relay stored what it received on link 1 (in order, say all of it).
  const stored = link1.frames.filter((m): m is ChunkMessage => m.type === 'chunk');
  const link2 = new RecordingLink();
  assert.deepEqual(session.hello().captures, [{ captureId: 'rec1', nextSeq: stream.cutCount }]);
  session.welcome({ type: 'welcome', protocol: 1, agentId: 'a1', sessionId: 's1', resume: [{ captureId: 'rec1', nextSeq: stored.length }] }, link2);
  let ended: AgentToRelay | undefined;
  for (let i = 0; i < 400 && !ended; i++) {
    await sleep(10);
    for (const m of link2.frames.splice(0)) {
      if (m.type === 'chunk') {
        stored.push(m);
        session.message({ type: 'ack', captureId: 'rec1', nextSeq: m.seq + 1 }, {});
      } else if (m.type === 'capture_ended') ended = m;
    }
  }
  assert.ok(ended && ended.type === 'capture_ended', `no capture_ended: ${lines.join('')}`);
  assert.equal(ended.reason, 'error');
  assert.equal(ended.error?.code, 'BUFFER_FULL');
  assert.equal(ended.chunks, stored.length);
  assert.deepEqual(stored.map((c) => c.seq), [...stored.keys()]);
  const replay = profileFromChunks(stored.map((c) => decodeUntrusted(c.chunk)));
  assert.ok(replay.samples.stack.length > 100, `samples: ${replay.samples.stack.length}`);
  assert.equal(replay.samples.stack.length, stream.source.builder.sizes().samples, 'every sample taken reached the relay');
  assert.equal(stream.source.builder.profile.samples.stack.length, 0, 'delivered samples left the agent\'s memory');
  assert.equal(stored.at(-1)!.stats.samples, stream.source.progress.stats.samples);
  const log = lines.join('');
  assert.match(log, /eve@support asked for a recording of pid \d+ \(.*parked\.py.*\) at 1000 Hz for 30 s/);
  assert.match(log, /ended \(error: BUFFER_FULL/);
  await session.shutdown(100);
});

test('session: a target that exits ends its capture with target_exited after its last chunk', async (t) => {
  const py = newestPython();
  assert.ok(py, 'no Python interpreter');
  const target = await startTarget(py, 'exits_soon.py', { t, args: ['1500', 'normal'] });
  await target.truth();
  const lines: string[] = [];
  const session = new RemoteSession({
    limits: { maxRate: 1000, maxDurationS: 60, allowLocals: false },
    log: new TerminalLog({ redactor: new Redactor(), write: (s) => lines.push(s) }),
    processRefreshMs: 60_000,
  });
  const link = new RecordingLink();
  session.welcome({ type: 'welcome', protocol: 1, agentId: 'a1', sessionId: 's1', resume: [] }, link);
  session.message({ type: 'start_capture', captureId: 'ex1', spec: { ...SPEC, pid: target.pid, rate: 200, duration: 30 }, requestedBy: 'eve' }, { spec: {} });
  assert.ok(session.streams.has('ex1'), lines.join(''));
  const stored: ChunkMessage[] = [];
  let ended: AgentToRelay | undefined;
  for (let i = 0; i < 1000 && !ended; i++) {
    await sleep(10);
    for (const m of link.frames.splice(0)) {
      if (m.type === 'chunk') {
        assert.equal(m.seq, stored.length);
        stored.push(m);
        session.message({ type: 'ack', captureId: 'ex1', nextSeq: m.seq + 1 }, {});
      } else if (m.type === 'capture_ended') ended = m;
    }
  }
  assert.ok(ended && ended.type === 'capture_ended', `no end: ${lines.join('')}`);
  assert.equal(ended.reason, 'target_exited');
  assert.equal(ended.chunks, stored.length);
  const replay = profileFromChunks(stored.map((c) => decodeUntrusted(c.chunk)));
  assert.ok(replay.samples.stack.length > 0);
  assert.match(lines.join(''), /ended \(the process exited\)/);
  await session.shutdown(100);
});
