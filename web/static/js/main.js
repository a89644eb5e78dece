// Flowscope UI: a single-page app with hash routes (#/map, #/latency?…,
// #/traces, #/trace/ID, #/correlation/ID, #/metrics, #/import,
// #/dashboards, #/dashboard/ID). Each view is a module exporting
// mount(el, ctx) → {update?(ctx), destroy?()}.
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

const VIEWS = {
  map: {mount: mapView, title: 'Service map', nav: 'map'},
  latency: {mount: latencyView, title: 'Latency', nav: 'latency'},
  traces: {mount: tracesView, title: 'Traces', nav: 'traces'},
  trace: {mount: traceView, title: 'Trace', nav: 'traces'},
  correlation: {mount: correlationView, title: 'Correlation', nav: 'correlation'},
  metrics: {mount: metricsView, title: 'Metrics', nav: 'metrics'},
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

function hashOf(name, arg, params) {
  let s = '#/' + name + (arg ? '/' + encodeURIComponent(arg) : '');
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
  const v = VIEWS[r.name];
  if (!v) {
    history.replaceState(null, '', '#/map');
    return render();
  }
  document.title = `${v.title}${r.arg ? ' ' + r.arg : ''} · Flowscope`;
  for (const [k, a] of navLinks) a.classList.toggle('active', k === v.nav);
  document.body.dataset.view = r.name;
  const ctx = ctxFor(r);
  if (current && current.name === r.name && current.arg === r.arg && current.inst && current.inst.update) {
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

function boot() {
  const nav = h('nav', {class: 'topnav', testid: 'nav'},
    h('a', {href: '#/map', class: 'brand'}, h('img', {src: 'favicon.svg', alt: '', width: 22, height: 22}), 'Flowscope'),
    h('div', {class: 'navlinks'}, NAV.map(([k, label]) => {
      const a = h('a', {href: '#/' + k, testid: 'nav-' + k}, label);
      navLinks.set(k, a);
      return a;
    })),
    h('div', {class: 'navright'}, themeButton(), h('a', {href: '/api/v1/services', class: 'small dim', target: '_blank', rel: 'noopener'}, 'API')));
  document.body.append(nav, main);
  setRouteInfo(() => {
    const r = parseHash();
    return {name: r.name, arg: r.arg, params: Object.fromEntries(r.params)};
  });
  window.addEventListener('hashchange', render);
  render();
}

boot();
