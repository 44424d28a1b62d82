import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exportSpeedscope } from '../../shared/export/speedscope.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { DURATION_US, buildKnownProfile, f } from './fixtures.ts';

const UNITS = ['bytes', 'microseconds', 'milliseconds', 'nanoseconds', 'none', 'seconds'];

/** The checks https://www.speedscope.app/file-format-schema.json makes on a file of sampled profiles, plus speedscope's own. */
function assertValidSpeedscope(file: any): void {
  assert.equal(file.$schema, 'https://www.speedscope.app/file-format-schema.json');
  assert.ok(Array.isArray(file.shared?.frames));
  for (const frame of file.shared.frames) {
    assert.equal(typeof frame.name, 'string');
    if ('file' in frame) assert.equal(typeof frame.file, 'string');
    if ('line' in frame) assert.equal(typeof frame.line, 'number');
  }
  assert.ok(Array.isArray(file.profiles) && file.profiles.length > 0);
  if ('name' in file) assert.equal(typeof file.name, 'string');
  if ('exporter' in file) assert.equal(typeof file.exporter, 'string');
  assert.ok(Number.isInteger(file.activeProfileIndex) && file.activeProfileIndex < file.profiles.length);
  for (const p of file.profiles) {
    for (const key of ['endValue', 'name', 'samples', 'startValue', 'type', 'unit', 'weights']) assert.ok(key in p, `profile lacks ${key}`);
    assert.equal(p.type, 'sampled');
    assert.equal(typeof p.name, 'string');
    assert.ok(UNITS.includes(p.unit));
    assert.ok(p.endValue >= p.startValue);
    assert.equal(p.samples.length, p.weights.length);
    for (const stack of p.samples) {
      for (const index of stack) assert.ok(Number.isInteger(index) && index >= 0 && index < file.shared.frames.length);
    }
    for (const w of p.weights) assert.ok(typeof w === 'number' && w >= 0);
  }
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe('exportSpeedscope', () => {
  const file = JSON.parse(exportSpeedscope(buildKnownProfile().profile));

  it('is a valid speedscope file with one sampled profile per thread', () => {
    assertValidSpeedscope(file);
    assert.deepEqual(
      file.profiles.map((p: any) => p.name),
      ['Thread 1 "MainThread"', 'Thread 2 "worker"'],
    );
    assert.equal(file.name, 'python app.py');
  });

  it('spans the capture in real time so threads line up', () => {
    for (const p of file.profiles) {
      assert.equal(p.unit, 'microseconds');
      assert.equal(p.startValue, 0);
      assert.equal(p.endValue, DURATION_US);
      assert.ok(Math.abs(sum(p.weights) - DURATION_US) < 1e-6);
    }
  });

  it('stores stacks root first and leaves idle time empty', () => {
    const frames = file.shared.frames;
    const main = file.profiles[0];
    assert.deepEqual(
      main.samples[0].map((i: number) => frames[i].name),
      ['<module>', 'main', 'work'],
    );
    // The idle sample at 50 ms is filtered out: its period is an empty sample.
    assert.deepEqual(main.samples[5], []);
    assert.equal(main.weights[5], 10_000);
  });

  it('names profiles after their process when several processes were sampled', () => {
    const b = buildKnownProfile();
    b.addSample({ thread: b.thread(200, 7, 'child-main'), timeUs: 5_000, framesLeafFirst: [f('c', 'c.py', 1)] });
    const several = JSON.parse(exportSpeedscope(b.profile));
    assertValidSpeedscope(several);
    assert.deepEqual(
      several.profiles.map((p: any) => p.name),
      ['Process 100 Thread 1 "MainThread"', 'Process 100 Thread 2 "worker"', 'Process 200 Thread 7 "child-main"'],
    );
    const child = several.profiles[2];
    assert.deepEqual(child.weights.slice(0, 2), [5_000, 10_000]);
    assert.ok(Math.abs(sum(child.weights) - DURATION_US) < 1e-6);
  });

  it('is still loadable with no samples', () => {
    assertValidSpeedscope(JSON.parse(exportSpeedscope(new ProfileBuilder().profile)));
  });
});
