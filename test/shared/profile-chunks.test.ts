import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { PeriscopeError } from '../../shared/errors.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { type ProfileChunk, applyChunk, profileFromChunks } from '../../shared/profile/chunk.ts';
import { NONE, emptyProfile, tableSizes } from '../../shared/profile/model.ts';
import { buildKnownProfile, f } from './fixtures.ts';

function chunkedKnownProfile(): { builder: ProfileBuilder; chunks: ProfileChunk[] } {
  const builder = new ProfileBuilder();
  const chunks: ProfileChunk[] = [builder.takeChunk()];
  buildKnownProfile(builder);
  chunks.push(builder.takeChunk());
  chunks.push(builder.takeChunk()); // nothing new: an empty chunk must apply cleanly
  const t = builder.thread(100, 3, 'late thread');
  builder.addSample({ thread: t, timeUs: 90_000, framesLeafFirst: [f('late', 'late.py', 7), f('work', 'app.py', 10)] });
  builder.addError('could not read frame', 95_000);
  builder.updateCapture({ durationUs: 120_000, lateSamples: 2 });
  chunks.push(builder.takeChunk());
  return { builder, chunks };
}

function expectCode(code: string, action: () => void): void {
  assert.throws(action, (error: unknown) => {
    assert.ok(error instanceof PeriscopeError, `expected PeriscopeError, got ${String(error)}`);
    assert.equal(error.code, code);
    return true;
  });
}

/** A valid next chunk for `profile` that tests then corrupt one field at a time. */
function nextChunk(): { profile: ReturnType<typeof emptyProfile>; chunk: ProfileChunk } {
  const { chunks } = chunkedKnownProfile();
  const profile = profileFromChunks(chunks.slice(0, 3));
  return { profile, chunk: structuredClone(chunks[3]) };
}

describe('ProfileBuilder', () => {
  it('interns strings, frames and stacks', () => {
    const b = new ProfileBuilder();
    const t = b.thread(1, 1);
    const stack = [f('a', 'x.py', 1), f('b', 'x.py', 2)];
    b.addSample({ thread: t, timeUs: 0, framesLeafFirst: stack });
    const sizes = tableSizes(b.profile);
    b.addSample({ thread: t, timeUs: 1, framesLeafFirst: stack });
    assert.deepEqual({ ...tableSizes(b.profile), samples: sizes.samples }, sizes);
    assert.equal(b.profile.samples.stack[0], b.profile.samples.stack[1]);
    assert.equal(b.thread(1, 1), t);
  });

  it('stores stacks root first as a trie of leaf-first input', () => {
    const b = new ProfileBuilder();
    const leaf = b.internStack([f('leaf', 'x.py', 3), f('mid', 'x.py', 2), f('root', 'x.py', 1)]);
    const names: string[] = [];
    for (let s = leaf; s !== NONE; s = b.profile.stacks.prefix[s]) names.push(b.profile.strings[b.profile.frames.name[b.profile.stacks.frame[s]]]);
    assert.deepEqual(names, ['leaf', 'mid', 'root']);
    assert.equal(b.profile.stacks.prefix[0], NONE);
    assert.equal(b.internStack([f('mid', 'x.py', 2), f('root', 'x.py', 1)]), b.profile.stacks.prefix[leaf]);
    assert.equal(b.internStack([]), NONE);
  });

  it('rejects bad arguments with a typed error', () => {
    const b = new ProfileBuilder();
    expectCode('BAD_ARGUMENT', () => b.addSample({ thread: 0, timeUs: 0, framesLeafFirst: [] }));
    const t = b.thread(1, 1);
    expectCode('BAD_ARGUMENT', () => b.addSample({ thread: t, timeUs: Number.NaN, framesLeafFirst: [] }));
    expectCode('BAD_ARGUMENT', () => b.internFrame(f('a', 'x.py', 1.5)));
  });

  it('chunks typed numeric columns', () => {
    const { chunks } = chunkedKnownProfile();
    const chunk = chunks[1];
    assert.ok(chunk.frames.name instanceof Int32Array);
    assert.ok(chunk.threads.tid instanceof Float64Array);
    assert.ok(chunk.samples.timeUs instanceof Float64Array);
    assert.ok(chunk.samples.flags instanceof Uint8Array);
    assert.equal(chunks[2].samples.stack.length, 0);
    assert.deepEqual(chunks[3].base, tableSizes(profileFromChunks(chunks.slice(0, 3))));
  });
});

describe('applyChunk', () => {
  it('rebuilds exactly the builder profile', () => {
    const { builder, chunks } = chunkedKnownProfile();
    assert.deepStrictEqual(profileFromChunks(chunks), builder.profile);
  });

  it('rebuilds the same profile after a msgpack round trip', () => {
    const { builder, chunks } = chunkedKnownProfile();
    const packr = new Packr({ moreTypes: true });
    assert.deepStrictEqual(profileFromChunks(chunks.map((c) => packr.unpack(packr.pack(c)))), builder.profile);
  });

  it('accepts plain number arrays in place of typed arrays', () => {
    const { builder, chunks } = chunkedKnownProfile();
    const plain = JSON.parse(JSON.stringify(chunks, (_key, value) => (ArrayBuffer.isView(value) ? Array.from(value as Int32Array) : value)));
    assert.deepStrictEqual(profileFromChunks(plain), builder.profile);
  });

  const corruptions: [string, (c: ProfileChunk) => unknown][] = [
    ['not an object', () => 42],
    ['null', () => null],
    ['missing table', (c) => ({ ...c, stacks: undefined })],
    ['string index out of range', (c) => ((c.frames.name[0] = 10_000), c)],
    ['negative string index', (c) => ((c.frames.file[0] = -1), c)],
    ['frame index out of range', (c) => ((c.stacks.frame[0] = 10_000), c)],
    ['stack prefix pointing forward', (c) => ((c.stacks.prefix[0] = c.base.stacks), c)],
    ['sample stack out of range', (c) => ((c.samples.stack[0] = 10_000), c)],
    ['sample thread out of range', (c) => ((c.samples.thread[0] = 7), c)],
    ['thread name out of range', (c) => ((c.threads.name[0] = 10_000), c)],
    ['unknown flag bits', (c) => ((c.samples.flags[0] = 0x80), c)],
    ['non-finite time', (c) => ((c.samples.timeUs[0] = Number.NaN), c)],
    ['columns of different length', (c) => ((c.samples.thread = new Int32Array(0)), c)],
    ['bytes where int32 is expected', (c) => ((c.stacks.frame = new Uint8Array(c.stacks.frame.length) as unknown as Int32Array), c)],
    ['strings that are not strings', (c) => ((c.strings = [1 as unknown as string]), c)],
    ['non-integer in a plain index array', (c) => ((c.samples.stack = [0.5] as unknown as Int32Array), c)],
    ['capture without command line', (c) => ({ ...c, capture: { ...c.capture, commandLine: undefined } })],
    ['negative duration', (c) => ({ ...c, capture: { ...c.capture, durationUs: -1 } })],
  ];
  for (const [what, corrupt] of corruptions) {
    it(`rejects a chunk with ${what} and leaves the profile untouched`, () => {
      const { profile, chunk } = nextChunk();
      const before = structuredClone(profile);
      expectCode('INVALID_CHUNK', () => applyChunk(profile, corrupt(chunk)));
      assert.deepStrictEqual(profile, before);
    });
  }

  it('rejects repeated and skipped chunks as out of sequence', () => {
    const { chunks } = chunkedKnownProfile();
    const profile = profileFromChunks(chunks.slice(0, 2));
    expectCode('CHUNK_OUT_OF_SEQUENCE', () => applyChunk(profile, chunks[1]));
    const fresh = emptyProfile();
    expectCode('CHUNK_OUT_OF_SEQUENCE', () => applyChunk(fresh, chunks[3]));
  });
});

describe('a builder that does not retain samples (streaming agents)', () => {
  it('sends the same chunks and keeps only the rows not yet chunked', () => {
    const retaining = new ProfileBuilder({ rateHz: 100 });
    const streaming = new ProfileBuilder({ rateHz: 100 }, { retainSamples: false });
    const chunks: ProfileChunk[] = [];
    for (const b of [retaining, streaming]) {
      const t = b.thread(1, 1, 'main');
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 50; i++) {
          b.addSample({ thread: t, timeUs: round * 1000 + i, framesLeafFirst: [f(`leaf${i % 5}`, 'a.py', i % 7), f('root', 'a.py', 1)] });
        }
        b.addError(`round ${round}`, round * 1000);
        if (b === streaming) chunks.push(b.takeChunk());
        else b.takeChunk();
      }
    }
    assert.equal(streaming.profile.samples.stack.length, 0, 'chunked samples left memory');
    assert.equal(streaming.profile.errors.timeUs.length, 0);
    assert.deepEqual(streaming.sizes(), tableSizes(retaining.profile));
    assert.deepEqual(profileFromChunks(chunks), retaining.profile);
    const id = streaming.addSample({ thread: 0, timeUs: 5000, framesLeafFirst: [] });
    assert.equal(id, 150, 'sample ids keep counting across dropped rows');
    const last = streaming.takeChunk();
    assert.equal(last.base.samples, 150);
    assert.equal(last.samples.stack.length, 1);
  });
});
