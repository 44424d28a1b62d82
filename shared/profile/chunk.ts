// A chunk is the rows appended to every table since the previous chunk, plus the
// current capture info (small, and it changes as the capture runs). Replaying a
// capture is applying its chunks in order to an empty profile.
//
// Serialize chunks with msgpackr's `moreTypes: true`; without it msgpackr writes
// typed arrays as raw bytes and they come back as Buffers, which applyChunk rejects.

import { type CaptureInfo, type Profile, type TableSizes, emptyProfile } from './model.ts';
import { CHUNK_SCHEMA, validateChunk } from './chunk-validation.ts';
import type { TableName } from './chunk-schema.ts';

export interface ProfileChunk {
  /** Table sizes the chunk continues from; lets a receiver detect lost or repeated chunks. */
  base: TableSizes;
  capture: CaptureInfo;
  strings: string[];
  frames: { name: Int32Array; file: Int32Array; line: Int32Array; module: Int32Array };
  stacks: { prefix: Int32Array; frame: Int32Array };
  threads: { pid: Int32Array; tid: Float64Array; name: Int32Array };
  processes: { pid: Int32Array; commandLine: Int32Array; pythonVersion: Int32Array };
  samples: { stack: Int32Array; thread: Int32Array; timeUs: Float64Array; flags: Uint8Array };
  errors: { timeUs: Float64Array; message: Int32Array };
}

/**
 * Appends a chunk (typically straight out of a decoder, hence `unknown`) to `profile`.
 * The chunk is validated completely before anything is appended, so a rejected chunk
 * leaves the profile untouched. Throws PeriscopeError with code INVALID_CHUNK or
 * CHUNK_OUT_OF_SEQUENCE.
 */
export function applyChunk(profile: Profile, chunk: unknown): void {
  const valid = validateChunk(profile, chunk);
  profile.capture = { ...valid.capture };
  for (const s of valid.strings) profile.strings.push(s);
  // The schema names exactly the profile's numeric tables and columns.
  const tables = profile as unknown as Record<TableName, Record<string, number[]>>;
  for (const name of Object.keys(CHUNK_SCHEMA) as TableName[]) {
    for (const column of Object.keys(CHUNK_SCHEMA[name])) {
      const target = tables[name][column];
      const rows = valid.tables[name][column];
      for (let i = 0; i < rows.length; i++) target.push(rows[i]);
    }
  }
}

export function profileFromChunks(chunks: Iterable<unknown>): Profile {
  const profile = emptyProfile();
  for (const chunk of chunks) applyChunk(profile, chunk);
  return profile;
}
