// Dashboard: live numbers, 15-minute charts, per-target table and an activity feed, all from
// one Server-Sent Events stream (/api/observability/stream); no polling, no reload.

import { h, mount, get, table, badge, clock } from '../lib.js';
import { userNames } from './users.js';

const FEED_ROWS = 50;

function fmt(n, digits = 1) {
  return n === null || n === undefined ? '—' : Number(n).toFixed(digits).replace(/\.0+$/, '');
}

function ms(v) {
  return v === null || v === undefined ? '—' : `${v} ms`;
}

/** A small bar chart on a canvas (no inline styles, so it fits the CSP). */
function chart(canvas, values, cssVar) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 240;
  const hgt = canvas.clientHeight || 48;
  canvas.width = w * dpr;
  canvas.height = hgt * dpr;
  const ctx = canvas.getContext('2d');
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, hgt);
  const max = Math.max(1, ...values.map((v) => v || 0));
  const bw = w / values.length;
  ctx.fillStyle = getComputedStyle(canvas).getPropertyValue(cssVar).trim() || '#2f6feb';
  values.forEach((v, i) => {
    const bh = ((v || 0) / max) * (hgt - 2);
    ctx.fillRect(i * bw, hgt - bh, Math.max(1, bw - 1), bh);
  });
}

export function render(main, { admin }) {
  const cards = h('div', { class: 'cards' });
  const charts = h('div', { class: 'charts' });
  const targetsBox = h('section', { 'aria-labelledby': 'dash-targets' });
  const feedBody = h('tbody', {});
  const state = h('span', { class: 'muted live-state' }, 'connecting…');
  let names = new Map();
  if (admin) userNames().then((m) => { names = m; });

  mount(main,
    h('div', { class: 'page-head' }, h('h1', {}, 'Dashboard'),
      h('p', { class: 'muted' }, admin ? 'Everyone\'s activity' : 'Your own activity',
        ' · live from this replica (numbers are per replica, kept in memory for 15 minutes) · ', state)),
    cards, charts,
    admin ? targetsBox : null,
    h('section', { 'aria-labelledby': 'dash-feed' }, h('h2', { id: 'dash-feed' }, 'Live activity'),
      h('div', { class: 'table-wrap' }, h('table', { class: 'feed' },
        h('thead', {}, h('tr', {}, ['Time', 'User', 'Method', 'Target', 'Item', 'Decision', 'Status', 'Duration']
          .map((c) => h('th', { scope: 'col' }, c)))),
        feedBody))));

  const chartDefs = [
    ['Requests / 10 s', 'requests', '--accent'],
    ['Errors / 10 s', 'errors', '--bad'],
    ['Denials / 10 s', 'denials', '--warn'],
    ['p95 latency (ms)', 'p95_ms', '--accent-2'],
  ];
  const canvases = chartDefs.map(([label]) => h('canvas', { class: 'chart', role: 'img', 'aria-label': `${label}, last 15 minutes` }));
  mount(charts, chartDefs.map(([label], i) => h('figure', { class: 'card' }, h('figcaption', {}, label, h('small', { class: 'muted' }, ' · last 15 min')), canvases[i])));

  const showStats = (s) => {
    const t = s.totals;
    const items = [
      ['Requests/s', fmt(t.rps, 2)],
      ['p50 latency', ms(t.p50_ms)],
      ['p95 latency', ms(t.p95_ms)],
      ['Error rate (1 min)', `${fmt(t.error_rate_1m * 100)} %`],
      ['Denials (1 min)', t.denials_1m],
      ['Requests (1 min)', t.requests_1m],
    ];
    if (s.sessions !== null && s.sessions !== undefined) items.push(['Active MCP sessions', s.sessions]);
    if (s.listen_streams !== null && s.listen_streams !== undefined) items.push(['Listen streams', s.listen_streams]);
    if (s.stdio_processes !== null && s.stdio_processes !== undefined) items.push(['stdio processes (all replicas)', s.stdio_processes]);
    if (s.audit_queue !== null && s.audit_queue !== undefined) items.push(['Audit queue', s.audit_queue]);
    mount(cards, items.map(([k, v]) => h('div', { class: 'card stat' }, h('div', { class: 'stat-label' }, k), h('div', { class: 'stat-value', dataset: { stat: k } }, String(v)))));
    chartDefs.forEach(([, key, color], i) => chart(canvases[i], s.series.map((p) => p[key]), color));
    if (admin) {
      mount(targetsBox, h('h2', { id: 'dash-targets' }, 'Targets (last minute)'), table([
        ['Target', (r) => r.name],
        ['Era', (r) => (s.eras && s.eras[r.name]) || '—'],
        ['Health', (r) => (r.requests_1m === 0 ? badge('idle') : r.error_rate_1m > 0.2 ? badge('failing', 'bad') : r.error_rate_1m > 0 ? badge('degraded', 'warn') : badge('ok', 'good'))],
        ['Req/s', (r) => fmt(r.rps, 2)],
        ['p50', (r) => ms(r.p50_ms)],
        ['p95', (r) => ms(r.p95_ms)],
        ['Errors', (r) => r.errors_1m],
        ['Denials', (r) => r.denials_1m],
      ], s.targets, 'No target traffic in the last 15 minutes.'));
    }
  };

  const addRows = (rows) => {
    for (const r of rows) {
      const who = r.user_id ? (names.get(r.user_id) || r.user_id.slice(0, 8)) : '—';
      feedBody.prepend(h('tr', { class: 'fresh' },
        h('td', {}, clock(r.time)), h('td', {}, who), h('td', {}, h('code', {}, r.method)),
        h('td', {}, r.target || '—'), h('td', {}, r.name || '—'),
        h('td', {}, badge(r.decision, r.decision === 'allow' ? 'good' : 'bad')),
        h('td', {}, r.status === 0 ? 'ok' : (r.error || r.status)), h('td', {}, `${r.duration_ms} ms`)));
    }
    while (feedBody.children.length > FEED_ROWS) feedBody.lastChild.remove();
  };

  get('/api/observability/snapshot').then(showStats).catch(() => {});
  const es = new EventSource('/api/observability/stream');
  es.addEventListener('open', () => { state.textContent = 'live'; state.className = 'live-state on'; });
  es.addEventListener('error', () => { state.textContent = 'reconnecting…'; state.className = 'muted live-state'; });
  es.addEventListener('stats', (ev) => showStats(JSON.parse(ev.data)));
  es.addEventListener('activity', (ev) => addRows(JSON.parse(ev.data).rows));
  return () => es.close();
}
