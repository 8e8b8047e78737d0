// Tokens: the caller's own API tokens for MCP clients; a new one is shown once, with
// ready-to-paste client configurations.

import { h, mount, get, post, del, table, when, dialog, field, attempt, pageHeader, confirmAction, select } from '../lib.js';

function copyable(label, text) {
  const pre = h('pre', { tabindex: '0' }, text);
  return h('div', { class: 'snippet' }, h('div', { class: 'snippet-head' }, h('strong', {}, label),
    h('button', {
      class: 'small', onclick: async (ev) => {
        try { await navigator.clipboard.writeText(text); ev.target.textContent = 'Copied'; } catch { ev.target.textContent = 'Select and copy'; }
      },
    }, 'Copy')), pre);
}

/** Client configurations for a token (Claude Desktop, Claude Code, Cursor, VS Code, curl). */
export function clientConfigs(token) {
  const url = `${location.origin}/mcp`;
  const auth = `Bearer ${token}`;
  const server = { type: 'http', url, headers: { Authorization: auth } };
  return [
    ['Claude Desktop (claude_desktop_config.json, via mcp-remote)', JSON.stringify({
      mcpServers: { reflow: { command: 'npx', args: ['-y', 'mcp-remote', url, '--header', `Authorization:${auth}`] } },
    }, null, 2)],
    ['Claude Code', `claude mcp add --transport http reflow ${url} --header "Authorization: ${auth}"`],
    ['Cursor (~/.cursor/mcp.json)', JSON.stringify({ mcpServers: { reflow: { url, headers: { Authorization: auth } } } }, null, 2)],
    ['VS Code (.vscode/mcp.json)', JSON.stringify({ servers: { reflow: server } }, null, 2)],
    ['curl', `curl -s ${url} -H 'Authorization: ${auth}' -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'`],
  ];
}

function createDialog(done) {
  const name = h('input', { name: 'name', required: true, autocomplete: 'off', placeholder: 'laptop' });
  const expires = select('expires_in', [['', 'Never'], ['7d', '7 days'], ['30d', '30 days'], ['90d', '90 days'], ['365d', '1 year']], '90d');
  const body = h('div', {});
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      const req = { name: name.value.trim() };
      if (expires.value) req.expires_in = expires.value;
      const r = await attempt(() => post('/api/auth/tokens', req));
      if (!r) return;
      done();
      mount(body,
        h('p', { class: 'warn-box', role: 'alert' }, 'Copy the token now: it is shown only once and cannot be retrieved later.'),
        copyable('Token', r.token),
        h('h3', {}, 'Client configuration'),
        clientConfigs(r.token).map(([label, text]) => copyable(label, text)));
    },
  }, field('Name', name), field('Expires', expires),
  h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Create token')));
  mount(body, form);
  dialog('Create an API token', body, { wide: true });
}

export function render(main) {
  const list = h('div', {});
  const load = async () => {
    const tokens = await attempt(() => get('/api/auth/tokens'));
    if (!tokens) return;
    mount(list, table([
      ['Name', (t) => t.name],
      ['Created', (t) => when(t.created_at)],
      ['Expires', (t) => (t.expires_at ? when(t.expires_at) : 'never')],
      ['', (t) => h('button', {
        class: 'danger',
        onclick: async () => {
          if (!confirmAction(`Revoke ${t.name}? Clients using it stop working at once.`)) return;
          if (await attempt(() => del(`/api/auth/tokens/${t.id}`), 'Token revoked') !== undefined) load();
        },
      }, 'Revoke')],
    ], tokens, 'No API tokens yet. Create one for each MCP client.'));
  };
  mount(main, pageHeader('Tokens', h('button', { class: 'primary', onclick: () => createDialog(load) }, 'Create token')),
    h('p', { class: 'muted' }, 'API tokens let MCP clients connect to ', h('code', {}, `${location.origin}/mcp`), ' as you. Revoking one takes effect at once.'),
    list);
  load();
}
