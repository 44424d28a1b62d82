// A capture's chunks as rows of capture_chunks (capture_id, seq, payload), so
// every relay on the database reads what any of them stored. Rows are only
// ever inserted; the primary key (capture_id, seq) makes a second writer of
// the same seq fail instead of overwriting. A row is whole or absent, so
// nothing is ever torn or damaged the way a file can be: `damage` is always
// undefined.
import { PeriscopeError } from '../../../shared/errors.ts';
import { MAX_STORED_CHUNK_BYTES } from '../../captures/chunk-codec.ts';
import { CHUNK_TOO_LARGE } from '../chunk-files.ts';
import type { ChunkStore, ChunkWriter, RenderSource } from '../contract.ts';
import { FOREIGN_KEY_VIOLATION, UNIQUE_VIOLATION, sqlState, type Db } from './connection.ts';

const TABLE = 'capture_chunks';

function describe(captureId: string): string {
  return `the rows of capture ${captureId} in PostgreSQL table ${TABLE}`;
}

async function stored(db: Db, captureId: string): Promise<{ count: number; bytes: number }> {
  const row = await db.one<{ count: number; bytes: number }>(`SELECT count(*) AS count, coalesce(sum(octet_length(payload)), 0) AS bytes FROM ${TABLE} WHERE capture_id = $1`, [
    captureId,
  ]);
  return row!;
}

async function readChunk(db: Db, captureId: string, seq: number): Promise<Buffer> {
  const row = await db.one<{ payload: Buffer }>(`SELECT payload FROM ${TABLE} WHERE capture_id = $1 AND seq = $2`, [captureId, seq]);
  if (!row) throw new RangeError(`chunk ${seq} of capture ${captureId} is not stored (${describe(captureId)} have no seq ${seq})`);
  return row.payload;
}

class PgChunkWriter implements ChunkWriter {
  readonly damage = undefined;
  #db: Db;
  #captureId: string;
  #count: number;
  #bytes: number;

  constructor(db: Db, captureId: string, count: number, bytes: number) {
    this.#db = db;
    this.#captureId = captureId;
    this.#count = count;
    this.#bytes = bytes;
  }

  get count(): number {
    return this.#count;
  }

  get bytes(): number {
    return this.#bytes;
  }

  async append(payload: Uint8Array): Promise<void> {
    if (payload.byteLength === 0 || payload.byteLength > MAX_STORED_CHUNK_BYTES) {
      throw new PeriscopeError(CHUNK_TOO_LARGE, `a chunk of ${payload.byteLength} bytes as stored is over the relay's limit of ${MAX_STORED_CHUNK_BYTES} bytes per chunk`);
    }
    const seq = this.#count;
    // pg sends a Buffer as bytea; a plain Uint8Array view is wrapped without copying.
    const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    try {
      await this.#db.run(`INSERT INTO ${TABLE} (capture_id, seq, payload) VALUES ($1, $2, $3)`, [this.#captureId, seq, bytes]);
    } catch (err) {
      const state = sqlState(err);
      if (state === UNIQUE_VIOLATION) {
        // Another writer (another relay) stored this seq first: take up what is stored now, and say so.
        const now = await stored(this.#db, this.#captureId).catch(() => undefined);
        if (now) {
          this.#count = now.count;
          this.#bytes = now.bytes;
        }
        throw new PeriscopeError(
          'CHUNK_OUT_OF_SEQUENCE',
          `chunk ${seq} of capture ${this.#captureId} is already stored (${describe(this.#captureId)}): another writer, likely another relay, appended to the same capture; ` +
            `only one relay may receive a capture's chunks, so check that each agent is connected to one relay at a time`,
          { cause: err },
        );
      }
      if (state === FOREIGN_KEY_VIOLATION) {
        throw new PeriscopeError('UNKNOWN_CAPTURE', `capture ${this.#captureId} is not recorded in the database, so its chunks cannot be stored; chunks are only stored for a capture the relay started`, {
          cause: err,
        });
      }
      throw err;
    }
    this.#count = seq + 1;
    this.#bytes += bytes.byteLength;
  }

  read(seq: number): Promise<Buffer> {
    return readChunk(this.#db, this.#captureId, seq);
  }
}

export class PgChunks implements ChunkStore {
  #db: Db;
  /** Open writers by capture id (promises, so two callers at once share one); only the pool-wide store keeps them. */
  #writers: Map<string, Promise<ChunkWriter>> | undefined;

  /** `keepWriters`: false for a transaction's store, whose connection is gone once it ends. */
  constructor(db: Db, keepWriters: boolean) {
    this.#db = db;
    this.#writers = keepWriters ? new Map() : undefined;
  }

  writer(captureId: string): Promise<ChunkWriter> {
    const kept = this.#writers?.get(captureId);
    if (kept) return kept;
    const opened = stored(this.#db, captureId).then(({ count, bytes }) => new PgChunkWriter(this.#db, captureId, count, bytes));
    if (this.#writers) {
      const writers = this.#writers;
      writers.set(captureId, opened);
      // A writer that failed to open is not kept: the next call tries again.
      opened.catch(() => {
        if (writers.get(captureId) === opened) writers.delete(captureId);
      });
    }
    return opened;
  }

  async readable(captureId: string): Promise<{ count: number; damage: undefined } | undefined> {
    const { count } = await stored(this.#db, captureId);
    return count === 0 ? undefined : { count, damage: undefined };
  }

  read(captureId: string, seq: number): Promise<Buffer> {
    return readChunk(this.#db, captureId, seq);
  }

  async renderSource(captureId: string, count: number): Promise<RenderSource> {
    const rows = await this.#db.rows<{ payload: Buffer }>(`SELECT payload FROM ${TABLE} WHERE capture_id = $1 AND seq < $2 ORDER BY seq`, [captureId, count]);
    return { payloads: rows.map((r) => r.payload) };
  }

  /** Each row is durable once its INSERT returns: there is nothing to flush, only the writer to forget. */
  async finish(captureId: string): Promise<void> {
    this.#writers?.delete(captureId);
  }

  describe(captureId: string): string {
    return describe(captureId);
  }

  async closeAll(): Promise<void> {
    this.#writers?.clear();
  }
}
