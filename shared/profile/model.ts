// The one profile model every exporter and view reads.
//
// Struct-of-arrays tables in the spirit of the Firefox profiler's processed format:
// every table is append-only and rows refer to each other by index, so a capture can
// be streamed as chunks of "rows appended since last time" and replayed by
// concatenation (see chunk.ts). Columns are plain number arrays in memory (cheap to
// push to); chunks carry them as typed arrays for compact serialization.

import { type ProfileTables, TABLE_NAMES, type TableSizes, emptySizes, emptyTables } from './schema.ts';

export { KNOWN_SAMPLE_FLAGS, SampleFlag, type TableSizes } from './schema.ts';

/** Marks an absent optional reference (no module, no thread name, empty stack...). */
export const NONE = -1;

export interface CaptureInfo {
  /** Command line of the main target process. */
  commandLine: string;
  /** Nominal sampling rate; 0 when unknown. */
  rateHz: number;
  /** Wall-clock start of the capture, microseconds since the Unix epoch. */
  startTimeUs: number;
  /** Length of the capture so far, microseconds. */
  durationUs: number;
  /** How many samples were taken late because the sampler fell behind. */
  lateSamples: number;
}

// The tables' columns are defined once, in schema.ts.
export type FrameTable = ProfileTables['frames'];
export type StackTable = ProfileTables['stacks'];
export type ThreadTable = ProfileTables['threads'];
export type ProcessTable = ProfileTables['processes'];
export type SampleTable = ProfileTables['samples'];
export type ErrorTable = ProfileTables['errors'];

export type Profile = { capture: CaptureInfo; strings: string[] } & ProfileTables;

export function emptyCaptureInfo(): CaptureInfo {
  return { commandLine: '', rateHz: 0, startTimeUs: 0, durationUs: 0, lateSamples: 0 };
}

export function emptyProfile(capture: Partial<CaptureInfo> = {}): Profile {
  return { capture: { ...emptyCaptureInfo(), ...capture }, strings: [], ...emptyTables() };
}

export function tableSizes(profile: Profile): TableSizes {
  const sizes = emptySizes();
  sizes.strings = profile.strings.length;
  // Every column of a table has its row count: read the first.
  for (const t of TABLE_NAMES) sizes[t] = (Object.values(profile[t])[0] as number[]).length;
  return sizes;
}

/** Sampling period in microseconds; py-spy's default 100 Hz when the rate is unknown. */
export function samplePeriodUs(profile: Profile): number {
  const rate = profile.capture.rateHz;
  return rate > 0 && Number.isFinite(rate) ? 1e6 / rate : 10_000;
}

/** String at `index`, or '' for NONE. */
export function stringAt(profile: Profile, index: number): string {
  return index === NONE ? '' : profile.strings[index];
}
