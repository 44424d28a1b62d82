import { type SessionSummary, api } from '../api.ts';
import { app, createdSessions, type Screen } from '../app.ts';
import { checkbox, field, h, replace } from '../dom.ts';
import { errorFrom } from '../errors.ts';
import { dateTime, relative, toDate } from '../format.ts';

export function sessionIsOpen(s: SessionSummary): boolean {
  return s.status === 'open';
}

export const sessionsScreen: Screen = (root) => {
  app.setTitle('Support sessions');
  let alive = true;
  const list = h('div', { class: 'session-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const createError = h('div', { class: 'form-error' });
  const name = h('input', { type: 'text', name: 'name', placeholder: 'e.g. ACME ticket 4711 — slow checkout' });
  const createButton = h('button', { type: 'submit', class: 'primary' }, 'New support session');
  const createForm = h(
    'form',
    {
      class: 'card new-session',
      onsubmit: async (ev) => {
        ev.preventDefault();
        createButton.disabled = true;
        replace(createError);
        try {
          const s = await api.createSession(name.value.trim() || undefined);
          createdSessions.set(s.id, s);
          app.navigate(`#/sessions/${encodeURIComponent(s.id)}`);
        } catch (err) {
          replace(createError, errorFrom(err));
        } finally {
          createButton.disabled = false;
        }
      },
    },
    h('h2', null, 'Start a support session'),
    h('p', { class: 'muted' }, 'You get a one-line command for the customer to paste into their container. Its agent dials out to this relay; nothing inbound is needed.'),
    field('Name (optional)', name),
    createError,
    createButton,
  );

  const admin = app.me?.user.admin ? adminCard() : null;

  async function load(): Promise<void> {
    try {
      const sessions = await api.sessions();
      if (!alive) return;
      sessions.sort((a, b) => (toDate(b.createdAt)?.getTime() ?? 0) - (toDate(a.createdAt)?.getTime() ?? 0));
      if (sessions.length === 0) {
        replace(list, h('p', { class: 'muted' }, 'No sessions yet.'));
        return;
      }
      const rows = sessions.map((s) => {
        const open = sessionIsOpen(s);
        const expires = toDate(s.expiresAt);
        return h(
          'tr',
          null,
          h('td', null, h('a', { href: `#/sessions/${encodeURIComponent(s.id)}` }, s.name || `Session ${s.id}`)),
          h('td', null, dateTime(s.createdAt)),
          h('td', null, open ? h('span', { class: 'badge badge-active' }, 'open') : h('span', { class: 'badge' }, s.status)),
          h('td', null, open && expires ? `${dateTime(s.expiresAt)} (${relative(s.expiresAt)})` : '–'),
        );
      });
      replace(
        list,
        h(
          'div',
          { class: 'table-wrap' },
          h('table', { class: 'data' }, h('thead', null, h('tr', null, h('th', null, 'Session'), h('th', null, 'Created'), h('th', null, 'Status'), h('th', null, 'Join code expires'))), h('tbody', null, ...rows)),
        ),
      );
    } catch (err) {
      if (alive) replace(list, errorFrom(err));
    }
  }

  replace(root, h('div', { class: 'page' }, h('h1', null, 'Support sessions'), createForm, h('section', { class: 'card' }, h('h2', null, 'Your sessions'), list), admin));
  void load();
  return () => {
    alive = false;
  };
};

/** Accounts live on one page (#/engineers): the list, adding, disabling, password resets, with the rules shown. */
function adminCard(): HTMLElement {
  return h('section', { class: 'card' }, h('h2', null, 'Engineers (admin)'), h('p', null, h('a', { href: '#/engineers' }, 'Manage accounts'), ': add engineers, disable one, reset a password.'));
}
