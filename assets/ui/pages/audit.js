// Audit log: filters (user, target, method, decision, time range, trace id), paging, a live tail from
// the activity stream, and export of the filtered rows as CSV or JSON.

import { h, mount, get, table, badge, when, field, select, attempt, pageHeader, formValues } from '../lib.js';
import { userNames } from './users.js';

const PAGE = 50;

function query(v, extra = {}) {
  const q = new URLSearchParams();
  if (v.user_id) q.set('user_id', v.user_id);
  if (v.target) q.set('target', v.target.trim());
  if (v.method) q.set('method', v.method.trim());
  if (v.decision) q.set('decision', v.decision);
  if (v.since) q.set('since', new Date(v.since).toISOString());
  if (v.until) q.set('until', new Date(v.until).toISOString());
  if (v.trace_id) q.set('trace_id', v.trace_id.trim());
  for (const [k, val] of Object.entries(extra)) q.set(k, val);
  return q;
}

export function render(main, { admin }) {
  let names = new Map();
  let offset = 0;
  let live = null;
  const rowsBox = h('div', {});
  const pager = h('div', { class: 'pager' });
  const userSel = select('user_id', [['', 'Everyone']], '');
  const form = h('form', {
    class: 'filters',
    onsubmit: (ev) => { ev.preventDefault(); offset = 0; load(); },
  },
  admin ? field('User', userSel) : null,
  field('Target', { name: 'target', autocomplete: 'off' }),
  field('Method', { name: 'method', autocomplete: 'off', placeholder: 'tools/call' }),
  field('Decision', select('decision', [['', 'Any'], ['allow', 'allow'], ['deny', 'deny']], '')),
  field('From', { name: 'since', type: 'datetime-local' }),
  field('To', { name: 'until', type: 'datetime-local' }),
  field('Trace id', { name: 'trace_id', autocomplete: 'off', placeholder: '32 hex digits', pattern: '[0-9a-fA-F]{32}' }),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Apply')));

  const columns = [
    ['Time', (r) => when(r.created_at)],
    ['User', (r) => (r.user_id ? (names.get(r.user_id) || r.user_id.slice(0, 8)) : '—')],
    ['Method', (r) => h('code', {}, r.method)],
    ['Target', (r) => r.target_name || '—'],
    ['Item', (r) => r.name || '—'],
    ['Decision', (r) => badge(r.decision, r.decision === 'allow' ? 'good' : 'bad')],
    ['Policy', (r) => r.policy_name || '—'],
    ['Status', (r) => (r.response_status === 0 ? 'ok' : (r.error || r.response_status))],
    ['Duration', (r) => `${r.duration_ms} ms`],
    ['Trace', (r) => (r.trace_id ? h('code', { title: r.trace_id }, r.trace_id.slice(0, 8)) : '—')],
  ];

  async function load() {
    const v = formValues(form);
    const rows = await attempt(() => get(`/api/logs?${query(v, { limit: PAGE + 1, offset })}`));
    if (!rows) return;
    const more = rows.length > PAGE;
    mount(rowsBox, table(columns, rows.slice(0, PAGE), 'No audit rows match.'));
    mount(pager,
      h('button', { disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, '← Newer'),
      h('span', { class: 'muted' }, `Rows ${rows.length ? offset + 1 : 0}–${offset + Math.min(rows.length, PAGE)}`),
      h('button', { disabled: !more, onclick: () => { offset += PAGE; load(); } }, 'Older →'));
  }

  const exportLink = (format) => h('button', {
    onclick: () => {
      const a = h('a', { href: `/api/logs/export?${query(formValues(form), { format, limit: 10000 })}`, download: `reflow-audit.${format}` });
      document.body.append(a);
      a.click();
      a.remove();
    },
  }, `Export ${format.toUpperCase()}`);

  const liveToggle = h('input', {
    type: 'checkbox', id: 'audit-live',
    onchange: () => {
      if (liveToggle.checked) {
        offset = 0;
        load();
        live = new EventSource('/api/observability/stream');
        live.addEventListener('activity', () => { if (offset === 0) load(); });
      } else if (live) { live.close(); live = null; }
    },
  });

  mount(main,
    pageHeader('Audit log',
      h('span', { class: 'field inline' }, liveToggle, h('label', { for: 'audit-live' }, 'Live tail')),
      exportLink('csv'), exportLink('json')),
    admin ? null : h('p', { class: 'muted' }, 'Your own requests.'),
    form, rowsBox, pager);
  if (admin) {
    userNames().then((m) => {
      names = m;
      for (const [id, email] of [...m.entries()].sort((a, b) => a[1].localeCompare(b[1]))) userSel.append(h('option', { value: id }, email));
      load();
    });
  } else load();
  return () => { if (live) live.close(); };
}
