// A chunk is the rows appended to every table since the previous chunk, plus the
// current capture info (small, and it changes as the capture runs). Replaying a
// capture is applying its chunks in order to an empty profile.
//
// Serialize chunks with msgpackr's `moreTypes: true`; without it msgpackr writes
// typed arrays as raw bytes and they come back as Buffers, which applyChunk rejects.

import { type CaptureInfo, type Profile, type TableSizes, emptyProfile } from './model.ts';
import { validateChunk } from './chunk-validation.ts';
import { type ChunkTables, TABLE_NAMES, columnsOf } from './schema.ts';

export type ProfileChunk = {
  /** Table sizes the chunk continues from; lets a receiver detect lost or repeated chunks. */
  base: TableSizes;
  capture: CaptureInfo;
  strings: string[];
} & ChunkTables;

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
  const tables = profile as unknown as Record<string, Record<string, number[]>>;
  for (const name of TABLE_NAMES) {
    for (const [column] of columnsOf(name)) {
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
