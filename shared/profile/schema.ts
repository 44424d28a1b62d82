// The profile's tables and columns, defined once as data. The in-memory
// Profile (model.ts), the chunks an agent streams (chunk.ts, the builder's
// takeChunk), their validation (chunk-validation.ts), the relay's acceptance
// and the agent's size estimate are all derived from PROFILE_TABLES: adding a
// column is one entry here (with its rule), and the compiler points at what
// must fill it.

/** Bit flags stored in `samples.flags`. */
export const SampleFlag = {
  /** The thread was idle (waiting/sleeping) when sampled. */
  Idle: 1,
  /** The thread held the GIL when sampled. */
  Gil: 2,
} as const;

/** Every bit a valid sample may carry; anything else marks a corrupt chunk. */
export const KNOWN_SAMPLE_FLAGS = SampleFlag.Idle | SampleFlag.Gil;

export type RowTable = 'strings' | 'frames' | 'stacks' | 'threads';

export interface ColumnRule {
  /** Typed array a chunk carries this column as. */
  array: 'Int32Array' | 'Float64Array' | 'Uint8Array';
  /** The value is a row index into this table. */
  ref?: RowTable;
  /** NONE (-1) is allowed in place of a reference. */
  optional?: boolean;
  /** The reference must point to a row before this one in the same table (keeps the stack trie acyclic). */
  earlierRow?: boolean;
  /** Smallest allowed value for non-reference integers. */
  min?: number;
  /** Only these bits may be set. */
  bitMask?: number;
}

const strings = { array: 'Int32Array', ref: 'strings' } as const;
const optionalString = { array: 'Int32Array', ref: 'strings', optional: true } as const;
const int32 = { array: 'Int32Array' } as const;
const time = { array: 'Float64Array' } as const;

/**
 * Every table is append-only and rows refer to each other by index, so a
 * capture streams as chunks of "rows appended since last time". Times are
 * microseconds since the capture's start (CaptureInfo.startTimeUs).
 */
export const PROFILE_TABLES = {
  frames: {
    /** Function name (index into strings). */
    name: strings,
    /** Source file. */
    file: strings,
    /** Line number being executed (0 when unknown). */
    line: { array: 'Int32Array', min: 0 },
    /** Module / shared object, or NONE. */
    module: optionalString,
  },
  /** A trie: a stack is identified by its leaf row; `prefix` is the caller's row or NONE at the root. */
  stacks: {
    prefix: { array: 'Int32Array', ref: 'stacks', optional: true, earlierRow: true },
    frame: { array: 'Int32Array', ref: 'frames' },
  },
  threads: {
    pid: int32,
    /** OS thread id. Float64 because Python thread idents can exceed 32 bits. */
    tid: { array: 'Float64Array', min: 0 },
    /** Thread name, or NONE. */
    name: optionalString,
  },
  processes: {
    pid: int32,
    commandLine: strings,
    /** Or NONE. */
    pythonVersion: optionalString,
  },
  samples: {
    /** Leaf stack row, or NONE when the thread had no Python frames. */
    stack: { array: 'Int32Array', ref: 'stacks', optional: true },
    thread: { array: 'Int32Array', ref: 'threads' },
    timeUs: time,
    /** SampleFlag bits. */
    flags: { array: 'Uint8Array', bitMask: KNOWN_SAMPLE_FLAGS },
  },
  errors: {
    timeUs: time,
    message: strings,
  },
} as const satisfies Record<string, Record<string, ColumnRule>>;

export type TableName = keyof typeof PROFILE_TABLES;
export const TABLE_NAMES = Object.keys(PROFILE_TABLES) as readonly TableName[];

type Schema = typeof PROFILE_TABLES;
interface ArrayTypes {
  Int32Array: Int32Array;
  Float64Array: Float64Array;
  Uint8Array: Uint8Array;
}

/** The tables as a Profile holds them: plain number arrays, cheap to push to. */
export type ProfileTables = { -readonly [T in TableName]: { -readonly [C in keyof Schema[T]]: number[] } };

/** The tables as a chunk carries them: each column its rule's typed array. */
export type ChunkTables = { -readonly [T in TableName]: { -readonly [C in keyof Schema[T]]: Schema[T][C] extends { array: infer A extends keyof ArrayTypes } ? ArrayTypes[A] : never } };

/** Row count of every table; a chunk records these as its starting point. */
export type TableSizes = { strings: number } & { [T in TableName]: number };

/** A table's columns with their rules, in schema order. */
export function columnsOf(table: TableName): [string, ColumnRule][] {
  return Object.entries(PROFILE_TABLES[table]);
}

export const TYPED_ARRAYS = { Int32Array, Float64Array, Uint8Array } as const;

export function emptyTables(): ProfileTables {
  return Object.fromEntries(TABLE_NAMES.map((t) => [t, Object.fromEntries(columnsOf(t).map(([c]) => [c, []]))])) as unknown as ProfileTables;
}

export function emptySizes(): TableSizes {
  return Object.fromEntries(['strings', ...TABLE_NAMES].map((t) => [t, 0])) as TableSizes;
}

/** Bytes one row of `table` takes in a chunk (typed arrays are raw bytes). */
export function rowBytes(table: TableName): number {
  return columnsOf(table).reduce((sum, [, rule]) => sum + TYPED_ARRAYS[rule.array].BYTES_PER_ELEMENT, 0);
}
