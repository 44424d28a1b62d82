// What each numeric column of a chunk may hold. Written as data so validation and
// appending walk the same list and cannot drift apart from each other.

export type TableName = 'frames' | 'stacks' | 'threads' | 'processes' | 'samples' | 'errors';
export type RowTable = 'strings' | 'frames' | 'stacks' | 'threads';

export interface ColumnRule {
  /** Typed array a chunk carries this column as (plain arrays of numbers are accepted too). */
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

const strings: ColumnRule = { array: 'Int32Array', ref: 'strings' };
const optionalString: ColumnRule = { array: 'Int32Array', ref: 'strings', optional: true };
const int32: ColumnRule = { array: 'Int32Array' };
const time: ColumnRule = { array: 'Float64Array' };

export function chunkSchema(knownSampleFlags: number): Record<TableName, Record<string, ColumnRule>> {
  return {
    frames: { name: strings, file: strings, line: { array: 'Int32Array', min: 0 }, module: optionalString },
    stacks: {
      prefix: { array: 'Int32Array', ref: 'stacks', optional: true, earlierRow: true },
      frame: { array: 'Int32Array', ref: 'frames' },
    },
    threads: { pid: int32, tid: { array: 'Float64Array', min: 0 }, name: optionalString },
    processes: { pid: int32, commandLine: strings, pythonVersion: optionalString },
    samples: {
      stack: { array: 'Int32Array', ref: 'stacks', optional: true },
      thread: { array: 'Int32Array', ref: 'threads' },
      timeUs: time,
      flags: { array: 'Uint8Array', bitMask: knownSampleFlags },
    },
    errors: { timeUs: time, message: strings },
  };
}
