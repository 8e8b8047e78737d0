// Shared helpers of the reflow UI: DOM building, the API client (cookie session, JSON errors),
// notices, dialogs, tables and formatting. No framework; every page is plain DOM.

/** Builds an element: h('button', {class: 'x', onclick: f}, 'text', child, [more]). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Calls the REST API with the session cookie; returns parsed JSON (or null), throws ApiError. */
export async function api(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    const msg = (data && data.error) || `${res.status} ${res.statusText}`;
    if (res.status === 401 && !path.startsWith('/api/ui/')) window.dispatchEvent(new Event('reflow:signed-out'));
    throw new ApiError(res.status, msg);
  }
  return data;
}

export const get = (p) => api('GET', p);
export const post = (p, b) => api('POST', p, b ?? {});
export const put = (p, b) => api('PUT', p, b ?? {});
export const del = (p) => api('DELETE', p);

/** A transient notice at the top right; errors stay until dismissed. */
export function notify(message, kind = 'ok') {
  let box = document.getElementById('notices');
  if (!box) {
    box = h('div', { id: 'notices', role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const item = h('div', { class: `notice ${kind}` }, h('span', {}, message),
    h('button', { class: 'link', 'aria-label': 'Dismiss', onclick: () => item.remove() }, '×'));
  box.append(item);
  if (kind !== 'error') setTimeout(() => item.remove(), 4000);
}

/** Runs `fn`, reporting a failure as a notice; returns its result or undefined. */
export async function attempt(fn, done) {
  try {
    const r = await fn();
    if (done) notify(done);
    return r;
  } catch (e) {
    notify(e.message || String(e), 'error');
    return undefined;
  }
}

/** A modal dialog holding `content`; resolves when closed. */
export function dialog(title, content, { wide = false } = {}) {
  const d = h('dialog', { class: wide ? 'wide' : '', 'aria-label': title },
    h('header', {}, h('h2', {}, title),
      h('button', { class: 'link close', 'aria-label': 'Close', onclick: () => d.close() }, '×')),
    content);
  document.body.append(d);
  d.addEventListener('close', () => d.remove());
  d.showModal();
  return d;
}

let fieldSeq = 0;
/** A labelled form field. `input` may be an element or attrs for an <input>. */
export function field(label, input, hint) {
  const el = input instanceof Node ? input : h('input', input);
  if (!el.id) el.id = `f${++fieldSeq}`;
  return h('div', { class: 'field' }, h('label', { for: el.id }, label), el,
    hint ? h('small', { class: 'hint' }, hint) : null);
}

export function select(name, options, value) {
  return h('select', { name },
    options.map((o) => {
      const [v, label] = Array.isArray(o) ? o : [o, o];
      return h('option', { value: v, selected: v === value }, label);
    }));
}

/** A table: columns are [header, row => cell]. */
export function table(allColumns, rows, empty = 'Nothing here yet.') {
  const columns = allColumns.filter(Boolean);
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' }, h('table', {},
    h('thead', {}, h('tr', {}, columns.map(([name]) => h('th', { scope: 'col' }, name)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, columns.map(([, cell]) => h('td', {}, cell(r))))))));
}

export function badge(text, kind = '') {
  return h('span', { class: `badge ${kind}` }, text);
}

export function when(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return h('time', { datetime: d.toISOString(), title: d.toISOString() }, d.toLocaleString());
}

export function clock(iso) {
  const d = new Date(iso);
  return h('time', { datetime: d.toISOString() }, d.toLocaleTimeString());
}

/** Values of a form's named controls (checkboxes as booleans, empty strings kept). */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  }
  return out;
}

export function confirmAction(text) {
  return window.confirm(text);
}

export function pageHeader(title, ...actions) {
  return h('div', { class: 'page-head' }, h('h1', {}, title), h('div', { class: 'actions' }, actions));
}

/** Splits "a, b c" into ["a","b","c"]. */
export function words(s) {
  return String(s || '').split(/[\s,]+/).filter(Boolean);
}
