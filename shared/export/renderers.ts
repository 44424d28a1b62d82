// The exporter behind each format of formats.ts. A Record over Format, so a
// format listed without a renderer does not compile.
import type { Profile } from '../profile/model.ts';
import type { ExportOptions } from './options.ts';
import type { Format } from './formats.ts';
import { exportChromeTrace } from './chrometrace.ts';
import { exportFlamegraph } from './flamegraph.ts';
import { exportRaw } from './raw.ts';
import { exportSpeedscope } from './speedscope.ts';

const RENDERERS: Readonly<Record<Format, (profile: Profile, options: ExportOptions) => string>> = {
  flamegraph: exportFlamegraph,
  speedscope: exportSpeedscope,
  raw: exportRaw,
  chrometrace: exportChromeTrace,
};

export function render(format: Format, profile: Profile, options: ExportOptions): string {
  return RENDERERS[format](profile, options);
}
