// shared/profile's CallTree — the one tree behind the browser's flame graph and
// the raw and SVG exports — against a reference written here from the rules'
// definitions (py-spy's filters, the lowest-line rule, process and thread roots),
// whatever the options and however the samples are split into ingest() batches.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProfileBuilder } from '../../shared/profile/builder.ts';
import { CallTree, type CallTreeOptions, callTree, type CallTreeNode } from '../../shared/profile/call-tree.ts';
import { childrenShareCommandLine } from '../../shared/profile/root-frames.ts';
import { NONE, type Profile, SampleFlag } from '../../shared/profile/model.ts';

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

function fromModel(m: CallTree, n = 0): Plain {
  return { label: m.label(n), self: m.self[n], total: m.total[n], children: m.sortedChildren(n).map((c) => fromModel(m, c)) };
}

/**
 * The expected tree, straight from the definitions: each sample that passes the
 * filters adds one to the node at its path of labels (process root when the
 * kept samples span processes, thread root with `threads`, then frames root
 * first; by function, a frame shows the lowest line of its function in the
 * frame table).
 */
function reference(p: Profile, o: CallTreeOptions): Plain {
  const s = (i: number) => p.strings[i];
  const lowest = new Map<string, number>();
  for (let f = 0; f < p.frames.name.length; f++) {
    const key = `${s(p.frames.name[f])} (${s(p.frames.file[f])}`;
    const line = p.frames.line[f];
    if (line !== 0 && (!lowest.has(key) || line < lowest.get(key)!)) lowest.set(key, line);
  }
  const kept: number[] = [];
  for (let i = 0; i < p.samples.stack.length; i++) {
    if (p.samples.stack[i] === NONE) continue;
    if (!o.idle && p.samples.flags[i] & SampleFlag.Idle) continue;
    if (o.gil && !(p.samples.flags[i] & SampleFlag.Gil)) continue;
    if (o.threadRows && !o.threadRows.includes(p.samples.thread[i])) continue;
    kept.push(i);
  }
  const pids = new Set(kept.map((i) => p.threads.pid[p.samples.thread[i]]));
  const root: Plain = { label: 'all', self: 0, total: 0, children: [] };
  for (const i of kept) {
    const t = p.samples.thread[i];
    const path: string[] = [];
    if (pids.size > 1 && !(o.mergeProcesses ?? childrenShareCommandLine(p))) path.push(`process ${p.threads.pid[t]}: "${s(p.processes.commandLine[p.processes.pid.indexOf(p.threads.pid[t])])}"`);
    if (o.threads) path.push(`thread (${s(p.threads.name[t])}) ${p.threads.tid[t]}`);
    const frames: string[] = [];
    for (let st = p.samples.stack[i]; st !== NONE; st = p.stacks.prefix[st]) {
      const f = p.stacks.frame[st];
      const key = `${s(p.frames.name[f])} (${s(p.frames.file[f])}`;
      const line = o.function ? (lowest.get(key) ?? 0) : p.frames.line[f];
      frames.push(line === 0 ? `${key})` : `${key}:${line})`);
    }
    path.push(...frames.reverse());
    let node = root;
    node.total++;
    for (const label of path) {
      let child = node.children.find((c) => c.label === label);
      if (!child) node.children.push((child = { label, self: 0, total: 0, children: [] }));
      child.total++;
      node = child;
    }
    node.self++;
  }
  const sort = (n: Plain): Plain => ({ ...n, children: n.children.sort((a, b) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0)).map(sort) });
  return sort(root);
}

const OPTION_SETS: CallTreeOptions[] = [
  { idle: false, gil: false, function: false, threads: false },
  { idle: true, gil: false, function: false, threads: false },
  { idle: false, gil: true, function: true, threads: false },
  { idle: true, gil: false, function: false, threads: true },
  { idle: true, gil: false, function: true, threads: false, threadRows: [1, 2] },
  { idle: true, gil: false, function: false, threads: true, mergeProcesses: true },
  { idle: false, gil: false, function: true, threads: false, mergeProcesses: true },
];

test('the call tree equals the reference for every option set, ingested in one go or in small batches, and as plain nodes', () => {
  for (const processes of [1, 2]) {
    const profile = synthetic(7 + processes, 3000, processes);
    for (const o of OPTION_SETS) {
      const expected = reference(profile, o);
      assert.deepEqual(fromCallTree(callTree(profile, o)), expected, `plain nodes, ${processes} process(es), ${JSON.stringify(o)}`);
      const whole = new CallTree(profile, o);
      whole.ingest();
      assert.deepEqual(fromModel(whole), expected, `whole, ${processes} process(es), ${JSON.stringify(o)}`);
      const batched = new CallTree(profile, o);
      while (batched.backlog > 0) batched.ingest(97);
      assert.deepEqual(fromModel(batched), expected, `batched, ${processes} process(es), ${JSON.stringify(o)}`);
    }
  }
});

test('the call tree follows a growing profile, and rebuilds with process roots when a second process appears', () => {
  const full = synthetic(42, 4000, 2);
  // Replay the full profile's samples into a growing one, checking as it goes.
  const growing = new ProfileBuilder({ rateHz: 100 });
  const model = new CallTree(growing.profile, { idle: false, gil: false, function: false, threads: false });
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
      assert.deepEqual(fromModel(model), reference(growing.profile, {}), `after ${k + 1} samples`);
      checks++;
    }
  }
  assert.ok(rebuilt && model.multiProcess, 'the second process turned on process roots');
  assert.ok(checks >= 8);
});

test('fork-per-job children sharing a command line merge into one tree by default; a child with its own command line brings process roots back', () => {
  const b = new ProfileBuilder({ rateHz: 100 });
  const job = [{ name: 'configure_mappers', file: '/app/orm.py', line: 5 }, { name: 'perform_job', file: '/app/worker.py', line: 9 }];
  b.process(1, { commandLine: 'rq worker' });
  b.addSample({ thread: b.thread(1, 1), framesLeafFirst: [{ name: 'work', file: '/app/worker.py', line: 3 }], timeUs: 0 });
  for (let child = 2; child <= 4; child++) {
    b.process(child, { commandLine: 'rq worker' });
    b.addSample({ thread: b.thread(child, child), framesLeafFirst: job, timeUs: child });
  }
  assert.equal(childrenShareCommandLine(b.profile), true);
  const live = new CallTree(b.profile);
  assert.equal(live.ingest(), true, 'no rebuild: the children merge');
  assert.equal(live.processRoots, false);
  const merged = fromModel(live);
  assert.deepEqual(
    merged.children.map((c) => [c.label, c.total]),
    [
      ['perform_job (/app/worker.py:9)', 3],
      ['work (/app/worker.py:3)', 1],
    ],
  );
  assert.deepEqual(fromCallTree(callTree(b.profile)), merged, 'the exporters merge alike');
  const perProcess = callTree(b.profile, { mergeProcesses: false });
  assert.deepEqual(perProcess.children.map((c) => c.name), ['process 1: "rq worker"', 'process 2: "rq worker"', 'process 3: "rq worker"', 'process 4: "rq worker"']);

  b.process(5, { commandLine: 'python other.py' });
  b.addSample({ thread: b.thread(5, 5), framesLeafFirst: job, timeUs: 9 });
  assert.equal(childrenShareCommandLine(b.profile), false);
  assert.equal(live.ingest(), false, 'rebuilt with process roots');
  assert.equal(live.processRoots, true);
  assert.deepEqual(fromModel(live), reference(b.profile, {}));
  assert.equal(fromModel(live).children.length, 5);
});

test('one child with a command line of its own keeps its process root', () => {
  const b = new ProfileBuilder();
  b.process(1, { commandLine: 'gunicorn: master' });
  b.process(2, { commandLine: 'python job.py' });
  assert.equal(childrenShareCommandLine(b.profile), false);
  b.process(3, { commandLine: 'python job.py' });
  assert.equal(childrenShareCommandLine(b.profile), true, 'two children alike: merged');
});
