// A capture as the browser sees it: a Profile rebuilt from the relay's chunk
// stream (stored snapshot from seq 0, then live), plus the capture's status.
//
// Chunks are applied as they arrive (applyChunk validates each one before it
// touches the profile); views pull from `profile` on their own schedule
// (requestAnimationFrame / 1 s ticks), so a burst of chunks costs one redraw.
//
// Sequence handling: a chunk below the next expected seq is a repeat (after a
// reconnect the relay replays from 0) and is skipped; a gap, an out-of-sequence
// chunk or a capture_reset throws the profile away and re-watches from seq 0.

import type { DumpTasks, DumpThread, RelayToUi } from '../../shared/protocol.ts';
import { isActiveStatus, zeroStats, type CaptureStatsWire, type CaptureStatus } from '../../shared/capture-states.ts';
import { type Profile, emptyProfile } from '../../shared/profile/model.ts';
import { applyChunk } from '../../shared/profile/chunk.ts';
import type { UiSocket } from './socket.ts';

export interface StreamEvents {
  /** New rows were appended to `profile`. */
  data?: () => void;
  /** `profile` was replaced by a new, empty one: rebuild every derived model. */
  reset?: () => void;
  status?: () => void;
  dump?: (threads: DumpThread[], asyncio?: DumpTasks) => void;
  error?: (code: string, message: string) => void;
}

export class CaptureStream {
  readonly captureId: string;
  profile: Profile = emptyProfile();
  status: CaptureStatus = 'starting';
  stats: CaptureStatsWire = zeroStats();
  error: { code: string; message: string } | undefined;
  /** Local time (performance.now()) at which each applied chunk arrived, for latency figures. */
  lastChunkAt = 0;
  chunksApplied = 0;
  /** Chunks the relay had stored at its last capture_state. */
  chunksStored = 0;
  #nextSeq = 0;
  #waitingForZero = false;
  #socket: UiSocket;
  #events: StreamEvents;
  #off: (() => void)[] = [];

  constructor(socket: UiSocket, captureId: string, events: StreamEvents) {
    this.captureId = captureId;
    this.#socket = socket;
    this.#events = events;
    this.#off.push(socket.onMessage((m) => this.#onMessage(m)));
    this.#off.push(socket.watchCapture(captureId));
  }

  get done(): boolean {
    return !isActiveStatus(this.status);
  }

  /** Ended, and every stored chunk is in `profile`: nothing more will change it. */
  get complete(): boolean {
    return this.done && this.#nextSeq >= this.chunksStored;
  }

  close(): void {
    for (const off of this.#off.splice(0)) off();
  }

  #reset(rewatch: boolean): void {
    this.profile = emptyProfile();
    this.#nextSeq = 0;
    this.chunksApplied = 0;
    this.#waitingForZero = true;
    this.#events.reset?.();
    if (rewatch) this.#socket.rewatch(this.captureId);
  }

  #onMessage(m: RelayToUi): void {
    if (m.type === 'error' || !('captureId' in m) || m.captureId !== this.captureId) return;
    switch (m.type) {
      case 'capture_state':
        this.status = m.status;
        this.stats = m.stats;
        this.chunksStored = m.chunks;
        this.error = m.error;
        this.#events.status?.();
        if (m.error) this.#events.error?.(m.error.code, m.error.message);
        return;
      case 'capture_reset':
        this.#reset(true);
        return;
      case 'dump_result':
        this.#events.dump?.(m.threads, m.asyncio);
        return;
      case 'capture_chunk': {
        if (m.seq === 0 && this.#waitingForZero) {
          this.#waitingForZero = false;
        }
        if (this.#waitingForZero) return;
        if (m.seq < this.#nextSeq) return; // a repeat of what we have
        if (m.seq > this.#nextSeq) {
          this.#reset(true); // a gap: rebuild from the start
          return;
        }
        try {
          applyChunk(this.profile, m.chunk);
        } catch (err) {
          const e = err as { code?: string; message?: string };
          if (e.code === 'CHUNK_OUT_OF_SEQUENCE' && m.seq !== 0) {
            this.#reset(true);
            return;
          }
          this.#events.error?.(e.code ?? 'INVALID_CHUNK', `The relay sent a capture chunk this page cannot use: ${e.message ?? String(err)}`);
          return;
        }
        this.#nextSeq = m.seq + 1;
        this.chunksApplied++;
        this.lastChunkAt = performance.now();
        this.#events.data?.();
        return;
      }
    }
  }
}
