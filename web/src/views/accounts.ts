// Accounts: for admins, the engineers of this relay (list, add, disable and
// enable, reset a password); for everyone, changing one's own password.
//   #/engineers, #/account
// Every field that sets a password shows the relay's rules (shared/accounts.ts)
// before anything is submitted, and is checked against them here first, so
// the relay's WEAK_PASSWORD is a last resort rather than the way to learn them.

import { ApiError, accountsApi, type Account } from '../api.ts';
import { app, type Screen } from '../app.ts';
import { button, checkbox, field, h, replace, uid } from '../dom.ts';
import { errorFrom } from '../errors.ts';
import { dateTime, relative } from '../format.ts';
import { USERNAME_RE, USERNAME_RULE, passwordProblem, passwordRulesText } from '../../../shared/accounts.ts';

/** Titles for the account codes the generic explanations do not know; the relay's message says the rest. */
const ACCOUNT_ERRORS: Record<string, string> = {
  WEAK_PASSWORD: 'That password does not follow the rules',
  USERNAME_TAKEN: 'That username is taken',
  CANNOT_DISABLE_SELF: 'You cannot disable your own account',
  LAST_ADMIN: 'The relay needs an enabled admin',
  WRONG_PASSWORD: 'Your current password is wrong',
  USER_NOT_FOUND: 'No such engineer',
  TOO_MANY_ATTEMPTS: 'Too many wrong passwords',
  BAD_ARGUMENT: 'Check the form',
};

function accountError(err: unknown): HTMLElement {
  if (err instanceof ApiError && Object.hasOwn(ACCOUNT_ERRORS, err.code)) return problem(ACCOUNT_ERRORS[err.code]!, err.message);
  return errorFrom(err);
}

function problem(title: string, detail: string): HTMLElement {
  return h('div', { class: 'error-box', role: 'alert' }, h('strong', null, title), h('p', null, detail));
}

/** A field that sets a password: its rules shown under it from the start, tied to it for screen readers. */
function newPasswordField(label: string): { input: HTMLInputElement; element: HTMLElement } {
  const input = h('input', { type: 'password', autocomplete: 'new-password', required: true });
  const rulesId = uid('rules');
  input.setAttribute('aria-describedby', rulesId);
  const rules = h('span', { class: 'hint password-rules', id: rulesId }, passwordRulesText());
  const element = field(label, input);
  element.append(rules);
  return { input, element };
}

/** Why the form should not be sent yet (the relay's own rule, checked here first), shown in `out`; true when it may be sent. */
function checkPassword(password: string, out: HTMLElement, again?: string): boolean {
  const why = passwordProblem(password);
  if (why) {
    replace(out, problem(ACCOUNT_ERRORS.WEAK_PASSWORD!, `The ${why}. The rule: ${passwordRulesText()}`));
    return false;
  }
  if (again !== undefined && again !== password) {
    replace(out, problem('The two new passwords differ', 'Type the same new password in both fields.'));
    return false;
  }
  return true;
}

export const accountsScreen: Screen = (root) => {
  const me = app.me;
  if (!me) return;
  const isAdmin = me.user.admin;
  app.setTitle(isAdmin ? 'Engineers' : 'Your account');
  let alive = true;
  const page = h('div', { class: 'page accounts' }, h('h1', null, isAdmin ? 'Engineers' : 'Your account'));
  if (isAdmin) {
    const engineers = engineersCard(me.user.id, () => alive);
    page.append(engineers.card, addEngineerCard(() => void engineers.load()));
    void engineers.load();
  }
  page.append(changeOwnPasswordCard());
  replace(root, page);
  return () => {
    alive = false;
  };
};

function engineersCard(myId: string, alive: () => boolean): { card: HTMLElement; load: () => Promise<void> } {
  const status = h('div', { class: 'account-status', aria: { live: 'polite' } });
  const list = h('div', { class: 'account-list' }, h('p', { class: 'muted' }, 'Loading…'));
  const card = h(
    'section',
    { class: 'card' },
    h('h2', null, 'Engineers of this relay'),
    h('p', { class: 'muted' }, 'Disabling an engineer, or setting a new password for them, signs them out everywhere at once.'),
    status,
    list,
  );
  /** The row whose inline confirmation or password form is open. */
  let open: string | null = null;
  let accounts: Account[] = [];

  async function load(): Promise<void> {
    try {
      const loaded = await accountsApi.list();
      if (!alive()) return;
      accounts = loaded;
      render();
    } catch (err) {
      if (alive()) replace(list, accountError(err));
    }
  }

  function render(): void {
    const rows = accounts.flatMap((a) => rowsOf(a));
    replace(
      list,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { class: 'data accounts-table stack-narrow' },
          h('thead', null, h('tr', null, h('th', null, 'Engineer'), h('th', null, 'Status'), h('th', null, 'Created'), h('th', null, 'Last sign-in'), h('th', null, h('span', { class: 'sr-only' }, 'Actions')))),
          h('tbody', null, ...rows),
        ),
      ),
    );
  }

  function rowsOf(a: Account): HTMLElement[] {
    const self = a.id === myId;
    const row = h(
      'tr',
      { data: { username: a.username }, class: a.disabled ? 'account-disabled' : undefined },
      h('td', { data: { label: 'Engineer' } }, h('strong', null, a.username), a.admin ? h('span', { class: 'badge' }, 'admin') : null, self ? h('span', { class: 'muted' }, ' (you)') : null),
      h('td', { data: { label: 'Status' } }, a.disabled ? h('span', { class: 'badge badge-bad', title: `since ${dateTime(a.disabledAt)}` }, 'disabled') : h('span', { class: 'badge badge-ok' }, 'active')),
      h('td', { data: { label: 'Created' } }, dateTime(a.createdAt)),
      h('td', { data: { label: 'Last sign-in' } }, a.lastSignInAt ? `${dateTime(a.lastSignInAt)} (${relative(a.lastSignInAt)})` : 'never'),
      h('td', { class: 'row-actions' }, self ? h('span', { class: 'muted' }, 'Change yours below') : actions(a)),
    );
    if (open === `password:${a.id}`) return [row, passwordRow(a)];
    return [row];
  }

  function actions(a: Account): HTMLElement {
    if (open === `disable:${a.id}`) {
      return h(
        'div',
        { class: 'actions confirm' },
        h('span', null, `Disable ${a.username}? They are signed out at once.`),
        button(`Yes, disable ${a.username}`, () => void setDisabled(a, true), { class: 'danger' }),
        button('Cancel', () => toggle(null)),
      );
    }
    return h(
      'div',
      { class: 'actions' },
      a.disabled
        ? button('Enable', () => void setDisabled(a, false), { aria: { label: `Enable ${a.username}` } })
        : button('Disable', () => toggle(`disable:${a.id}`), { class: 'danger', aria: { label: `Disable ${a.username}` } }),
      button('Reset password', () => toggle(`password:${a.id}`), { aria: { label: `Reset the password of ${a.username}`, expanded: String(open === `password:${a.id}`) } }),
    );
  }

  function toggle(which: string | null): void {
    open = open === which ? null : which;
    render();
  }

  function passwordRow(a: Account): HTMLElement {
    const { input, element } = newPasswordField(`New password for ${a.username}`);
    const out = h('div', { class: 'form-error' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Set password');
    const form = h(
      'form',
      {
        class: 'inline-form reset-password',
        onsubmit: async (ev) => {
          ev.preventDefault();
          replace(out);
          if (!checkPassword(input.value, out)) return;
          submit.disabled = true;
          try {
            const res = await accountsApi.resetPassword(a.id, input.value);
            open = null;
            done(`${a.username} has a new password${signedOutText(res.signInsRevoked)}. Give it to them over a channel you trust.`);
          } catch (err) {
            replace(out, accountError(err));
            submit.disabled = false;
          }
        },
      },
      element,
      submit,
      button('Cancel', () => toggle(null)),
    );
    const td = h('td', null, form, out);
    td.colSpan = 5;
    queueMicrotask(() => input.focus());
    return h('tr', { class: 'account-form-row' }, td);
  }

  async function setDisabled(a: Account, disabled: boolean): Promise<void> {
    replace(status);
    try {
      const res = await accountsApi.setDisabled(a.id, disabled);
      open = null;
      done(disabled ? `${a.username} is disabled${signedOutText(res.signInsRevoked)}.` : `${a.username} is enabled again and can sign in.`);
    } catch (err) {
      replace(status, accountError(err));
    }
  }

  function done(message: string): void {
    if (!alive()) return;
    replace(status, h('p', { class: 'ok' }, message));
    void load();
  }

  return { card, load };
}

function signedOutText(n: number): string {
  return n === 0 ? '' : ` and signed out (${n} sign-in${n === 1 ? '' : 's'} ended)`;
}

function addEngineerCard(added: () => void): HTMLElement {
  const username = h('input', { type: 'text', name: 'new-username', autocomplete: 'off', required: true });
  const password = newPasswordField('Password');
  let admin = false;
  const adminBox = checkbox('Admin (can manage engineers)', false, (v) => (admin = v));
  const result = h('div', { aria: { live: 'polite' } });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Add engineer');
  return h(
    'form',
    {
      class: 'card add-engineer',
      onsubmit: async (ev) => {
        ev.preventDefault();
        replace(result);
        const name = username.value.trim();
        if (!USERNAME_RE.test(name)) {
          replace(result, problem('Check the username', `The ${USERNAME_RULE}.`));
          return;
        }
        if (!checkPassword(password.input.value, result)) return;
        submit.disabled = true;
        try {
          await accountsApi.create(name, password.input.value, admin);
          replace(result, h('p', { class: 'ok' }, `Account ${name} created. Give them the password over a channel you trust.`));
          username.value = '';
          password.input.value = '';
          added();
        } catch (err) {
          replace(result, accountError(err));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('h2', null, 'Add an engineer'),
    h('div', { class: 'inline-fields' }, field('Username', username, 'a-z, 0-9, ".", "_" or "-"; up to 32'), password.element),
    adminBox,
    result,
    h('div', { class: 'actions' }, submit),
  );
}

function changeOwnPasswordCard(): HTMLElement {
  const current = h('input', { type: 'password', autocomplete: 'current-password', required: true });
  const fresh = newPasswordField('New password');
  const again = newPasswordField('New password again');
  const result = h('div', { aria: { live: 'polite' } });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Change my password');
  return h(
    'form',
    {
      class: 'card change-password',
      onsubmit: async (ev) => {
        ev.preventDefault();
        replace(result);
        if (!checkPassword(fresh.input.value, result, again.input.value)) return;
        submit.disabled = true;
        try {
          const res = await accountsApi.changeOwnPassword(current.value, fresh.input.value);
          replace(result, h('p', { class: 'ok' }, `Your password is changed${res.signInsRevoked > 0 ? `; your ${res.signInsRevoked === 1 ? 'other sign-in was' : `${res.signInsRevoked} other sign-ins were`} signed out` : ''}.`));
          for (const input of [current, fresh.input, again.input]) input.value = '';
        } catch (err) {
          replace(result, accountError(err));
          current.select();
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('h2', null, 'Change my password'),
    h('p', { class: 'muted' }, 'Your other sign-ins (other browsers) are signed out; this one goes on.'),
    field('Current password', current),
    fresh.element,
    again.element,
    result,
    h('div', { class: 'actions' }, submit),
  );
}
