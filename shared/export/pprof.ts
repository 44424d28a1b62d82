// pprof's profile.proto (perftools.profiles.Profile), gzipped, as `go tool pprof`,
// Pyroscope and Grafana read it. Sample types are samples/count and time in
// nanoseconds: `cpu` without idle samples (py-spy's default, on-CPU-ish), `wall`
// with them (--idle); period = 1e9 / rate ns. The samples of one thread with one
// (grouped) stack are one pprof Sample valued [count, count x period], its
// location ids leaf first, then the process/thread root frames that the flame
// graph and raw exporters put above a thread. Labels: thread_id and thread_name,
// and pid when the capture spans several processes (the names Pyroscope's Python
// agent uses). One Function per name and file, one Location per frame group (so
// --function / --nolineno merge them as elsewhere), one Mapping marked symbolized.
//
// The protobuf encoding is written here (varints, length-delimited fields and
// packed repeated scalars are all it takes); field numbers are profile.proto's.

import { gzipSync } from 'node:zlib';
import { PeriscopeError } from '../errors.ts';
import { NONE, type Profile, samplePeriodUs } from '../profile/model.ts';
import { groupFrames } from '../profile/frame-groups.ts';
import { groupStacks } from '../profile/grouped-stacks.ts';
import { processRoots, rootFrames, spansSeveralProcesses, threadName } from '../profile/root-frames.ts';
import { selectSamples } from '../profile/sample-filter.ts';
import type { ExportOptions } from './options.ts';

// profile.proto field numbers.
const PROFILE = {
  sampleType: 1,
  sample: 2,
  mapping: 3,
  location: 4,
  function: 5,
  stringTable: 6,
  timeNanos: 9,
  durationNanos: 10,
  periodType: 11,
  period: 12,
  comment: 13,
  defaultSampleType: 14,
} as const;
const VALUE_TYPE = { type: 1, unit: 2 } as const;
const SAMPLE = { locationId: 1, value: 2, label: 3 } as const;
const LABEL = { key: 1, str: 2 } as const;
const MAPPING = { id: 1, filename: 5, hasFunctions: 7, hasFilenames: 8, hasLineNumbers: 9 } as const;
const LOCATION = { id: 1, mappingId: 2, line: 4 } as const;
const LINE = { functionId: 1, line: 2 } as const;
// system_name stays unset: pprof reads a name equal to it as not yet demangled and
// strips `<...>` from it, which would leave `<module>` and `<lambda>` nameless.
const FUNCTION = { id: 1, name: 2, filename: 4 } as const;
const MAPPING_ID = 1;

const VARINT = 0;
const LENGTH_DELIMITED = 2;

const utf8 = new TextEncoder();

function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 0x80);
    size++;
  }
  return size;
}

/** A growing buffer of protobuf wire format. Integers are int64/uint64 on the wire. */
export class ProtoWriter {
  #buf = new Uint8Array(1 << 16);
  #len = 0;

  #reserve(extra: number): void {
    if (this.#len + extra <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#len + extra, this.#buf.length * 2));
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  #putVarint(at: number, value: number): number {
    const buf = this.#buf;
    while (value >= 0x80) {
      buf[at++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buf[at++] = value;
    return at;
  }

  /** A non-negative integer up to 2^53, or any int64 as a bigint (negatives in two's complement, 10 bytes). */
  varint(value: number | bigint): void {
    this.#reserve(10);
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) {
      this.#len = this.#putVarint(this.#len, value);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    while (v >= 0x80n) {
      this.#buf[this.#len++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.#buf[this.#len++] = Number(v);
  }

  tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  /** A scalar field, left out when 0 (proto3's default). */
  int(field: number, value: number | bigint): void {
    if (value === 0 || value === 0n) return;
    this.tag(field, VARINT);
    this.varint(value);
  }

  /** A string field; always written, since string_table entries (the first one is '') are repeated. */
  string(field: number, value: string): void {
    const bytes = utf8.encode(value);
    this.tag(field, LENGTH_DELIMITED);
    this.varint(bytes.length);
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /** A packed repeated scalar field; nothing when empty. */
  packed(field: number, values: readonly (number | bigint)[]): void {
    if (values.length === 0) return;
    this.message(field, () => {
      for (const v of values) this.varint(v);
    });
  }

  /** A length-delimited embedded message whose fields `body` writes. */
  message(field: number, body: () => void): void {
    this.tag(field, LENGTH_DELIMITED);
    const start = this.#len;
    body();
    const size = this.#len - start;
    const prefix = varintSize(size);
    this.#reserve(prefix);
    this.#buf.copyWithin(start + prefix, start, this.#len);
    this.#putVarint(start, size);
    this.#len += prefix;
  }

  finish(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

class StringTable {
  readonly strings: string[] = [''];
  readonly #ids = new Map<string, number>([['', 0]]);

  id(s: string): number {
    let id = this.#ids.get(s);
    if (id === undefined) {
      id = this.strings.push(s) - 1;
      this.#ids.set(s, id);
    }
    return id;
  }
}

interface PprofSample {
  /** Leaf first. */
  locations: number[];
  count: number;
  /** [key, value] string-table ids. */
  labels: readonly (readonly [number, number])[];
}

interface ThreadContext {
  /** Location ids of the root frames, innermost first. */
  roots: number[];
  labels: (readonly [number, number])[];
  /** Grouped stack → its sample. */
  samples: Map<number, PprofSample>;
}

/** Nanoseconds from microseconds, exact past 2^53 ns (epoch times are). */
function usToNs(us: number): bigint {
  return Number.isFinite(us) ? BigInt(Math.round(us)) * 1000n : 0n;
}

/** The sample type of the time value: on-CPU-ish without idle samples (py-spy's default), wall time with them. */
export function pprofTimeType(options: ExportOptions): 'cpu' | 'wall' {
  return options.idle ? 'wall' : 'cpu';
}

/** The uncompressed perftools.profiles.Profile message. */
export function pprofProto(profile: Profile, options: ExportOptions = {}): Uint8Array {
  const selected = selectSamples(profile, options);
  const groups = groupFrames(profile, options);
  const grouped = groupStacks(profile, groups);
  const withProcess = processRoots(profile, spansSeveralProcesses(profile, selected), options);
  const strings = new StringTable();

  // Functions by (name, file); locations by frame group (or root frame label).
  const functions: { name: number; file: number }[] = [];
  const functionIds = new Map<string, number>();
  const locations: { functionId: number; line: number }[] = [];
  const locationOfGroup = new Int32Array(groups.name.length);
  const locationOfRoot = new Map<string, number>();
  const functionId = (name: string, file: string): number => {
    const key = `${name}\0${file}`;
    let id = functionIds.get(key);
    if (id === undefined) {
      id = functions.push({ name: strings.id(name), file: strings.id(file) });
      functionIds.set(key, id);
    }
    return id;
  };
  const groupLocation = (group: number): number => {
    if (locationOfGroup[group] === 0) {
      const fn = functionId(groups.name[group], groups.file[group]);
      locationOfGroup[group] = locations.push({ functionId: fn, line: groups.line[group] ?? 0 });
    }
    return locationOfGroup[group];
  };
  const rootLocation = (label: string): number => {
    let id = locationOfRoot.get(label);
    if (id === undefined) {
      id = locations.push({ functionId: functionId(label, ''), line: 0 });
      locationOfRoot.set(label, id);
    }
    return id;
  };

  const contexts = new Map<number, ThreadContext>();
  const contextOf = (threadRow: number): ThreadContext => {
    let ctx = contexts.get(threadRow);
    if (!ctx) {
      const roots = rootFrames(profile, threadRow, withProcess, options)
        .map((r) => rootLocation(r.label))
        .reverse();
      const labels: (readonly [number, number])[] = [];
      if (withProcess) labels.push([strings.id('pid'), strings.id(String(profile.threads.pid[threadRow]))]);
      labels.push([strings.id('thread_id'), strings.id(String(profile.threads.tid[threadRow]))]);
      const name = threadName(profile, threadRow);
      if (name) labels.push([strings.id('thread_name'), strings.id(name)]);
      contexts.set(threadRow, (ctx = { roots, labels, samples: new Map() }));
    }
    return ctx;
  };

  // Leaf-first location ids of each grouped stack, shared by every thread.
  const paths = new Map<number, number[]>();
  const pathOf = (g: number): number[] => {
    let path = paths.get(g);
    if (!path) {
      path = [];
      for (let s = g; s !== NONE; s = grouped.prefix[s]) path.push(groupLocation(grouped.group[s]));
      paths.set(g, path);
    }
    return path;
  };

  const samples: PprofSample[] = [];
  for (const row of selected) {
    const ctx = contextOf(profile.samples.thread[row]);
    const g = grouped.ofStack[profile.samples.stack[row]];
    let sample = ctx.samples.get(g);
    if (!sample) {
      sample = { locations: ctx.roots.length > 0 ? [...pathOf(g), ...ctx.roots] : pathOf(g), count: 0, labels: ctx.labels };
      ctx.samples.set(g, sample);
      samples.push(sample);
    }
    sample.count++;
  }

  const timeType = pprofTimeType(options);
  const periodNs = Math.max(1, Math.round(samplePeriodUs(profile) * 1000));
  const samplesType = [strings.id('samples'), strings.id('count')] as const;
  const timeValueType = [strings.id(timeType), strings.id('nanoseconds')] as const;
  const comments = profile.capture.commandLine ? [strings.id(profile.capture.commandLine)] : [];
  const interpreter = strings.id(profile.capture.commandLine.split(' ').find(Boolean) ?? 'python');

  const w = new ProtoWriter();
  const valueType = (field: number, [type, unit]: readonly [number, number]): void =>
    w.message(field, () => {
      w.int(VALUE_TYPE.type, type);
      w.int(VALUE_TYPE.unit, unit);
    });
  valueType(PROFILE.sampleType, samplesType);
  valueType(PROFILE.sampleType, timeValueType);
  for (const sample of samples) {
    w.message(PROFILE.sample, () => {
      w.packed(SAMPLE.locationId, sample.locations);
      w.packed(SAMPLE.value, [sample.count, sample.count * periodNs]);
      for (const [key, str] of sample.labels) {
        w.message(SAMPLE.label, () => {
          w.int(LABEL.key, key);
          w.int(LABEL.str, str);
        });
      }
    });
  }
  // One mapping, the interpreter, marked symbolized so that pprof looks for no binary to symbolize with.
  w.message(PROFILE.mapping, () => {
    w.int(MAPPING.id, MAPPING_ID);
    w.int(MAPPING.filename, interpreter);
    w.int(MAPPING.hasFunctions, 1);
    w.int(MAPPING.hasFilenames, 1);
    w.int(MAPPING.hasLineNumbers, 1);
  });
  locations.forEach((location, i) => {
    w.message(PROFILE.location, () => {
      w.int(LOCATION.id, i + 1);
      w.int(LOCATION.mappingId, MAPPING_ID);
      w.message(LOCATION.line, () => {
        w.int(LINE.functionId, location.functionId);
        w.int(LINE.line, location.line);
      });
    });
  });
  functions.forEach((fn, i) => {
    w.message(PROFILE.function, () => {
      w.int(FUNCTION.id, i + 1);
      w.int(FUNCTION.name, fn.name);
      w.int(FUNCTION.filename, fn.file);
    });
  });
  for (const s of strings.strings) w.string(PROFILE.stringTable, s);
  w.int(PROFILE.timeNanos, usToNs(profile.capture.startTimeUs));
  w.int(PROFILE.durationNanos, usToNs(profile.capture.durationUs));
  valueType(PROFILE.periodType, timeValueType);
  w.int(PROFILE.period, periodNs);
  w.packed(PROFILE.comment, comments);
  w.int(PROFILE.defaultSampleType, timeValueType[0]);
  return w.finish();
}

/** Gzipped profile.proto, as pprof files are stored. Throws PeriscopeError EXPORT_TOO_LARGE past the runtime's buffer limits. */
export function exportPprof(profile: Profile, options: ExportOptions = {}): Uint8Array {
  try {
    const gz = gzipSync(pprofProto(profile, options));
    // A plain Uint8Array, not a Buffer: the same bytes wherever they are compared or posted.
    return new Uint8Array(gz.buffer, gz.byteOffset, gz.byteLength);
  } catch (error) {
    if (error instanceof RangeError) {
      throw new PeriscopeError('EXPORT_TOO_LARGE', 'pprof export is too large to build in memory', { cause: error });
    }
    throw error;
  }
}
