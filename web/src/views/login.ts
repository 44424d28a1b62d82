import { api, setCsrfToken } from '../api.ts';
import { app, type Screen } from '../app.ts';
import { field, h, replace } from '../dom.ts';
import { errorFrom } from '../errors.ts';

export function loginScreen(onSignedIn: () => void): Screen {
  return (root) => {
    app.setTitle('Sign in');
    const username = h('input', { type: 'text', name: 'username', autocomplete: 'username', required: true });
    const password = h('input', { type: 'password', name: 'password', autocomplete: 'current-password', required: true });
    const error = h('div', { class: 'form-error' });
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
    const form = h(
      'form',
      {
        class: 'card login',
        onsubmit: async (ev) => {
          ev.preventDefault();
          submit.disabled = true;
          replace(error);
          try {
            await api.login(username.value, password.value);
            const me = await api.me();
            setCsrfToken(me.csrfToken);
            app.me = me;
            onSignedIn();
          } catch (err) {
            replace(error, errorFrom(err));
            password.select();
          } finally {
            submit.disabled = false;
          }
        },
      },
      h('h1', null, 'Sign in to Periscope'),
      field('Username', username),
      field('Password', password),
      error,
      submit,
    );
    replace(root, h('div', { class: 'center' }, form));
    username.focus();
  };
}
