// The browser's incremental flame graph model against shared/profile's callTree
// (the tree behind the raw and SVG exports): same boxes, same counts, whatever
// the options and however the samples are split into ingest() batches.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { callTree, type CallTreeNode } from '../../shared/profile/call-tree.ts';
import type { Profile } from '../../shared/profile/model.ts';
import { FlameModel, FlameSearch, type FlameOptions } from '../../web/src/flame/flame-model.ts';

/** Deterministic PRNG so a failure reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function synthetic(seed: number, samples: number, processes = 1): Profile {
  const r = rng(seed);
  const b = new ProfileBuilder({ rateHz: 100 });
  const threads: number[] = [];
  for (let p = 0; p < processes; p++) {
    b.process(100 + p, { commandLine: `python app${p}.py` });
    for (let t = 0; t < 3; t++) threads.push(b.thread(100 + p, 1000 + p * 10 + t, t === 0 ? 'MainThread' : `worker-${t}`));
  }
  const fns = ['main', 'handle', 'query', 'render', 'parse', 'loads', 'recurse', 'sleep'];
  for (let i = 0; i < samples; i++) {
    const depth = 1 + Math.floor(r() * 7);
    const frames = [];
    for (let d = 0; d < depth; d++) {
      const name = fns[Math.floor(r() * fns.length)];
      frames.push({ name, file: `/app/${name}.py`, line: 10 + Math.floor(r() * 3) });
    }
    const empty = r() < 0.03;
    b.addSample({ thread: threads[Math.floor(r() * threads.length)], framesLeafFirst: empty ? [] : frames, timeUs: i * 10_000, idle: r() < 0.2, gil: r() < 0.5 });
  }
  return b.profile;
}

interface Plain {
  label: string;
  self: number;
  total: number;
  children: Plain[];
}

function fromCallTree(node: CallTreeNode): Plain {
  const label = node.kind === 'frame' ? `${node.name} (${node.file}${node.line === null ? '' : `:${node.line}`})` : node.name;
  return { label, self: node.self, total: node.total, children: node.children.map(fromCallTree) };
}

function fromModel(m: FlameModel, n = 0): Plain {
  return { label: m.label(n), self: m.self[n], total: m.total[n], children: m.sortedChildren(n).map((c) => fromModel(m, c)) };
}

const OPTION_SETS: FlameOptions[] = [
  { idle: false, gil: false, function: false, threads: false },
  { idle: true, gil: false, function: false, threads: false },
  { idle: false, gil: true, function: true, threads: false },
  { idle: true, gil: false, function: false, threads: true },
  { idle: true, gil: false, function: true, threads: false, threadRows: [1, 2] },
];

test('flame model equals callTree for every option set, ingested in one go or in small batches', () => {
  for (const processes of [1, 2]) {
    const profile = synthetic(7 + processes, 3000, processes);
    for (const o of OPTION_SETS) {
      const expected = fromCallTree(callTree(profile, { idle: o.idle, gil: o.gil, function: o.function, threads: o.threads, threadRows: o.threadRows }));
      const whole = new FlameModel(profile, o);
      whole.ingest();
      assert.deepEqual(fromModel(whole), expected, `whole, ${processes} process(es), ${JSON.stringify(o)}`);
      const batched = new FlameModel(profile, o);
      while (batched.backlog > 0) batched.ingest(97);
      assert.deepEqual(fromModel(batched), expected, `batched, ${processes} process(es), ${JSON.stringify(o)}`);
    }
  }
});

test('flame model follows a growing profile, and rebuilds with process roots when a second process appears', () => {
  const full = synthetic(42, 4000, 2);
  // Replay the full profile's samples into a growing one, checking as it goes.
  const growing = new ProfileBuilder({ rateHz: 100 });
  const model = new FlameModel(growing.profile, { idle: false, gil: false, function: false, threads: false });
  const p = full;
  // Single-process samples first, then mixed, to force the rebuild.
  const order = [...p.samples.stack.keys()].sort((a, b) => p.threads.pid[p.samples.thread[a]] - p.threads.pid[p.samples.thread[b]] || a - b);
  let checks = 0;
  let rebuilt = false;
  for (let k = 0; k < order.length; k++) {
    const i = order[k];
    const t = p.samples.thread[i];
    const pid = p.threads.pid[t];
    growing.process(pid, { commandLine: `python app${pid - 100}.py` });
    const thread = growing.thread(pid, p.threads.tid[t], p.strings[p.threads.name[t]]);
    const frames = [];
    for (let s = p.samples.stack[i]; s !== -1; s = p.stacks.prefix[s]) {
      const f = p.stacks.frame[s];
      frames.push({ name: p.strings[p.frames.name[f]], file: p.strings[p.frames.file[f]], line: p.frames.line[f] });
    }
    growing.addSample({ thread, framesLeafFirst: frames, timeUs: p.samples.timeUs[i], idle: (p.samples.flags[i] & 1) !== 0, gil: (p.samples.flags[i] & 2) !== 0 });
    if (k % 500 === 499 || k === order.length - 1) {
      if (!model.ingest()) rebuilt = true;
      assert.deepEqual(fromModel(model), fromCallTree(callTree(growing.profile, {})), `after ${k + 1} samples`);
      checks++;
    }
  }
  assert.ok(rebuilt && model.multiProcess, 'the second process turned on process roots');
  assert.ok(checks >= 8);
});

test('search matches names and files and counts nested matches once', () => {
  const b = new ProfileBuilder({ rateHz: 100 });
  const t = b.thread(1, 1);
  const f = (name: string) => ({ name, file: `/src/${name}.py`, line: 1 });
  for (let i = 0; i < 6; i++) b.addSample({ thread: t, framesLeafFirst: [f('leaf'), f('recurse'), f('recurse'), f('main')], timeUs: i });
  for (let i = 0; i < 4; i++) b.addSample({ thread: t, framesLeafFirst: [f('other'), f('main')], timeUs: i });
  const m = new FlameModel(b.profile, { idle: false, gil: false, function: false, threads: false });
  m.ingest();
  assert.equal(new FlameSearch('recurse').matchedSamples(m, 0), 6);
  assert.equal(new FlameSearch('RECURSE').matchedSamples(m, 0), 6);
  assert.equal(new FlameSearch('/src/').matchedSamples(m, 0), 10);
  assert.equal(new FlameSearch('all').matchedSamples(m, 0), 0, 'the root is not a match');
  assert.equal(new FlameSearch('').matchedSamples(m, 0), 0);
});
