// Browser tests of the reflow web UI in real headless Chromium (puppeteer-core).
// Starts `reflow serve` (REFLOW_BIN) on a free port with a fresh data dir, and a small MCP
// upstream, then drives the UI like an operator would. Screenshots of every page, light and
// dark, go to docs/screenshots/ when SCREENSHOTS=1.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { startUpstream } from './upstream.mjs';
import { McpClient } from './mcp.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const BIN = process.env.REFLOW_BIN || path.join(ROOT, 'target/debug/reflow');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.SCREENSHOTS === '1' ? path.join(ROOT, 'docs/screenshots') : null;
const PW = 'correct horse battery';

let failures = 0;
let debugPage = null;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures += 1;
    console.log(`FAIL ${name}: ${e.stack || e}`);
    if (debugPage) {
      const dump = await debugPage.evaluate(() => document.body.innerHTML.slice(0, 3000)).catch(() => '');
      console.log(`     page: ${dump}`);
    }
  }
}

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function startReflow() {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'reflow-browser-'));
  const child = spawn(BIN, ['serve', '--port', String(port), '--data-dir', dir], {
    env: { ...process.env, REFLOW_LOGGING_LEVEL: 'warn' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    try { if ((await fetch(`${base}/health`)).ok) return { base, child, dir }; } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill();
  throw new Error('reflow did not start');
}

/** Watches a page: uncaught errors, console errors, and requests to any other host. */
function watch(page, base) {
  const problems = [];
  const origin = new URL(base).origin;
  page.on('dialog', (d) => { problems.push(`js dialog: ${d.message()}`); d.dismiss(); });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) problems.push(`console: ${m.text()}`); });
  page.on('response', (r) => { if (r.status() >= 400 && r.status() !== 401 && r.status() !== 403) problems.push(`HTTP ${r.status()} ${r.request().method()} ${r.url()}`); });
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith('data:') && new URL(u).origin !== origin) problems.push(`external request: ${u}`);
  });
  return problems;
}

async function shoot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => document.getElementById('notices')?.remove());
  for (const scheme of ['light', 'dark']) {
    await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: scheme }]);
    await new Promise((r) => setTimeout(r, 150));
    await page.screenshot({ path: path.join(SHOTS, `${name}-${scheme}.png`) });
  }
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
}

/** Form controls on the page (dialogs included) that have no label. */
async function unlabelled(page) {
  return page.evaluate(() => [...document.querySelectorAll('input, select, textarea')]
    .filter((e) => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
    .map((e) => e.outerHTML));
}

async function go(page, hash, heading) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForFunction((t) => document.querySelector('main h1')?.textContent === t, { timeout: 5000 }, heading);
}

async function fill(page, label, value, scope = 'dialog[open]') {
  const id = await page.evaluate((s, l) => {
    const lab = [...document.querySelectorAll(`${s} label`)].find((x) => x.textContent.trim() === l);
    return lab ? lab.htmlFor : null;
  }, scope, label);
  assert.ok(id, `no field labelled ${label}`);
  const el = await page.$(`#${id}`);
  const tag = await el.evaluate((e) => e.tagName);
  if (tag === 'SELECT') await el.select(value);
  else { await el.click({ clickCount: 3 }); await el.evaluate((e) => { e.value = ''; }); await el.type(value); }
}

async function closeDialog(page) {
  await page.click('dialog[open] button.close');
  await page.waitForFunction(() => !document.querySelector('dialog[open]'));
}

async function clickText(page, selector, text) {
  const handles = await page.$$(selector);
  for (const hnd of handles) {
    if ((await hnd.evaluate((e) => e.textContent.trim())) === text) { await hnd.evaluate((e) => e.click()); return; }
  }
  throw new Error(`no ${selector} with text ${text}`);
}

async function rowButton(page, rowText, button) {
  const ok = await page.evaluate((rt, b) => {
    const row = [...document.querySelectorAll('main tbody tr')].find((r) => r.textContent.includes(rt));
    const btn = row && [...row.querySelectorAll('button')].find((x) => x.textContent.trim() === b);
    if (btn) btn.click();
    return !!btn;
  }, rowText, button);
  assert.ok(ok, `no ${button} button in the row of ${rowText}`);
}

/** A session token of the admin, from the login API (for the test's own MCP clients). */
async function adminSession(base) {
  const r = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@example.com', password: PW }) });
  return (await r.json()).token;
}

async function main() {
  const { base, child, dir } = await startReflow();
  const upstream = await startUpstream();
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 860 });
  const problems = watch(page, base);
  debugPage = process.env.DEBUG ? page : null;
  let adminToken = null;
  try {
    await step('first run offers "create the first admin" and signs in', async () => {
      await page.goto(base, { waitUntil: 'networkidle0' });
      await page.waitForSelector('form button[type=submit]');
      const label = await page.$eval('form button[type=submit]', (b) => b.textContent);
      assert.equal(label, 'Create the first admin');
      await shoot(page, 'setup');
      await fill(page, 'Email', 'admin@example.com', 'main');
      await fill(page, 'Password', PW, 'main');
      await page.click('form button[type=submit]');
      await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Dashboard');
      const cookies = await page.cookies();
      const c = cookies.find((x) => x.name === 'reflow_session');
      assert.ok(c && c.httpOnly && c.sameSite === 'Strict', JSON.stringify(cookies));
      const stored = await page.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage));
      assert.ok(!stored.includes(c.value), 'the session token is in web storage');
      assert.ok(!page.url().includes(c.value), 'the session token is in the URL');
    });

    await step('navigation shows every page label and each page renders', async () => {
      const labels = await page.$$eval('nav a', (as) => as.map((a) => a.textContent));
      assert.deepEqual(labels, ['Dashboard', 'Targets', 'Policies', 'Users', 'Tokens', 'Audit log', 'Docs']);
      for (const [hash, title] of [['#/targets', 'Targets'], ['#/policies', 'Policies'], ['#/users', 'Users'], ['#/tokens', 'Tokens'], ['#/audit', 'Audit log'], ['#/dashboard', 'Dashboard']]) {
        await go(page, hash, title);
        await new Promise((r) => setTimeout(r, 100));
        assert.deepEqual(await unlabelled(page), [], `unlabelled fields on ${title}`);
      }
      // Keyboard: Tab reaches the navigation, Enter follows a link.
      await page.focus('body');
      let reached = false;
      for (let i = 0; i < 10 && !reached; i++) {
        await page.keyboard.press('Tab');
        reached = await page.evaluate(() => document.activeElement?.getAttribute('href') === '#/targets');
      }
      assert.ok(reached, 'Tab never reached the Targets link');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Targets');
    });

    await step('add a target through the form and test its connection', async () => {
      await go(page, '#/targets', 'Targets');
      await clickText(page, 'main button', 'Add target');
      await page.waitForSelector('dialog[open] form');
      assert.deepEqual(await unlabelled(page), [], 'unlabelled fields in the target form');
      await fill(page, 'Name', 'demo');
      await fill(page, 'URL', upstream.url);
      await page.click('#target-user-token');
      await fill(page, 'Env keys users may set (their own values)', 'REGION');
      await clickText(page, 'dialog[open] button', 'Add target');
      await page.waitForFunction(() => [...document.querySelectorAll('main tbody tr')].some((r) => r.textContent.includes('demo')));
      await rowButton(page, 'demo', 'Test connection');
      await page.waitForFunction(() => document.querySelector('dialog[open] dl.facts'), { timeout: 15000 });
      const text = await page.$eval('dialog[open]', (d) => d.textContent);
      assert.match(text, /browser-test-upstream/);
      assert.match(text, /3 tools, 1 resources, 1 prompts/);
      assert.match(text, /echo/);
      await shoot(page, 'target-test');
      await closeDialog(page);
      await page.waitForFunction(() => document.querySelector('main tbody')?.textContent.includes('3 tools, 1 resources, 1 prompts'));
      await shoot(page, 'targets');
    });

    await step('credentials are set per scope through the form and never shown back', async () => {
      const secret = 'sekret-VALUE-4242';
      await go(page, '#/targets', 'Targets');
      await rowButton(page, 'demo', 'Credentials');
      await page.waitForSelector('dialog[open] form');
      assert.deepEqual(await unlabelled(page), [], 'unlabelled fields in the credentials form');
      await fill(page, 'Scope', 'group');
      await fill(page, 'Scope value', 'eng');
      await fill(page, 'Kind', 'env');
      await fill(page, 'Env key', 'REGION');
      await fill(page, 'Value (write-only)', secret);
      await clickText(page, 'dialog[open] button', 'Set value');
      await page.waitForFunction(() => document.querySelector('dialog[open] tbody')?.textContent.includes('REGION'));
      const html = await page.evaluate(() => document.documentElement.outerHTML + [...document.querySelectorAll('input')].map((i) => i.value).join());
      assert.ok(!html.includes(secret), 'a credential value is on the page');
      await closeDialog(page);
    });

    await step('a stdio target added through the form runs, and its processes restart', async () => {
      const fixture = process.env.REFLOW_STDIO_FIXTURE || path.join(path.dirname(BIN), 'examples', 'stdio_fixture');
      await go(page, '#/targets', 'Targets');
      await clickText(page, 'main button', 'Add target');
      await fill(page, 'Name', 'local');
      await fill(page, 'Transport', 'stdio');
      await fill(page, 'Command', fixture);
      await clickText(page, 'dialog[open] button', 'Add target');
      await page.waitForFunction(() => document.querySelector('main tbody')?.textContent.includes('local'));
      const client = new McpClient(base, await adminSession(base));
      await client.initialize();
      const echoed = await client.result('tools/call', { name: 'local__echo', arguments: { text: 'from stdio' } });
      assert.match(JSON.stringify(echoed), /from stdio/);
      await rowButton(page, 'local', 'Processes');
      await page.waitForFunction(() => document.querySelector('dialog[open] tbody')?.textContent.includes('running'), { timeout: 5000 });
      await clickText(page, 'dialog[open] button', 'Restart all');
      await page.waitForFunction(() => !document.querySelector('dialog[open] tbody')?.textContent.includes('running'), { timeout: 5000 });
      await closeDialog(page);
    });

    await step('a kubernetes target is offered, shows its fields and lists its pods', async () => {
      await go(page, '#/targets', 'Targets');
      await clickText(page, 'main button', 'Add target');
      await fill(page, 'Name', 'k8s-demo');
      await fill(page, 'Transport', 'kubernetes');
      const hidden = await page.evaluate(() => Object.fromEntries(['image', 'port', 'url', 'command']
        .map((n) => [n, document.querySelector(`dialog[open] [name=${n}]`).closest('.group').hidden])));
      assert.deepEqual(hidden, { image: false, port: false, url: true, command: true });
      assert.deepEqual(await unlabelled(page), [], 'unlabelled fields in the kubernetes form');
      await fill(page, 'Image', 'ghcr.io/example/mcp:1');
      await fill(page, 'Port', '8080');
      await fill(page, 'Health path', '/health');
      await clickText(page, 'dialog[open] button', 'Add target');
      await page.waitForFunction(() => document.querySelector('main tbody')?.textContent.includes('ghcr.io/example/mcp:1:8080'));
      await rowButton(page, 'k8s-demo', 'Pods');
      await page.waitForFunction(() => document.querySelector('dialog[open]')?.textContent.includes('No pods recorded.'), { timeout: 5000 });
      await closeDialog(page);
      // Pods are off on this server (kubernetes.enabled): out of the way of the later steps.
      await rowButton(page, 'k8s-demo', 'Disable');
      await page.waitForFunction(() => [...document.querySelectorAll('main tbody tr')]
        .some((r) => r.textContent.includes('k8s-demo') && r.textContent.includes('Enable')));
    });

    await step('add a user and a policy through the forms; the policy test form explains', async () => {
      await go(page, '#/users', 'Users');
      await clickText(page, 'main button', 'Add user');
      await fill(page, 'Email', 'dev@example.com');
      await fill(page, 'Initial password', PW);
      await fill(page, 'Role', 'dev');
      await fill(page, 'Groups', 'eng');
      await clickText(page, 'dialog[open] button', 'Add user');
      await page.waitForFunction(() => document.querySelector('main tbody')?.textContent.includes('dev@example.com'));
      await shoot(page, 'users');
      await go(page, '#/policies', 'Policies');
      await page.waitForSelector('main tbody tr');
      await clickText(page, 'main button', 'Add policy');
      await fill(page, 'Name', 'dev-demo');
      await fill(page, 'Target', await page.evaluate(() => [...document.querySelectorAll('dialog[open] option')].find((o) => o.textContent === 'demo').value));
      await fill(page, 'Item type', 'tool');
      await fill(page, 'Pattern (regular expression, whole name)', 'echo|add');
      await fill(page, 'Subjects', 'role:dev');
      await clickText(page, 'dialog[open] button', 'Add policy');
      await page.waitForFunction(() => document.querySelector('main tbody')?.textContent.includes('dev-demo'));
      await fill(page, 'User email', 'dev@example.com', 'main form.inline-form');
      await fill(page, 'Item name or URI', 'delete_all', 'main form.inline-form');
      await clickText(page, 'main button', 'Test');
      await page.waitForFunction(() => document.querySelector('main .result')?.textContent.includes('deny'));
    });

    await step('the explorer agrees with what the user\'s real MCP client lists', async () => {
      const login = await (await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'dev@example.com', password: PW }) })).json();
      const client = new McpClient(base, login.token);
      await client.initialize();
      const listed = (await client.result('tools/list')).tools.map((t) => t.name).sort();
      assert.deepEqual(listed, ['demo__add', 'demo__echo']);
      const called = await client.result('tools/call', { name: 'demo__echo', arguments: { text: 'hi' } });
      assert.equal(called.content[0].text, 'hi');
      await fill(page, 'User email', 'dev@example.com', 'main section:last-of-type form');
      await clickText(page, 'main button', 'Explain access');
      await page.waitForFunction(() => document.querySelector('.explain-target table'), { timeout: 15000 });
      const allowed = await page.$$eval('.explain-target tbody tr', (rows) => rows
        .filter((r) => r.textContent.includes('allow')).map((r) => r.querySelector('code').textContent).sort());
      assert.deepEqual(allowed, listed);
      const tiers = await page.$eval('.explain-target .env-tiers', (p) => p.textContent);
      assert.match(tiers, /REGION ← group:eng/);
      await shoot(page, 'policies');
    });

    await step('create a token (shown once, with client configurations) and use it', async () => {
      await go(page, '#/tokens', 'Tokens');
      await clickText(page, 'main button', 'Create token');
      await fill(page, 'Name', 'laptop');
      await clickText(page, 'dialog[open] button', 'Create token');
      await page.waitForSelector('dialog[open] .snippet pre');
      const snippets = await page.$$eval('dialog[open] .snippet strong', (s) => s.map((x) => x.textContent));
      for (const c of ['Claude Desktop', 'Claude Code', 'Cursor', 'VS Code', 'curl']) assert.ok(snippets.some((s) => s.startsWith(c)), `${c} missing`);
      adminToken = await page.$eval('dialog[open] .snippet pre', (p) => p.textContent);
      await shoot(page, 'token-created');
      await closeDialog(page);
      await page.waitForFunction(() => document.querySelector('main tbody')?.textContent.includes('laptop'));
      await shoot(page, 'tokens');
    });

    await step('the dashboard shows a new tools/call within 2 s without a reload', async () => {
      await go(page, '#/dashboard', 'Dashboard');
      await page.waitForFunction(() => document.querySelector('.live-state')?.textContent === 'live', { timeout: 5000 });
      const client = new McpClient(base, adminToken);
      await client.initialize();
      const t0 = Date.now();
      await client.result('tools/call', { name: 'demo__add', arguments: { a: 2, b: 3 } });
      await page.waitForFunction(() => [...document.querySelectorAll('table.feed tbody tr')].some((r) => r.textContent.includes('tools/call') && r.textContent.includes('add')), { timeout: 2000 });
      console.log(`     feed row after ${Date.now() - t0} ms`);
      await page.waitForFunction(() => Number(document.querySelector('[data-stat="Requests (1 min)"]')?.textContent) > 0, { timeout: 2000 });
      const stdio = await page.$eval('[data-stat="stdio processes (all replicas)"]', (e) => e.textContent);
      assert.match(stdio, /^\d+$/);
      await shoot(page, 'dashboard');
    });

    await step('audit log: filters, paging and export of the filtered rows', async () => {
      await go(page, '#/audit', 'Audit log');
      await page.waitForSelector('main tbody tr');
      await fill(page, 'Method', 'tools/call', 'main form.filters');
      await clickText(page, 'main button', 'Apply');
      await page.waitForFunction(() => [...document.querySelectorAll('main tbody tr')].every((r) => r.textContent.includes('tools/call')) && document.querySelectorAll('main tbody tr').length >= 2);
      // Each row links to its trace: filtering by one row's trace id leaves that row.
      const trace = await page.$eval('main tbody tr code[title]', (e) => e.title);
      assert.match(trace, /^[0-9a-f]{32}$/);
      await fill(page, 'Trace id', trace, 'main form.filters');
      await clickText(page, 'main button', 'Apply');
      await page.waitForFunction((t) => {
        const rows = [...document.querySelectorAll('main tbody tr')];
        return rows.length === 1 && rows[0].querySelector('code[title]')?.title === t;
      }, {}, trace);
      await fill(page, 'Trace id', '', 'main form.filters');
      await clickText(page, 'main button', 'Apply');
      const csv = await page.evaluate(async () => (await fetch('/api/logs/export?format=csv&method=tools/call')).text());
      const lines = csv.trim().split('\r\n');
      assert.ok(lines[0].startsWith('id,created_at,user_id'), lines[0]);
      assert.ok(lines.length >= 3 && lines.slice(1).every((l) => l.includes('tools/call')), csv);
      assert.ok(lines[0].endsWith(',trace_id'), lines[0]);
      const json = await page.evaluate(async () => (await fetch('/api/logs/export?format=json&decision=deny')).json());
      assert.ok(json.every((r) => r.decision === 'deny'));
      await shoot(page, 'audit');
    });

    await step('/docs renders offline (no request to another host)', async () => {
      const docs = await browser.newPage();
      const docProblems = watch(docs, base);
      await docs.goto(`${base}/docs`, { waitUntil: 'networkidle0' });
      await docs.waitForFunction(() => document.body.textContent.includes('/api/targets'), { timeout: 5000 });
      await shoot(docs, 'docs');
      await docs.close();
      assert.deepEqual(docProblems, []);
    });

    await step('a non-admin sees only their own data and gets 403 on admin endpoints', async () => {
      const ctx = await browser.createBrowserContext();
      const p2 = await ctx.newPage();
      await p2.setViewport({ width: 390, height: 844 });
      const p2Problems = watch(p2, base);
      await p2.goto(base, { waitUntil: 'networkidle0' });
      await fill(p2, 'Email', 'dev@example.com', 'main');
      await fill(p2, 'Password', PW, 'main');
      await p2.click('form button[type=submit]');
      await p2.waitForFunction(() => document.querySelector('main h1')?.textContent === 'Dashboard');
      const labels = await p2.$$eval('nav a', (as) => as.map((a) => a.textContent));
      assert.deepEqual(labels, ['Dashboard', 'Targets', 'Tokens', 'Audit log', 'Docs']);
      const me = await p2.evaluate(async () => (await fetch('/api/auth/me')).json());
      const statuses = await p2.evaluate(async () => Promise.all(['/api/users', '/api/policies'].map(async (u) => (await fetch(u)).status)));
      assert.deepEqual(statuses, [403, 403]);
      const create = await p2.evaluate(async () => (await fetch('/api/targets', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"x","url":"http://127.0.0.1:1/mcp"}' })).status);
      assert.equal(create, 403);
      const rows = await p2.evaluate(async () => (await fetch('/api/logs?limit=1000')).json());
      assert.ok(rows.length > 0 && rows.every((r) => r.user_id === me.id), 'a non-admin saw rows of others');
      await go(p2, '#/targets', 'Targets');
      await p2.waitForFunction(() => document.querySelector('main tbody')?.textContent.includes('demo'));
      await shoot(p2, 'mobile-targets-user');
      await rowButton(p2, 'demo', 'My credentials');
      await p2.waitForSelector('dialog[open] form');
      await fill(p2, 'Set your token for this target (write-only)', 'my-own-token-77');
      await clickText(p2, 'dialog[open] button', 'Save token');
      await p2.waitForFunction(() => document.querySelector('dialog[open] .badge.good')?.textContent === 'set');
      assert.deepEqual(await unlabelled(p2), [], 'unlabelled fields in My credentials');
      await closeDialog(p2);
      const others = await p2.evaluate(async () => (await fetch('/api/targets/demo/env/group/eng', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"X":"y"}' })).status);
      assert.equal(others, 403);
      await go(p2, '#/audit', 'Audit log');
      await p2.waitForSelector('main tbody tr');
      assert.deepEqual(p2Problems, []);
      await ctx.close();
    });

    await step('a cross-site POST with the session cookie is refused', async () => {
      const cookie = (await page.cookies()).find((c) => c.name === 'reflow_session');
      const attempt = (headers) => fetch(`${base}/api/auth/tokens`, {
        method: 'POST', headers: { 'content-type': 'application/json', cookie: `reflow_session=${cookie.value}`, ...headers }, body: '{"name":"csrf"}',
      }).then((r) => r.status);
      assert.equal(await attempt({ origin: 'http://evil.example' }), 403);
      assert.equal(await attempt({}), 403);
      assert.equal(await attempt({ origin: base, 'sec-fetch-site': 'cross-site' }), 403);
      assert.equal(await attempt({ origin: base }), 201);
    });

    await step('sign-out ends the session', async () => {
      const cookie = (await page.cookies()).find((c) => c.name === 'reflow_session');
      await clickText(page, 'header button', 'Sign out');
      await page.waitForFunction(() => document.querySelector('form button[type=submit]')?.textContent === 'Sign in');
      await shoot(page, 'signin');
      const status = (await fetch(`${base}/api/auth/me`, { headers: { cookie: `reflow_session=${cookie.value}` } })).status;
      assert.equal(status, 401);
    });

    await step('no uncaught errors and no request to another host', async () => {
      assert.deepEqual(problems, []);
    });
  } finally {
    await browser.close();
    upstream.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
  if (failures) {
    console.log(`${failures} browser test(s) failed`);
    process.exit(1);
  }
  console.log('all browser tests passed');
}

main().catch((e) => { console.error(e); process.exit(1); });
