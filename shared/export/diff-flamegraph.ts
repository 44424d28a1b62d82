// A differential flame graph: the current capture's boxes (widths from it),
// coloured by how each box's share of its capture changed since the baseline —
// red grew, blue shrank, the deeper the colour the larger the change — with
// both shares and the change in every tooltip. Self-contained like the
// capture's own SVG.
import { type BaselineMatch, type DiffNode, diffCallTrees, diffColour, shareChange, signedPoints } from '../profile/call-tree-diff.ts';
import type { Profile } from '../profile/model.ts';
import { type FlameStyle, flameSvg } from './flamegraph.ts';
import type { ExportOptions } from './options.ts';

function diffStyle(match: BaselineMatch): FlameStyle<DiffNode> {
  return {
    colour(node) {
      if (node.kind === 'root') return 'rgb(200,200,200)';
      return diffColour(shareChange(match, node.baseline, node.total).delta);
    },
    details(node) {
      const { before, after, delta } = shareChange(match, node.baseline, node.total);
      const isNew = node.baseline === 0 && node.kind !== 'root' ? ' (new)' : '';
      return `before ${before.toFixed(2)}% · after ${after.toFixed(2)}% · ${signedPoints(delta)} points${isNew}\n${node.baseline} → ${node.total} samples`;
    },
  };
}

/** Names for the title: the files or captures compared. */
export interface DiffLabels {
  baseline: string;
  current: string;
}

export function exportDiffFlamegraph(baseline: Profile, current: Profile, labels: DiffLabels, options: ExportOptions = {}): string {
  const { root, match } = diffCallTrees(baseline, current, options);
  const parts = [`baseline ${match.baselineTotal} samples`, `current ${match.currentTotal} samples`, 'red grew, blue shrank (share of each capture)'];
  if (match.vanished > 0) parts.push(`${match.vanished} baseline samples on paths now gone`);
  return flameSvg(root, `${labels.baseline} → ${labels.current}`, parts.join(' · '), diffStyle(match));
}
