import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CallTreeNode, callTree } from '../../shared/profile/call-tree.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { selectSamples } from '../../shared/profile/sample-filter.ts';
import { TopAccumulator, type TopAccumulatorOptions } from '../../shared/profile/top-accumulator.ts';
import { KNOWN_THREADS, buildKnownProfile, f } from './fixtures.ts';

const profile = buildKnownProfile().profile;

interface TopRow {
  function: string;
  line: number | null;
  ownSamples: number;
  totalSamples: number;
}

/** The top table over the whole profile: one window of the live accumulator, most own samples first. */
function topTable(options: TopAccumulatorOptions = {}, byFunction = false): { sampleCount: number; rows: TopRow[] } {
  const acc = new TopAccumulator(profile, options);
  acc.ingest();
  const { counted } = acc.endWindow();
  const rows = acc.rows('ownPercent', byFunction).map((r) => ({ function: r.function, line: r.line, ownSamples: r.windowOwn, totalSamples: r.windowTotal }));
  return { sampleCount: counted, rows };
}

function row(rows: TopRow[], name: string, line: number | null): Pick<TopRow, 'ownSamples' | 'totalSamples'> {
  const found = rows.find((r) => r.function === name && r.line === line);
  assert.ok(found, `no row for ${name}:${line}`);
  return { ownSamples: found.ownSamples, totalSamples: found.totalSamples };
}

/** Compact "name:line self/total" outline of a call tree, for exact comparisons. */
function outline(node: CallTreeNode, depth = 0): string[] {
  const label = node.line === null ? node.name : `${node.name}:${node.line}`;
  return [`${'  '.repeat(depth)}${label} ${node.self}/${node.total}`, ...node.children.flatMap((c) => outline(c, depth + 1))];
}

describe('selectSamples', () => {
  it('drops idle samples unless asked, and keeps only GIL holders when asked', () => {
    assert.equal(selectSamples(profile).length, 8);
    assert.equal(selectSamples(profile, { idle: true }).length, 9);
    assert.equal(selectSamples(profile, { gil: true }).length, 7);
    assert.equal(selectSamples(profile, { threadRows: [KNOWN_THREADS.worker] }).length, 2);
  });
});

describe('top table', () => {
  it('counts own and total samples per line', () => {
    const { sampleCount, rows } = topTable();
    assert.equal(sampleCount, 8);
    assert.deepEqual(row(rows, 'work', 10), { ownSamples: 3, totalSamples: 4 });
    assert.deepEqual(row(rows, 'work', 11), { ownSamples: 1, totalSamples: 1 });
    assert.deepEqual(row(rows, 'main', 20), { ownSamples: 0, totalSamples: 5 });
    assert.deepEqual(row(rows, '<module>', 30), { ownSamples: 0, totalSamples: 6 });
    assert.deepEqual(row(rows, 'loop', 3), { ownSamples: 2, totalSamples: 2 });
    assert.equal(rows.find((r) => r.function === 'sleep'), undefined);
    assert.equal(rows[0].function, 'work');
    for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1].ownSamples >= rows[i].ownSamples);
  });

  it('aggregates by function, counting a recursive function once per sample', () => {
    const { rows } = topTable({}, true);
    assert.deepEqual(row(rows, 'work', 10), { ownSamples: 4, totalSamples: 5 });
    assert.deepEqual(row(rows, 'main', 20), { ownSamples: 0, totalSamples: 6 });
    assert.deepEqual(row(rows, 'recurse', 1), { ownSamples: 1, totalSamples: 1 });
  });

  it('applies idle, GIL and thread filters', () => {
    assert.deepEqual(row(topTable({ idle: true }).rows, 'sleep', 1), { ownSamples: 1, totalSamples: 1 });
    assert.equal(topTable({ gil: true }).rows.find((r) => r.function === 'helper'), undefined);
    const worker = topTable({ threadRows: [KNOWN_THREADS.worker] });
    assert.deepEqual(
      worker.rows.map((r) => r.function),
      ['loop', 'run'],
    );
  });
});

describe('TopAccumulator over time', () => {
  it('keeps the header figures of the whole capture next to the last window, until reset', () => {
    const builder = buildKnownProfile();
    const acc = new TopAccumulator(builder.profile);
    acc.ingest();
    acc.endWindow();
    const worker = builder.thread(100, 2, 'worker');
    for (const t of [2, 3]) builder.addSample({ thread: worker, timeUs: t * 10_000, gil: true, framesLeafFirst: [f('loop', 'w.py', 3), f('run', 'w.py', 1)] });
    acc.ingest();
    acc.endWindow();
    assert.deepEqual(acc.lastWindow, { counted: 2, all: 2, gil: 2, active: 2, threads: 1, processes: 1 });
    assert.deepEqual(acc.cumulativeWindow, { counted: 10, all: 11, gil: 9, active: 10, threads: 2, processes: 1 });
    assert.equal(acc.cumulativeSamples, 11);
    // Over the whole capture, own counts add up to the counted samples (every counted sample has one leaf).
    const own = acc.rows('ownTime', true).reduce((sum, r) => sum + r.cumulativeOwn, 0);
    assert.equal(own, acc.cumulativeWindow.counted);
    acc.reset();
    assert.deepEqual(acc.cumulativeWindow, { counted: 0, all: 0, gil: 0, active: 0, threads: 0, processes: 0 });
    assert.equal(acc.cumulativeSamples, 0);
    assert.deepEqual(acc.lastWindow, { counted: 2, all: 2, gil: 2, active: 2, threads: 1, processes: 1 }, 'reset leaves the window alone');
  });

  it('shows a function at the lowest line sampled in it, never the line sampled last', () => {
    const builder = new ProfileBuilder();
    builder.process(1, { commandLine: 'python g.py' });
    const thread = builder.thread(1, 1, 'MainThread');
    const acc = new TopAccumulator(builder.profile);
    const functionRow = () => acc.rows('ownTime', true).find((r) => r.function === 'g');
    const sample = (line: number, timeUs: number) => builder.addSample({ thread, timeUs, framesLeafFirst: [f('g', 'g.py', line), f('<module>', 'g.py', 40)] });
    sample(20, 0);
    acc.ingest();
    acc.endWindow();
    assert.equal(functionRow()?.line, 20);
    sample(12, 10_000);
    acc.ingest();
    acc.endWindow();
    assert.equal(functionRow()?.line, 12);
    sample(30, 20_000); // a later, higher line does not move it
    sample(20, 30_000);
    acc.ingest();
    acc.endWindow();
    assert.equal(functionRow()?.line, 12);
    assert.equal(functionRow()?.cumulativeOwn, 4);
    assert.deepEqual(acc.rows('ownTime', false).filter((r) => r.function === 'g').map((r) => r.line).sort((a, b) => (a ?? 0) - (b ?? 0)), [12, 20, 30]);
  });
});

describe('callTree', () => {
  it('merges stacks into a tree with self and total counts', () => {
    assert.deepEqual(outline(callTree(profile)), [
      'all 0/8',
      '  <module>:30 0/6',
      '    main:20 0/5',
      '      work:10 3/4',
      '        helper:5 1/1',
      '      work:11 1/1',
      '    main:21 0/1',
      '      recurse:2 0/1',
      '        recurse:1 1/1',
      '  run:1 0/2',
      '    loop:3 2/2',
    ]);
  });

  it('merges lines of a function when aggregating by function', () => {
    const tree = outline(callTree(profile, { function: true }));
    assert.ok(tree.includes('      work:10 4/5'), tree.join('\n'));
    assert.ok(tree.includes('    main:20 0/6'), tree.join('\n'));
  });

  it('adds thread roots when asked and process roots when several processes were sampled', () => {
    const withThreads = callTree(profile, { threads: true });
    assert.deepEqual(
      withThreads.children.map((c) => [c.kind, c.name, c.total]),
      [
        ['thread', 'thread (MainThread) 1', 6],
        ['thread', 'thread (worker) 2', 2],
      ],
    );
    assert.equal(callTree(profile).children.some((c) => c.kind === 'process'), false);

    const builder = buildKnownProfile();
    builder.process(200, { commandLine: 'python child.py' });
    builder.addSample({ thread: builder.thread(200, 5), timeUs: 0, framesLeafFirst: [f('child', 'child.py', 1)] });
    const tree = callTree(builder.profile, { threads: true });
    assert.deepEqual(
      tree.children.map((c) => [c.kind, c.name, c.total]),
      [
        ['process', 'process 100: "python app.py"', 8],
        ['process', 'process 200: "python child.py"', 1],
      ],
    );
    assert.deepEqual(
      tree.children[1].children.map((c) => c.name),
      ['thread 5'],
    );
  });
});
