// Chunk files on a real file system: a torn tail (crash mid-append) is cut off,
// but a bad record with data after it is damage, reported and never cut; and
// the writer refuses a chunk the reader would not read back.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPeriscopeError } from '../../shared/errors.ts';
import { MAX_STORED_CHUNK_BYTES } from '../../relay/captures/chunk-codec.ts';
import { ChunkLog } from '../../relay/store/chunk-files.ts';

const dir = mkdtempSync(join(tmpdir(), 'periscope-chunk-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

/** A file of `count` records of 100 bytes each (payload byte = record index); returns its path. */
function fileWith(count: number): string {
  const path = join(dir, `${n++}.chunks`);
  const log = new ChunkLog(path, true);
  for (let i = 0; i < count; i++) log.append(Buffer.alloc(100, i + 1));
  log.close();
  return path;
}

const RECORD = 8 + 100;

function flip(path: string, offset: number): void {
  const bytes = readFileSync(path);
  bytes[offset] ^= 0x40;
  writeFileSync(path, bytes);
}

describe('opening a chunk file', () => {
  test('a torn last record (cut short by a crash) is cut off by a writer; nothing is called damage', () => {
    const path = fileWith(3);
    const header = Buffer.alloc(8);
    header.writeUInt32BE(100, 0);
    appendFileSync(path, Buffer.concat([header, Buffer.alloc(10, 7)]));
    const reader = new ChunkLog(path, false);
    assert.equal(reader.count, 3);
    assert.equal(reader.damage, undefined);
    reader.close();
    const writer = new ChunkLog(path, true);
    assert.equal(writer.count, 3);
    writer.close();
    assert.equal(statSync(path).size, 3 * RECORD, 'the torn record was cut off');
  });

  test('zeros after the last record (data that never reached the disk) are a torn tail too', () => {
    const path = fileWith(2);
    appendFileSync(path, Buffer.alloc(300));
    const writer = new ChunkLog(path, true);
    assert.equal(writer.count, 2);
    assert.equal(writer.damage, undefined);
    writer.close();
    assert.equal(statSync(path).size, 2 * RECORD);
  });

  test('a flipped byte in a middle record is damage: reported with its place, the records before it read, nothing is cut off', () => {
    const path = fileWith(5);
    flip(path, 2 * RECORD + 8 + 50);
    const size = statSync(path).size;
    const reader = new ChunkLog(path, false);
    assert.equal(reader.count, 2, 'records 0 and 1 read back');
    assert.deepEqual(reader.read(1), Buffer.alloc(100, 2));
    assert.deepEqual(reader.damage, { record: 2, offset: 2 * RECORD, fileBytes: size, problem: 'its checksum does not match its contents' });
    reader.close();
    // A writer (a capture resumed after a restart) must not cut the damaged part away, nor append after it.
    const writer = new ChunkLog(path, true);
    assert.equal(writer.damage?.record, 2);
    assert.throws(() => writer.append(Buffer.alloc(100, 9)), (err) => isPeriscopeError(err, 'CAPTURE_DAMAGED'));
    writer.close();
    assert.equal(statSync(path).size, size, 'the file is left as it was');
  });

  test('a flipped byte in a length field with records after it is damage, not a torn tail', () => {
    const path = fileWith(4);
    flip(path, RECORD); // the top byte of record 1's length: now far over the limit
    const reader = new ChunkLog(path, false);
    assert.equal(reader.count, 1);
    assert.equal(reader.damage?.record, 1);
    assert.match(reader.damage!.problem, /length/);
    reader.close();
  });
});

describe('one size limit for the writer and the reader', () => {
  test('a chunk over the limit is refused at write time and the file is unchanged', () => {
    const path = fileWith(1);
    const log = new ChunkLog(path, true);
    assert.throws(
      () => log.append(Buffer.alloc(MAX_STORED_CHUNK_BYTES + 1, 1)),
      (err) => isPeriscopeError(err, 'CHUNK_TOO_LARGE') && err.message.includes(String(MAX_STORED_CHUNK_BYTES)),
    );
    assert.equal(log.count, 1);
    log.close();
    assert.equal(statSync(path).size, RECORD);
  });

  test('a chunk of exactly the limit is stored and reads back after reopening', () => {
    const path = fileWith(0);
    const payload = Buffer.alloc(MAX_STORED_CHUNK_BYTES, 3);
    const log = new ChunkLog(path, true);
    log.append(payload);
    log.append(Buffer.alloc(10, 4));
    log.close();
    const reader = new ChunkLog(path, false);
    assert.equal(reader.count, 2);
    assert.equal(reader.damage, undefined);
    assert.ok(reader.read(0).equals(payload));
    reader.close();
  });
});
