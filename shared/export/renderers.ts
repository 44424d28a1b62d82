// The exporter behind each format of formats.ts. A Record over Format, so a
// format listed without a renderer does not compile. Text formats render to a
// string; binary ones (pprof) to bytes, which writeFileSync and HTTP bodies take as they are.
import type { Profile } from '../profile/model.ts';
import type { ExportOptions } from './options.ts';
import type { Format } from './formats.ts';
import { exportChromeTrace } from './chrometrace.ts';
import { exportFlamegraph } from './flamegraph.ts';
import { exportGecko } from './gecko.ts';
import { exportPprof } from './pprof.ts';
import { exportRaw } from './raw.ts';
import { exportSpeedscope } from './speedscope.ts';

export type Rendered = string | Uint8Array;

const RENDERERS: Readonly<Record<Format, (profile: Profile, options: ExportOptions) => Rendered>> = {
  flamegraph: exportFlamegraph,
  speedscope: exportSpeedscope,
  raw: exportRaw,
  chrometrace: exportChromeTrace,
  pprof: exportPprof,
  gecko: exportGecko,
};

export function render(format: Format, profile: Profile, options: ExportOptions): Rendered {
  return RENDERERS[format](profile, options);
}
