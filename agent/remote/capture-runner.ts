// Turns a running capture into the relay's chunk stream, and makes that
// stream survive disconnects.
//
// Every ~250 ms (sooner when a lot is pending) a CaptureStream cuts the rows
// the profile builder gained since the last cut into a chunk, gives it the
// next seq (0, 1, 2, … per capture), encodes it once and keeps the encoded
// frame until the relay acknowledges it (`ack {nextSeq}`: every seq below is
// stored). On a new connection the relay says, per capture, which seq it
// needs next (welcome.resume); the stream resends from there, in order. So a
// chunk, once cut, is delivered or the capture is reported broken -- never
// silently dropped.
//
// Memory is bounded by a ChunkBudget shared by all captures (64 MiB of
// encoded, unacknowledged chunks by default). When a cut would not fit, the
// capture keeps sampling into its profile builder and no chunk is cut until
// acknowledgements free space. If the rows waiting to be cut then grow past
// `maxPendingBytes` (4 MiB by default) the capture is stopped and ends with
// reason 'error' (code BUFFER_FULL); what it sampled up to then is still cut
// and delivered when space frees. A capture ends (capture_ended) only after
// its last rows are cut and every chunk has been sent on the current link.
import { encode, encodeChunk, MAX_CHUNK_BYTES, type CaptureSpec } from '../../shared/protocol.ts';
import type { CaptureStatsWire } from '../../shared/capture-states.ts';
import { type Profile, type ProfileChunk, type TableSizes } from '../../shared/profile/index.ts';
import type { EndReason } from '../capture.ts';
import { TABLE_NAMES, rowBytes } from '../../shared/profile/schema.ts';

export const DEFAULT_BUFFER_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_PENDING_BYTES = 4 * 1024 * 1024;
// Chunks are cut on the capture's 100 ms drain ticks, at the first tick at
// least this long after the previous cut: 150 ms gives a cut every second
// tick (~200 ms, however the timer drifts), which keeps sample-to-viewer p99
// well under 300 ms (bench/relay); 250 ms rounded up to 300 ms cuts.
export const DEFAULT_CHUNK_INTERVAL_MS = 150;
/** Without new rows, a chunk carrying only fresh stats goes out at most this often. */
export const STATS_ONLY_INTERVAL_MS = 1000;
/** Cut early once this much is pending, so chunks stay far below MAX_MESSAGE_BYTES. */
export const EAGER_CUT_BYTES = 1024 * 1024;

/** What a stream needs from a capture; agent/capture.ts's Capture fits. */
export interface ChunkSource {
  readonly builder: { readonly profile: Profile; takeChunk(): ProfileChunk; sizes(): TableSizes };
  readonly progress: { stats: CaptureStatsWire; lastError: { code: string; message: string } | null };
  readonly done: Promise<EndReason>;
  onProgress(listener: () => void): void;
  start(): void;
  stop(): Promise<EndReason>;
}

/** Bytes of encoded chunks held for the relay, across captures. */
export class ChunkBudget {
  readonly limitBytes: number;
  #used = 0;
  #listeners: (() => void)[] = [];

  constructor(limitBytes = DEFAULT_BUFFER_BYTES) {
    this.limitBytes = limitBytes;
  }

  get usedBytes(): number {
    return this.#used;
  }

  /** Would `bytes` more fit? An empty budget takes anything, so one big chunk cannot wedge it. */
  fits(bytes: number): boolean {
    return this.#used === 0 || this.#used + bytes <= this.limitBytes;
  }

  add(bytes: number): void {
    this.#used += bytes;
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
    if (bytes > 0) for (const l of this.#listeners) l();
  }

  onRelease(listener: () => void): void {
    this.#listeners.push(listener);
  }
}

interface HeldChunk {
  seq: number;
  frame: Uint8Array;
  samples: number;
}

export type StreamEndReason = EndReason;

export interface StreamEnd {
  reason: StreamEndReason;
  error?: { code: string; message: string };
  /** Chunks in total (last seq + 1). */
  chunks: number;
  samples: number;
}

export interface StreamOptions {
  captureId: string;
  spec: CaptureSpec;
  source: ChunkSource;
  budget: ChunkBudget;
  /** Called when the stream has something new to send (a chunk, its end). */
  onReady: () => void;
  /** Called once when the capture's last rows are cut (the end is known). */
  onEnded?: (end: StreamEnd) => void;
  chunkIntervalMs?: number;
  maxPendingBytes?: number;
  now?: () => number;
}

function utf8Max(s: string): number {
  return s.length * 3 + 5;
}

/** An upper bound of the encoded size of the rows appended since `from` (msgpackr typed arrays are raw bytes). */
export function pendingBytes(profile: Profile, from: TableSizes, now: TableSizes): number {
  let bytes = 1024 + utf8Max(profile.capture.commandLine);
  for (let i = from.strings; i < now.strings; i++) bytes += utf8Max(profile.strings[i]!);
  for (const t of TABLE_NAMES) bytes += (now[t] - from[t]) * rowBytes(t);
  return bytes;
}

function grew(a: TableSizes, b: TableSizes): boolean {
  return (Object.keys(a) as (keyof TableSizes)[]).some((k) => b[k] !== a[k]);
}

function sameStats(a: CaptureStatsWire | undefined, b: CaptureStatsWire): boolean {
  return a !== undefined && a.samples === b.samples && a.late === b.late && a.ticks === b.ticks && a.errors === b.errors;
}

export class CaptureStream {
  readonly captureId: string;
  readonly spec: CaptureSpec;
  readonly source: ChunkSource;
  #budget: ChunkBudget;
  #onReady: () => void;
  #onEnded?: (end: StreamEnd) => void;
  #intervalMs: number;
  #maxPending: number;
  #now: () => number;

  #held: HeldChunk[] = []; // unacknowledged, ascending seq; #held[0].seq === #acked
  #cut = 0; // chunks cut so far = next seq
  #acked = 0; // the relay stored every seq below
  #sendSeq = 0; // next seq to send on the current link
  #sizesAtCut: TableSizes;
  #lastCutAt: number;
  #lastStats: CaptureStatsWire | undefined;
  #samplesCut = 0;
  #sourceDone: EndReason | undefined;
  /** Set when we stopped the capture ourselves for an error of ours. */
  #failure: { code: string; message: string } | undefined;
  #end: StreamEnd | undefined;
  #endSent = false;
  #abandoned = false;
  #stopping = false;
  /** The customer stopped the agent (Ctrl-C): the end says so (capture_ended.byCustomer, bye+). */
  #byCustomer = false;

  constructor(options: StreamOptions) {
    this.captureId = options.captureId;
    this.spec = options.spec;
    this.source = options.source;
    this.#budget = options.budget;
    this.#onReady = options.onReady;
    this.#onEnded = options.onEnded;
    this.#intervalMs = options.chunkIntervalMs ?? DEFAULT_CHUNK_INTERVAL_MS;
    this.#maxPending = options.maxPendingBytes ?? DEFAULT_MAX_PENDING_BYTES;
    this.#now = options.now ?? Date.now;
    this.#sizesAtCut = this.source.builder.sizes();
    this.#lastCutAt = this.#now();
  }

  /** Starts the capture and cutting chunks as it progresses. */
  start(): void {
    this.source.onProgress(() => this.tick());
    void this.source.done.then(
      (reason) => {
        this.#sourceDone = reason;
        this.tick();
      },
      (err: unknown) => {
        this.#failure ??= { code: 'ERROR', message: String((err as Error)?.message ?? err) };
        this.#sourceDone = 'error';
        this.tick();
      },
    );
    this.source.start();
  }

  /** Asks the capture to stop; its end follows through the normal path. `byCustomer`: because the customer stopped the agent. */
  stop(byCustomer = false): void {
    if (this.#stopping || this.#sourceDone !== undefined) return;
    this.#stopping = true;
    this.#byCustomer = byCustomer;
    void this.source.stop();
  }

  get cutCount(): number {
    return this.#cut;
  }
  get ackedSeq(): number {
    return this.#acked;
  }
  get sendSeq(): number {
    return this.#sendSeq;
  }
  /** Encoded bytes held for the relay. */
  get heldBytes(): number {
    let n = 0;
    for (const c of this.#held) n += c.frame.byteLength;
    return n;
  }
  get heldChunks(): number {
    return this.#held.length;
  }
  get samplesCut(): number {
    return this.#samplesCut;
  }
  /** The capture's end, once its last rows are cut. */
  get end(): StreamEnd | undefined {
    return this.#end;
  }
  get running(): boolean {
    return this.#sourceDone === undefined;
  }
  /** Ended, its end sent, and everything acknowledged: nothing more to do. */
  get finished(): boolean {
    return this.#abandoned || (this.#end !== undefined && this.#endSent && this.#acked === this.#cut);
  }
  /** The relay will never take this stream again (it did not know it on resume). */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  /** Cuts a chunk if one is due and fits; notices the end. Safe to call any time. */
  tick(): void {
    if (this.#end || this.#abandoned) return;
    const profile = this.source.builder.profile;
    const sizes = this.source.builder.sizes();
    const hasRows = grew(this.#sizesAtCut, sizes);
    const stats = this.#stats();
    const statsChanged = !sameStats(this.#lastStats, stats);
    const now = this.#now();
    const sinceCut = now - this.#lastCutAt;
    const ending = this.#sourceDone !== undefined;
    if (hasRows || (statsChanged && (ending || sinceCut >= STATS_ONLY_INTERVAL_MS))) {
      const pending = pendingBytes(profile, this.#sizesAtCut, sizes);
      const due = ending || sinceCut >= this.#intervalMs || pending >= EAGER_CUT_BYTES;
      if (due) {
        if (this.#budget.fits(pending)) {
          if (!this.#cutChunk(stats)) return;
        } else if (!ending && pending > this.#maxPending && !this.#failure) {
          const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
          this.#failure = {
            code: 'BUFFER_FULL',
            message:
              `stopped by the agent: the relay has not acknowledged ${mib(this.#budget.usedBytes)} of chunks (the agent's buffer holds at most ` +
              `${mib(this.#budget.limitBytes)}) and ${mib(pending)} more samples were waiting; everything sampled up to the stop is kept and delivered`,
          };
          this.stop();
          return;
        } else {
          return; // blocked: wait for acknowledgements (ChunkBudget.onRelease ticks us)
        }
      }
    }
    if (ending && !grew(this.#sizesAtCut, this.source.builder.sizes())) this.#finish();
  }

  #stats(): CaptureStatsWire {
    const s = this.source.progress.stats;
    return { samples: s.samples, late: s.late, ticks: s.ticks, errors: s.errors };
  }

  /** Cuts everything pending into the next chunk; false if the capture had to end instead. */
  #cutChunk(stats: CaptureStatsWire): boolean {
    const chunk = this.source.builder.takeChunk();
    const samples = chunk.samples.stack.length;
    this.#sizesAtCut = this.source.builder.sizes();
    this.#lastCutAt = this.#now();
    this.#lastStats = stats;
    // The chunk travels as its own msgpack, the form the relay stores as is (protocol v2).
    const bytes = encodeChunk(chunk);
    if (bytes.byteLength > MAX_CHUNK_BYTES) {
      // Cannot be sent, and every later chunk continues from it: end here.
      this.#failure = {
        code: 'CHUNK_TOO_LARGE',
        message: `stopped by the agent: ${samples} samples made a chunk of ${bytes.byteLength} bytes, more than a chunk may take (${MAX_CHUNK_BYTES}); lower the rate`,
      };
      this.stop();
      this.#finish();
      return false;
    }
    const frame = encode({ type: 'chunk', captureId: this.captureId, seq: this.#cut, chunk: bytes, stats });
    this.#budget.add(frame.byteLength);
    this.#held.push({ seq: this.#cut, frame, samples });
    this.#cut++;
    this.#samplesCut += samples;
    this.#onReady();
    return true;
  }

  #finish(): void {
    if (this.#end) return;
    const reason: EndReason = this.#failure ? 'error' : (this.#sourceDone ?? 'stopped');
    let error = this.#failure;
    if (!error && reason === 'error') {
      const last = this.source.progress.lastError;
      error = last ? { code: last.code, message: last.message } : { code: 'ERROR', message: 'the sampler stopped with an error' };
    }
    this.#end = { reason, error, chunks: this.#cut, samples: this.#samplesCut };
    this.#onEnded?.(this.#end);
    this.#onReady();
  }

  /** For hello.captures: this stream is still running or holds data, and how many chunks it has cut. */
  helloEntry(): { captureId: string; nextSeq: number } {
    return { captureId: this.captureId, nextSeq: this.#cut };
  }

  /** The connection went away: nothing counts as sent any more. */
  linkLost(): void {
    this.#sendSeq = this.#acked;
    this.#endSent = false;
  }

  /**
   * The relay's answer to hello for this capture: the next seq it needs
   * (undefined: it does not know the capture). Returns a problem to report, if any.
   */
  resume(nextSeq: number | undefined): string | undefined {
    this.#endSent = false;
    if (nextSeq === undefined) {
      this.abandon();
      return `the relay no longer knows capture ${this.captureId}; it was stopped and its unsent data dropped`;
    }
    if (nextSeq < this.#acked) {
      // The relay lost chunks it had acknowledged; they are gone here.
      this.#failure ??= {
        code: 'CHUNKS_LOST',
        message: `the relay asked for capture ${this.captureId} from chunk ${nextSeq}, but it had acknowledged chunks up to ${this.#acked}, which the agent no longer holds`,
      };
      this.#sendSeq = this.#cut; // nothing in order can follow
      this.stop();
      if (this.#sourceDone !== undefined) this.#finish();
      this.#onReady();
      return this.#failure.message;
    }
    const problem = this.ack(nextSeq);
    this.#sendSeq = Math.max(this.#acked, Math.min(nextSeq, this.#cut));
    this.#onReady();
    return problem;
  }

  /** Every seq below nextSeq is stored by the relay: free those chunks. */
  ack(nextSeq: number): string | undefined {
    let problem: string | undefined;
    if (nextSeq > this.#cut) {
      problem = `the relay acknowledged chunk ${nextSeq - 1} of capture ${this.captureId}, which does not exist yet (${this.#cut} cut); ignored past ${this.#cut}`;
      nextSeq = this.#cut;
    }
    if (nextSeq <= this.#acked) return problem;
    let freed = 0;
    while (this.#held.length > 0 && this.#held[0]!.seq < nextSeq) freed += this.#held.shift()!.frame.byteLength;
    this.#acked = nextSeq;
    if (this.#sendSeq < nextSeq) this.#sendSeq = nextSeq;
    this.#budget.release(freed);
    return problem;
  }

  /** The next frame to send on the current link, in order: chunks, then the end. */
  nextFrame(): Uint8Array | undefined {
    if (this.#abandoned) return undefined;
    if (this.#sendSeq < this.#cut) {
      const held = this.#held[this.#sendSeq - this.#acked];
      if (held && held.seq === this.#sendSeq) {
        this.#sendSeq++;
        return held.frame;
      }
      this.#sendSeq = this.#cut; // unreachable unless CHUNKS_LOST: skip to the end
    }
    if (this.#end && !this.#endSent) {
      this.#endSent = true;
      return encode({
        type: 'capture_ended',
        captureId: this.captureId,
        reason: this.#end.reason,
        chunks: this.#end.chunks,
        ...(this.#end.error ? { error: this.#end.error } : {}),
        ...(this.#byCustomer && this.#end.reason === 'stopped' ? { byCustomer: true } : {}),
      });
    }
    return undefined;
  }

  /** Stops sampling and drops everything held (the relay does not want it). */
  abandon(): void {
    this.#abandoned = true;
    this.stop();
    let freed = 0;
    for (const c of this.#held) freed += c.frame.byteLength;
    this.#held = [];
    this.#budget.release(freed);
  }
}
