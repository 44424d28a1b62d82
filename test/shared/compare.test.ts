// Comparing two captures offline: files Periscope wrote (raw, speedscope) read
// back into profiles, the call-tree diff, and the differential SVG.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { exportDiffFlamegraph } from '../../shared/export/diff-flamegraph.ts';
import { exportRaw } from '../../shared/export/raw.ts';
import { profileFromExport } from '../../shared/export/read-back.ts';
import { exportSpeedscope } from '../../shared/export/speedscope.ts';
import { isPeriscopeError } from '../../shared/errors.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { diffCallTrees, type DiffNode, diffTopRows, shareChange } from '../../shared/profile/call-tree-diff.ts';
import type { Profile } from '../../shared/profile/model.ts';
import { buildKnownProfile, f } from './fixtures.ts';
import { parseXml, textContent, walkElements } from './xml-check.ts';

/** `count` samples of each stack (root first, labels as `name:line` in file app.py). */
function profileOf(stacks: Record<string, number>, pid = 100): Profile {
  const b = new ProfileBuilder({ commandLine: 'python app.py', rateHz: 100 });
  b.process(pid, { commandLine: 'python app.py' });
  const t = b.thread(pid, 1, 'MainThread');
  let time = 0;
  for (const [path, count] of Object.entries(stacks)) {
    const frames = path.split(';').map((p) => {
      const [name, line] = p.split(':');
      return f(name, 'app.py', Number(line));
    });
    for (let i = 0; i < count; i++) b.addSample({ thread: t, framesLeafFirst: [...frames].reverse(), timeUs: (time += 10_000) });
  }
  return b.profile;
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isPeriscopeError(err), `not a PeriscopeError: ${String(err)}`);
    assert.equal(err.code, 'BAD_ARGUMENT');
    return err.message;
  }
  assert.fail('accepted');
}

describe('reading back what Periscope wrote', () => {
  for (const options of [{}, { threads: true }, { function: true }, { idle: true, threads: true }]) {
    test(`raw and speedscope files read back to the same stacks (${JSON.stringify(options)})`, () => {
      const profile = buildKnownProfile().profile;
      const raw = exportRaw(profile, options);
      assert.equal(exportRaw(profileFromExport(raw, 'raw'), { idle: true, threads: Boolean(options.threads) }), raw);
      // speedscope keeps threads as profiles, not as root frames.
      const plain = exportRaw(profile, { ...options, threads: false });
      assert.equal(exportRaw(profileFromExport(exportSpeedscope(profile, options), 'speedscope'), { idle: true }), plain);
    });
  }

  test('process roots of a multi-process raw file come back as processes', () => {
    const b = buildKnownProfile();
    b.process(200, { commandLine: 'python child.py' });
    b.addSample({ thread: b.thread(200, 3, 'MainThread'), timeUs: 0, framesLeafFirst: [f('work', 'app.py', 12)] });
    const raw = exportRaw(b.profile, { threads: true });
    const back = profileFromExport(raw, 'raw');
    assert.deepEqual([...back.processes.pid].sort(), [100, 200]);
    assert.equal(exportRaw(back, { idle: true, threads: true }), raw);
  });

  test('damaged or foreign files are refused with what to give instead', () => {
    assert.match(refusal(() => profileFromExport('main (app.py:1);work (app.py:2) x\n', 'a.txt')), /line 1 does not end in a sample count.*-f raw or -f speedscope/);
    assert.match(refusal(() => profileFromExport('<svg></svg>', 'a.svg')), /SVG/);
    assert.match(refusal(() => profileFromExport('{"traceEvents": []}', 'a.json')), /not a speedscope file/);
    assert.match(refusal(() => profileFromExport('{"$schema": "x', 'a.json')), /does not parse/);
    const forged = JSON.parse(exportSpeedscope(buildKnownProfile().profile));
    forged.profiles[0].samples.push([99_999]);
    forged.profiles[0].weights.push(1);
    assert.match(refusal(() => profileFromExport(JSON.stringify(forged), 'a.json')), /frame 99999, which is not in the file/);
    assert.match(refusal(() => profileFromExport(`main (app.py:1) ${2 ** 40}\n`, 'a.txt')), /more than \d+ samples/);
  });

  test('paths with spaces, parentheses and colons, and frames without a line, read back', () => {
    const b = new ProfileBuilder();
    const t = b.thread(1, 1);
    b.addSample({ thread: t, timeUs: 0, framesLeafFirst: [f('<lambda>', 'C:/odd (dir)/a b:c.py', 7), f('<module>', 'z.py', 0)] });
    const back = profileFromExport(exportRaw(b.profile), 'raw');
    const frames = [...back.frames.name].map((n, i) => [back.strings[n], back.strings[back.frames.file[i]], back.frames.line[i]]);
    assert.deepEqual(frames.sort(), [
      ['<lambda>', 'C:/odd (dir)/a b:c.py', 7],
      ['<module>', 'z.py', 0],
    ]);
  });
});

describe('call-tree diff', () => {
  const before = profileOf({ 'main:1;handle:2;decode:3': 80, 'main:1;handle:2;respond:4': 20 });
  const after = profileOf({ 'main:1;handle:2;decode:3': 5, 'main:1;handle:2;respond:4': 45, 'main:1;warm:9': 10 }, 300);

  function find(node: DiffNode, name: string): DiffNode {
    const pending = [node];
    while (pending.length) {
      const n = pending.pop()!;
      if (n.name === name) return n;
      pending.push(...n.children);
    }
    assert.fail(`no ${name}`);
  }

  test('each box of the current capture carries the baseline samples of the same path, whatever the pids', () => {
    const diff = diffCallTrees(before, after);
    assert.equal(diff.match.baselineTotal, 100);
    assert.equal(diff.match.currentTotal, 60);
    assert.equal(diff.match.vanished, 0);
    const decode = find(diff.root, 'decode');
    assert.deepEqual([decode.baseline, decode.total], [80, 5]);
    const change = shareChange(diff.match, decode.baseline, decode.total);
    assert.equal(change.before, 80);
    assert.ok(Math.abs(change.after - (100 * 5) / 60) < 1e-9);
    assert.deepEqual([find(diff.root, 'warm').baseline, find(diff.root, 'warm').total], [0, 10]);
    assert.equal(diff.root.children.length, 1, 'no process roots: pid 100 and pid 300 merge');
  });

  test('by function, boxes match on function and file even where the lowest line seen differs', () => {
    const a = profileOf({ 'main:5;handle:2;decode:3': 6, 'main:7;handle:2': 4 });
    const b = profileOf({ 'main:7;handle:2;respond:4': 10 });
    const { root, match } = diffCallTrees(a, b, { function: true });
    assert.equal(match.vanished, 6, 'only decode vanished');
    const main = root.children[0];
    assert.deepEqual([main.name, main.line, main.baseline, main.total], ['main', 7, 10, 10]);
    const byLine = diffCallTrees(a, b);
    assert.equal(byLine.match.vanished, 6, 'by line, main:7 matches main:7 and main:5 vanished');
  });

  test('paths only the baseline has are counted as vanished', () => {
    const diff = diffCallTrees(after, before);
    assert.equal(diff.match.vanished, 10);
  });

  test('the top table side by side: own and total shares before and after, per line or per function', () => {
    const rows = diffTopRows(before, after);
    const decode = rows.find((r) => r.function === 'decode')!;
    assert.deepEqual([decode.ownBefore, decode.totalBefore], [80, 80]);
    assert.ok(Math.abs(decode.ownAfter - (100 * 5) / 60) < 1e-9);
    const handle = rows.find((r) => r.function === 'handle')!;
    assert.deepEqual([handle.ownBefore, handle.totalBefore, handle.ownAfter], [0, 100, 0]);
    assert.ok(Math.abs(handle.totalAfter - (100 * 50) / 60) < 1e-9);
    const warm = rows.find((r) => r.function === 'warm')!;
    assert.deepEqual([warm.ownBefore, warm.totalBefore], [0, 0], 'new in the current capture');
    assert.equal(rows.length, 5);
    assert.equal(diffTopRows(before, after, {}, true).length, 5);
  });

  test('the SVG colours by change in share, with both shares in every tooltip', () => {
    const svg = exportDiffFlamegraph(before, after, { baseline: 'before.txt', current: '<after>.txt' });
    const boxes = new Map<string, { fill: string; title: string }>();
    const root = parseXml(svg);
    for (const el of walkElements(root)) {
      if (el.name !== 'g' || el.attributes.get('class') !== 'f') continue;
      const title = textContent(el.children.find((c) => typeof c !== 'string' && c.name === 'title')!);
      const rect = el.children.find((c) => typeof c !== 'string' && c.name === 'rect');
      assert.ok(rect && typeof rect !== 'string');
      boxes.set(title.split(' (')[0], { fill: rect.attributes.get('fill')!, title });
    }
    const decode = boxes.get('decode')!;
    assert.match(decode.title, /before 80\.00% · after 8\.33% · -71\.67 points\n80 → 5 samples/);
    assert.equal(decode.fill, 'rgb(60,60,250)', 'a large drop is deep blue');
    const respond = boxes.get('respond')!;
    assert.match(respond.title, /before 20\.00% · after 75\.00% · \+55\.00 points/);
    assert.equal(respond.fill, 'rgb(250,60,60)', 'a large rise is deep red');
    assert.match(boxes.get('warm')!.title, /\(new\)/);
    const title = [...walkElements(root)].find((e) => e.attributes.get('id') === 'title')!;
    assert.match(textContent(title), /before\.txt → <after>\.txt/, 'file names are text, not markup');
  });
});
