// A support session: the customer's one-liner, the agents that joined and their
// Python processes, a form to start dump / top / record, the capture history
// and the audit log. Agents are live over the WebSocket: one session_state
// snapshot, then session_agents updates carrying only what changed.

import { type Agent, type AuditEntry, type Capture, type CaptureKind, type ProcessInfo, type Session, ApiError, api, downloadUrl } from '../api.ts';
import { app, createdSessions, type Screen } from '../app.ts';
import { type Child, button, checkbox, copyText, field, h, replace, select, setText } from '../dom.ts';
import { PTRACE_FIX, errorBox, errorFrom, explain } from '../errors.ts';
import { count, dateTime, relative, seconds, shortId } from '../format.ts';
import { socket } from '../socket.ts';
import { sessionIsOpen } from './sessions.ts';
import { CAPTURE_MODES, CAPTURE_MODE_INFO, type CaptureMode, type CaptureStatus, DEFAULT_CAPTURE_MODE } from '../../../shared/capture-states.ts';
import { FORMATS, FORMAT_NAMES } from '../../../shared/export/formats.ts';
import type { ViewOptions } from '../../../shared/profile/view-options.ts';

const DOWNLOADS = FORMAT_NAMES.map((format) => ({ format, label: FORMATS[format].label }));

/** Links to every format; with `options`, the downloads show what the view shows. */
export function downloadLinks(captureId: string, compact = false, options: ViewOptions = {}): HTMLElement {
  return h(
    'span',
    { class: 'downloads' },
    ...DOWNLOADS.map((d) =>
      h('a', { href: downloadUrl(captureId, d.format, options), class: compact ? 'link-small' : 'button-link', download: '', title: `Download as ${d.label}`, data: { format: d.format } }, compact ? d.label : `Download ${d.label}`),
    ),
  );
}

function commandBlock(label: string, command: string, hint?: string): HTMLElement {
  const status = h('span', { class: 'copy-status', aria: { live: 'polite' } });
  const code = h('code', null, command);
  const copy = button('Copy', async () => {
    const ok = await copyText(command);
    setText(status, ok ? 'Copied' : 'Select the text and copy it');
    setTimeout(() => setText(status, ''), 2500);
  }, { class: 'copy', aria: { label: `Copy the ${label} command` } });
  return h('div', { class: 'command' }, h('div', { class: 'command-head' }, h('strong', null, label), hint ? h('span', { class: 'muted' }, hint) : null, copy, status), h('pre', null, code));
}

function optionsSummary(kind: string, o: Capture['options']): string {
  if (!o) return '';
  const parts: string[] = [];
  if (o.rate && kind !== 'dump') parts.push(`${o.rate} Hz`);
  if (o.duration !== undefined && kind !== 'dump') parts.push(o.duration ? `${o.duration} s` : 'until stopped');
  if (kind !== 'dump' && o.mode && o.mode !== DEFAULT_CAPTURE_MODE) parts.push(`${CAPTURE_MODE_INFO[o.mode].label} mode`);
  for (const k of ['subprocesses', 'idle', 'gil', 'blocking'] as const) if (o[k]) parts.push(k);
  return parts.join(', ');
}

/** The capture mode (CPython 3.15's profiler's --mode): which samples the agent keeps. */
function modeSelect(value: CaptureMode, onchange: (mode: CaptureMode) => void): HTMLElement {
  const input = select(CAPTURE_MODES.map((m) => ({ value: m, label: `${CAPTURE_MODE_INFO[m].label}: ${CAPTURE_MODE_INFO[m].description}` })), value, onchange);
  return h('label', { class: 'mode' }, 'Mode ', input);
}

/** An audit entry's details as `key value` pairs (values are data: text only). */
function auditDetail(detail: unknown): string {
  if (detail === undefined || detail === null) return '';
  if (typeof detail !== 'object') return String(detail);
  const parts: string[] = [];
  for (const [k, v] of Object.entries(detail as Record<string, unknown>)) {
    if (v === undefined || v === null || v === '') continue;
    if (k === 'options' && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const on = Object.entries(o).filter(([, x]) => x === true).map(([x]) => x);
      const nums = Object.entries(o).filter(([, x]) => typeof x === 'number').map(([x, n]) => `${x} ${n}`);
      parts.push(`options: ${[...nums, ...on].join(', ') || 'defaults'}`);
      continue;
    }
    parts.push(`${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  }
  return parts.join(' · ');
}

// ---- process tree ----

/** A child started this recently that has no children of its own counts as short-lived: fork-per-job churn is grouped under its parent. */
export const SHORT_LIVED_MS = 60_000;

interface ProcessNode {
  p: ProcessInfo;
  children: ProcessNode[];
}

/** The processes as a forest: a process whose parent is listed goes under it; the rest are roots. By pid at each level. */
export function processTree(list: ProcessInfo[]): ProcessNode[] {
  const nodes = new Map(list.map((p) => [p.pid, { p, children: [] as ProcessNode[] }]));
  const parentOf = (node: ProcessNode) => (node.p.ppid === undefined ? undefined : nodes.get(node.p.ppid));
  const roots: ProcessNode[] = [];
  for (const node of nodes.values()) {
    let parent = parentOf(node);
    // Parent links that loop back (a reused pid between two scans) would hide the loop: it starts at a root instead.
    for (let up = parent, hops = 0; up; up = parentOf(up), hops++) {
      if (up === node || hops > nodes.size) {
        parent = undefined;
        break;
      }
    }
    (parent ? parent.children : roots).push(node);
  }
  const byPid = (a: ProcessNode, b: ProcessNode) => a.p.pid - b.p.pid;
  for (const node of nodes.values()) node.children.sort(byPid);
  return roots.sort(byPid);
}

function isShortLived(node: ProcessNode, now: number): boolean {
  // A start time ahead of the browser's clock (the customer's clock runs fast) counts as just started.
  return node.children.length === 0 && node.p.startedAt !== undefined && now - node.p.startedAt < SHORT_LIVED_MS;
}

/** Does the filter box's text match this process (pid or command line, case-insensitive)? */
function matchesFilter(p: ProcessInfo, filter: string): boolean {
  return String(p.pid).includes(filter) || p.cmdline.toLowerCase().includes(filter);
}

/** How each capture status looks; a Record, so a new status in shared/capture-states.ts must be given a look here. */
const STATUS_BADGE: Record<CaptureStatus, { cls: string; label: string }> = {
  starting: { cls: 'badge-active', label: 'starting' },
  running: { cls: 'badge-active', label: 'running' },
  complete: { cls: 'badge-ok', label: 'complete' },
  incomplete: { cls: 'badge-warn', label: 'incomplete' },
  target_exited: { cls: 'badge-warn', label: 'target exited' },
  failed: { cls: 'badge-bad', label: 'failed' },
  damaged: { cls: 'badge-bad', label: 'damaged' },
};

function statusBadge(status: CaptureStatus): HTMLElement {
  const { cls, label } = STATUS_BADGE[status];
  return h('span', { class: `badge ${cls}` }, label);
}

export { statusBadge, optionsSummary };

export const sessionScreen: Screen = (root, params) => {
  const sessionId = params.id;
  let alive = true;
  let session: Session | undefined = createdSessions.get(sessionId);
  let agents: Agent[] = [];
  /** Each shown agent's card, so an update rebuilds only the cards of agents that changed. */
  const cards = new Map<string, HTMLElement>();
  /** A snapshot came over the WebSocket: the HTTP list, possibly older, must not replace it. */
  let live = false;
  let selected: { agentId: string; pid: number } | null = null;
  const timers: ReturnType<typeof setInterval>[] = [];
  /** The process filter box's text (pid or command line), lower-cased. */
  let processFilter = '';
  /** Groups of short-lived children the engineer opened: `agentId:ppid`. */
  const expandedGroups = new Set<string>();

  const title = h('h1', null, 'Support session');
  const pageError = h('div');
  const joinCard = h('section', { class: 'card join' });
  const membersCard = h('section', { class: 'card members' });
  const agentsBox = h('div', { class: 'agents' }, h('p', { class: 'muted' }, 'Loading agents…'));
  const filterInput = h('input', { type: 'search', placeholder: 'pid or command line', autocomplete: 'off', aria: { label: 'Filter processes by pid or command line' } });
  filterInput.addEventListener('input', () => {
    processFilter = filterInput.value.trim().toLowerCase();
    if (agents.length > 0) renderAgents();
  });
  const filterBox = h('label', { class: 'process-filter' }, 'Filter ', filterInput);
  const formCard = h('section', { class: 'card capture-form', aria: { label: 'Profile a process' } });
  const historyBox = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  const auditBox = h('div', null, h('p', { class: 'muted' }, 'Loading…'));
  formCard.hidden = true;

  replace(
    root,
    h(
      'div',
      { class: 'page' },
      h('nav', { class: 'crumbs' }, h('a', { href: '#/' }, 'Sessions'), ' / ', h('span', null, shortId(sessionId))),
      title,
      pageError,
      joinCard,
      h('section', { class: 'card' }, h('div', { class: 'agents-head' }, h('h2', null, 'Agents and processes'), filterBox), agentsBox),
      formCard,
      h('section', { class: 'card' }, h('h2', null, 'Capture history'), historyBox),
      membersCard,
      h('section', { class: 'card' }, h('details', { class: 'audit' }, h('summary', null, h('h2', { class: 'inline' }, 'Audit log')), auditBox)),
    ),
  );

  // ---- session header, one-liner, close ----
  function renderSession(): void {
    if (!session) return;
    const s = session;
    app.setTitle(s.name || `Session ${s.code ?? ''}`);
    setText(title, s.name || `Support session ${s.code ?? ''}`.trim());
    const open = sessionIsOpen(s);
    const parts: Child[] = [];
    const head = h('div', { class: 'join-head' }, h('h2', null, 'Customer’s one-liner'), open ? h('span', { class: 'badge badge-active' }, 'open') : h('span', { class: 'badge' }, s.status));
    parts.push(head);
    if (!open) {
      parts.push(h('p', { class: 'muted' }, 'This session is closed: its agents were disconnected and no new agent can join. History and downloads stay available.'));
    } else {
      const cmds = s.commands;
      if (cmds && (cmds.curl || cmds.python)) {
        if (s.publicUrl && !s.publicUrl.configured) parts.push(publicUrlWarning(s.publicUrl.url));
        parts.push(h('p', null, 'Ask the customer to paste this into a shell inside the container running their Python service. It shows each capture on their terminal; Ctrl-C ends everything.'));
        if (cmds.curl) parts.push(commandBlock('With curl', cmds.curl));
        if (cmds.python) parts.push(commandBlock('Without curl (python3)', cmds.python, 'for slim images'));
        const more: HTMLElement[] = [];
        if (cmds.wget) more.push(commandBlock('With wget', cmds.wget));
        if (cmds.env) more.push(commandBlock('Agent already installed', cmds.env));
        if (more.length) parts.push(h('details', null, h('summary', null, 'Other ways to join'), ...more));
      } else {
        parts.push(h('p', { class: 'muted' }, 'The one-liner is shown once, when the session is created. Agents that already joined stay connected.'));
      }
      const exp = h('p', { class: 'expiry' });
      const tick = () => setText(exp, `The join code ${s.code ? `${s.code} ` : ''}expires at ${dateTime(s.expiresAt)} (${relative(s.expiresAt)}).`);
      tick();
      timers.push(setInterval(tick, 15_000));
      parts.push(exp);
      parts.push(closeControl());
    }
    replace(joinCard, ...parts);
    renderMembers();
    if (!open) {
      // Nothing can be profiled in a closed session: no form, no Profile buttons.
      selected = null;
      formCard.hidden = true;
    }
    if (agents.length > 0 && open !== renderedOpen) renderAgents();
  }

  /** Whether the agent cards were last drawn for an open session (they are redrawn when that changes). */
  let renderedOpen = true;
  function isOpen(): boolean {
    return session === undefined || sessionIsOpen(session);
  }

  function publicUrlWarning(url: string): HTMLElement {
    return h(
      'div',
      { class: 'notice public-url-warning', role: 'alert' },
      h('strong', null, `These commands point at ${url}, which only reaches the relay from its own machine.`),
      h('p', null, 'The relay was started without PERISCOPE_PUBLIC_URL, so it does not know the address customers reach it by. A customer’s container cannot run these commands as they are.'),
      h('p', null, 'Ask the relay’s operator to restart it with PERISCOPE_PUBLIC_URL set to that address, e.g. ', h('code', null, 'PERISCOPE_PUBLIC_URL=https://periscope.example.com'), ', then open this session again: its commands use the new address.'),
    );
  }

  function closeControl(): HTMLElement {
    const box = h('div', { class: 'close-session' });
    const error = h('div');
    const ask = button('Close session', () => {
      replace(
        box,
        h('span', null, 'Disconnect every agent and end this session?'),
        button('Yes, close it', async () => {
          try {
            session = await api.closeSession(sessionId);
            renderSession();
            void loadSession();
          } catch (err) {
            replace(error, errorFrom(err));
          }
        }, { class: 'danger' }),
        button('Cancel', () => replace(box, ask)),
        error,
      );
    }, { class: 'danger' });
    replace(box, ask);
    return box;
  }

  const memberInput = h('input', { type: 'text', autocomplete: 'off', required: true });
  const memberResult = h('div', { aria: { live: 'polite' } });
  const memberForm = h(
    'form',
    {
      class: 'inline-form',
      onsubmit: async (ev) => {
        ev.preventDefault();
        const name = memberInput.value.trim();
        try {
          const res = await api.addMember(sessionId, name);
          if (session) {
            session = { ...session, members: res.members };
            renderMembers();
          }
          replace(memberResult, h('p', { class: 'ok' }, `${name} can now open this session.`));
          memberInput.value = '';
          void loadSession();
        } catch (err) {
          replace(memberResult, errorFrom(err));
        }
      },
    },
    field('Engineer’s username', memberInput),
    h('button', { type: 'submit' }, 'Add member'),
  );
  const memberList = h('div');

  function renderMembers(): void {
    const s = session!;
    const names = s.members.map((m) => m.username);
    replace(memberList, names.length ? h('ul', { class: 'members-list' }, ...names.map((n) => h('li', null, n))) : h('p', { class: 'muted' }, 'Only you (and admins) can open this session.'));
    memberForm.hidden = !sessionIsOpen(s);
    if (!membersCard.firstChild) replace(membersCard, h('h2', null, 'Members'), memberList, memberForm, memberResult);
  }

  async function loadSession(): Promise<void> {
    try {
      const s = await api.session(sessionId);
      if (!alive) return;
      const created = createdSessions.get(sessionId);
      session = { ...s, commands: s.commands ?? created?.commands, joinToken: s.joinToken ?? created?.joinToken };
      renderSession();
    } catch (err) {
      if (!alive) return;
      replace(pageError, errorFrom(err));
      if (err instanceof ApiError && (err.status === 403 || err.status === 404)) {
        // Nothing else on this page is for us.
        for (const el of [joinCard, membersCard, agentsBox, historyBox, auditBox]) replace(el);
        formCard.hidden = true;
        alive = false;
        off();
      }
    }
  }

  // ---- agents ----
  function renderAgents(): void {
    cards.clear();
    renderedOpen = isOpen();
    if (agents.length === 0) {
      replace(agentsBox, h('p', { class: 'muted waiting' }, 'No agent has joined yet. Once the customer runs the one-liner, their agent and its Python processes appear here.'));
      return;
    }
    replace(
      agentsBox,
      ...agents.map((a) => {
        const card = agentCard(a);
        cards.set(a.id, card);
        return card;
      }),
    );
  }

  /** A session_agents update: agents that joined or changed replace their card (new ones go last); pruned ones go. */
  function applyAgentChanges(changed: Agent[], removed: string[]): void {
    const gone = new Set(removed);
    const updated = new Map(changed.map((a) => [a.id, a]));
    const wasEmpty = agents.length === 0;
    const kept = agents.filter((a) => !gone.has(a.id));
    const keptIds = new Set(kept.map((a) => a.id));
    agents = [...kept.map((a) => updated.get(a.id) ?? a), ...changed.filter((a) => !keptIds.has(a.id))];
    if (wasEmpty || agents.length === 0) return renderAgents();
    for (const id of removed) {
      cards.get(id)?.remove();
      cards.delete(id);
    }
    for (const a of changed) {
      const card = agentCard(a);
      const old = cards.get(a.id);
      if (old) old.replaceWith(card);
      else agentsBox.append(card);
      cards.set(a.id, card);
    }
  }

  function agentCard(a: Agent): HTMLElement {
    const open = isOpen();
    // Gone for good: the customer stopped it, or the session was closed (the agent was sent away, or was already gone).
    const ended = a.online ? undefined : a.ended === 'customer' ? 'customer' : !open || a.ended === 'session_closed' ? 'session_closed' : undefined;
    const state = a.online
      ? h('span', { class: 'badge badge-active' }, 'online')
      : ended === 'customer'
        ? h('span', { class: 'badge badge-warn' }, 'ended by the customer')
        : ended === 'session_closed'
          ? h('span', { class: 'badge' }, 'session closed')
          : h('span', { class: 'badge badge-bad' }, 'offline');
    const head = h(
      'div',
      { class: 'agent-head' },
      h('span', { class: `dot ${a.online ? 'online' : 'offline'}`, aria: { hidden: 'true' } }),
      h('strong', { class: 'host' }, a.host || a.id),
      state,
      a.user ? h('span', { class: 'badge agent-user', title: 'The user the agent runs as' }, `user ${a.user}`) : null,
      a.containerId ? h('span', { class: 'badge mono', title: `container ${a.containerId}` }, `container ${shortId(a.containerId)}`) : h('span', { class: 'badge' }, 'no container'),
      h('span', { class: 'badge' }, a.arch),
      h('span', { class: 'badge' }, `agent ${a.agentVersion}`),
    );
    const why = a.online
      ? null
      : ended === 'customer'
        ? h('p', { class: 'notice agent-ended' }, 'The customer stopped this agent (Ctrl-C). To profile again, ask them to run the one-liner again.')
        : ended === 'session_closed'
          ? h('p', { class: 'muted agent-ended' }, 'The session is closed: this agent was disconnected and cannot come back.')
          : errorBox('AGENT_OFFLINE', 'This agent lost its connection to the relay.');
    let body: HTMLElement;
    if (a.processes.length === 0) {
      body = a.online
        ? h(
            'div',
            { class: 'notice' },
            h('strong', null, 'No Python process is offered by this agent.'),
            h('p', null, 'Either none runs where the agent runs, or the agent is not allowed to read them (its terminal says which). Processes it cannot read are not listed. To allow it:'),
            h('ul', null, ...PTRACE_FIX.map((f) => h('li', null, f))),
          )
        : h('p', { class: 'muted' }, ended ? 'It offered no Python process.' : 'The agent is offline.');
    } else {
      // Profile buttons only where they can work: not for an agent that is gone for good, nor in a closed session.
      const actions: RowActions = ended || !open ? 'none' : a.online ? 'enabled' : 'disabled';
      const rows = processRows(a, actions);
      const total = a.processes.length;
      const shownCount = rows.filter((r) => r.dataset.pid !== undefined).length;
      body = h(
        'div',
        { class: 'table-wrap' },
        processFilter ? h('p', { class: 'muted filter-count' }, shownCount === 0 ? `No process of ${total} matches “${processFilter}”.` : `${shownCount} of ${total} processes match “${processFilter}”.`) : null,
        h(
          'table',
          { class: 'data processes stack-narrow' },
          h('thead', null, h('tr', null, h('th', { class: 'num' }, 'PID'), h('th', null, 'Command line'), h('th', null, 'Python'), h('th', null, 'User'), h('th', { class: 'num' }, 'Threads'), h('th', null, h('span', { class: 'sr-only' }, 'Actions')))),
          h('tbody', null, ...rows),
        ),
      );
    }
    return h('div', { class: `agent ${a.online ? '' : 'is-offline'}`, data: { agent: a.id, ...(ended ? { ended } : {}) } }, head, why, body);
  }

  type RowActions = 'enabled' | 'disabled' | 'none';

  /**
   * The agent's processes as a tree (children indented under their parent).
   * Short-lived children (SHORT_LIVED_MS) collapse into one "+ N short-lived
   * children of PID" row that opens on click. With a filter, only matching
   * processes are listed (groups open), still in tree order.
   */
  function processRows(a: Agent, actions: RowActions): HTMLTableRowElement[] {
    const rows: HTMLTableRowElement[] = [];
    const now = Date.now();
    const walk = (nodes: ProcessNode[], depth: number) => {
      for (const node of nodes) {
        if (!processFilter || matchesFilter(node.p, processFilter)) rows.push(processRow(a, node.p, depth, actions));
        const young = processFilter ? [] : node.children.filter((c) => isShortLived(c, now));
        const others = young.length === 0 ? node.children : node.children.filter((c) => !young.includes(c));
        walk(others, depth + 1);
        if (young.length === 0) continue;
        const key = `${a.id}:${node.p.pid}`;
        const open = expandedGroups.has(key);
        const label = `${open ? '−' : '+'} ${young.length} short-lived ${young.length === 1 ? 'child' : 'children'} of ${node.p.pid}`;
        const toggle = button(label, () => {
          if (expandedGroups.has(key)) expandedGroups.delete(key);
          else expandedGroups.add(key);
          const card = cards.get(a.id);
          const agent = agents.find((x) => x.id === a.id);
          if (card && agent) {
            const fresh = agentCard(agent);
            card.replaceWith(fresh);
            cards.set(a.id, fresh);
            fresh.querySelector<HTMLButtonElement>(`tr[data-group="${node.p.pid}"] button`)?.focus();
          }
        }, { class: 'link-button', aria: { expanded: String(open) }, title: `Started less than ${SHORT_LIVED_MS / 1000} s ago (fork-per-job workers come and go)` });
        rows.push(h('tr', { class: `group-row depth-${Math.min(depth + 1, 6)}`, data: { group: String(node.p.pid) } }, h('td', null), h('td', { class: 'group-cell' }, toggle), h('td'), h('td'), h('td'), h('td')));
        if (open) for (const c of young) rows.push(processRow(a, c.p, depth + 1, actions));
      }
    };
    walk(processTree(a.processes), 0);
    return rows;
  }

  function processRow(a: Agent, p: ProcessInfo, depth: number, actions: RowActions): HTMLTableRowElement {
    const isSelected = selected?.agentId === a.id && selected.pid === p.pid;
    const classes = [isSelected ? 'selected' : '', depth > 0 ? `child depth-${Math.min(depth, 6)}` : ''].filter(Boolean).join(' ');
    return h(
      'tr',
      { class: classes, data: { pid: String(p.pid), ...(p.ppid !== undefined ? { ppid: String(p.ppid) } : {}) } },
      h('td', { class: 'num mono', data: { label: 'PID' } }, String(p.pid)),
      h('td', { class: 'cmdline mono', title: p.cmdline, data: { label: 'Command' } }, p.cmdline),
      h('td', { data: { label: 'Python' } }, p.version),
      h('td', { data: { label: 'User' } }, p.user),
      h('td', { class: 'num', data: { label: 'Threads' } }, String(p.threads)),
      h('td', { class: 'row-actions' }, actions === 'none' ? null : button('Profile…', () => selectProcess(a, p), { disabled: actions === 'disabled', aria: { label: `Profile process ${p.pid}` } })),
    );
  }

  function selectProcess(a: Agent, p: ProcessInfo): void {
    selected = { agentId: a.id, pid: p.pid };
    renderAgents();
    renderForm();
    formCard.hidden = false;
    formCard.scrollIntoView({ block: 'nearest' });
    formCard.querySelector<HTMLInputElement>('input[type=radio]:checked')?.focus();
  }

  // ---- capture form ----
  let kind: CaptureKind = 'top';
  const durations: Record<CaptureKind, number> = { top: 0, record: 10, dump: 0 };
  const form: { rate: number; subprocesses: boolean; mode: CaptureMode; blocking: boolean } = { rate: 100, subprocesses: false, mode: DEFAULT_CAPTURE_MODE, blocking: false };

  function renderForm(): void {
    if (!selected) return;
    const agent = agents.find((a) => a.id === selected!.agentId);
    const proc = agent?.processes.find((p) => p.pid === selected!.pid);
    const error = h('div', { class: 'form-error' });
    const rate = h('input', { type: 'number', min: 1, max: 1000, step: 1, value: String(form.rate) });
    const duration = h('input', { type: 'number', min: 0, max: 3600, step: 1, value: String(durations[kind]) });
    const kinds: { value: CaptureKind; label: string; hint: string }[] = [
      { value: 'top', label: 'Top', hint: 'live table of the hottest functions' },
      { value: 'record', label: 'Record', hint: 'flame graph, kept for download' },
      { value: 'dump', label: 'Dump', hint: 'every thread’s stack, once' },
    ];
    const radios = h(
      'fieldset',
      { class: 'kinds' },
      h('legend', null, 'What to capture'),
      ...kinds.map((k) => {
        const input = h('input', { type: 'radio', name: 'kind', value: k.value, checked: kind === k.value });
        input.addEventListener('change', () => {
          durations[kind] = Number(duration.value) || 0;
          kind = k.value;
          renderForm();
          formCard.querySelector<HTMLInputElement>(`input[value=${k.value}]`)?.focus();
        });
        return h('label', { class: 'kind' }, input, ' ', h('strong', null, k.label), h('span', { class: 'muted' }, ` — ${k.hint}`));
      }),
    );
    const start = h('button', { type: 'submit', class: 'primary' }, kind === 'dump' ? 'Dump stacks' : kind === 'top' ? 'Start top' : 'Start recording');
    const offline = agent && !agent.online;
    if (offline || !proc) start.disabled = true;
    const f = h(
      'form',
      {
        onsubmit: async (ev) => {
          ev.preventDefault();
          if (!selected) return;
          form.rate = Math.round(Number(rate.value)) || 100;
          durations[kind] = Number(duration.value) || 0;
          start.disabled = true;
          replace(error);
          try {
            const res = await api.startCapture(selected.agentId, {
              kind,
              pid: selected.pid,
              rate: form.rate,
              duration: kind === 'dump' ? 0 : durations[kind],
              subprocesses: form.subprocesses,
              mode: form.mode,
              // The view opens on what the mode kept: GIL holders in gil mode.
              idle: false,
              gil: form.mode === 'gil',
              blocking: form.blocking,
            });
            app.navigate(`#/captures/${encodeURIComponent(res.id)}`);
          } catch (err) {
            replace(error, errorFrom(err));
            start.disabled = false;
          }
        },
      },
      radios,
      kind === 'dump' ? null : h('div', { class: 'inline-fields' }, field('Rate (samples/s)', rate), field(kind === 'top' ? 'Duration (s, 0 = until stopped)' : 'Duration (s)', duration)),
      h(
        'div',
        { class: 'checks' },
        checkbox('Subprocesses', form.subprocesses, (v) => (form.subprocesses = v), { title: 'Also profile child processes (gunicorn, RQ, multiprocessing workers)' }),
        kind === 'dump' ? null : modeSelect(form.mode, (m) => (form.mode = m)),
        checkbox('Blocking', form.blocking, (v) => (form.blocking = v), { title: 'Pause the target while reading its stacks: consistent, but slows it down' }),
      ),
      offline ? errorBox('AGENT_OFFLINE', 'This agent is not connected right now.') : null,
      !proc && agent ? h('p', { class: 'muted' }, 'That process is no longer in the list.') : null,
      error,
      h('div', { class: 'actions' }, start, button('Cancel', () => {
        selected = null;
        formCard.hidden = true;
        renderAgents();
      })),
    );
    replace(
      formCard,
      h('h2', null, 'Profile process ', h('span', { class: 'mono' }, String(selected.pid))),
      proc ? h('p', { class: 'mono cmdline-full' }, proc.cmdline) : null,
      agent ? h('p', { class: 'muted' }, `on ${agent.host}`) : null,
      f,
    );
  }

  async function loadAgents(): Promise<void> {
    try {
      const list = await api.agents(sessionId);
      if (!alive || live) return;
      agents = list;
      renderAgents();
    } catch (err) {
      if (alive) replace(agentsBox, errorFrom(err));
    }
  }

  // ---- history and audit ----
  /** Captures ticked for comparison, oldest first once two are chosen. */
  const toCompare = new Map<string, string>();
  const compareButton = button('Compare selected', () => {
    const [baseline, current] = [...toCompare.entries()].sort((a, b) => a[1].localeCompare(b[1])).map(([id]) => id);
    location.hash = `#/compare/${encodeURIComponent(baseline)}/${encodeURIComponent(current)}`;
  }, { class: 'compare-button', title: 'Tick two top or record captures: the older is the baseline' });
  const compareHint = h('span', { class: 'muted' });
  function renderCompareBar(): void {
    compareButton.disabled = toCompare.size !== 2;
    setText(compareHint, toCompare.size === 2 ? ' the older one is the baseline' : ` tick ${2 - toCompare.size} more top or record capture${toCompare.size === 1 ? '' : 's'} to compare`);
  }
  function compareBox(c: Capture): HTMLElement | null {
    if (c.kind === 'dump') return null;
    const input = h('input', { type: 'checkbox', checked: toCompare.has(c.id), aria: { label: `Compare the ${c.kind} of pid ${c.pid} started ${dateTime(c.startedAt)}` } });
    input.addEventListener('change', () => {
      if (input.checked) {
        // A third tick replaces the oldest tick.
        if (toCompare.size === 2) toCompare.delete(toCompare.keys().next().value!);
        toCompare.set(c.id, c.startedAt);
      } else toCompare.delete(c.id);
      for (const other of historyBox.querySelectorAll<HTMLInputElement>('input[data-compare]')) other.checked = toCompare.has(other.dataset.compare!);
      renderCompareBar();
    });
    input.dataset.compare = c.id;
    return input;
  }

  async function loadHistory(): Promise<void> {
    try {
      const caps = await api.captures(sessionId);
      if (!alive) return;
      if (caps.length === 0) {
        replace(historyBox, h('p', { class: 'muted' }, 'No captures yet.'));
        return;
      }
      // ISO 8601 times sort as strings: newest first.
      caps.sort((a, b) => b.startedAt.localeCompare(a.startedAt));
      const rows = caps.map((c) =>
        h(
          'tr',
          { data: { capture: c.id, kind: c.kind } },
          h('td', { class: 'compare-cell', data: { label: 'Compare' } }, compareBox(c)),
          h('td', { data: { label: 'Kind' } }, h('a', { href: `#/captures/${encodeURIComponent(c.id)}`, aria: { label: `Open ${c.kind} capture of pid ${c.pid}` } }, c.kind)),
          h('td', { class: 'num mono', data: { label: 'PID' } }, String(c.pid)),
          h('td', { data: { label: 'Who' } }, c.requestedBy),
          h('td', { data: { label: 'Started' } }, dateTime(c.startedAt)),
          h('td', { data: { label: 'Duration' } }, c.kind === 'dump' ? '–' : seconds(c.durationSeconds)),
          h('td', { class: 'num', data: { label: 'Samples' } }, count(c.samples)),
          h('td', { data: { label: 'Status' } }, statusBadge(c.status), c.error ? h('span', { class: 'error-text' }, ` ${explain(c.error.code, c.error.message).title}`) : null),
          h('td', { class: 'muted', data: { label: 'Options' } }, optionsSummary(c.kind, c.options)),
          h('td', { class: 'row-actions' }, c.kind === 'dump' ? null : downloadLinks(c.id, true)),
        ),
      );
      renderCompareBar();
      replace(
        historyBox,
        h('div', { class: 'compare-bar' }, compareButton, compareHint),
        h(
          'div',
          { class: 'table-wrap' },
          h(
            'table',
            { class: 'data history stack-narrow' },
            h('thead', null, h('tr', null, ...['Compare', 'Kind', 'PID', 'Who', 'Started', 'Duration', 'Samples', 'Status', 'Options', 'Download'].map((t) => h('th', null, t)))),
            h('tbody', null, ...rows),
          ),
        ),
      );
    } catch (err) {
      if (alive) replace(historyBox, errorFrom(err));
    }
  }

  async function loadAudit(): Promise<void> {
    try {
      const entries = await api.audit(sessionId);
      if (!alive) return;
      if (entries.length === 0) {
        replace(auditBox, h('p', { class: 'muted' }, 'Nothing recorded yet.'));
        return;
      }
      // Newest first: ids grow with time.
      const rows = [...entries].sort((a, b) => b.id - a.id).slice(0, 500).map((e: AuditEntry) => {
        return h(
          'tr',
          null,
          h('td', { data: { label: 'When' } }, dateTime(e.at)),
          h('td', { data: { label: 'Who' } }, e.actor),
          h('td', { class: 'mono', data: { label: 'Action' } }, e.action),
          h('td', { class: 'detail', data: { label: 'Details' } }, auditDetail(e.detail)),
        );
      });
      replace(auditBox, h('div', { class: 'table-wrap' }, h('table', { class: 'data audit-table stack-narrow' }, h('thead', null, h('tr', null, h('th', null, 'When'), h('th', null, 'Who'), h('th', null, 'Action'), h('th', null, 'Details'))), h('tbody', null, ...rows))));
    } catch (err) {
      if (alive) replace(auditBox, errorFrom(err));
    }
  }

  // ---- live updates ----
  const offMessage = socket.onMessage((m) => {
    if (m.type === 'session_state' && m.sessionId === sessionId) {
      // A snapshot after the first: the session changed (closed, expired): its status too.
      if (live && session && sessionIsOpen(session)) void loadSession();
      live = true;
      agents = m.agents;
      renderAgents();
      if (selected && !formCard.hidden) renderForm();
    } else if (m.type === 'session_agents' && m.sessionId === sessionId && live) {
      if (session && sessionIsOpen(session) && m.agents.some((a) => a.ended === 'session_closed')) void loadSession();
      applyAgentChanges(m.agents, m.removed);
      if (selected && m.agents.some((a) => a.id === selected!.agentId && a.ended)) {
        // Its agent is gone for good: nothing in the form can work any more.
        selected = null;
        formCard.hidden = true;
      }
      const touched = selected && (m.agents.some((a) => a.id === selected!.agentId) || m.removed.includes(selected.agentId));
      if (touched && !formCard.hidden) renderForm();
    }
  });
  const unsubscribe = socket.subscribeSession(sessionId);
  function off(): void {
    offMessage();
    unsubscribe();
    for (const t of timers) clearInterval(t);
  }

  renderSession();
  void loadSession().then(() => {
    if (!alive) return;
    void loadAgents();
    void loadHistory();
    void loadAudit();
  });
  timers.push(
    setInterval(() => {
      if (document.visibilityState === 'visible') {
        void loadHistory();
        void loadAudit();
      }
    }, 5000),
  );

  return () => {
    alive = false;
    off();
  };
};
