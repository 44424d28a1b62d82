// How chunks are stored and forwarded. A chunk from an agent is validated and
// normalized (only the schema's fields, typed arrays) before it is stored, so
// the store never holds anything a viewer or exporter could choke on. Stored
// bytes are forwarded to viewers without decoding them again.
import { Packr } from 'msgpackr';
import { PeriscopeError, isPeriscopeError } from '../../shared/errors.ts';
import { MAX_MESSAGE_BYTES } from '../../shared/protocol.ts';
import { decodeUntrusted } from '../../shared/untrusted-msgpack.ts';
import { CHUNK_SCHEMA, validateChunk } from '../../shared/profile/chunk-validation.ts';
import type { TableName } from '../../shared/profile/chunk-schema.ts';
import type { ProfileChunk } from '../../shared/profile/chunk.ts';
import { type Profile, type TableSizes } from '../../shared/profile/model.ts';

// Same settings as shared/protocol.ts: typed arrays must survive the round trip.
// Encoding only; stored chunks are decoded like frames, as untrusted bytes.
const packr = new Packr({ moreTypes: true, useRecords: false });

/**
 * Largest normalized chunk stored. Normalizing can grow a chunk (a column sent
 * as a list of one-byte integers is stored as 4- or 8-byte typed array
 * elements), and a stored chunk must still fit in a message to viewers
 * (captureChunkFrame adds a small header) and in what the chunk files accept.
 */
export const MAX_STORED_CHUNK_BYTES = MAX_MESSAGE_BYTES - 1024;

export const EMPTY_SIZES: TableSizes = { strings: 0, frames: 0, stacks: 0, threads: 0, processes: 0, samples: 0, errors: 0 };

const TYPED = { Int32Array, Float64Array, Uint8Array };
const TABLES = Object.keys(CHUNK_SCHEMA) as TableName[];

/**
 * validateChunk only needs the row counts of the profile a chunk continues
 * (rows are append-only and chunks reference earlier rows by index), so the
 * relay keeps counts per live capture instead of the whole profile: memory per
 * capture stays constant however long it records.
 */
function shapeOf(sizes: TableSizes): Profile {
  const rows = (n: number) => ({ length: n }) as unknown as number[];
  return {
    capture: { commandLine: '', rateHz: 0, startTimeUs: 0, durationUs: 0, lateSamples: 0 },
    strings: rows(sizes.strings) as unknown as string[],
    frames: { name: rows(sizes.frames), file: rows(sizes.frames), line: rows(sizes.frames), module: rows(sizes.frames) },
    stacks: { prefix: rows(sizes.stacks), frame: rows(sizes.stacks) },
    threads: { pid: rows(sizes.threads), tid: rows(sizes.threads), name: rows(sizes.threads) },
    processes: { pid: rows(sizes.processes), commandLine: rows(sizes.processes), pythonVersion: rows(sizes.processes) },
    samples: { stack: rows(sizes.samples), thread: rows(sizes.samples), timeUs: rows(sizes.samples), flags: rows(sizes.samples) },
    errors: { timeUs: rows(sizes.errors), message: rows(sizes.errors) },
  };
}

export interface AcceptedChunk {
  /** msgpack of the normalized ProfileChunk, as stored. */
  payload: Buffer;
  sizesAfter: TableSizes;
  samples: number;
}

/** Validates `chunk` as the continuation of a profile with `sizes` rows; throws PeriscopeError (INVALID_CHUNK / CHUNK_OUT_OF_SEQUENCE). */
export function acceptChunk(sizes: TableSizes, chunk: unknown): AcceptedChunk {
  const valid = validateChunk(shapeOf(sizes), chunk);
  const tables = {} as Record<TableName, Record<string, ArrayLike<number>>>;
  const sizesAfter = { ...sizes, strings: sizes.strings + valid.strings.length };
  for (const name of TABLES) {
    const columns: Record<string, ArrayLike<number>> = {};
    let rows = 0;
    for (const [column, rule] of Object.entries(CHUNK_SCHEMA[name])) {
      const values = valid.tables[name][column];
      columns[column] = values instanceof TYPED[rule.array] ? values : TYPED[rule.array].from(values);
      rows = values.length;
    }
    tables[name] = columns;
    sizesAfter[name] += rows;
  }
  const normalized = { base: { ...sizes }, capture: valid.capture, strings: [...valid.strings], ...tables } as unknown as ProfileChunk;
  const payload = packr.pack(normalized);
  if (payload.byteLength > MAX_STORED_CHUNK_BYTES) {
    throw new PeriscopeError(
      'INVALID_CHUNK',
      `the chunk takes ${payload.byteLength} bytes once its columns are typed arrays, more than the ${MAX_STORED_CHUNK_BYTES} a stored chunk may; send smaller chunks, with typed-array columns`,
    );
  }
  return { payload, sizesAfter, samples: sizesAfter.samples - sizes.samples };
}

/** Decodes a chunk read back from the store; the bytes are checked like a frame (a damaged or planted file is not trusted). */
export function decodeStoredChunk(payload: Uint8Array): unknown {
  try {
    return decodeUntrusted(payload);
  } catch (err) {
    if (!isPeriscopeError(err)) throw err;
    throw new PeriscopeError('INVALID_CHUNK', `a stored chunk cannot be decoded: ${err.message}`);
  }
}

/** Row counts after a stored chunk, for rebuilding a live capture's counts after a restart. */
export function sizesAfterStored(sizes: TableSizes, payload: Uint8Array): TableSizes {
  return acceptChunk(sizes, decodeStoredChunk(payload)).sizesAfter;
}

/** A `capture_chunk` frame for viewers, spliced around the stored bytes (a map of 4 entries). */
export function captureChunkFrame(captureId: string, seq: number, payload: Uint8Array): Buffer {
  return Buffer.concat([
    Buffer.from([0x84]),
    packr.pack('type'),
    packr.pack('capture_chunk'),
    packr.pack('captureId'),
    packr.pack(captureId),
    packr.pack('seq'),
    packr.pack(seq),
    packr.pack('chunk'),
    payload,
  ]);
}
