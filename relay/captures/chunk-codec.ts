// How chunks are checked for storing. An agent sends a chunk as its own
// msgpack bytes (shared/protocol.ts encodeChunk), in the one form the store
// holds: typed-array columns and the chunk format's fields only. The relay
// decodes those bytes once, checks them as the continuation of the capture
// (validateChunk, exact), and stores exactly them; viewers get them spliced
// into a frame (encodeCaptureChunk) without another decode. So the store
// never holds anything a viewer or exporter could choke on, and nothing is
// encoded twice. Stored bytes read back are untrusted again: a damaged or
// planted file is checked like a frame.
import { PeriscopeError, isPeriscopeError } from '../../shared/errors.ts';
import { MAX_CHUNK_BYTES } from '../../shared/protocol.ts';
import { decodeUntrusted } from '../../shared/untrusted-msgpack.ts';
import { validateChunk } from '../../shared/profile/chunk-validation.ts';
import { TABLE_NAMES, columnsOf, emptySizes } from '../../shared/profile/schema.ts';
import { type Profile, type TableSizes, emptyCaptureInfo } from '../../shared/profile/model.ts';

/**
 * Largest chunk stored: the protocol's bound on an encoded chunk, so a stored
 * chunk still fits in a message to viewers and in what the chunk files read back.
 */
export const MAX_STORED_CHUNK_BYTES = MAX_CHUNK_BYTES;

export const EMPTY_SIZES: TableSizes = emptySizes();

const FIRST_COLUMN = Object.fromEntries(TABLE_NAMES.map((name) => [name, columnsOf(name)[0]![0]]));

/**
 * validateChunk only needs the row counts of the profile a chunk continues
 * (rows are append-only and chunks reference earlier rows by index), so the
 * relay keeps counts per live capture instead of the whole profile: memory per
 * capture stays constant however long it records.
 */
function shapeOf(sizes: TableSizes): Profile {
  const rows = (n: number) => ({ length: n }) as unknown as number[];
  const tables = Object.fromEntries(TABLE_NAMES.map((t) => [t, Object.fromEntries(columnsOf(t).map(([c]) => [c, rows(sizes[t])]))]));
  return { capture: emptyCaptureInfo(), strings: rows(sizes.strings) as unknown as string[], ...tables } as Profile;
}

export interface AcceptedChunk {
  /** The chunk's bytes as they came (not a copy): what is stored and forwarded. */
  payload: Uint8Array;
  sizesAfter: TableSizes;
  samples: number;
}

function decodeChunk(bytes: Uint8Array, what: string): unknown {
  try {
    return decodeUntrusted(bytes);
  } catch (err) {
    if (!isPeriscopeError(err)) throw err;
    throw new PeriscopeError('INVALID_CHUNK', `${what} cannot be decoded: ${err.message}`);
  }
}

function accept(sizes: TableSizes, bytes: Uint8Array, what: string): AcceptedChunk {
  const valid = validateChunk(shapeOf(sizes), decodeChunk(bytes, what), { exact: true });
  const sizesAfter = { ...sizes, strings: sizes.strings + valid.strings.length };
  for (const name of TABLE_NAMES) sizesAfter[name] += valid.tables[name][FIRST_COLUMN[name]!]!.length;
  return { payload: bytes, sizesAfter, samples: sizesAfter.samples - sizes.samples };
}

/**
 * Checks a chunk's bytes from an agent (ChunkMessage.chunk) as the
 * continuation of a profile with `sizes` rows. Throws PeriscopeError:
 * INVALID_CHUNK (not msgpack, not a valid chunk, or not in the stored form:
 * a column sent as a list, a field the format does not have) or
 * CHUNK_OUT_OF_SEQUENCE. The size bound is the store's (CHUNK_TOO_LARGE).
 */
export function acceptChunk(sizes: TableSizes, bytes: Uint8Array): AcceptedChunk {
  return accept(sizes, bytes, 'the chunk');
}

/** Decodes a chunk read back from the store; the bytes are checked like a frame (a damaged or planted file is not trusted). */
export function decodeStoredChunk(payload: Uint8Array): unknown {
  return decodeChunk(payload, 'a stored chunk');
}

/** Row counts after a stored chunk, for rebuilding a live capture's counts after a restart; checked like a chunk from an agent. */
export function sizesAfterStored(sizes: TableSizes, payload: Uint8Array): TableSizes {
  return accept(sizes, payload, 'a stored chunk').sizesAfter;
}
