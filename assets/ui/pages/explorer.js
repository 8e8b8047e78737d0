// The effective-access explorer: pick a user (or a role and groups) and see every target, tool,
// resource and prompt they get, the policy that decided each, and the credential tier that
// would be injected.

import { h, mount, post, table, badge, field, attempt, words } from '../lib.js';

export function explorer() {
  const out = h('div', { 'aria-live': 'polite' });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'off' });
  const role = h('input', { name: 'role', autocomplete: 'off', placeholder: 'dev' });
  const groups = h('input', { name: 'groups', autocomplete: 'off', placeholder: 'eng, ops' });
  const form = h('form', {
    class: 'inline-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const body = email.value.trim() ? { email: email.value.trim() } : { role: role.value.trim() || 'user', groups: words(groups.value) };
      mount(out, h('p', { class: 'muted' }, 'Asking every visible target what it offers…'));
      const r = await attempt(() => post('/api/policies/explain', body));
      if (!r) { mount(out); return; }
      mount(out,
        h('p', {}, `${r.subject.email || `role ${r.subject.role}`}${r.subject.groups.length ? ` · groups ${r.subject.groups.join(', ')}` : ''}`),
        r.targets.map((t) => h('section', { class: 'explain-target' },
          h('h3', {}, t.name, ' ', badge(t.visible ? 'visible' : 'hidden', t.visible ? 'good' : 'bad'),
            h('small', { class: 'muted' }, t.policy ? ` by ${t.policy}` : ' (no policy matched)'),
            h('small', { class: 'muted' }, ` · token from: ${t.credential || 'none'}`)),
          Object.keys(t.env).length ? h('p', { class: 'muted env-tiers' }, 'Env: ',
            Object.entries(t.env).map(([k, tier]) => `${k} ← ${tier}`).join(', ')) : null,
          t.error ? h('p', { class: 'error' }, t.error) : null,
          t.visible ? table([
            ['Kind', (i) => i.kind], ['Name', (i) => h('code', {}, i.exposed)],
            ['Decision', (i) => badge(i.allowed ? 'allow' : 'deny', i.allowed ? 'good' : 'bad')],
            ['Policy', (i) => i.policy || 'default deny'],
          ], t.items, 'The target offers nothing.') : null)));
    },
  },
  field('User email', email, 'Or leave empty and give a role and groups.'),
  field('Role', role), field('Groups', groups),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Explain access')));
  return h('section', { class: 'card' }, h('h2', {}, 'Effective access'), form, out);
}
