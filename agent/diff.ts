// `periscope diff BASELINE CURRENT`: a differential flame graph of two files
// Periscope wrote (-f raw or -f speedscope), offline, like CPython 3.15's
// profiler's --diff-flamegraph. Widths from CURRENT, colour by the change in share.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { PeriscopeError } from '../shared/errors.ts';
import { exportDiffFlamegraph } from '../shared/export/diff-flamegraph.ts';
import { inertText } from '../shared/export/inert-text.ts';
import { profileFromExport } from '../shared/export/read-back.ts';
import type { Profile } from '../shared/profile/model.ts';
import { parseArgs, usage, type OptionSpec } from './args.ts';
import { writeOutput } from './output-file.ts';

const diffSpecs: OptionSpec[] = [
  { name: 'output', short: 'o', type: 'string', description: 'output SVG file', default: 'diff.svg' },
  { name: 'function', short: 'F', type: 'boolean', description: 'compare by function instead of by line' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
];

/** Bigger inputs than any file Periscope writes are refused before reading. */
const MAX_INPUT_BYTES = 1 << 30;

function readProfile(path: string): Profile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PeriscopeError('BAD_ARGUMENT', `cannot read ${JSON.stringify(path)} (${code ?? (err as Error).message}); give the path of a file written with -f raw or -f speedscope`);
  }
  if (text.length > MAX_INPUT_BYTES) throw new PeriscopeError('BAD_ARGUMENT', `${JSON.stringify(path)} is larger than any profile Periscope writes`);
  return profileFromExport(text, JSON.stringify(path));
}

export function runDiff(argv: string[]): number {
  const { options, positional } = parseArgs(argv, diffSpecs, true);
  if (options.help) {
    console.log(
      usage(
        'diff BASELINE CURRENT [-o diff.svg]',
        'Compares two profiles written with -f raw or -f speedscope: a flame graph of CURRENT coloured by the change since BASELINE (red grew, blue shrank).',
        diffSpecs,
      ),
    );
    return 0;
  }
  if (positional.length !== 2) {
    throw new PeriscopeError('BAD_ARGUMENT', `diff takes two files, BASELINE and CURRENT; got ${positional.length}`);
  }
  const [baselinePath, currentPath] = positional;
  const svg = exportDiffFlamegraph(
    readProfile(baselinePath),
    readProfile(currentPath),
    { baseline: basename(baselinePath), current: basename(currentPath) },
    { function: options.function === true },
  );
  const written = writeOutput(String(options.output), svg);
  console.error(`Wrote the comparison of ${inertText(baselinePath)} and ${inertText(currentPath)} to ${inertText(written)}`);
  return 0;
}
