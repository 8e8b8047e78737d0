// Policies (admin): ordered by priority (first match wins), add/edit/enable/remove with
// subjects, a test form (user, target, item → decision and why), and the effective-access
// explorer.

import { h, mount, get, post, put, del, table, badge, dialog, field, select, attempt, pageHeader, formValues, confirmAction } from '../lib.js';
import { explorer } from './explorer.js';

function subjectText(s) {
  return s.subject_type === 'everyone' ? 'everyone' : `${s.subject_type}: ${s.subject_value}`;
}

/** "role:dev, group:eng, user:a@x, everyone" ↔ subjects. */
function parseSubjects(text) {
  return String(text || '').split(/[,\n]+/).map((s) => s.trim()).filter(Boolean).map((s) => {
    if (s === 'everyone') return { subject_type: 'everyone' };
    const i = s.indexOf(':');
    return { subject_type: s.slice(0, i).trim(), subject_value: s.slice(i + 1).trim() };
  });
}

function policyForm(p, targets, done) {
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = formValues(form);
      const body = {
        name: v.name.trim(), description: v.description, target_id: v.target || null,
        resource_type: v.resource_type, resource_pattern: v.resource_pattern.trim() || null,
        effect: v.effect, priority: Number(v.priority), enabled: v.enabled,
        subjects: parseSubjects(v.subjects),
      };
      const r = await attempt(() => (p ? put(`/api/policies/${p.id}`, body) : post('/api/policies', body)), p ? 'Policy saved' : 'Policy added');
      if (r) { d.close(); done(); }
    },
  },
  field('Name', { name: 'name', required: true, value: p?.name || '', autocomplete: 'off' }),
  field('Description', { name: 'description', value: p?.description || '' }),
  field('Effect', select('effect', ['allow', 'deny'], p?.effect || 'allow')),
  field('Priority', { name: 'priority', type: 'number', value: p?.priority ?? 100, required: true }, 'Higher first; the first match decides.'),
  field('Target', select('target', [['', 'All targets'], ...targets.map((t) => [t.id, t.name])], p?.target_id || '')),
  field('Item type', select('resource_type', ['all', 'tool', 'resource', 'prompt'], p?.resource_type || 'all')),
  field('Pattern (regular expression, whole name)', { name: 'resource_pattern', value: p?.resource_pattern || '', placeholder: 'delete_.*' }),
  field('Subjects', { name: 'subjects', required: true, value: (p?.subjects || []).map(subjectText).map((s) => s.replace(': ', ':')).join(', '), placeholder: 'role:dev, group:eng, user:alice@example.com, everyone' }),
  h('div', { class: 'field inline' }, h('input', { type: 'checkbox', id: 'policy-enabled', name: 'enabled', checked: p ? p.enabled : true }), h('label', { for: 'policy-enabled' }, 'Enabled')),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, p ? 'Save' : 'Add policy')));
  const d = dialog(p ? `Edit ${p.name}` : 'Add a policy', form, { wide: true });
}

function testForm(targets) {
  const out = h('div', { class: 'result', 'aria-live': 'polite' });
  const form = h('form', {
    class: 'inline-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = formValues(form);
      const body = { email: v.email.trim(), target: v.target };
      if (v.resource_type !== 'target') { body.resource_type = v.resource_type; body.name = v.name.trim(); }
      const r = await attempt(() => post('/api/policies/evaluate', body));
      if (!r) return;
      mount(out, h('p', {}, badge(r.decision, r.decision === 'allow' ? 'good' : 'bad'), ' ',
        r.policy ? `decided by policy ${r.policy.name}` : 'no policy matched: default deny'),
      h('details', {}, h('summary', {}, 'Why (every policy considered)'), h('pre', {}, JSON.stringify(r.trace, null, 2))));
    },
  },
  field('User email', { name: 'email', type: 'email', required: true }),
  field('Target', select('target', targets.map((t) => t.name))),
  field('Item type', select('resource_type', [['tool', 'tool'], ['resource', 'resource'], ['prompt', 'prompt'], ['target', 'the target itself']], 'tool')),
  field('Item name or URI', { name: 'name' }),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Test')));
  return h('section', { class: 'card' }, h('h2', {}, 'Test a decision'), form, out);
}

export function render(main) {
  const list = h('div', {});
  const tools = h('div', { class: 'stack' });
  let targets = [];
  const load = async () => {
    const [policies, ts] = await Promise.all([attempt(() => get('/api/policies')), attempt(() => get('/api/targets'))]);
    if (!policies || !ts) return;
    targets = ts;
    policies.sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name));
    mount(list, table([
      ['Priority', (p) => p.priority],
      ['Name', (p) => h('strong', {}, p.name)],
      ['Effect', (p) => badge(p.effect, p.effect === 'allow' ? 'good' : 'bad')],
      ['Subjects', (p) => p.subjects.map(subjectText).join(', ') || '—'],
      ['Target', (p) => p.target_name || 'all'],
      ['Items', (p) => `${p.resource_type}${p.resource_pattern ? ` ~ ${p.resource_pattern}` : ''}`],
      ['Status', (p) => (p.enabled ? badge('enabled', 'good') : badge('disabled'))],
      ['', (p) => h('div', { class: 'row-actions' },
        h('button', { onclick: () => policyForm(p, targets, load) }, 'Edit'),
        h('button', { onclick: async () => { if (await attempt(() => put(`/api/policies/${p.id}`, { enabled: !p.enabled }), p.enabled ? 'Policy disabled' : 'Policy enabled')) load(); } }, p.enabled ? 'Disable' : 'Enable'),
        h('button', { class: 'danger', onclick: async () => { if (confirmAction(`Remove policy ${p.name}?`) && await attempt(() => del(`/api/policies/${p.id}`), 'Policy removed') !== undefined) load(); } }, 'Remove'))],
    ], policies, 'No policies: nobody may use anything (default deny).'));
    mount(tools, testForm(targets), explorer());
  };
  mount(main, pageHeader('Policies', h('button', { class: 'primary', onclick: () => policyForm(null, targets, load) }, 'Add policy')),
    h('p', { class: 'muted' }, 'Tried from the highest priority down; the first policy that matches decides. Nothing matches → denied.'),
    list, tools);
  load();
}
