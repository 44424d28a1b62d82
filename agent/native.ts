// Typed access to the native CPython reader (native/). The addon is loaded
// lazily so `periscope --help` works even where it has not been built.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PeriscopeError, asErrorCode } from '../shared/errors.ts';

export interface NativeFrame {
  name: string;
  filename: string;
  line: number;
}

export interface NativeThread {
  threadId: number;
  osThreadId: number;
  name: string | null;
  active: boolean;
  ownsGil: boolean;
  truncated: boolean;
  frames: NativeFrame[]; // innermost first
}

/** An asyncio task (3.14+); see DumpTask in shared/protocol.ts. */
export interface NativeTask {
  address: number;
  /** 0: the interpreter's list (the task's thread exited). */
  threadId: number;
  name: string | null;
  running: boolean;
  truncated: boolean;
  frames: NativeFrame[]; // innermost coroutine first
  awaitedBy: number[];
}

export interface NativeAsyncDump {
  threads: NativeThread[];
  /** null when the tasks cannot be read: tasksUnavailable says why. */
  tasks: NativeTask[] | null;
  tasksUnavailable: string | null;
  tasksTruncated: boolean;
}

export interface NativeTargetInfo {
  pid: number;
  version: string;
  major: number;
  minor: number;
  executable: string;
  binary: string;
  cmdline: string;
  locatedBy: 'symbols' | 'scan';
  /** A free-threaded (--disable-gil) build. */
  freeThreaded: boolean;
  /** False when no thread can ever hold a GIL (a free-threaded build running without one). */
  gilEnabled: boolean;
  /** How the target's memory is read: process_vm_readv, or /proc/PID/mem where that syscall is refused (or PERISCOPE_MEMORY_READER=procmem). */
  memoryReader: 'process_vm_readv' | '/proc/PID/mem';
}

export interface NativeTarget {
  info(): NativeTargetInfo;
  /** Threads and asyncio tasks from one snapshot (and one pause, with blocking). */
  dump(options: { blocking?: boolean; asyncio: true }): NativeAsyncDump;
  dump(options?: { blocking?: boolean; asyncio?: false }): NativeThread[];
}

interface NativeModule {
  Target: new (pid: number, options?: { ignoreSymbols?: boolean }) => NativeTarget;
}

let loaded: NativeModule | undefined;

/** Path of the built addon; PERISCOPE_NATIVE overrides it (the single binary extracts it). */
export function nativeAddonPath(): string {
  return process.env.PERISCOPE_NATIVE ?? join(import.meta.dirname, '..', 'native', 'build', 'Release', 'periscope_native.node');
}

export function loadNative(): NativeModule {
  if (loaded) return loaded;
  const path = nativeAddonPath();
  if (!existsSync(path)) {
    throw new PeriscopeError('NATIVE_MISSING', `the native reader is not built (${path} is missing); run \`npm install\``);
  }
  loaded = createRequire(import.meta.url)(path) as NativeModule;
  return loaded;
}

/** Attaches to a Python process; reader errors become PeriscopeErrors with the same code. */
export function attach(pid: number, options: { ignoreSymbols?: boolean } = {}): NativeTarget {
  const { Target } = loadNative();
  try {
    return new Target(pid, options);
  } catch (err) {
    throw asPeriscopeError(err);
  }
}

export function asPeriscopeError(err: unknown): unknown {
  if (err instanceof Error && typeof (err as { code?: unknown }).code === 'string' && !(err instanceof PeriscopeError)) {
    return new PeriscopeError(asErrorCode((err as Error & { code: string }).code, 'READ_FAILED'), err.message);
  }
  return err;
}
