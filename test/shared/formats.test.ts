// The format registry (shared/export/formats.ts) and its renderers: every
// listed format renders, names its file with its own extension, and is offered
// by the CLI. Each format's content is checked by its own export-*.test.ts and
// by test/agent/record-formats.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { FORMATS, FORMAT_NAMES, isFormat, outputFileName } from '../../shared/export/formats.ts';
import { render } from '../../shared/export/renderers.ts';
import { buildKnownProfile } from './fixtures.ts';

const profile = buildKnownProfile().profile;

test('every format has a renderer that renders the known profile', () => {
  for (const format of FORMAT_NAMES) {
    const body = render(format, profile, {});
    assert.ok(body.length > 0, format);
  }
});

test('file names: one extension per format, the script named rather than the interpreter', () => {
  const extensions = FORMAT_NAMES.map((f) => FORMATS[f].extension);
  assert.equal(new Set(extensions).size, extensions.length, `extensions collide: ${extensions.join(', ')}`);
  const start = new Date('2026-11-21T05:30:00Z');
  assert.equal(outputFileName('python3 -u /srv/app.py --port 80', 'flamegraph', start), 'app-2026-11-21T05-30-00.svg');
  for (const format of FORMAT_NAMES) assert.ok(outputFileName('python3 app.py', format, start).endsWith(`.${FORMATS[format].extension}`), format);
});

test('isFormat accepts exactly the registered names', () => {
  for (const format of FORMAT_NAMES) assert.equal(isFormat(format), true);
  for (const other of ['svg', 'FLAMEGRAPH', '', 'toString', 'constructor', undefined, 1]) assert.equal(isFormat(other), false, String(other));
});

test('`periscope record --help` and the usage list every format', () => {
  const bin = join(import.meta.dirname, '..', '..', 'bin', 'periscope');
  const help = execFileSync(bin, ['record', '--help'], { encoding: 'utf8' });
  assert.match(help, new RegExp(`output format: ${FORMAT_NAMES.join(', ')}`));
  const usage = execFileSync(bin, ['--help'], { encoding: 'utf8' });
  assert.ok(usage.includes(`-f ${FORMAT_NAMES.join('|')}`), usage);
});
