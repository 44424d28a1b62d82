// pprof export read back with an independent decoder (pprof-format, Datadog's
// maintained pure-JS profile.proto codec): structure, sample totals, the
// leaf-first location chains of the known profile, labels, and the view options.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { Profile as PprofProfile } from 'pprof-format';
import { exportPprof, pprofProto } from '../../shared/export/pprof.ts';
import { render } from '../../shared/export/renderers.ts';
import type { ExportOptions } from '../../shared/export/options.ts';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import type { Profile } from '../../shared/profile/model.ts';
import { selectSamples } from '../../shared/profile/sample-filter.ts';
import { KNOWN_THREADS, PERIOD_US, buildKnownProfile, f } from './fixtures.ts';

const num = (v: number | bigint): number => Number(v);

interface Decoded {
  pb: PprofProfile;
  str: (i: number | bigint) => string;
  /** Each sample as its leaf-first `name (file:line)` chain, count, time value and labels. */
  samples: { stack: string[]; count: number; time: number; labels: Record<string, string> }[];
}

/** Decodes and checks every reference the format requires to resolve. */
function decode(bytes: Uint8Array): Decoded {
  assert.deepEqual([bytes[0], bytes[1]], [0x1f, 0x8b], 'gzipped');
  const pb = PprofProfile.decode(gunzipSync(bytes));
  const strings = pb.stringTable.strings;
  assert.equal(strings[0], '', 'string_table[0] is ""');
  const str = (i: number | bigint): string => {
    const s = strings[num(i)];
    assert.ok(s !== undefined, `string index ${i} in range`);
    return s;
  };
  const functions = new Map(pb.function.map((fn) => [num(fn.id), fn]));
  const mappings = new Map(pb.mapping.map((m) => [num(m.id), m]));
  const locations = new Map(pb.location.map((l) => [num(l.id), l]));
  assert.equal(functions.size, pb.function.length, 'function ids unique');
  assert.equal(locations.size, pb.location.length, 'location ids unique');
  for (const id of [...functions.keys(), ...locations.keys(), ...mappings.keys()]) assert.ok(id > 0, 'ids are nonzero');
  for (const m of pb.mapping) assert.ok(m.hasFunctions && m.hasFilenames, 'the mapping says its locations are symbolized');
  const frameText = (locationId: number): string => {
    const location = locations.get(locationId);
    assert.ok(location, `location ${locationId} exists`);
    assert.ok(mappings.has(num(location.mappingId)), 'location mapping exists');
    assert.equal(location.line.length, 1);
    const fn = functions.get(num(location.line[0].functionId));
    assert.ok(fn, 'function exists');
    const [name, file, line] = [str(fn.name), str(fn.filename), num(location.line[0].line)];
    return file ? `${name} (${file}${line ? `:${line}` : ''})` : name;
  };
  const samples = pb.sample.map((s) => {
    assert.equal(s.value.length, pb.sampleType.length, 'one value per sample type');
    const labels: Record<string, string> = {};
    for (const l of s.label) labels[str(l.key)] = str(l.str);
    return { stack: s.locationId.map((id) => frameText(num(id))), count: num(s.value[0]), time: num(s.value[1]), labels };
  });
  return { pb, str, samples };
}

const pprofOf = (profile: Profile, options: ExportOptions = {}): Decoded => decode(exportPprof(profile, options));

/** "stack;…|thread_name" → count, for comparing regardless of sample order. */
function countsByStack(d: Decoded): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of d.samples) {
    const key = `${s.labels.thread_name}|${s.stack.join(';')}`;
    out.set(key, (out.get(key) ?? 0) + s.count);
  }
  return out;
}

const MODULE = '<module> (app.py:30)';
const MAIN20 = 'main (app.py:20)';

describe('exportPprof', () => {
  const profile = buildKnownProfile().profile;
  const d = pprofOf(profile);

  it('declares sample and period types, period, times and the command line', () => {
    const vt = (v: { type: number | bigint; unit: number | bigint }) => `${d.str(v.type)}/${d.str(v.unit)}`;
    assert.deepEqual(d.pb.sampleType.map(vt), ['samples/count', 'cpu/nanoseconds']);
    assert.equal(vt(d.pb.periodType!), 'cpu/nanoseconds');
    assert.equal(num(d.pb.period), PERIOD_US * 1000);
    assert.equal(d.str(d.pb.defaultSampleType), 'cpu');
    assert.equal(BigInt(d.pb.timeNanos), 1_700_000_000_000_000_000n, 'capture start, exact in ns');
    assert.equal(num(d.pb.durationNanos), 100_000_000);
    assert.deepEqual(d.pb.comment.map(d.str), ['python app.py']);
  });

  it('counts exactly the selected samples, each worth one period', () => {
    const total = d.samples.reduce((a, s) => a + s.count, 0);
    assert.equal(total, selectSamples(profile).length);
    assert.equal(total, 8, 'the idle sample is left out');
    for (const s of d.samples) assert.equal(s.time, s.count * PERIOD_US * 1000);
  });

  it('resolves each sample leaf first to names, files and lines', () => {
    assert.deepEqual(
      countsByStack(d),
      new Map([
        [`MainThread|work (app.py:10);${MAIN20};${MODULE}`, 3],
        [`MainThread|work (app.py:11);${MAIN20};${MODULE}`, 1],
        [`MainThread|helper (lib.py:5);work (app.py:10);${MAIN20};${MODULE}`, 1],
        [`MainThread|recurse (r.py:1);recurse (r.py:2);main (app.py:21);${MODULE}`, 1],
        ['worker|loop (w.py:3);run (w.py:1)', 2],
      ]),
    );
  });

  it('interns one function per name and file, one location per line', () => {
    const names = d.pb.function.map((fn) => `${d.str(fn.name)} ${d.str(fn.filename)}`);
    assert.equal(new Set(names).size, names.length);
    assert.equal(names.filter((n) => n === 'work app.py').length, 1);
    assert.equal(d.pb.location.length, 10, 'work:10, work:11, main:20, main:21, <module>, helper, recurse:1, recurse:2, loop, run');
  });

  it('labels samples with the thread id and name, and no pid for one process', () => {
    const main = d.samples.filter((s) => s.labels.thread_name === 'MainThread');
    assert.ok(main.length > 0);
    for (const s of main) assert.deepEqual(s.labels, { thread_id: '1', thread_name: 'MainThread' });
    for (const s of d.samples.filter((x) => x.labels.thread_name === 'worker')) assert.equal(s.labels.thread_id, '2');
  });

  it('is what the registry renders for pprof, as bytes', () => {
    const body = render('pprof', profile, {});
    assert.ok(body instanceof Uint8Array);
    assert.deepEqual(body, exportPprof(profile, {}));
    assert.deepEqual(new Uint8Array(gunzipSync(body)), pprofProto(profile, {}));
  });
});

describe('exportPprof view options', () => {
  const profile = buildKnownProfile().profile;

  it('idle: includes idle samples, as wall time', () => {
    const d = pprofOf(profile, { idle: true });
    assert.equal(d.str(d.pb.sampleType[1].type), 'wall');
    assert.equal(d.str(d.pb.periodType!.type), 'wall');
    assert.equal(d.samples.reduce((a, s) => a + s.count, 0), 9);
    assert.equal(countsByStack(d).get(`MainThread|sleep (time.py:1);${MAIN20};${MODULE}`), 1);
  });

  it('gil: only samples holding the GIL', () => {
    const d = pprofOf(profile, { gil: true });
    assert.equal(d.samples.reduce((a, s) => a + s.count, 0), selectSamples(profile, { gil: true }).length);
    assert.ok(![...countsByStack(d).keys()].some((k) => k.includes('helper')));
  });

  it('function: one location per function at its lowest line, stacks merged', () => {
    const d = pprofOf(profile, { function: true });
    assert.deepEqual(
      countsByStack(d),
      new Map([
        [`MainThread|work (app.py:10);${MAIN20};${MODULE}`, 4],
        [`MainThread|helper (lib.py:5);work (app.py:10);${MAIN20};${MODULE}`, 1],
        [`MainThread|recurse (r.py:1);recurse (r.py:1);${MAIN20};${MODULE}`, 1],
        ['worker|loop (w.py:3);run (w.py:1)', 2],
      ]),
    );
    assert.equal(d.pb.location.length, d.pb.function.length);
  });

  it('nolineno: no line numbers at all', () => {
    const d = pprofOf(profile, { nolineno: true });
    for (const l of d.pb.location) assert.equal(num(l.line[0].line), 0);
    assert.equal(countsByStack(d).get('MainThread|work (app.py);main (app.py);<module> (app.py)'), 4);
  });

  it('threadRows: only the chosen threads', () => {
    const d = pprofOf(profile, { threadRows: [KNOWN_THREADS.worker] });
    assert.deepEqual(countsByStack(d), new Map([['worker|loop (w.py:3);run (w.py:1)', 2]]));
  });

  it('threads: a thread root frame above each stack, outermost last', () => {
    const d = pprofOf(profile, { threads: true });
    for (const s of d.samples) assert.equal(s.stack.at(-1), s.labels.thread_name === 'worker' ? 'thread (worker) 2' : 'thread (MainThread) 1');
  });

  it('several processes: pid labels and process root frames', () => {
    const b = buildKnownProfile();
    b.process(200, { commandLine: 'python child.py' });
    b.addSample({ thread: b.thread(200, 7, 'child-main'), timeUs: 5_000, framesLeafFirst: [f('c', 'c.py', 1)] });
    const d = pprofOf(b.profile);
    const child = d.samples.find((s) => s.labels.thread_name === 'child-main')!;
    assert.deepEqual(child.labels, { pid: '200', thread_id: '7', thread_name: 'child-main' });
    assert.deepEqual(child.stack, ['c (c.py:1)', 'process 200: "python child.py"']);
    for (const s of d.samples.filter((x) => x !== child)) {
      assert.equal(s.labels.pid, '100');
      assert.equal(s.stack.at(-1), 'process 100: "python app.py"');
    }
  });

  it('no samples: a valid, empty profile', () => {
    const empty = new ProfileBuilder();
    empty.updateCapture({ commandLine: '', rateHz: 0, startTimeUs: 0, durationUs: 0 });
    const d = pprofOf(empty.profile);
    assert.equal(d.pb.sample.length, 0);
    assert.equal(num(d.pb.period), 10_000_000, "py-spy's 100 Hz when the rate is unknown");
    assert.equal(num(d.pb.timeNanos), 0);
    assert.equal(d.pb.comment.length, 0);
  });
});

describe('exportPprof with hostile strings', () => {
  const HUGE = 'x'.repeat(200_000);
  const CONTROL = 'ctl\u0000\u0001\u001b[31m\r\n\t\u007f';
  const MARKUP = '<script>alert(1)</script>';
  const UNICODE = 'naïve_函数_🔥';
  const BIG_TID = 2 ** 47 + 12345;
  const b = new ProfileBuilder();
  b.updateCapture({ commandLine: `python -c "${MARKUP}"`, rateHz: 250, startTimeUs: 1_234_567_890_123_456, durationUs: 1_000 });
  b.process(1, { commandLine: `python -c "${MARKUP}"` });
  const t = b.thread(1, BIG_TID, CONTROL);
  b.addSample({ thread: t, timeUs: 0, framesLeafFirst: [f(HUGE, CONTROL, 7), f(MARKUP, `${UNICODE}.py`, 2), f(UNICODE, '', 0)] });
  b.addSample({ thread: t, timeUs: 4_000, framesLeafFirst: [f('lone\ud800surrogate', 'x.py', 1)] });
  const d = pprofOf(b.profile);

  it('keeps them as data, exactly (a lone surrogate becomes U+FFFD in UTF-8)', () => {
    assert.deepEqual(d.samples[0].stack, [`${HUGE} (${CONTROL}:7)`, `${MARKUP} (${UNICODE}.py:2)`, UNICODE]);
    assert.deepEqual(d.samples[1].stack, ['lone\ufffdsurrogate (x.py:1)']);
    assert.deepEqual(d.samples[0].labels, { thread_id: String(BIG_TID), thread_name: CONTROL });
    assert.deepEqual(d.pb.comment.map(d.str), [`python -c "${MARKUP}"`]);
    assert.equal(num(d.pb.period), 4_000_000);
    assert.equal(BigInt(d.pb.timeNanos), 1_234_567_890_123_456_000n);
  });
});
