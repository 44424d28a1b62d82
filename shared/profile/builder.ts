// Builds a Profile sample by sample, interning strings, frames, stacks and threads
// so that repeated stacks (the common case in sampling) cost one map lookup per frame
// and no new rows. takeChunk() hands out what was appended since the last call.

import { PeriscopeError } from '../errors.ts';
import {
  type CaptureInfo,
  NONE,
  type Profile,
  SampleFlag,
  type TableSizes,
  emptyProfile,
  tableSizes,
} from './model.ts';
import type { ProfileChunk } from './chunk.ts';
import { type ChunkTables, TABLE_NAMES, type TableName, TYPED_ARRAYS, columnsOf } from './schema.ts';

export interface FrameInput {
  name: string;
  file: string;
  /** Line being executed; 0 when unknown. */
  line: number;
  module?: string;
}

export interface SampleInput {
  /** Row from ProfileBuilder.thread(). */
  thread: number;
  /**
   * Innermost frame first, the way a sampler walks `f_back` from the running frame
   * (and the order py-spy's stack traces use). Empty when the thread had no Python frames.
   */
  framesLeafFirst: readonly FrameInput[];
  /** Microseconds since capture start. */
  timeUs: number;
  idle?: boolean;
  gil?: boolean;
}

export interface ProcessInput {
  commandLine: string;
  pythonVersion?: string;
}

function badArgument(message: string): never {
  throw new PeriscopeError('BAD_ARGUMENT', message);
}

function isInt32(n: number): boolean {
  return Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31;
}

export interface BuilderOptions {
  /**
   * false: samples and errors are dropped from `profile` once a chunk has
   * carried them, so a streaming agent's memory stays bounded by the distinct
   * stacks, not by the capture's length. `profile` then holds only the rows
   * not yet chunked; `sizes()` still counts every row ever added.
   */
  retainSamples?: boolean;
}

const STACK_KEY_FRAMES = 2 ** 26;
const STACK_KEY_STACKS = 2 ** 27;

export class ProfileBuilder {
  /** The profile as built so far. Read it freely; change it only through the builder. */
  readonly profile: Profile;
  #retainSamples: boolean;
  #droppedSamples = 0;
  #droppedErrors = 0;
  #strings = new Map<string, number>();
  #frames = new Map<string, number>();
  // (prefix stack, frame) -> stack row, keyed by one number: a sampler adds
  // tens of frames per sample, and string keys made most of its garbage.
  #stacks = new Map<number, number>();
  #threads = new Map<string, number>();
  #processes = new Map<number, number>();
  #chunkedUpTo: TableSizes;

  constructor(capture: Partial<CaptureInfo> = {}, options: BuilderOptions = {}) {
    this.profile = emptyProfile(capture);
    this.#retainSamples = options.retainSamples ?? true;
    this.#chunkedUpTo = tableSizes(this.profile);
  }

  /** Row counts of every table, counting rows already dropped after chunking. */
  sizes(): TableSizes {
    const s = tableSizes(this.profile);
    s.samples += this.#droppedSamples;
    s.errors += this.#droppedErrors;
    return s;
  }

  intern(s: string): number {
    let id = this.#strings.get(s);
    if (id === undefined) {
      id = this.profile.strings.push(s) - 1;
      this.#strings.set(s, id);
    }
    return id;
  }

  internFrame(frame: FrameInput): number {
    if (!Number.isInteger(frame.line) || frame.line < 0 || frame.line > 2 ** 31 - 1) {
      badArgument(`frame line must be a non-negative integer, got ${frame.line}`);
    }
    const name = this.intern(frame.name);
    const file = this.intern(frame.file);
    const module = frame.module === undefined ? NONE : this.intern(frame.module);
    const key = `${name},${file},${frame.line},${module}`;
    let id = this.#frames.get(key);
    if (id === undefined) {
      const frames = this.profile.frames;
      id = frames.name.push(name) - 1;
      frames.file.push(file);
      frames.line.push(frame.line);
      frames.module.push(module);
      this.#frames.set(key, id);
    }
    return id;
  }

  /** Returns the leaf stack row for frames given innermost first, or NONE for no frames. */
  internStack(framesLeafFirst: readonly FrameInput[]): number {
    const rows = framesLeafFirst.map((f) => this.internFrame(f));
    return this.internStackRows(rows, rows.length);
  }

  /** Like internStack, for frame rows (from internFrame) given innermost first: the first `n` of `rowsLeafFirst`. */
  internStackRows(rowsLeafFirst: ArrayLike<number>, n: number): number {
    let stack = NONE;
    const frames = this.profile.frames.name.length;
    for (let i = n - 1; i >= 0; i--) {
      const frame = rowsLeafFirst[i];
      if (!(Number.isInteger(frame) && frame >= 0 && frame < frames)) badArgument(`unknown frame row ${frame}`);
      // Exact while rows stay below 2^26 frames and 2^27 stacks (2^53 in all).
      const key = (stack + 1) * STACK_KEY_FRAMES + frame;
      if (frame >= STACK_KEY_FRAMES || stack + 1 >= STACK_KEY_STACKS) badArgument('profile too large: more than 2^26 frames or 2^27 stacks');
      let id = this.#stacks.get(key);
      if (id === undefined) {
        id = this.profile.stacks.prefix.push(stack) - 1;
        this.profile.stacks.frame.push(frame);
        this.#stacks.set(key, id);
      }
      stack = id;
    }
    return stack;
  }

  /** Row for (pid, tid), added on first sight; the name given then is kept, as tables are append-only. */
  thread(pid: number, tid: number, name?: string): number {
    if (!isInt32(pid) || !Number.isFinite(tid) || tid < 0) badArgument(`bad thread id ${pid}/${tid}`);
    const key = `${pid}:${tid}`;
    let id = this.#threads.get(key);
    if (id === undefined) {
      const threads = this.profile.threads;
      id = threads.pid.push(pid) - 1;
      threads.tid.push(tid);
      threads.name.push(name === undefined ? NONE : this.intern(name));
      this.#threads.set(key, id);
    }
    return id;
  }

  /** Records a process's metadata once; later calls for the same pid return the existing row. */
  process(pid: number, info: ProcessInput): number {
    if (!isInt32(pid)) badArgument(`bad pid ${pid}`);
    let id = this.#processes.get(pid);
    if (id === undefined) {
      const processes = this.profile.processes;
      id = processes.pid.push(pid) - 1;
      processes.commandLine.push(this.intern(info.commandLine));
      processes.pythonVersion.push(info.pythonVersion === undefined ? NONE : this.intern(info.pythonVersion));
      this.#processes.set(pid, id);
    }
    return id;
  }

  /** Appends one sample; returns its row. */
  addSample(sample: SampleInput): number {
    return this.addSampleOfStack(sample.thread, this.internStack(sample.framesLeafFirst), sample.timeUs, sample);
  }

  /** Like addSample for a stack already interned with internStack (saves re-interning an unchanged stack). */
  addSampleOfStack(thread: number, stack: number, timeUs: number, flags: { idle?: boolean; gil?: boolean } = {}): number {
    const samples = this.profile.samples;
    if (!(thread >= 0 && thread < this.profile.threads.pid.length && Number.isInteger(thread))) {
      badArgument(`unknown thread row ${thread}`);
    }
    if (!(stack === NONE || (Number.isInteger(stack) && stack >= 0 && stack < this.profile.stacks.prefix.length))) {
      badArgument(`unknown stack row ${stack}`);
    }
    if (!Number.isFinite(timeUs)) badArgument(`sample time must be finite, got ${timeUs}`);
    const id = samples.stack.push(stack) - 1 + this.#droppedSamples;
    samples.thread.push(thread);
    samples.timeUs.push(timeUs);
    samples.flags.push((flags.idle ? SampleFlag.Idle : 0) | (flags.gil ? SampleFlag.Gil : 0));
    return id;
  }

  addError(message: string, timeUs: number): void {
    if (!Number.isFinite(timeUs)) badArgument(`error time must be finite, got ${timeUs}`);
    this.profile.errors.timeUs.push(timeUs);
    this.profile.errors.message.push(this.intern(message));
  }

  updateCapture(changes: Partial<CaptureInfo>): void {
    const next = { ...this.profile.capture, ...changes };
    for (const key of ['rateHz', 'startTimeUs', 'durationUs', 'lateSamples'] as const) {
      if (!Number.isFinite(next[key])) badArgument(`capture ${key} must be finite`);
    }
    if (next.rateHz < 0 || next.durationUs < 0 || !Number.isSafeInteger(next.lateSamples) || next.lateSamples < 0) {
      badArgument('capture rate, duration and late samples must not be negative');
    }
    this.profile.capture = next;
  }

  /** Rows appended since the previous call (or since construction), ready to serialize. */
  takeChunk(): ProfileChunk {
    const p = this.profile;
    const from = this.#chunkedUpTo;
    // Rows of samples and errors already sent may have been dropped from memory.
    const dropped: Partial<Record<TableName, number>> = { samples: this.#droppedSamples, errors: this.#droppedErrors };
    const tables = Object.fromEntries(
      TABLE_NAMES.map((t) => {
        const start = from[t] - (dropped[t] ?? 0);
        const columns = p[t] as Record<string, number[]>;
        return [t, Object.fromEntries(columnsOf(t).map(([c, rule]) => [c, TYPED_ARRAYS[rule.array].from(columns[c].slice(start))]))];
      }),
    ) as ChunkTables;
    const chunk: ProfileChunk = { base: { ...from }, capture: { ...p.capture }, strings: p.strings.slice(from.strings), ...tables };
    this.#chunkedUpTo = this.sizes();
    if (!this.#retainSamples) {
      this.#droppedSamples += p.samples.stack.length;
      this.#droppedErrors += p.errors.timeUs.length;
      for (const column of Object.values(p.samples)) column.length = 0;
      for (const column of Object.values(p.errors)) column.length = 0;
    }
    return chunk;
  }
}
