// Users (admin): list, add, change role and groups, recycle MCP sessions, remove.

import { h, mount, get, post, put, del, table, badge, when, dialog, field, select, attempt, pageHeader, words, confirmAction } from '../lib.js';

/** id → email of every account (admins only; others get an empty map). */
export async function userNames() {
  try {
    const users = await get('/api/users');
    return new Map(users.map((u) => [u.id, u.email]));
  } catch {
    return new Map();
  }
}

function editDialog(user, done) {
  const role = h('input', { name: 'role', value: user ? user.role : 'user', required: true, autocomplete: 'off' });
  const groups = h('input', { name: 'groups', value: user ? user.groups.join(', ') : '', autocomplete: 'off' });
  const email = h('input', { name: 'email', type: 'email', required: true, autocomplete: 'off' });
  const password = h('input', { name: 'password', type: 'password', required: true, autocomplete: 'new-password', minlength: 8 });
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { role: role.value.trim(), groups: words(groups.value) };
      const ok = await attempt(() => (user
        ? put(`/api/users/${user.id}`, body)
        : post('/api/users', { ...body, email: email.value.trim(), password: password.value })),
      user ? 'User updated' : 'User added');
      if (ok) { d.close(); done(); }
    },
  },
  user ? null : field('Email', email),
  user ? null : field('Initial password', password, 'At least 8 characters; the user can change it with `reflow user passwd`.'),
  field('Role', role, '"admin" may do everything; any other name is matched by policies.'),
  field('Groups', groups, 'Comma or space separated.'),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, user ? 'Save' : 'Add user')));
  const d = dialog(user ? `Edit ${user.email}` : 'Add a user', form);
}

export function render(main) {
  const list = h('div', {});
  const load = async () => {
    const users = await attempt(() => get('/api/users'));
    if (!users) return;
    mount(list, table([
      ['Email', (u) => u.email],
      ['Role', (u) => badge(u.role, u.role === 'admin' ? 'accent' : '')],
      ['Groups', (u) => u.groups.join(', ') || '—'],
      ['Created', (u) => when(u.created_at)],
      ['', (u) => h('div', { class: 'row-actions' },
        h('button', { onclick: () => editDialog(u, load) }, 'Role & groups'),
        h('button', {
          onclick: () => attempt(async () => {
            const r = await post(`/api/users/${u.id}/recycle`, {});
            return r;
          }, `Sessions of ${u.email} recycled`),
        }, 'Recycle sessions'),
        h('button', {
          class: 'danger',
          onclick: async () => {
            if (!confirmAction(`Remove ${u.email}? Their tokens stop working at once.`)) return;
            if (await attempt(() => del(`/api/users/${u.id}`), 'User removed') !== undefined) load();
          },
        }, 'Remove'))],
    ], users));
  };
  mount(main, pageHeader('Users', h('button', { class: 'primary', onclick: () => editDialog(null, load) }, 'Add user')), list);
  load();
}

