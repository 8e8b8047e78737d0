// Targets: admins list, add, edit, enable/disable, remove, test, browse and manage credentials
// of every transport; other users see the targets they may use and set their own credentials.

import { h, mount, get, post, put, del, table, badge, dialog, field, select, attempt, pageHeader, formValues, confirmAction, words } from '../lib.js';
import { credentialsDialog, ownCredentialsDialog } from './credentials.js';

// kubernetes targets run as pods when the server has `kubernetes.enabled`; otherwise the API
// refuses them and the form shows its reason.
const TRANSPORTS = ['streamable-http', 'sse', 'stdio', 'kubernetes'];

function lines(s) {
  return String(s || '').split('\n').map((l) => l.trim()).filter(Boolean);
}

function envText(env) {
  return Object.entries(env || {}).map(([k, v]) => `${k}=${v}`).join('\n');
}

function parseEnv(text) {
  const env = {};
  for (const l of lines(text)) {
    const i = l.indexOf('=');
    if (i > 0) env[l.slice(0, i).trim()] = l.slice(i + 1);
  }
  return env;
}

/** The add/edit form; every transport's fields, shown for the chosen transport. */
function targetForm(t, done) {
  const transport = select('transport_type', TRANSPORTS, t ? t.transport_type : 'streamable-http');
  const groups = {
    http: h('div', { class: 'group' },
      field('URL', { name: 'url', type: 'url', value: t?.url || '', placeholder: 'https://mcp.example.com/mcp' }),
      field('Statefulness', select('statefulness', ['stateless', 'stateful'], t?.statefulness || 'stateless'),
        'Stateful gives each client session its own upstream session.')),
    stdio: h('div', { class: 'group' },
      field('Command', { name: 'command', value: t?.command || '', placeholder: 'npx' }),
      field('Arguments (one per line)', h('textarea', { name: 'args', rows: 3 }, (t?.args || []).join('\n'))),
      field('Working directory', { name: 'cwd', value: t?.cwd || '' })),
    kubernetes: h('div', { class: 'group' },
      field('Image', { name: 'image', value: t?.image || '' }),
      field('Port', { name: 'port', type: 'number', min: 1, max: 65535, value: t?.port ?? '' }),
      field('Health path', { name: 'health_path', value: t?.health_path || '' })),
    pooled: h('div', { class: 'group' },
      field('Isolation', select('isolation_boundary', ['shared', 'per_role', 'per_group', 'per_user'], t?.isolation_boundary || 'shared'),
        'Which callers share one process or pod.')),
  };
  const showGroups = () => {
    const v = transport.value;
    groups.http.hidden = !(v === 'streamable-http' || v === 'sse');
    groups.stdio.hidden = v !== 'stdio';
    groups.kubernetes.hidden = v !== 'kubernetes';
    groups.pooled.hidden = !(v === 'stdio' || v === 'kubernetes');
  };
  transport.addEventListener('change', showGroups);
  showGroups();
  const authType = select('auth_type', ['none', 'bearer', 'header'], t?.auth_type || 'none');
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const v = formValues(form);
      const http = v.transport_type === 'streamable-http' || v.transport_type === 'sse';
      const body = {
        name: v.name.trim(),
        transport_type: v.transport_type,
        url: http ? (v.url.trim() || null) : null,
        command: v.transport_type === 'stdio' ? (v.command.trim() || null) : null,
        args: v.transport_type === 'stdio' ? lines(v.args) : [],
        cwd: v.transport_type === 'stdio' ? (v.cwd.trim() || null) : null,
        image: v.transport_type === 'kubernetes' ? (v.image.trim() || null) : null,
        port: v.transport_type === 'kubernetes' && v.port ? Number(v.port) : null,
        health_path: v.transport_type === 'kubernetes' ? (v.health_path.trim() || null) : null,
        auth_type: v.auth_type,
        auth_header_name: v.auth_type === 'header' ? (v.auth_header_name.trim() || null) : null,
        prefix: v.use_default_prefix ? null : v.prefix,
        timeout: v.timeout.trim() ? (Number.isNaN(Number(v.timeout)) ? v.timeout.trim() : Number(v.timeout)) : null,
        env: parseEnv(v.env),
        tags: words(v.tags),
        user_token: v.user_token,
        user_env: words(v.user_env),
        enabled: v.enabled,
      };
      if (http) body.statefulness = v.statefulness;
      if (!http) body.isolation_boundary = v.isolation_boundary;
      const r = await attempt(() => (t ? put(`/api/targets/${t.id}`, body) : post('/api/targets', body)),
        t ? 'Target saved' : 'Target added');
      if (r) { probes.clear(); d.close(); done(); }
    },
  },
  field('Name', { name: 'name', required: true, value: t?.name || '', autocomplete: 'off', pattern: '[A-Za-z0-9_\\-]+' }),
  field('Transport', transport),
  groups.http, groups.stdio, groups.kubernetes, groups.pooled,
  field('Upstream auth', authType, 'Bearer or a named header, filled per caller from the target\'s credentials.'),
  field('Auth header name', { name: 'auth_header_name', value: t?.auth_header_name || '', placeholder: 'X-Api-Key' }),
  h('div', { class: 'field inline' }, h('input', { type: 'checkbox', id: 'use-default-prefix', name: 'use_default_prefix', checked: !t || t.prefix === null }),
    h('label', { for: 'use-default-prefix' }, 'Default prefix (the target name)')),
  field('Prefix', { name: 'prefix', value: t?.prefix ?? '' }, 'Used when the box above is unchecked; empty exposes names unprefixed.'),
  field('Timeout', { name: 'timeout', value: t?.timeout ?? '', placeholder: '30s' }),
  field('Environment (KEY=value per line, not secret)', h('textarea', { name: 'env', rows: 3 }, envText(t?.env))),
  field('Tags', { name: 'tags', value: (t?.tags || []).join(', ') }),
  h('div', { class: 'field inline' }, h('input', { type: 'checkbox', id: 'target-user-token', name: 'user_token', checked: !!t?.user_token }),
    h('label', { for: 'target-user-token' }, 'Users may set their own token')),
  field('Env keys users may set (their own values)', { name: 'user_env', value: (t?.user_env || []).join(', '), placeholder: 'REGION' }),
  h('div', { class: 'field inline' }, h('input', { type: 'checkbox', id: 'target-enabled', name: 'enabled', checked: t ? t.enabled : true }),
    h('label', { for: 'target-enabled' }, 'Enabled')),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, t ? 'Save' : 'Add target')));
  const d = dialog(t ? `Edit ${t.name}` : 'Add a target', form, { wide: true });
}

function describe(t) {
  if (t.transport_type === 'stdio') return [t.command, ...(t.args || [])].join(' ');
  if (t.transport_type === 'kubernetes') return `${t.image || ''}${t.port ? `:${t.port}` : ''}`;
  return t.url || '';
}

async function testDialog(t) {
  const body = h('div', {}, h('p', { class: 'muted' }, `Connecting to ${t.name}…`));
  dialog(`Test ${t.name}`, body, { wide: true });
  try {
    const r = await post(`/api/targets/${t.id}/test`, {});
    const info = r.server_info || {};
    const list = (title, items, key) => h('section', {}, h('h3', {}, `${title} (${items.length})`),
      items.length ? h('ul', { class: 'items' }, items.map((i) => h('li', {}, h('code', {}, i[key]), i.description ? h('span', { class: 'muted' }, ` — ${i.description}`) : null))) : h('p', { class: 'muted' }, 'None.'));
    mount(body,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Era'), h('dd', {}, `${r.era} (protocol ${r.protocol_version})`),
        h('dt', {}, 'Server'), h('dd', {}, `${info.name || '?'} ${info.version || ''}`),
        h('dt', {}, 'Transport'), h('dd', {}, r.transport),
        h('dt', {}, 'Counts'), h('dd', {}, `${r.counts.tools} tools, ${r.counts.resources} resources, ${r.counts.prompts} prompts`)),
      list('Tools', r.items.tools, 'name'), list('Resources', r.items.resources, 'uri'), list('Prompts', r.items.prompts, 'name'));
  } catch (e) {
    mount(body, h('p', { class: 'error', role: 'alert' }, e.message));
  }
}

async function instancesDialog(t) {
  const body = h('div', {});
  const load = async () => {
    const rows = await attempt(() => get(`/api/targets/${t.id}/instances`));
    if (!rows) return;
    mount(body, table([
      ['Isolation key', (r) => r.isolation_key], ['Replica', (r) => r.replica], ['PID', (r) => r.pid ?? '—'],
      ['Status', (r) => badge(r.status, r.status === 'running' ? 'good' : '')], ['Started', (r) => new Date(r.started_at).toLocaleString()],
    ], rows, t.transport_type === 'kubernetes' ? 'No pods recorded.' : 'No processes recorded.'),
    h('div', { class: 'buttons' }, h('button', {
      onclick: async () => { await attempt(() => post(`/api/targets/${t.id}/restart-instances`, {}), 'Restart requested'); load(); },
    }, 'Restart all')));
  };
  dialog(`${t.transport_type === 'kubernetes' ? 'Pods' : 'Processes'} of ${t.name}`, body, { wide: true });
  load();
}

/** Test results per target id, kept for a minute so revisiting the page does not re-probe. */
const probes = new Map();
const PROBE_TTL_MS = 60_000;

function isHttp(t) {
  return t.transport_type === 'streamable-http' || t.transport_type === 'sse';
}

/** The era and counts cell of a target, filled when its probe answers. */
function probeCell(t) {
  const cell = h('span', { class: 'muted' }, isHttp(t) && t.enabled ? 'checking…' : '—');
  if (!isHttp(t) || !t.enabled) return cell;
  let entry = probes.get(t.id);
  if (!entry || Date.now() - entry.at > PROBE_TTL_MS) {
    entry = { at: Date.now(), result: post(`/api/targets/${t.id}/test`, {}).catch((e) => ({ error: e.message })) };
    probes.set(t.id, entry);
  }
  entry.result.then((r) => {
    if (r.error) mount(cell, h('span', { class: 'badge bad', title: r.error }, 'unreachable'));
    else mount(cell, h('span', {}, `${r.era} · ${r.counts.tools} tools, ${r.counts.resources} resources, ${r.counts.prompts} prompts`));
  });
  return cell;
}

export function render(main, { me, admin }) {
  const list = h('div', {});
  const load = async () => {
    const targets = await attempt(() => get('/api/targets'));
    if (!targets) return;
    const actions = (t) => h('div', { class: 'row-actions' },
      admin ? [
        h('button', { onclick: () => testDialog(t) }, 'Test connection'),
        h('button', { onclick: () => targetForm(t, load) }, 'Edit'),
        h('button', {
          onclick: async () => {
            if (await attempt(() => put(`/api/targets/${t.id}`, { enabled: !t.enabled }), t.enabled ? 'Target disabled' : 'Target enabled')) load();
          },
        }, t.enabled ? 'Disable' : 'Enable'),
        h('button', { onclick: () => credentialsDialog(t) }, 'Credentials'),
        t.transport_type === 'stdio' ? h('button', { onclick: () => instancesDialog(t) }, 'Processes') : null,
        t.transport_type === 'kubernetes' ? h('button', { onclick: () => instancesDialog(t) }, 'Pods') : null,
        h('button', {
          class: 'danger',
          onclick: async () => {
            if (!confirmAction(`Remove target ${t.name}?`)) return;
            if (await attempt(() => del(`/api/targets/${t.id}`), 'Target removed') !== undefined) load();
          },
        }, 'Remove'),
      ] : h('button', { onclick: () => ownCredentialsDialog(t, me) }, 'My credentials'));
    mount(list, table([
      ['Name', (t) => h('strong', {}, t.name)],
      ['Status', (t) => (t.enabled ? badge('enabled', 'good') : badge('disabled'))],
      ['Transport', (t) => t.transport_type],
      admin ? ['Endpoint', (t) => h('code', { class: 'clip' }, describe(t))] : ['Era', (t) => t.era || '—'],
      ['Prefix', (t) => (t.prefix === null ? `${t.name}__` : (t.prefix ? `${t.prefix}__` : '(none)'))],
      ['Auth', (t) => t.auth_type],
      admin ? ['Era · offers', probeCell] : null,
      ['', actions],
    ], targets, admin ? 'No targets yet. Add the first MCP server.' : 'No target is available to you yet; ask an admin for a policy.'));
  };
  mount(main, pageHeader('Targets', admin ? h('button', { class: 'primary', onclick: () => targetForm(null, load) }, 'Add target') : null), list);
  load();
}

