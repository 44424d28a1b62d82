// One capture: header (kind, pid, who, status, Stop), then the view for its
// kind — live top, live flame graph (both over the same chunk stream), or a
// dump — and the downloads once a recording exists.

import { type Capture, ApiError, api } from '../api.ts';
import { app, type Screen } from '../app.ts';
import { CaptureStream } from '../capture-stream.ts';
import { button, h, replace, setText } from '../dom.ts';
import { errorBox, errorFrom } from '../errors.ts';
import { count, dateTime, seconds, shortId } from '../format.ts';
import { FlameView } from '../flame/flame-view.ts';
import { socket } from '../socket.ts';
import { renderDump, renderStoredDump } from './dump-view.ts';
import { downloadLinks, optionsSummary, statusBadge } from './session.ts';
import { TopView } from './top-view.ts';
import { isActiveStatus } from '../../../shared/capture-states.ts';
import { parseViewState, viewStateQuery } from '../view-state.ts';

export const captureScreen: Screen = (root, params) => {
  const captureId = params.id;
  const linked = parseViewState(params.query ?? '');
  let alive = true;
  let capture: Capture | undefined;
  let stream: CaptureStream | undefined;
  let top: TopView | undefined;
  let flame: FlameView | undefined;
  let tab: 'top' | 'flame' = 'flame';
  /** Keeps the URL a link to what is on screen (without a new history entry). */
  function saveViewState(): void {
    const state = tab === 'flame' && flame ? { tab, ...flame.state } : { tab };
    const query = viewStateQuery(state);
    history.replaceState(null, '', `#/captures/${encodeURIComponent(captureId)}${query ? `?${query}` : ''}`);
  }
  let sessionName: string | undefined;
  const timers: ReturnType<typeof setInterval>[] = [];
  let linkedOnce = false;

  const crumbs = h('nav', { class: 'crumbs' }, h('a', { href: '#/' }, 'Sessions'));
  const title = h('h1', null, 'Capture');
  const meta = h('div', { class: 'capture-meta' });
  const statusBox = h('div', { class: 'capture-status', aria: { live: 'polite' } });
  const errorArea = h('div');
  const actions = h('div', { class: 'capture-actions' });
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const body = h('div', { class: 'capture-body' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(root, h('div', { class: 'page wide' }, crumbs, h('div', { class: 'capture-head' }, title, actions), meta, statusBox, errorArea, tabs, body));

  function showError(code: string | undefined, message: string | undefined): void {
    replace(errorArea, errorBox(code, message));
  }

  function renderHead(): void {
    if (!capture) return;
    const c = capture;
    const status = stream?.status ?? c.status;
    app.setTitle(`${c.kind} of ${c.pid}`);
    setText(title, `${c.kind === 'top' ? 'Live top' : c.kind === 'record' ? 'Recording' : 'Dump'} · pid ${c.pid}`);
    if (c.sessionId) {
      replace(crumbs, h('a', { href: '#/' }, 'Sessions'), ' / ', h('a', { href: `#/sessions/${encodeURIComponent(c.sessionId)}` }, sessionName || `Session ${shortId(c.sessionId)}`), ' / ', h('span', null, `${c.kind} ${shortId(c.id)}`));
      if (sessionName === undefined) {
        sessionName = '';
        api.session(c.sessionId).then(
          (s) => {
            if (!alive) return;
            sessionName = s.name || (s.code ? `Session ${s.code}` : '');
            if (sessionName) renderHead();
          },
          () => {},
        );
      }
    }
    const parts = [statusBadge(status), h('span', null, ` requested by ${c.requestedBy}`), h('span', null, ` · started ${dateTime(c.startedAt)}`)];
    const opts = optionsSummary(c.kind, c.options);
    if (opts) parts.push(h('span', { class: 'muted' }, ` · ${opts}`));
    replace(meta, ...parts);
    renderActions();
  }

  function renderActions(): void {
    if (!capture) return;
    const status = stream?.status ?? capture.status;
    const live = isActiveStatus(status);
    const items: HTMLElement[] = [];
    if (live && capture.kind !== 'dump') {
      items.push(
        button('Stop', async (ev) => {
          const b = ev.currentTarget as HTMLButtonElement;
          b.disabled = true;
          try {
            await api.stopCapture(captureId);
          } catch (err) {
            replace(errorArea, errorFrom(err));
            b.disabled = false;
          }
        }, { class: 'danger', title: 'Stop sampling; what was captured is kept' }),
      );
    }
    if (capture.kind !== 'dump') {
      const copyLink = button('Copy link', async () => {
        const ok = await navigator.clipboard.writeText(location.href).then(() => true, () => false);
        setText(copyLink, ok ? 'Link copied' : 'Copy the address bar');
        setTimeout(() => setText(copyLink, 'Copy link'), 2000);
      }, { title: 'A link that reopens this capture as it is shown: tab, options, search, zoom' });
      items.push(copyLink);
    }
    const samples = Math.max(stream?.profile.samples.stack.length ?? 0, capture.samples);
    if (capture.kind === 'record' && (live || samples > 0)) {
      const links = downloadLinks(captureId, false, flame?.viewOptions ?? {});
      if (live) links.classList.add('pending');
      items.push(links);
    }
    replace(actions, ...items);
  }

  function renderStatus(): void {
    if (!stream || !capture) return;
    statusBox.dataset.status = stream.status;
    if (flame) {
      const empty = isActiveStatus(stream.status) ? 'Waiting for samples…' : 'No samples were captured.';
      if (flame.canvas.emptyText !== empty) {
        flame.canvas.emptyText = empty;
        flame.canvas.invalidate();
      }
    }
    if (capture.kind === 'dump') {
      setText(statusBox, '');
      return;
    }
    const p = stream.profile;
    const dur = p.capture.durationUs / 1e6;
    const planned = capture.options.duration;
    const samples = Math.max(stream.stats.samples, p.samples.stack.length);
    let text = `${count(samples)} samples · ${seconds(dur)}`;
    if (capture.kind === 'record' && planned > 0 && isActiveStatus(stream.status)) text += ` of ${seconds(planned)}`;
    if (stream.stats.errors > 0) text += ` · ${count(stream.stats.errors)} sampling errors`;
    if (p.capture.commandLine) text += ` · ${p.capture.commandLine}`;
    setText(statusBox, text);
    statusBox.dataset.status = stream.status;
  }

  function renderTabs(): void {
    if (!capture || capture.kind === 'dump') {
      replace(tabs);
      return;
    }
    const mk = (key: 'top' | 'flame', label: string) => {
      const b = button(label, () => {
        tab = key;
        renderTabs();
        showTab();
        saveViewState();
      }, { role: 'tab', class: tab === key ? 'tab active' : 'tab' });
      b.setAttribute('aria-selected', String(tab === key));
      return b;
    };
    replace(tabs, mk('flame', 'Flame graph'), mk('top', 'Top'));
  }

  function showTab(): void {
    if (!stream) return;
    if (tab === 'top') {
      flame?.dispose();
      flame = undefined;
      if (!top) top = new TopView(stream);
      replace(body, top.element);
    } else {
      top?.dispose();
      top = undefined;
      if (!flame) {
        // A link's options win over the capture's defaults, once.
        const fromLink = linkedOnce ? {} : linked.options;
        flame = new FlameView(stream, { idle: capture?.options.idle ?? false, gil: capture?.options.gil ?? false, ...fromLink });
        if (!linkedOnce) flame.restore(linked);
        linkedOnce = true;
        flame.onOptionsChange = () => renderActions();
        flame.onStateChange = () => saveViewState();
      }
      replace(body, flame.element);
    }
  }

  function startStream(c: Capture): void {
    if (c.kind === 'dump') {
      const inline = Array.isArray(c.result) ? c.result : undefined;
      if (inline) replace(body, renderStoredDump(inline, c.tasks));
      else if (!isActiveStatus(c.status) && c.status !== 'complete') replace(body, h('p', { class: 'muted' }, 'No stacks were captured.'));
      else replace(body, h('p', { class: 'muted' }, 'Waiting for the agent’s dump…'));
    }
    stream = new CaptureStream(socket, captureId, {
      data: () => {
        flame?.update();
        renderStatus();
      },
      reset: () => {
        flame?.profileReplaced();
        top?.profileReplaced();
      },
      status: () => {
        renderHead();
        renderStatus();
        if (stream && !isActiveStatus(stream.status)) {
          if (stream.status === 'target_exited') showError('TARGET_EXITED', 'The target process exited. Everything sampled until then is shown below and can be downloaded.');
          top?.tick();
          flame?.update();
          void refreshCapture();
        }
      },
      dump: (threads, asyncio) => replace(body, renderDump(threads, asyncio)),
      error: (code, message) => showError(code, message),
    });
    if (c.kind !== 'dump') {
      tab = linked.tab ?? (c.kind === 'top' ? 'top' : 'flame');
      renderTabs();
      showTab();
    }
  }

  async function refreshCapture(): Promise<void> {
    try {
      const c = await api.capture(captureId);
      if (!alive) return;
      capture = c;
      renderHead();
      if (c.error && !errorArea.firstChild) showError(c.error.code, c.error.message);
    } catch {
      // keep what we have
    }
  }

  void (async () => {
    try {
      const c = await api.capture(captureId);
      if (!alive) return;
      capture = c;
      if (c.error) showError(c.error.code, c.error.message);
      startStream(c);
      renderHead();
      timers.push(setInterval(renderStatus, 1000));
    } catch (err) {
      if (!alive) return;
      replace(body);
      replace(errorArea, errorFrom(err));
      if (err instanceof ApiError && err.status === 401) return;
    }
  })();

  return () => {
    alive = false;
    for (const t of timers) clearInterval(t);
    stream?.close();
    top?.dispose();
    flame?.dispose();
  };
};
