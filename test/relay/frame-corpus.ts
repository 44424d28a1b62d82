// Real frames for the fuzz and attack tests, built with the project's own
// encoders (shared/protocol.ts encode, encodeChunk, encodeCaptureChunk), plus the
// attacker's tools: msgpackr with its records, structured clone and bundled
// strings turned on, and hand-made frames whose values point at earlier data.
import { Packr } from 'msgpackr';
import { encode, encodeCaptureChunk, encodeChunk, type DumpThread } from '../../shared/protocol.ts';
import type { ProfileChunk } from '../../shared/profile/chunk.ts';
import { EMPTY_SIZES, acceptChunk } from '../../relay/captures/chunk-codec.ts';
import { buildChunks, STATS } from './helpers.ts';

export type Direction = 'agent' | 'relay-to-agent' | 'ui' | 'relay-to-ui' | 'stored-chunk';

export interface Seed {
  name: string;
  direction: Direction;
  bytes: Uint8Array;
}

/** A dump as `periscope dump --json` would send it: two threads of a small web app. */
export function realDumpThreads(pid = 4242): DumpThread[] {
  const frame = (name: string, filename: string, line: number) => ({ name, filename, short_filename: filename.split('/').at(-1)!, line });
  return [
    {
      pid,
      thread_id: 140_245_112_309_568,
      os_thread_id: pid,
      thread_name: 'MainThread',
      active: true,
      owns_gil: true,
      truncated: false,
      frames: [frame('compute', '/app/work.py', 12), frame('handle', '/app/server.py', 42), frame('<module>', '/app/app.py', 1)],
    },
    {
      pid,
      thread_id: 140_245_103_916_864,
      os_thread_id: pid + 1,
      thread_name: null,
      active: false,
      owns_gil: false,
      truncated: false,
      frames: [frame('wait', '/usr/lib/python3.12/threading.py', 355), frame('run', '/app/worker.py', 8)],
    },
  ];
}

/** Every message type of every connection, as the project encodes it. */
export function frameCorpus(captureId = 'capFuzz1'): Seed[] {
  const chunks = buildChunks(2);
  const stored0 = acceptChunk(EMPTY_SIZES, encodeChunk(chunks[0]));
  const stored1 = acceptChunk(stored0.sizesAfter, encodeChunk(chunks[1]));
  const proc = { pid: 4242, cmdline: 'python3 app.py --serve', version: '3.12.1', user: 'app', threads: 4 };
  const spec = { kind: 'record' as const, pid: 4242, rate: 100, duration: 10, subprocesses: false, mode: 'wall' as const, idle: false, gil: true, blocking: false };
  const seeds: Seed[] = [];
  const add = (direction: Direction, name: string, bytes: Uint8Array) => seeds.push({ direction, name, bytes });

  add('agent', 'hello', encode({ type: 'hello', protocol: 1, agentVersion: '0.1.0', host: 'web-1', containerId: 'c0ffee', arch: 'x64', captures: [{ captureId, nextSeq: 2 }] }));
  add('agent', 'processes', encode({ type: 'processes', processes: [proc, { ...proc, pid: 4300, cmdline: 'python3 -m celery worker' }] }));
  add('agent', 'chunk 0', encode({ type: 'chunk', captureId, seq: 0, chunk: encodeChunk(chunks[0]), stats: STATS }));
  add('agent', 'chunk 1', encode({ type: 'chunk', captureId, seq: 1, chunk: encodeChunk(chunks[1]), stats: { samples: 10, late: 1, ticks: 11, errors: 0 } }));
  add('agent', 'capture_ended', encode({ type: 'capture_ended', captureId, reason: 'error', chunks: 2, error: { code: 'TARGET_GONE', message: 'the process exited' } }));
  add('agent', 'dump_result', encode({ type: 'dump_result', captureId, threads: realDumpThreads() }));
  add('agent', 'error', encode({ type: 'error', captureId, code: 'NOT_PYTHON', message: 'pid 4242 is not a Python process' }));

  add('relay-to-agent', 'welcome', encode({ type: 'welcome', protocol: 1, agentId: 'agent1', sessionId: 'sess1', credential: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ', resume: [{ captureId, nextSeq: 1 }] }));
  add('relay-to-agent', 'start_capture', encode({ type: 'start_capture', captureId, spec, requestedBy: 'alice@support.example' }));
  add('relay-to-agent', 'stop_capture', encode({ type: 'stop_capture', captureId, requestedBy: 'alice@support.example' }));
  add('relay-to-agent', 'ack', encode({ type: 'ack', captureId, nextSeq: 2 }));
  add('relay-to-agent', 'list_processes', encode({ type: 'list_processes' }));
  add('relay-to-agent', 'error', encode({ type: 'error', captureId, code: 'CAPTURE_NOT_ACTIVE', message: 'stop sending it' }));

  add('ui', 'subscribe_session', encode({ type: 'subscribe_session', sessionId: 'sess1' }));
  add('ui', 'watch_capture', encode({ type: 'watch_capture', captureId }));
  add('ui', 'unwatch_capture', encode({ type: 'unwatch_capture', captureId }));

  const agent = { id: 'agent1', host: 'web-1', containerId: 'c0ffee', arch: 'x64', agentVersion: '0.1.0', online: true, processes: [proc] };
  add('relay-to-ui', 'session_state', encode({ type: 'session_state', sessionId: 'sess1', agents: [agent, { ...agent, id: 'agent2', online: false, processes: [] }] }));
  add('relay-to-ui', 'capture_state', encode({ type: 'capture_state', captureId, status: 'failed', stats: STATS, chunks: 3, error: { code: 'INVALID_CHUNK', message: 'bad' } }));
  add('relay-to-ui', 'capture_chunk', encodeCaptureChunk(captureId, 1, stored1.payload));
  add('relay-to-ui', 'capture_reset', encode({ type: 'capture_reset', captureId }));
  add('relay-to-ui', 'dump_result', encode({ type: 'dump_result', captureId, threads: realDumpThreads() }));

  add('stored-chunk', 'stored chunk 0', stored0.payload);
  add('stored-chunk', 'stored chunk 1', stored1.payload);
  return seeds;
}

/** msgpackr as an attacker would configure it: every extension that refers to earlier data on. */
export const HOSTILE_PACKERS: { name: string; packr: Packr }[] = [
  { name: 'records', packr: new Packr({ useRecords: true, moreTypes: true }) },
  { name: 'structured clone', packr: new Packr({ structuredClone: true, useRecords: false }) },
  { name: 'bundled strings', packr: new Packr({ bundleStrings: true, useRecords: false, moreTypes: true }) },
];

/**
 * The few-hundred-byte dump_result of the issue: a list of two pointers to a
 * list of two pointers ... to one frame, `depth` levels deep. Decoded by a
 * decoder that follows pointers it is 2^(depth+1) frames of JSON (depth 18:
 * ~35 MB) that the relay would stringify and store.
 */
export function expandingDumpFrame(captureId: string, depth: number): Uint8Array {
  const leaf = { name: 'f', filename: 'x.py', short_filename: 'x.py', line: 1 };
  let v: unknown = [leaf, leaf];
  for (let i = 0; i < depth; i++) v = [v, v];
  return new Packr({ structuredClone: true, useRecords: false }).pack({ type: 'dump_result', captureId, threads: v });
}

/** The same tree made with a msgpackr record definition and references to it: also refused. */
export function recordDumpFrame(captureId: string): Uint8Array {
  return new Packr({ useRecords: true }).pack({ type: 'dump_result', captureId, threads: realDumpThreads() });
}

/**
 * A real chunk whose `strings` are `copies` pointers (msgpackr structured-clone
 * id 1, then pointers to it) at one string of `stringBytes`: chunk bytes of
 * stringBytes + 6·copies that a pointer-following decoder turns into a chunk
 * of copies × stringBytes -- past what the chunk files read back -- in an
 * otherwise plain chunk message.
 */
export function sharedStringChunkFrame(captureId: string, seq: number, copies: number, stringBytes: number): Uint8Array {
  const chunk = buildChunks(1)[0]!;
  if (copies < chunk.strings.length) throw new Error(`need at least ${chunk.strings.length} copies so every string index stays valid`);
  const placeholder = 'STRINGS-PLACEHOLDER';
  const encoded = Buffer.from(encodeChunk({ ...chunk, strings: placeholder as never }));
  const marker = Buffer.from(encode(placeholder as never));
  const at = encoded.indexOf(marker);
  if (at < 0 || encoded.indexOf(marker, at + 1) >= 0) throw new Error('placeholder not found exactly once');
  const id = [0, 0, 0, 1];
  const parts: Buffer[] = [Buffer.from([0xdc, copies >> 8, copies & 0xff]), Buffer.from([0xd6, 0x69, ...id]), Buffer.from(encode('s'.repeat(stringBytes) as never))];
  for (let i = 1; i < copies; i++) parts.push(Buffer.from([0xd6, 0x70, ...id]));
  const hostileChunk = Buffer.concat([encoded.subarray(0, at), ...parts, encoded.subarray(at + marker.length)]);
  return encode({ type: 'chunk', captureId, seq, chunk: hostileChunk, stats: STATS });
}

/**
 * A well-formed chunk whose sample columns are lists of one-byte integers,
 * `rows` of them, next to a string of `stringBytes`: ~4 MB as sent, ~8.6 MB
 * had the relay turned the lists into typed arrays (8 bytes each in a
 * Float64Array, 4 in an Int32Array), as it did before it stored chunks as
 * sent; now a list column is refused (INVALID_CHUNK). `chunk` must continue a
 * profile that has a stack and a thread.
 */
export function growingChunkFrame(captureId: string, seq: number, chunk: ProfileChunk, rows = 330_000, stringBytes = 3 * 1024 * 1024): Uint8Array {
  if (chunk.base.stacks === 0 || chunk.base.threads === 0) throw new Error('the chunk must continue a profile with a stack and a thread');
  const zeros = () => new Array<number>(rows).fill(0);
  const grown = {
    ...chunk,
    strings: [...chunk.strings, 's'.repeat(stringBytes)],
    samples: { stack: zeros(), thread: zeros(), timeUs: zeros(), flags: new Uint8Array(rows) },
  };
  return encode({ type: 'chunk', captureId, seq, chunk: encodeChunk(grown as unknown as ProfileChunk), stats: STATS });
}
