// `periscope diff BASELINE CURRENT` on two real captures of the chatbot story
// (test/targets/cache_story.py): json decoding under an lru_cache too small
// for its 64 payloads, then large enough. The comparison must show decode's
// share falling and respond's rising, from raw files and from speedscope ones.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { describeRun, runPeriscope } from '../helpers/periscope.ts';
import { newestPython } from '../helpers/pythons.ts';
import { outputDir, startRecord } from '../helpers/record.ts';
import { startTarget } from '../helpers/targets.ts';
import { parseXml, textContent, walkElements } from '../shared/xml-check.ts';

const python = newestPython();

async function recordStory(t: TestContext, dir: string, maxsize: number, format: 'raw' | 'speedscope'): Promise<string> {
  const target = await startTarget(python!, 'cache_story.py', { args: [String(maxsize)], t });
  await target.truth();
  const out = join(dir, `cache-${maxsize}.${format}`);
  const run = await startRecord(['record', '--pid', String(target.pid), '-r', '200', '-d', '2', '-f', format, '-o', out]).done;
  assert.ok(run.code === 0 && existsSync(out), describeRun(run));
  await target.kill();
  return out;
}

/** Tooltip shares of the boxes whose label starts with `name (`. */
function shares(svg: string, name: string): { before: number; after: number }[] {
  const found = [];
  for (const el of walkElements(parseXml(svg))) {
    if (el.name !== 'g' || el.attributes.get('class') !== 'f') continue;
    const title = textContent(el.children.find((c) => typeof c !== 'string' && c.name === 'title')!);
    if (!title.startsWith(`${name} (`)) continue;
    const m = /before ([\d.]+)% · after ([\d.]+)%/.exec(title);
    assert.ok(m, `no shares in ${JSON.stringify(title)}`);
    found.push({ before: Number(m[1]), after: Number(m[2]) });
  }
  return found;
}

test('diff of a capture before and after a bigger lru_cache shows the decoder shrink', { skip: python ? false : 'no Python interpreter found' }, async (t) => {
  const dir = outputDir(t);
  for (const format of ['raw', 'speedscope'] as const) {
    const before = await recordStory(t, dir, 8, format);
    const after = await recordStory(t, dir, 128, format);
    const svgPath = join(dir, `diff-${format}.svg`);
    const run = await runPeriscope(['diff', before, after, '-o', svgPath]);
    assert.equal(run.code, 0, describeRun(run));
    assert.match(run.stderr, /Wrote the comparison of .* to .*diff-/);
    const svg = readFileSync(svgPath, 'utf8');
    const decode = shares(svg, 'decode');
    const respond = shares(svg, 'respond');
    assert.ok(respond.length > 0, `no respond box in the ${format} diff`);
    const sum = (xs: { before: number; after: number }[], k: 'before' | 'after') => xs.reduce((a, x) => a + x[k], 0);
    // The decoder takes most of each request before (measured ~60 %) and runs
    // only while the cache warms after: its box is thin or gone (widths come
    // from the current capture), and the subtitle counts what vanished.
    const subtitle = textContent([...walkElements(parseXml(svg))].find((e) => e.attributes.get('id') === 'subtitle')!);
    const counts = /baseline (\d+) samples · current (\d+) samples/.exec(subtitle);
    assert.ok(counts, subtitle);
    const vanished = Number(/(\d+) baseline samples on paths now gone/.exec(subtitle)?.[1] ?? 0);
    const decodeBefore = decode.length > 0 ? sum(decode, 'before') : 0;
    assert.ok(decodeBefore + (100 * vanished) / Number(counts[1]) > 25, `${format}: decode ${JSON.stringify(decode)}, ${subtitle}`);
    assert.ok(sum(decode, 'after') < 10, `${format}: decode ${JSON.stringify(decode)}`);
    assert.ok(sum(respond, 'after') > sum(respond, 'before') + 10, `${format}: respond ${JSON.stringify(respond)}`);
  }
});

test('diff refuses what it cannot compare, naming the file and what to give', async (t) => {
  const dir = outputDir(t);
  const svg = join(dir, 'a.svg');
  writeFileSync(svg, '<?xml version="1.0"?><svg/>');
  const raw = join(dir, 'a.txt');
  writeFileSync(raw, 'main (app.py:1) 3\n');
  for (const [args, pattern] of [
    [['diff', raw], /BAD_ARGUMENT: diff takes two files/],
    [['diff', raw, join(dir, 'missing.txt')], /BAD_ARGUMENT: cannot read .*missing\.txt.*ENOENT/],
    [['diff', svg, raw], /BAD_ARGUMENT: .*a\.svg.* is not a profile Periscope can read: it looks like an SVG/],
  ] as const) {
    const run = await runPeriscope([...args, '-o', join(dir, 'out.svg')]);
    assert.equal(run.code, 2, describeRun(run));
    assert.match(run.stderr, pattern, describeRun(run));
  }
  // An output path that cannot be written: the comparison lands in the temp dir instead.
  const run = await runPeriscope(['diff', raw, raw, '-o', join(dir, 'no-such-dir', 'out.svg')]);
  assert.equal(run.code, 0, describeRun(run));
  const m = /wrote (\S+periscope-\d+-out\.svg) instead/.exec(run.stderr);
  assert.ok(m && existsSync(m[1]), describeRun(run));
});
