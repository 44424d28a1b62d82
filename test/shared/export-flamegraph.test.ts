import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import vm from 'node:vm';
import { exportFlamegraph } from '../../shared/export/flamegraph.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { loadSvg } from './fake-svg-dom.ts';
import { buildKnownProfile, f } from './fixtures.ts';
import { type XmlElement, XmlError, parseXml, textContent, walkElements } from './xml-check.ts';

const XSS_NAME = '<img src=x onerror=alert(1)>';
const CDATA_END_NAME = 'evil]]><script>alert(2)</script>';
const QUOTE_NAME = `say "hi" & 'bye'`;
const EVIL_FILE = 'x"/><script>alert(3)</script>.py';
const EVIL_COMMAND = 'python -c "</title><script>alert(4)</script>"';

function hostileProfile(): ProfileBuilder {
  const b = new ProfileBuilder({ commandLine: EVIL_COMMAND, rateHz: 100 });
  const t = b.thread(1, 1, 'bad\u0001thread\uD800');
  for (let i = 0; i < 5; i++) {
    b.addSample({ thread: t, timeUs: i * 10_000, framesLeafFirst: [f(XSS_NAME, EVIL_FILE, 1), f(CDATA_END_NAME, 'a.py', 2)] });
    b.addSample({ thread: t, timeUs: i * 10_000 + 5_000, framesLeafFirst: [f(QUOTE_NAME, 'b.py', 3), f('ctrl\u0000\u001f\uFFFE', 'c.py', 4)] });
  }
  return b;
}

const titles = (svg: XmlElement): string[] => [...walkElements(svg)].filter((e) => e.name === 'title').map(textContent);

describe('XML checker used by these tests', () => {
  for (const bad of ['<a><b></a>', '<a>&foo;</a>', '<a x="<"/>', '<a>]]></a>', '<a x="1" x="2"/>', '<a>\u0001</a>', '<a/><b/>', '<a>&#0;</a>', '<!DOCTYPE a><a/>']) {
    it(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parseXml(bad), XmlError));
  }
  it('decodes references and CDATA', () => {
    assert.equal(textContent(parseXml('<a>&lt;b&gt; &amp; <![CDATA[<c>]]>&#65;</a>')), '<b> & <c>A');
  });
});

describe('exportFlamegraph', () => {
  const svgText = exportFlamegraph(buildKnownProfile().profile);
  const svg = parseXml(svgText);

  it('is a well-formed, 1200 px wide SVG', () => {
    assert.equal(svg.name, 'svg');
    assert.equal(svg.attributes.get('xmlns'), 'http://www.w3.org/2000/svg');
    assert.equal(svg.attributes.get('width'), '1200');
  });

  it('passes xmllint when the machine has it', (t) => {
    if (spawnSync('xmllint', ['--version']).error) return t.skip('xmllint is not installed; xml-check.ts is the only check');
    const dir = mkdtempSync(join(tmpdir(), 'periscope-svg-'));
    try {
      for (const [name, text] of [['known.svg', svgText], ['hostile.svg', exportFlamegraph(hostileProfile().profile)]]) {
        writeFileSync(join(dir, name), text);
        execFileSync('xmllint', ['--noout', join(dir, name)]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('references nothing outside itself', () => {
    const urls = svgText.match(/https?:[^\s"'<>)]*/g) ?? [];
    assert.deepEqual(urls, ['http://www.w3.org/2000/svg']);
    assert.doesNotMatch(svgText, /href|url\(|@import|<image|<foreignObject/i);
  });

  it('has a tooltip with samples and percentage for every frame and the command line as title', () => {
    const all = titles(svg);
    assert.ok(all.includes('work (app.py:10)\n4 samples (50.00%)'), all.join(' | '));
    assert.ok(all.includes('all\n8 samples (100.00%)'));
    const title = [...walkElements(svg)].find((e) => e.attributes.get('id') === 'title')!;
    assert.match(textContent(title), /python app\.py/);
  });

  it('elides frames narrower than 0.1% of the samples', () => {
    const b = new ProfileBuilder();
    const t = b.thread(1, 1);
    for (let i = 0; i < 2000; i++) b.addSample({ thread: t, timeUs: i, framesLeafFirst: [f('hot', 'a.py', 1)] });
    b.addSample({ thread: t, timeUs: 2000, framesLeafFirst: [f('rare', 'a.py', 2)] });
    const labels = titles(parseXml(exportFlamegraph(b.profile))).map((s) => s.split('\n')[0]);
    assert.ok(labels.includes('hot (a.py:1)'));
    assert.ok(!labels.some((l) => l.startsWith('rare')));
  });

  it('renders an empty profile', () => {
    assert.match(textContent(parseXml(exportFlamegraph(new ProfileBuilder().profile))), /No samples/);
  });
});

describe('exportFlamegraph with hostile names', () => {
  const text = exportFlamegraph(hostileProfile().profile);
  const svg = parseXml(text);
  const elements = [...walkElements(svg)];

  it('stays well-formed and keeps every name as inert text', () => {
    assert.deepEqual(
      elements.filter((e) => e.name === 'script').length,
      1,
    );
    assert.ok(!elements.some((e) => e.name === 'img'));
    for (const e of elements) for (const name of e.attributes.keys()) assert.ok(!/^on/i.test(name), `event attribute ${name}`);
    assert.ok(!text.includes('<img'));
    const all = titles(svg);
    assert.ok(all.some((t) => t.startsWith(`${XSS_NAME} (${EVIL_FILE}:1)\n`)), all.join(' | '));
    assert.ok(all.some((t) => t.startsWith(`${CDATA_END_NAME} (a.py:2)\n`)));
    assert.ok(all.some((t) => t.startsWith(`${QUOTE_NAME} (b.py:3)\n`)));
    assert.ok(all.includes(EVIL_COMMAND));
  });

  it('writes no profile data into the script', () => {
    const script = (svgOf: XmlElement) => textContent([...walkElements(svgOf)].find((e) => e.name === 'script')!);
    assert.equal(script(svg), script(parseXml(exportFlamegraph(buildKnownProfile().profile))));
    new vm.Script(script(svg));
  });
});

describe('flame graph script', () => {
  it('zooms into a clicked frame and resets', () => {
    const page = loadSvg(parseXml(exportFlamegraph(buildKnownProfile().profile)));
    const width = (label: string) => Number(page.frameLabelled(label).querySelector('rect')!.getAttribute('width'));
    const hidden = (label: string) => page.frameLabelled(label).classList.contains('hide');
    const before = width('work (app.py:10)');

    page.dispatch('click', { target: page.frameLabelled('main (app.py:20)').querySelector('rect') });
    assert.equal(width('main (app.py:20)'), 1180);
    assert.equal(width('work (app.py:10)'), 944);
    assert.ok(page.frameLabelled('<module> (app.py:30)').classList.contains('parent'));
    assert.ok(hidden('run (w.py:1)'));
    assert.ok(!page.byId('unzoom').classList.contains('hide'));
    assert.match(page.frameLabelled('work (app.py:10)').querySelector('text')!.textContent, /^work/);

    page.dispatch('click', { target: page.byId('unzoom') });
    assert.equal(width('work (app.py:10)'), before);
    assert.ok(!hidden('run (w.py:1)'));
    assert.ok(page.byId('unzoom').classList.contains('hide'));
  });

  it('highlights search matches and reports the matched share once per sample', () => {
    const page = loadSvg(parseXml(exportFlamegraph(buildKnownProfile().profile)));
    page.promptAnswer = 'work';
    page.dispatch('click', { target: page.byId('search') });
    assert.equal(page.byId('matched').textContent, 'Matched: 62.5%');
    assert.ok(page.frameLabelled('work (app.py:11)').classList.contains('match'));
    assert.ok(!page.frameLabelled('main (app.py:20)').classList.contains('match'));

    page.dispatch('click', { target: page.byId('search') });
    assert.ok(!page.frameLabelled('work (app.py:11)').classList.contains('match'));

    page.promptAnswer = 'recurse';
    page.dispatch('click', { target: page.byId('search') });
    assert.equal(page.byId('matched').textContent, 'Matched: 12.5%');

    page.promptAnswer = '([';
    page.dispatch('click', { target: page.byId('search') }); // reset
    page.dispatch('click', { target: page.byId('search') }); // invalid regex falls back to plain text
    assert.equal(page.byId('matched').textContent, 'Matched: 0.0%');
  });
});
