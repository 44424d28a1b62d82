// The output formats of `record` and of downloads, as data: the CLI (usage, -f,
// default file name), the relay (download route, Content-Type, file name) and
// the web (download links) all read this list. Rendering lives beside it in
// renderers.ts, kept apart so the web bundle does not carry the exporters.
// Adding a format: an entry here, its renderer there (the compiler asks for
// it), and a test of its output.

export interface FormatInfo {
  /** File name ending, without the dot. */
  extension: string;
  /** Content-Type of a download. Text formats render to a string, binary ones (no charset) to bytes. */
  mime: string;
  /** Short name on the web's download links ("Download SVG"). */
  label: string;
}

/** In the order the CLI's help and the web's links list them. */
export const FORMATS = {
  flamegraph: { extension: 'svg', mime: 'image/svg+xml; charset=utf-8', label: 'SVG' },
  speedscope: { extension: 'speedscope.json', mime: 'application/json; charset=utf-8', label: 'speedscope' },
  raw: { extension: 'txt', mime: 'text/plain; charset=utf-8', label: 'raw' },
  chrometrace: { extension: 'trace.json', mime: 'application/json; charset=utf-8', label: 'Chrome trace' },
  /** Gzipped profile.proto: binary, for `go tool pprof`, Pyroscope and Grafana. */
  pprof: { extension: 'pb.gz', mime: 'application/octet-stream', label: 'pprof' },
  /** Gecko profile JSON, which the Firefox Profiler (profiler.firefox.com) opens. */
  gecko: { extension: 'gecko.json', mime: 'application/json; charset=utf-8', label: 'Gecko profile' },
} as const satisfies Record<string, FormatInfo>;

export type Format = keyof typeof FORMATS;
export const FORMAT_NAMES = Object.keys(FORMATS) as readonly Format[];

export const DEFAULT_FORMAT: Format = 'flamegraph';

export function isFormat(value: unknown): value is Format {
  return typeof value === 'string' && (FORMAT_NAMES as readonly string[]).includes(value);
}

/** `python3-2026-11-21T05-30-00.svg` from the target's command line and the start time. */
export function outputFileName(commandLine: string, format: Format, start = new Date()): string {
  const words = commandLine.split(' ').filter(Boolean);
  // "python3 app.py" names the script, not the interpreter.
  const script = words.slice(1).find((w) => !w.startsWith('-')) ?? words[0] ?? 'profile';
  const base = script.split('/').pop()!.replace(/\.py$/, '').replace(/[^A-Za-z0-9._-]+/g, '_') || 'profile';
  const stamp = start.toISOString().slice(0, 19).replace(/:/g, '-');
  return `${base}-${stamp}.${FORMATS[format].extension}`;
}
