// Files Periscope wrote, read back into a Profile so they can be compared
// offline (`periscope diff`): collapsed stacks (`-f raw`, py-spy's format) and
// speedscope JSON (`-f speedscope`). Only what those files keep comes back:
// stacks, sample counts, threads and processes (by their root labels or
// profile names); not sample flags, so filters were applied when they were written.
import { PeriscopeError } from '../errors.ts';
import { ProfileBuilder } from '../profile/builder.ts';
import type { FrameInput } from '../profile/builder.ts';
import type { Profile } from '../profile/model.ts';
import { parseFrameLabel } from './frame-label.ts';
import { SPEEDSCOPE_SCHEMA, parseProfileName } from './speedscope.ts';
import { parseProcessLabel, parseThreadLabel } from '../profile/root-frames.ts';

function damaged(what: string, why: string): never {
  throw new PeriscopeError('BAD_ARGUMENT', `${what} is not a profile Periscope can read: ${why}; give a file written with -f raw or -f speedscope`);
}

function frameOf(label: string): FrameInput {
  const { name, file, line } = parseFrameLabel(label);
  return { name, file, line: line ?? 0 };
}


/** A collapsed file's counts become sample rows: bound them so a forged count cannot exhaust memory. */
const MAX_SAMPLES = 50_000_000;

function fromCollapsed(text: string, what: string): Profile {
  const b = new ProfileBuilder();
  const defaultThread = b.thread(0, 0);
  let time = 0;
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trimEnd();
    if (line === '') continue;
    const space = line.lastIndexOf(' ');
    const count = Number(line.slice(space + 1));
    if (space <= 0 || !Number.isSafeInteger(count) || count < 0) damaged(what, `line ${n + 1} does not end in a sample count`);
    if (time + count > MAX_SAMPLES) damaged(what, `it counts more than ${MAX_SAMPLES} samples`);
    const labels = line.slice(0, space).split(';');
    let pid = 0;
    let thread = defaultThread;
    // The root frames of shared/profile/root-frames.ts, read back.
    const process = parseProcessLabel(labels[0]);
    if (process) {
      pid = process.pid;
      b.process(pid, { commandLine: process.commandLine });
      labels.shift();
      thread = b.thread(pid, 0);
    }
    const threadRoot = labels.length > 0 ? parseThreadLabel(labels[0]) : null;
    if (threadRoot) {
      thread = b.thread(pid, threadRoot.tid, threadRoot.name);
      labels.shift();
    }
    const stack = b.internStack(labels.map(frameOf).reverse());
    for (let i = 0; i < count; i++) b.addSampleOfStack(thread, stack, time++, {});
  }
  return b.profile;
}

interface SpeedscopeLike {
  $schema: unknown;
  name?: unknown;
  shared?: { frames?: unknown };
  profiles?: unknown;
}

function fromSpeedscope(file: SpeedscopeLike, what: string): Profile {
  const frames = file.shared?.frames;
  if (!Array.isArray(frames) || !Array.isArray(file.profiles)) damaged(what, 'it has no shared frames or no profiles');
  const inputs: FrameInput[] = frames.map((f: unknown, i) => {
    const { name, file: source, line } = (f ?? {}) as { name?: unknown; file?: unknown; line?: unknown };
    if (typeof name !== 'string') damaged(what, `frame ${i} has no name`);
    return {
      name,
      file: typeof source === 'string' ? source : '',
      line: typeof line === 'number' && Number.isInteger(line) && line >= 0 ? line : 0,
    };
  });
  const b = new ProfileBuilder({ commandLine: typeof file.name === 'string' ? file.name : '' });
  const rows = inputs.map((f) => b.internFrame(f));
  (file.profiles as unknown[]).forEach((p, index) => {
    const { name, type, samples, weights } = (p ?? {}) as { name?: unknown; type?: unknown; samples?: unknown; weights?: unknown };
    if (type !== 'sampled' || !Array.isArray(samples) || !Array.isArray(weights)) damaged(what, `profile ${index} is not a sampled profile`);
    const named = typeof name === 'string' ? parseProfileName(name) : null;
    const thread = b.thread(named?.pid ?? 0, named ? named.tid : index, named?.name);
    let time = 0;
    samples.forEach((stack: unknown, i) => {
      const weight = Number(weights[i]);
      time += Number.isFinite(weight) && weight > 0 ? weight : 0;
      // Empty stacks are the gaps speedscope needs to line threads up in time.
      if (!Array.isArray(stack) || stack.length === 0) return;
      const leafFirst: number[] = [];
      for (let k = stack.length - 1; k >= 0; k--) {
        const f = stack[k];
        if (!(Number.isInteger(f) && f >= 0 && f < rows.length)) damaged(what, `profile ${index} sample ${i} names frame ${String(f)}, which is not in the file`);
        leafFirst.push(rows[f]);
      }
      b.addSampleOfStack(thread, b.internStackRows(leafFirst, leafFirst.length), time, {});
    });
  });
  return b.profile;
}

/** A profile from a file's text; `what` names the file in errors. */
export function profileFromExport(text: string, what: string): Profile {
  const start = text.trimStart();
  if (start.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(start);
    } catch (err) {
      damaged(what, `its JSON does not parse (${(err as Error).message})`);
    }
    if ((json as SpeedscopeLike | null)?.$schema !== SPEEDSCOPE_SCHEMA) damaged(what, 'it is JSON but not a speedscope file');
    return fromSpeedscope(json as SpeedscopeLike, what);
  }
  if (/^<(\?xml|svg|!doctype|html)/i.test(start)) damaged(what, 'it looks like an SVG or HTML file, which keeps only the drawing');
  return fromCollapsed(text, what);
}
