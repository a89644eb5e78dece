// Flowscope UI: a single-page app with hash routes (#/map, #/latency?…,
// #/traces, #/trace/ID, #/correlation/ID, #/metrics, #/alerts?rule=NAME,
// #/synthetics[/CHECK[/RUN]], #/architecture, #/import, #/dashboards,
// #/dashboard/ID).
// Each view is a module exporting mount(el, ctx) → {update?(ctx),
// destroy?()}; a view marked argUpdate is updated, not mounted again, when
// only its route's argument changes. The header counts the firing (and
// pending) alerts on every view, a lock when the collector serves TLS, and
// the API token button (auth.js); a banner above every view warns when the
// collector is exposed without protection (security.js).
import {h, clear, replace} from './dom.js';
import {setRouteInfo} from './hooks.js';
import mapView from './views/map.js';
import latencyView from './views/latency.js';
import tracesView from './views/traces.js';
import traceView from './views/trace.js';
import correlationView from './views/correlation.js';
import metricsView from './views/metrics.js';
import importView from './views/importer.js';
import {listView as dashboardsView, dashboardView} from './views/dashboards.js';
import alertsView from './views/alerts.js';
import syntheticsView from './views/synthetics.js';
import architectureView from './views/architecture.js';
import {subscribe as subscribeAlerts} from './alertfeed.js';
import * as api from './api.js';
import * as auth from './auth.js';
import * as security from './security.js';

const VIEWS = {
  map: {mount: mapView, title: 'Service map', nav: 'map'},
  latency: {mount: latencyView, title: 'Latency', nav: 'latency'},
  traces: {mount: tracesView, title: 'Traces', nav: 'traces'},
  trace: {mount: traceView, title: 'Trace', nav: 'traces'},
  correlation: {mount: correlationView, title: 'Correlation', nav: 'correlation'},
  metrics: {mount: metricsView, title: 'Metrics', nav: 'metrics'},
  alerts: {mount: alertsView, title: 'Alerts', nav: 'alerts'},
  synthetics: {mount: syntheticsView, title: 'Synthetics', nav: 'synthetics', argUpdate: true},
  architecture: {mount: architectureView, title: 'Architecture', nav: 'architecture'},
  import: {mount: importView, title: 'Import', nav: 'import'},
  dashboards: {mount: dashboardsView, title: 'Dashboards', nav: 'dashboards'},
  dashboard: {mount: dashboardView, title: 'Dashboard', nav: 'dashboards'},
};

const NAV = [
  ['map', 'Service map'],
  ['latency', 'Latency'],
  ['traces', 'Traces'],
  ['correlation', 'Correlation'],
  ['metrics', 'Metrics'],
  ['alerts', 'Alerts'],
  ['synthetics', 'Synthetics'],
  ['architecture', 'Architecture'],
  ['dashboards', 'Dashboards'],
  ['import', 'Import'],
];

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#\/?/, '');
  const qi = raw.indexOf('?');
  const path = qi < 0 ? raw : raw.slice(0, qi);
  const params = new URLSearchParams(qi < 0 ? '' : raw.slice(qi + 1));
  const slash = path.indexOf('/');
  const name = (slash < 0 ? path : path.slice(0, slash)) || 'map';
  let arg = slash < 0 ? '' : path.slice(slash + 1);
  try {
    arg = decodeURIComponent(arg);
  } catch {
    /* keep raw */
  }
  return {name, arg, params};
}

// hashOf builds a route; slashes in arg stay readable (parseHash takes
// everything after the view's name as its argument).
function hashOf(name, arg, params) {
  let s = '#/' + name + (arg ? '/' + encodeURIComponent(arg).replace(/%2F/gi, '/') : '');
  const q = params.toString();
  return q ? s + '?' + q : s;
}

let current = null;
const main = h('main', {id: 'main', class: 'main', testid: 'main'});
const navLinks = new Map();

function ctxFor(r) {
  return {
    name: r.name,
    arg: r.arg,
    params: r.params,
    // navigate merges changes into the route's query (empty values delete)
    // and replaces the history entry unless push is set.
    setParams(changes, {push = false, arg} = {}) {
      const p = new URLSearchParams(parseHash().params);
      for (const [k, v] of Object.entries(changes)) {
        if (v == null || v === '') p.delete(k);
        else p.set(k, String(v));
      }
      const cur = parseHash();
      const next = hashOf(cur.name, arg ?? cur.arg, p);
      if (next === location.hash) return;
      if (push) location.hash = next;
      else {
        history.replaceState(null, '', next);
        render();
      }
    },
  };
}

function render() {
  const r = parseHash();
  if (r.name === 'traces' && r.arg) {
    // #/traces/ID is a trace, as links from elsewhere may write it.
    history.replaceState(null, '', hashOf('trace', r.arg, new URLSearchParams()));
    return render();
  }
  const v = VIEWS[r.name];
  if (!v) {
    history.replaceState(null, '', '#/map');
    return render();
  }
  document.title = `${v.title}${r.arg ? ' ' + r.arg : ''} · Flowscope`;
  for (const [k, a] of navLinks) a.classList.toggle('active', k === v.nav);
  document.body.dataset.view = r.name;
  const ctx = ctxFor(r);
  if (current && current.name === r.name && (current.arg === r.arg || v.argUpdate) && current.inst && current.inst.update) {
    current.arg = r.arg;
    current.inst.update(ctx);
    return;
  }
  if (current && current.inst && current.inst.destroy) current.inst.destroy();
  clear(main);
  main.scrollTop = 0;
  const box = h('div', {class: 'view view-' + r.name, testid: 'view-' + r.name});
  main.appendChild(box);
  let inst = null;
  try {
    inst = v.mount(box, ctx) || {};
  } catch (e) {
    replace(box, h('div', {class: 'msg msg-error'}, 'This view failed: ' + e.message));
    console.error(e);
  }
  current = {name: r.name, arg: r.arg, inst};
}

const THEMES = ['auto', 'dark', 'light'];

function themeButton() {
  const saved = localStorage.getItem('flowscope.theme') || 'auto';
  const apply = t => {
    if (t === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = t;
    btn.textContent = 'theme: ' + t;
  };
  const btn = h('button', {class: 'btn btn-ghost small', type: 'button', title: 'Colour scheme', onclick: () => {
    const next = THEMES[(THEMES.indexOf(localStorage.getItem('flowscope.theme') || 'auto') + 1) % THEMES.length];
    localStorage.setItem('flowscope.theme', next);
    apply(next);
    window.dispatchEvent(new Event('flowscope-theme'));
  }});
  apply(saved);
  return btn;
}

// alertCount shows the number of firing alerts (red) and of pending ones
// in the Alerts link of the header, refreshed with the alert feed.
function alertCount(a) {
  const firing = h('span', {class: 'badge badge-firing nav-badge', testid: 'alert-count', hidden: true});
  const pending = h('span', {class: 'badge badge-pending nav-badge', testid: 'alert-pending-count', hidden: true});
  a.append(firing, pending);
  subscribeAlerts(st => {
    firing.textContent = String(st.firing);
    firing.hidden = !st.firing;
    firing.dataset.count = st.firing;
    pending.textContent = String(st.pending);
    pending.hidden = !st.pending;
    pending.dataset.count = st.pending;
    a.title = st.error ? 'Alerts: ' + st.error.message : `${st.firing} firing, ${st.pending} pending`;
    a.classList.toggle('has-firing', st.firing > 0);
  });
}

function boot() {
  const lockEl = h('span', {class: 'tls-lock', testid: 'tls-lock', role: 'img', hidden: true});
  const apiLink = h('a', {href: '/api/v1/services', class: 'small dim', target: '_blank', rel: 'noopener', testid: 'nav-api'}, 'API');
  const bannerEl = h('div', {class: 'security-banner', testid: 'security-banner', role: 'alert', hidden: true});
  const partialEl = h('div', {class: 'partial-banner', testid: 'partial-banner', role: 'status', hidden: true});
  api.onPartial(peers => {
    partialEl.hidden = peers.length === 0;
    replace(partialEl, h('strong', {}, 'Partial answers: '),
      `no reply from ${peers.join(', ')}; what is shown holds only the other nodes' data.`);
  });
  const nav = h('nav', {class: 'topnav', testid: 'nav'},
    h('a', {href: '#/map', class: 'brand'}, h('img', {src: 'favicon.svg', alt: '', width: 22, height: 22}), 'Flowscope'),
    h('div', {class: 'navlinks'}, NAV.map(([k, label]) => {
      const a = h('a', {href: '#/' + k, testid: 'nav-' + k}, label);
      if (k === 'alerts') alertCount(a);
      navLinks.set(k, a);
      return a;
    })),
    h('div', {class: 'navright'}, lockEl, auth.control(), themeButton(), apiLink));
  document.body.append(nav, bannerEl, partialEl, main);
  security.status().then(st => {
    auth.setConfigured(st && st.tokens);
    security.lock(lockEl, st);
    security.banner(bannerEl, st);
    // A link opens without the token: say what the API needs.
    if (st && st.tokens && (st.tokens.read || st.tokens.write)) apiLink.title = 'The REST API: requests need the read token (Authorization: Bearer …)';
  });
  setRouteInfo(() => {
    const r = parseHash();
    return {name: r.name, arg: r.arg, params: Object.fromEntries(r.params)};
  });
  window.addEventListener('hashchange', render);
  render();
}

boot();
