// Upstream credentials of a target: tokens and env keys per scope (default, role, group,
// user). Values are write-only: the UI sends them and never receives them back.

import { h, mount, get, post, put, del, table, dialog, field, select, attempt, badge, confirmAction } from '../lib.js';

const enc = encodeURIComponent;

function scopePath(scope, value) {
  return scope === 'default' ? 'default' : `${scope}/${enc(value)}`;
}

function writeForm(t, onDone) {
  const scope = select('scope', [['default', 'Default (everyone)'], ['role', 'Role'], ['group', 'Group'], ['user', 'User (email)']], 'default');
  const scopeValue = h('input', { name: 'scope_value', autocomplete: 'off' });
  const kind = select('kind', [['token', 'Token'], ['env', 'Env entry']], 'token');
  const key = h('input', { name: 'key', autocomplete: 'off', placeholder: 'API_KEY' });
  const value = h('input', { name: 'value', type: 'password', autocomplete: 'new-password', required: true });
  const keyField = field('Env key', key);
  const valueField = field('Scope value', scopeValue, 'The role, group or user email the value is for.');
  const sync = () => {
    keyField.hidden = kind.value !== 'env';
    valueField.hidden = scope.value === 'default';
  };
  kind.addEventListener('change', sync);
  scope.addEventListener('change', sync);
  sync();
  const form = h('form', {
    class: 'inline-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const path = scopePath(scope.value, scopeValue.value.trim());
      const ok = await attempt(() => (kind.value === 'token'
        ? put(`/api/targets/${t.id}/tokens/${path}`, { token: value.value })
        : post(`/api/targets/${t.id}/env/${path}`, { [key.value.trim()]: value.value })), 'Saved (the value is not shown again)');
      if (ok) { value.value = ''; onDone(); }
    },
  }, field('Scope', scope), valueField, field('Kind', kind), keyField, field('Value (write-only)', value),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Set value')));
  return form;
}

/** Admin: every scope's token and env keys, with set and remove. */
export function credentialsDialog(t) {
  const body = h('div', {});
  const list = h('div', {});
  const load = async () => {
    const [tokens, env] = await Promise.all([
      attempt(() => get(`/api/targets/${t.id}/tokens`)),
      attempt(() => get(`/api/targets/${t.id}/env`)),
    ]);
    if (!tokens || !env) return;
    const rows = tokens.map((x) => ({ kind: 'token', scope: x.scope, value: x.scope_value, key: '—' }));
    for (const k of env.default) rows.push({ kind: 'env', scope: 'default', value: null, key: k });
    for (const s of ['role', 'group', 'user']) {
      for (const [v, keys] of Object.entries(env[s] || {})) for (const k of keys) rows.push({ kind: 'env', scope: s, value: v, key: k });
    }
    mount(list, table([
      ['Kind', (r) => badge(r.kind)], ['Scope', (r) => r.scope], ['For', (r) => r.value || '—'], ['Key', (r) => h('code', {}, r.key)],
      ['Value', () => h('span', { class: 'muted' }, 'set (hidden)')],
      ['', (r) => h('button', {
        class: 'danger',
        onclick: async () => {
          if (!confirmAction('Remove this value?')) return;
          const path = scopePath(r.scope, r.value);
          const url = r.kind === 'token' ? `/api/targets/${t.id}/tokens/${path}` : `/api/targets/${t.id}/env/${path}/${enc(r.key)}`;
          if (await attempt(() => del(url), 'Removed') !== undefined) load();
        },
      }, 'Remove')],
    ], rows, 'No credentials stored for this target.'));
  };
  mount(body, h('p', { class: 'muted' }, 'Resolved per key: user > group > role > default. Values are sealed at rest and never shown.'), list, h('h3', {}, 'Set a value'), writeForm(t, load));
  dialog(`Credentials of ${t.name}`, body, { wide: true });
  load();
}

/** A user: their own token and env entries for one target, and where each key resolves from. */
export function ownCredentialsDialog(t, me) {
  const body = h('div', {});
  const status = h('div', {});
  const load = async () => {
    const [tok, resolve] = await Promise.all([
      attempt(() => get(`/api/targets/${t.id}/token`)),
      attempt(() => get(`/api/targets/${t.id}/env/resolve`)),
    ]);
    const entries = Object.entries((resolve && resolve.env) || {});
    mount(status,
      h('p', {}, 'Your own token: ', tok && tok.configured ? badge('set', 'good') : badge('not set')),
      resolve ? h('p', { class: 'muted' }, 'Token source for you: ', resolve.token ? `${resolve.token.scope} (${resolve.token.masked})` : 'none') : null,
      entries.length ? table([['Key', ([k]) => h('code', {}, k)], ['From scope', ([, v]) => v.scope], ['Value', ([, v]) => v.masked]], entries) : null);
  };
  const value = h('input', { name: 'token', type: 'password', autocomplete: 'new-password', required: true });
  const form = !t.user_token ? h('p', { class: 'muted' }, 'This target takes no token of your own (an admin can allow it).') : h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (await attempt(() => put(`/api/targets/${t.id}/token`, { token: value.value }), 'Your token is saved')) { value.value = ''; load(); }
    },
  }, field('Set your token for this target (write-only)', value),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Save token'),
    h('button', { type: 'button', class: 'danger', onclick: async () => { if (await attempt(() => del(`/api/targets/${t.id}/token`), 'Your token is removed') !== undefined) load(); } }, 'Remove my token')));
  const keys = t.user_env || [];
  const key = select('key', keys, keys[0]);
  const envValue = h('input', { name: 'value', type: 'password', autocomplete: 'new-password', required: true });
  const envForm = !keys.length ? h('p', { class: 'muted' }, 'This target takes no env entries of your own.') : h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      if (await attempt(() => post(`/api/targets/${t.id}/env/user/${enc(me.id)}`, { [key.value]: envValue.value }), 'Saved')) { envValue.value = ''; load(); }
    },
  }, field('Env key', key), field('Value (write-only)', envValue), h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Set env entry')));
  mount(body, status, form, h('h3', {}, 'Your env entries'), envForm);
  dialog(`My credentials for ${t.name}`, body, { wide: true });
  load();
}
