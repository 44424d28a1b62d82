// A capture's view state in its URL (#/captures/ID?…), so a link reopens the
// capture as it was being looked at: the tab, the view options (the same
// names and values as a download's query, shared/profile/view-options.ts),
// the search, the layout and order, and the zoomed box as the path of child
// positions from the root (positions in the view's order, which the link keeps).
import { type ViewOptions, viewOptionsFromQuery, viewQuery } from '../../shared/profile/view-options.ts';

export interface FlameState {
  options: ViewOptions;
  search: string;
  icicle: boolean;
  heavy: boolean;
  /** Child positions from the root to the zoomed box; empty: not zoomed. */
  zoom: number[];
}

export interface CaptureViewState extends FlameState {
  tab: 'flame' | 'top' | undefined;
}

/** Reads a link's query; what does not parse is left at its default (a link is not worth an error page). */
export function parseViewState(query: string): CaptureViewState {
  const q = new URLSearchParams(query);
  let options: ViewOptions = {};
  try {
    options = viewOptionsFromQuery((name) => q.get(name) ?? undefined);
  } catch {
    // a hand-edited flag: ignore the options
  }
  // Only what the link names: the capture's own defaults fill in the rest.
  for (const key of Object.keys(options) as (keyof ViewOptions)[]) if (!q.has(key)) delete options[key];
  const zoom = (q.get('zoom') ?? '')
    .split('.')
    .filter((s) => /^\d{1,6}$/.test(s))
    .map(Number);
  const tab = q.get('tab');
  return {
    options,
    search: (q.get('q') ?? '').slice(0, 200),
    icicle: q.get('layout') === 'icicle',
    heavy: q.get('order') === 'heavy',
    zoom,
    tab: tab === 'top' || tab === 'flame' ? tab : undefined,
  };
}

export function viewStateQuery(state: Partial<CaptureViewState>): string {
  const parts: string[] = [];
  if (state.tab) parts.push(`tab=${state.tab}`);
  const view = viewQuery(state.options ?? {});
  if (view) parts.push(view);
  if (state.search) parts.push(`q=${encodeURIComponent(state.search)}`);
  if (state.icicle) parts.push('layout=icicle');
  if (state.heavy) parts.push('order=heavy');
  if (state.zoom && state.zoom.length > 0) parts.push(`zoom=${state.zoom.join('.')}`);
  return parts.join('&');
}
