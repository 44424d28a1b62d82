import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exportRaw } from '../../shared/export/raw.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { selectSamples } from '../../shared/profile/sample-filter.ts';
import { buildKnownProfile, f } from './fixtures.ts';

const profile = buildKnownProfile().profile;

function parseCollapsed(text: string): { frames: string[]; count: number }[] {
  assert.ok(text === '' || text.endsWith('\n'));
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const m = /^(.+) (\d+)$/.exec(line);
      assert.ok(m, `not a collapsed-stack line: ${JSON.stringify(line)}`);
      return { frames: m[1].split(';'), count: Number(m[2]) };
    });
}

describe('exportRaw', () => {
  it('writes one py-spy style line per distinct stack, root first', () => {
    assert.equal(
      exportRaw(profile),
      [
        '<module> (app.py:30);main (app.py:20);work (app.py:10) 3',
        '<module> (app.py:30);main (app.py:20);work (app.py:10);helper (lib.py:5) 1',
        '<module> (app.py:30);main (app.py:20);work (app.py:11) 1',
        '<module> (app.py:30);main (app.py:21);recurse (r.py:2);recurse (r.py:1) 1',
        'run (w.py:1);loop (w.py:3) 2',
        '',
      ].join('\n'),
    );
  });

  for (const options of [{}, { idle: true }, { gil: true }, { function: true }, { nolineno: true }, { threads: true }]) {
    it(`has counts summing to the selected samples with ${JSON.stringify(options)}`, () => {
      const lines = parseCollapsed(exportRaw(profile, options));
      const stacks = lines.map((l) => l.frames.join(';'));
      assert.equal(new Set(stacks).size, stacks.length, 'stacks are distinct');
      assert.equal(
        lines.reduce((sum, l) => sum + l.count, 0),
        selectSamples(profile, options).length,
      );
    });
  }

  it('follows --nolineno, --function and --threads', () => {
    assert.match(exportRaw(profile, { nolineno: true }), /^<module> \(app\.py\);main \(app\.py\);work \(app\.py\) 4$/m);
    assert.match(exportRaw(profile, { function: true }), /^<module> \(app\.py:30\);main \(app\.py:20\);work \(app\.py:10\) 4$/m);
    assert.match(exportRaw(profile, { threads: true }), /^thread \(worker\) 2;run \(w\.py:1\);loop \(w\.py:3\) 2$/m);
  });

  it('keeps separators and newlines in names from breaking the format', () => {
    const b = new ProfileBuilder();
    b.addSample({ thread: b.thread(1, 1), timeUs: 0, framesLeafFirst: [f('a;b\nc', 'odd;file.py', 1)] });
    const lines = parseCollapsed(exportRaw(b.profile));
    assert.equal(lines.length, 1);
    assert.equal(lines[0].frames.length, 1);
  });

  it('writes nothing for an empty profile', () => {
    assert.equal(exportRaw(new ProfileBuilder().profile), '');
  });
});
