// One append-only file per capture holding its profile chunks in seq order.
//
// Record layout: u32 BE payload length, u32 BE CRC-32 of the payload, payload
// (the msgpack-encoded ProfileChunk). Records are only ever appended, so a
// crash can tear at most the last one; opening a file keeps the longest prefix
// of whole records whose checksums match and cuts a torn tail off. A bad record
// with more data after it is no torn write but damage: it is reported
// (`damage`) and never cut off, and only the records before it are readable.
// The record index (seq) is the position in the file, so "next seq" is the record count.
import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { PeriscopeError } from '../../shared/errors.ts';
// One limit for what is accepted, written and read back: the writer refuses
// what the reader would reject, so nothing is stored that cannot be read.
import { MAX_STORED_CHUNK_BYTES } from '../captures/chunk-codec.ts';
import { FILE_MODE } from './data-dir.ts';
import { relayLog } from '../log.ts';

const HEADER_BYTES = 8;
const READER_CACHE_SIZE = 64;

export const CHUNK_TOO_LARGE = 'CHUNK_TOO_LARGE' as const;
export const CAPTURE_DAMAGED = 'CAPTURE_DAMAGED' as const;

/** Where a chunk file stops being readable although more data follows. */
export interface ChunkDamage {
  /** Index of the first unreadable record: records before it are intact. */
  record: number;
  /** Byte offset of that record's header. */
  offset: number;
  fileBytes: number;
  /** What is wrong with the record, in words. */
  problem: string;
}

export class ChunkLog {
  readonly path: string;
  #fd: number;
  #writable: boolean;
  /** Byte offset of each record's header; index = seq. */
  #offsets: number[] = [];
  #lengths: number[] = [];
  #size = 0;
  #dirty = false;
  #damage: ChunkDamage | undefined;

  constructor(path: string, writable: boolean) {
    this.path = path;
    this.#writable = writable;
    this.#fd = openSync(path, writable ? (existsSync(path) ? 'r+' : 'w+') : 'r', FILE_MODE);
    try {
      this.#scan();
    } catch (err) {
      closeSync(this.#fd);
      throw err;
    }
  }

  /** Indexes whole records. A torn tail is cut off (writers) or ignored (readers); damage is recorded and left alone. */
  #scan(): void {
    const fileSize = fstatSync(this.#fd).size;
    const header = Buffer.alloc(HEADER_BYTES);
    let pos = 0;
    let problem: string | undefined;
    while (pos + HEADER_BYTES <= fileSize) {
      readSync(this.#fd, header, 0, HEADER_BYTES, pos);
      const length = header.readUInt32BE(0);
      const checksum = header.readUInt32BE(4);
      if (length === 0 || length > MAX_STORED_CHUNK_BYTES) {
        problem = `its header gives a length of ${length} bytes (a stored chunk has 1 to ${MAX_STORED_CHUNK_BYTES})`;
        break;
      }
      const end = pos + HEADER_BYTES + length;
      if (end > fileSize) break; // cut short: the last append was torn
      const payload = Buffer.alloc(length);
      readSync(this.#fd, payload, 0, length, pos + HEADER_BYTES);
      if (crc32(payload) !== checksum) {
        // The last record can be a torn write whose length reached the disk but not all of its data.
        if (end < fileSize) problem = 'its checksum does not match its contents';
        break;
      }
      this.#offsets.push(pos);
      this.#lengths.push(length);
      pos = end;
    }
    this.#size = pos;
    if (pos === fileSize) return;
    // After a crash a file system may also leave zeros where the last data never arrived.
    if (problem !== undefined && !this.#zerosFrom(pos, fileSize)) {
      this.#damage = { record: this.#offsets.length, offset: pos, fileBytes: fileSize, problem };
      return;
    }
    if (this.#writable) {
      ftruncateSync(this.#fd, pos);
      fsyncSync(this.#fd);
    }
  }

  #zerosFrom(from: number, to: number): boolean {
    const block = Buffer.alloc(64 * 1024);
    for (let pos = from; pos < to; pos += block.length) {
      const n = readSync(this.#fd, block, 0, Math.min(block.length, to - pos), pos);
      for (let i = 0; i < n; i++) if (block[i] !== 0) return false;
    }
    return true;
  }

  get count(): number {
    return this.#offsets.length;
  }

  get bytes(): number {
    return this.#size;
  }

  /** Set when a record before the end of the file is unreadable: only the first `count` records can be read. */
  get damage(): ChunkDamage | undefined {
    return this.#damage;
  }

  /**
   * Appends one record. Refuses (PeriscopeError CHUNK_TOO_LARGE) a payload the
   * reader would not accept. On a write error (ENOSPC, …) the partial record is
   * cut off again and the error rethrown: the file stays as it was.
   */
  append(payload: Uint8Array): void {
    if (!this.#writable) throw new Error(`chunk file ${this.path} is open read-only`);
    if (this.#damage) throw new PeriscopeError(CAPTURE_DAMAGED, `chunk file ${this.path} is damaged at byte ${this.#damage.offset}; nothing more is appended to it`);
    if (payload.byteLength === 0 || payload.byteLength > MAX_STORED_CHUNK_BYTES) {
      throw new PeriscopeError(CHUNK_TOO_LARGE, `a chunk of ${payload.byteLength} bytes as stored is over the relay's limit of ${MAX_STORED_CHUNK_BYTES} bytes per chunk`);
    }
    const record = Buffer.allocUnsafe(HEADER_BYTES + payload.byteLength);
    record.writeUInt32BE(payload.byteLength, 0);
    record.writeUInt32BE(crc32(payload), 4);
    record.set(payload, HEADER_BYTES);
    // One write per record keeps the window for a torn record as small as the OS allows.
    let written = 0;
    try {
      while (written < record.length) written += writeSync(this.#fd, record, written, record.length - written, this.#size + written);
    } catch (err) {
      if (written > 0) {
        try {
          ftruncateSync(this.#fd, this.#size);
        } catch {
          // Then the next open finds a torn tail and cuts it: the same outcome, later.
        }
      }
      throw err;
    }
    this.#offsets.push(this.#size);
    this.#lengths.push(payload.byteLength);
    this.#size += record.length;
    this.#dirty = true;
  }

  read(seq: number): Buffer {
    const offset = this.#offsets[seq];
    if (offset === undefined) throw new RangeError(`chunk ${seq} is not stored (${this.count} stored)`);
    const payload = Buffer.allocUnsafe(this.#lengths[seq]);
    readSync(this.#fd, payload, 0, payload.length, offset + HEADER_BYTES);
    return payload;
  }

  sync(): void {
    if (this.#dirty) {
      fsyncSync(this.#fd);
      this.#dirty = false;
    }
  }

  /** Syncs and closes; the descriptor is released even when the sync fails (that is reported, not thrown). */
  close(): void {
    if (this.#fd < 0) return;
    try {
      this.sync();
    } catch (err) {
      relayLog().error(`could not sync ${this.path} while closing it: ${(err as Error).message}`);
    } finally {
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }
}

export class ChunkFiles {
  readonly dir: string;
  #writers = new Map<string, ChunkLog>();
  /** Read-only logs of finished captures, least recently used first. */
  #readers = new Map<string, ChunkLog>();

  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(captureId: string): string {
    // Capture ids are generated by the relay ([A-Za-z0-9_-]), never taken from input.
    return join(this.dir, `${captureId}.chunks`);
  }

  /** The log of a capture still receiving chunks; opened (and repaired) on first use. */
  writer(captureId: string): ChunkLog {
    let log = this.#writers.get(captureId);
    if (!log) {
      this.#dropReader(captureId);
      log = new ChunkLog(this.pathOf(captureId), true);
      this.#writers.set(captureId, log);
    }
    return log;
  }

  /** A log to read from, or undefined when nothing was ever stored for the capture. */
  reader(captureId: string): ChunkLog | undefined {
    const writer = this.#writers.get(captureId);
    if (writer) return writer;
    let log = this.#readers.get(captureId);
    if (log) {
      this.#readers.delete(captureId);
      this.#readers.set(captureId, log);
      return log;
    }
    const path = this.pathOf(captureId);
    if (!existsSync(path)) return undefined;
    log = new ChunkLog(path, false);
    this.#readers.set(captureId, log);
    if (this.#readers.size > READER_CACHE_SIZE) {
      const [oldest] = this.#readers.keys();
      this.#dropReader(oldest);
    }
    return log;
  }

  /** fsyncs and closes the capture's writer: its chunks are final. */
  finish(captureId: string): void {
    const log = this.#writers.get(captureId);
    if (!log) return;
    log.close();
    this.#writers.delete(captureId);
  }

  closeAll(): void {
    for (const id of [...this.#writers.keys()]) this.finish(id);
    for (const id of [...this.#readers.keys()]) this.#dropReader(id);
  }

  #dropReader(captureId: string): void {
    const log = this.#readers.get(captureId);
    if (!log) return;
    log.close();
    this.#readers.delete(captureId);
  }
}
