// Gecko profile export (Firefox Profiler) read back with JSON.parse and an
// independent walk of the format: every table row against its schema, every
// index in range, prefixes before their stacks, times monotonic per thread; then
// the stacks resolved through the location strings the way the Firefox Profiler
// reads them (`name (file:line)` is a function `name` in `file` at `line`).
// No npm package imports or validates Gecko profiles, so the walk is written here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GECKO_PROFILE_VERSION, exportGecko } from '../../shared/export/gecko.ts';
import { render } from '../../shared/export/renderers.ts';
import type { ExportOptions } from '../../shared/export/options.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import type { Profile } from '../../shared/profile/model.ts';
import { selectSamples } from '../../shared/profile/sample-filter.ts';
import { DURATION_US, KNOWN_THREADS, PERIOD_US, buildKnownProfile, f } from './fixtures.ts';

type Json = any;

const isIndex = (v: unknown, length: number): boolean => Number.isInteger(v) && (v as number) >= 0 && (v as number) < length;

/** A `{schema, data}` table: schema maps names to distinct column indexes, rows are arrays. */
function assertTable(table: Json, columns: string[], what: string): Record<string, number> {
  assert.equal(typeof table?.schema, 'object', `${what}.schema`);
  assert.ok(Array.isArray(table.data), `${what}.data`);
  for (const c of columns) assert.ok(Number.isInteger(table.schema[c]), `${what}.schema.${c}`);
  const indexes = Object.values(table.schema) as number[];
  assert.equal(new Set(indexes).size, indexes.length, `${what}: distinct columns`);
  for (const row of table.data) assert.ok(Array.isArray(row), `${what}: rows are arrays`);
  return table.schema;
}

/** What the Firefox Profiler's importer needs of a Gecko profile, checked field by field. */
function assertValidGecko(file: Json): void {
  const meta = file.meta;
  assert.equal(meta.version, GECKO_PROFILE_VERSION);
  assert.equal(meta.version, 27);
  assert.ok(typeof meta.interval === 'number' && meta.interval > 0, 'meta.interval (ms)');
  assert.ok(typeof meta.startTime === 'number' && meta.startTime >= 0, 'meta.startTime (ms since the epoch)');
  assert.ok('shutdownTime' in meta);
  assert.equal(meta.product, 'Periscope');
  assert.equal(meta.presymbolicated, true);
  assert.ok(Array.isArray(meta.markerSchema));
  assert.ok(Array.isArray(meta.categories) && meta.categories.length > 0);
  for (const c of meta.categories) {
    assert.equal(typeof c.name, 'string');
    assert.equal(typeof c.color, 'string');
    assert.ok(Array.isArray(c.subcategories) && c.subcategories.length > 0, 'a category has subcategories');
  }
  assert.ok(meta.categories.some((c: Json) => c.color === 'grey'), 'a grey (default) category');
  for (const key of ['libs', 'pausedRanges', 'processes', 'threads']) assert.ok(Array.isArray(file[key]), key);
  assert.ok(file.threads.length > 0);
  for (const thread of file.threads) {
    assert.equal(typeof thread.name, 'string');
    assert.ok(Number.isFinite(thread.pid) && Number.isFinite(thread.tid));
    assert.equal(typeof thread.processType, 'string');
    assert.equal(typeof thread.registerTime, 'number');
    assert.ok(thread.unregisterTime === null || typeof thread.unregisterTime === 'number');
    assert.ok(Array.isArray(thread.stringTable) && thread.stringTable.every((s: unknown) => typeof s === 'string'));
    const strings = thread.stringTable.length;
    assertTable(thread.markers, ['name', 'startTime', 'endTime', 'phase', 'category', 'data'], 'markers');
    const fs = assertTable(thread.frameTable, ['location', 'relevantForJS', 'innerWindowID', 'implementation', 'line', 'column', 'category', 'subcategory'], 'frameTable');
    assert.ok(!('optimizations' in fs), 'no optimizations column since version 27');
    for (const row of thread.frameTable.data) {
      assert.ok(isIndex(row[fs.location], strings), 'frame location is a string');
      assert.equal(typeof row[fs.relevantForJS], 'boolean');
      assert.ok(row[fs.line] === null || (Number.isInteger(row[fs.line]) && row[fs.line] > 0));
      assert.ok(isIndex(row[fs.category], meta.categories.length), 'frame category');
      assert.ok(isIndex(row[fs.subcategory], meta.categories[row[fs.category]].subcategories.length), 'frame subcategory');
    }
    const ss = assertTable(thread.stackTable, ['prefix', 'frame'], 'stackTable');
    thread.stackTable.data.forEach((row: Json, i: number) => {
      assert.ok(row[ss.prefix] === null || isIndex(row[ss.prefix], i), 'a prefix comes before its stack');
      assert.ok(isIndex(row[ss.frame], thread.frameTable.data.length), 'stack frame');
    });
    const sm = assertTable(thread.samples, ['stack', 'time'], 'samples');
    assert.ok('eventDelay' in thread.samples.schema || 'responsiveness' in thread.samples.schema, 'the importer requires eventDelay or responsiveness');
    let last = -Infinity;
    for (const row of thread.samples.data) {
      assert.ok(row[sm.stack] === null || isIndex(row[sm.stack], thread.stackTable.data.length), 'sample stack');
      assert.ok(typeof row[sm.time] === 'number' && row[sm.time] >= last, 'sample times never go back');
      last = row[sm.time];
    }
  }
}

interface Frame {
  name: string;
  file: string | null;
  line: number | null;
}

/** The Firefox Profiler's reading of a non-native location: `name (file:line[:column])`, else all name. */
function parseLocation(location: string): Frame {
  const m = /^(.*) \((.+?):([0-9]+)(?::[0-9]+)?\)$/.exec(location);
  return m ? { name: m[1], file: m[2], line: Number(m[3]) } : { name: location, file: null, line: null };
}

const text = (fr: Frame): string => (fr.file === null ? fr.name : `${fr.name} (${fr.file}:${fr.line})`);

/** Each thread's samples as [ms, root-first frames]. */
function threadSamples(thread: Json): [number, string[]][] {
  const { stackTable, frameTable, stringTable, samples } = thread;
  return samples.data.map((row: Json) => {
    const frames: string[] = [];
    for (let s = row[samples.schema.stack]; s !== null; s = stackTable.data[s][stackTable.schema.prefix]) {
      const frame = frameTable.data[stackTable.data[s][stackTable.schema.frame]];
      frames.unshift(text(parseLocation(stringTable[frame[frameTable.schema.location]])));
    }
    return [row[samples.schema.time], frames];
  });
}

const geckoOf = (profile: Profile, options: ExportOptions = {}): Json => {
  const file = JSON.parse(exportGecko(profile, options));
  assertValidGecko(file);
  return file;
};

const MODULE = '<module> (app.py:30)';
const MAIN20 = 'main (app.py:20)';

describe('exportGecko', () => {
  const profile = buildKnownProfile().profile;
  const file = geckoOf(profile);

  it('is a Gecko profile of version 27 timed like the capture', () => {
    assert.equal(file.meta.interval, PERIOD_US / 1000);
    assert.equal(file.meta.startTime, 1_700_000_000_000);
    assert.equal(file.meta.profilingStartTime, 0);
    assert.equal(file.meta.profilingEndTime, DURATION_US / 1000);
  });

  it('has one thread per sampled thread, with pid, tid, name and process', () => {
    assert.deepEqual(
      file.threads.map((t: Json) => [t.name, t.pid, t.tid, t.processName]),
      [
        ['MainThread', 100, 1, 'python app.py'],
        ['worker', 100, 2, 'python app.py'],
      ],
    );
  });

  it('holds exactly the selected samples of each thread', () => {
    const selected = selectSamples(profile);
    for (const [row, thread] of [KNOWN_THREADS.main, KNOWN_THREADS.worker].map((r, i) => [r, file.threads[i]] as const)) {
      assert.equal(thread.samples.data.length, selected.filter((s) => profile.samples.thread[s] === row).length);
    }
  });

  it('resolves stacks root first, with names, files and lines, at their times in ms', () => {
    assert.deepEqual(threadSamples(file.threads[0]), [
      [0, [MODULE, MAIN20, 'work (app.py:10)']],
      [10, [MODULE, MAIN20, 'work (app.py:10)']],
      [20, [MODULE, MAIN20, 'work (app.py:10)']],
      [30, [MODULE, MAIN20, 'work (app.py:11)']],
      [40, [MODULE, MAIN20, 'work (app.py:10)', 'helper (lib.py:5)']],
      [60, [MODULE, 'main (app.py:21)', 'recurse (r.py:2)', 'recurse (r.py:1)']],
    ]);
    assert.deepEqual(threadSamples(file.threads[1]), [
      [0, ['run (w.py:1)', 'loop (w.py:3)']],
      [10, ['run (w.py:1)', 'loop (w.py:3)']],
    ]);
  });

  it('keeps the frame line in the frame table too, and shares stack prefixes', () => {
    const main = file.threads[0];
    const lines = main.frameTable.data.map((r: Json) => r[main.frameTable.schema.line]);
    assert.deepEqual([...lines].sort((a, b) => a - b), [1, 2, 5, 10, 11, 20, 21, 30]);
    assert.equal(main.stackTable.data.length, 8, 'one row per distinct path node');
  });

  it('is what the registry renders for gecko', () => {
    assert.equal(render('gecko', profile, {}), exportGecko(profile, {}));
  });
});

describe('exportGecko view options', () => {
  const profile = buildKnownProfile().profile;

  it('idle: the idle sample at 50 ms is included', () => {
    const main = threadSamples(geckoOf(profile, { idle: true }).threads[0]);
    assert.deepEqual(main.find(([t]) => t === 50), [50, [MODULE, MAIN20, 'sleep (time.py:1)']]);
    assert.equal(main.length, 7);
  });

  it('gil: only samples holding the GIL', () => {
    const file = geckoOf(profile, { gil: true });
    assert.deepEqual(
      threadSamples(file.threads[0]).map(([t]) => t),
      [0, 10, 20, 30, 60],
    );
  });

  it('function: frames grouped by function at their lowest line', () => {
    const main = threadSamples(geckoOf(profile, { function: true }).threads[0]);
    assert.deepEqual(main[3], [30, [MODULE, MAIN20, 'work (app.py:10)']]);
    assert.deepEqual(main[5], [60, [MODULE, MAIN20, 'recurse (r.py:1)', 'recurse (r.py:1)']]);
  });

  it('nolineno: locations without lines, read back whole as names', () => {
    const file = geckoOf(profile, { nolineno: true });
    assert.deepEqual(threadSamples(file.threads[0])[0], [0, ['<module> (app.py)', 'main (app.py)', 'work (app.py)']]);
    for (const row of file.threads[0].frameTable.data) assert.equal(row[file.threads[0].frameTable.schema.line], null);
  });

  it('threadRows: only the chosen threads', () => {
    const file = geckoOf(profile, { threadRows: [KNOWN_THREADS.worker] });
    assert.deepEqual(file.threads.map((t: Json) => t.name), ['worker']);
  });

  it('threads: no root frames, threads are already separate', () => {
    assert.deepEqual(geckoOf(profile, { threads: true }).threads, geckoOf(profile).threads);
  });

  it('several processes: threads carry their own pid and process', () => {
    const b = buildKnownProfile();
    b.process(200, { commandLine: 'python child.py' });
    b.addSample({ thread: b.thread(200, 7, ''), timeUs: 5_000, framesLeafFirst: [f('c', 'c.py', 1)] });
    const file = geckoOf(b.profile);
    const child = file.threads.find((t: Json) => t.pid === 200);
    assert.deepEqual([child.name, child.tid, child.processName], ['Thread 7', 7, 'python child.py']);
    assert.deepEqual(threadSamples(child), [[5, ['c (c.py:1)']]]);
  });

  it('no samples: one empty thread, still valid', () => {
    const empty = new ProfileBuilder();
    empty.updateCapture({ commandLine: '', rateHz: 0, startTimeUs: 0, durationUs: 0 });
    const file = geckoOf(empty.profile);
    assert.equal(file.threads.length, 1);
    assert.equal(file.threads[0].samples.data.length, 0);
    assert.equal(file.meta.interval, 10, "py-spy's 100 Hz when the rate is unknown");
    assert.ok(!('profilingEndTime' in file.meta));
  });
});

describe('exportGecko with hostile strings', () => {
  const HUGE = 'x'.repeat(200_000);
  const CONTROL = 'ctl\u0000\u0001\u001b[31m\r\n\t\u007f\u2028';
  const MARKUP = '</script><script>alert(1)</script>';
  const b = new ProfileBuilder();
  b.updateCapture({ commandLine: `python -c "${MARKUP}"`, rateHz: 100, startTimeUs: 1_000_000, durationUs: 20_000 });
  b.process(1, { commandLine: `python -c "${MARKUP}"` });
  const t = b.thread(1, 2 ** 47 + 1, MARKUP);
  b.addSample({ thread: t, timeUs: 0, framesLeafFirst: [f(HUGE, 'a.py', 3), f(MARKUP, `${CONTROL}.py`, 2)] });
  b.addSample({ thread: t, timeUs: 10_000, framesLeafFirst: [f(`${CONTROL} (fake.py:9)`, '', 0)] });
  const json = exportGecko(b.profile);
  const file = JSON.parse(json);

  it('keeps them as data, exactly', () => {
    assertValidGecko(file);
    const thread = file.threads[0];
    assert.equal(thread.name, MARKUP);
    assert.equal(thread.processName, `python -c "${MARKUP}"`);
    assert.equal(thread.tid, 2 ** 47 + 1);
    assert.ok(thread.stringTable.includes(`${HUGE} (a.py:3)`));
    assert.ok(thread.stringTable.includes(`${MARKUP} (${CONTROL}.py:2)`));
    assert.ok(thread.stringTable.includes(`${CONTROL} (fake.py:9)`), 'a name without a file is its location as is');
    assert.ok(!json.includes('\u0000') && !json.includes('\n'), 'control characters are escaped in the JSON text');
  });
});
