// Periscope's browser client: a single page with hash routing.
//   #/                 support sessions
//   #/sessions/ID      one session: one-liner, agents, processes, history, audit
//   #/captures/ID      live top / flame graph / dump of one capture
//   #/compare/A/B      capture B against baseline A: differential flame graph and table
//   #/engineers        admins: the engineers' accounts; everyone: #/account, their own password
// Sign-in is shown in place of any route while signed out.

import { ApiError, api, setCsrfToken, setUnauthenticatedHandler } from './api.ts';
import { app, type Screen } from './app.ts';
import { button, h, replace, setText } from './dom.ts';
import { errorFrom } from './errors.ts';
import { socket } from './socket.ts';
import { captureScreen } from './views/capture.ts';
import { loginScreen } from './views/login.ts';
import { sessionScreen } from './views/session.ts';
import { sessionsScreen } from './views/sessions.ts';
import { compareScreen } from './views/compare.ts';
import { accountsScreen } from './views/accounts.ts';

const routes: { pattern: RegExp; keys: string[]; screen: Screen }[] = [
  { pattern: /^#?\/?$/, keys: [], screen: sessionsScreen },
  { pattern: /^#\/sessions\/([^/]+)$/, keys: ['id'], screen: sessionScreen },
  { pattern: /^#\/captures\/([^/]+)$/, keys: ['id'], screen: captureScreen },
  { pattern: /^#\/compare\/([^/]+)\/([^/]+)$/, keys: ['baseline', 'current'], screen: compareScreen },
  { pattern: /^#\/(?:engineers|account)$/, keys: [], screen: accountsScreen },
];

const userBox = h('div', { class: 'user' });
const connection = h('span', { class: 'connection', aria: { live: 'polite' } });
const main = h('main', { id: 'main', tabindex: -1 });
const header = h(
  'header',
  { class: 'topbar' },
  h('a', { href: '#/', class: 'brand' }, h('span', { class: 'logo', aria: { hidden: 'true' } }), 'Periscope'),
  connection,
  userBox,
);
let cleanup: (() => void) | void = undefined;

function renderUser(): void {
  if (!app.me) {
    replace(userBox);
    return;
  }
  replace(
    userBox,
    app.me.user.admin ? h('a', { href: '#/engineers', class: 'nav-link' }, 'Engineers') : h('a', { href: '#/account', class: 'nav-link' }, 'My account'),
    h('span', { class: 'who' }, app.me.user.username, app.me.user.admin ? h('span', { class: 'badge' }, 'admin') : null),
    button('Sign out', async () => {
      try {
        await api.logout();
      } catch {
        // signed out anyway as far as this page is concerned
      }
      signedOut();
    }),
  );
}

function signedOut(): void {
  app.me = null;
  setCsrfToken('');
  socket.stop();
  renderUser();
  route();
}

function signedIn(): void {
  renderUser();
  socket.start();
  route();
}

function route(): void {
  if (cleanup) cleanup();
  cleanup = undefined;
  replace(main);
  if (!app.me) {
    cleanup = loginScreen(signedIn)(main, {});
    return;
  }
  // A route's query (after '?') is the screen's view state, e.g. a capture's zoom and search.
  const [hash, query = ''] = (location.hash || '#/').split(/\?(.*)/s, 2);
  for (const r of routes) {
    const m = r.pattern.exec(hash);
    if (!m) continue;
    const params: Record<string, string> = { query };
    r.keys.forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1])));
    cleanup = r.screen(main, params);
    main.focus({ preventScroll: true });
    window.scrollTo(0, 0);
    return;
  }
  app.setTitle('Not found');
  replace(main, h('div', { class: 'page' }, h('h1', null, 'Not found'), h('p', null, 'Nothing lives at this address. ', h('a', { href: '#/' }, 'Back to the sessions'))));
}

socket.onStatus((status, detail) => {
  connection.className = `connection ${status}`;
  // Signed out (or not signed in yet) the socket is stopped on purpose: no banner on the sign-in page.
  const text = { open: '', stopped: '', connecting: 'Connecting to the relay…', closed: `Disconnected from the relay${detail ? ` (${detail})` : ''}; retrying…` }[status];
  setText(connection, text);
});

async function boot(): Promise<void> {
  document.body.append(button('Skip to content', () => main.focus(), { class: 'skip' }), header, main);
  setUnauthenticatedHandler(() => {
    if (app.me) signedOut();
  });
  // A refused socket: if the sign-in itself is gone (signed out elsewhere, account disabled), /api/me says 401.
  socket.onRefused = () =>
    void api.me().catch((err) => {
      if (err instanceof ApiError && err.status === 401 && app.me) signedOut();
    });
  window.addEventListener('hashchange', route);
  try {
    const me = await api.me();
    setCsrfToken(me.csrfToken);
    app.me = me;
    signedIn();
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      signedOut();
      return;
    }
    replace(main, h('div', { class: 'page' }, errorFrom(err), button('Try again', () => location.reload())));
  }
}

void boot();
