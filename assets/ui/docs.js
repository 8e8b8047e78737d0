// Renders /openapi.json as a readable reference, offline: operations grouped by tag, with
// parameters, request and response schemas (component references become links).

import { h, mount } from './lib.js';

const main = document.getElementById('docs');

function schemaText(schema) {
  return JSON.stringify(schema, null, 2);
}

function refLinks(schema) {
  const text = schemaText(schema);
  const out = [];
  let last = 0;
  for (const m of text.matchAll(/"#\/components\/schemas\/([A-Za-z]+)"/g)) {
    out.push(text.slice(last, m.index), h('a', { href: `#schema-${m[1]}` }, m[0]));
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return h('pre', {}, out);
}

function access(op) {
  if (!op.security || op.security.length === 0) return 'public';
  return op.description && op.description.includes('Admin') ? 'admin' : 'any signed-in caller';
}

function operation(method, path, op) {
  const body = op.requestBody?.content?.['application/json']?.schema;
  return h('details', { class: 'op', id: op.operationId },
    h('summary', {}, h('span', { class: `method ${method}` }, method), h('span', { class: 'path' }, path), h('span', { class: 'muted' }, op.summary)),
    h('div', {},
      h('p', {}, h('strong', {}, 'Who: '), access(op)),
      op.parameters?.length ? h('p', {}, h('strong', {}, 'Parameters: '), op.parameters.map((p) => `${p.name} (${p.in}${p.required ? ', required' : ''})`).join(', ')) : null,
      body ? [h('h4', {}, 'Request body'), refLinks(body)] : null,
      h('h4', {}, 'Responses'),
      h('ul', {}, Object.entries(op.responses).map(([code, r]) => {
        const content = r.content ? Object.entries(r.content)[0] : null;
        return h('li', {}, h('code', {}, code), ' ', r.description || (r.$ref ? 'error: {"error": "…"}' : ''),
          content ? [' ', h('code', {}, content[0]), refLinks(content[1].schema)] : null);
      }))));
}

async function render() {
  const doc = await (await fetch('/openapi.json')).json();
  const byTag = new Map();
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const tag = op.tags?.[0] || 'other';
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([method, path, op]);
    }
  }
  mount(document.getElementById('tags'), [...byTag.keys()].map((t) => h('li', {}, h('a', { href: `#tag-${t}` }, t))),
    h('li', {}, h('a', { href: '#schemas' }, 'schemas')));
  mount(main,
    h('h1', {}, `${doc.info.title} ${doc.info.version}`),
    h('p', { class: 'muted' }, doc.info.description),
    [...byTag.entries()].map(([tag, ops]) => h('section', { id: `tag-${tag}` }, h('h2', {}, tag), ops.map(([m, p, o]) => operation(m, p, o)))),
    h('section', { id: 'schemas' }, h('h2', {}, 'Schemas'),
      Object.entries(doc.components.schemas).map(([name, s]) => h('div', { class: 'schema', id: `schema-${name}` }, h('h3', {}, name), refLinks(s)))));
}

render().catch((e) => mount(main, h('p', { class: 'error' }, `Cannot load /openapi.json: ${e.message}`)));
