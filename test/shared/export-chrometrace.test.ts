import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { exportChromeTrace } from '../../shared/export/chrometrace.ts';
import { buildKnownProfile } from './fixtures.ts';

const profile = buildKnownProfile().profile;

function slices(trace: any): any[] {
  return trace.traceEvents.filter((e: any) => e.ph === 'X');
}

describe('exportChromeTrace', () => {
  const trace = JSON.parse(exportChromeTrace(profile));

  it('is a Trace Event Format object with valid complete events', () => {
    assert.ok(Array.isArray(trace.traceEvents));
    assert.equal(trace.displayTimeUnit, 'ms');
    for (const e of trace.traceEvents) {
      assert.ok(e.ph === 'X' || e.ph === 'M', `unexpected phase ${e.ph}`);
      assert.equal(typeof e.name, 'string');
      assert.ok(Number.isInteger(e.pid) && Number.isInteger(e.tid));
      if (e.ph === 'X') {
        assert.ok(Number.isFinite(e.ts));
        assert.ok(Number.isFinite(e.dur) && e.dur >= 0);
      }
    }
  });

  it('names processes and threads with metadata events', () => {
    const meta = trace.traceEvents.filter((e: any) => e.ph === 'M').map((e: any) => [e.name, e.pid, e.tid, e.args.name]);
    assert.deepEqual(meta, [
      ['process_name', 100, 0, 'python app.py'],
      ['thread_name', 100, 1, 'MainThread'],
      ['thread_name', 100, 2, 'worker'],
    ]);
  });

  it('merges consecutive samples sharing a stack prefix into one slice', () => {
    const spans = (name: string, tid: number): number[][] =>
      slices(trace)
        .filter((e) => e.name === name && e.tid === tid)
        .map((e) => [e.ts, e.dur]);
    // <module> runs 0-50 ms, is absent during the idle sample, and runs again at 60 ms.
    assert.deepEqual(spans('<module>', 1), [
      [0, 50_000],
      [60_000, 10_000],
    ]);
    assert.deepEqual(spans('work', 1), [
      [0, 30_000],
      [30_000, 10_000],
      [40_000, 10_000],
    ]);
    assert.deepEqual(spans('loop', 2), [[0, 20_000]]);
  });

  it('nests slices properly within each thread', () => {
    const byThread = new Map<number, any[]>();
    for (const e of slices(trace)) byThread.set(e.tid, [...(byThread.get(e.tid) ?? []), e]);
    for (const events of byThread.values()) {
      for (const a of events) {
        for (const b of events) {
          const disjoint = a.ts + a.dur <= b.ts || b.ts + b.dur <= a.ts;
          const nested = (a.ts <= b.ts && b.ts + b.dur <= a.ts + a.dur) || (b.ts <= a.ts && a.ts + a.dur <= b.ts + b.dur);
          assert.ok(disjoint || nested, `${a.name}@${a.ts} overlaps ${b.name}@${b.ts}`);
        }
      }
    }
  });

  it('merges a function across lines when aggregating by function', () => {
    const work = slices(JSON.parse(exportChromeTrace(profile, { function: true }))).filter((e) => e.name === 'work');
    assert.deepEqual(
      work.map((e) => [e.ts, e.dur]),
      [[0, 50_000]],
    );
  });
});
