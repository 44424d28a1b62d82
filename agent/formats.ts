// Output formats of `record` (and of downloads): name, file extension, and
// the exporter from the shared model that renders each.
import { exportChromeTrace, exportFlamegraph, exportRaw, exportSpeedscope, type ExportOptions } from '../shared/export/index.ts';
import type { Profile } from '../shared/profile/index.ts';
import { PeriscopeError } from '../shared/errors.ts';

export const FORMATS = ['flamegraph', 'speedscope', 'raw', 'chrometrace'] as const;
export type Format = (typeof FORMATS)[number];

export const FORMAT_EXTENSION: Record<Format, string> = {
  flamegraph: 'svg',
  speedscope: 'speedscope.json',
  raw: 'txt',
  chrometrace: 'trace.json',
};

export function parseFormat(value: unknown): Format {
  if (typeof value === 'string' && (FORMATS as readonly string[]).includes(value)) return value as Format;
  throw new PeriscopeError('BAD_ARGUMENT', `--format must be one of ${FORMATS.join(', ')}; got ${JSON.stringify(value)}`);
}

export function render(format: Format, profile: Profile, options: ExportOptions): string {
  switch (format) {
    case 'flamegraph':
      return exportFlamegraph(profile, options);
    case 'speedscope':
      return exportSpeedscope(profile, options);
    case 'raw':
      return exportRaw(profile, options);
    case 'chrometrace':
      return exportChromeTrace(profile, options);
  }
}

/** `python3-2026-11-21T05-30-00.svg` from the target's command line and the start time. */
export function defaultOutputName(commandLine: string, format: Format, start = new Date()): string {
  const words = commandLine.split(' ').filter(Boolean);
  // "python3 app.py" names the script, not the interpreter.
  const script = words.slice(1).find((w) => !w.startsWith('-')) ?? words[0] ?? 'profile';
  const base = script.split('/').pop()!.replace(/\.py$/, '').replace(/[^A-Za-z0-9._-]+/g, '_') || 'profile';
  const stamp = start.toISOString().slice(0, 19).replace(/:/g, '-');
  return `${base}-${stamp}.${FORMAT_EXTENSION[format]}`;
}
