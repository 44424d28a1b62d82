// The browser's live flame graph and the SVG a user downloads
// (shared/export/flamegraph.ts) must draw the same boxes: same labels (the
// lowest-line rule by function), same sample counts (the idle and GIL filters),
// same root boxes (per process, per thread), same order and placement. Both
// walk shared/profile's CallTree; this checks the SVG's layout of it against
// the browser's reading of it (sorted children, widths in samples) on every
// option set.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { exportFlamegraph } from '../../shared/export/flamegraph.ts';
import type { Profile } from '../../shared/profile/model.ts';
import { buildKnownProfile, f, KNOWN_THREADS } from '../shared/fixtures.ts';
import { parseXml, textContent, walkElements } from '../shared/xml-check.ts';
import { CallTree, type CallTreeOptions } from '../../shared/profile/call-tree.ts';

/** One drawn box: depth from the root, first sample offset, width in samples, label. */
type Box = string;

function svgBoxes(svg: string): Box[] {
  const boxes: Box[] = [];
  for (const el of walkElements(parseXml(svg))) {
    if (el.name !== 'g' || el.attributes.get('class') !== 'f') continue;
    const title = el.children.find((c) => typeof c !== 'string' && c.name === 'title');
    assert.ok(title, 'a frame box without a title');
    const label = textContent(title).split('\n')[0];
    boxes.push(`${el.attributes.get('data-d')} ${el.attributes.get('data-s')}+${el.attributes.get('data-n')} ${label}`);
  }
  return boxes;
}

/** The same walk as the SVG's layout (parents first, children left to right), over the model. */
function modelBoxes(model: CallTree): Box[] {
  const boxes: Box[] = [];
  if (model.total[0] === 0) return boxes;
  const pending = [{ node: 0, start: 0, depth: 0 }];
  while (pending.length > 0) {
    const { node, start, depth } = pending.pop()!;
    boxes.push(`${depth} ${start}+${model.total[node]} ${model.label(node)}`);
    const children = [];
    let at = start;
    for (const c of model.sortedChildren(node)) {
      if (model.total[c] > 0) children.push({ node: c, start: at, depth: depth + 1 });
      at += model.total[c];
    }
    for (let i = children.length - 1; i >= 0; i--) pending.push(children[i]);
  }
  return boxes;
}

/** The fixtures' two threads, plus (when asked) a child process whose frames share names with its parent's. */
function profileOf(processes: 1 | 2): Profile {
  const b = buildKnownProfile();
  if (processes === 2) {
    b.process(200, { commandLine: 'python child.py' });
    const child = b.thread(200, 3, 'MainThread');
    b.addSample({ thread: child, timeUs: 0, gil: true, framesLeafFirst: [f('work', 'app.py', 12), f('main', 'app.py', 20)] });
    b.addSample({ thread: child, timeUs: 10_000, idle: true, framesLeafFirst: [f('main', 'app.py', 19)] });
  }
  return b.profile;
}

const bools = [false, true];
const sets: { processes: 1 | 2; options: CallTreeOptions }[] = [];
for (const processes of [1, 2] as const) {
  for (const idle of bools) {
    for (const gil of bools) {
      for (const fn of bools) {
        for (const threads of bools) {
          for (const threadRows of [undefined, [KNOWN_THREADS.main]]) sets.push({ processes, options: { idle, gil, function: fn, threads, threadRows } });
        }
      }
    }
  }
}

test(`the live flame graph and the downloaded SVG draw the same boxes for all ${sets.length} option sets`, () => {
  const lowestLineSeen = new Set<boolean>();
  for (const { processes, options } of sets) {
    const profile = profileOf(processes);
    const model = new CallTree(profile, options);
    model.ingest();
    const expected = svgBoxes(exportFlamegraph(profile, options));
    const what = `${processes} process(es), ${JSON.stringify(options)}`;
    assert.ok(expected.length > 0, `the SVG has no boxes: ${what}`);
    assert.deepEqual(modelBoxes(model), expected, what);
    lowestLineSeen.add(expected.some((b) => b.endsWith(' main (app.py:20)')) && !expected.some((b) => b.endsWith(' main (app.py:21)')));
  }
  // By function, main's lines 20 and 21 merge under the lowest; by line they stay apart: both cases were compared.
  assert.deepEqual([...lowestLineSeen].sort(), [false, true]);
});
