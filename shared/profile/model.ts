// The one profile model every exporter and view reads.
//
// Struct-of-arrays tables in the spirit of the Firefox profiler's processed format:
// every table is append-only and rows refer to each other by index, so a capture can
// be streamed as chunks of "rows appended since last time" and replayed by
// concatenation (see chunk.ts). Columns are plain number arrays in memory (cheap to
// push to); chunks carry them as typed arrays for compact serialization.

/** Bit flags stored in `samples.flags`. */
export const SampleFlag = {
  /** The thread was idle (waiting/sleeping) when sampled. */
  Idle: 1,
  /** The thread held the GIL when sampled. */
  Gil: 2,
} as const;

/** Every bit a valid sample may carry; anything else marks a corrupt chunk. */
export const KNOWN_SAMPLE_FLAGS = SampleFlag.Idle | SampleFlag.Gil;

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

export interface FrameTable {
  /** Function name, index into strings. */
  name: number[];
  /** Source file, index into strings. */
  file: number[];
  /** Line number being executed (0 when unknown). */
  line: number[];
  /** Module / shared object, index into strings, or NONE. */
  module: number[];
}

/** A trie: a stack is identified by its leaf row; `prefix` is the caller's row or NONE at the root. */
export interface StackTable {
  prefix: number[];
  frame: number[];
}

export interface ThreadTable {
  pid: number[];
  /** OS thread id. Float64 because Python thread idents can exceed 32 bits. */
  tid: number[];
  /** Thread name, index into strings, or NONE. */
  name: number[];
}

export interface ProcessTable {
  pid: number[];
  /** Index into strings. */
  commandLine: number[];
  /** Index into strings, or NONE. */
  pythonVersion: number[];
}

export interface SampleTable {
  /** Leaf stack row, or NONE when the thread had no Python frames. */
  stack: number[];
  /** Row in the thread table. */
  thread: number[];
  /** Microseconds since capture start (CaptureInfo.startTimeUs). */
  timeUs: number[];
  /** SampleFlag bits. */
  flags: number[];
}

export interface ErrorTable {
  /** Microseconds since capture start. */
  timeUs: number[];
  /** Index into strings. */
  message: number[];
}

export interface Profile {
  capture: CaptureInfo;
  strings: string[];
  frames: FrameTable;
  stacks: StackTable;
  threads: ThreadTable;
  processes: ProcessTable;
  samples: SampleTable;
  errors: ErrorTable;
}

/** Row count of every table; a chunk records these as its starting point. */
export interface TableSizes {
  strings: number;
  frames: number;
  stacks: number;
  threads: number;
  processes: number;
  samples: number;
  errors: number;
}

export function emptyCaptureInfo(): CaptureInfo {
  return { commandLine: '', rateHz: 0, startTimeUs: 0, durationUs: 0, lateSamples: 0 };
}

export function emptyProfile(capture: Partial<CaptureInfo> = {}): Profile {
  return {
    capture: { ...emptyCaptureInfo(), ...capture },
    strings: [],
    frames: { name: [], file: [], line: [], module: [] },
    stacks: { prefix: [], frame: [] },
    threads: { pid: [], tid: [], name: [] },
    processes: { pid: [], commandLine: [], pythonVersion: [] },
    samples: { stack: [], thread: [], timeUs: [], flags: [] },
    errors: { timeUs: [], message: [] },
  };
}

export function tableSizes(profile: Profile): TableSizes {
  return {
    strings: profile.strings.length,
    frames: profile.frames.name.length,
    stacks: profile.stacks.prefix.length,
    threads: profile.threads.pid.length,
    processes: profile.processes.pid.length,
    samples: profile.samples.stack.length,
    errors: profile.errors.timeUs.length,
  };
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
