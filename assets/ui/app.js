// The reflow UI entry point: decides between first-run setup, sign-in and the signed-in shell,
// and routes between pages by the URL hash (#/targets …).

import { h, mount, api, get, post, field, notify, ApiError } from './lib.js';
import * as dashboard from './pages/dashboard.js';
import * as targets from './pages/targets.js';
import * as policies from './pages/policies.js';
import * as users from './pages/users.js';
import * as tokens from './pages/tokens.js';
import * as audit from './pages/audit.js';

const root = document.getElementById('app');

/** Pages in navigation order; `admin` pages are hidden from other users. */
const PAGES = [
  { path: 'dashboard', label: 'Dashboard', page: dashboard },
  { path: 'targets', label: 'Targets', page: targets },
  { path: 'policies', label: 'Policies', page: policies, admin: true },
  { path: 'users', label: 'Users', page: users, admin: true },
  { path: 'tokens', label: 'Tokens', page: tokens },
  { path: 'audit', label: 'Audit log', page: audit },
];

let me = null;
let cleanup = null;

async function boot() {
  try {
    me = await get('/api/auth/me');
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) {
      mount(root, h('p', { class: 'error' }, `reflow is not reachable: ${e.message}`));
      return;
    }
    me = null;
  }
  if (me) return shell();
  const status = await get('/api/ui/status').catch(() => ({}));
  signIn(status);
}

function authCard(title, intro, form) {
  return h('main', { class: 'auth' }, h('div', { class: 'card auth-card' },
    h('div', { class: 'brand big' }, h('img', { src: new URL('./favicon.svg', import.meta.url), alt: '' }), 'reflow'),
    h('h1', {}, title), intro ? h('p', { class: 'muted' }, intro) : null, form));
}

function signIn(status) {
  const first = !!status.needs_setup;
  const error = h('p', { class: 'error', role: 'alert' });
  const email = h('input', { name: 'email', type: 'email', autocomplete: 'username', required: true });
  const password = h('input', {
    name: 'password', type: 'password', required: true,
    autocomplete: first ? 'new-password' : 'current-password', minlength: first ? 8 : null,
  });
  const form = h('form', {
    onsubmit: async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      try {
        await post(first ? '/api/ui/setup' : '/api/ui/login', { email: email.value, password: password.value });
        boot();
      } catch (e) {
        error.textContent = e.message;
      }
    },
  }, field('Email', email), field('Password', password), error,
  h('button', { type: 'submit', class: 'primary' }, first ? 'Create the first admin' : 'Sign in'));
  if (first && status.setup_allowed === false) {
    mount(root, authCard('Create the first admin',
      'No account exists and self-registration is closed. On the gateway host run: reflow user add you@example.com --role admin', null));
    return;
  }
  if (!first && status.oidc_issuer) {
    const tok = h('textarea', { name: 'id_token', rows: 3, autocomplete: 'off' });
    form.append(h('details', {}, h('summary', {}, `Sign in with a token from ${status.oidc_issuer}`),
      field('ID token', tok),
      h('button', {
        type: 'button',
        onclick: async () => {
          try { await post('/api/ui/login', { id_token: tok.value.trim() }); boot(); } catch (e) { error.textContent = e.message; }
        },
      }, 'Sign in with token')));
  }
  mount(root, authCard(first ? 'Create the first admin' : 'Sign in to reflow',
    first ? 'No account exists yet. The first account becomes an admin (you can also run `reflow user add EMAIL --role admin`).' : null,
    form));
  email.focus();
}

function currentPath() {
  const p = location.hash.replace(/^#\/?/, '').split('?')[0];
  return PAGES.some((x) => x.path === p) ? p : 'dashboard';
}

function shell() {
  const admin = me.role === 'admin';
  const pages = PAGES.filter((p) => admin || !p.admin);
  const main = h('main', { id: 'main', tabindex: '-1' });
  const nav = h('nav', { 'aria-label': 'Main' }, h('ul', {},
    pages.map((p) => h('li', {}, h('a', { href: `#/${p.path}`, dataset: { path: p.path } }, p.label))),
    h('li', {}, h('a', { href: '/docs', target: '_blank', rel: 'noopener' }, 'Docs'))));
  const signOut = h('button', {
    class: 'link', onclick: async () => {
      await api('POST', '/api/ui/logout', {}).catch(() => {});
      me = null;
      location.hash = '';
      boot();
    },
  }, 'Sign out');
  mount(root,
    h('a', { class: 'skip', href: '#main', onclick: (e) => { e.preventDefault(); main.focus(); } }, 'Skip to content'),
    h('header', { class: 'top' },
      h('div', { class: 'brand' }, h('img', { src: new URL('./favicon.svg', import.meta.url), alt: '' }), 'reflow'),
      nav,
      h('div', { class: 'who' }, h('span', { class: 'muted', title: me.role }, `${me.email} (${me.role})`), signOut)),
    main);
  const route = () => {
    const path = currentPath();
    const entry = pages.find((p) => p.path === path) || pages[0];
    for (const a of nav.querySelectorAll('a[data-path]')) {
      if (a.dataset.path === entry.path) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (cleanup) { try { cleanup(); } catch { /* page already gone */ } }
    cleanup = null;
    mount(main);
    document.title = `${entry.label} · reflow`;
    cleanup = entry.page.render(main, { me, admin }) || null;
  };
  window.onhashchange = route;
  route();
}

window.addEventListener('reflow:signed-out', () => {
  if (!me) return;
  me = null;
  if (cleanup) cleanup();
  cleanup = null;
  notify('Your session ended; sign in again.', 'error');
  boot();
});

boot();
