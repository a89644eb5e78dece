// Dashboards: the list (GET /api/v1/dashboards: built-in and the user's
// own, with the files that were left out) and one dashboard
// (GET /api/v1/dashboards/{id}) with its variables and panels.
import {h, replace, link, field, select, fillSelect, message} from '../dom.js';
import * as api from '../api.js';
import {picker, resolve} from '../timerange.js';
import {makePanel} from '../panels.js';
import {LEVELS} from './map.js';

export function listView(el) {
  const body = h('div', {class: 'dash-list', testid: 'dashboard-list'});
  el.append(h('h1', null, 'Dashboards'), h('p', {class: 'dim'}, 'Declarative dashboards: the built-in ones and those in the collector\'s dashboards_dir (see docs/dashboards.md).'), body);
  message(body, 'loading', 'Loading…');
  api.get('/dashboards').then(r => {
    const cards = (r.dashboards || []).map(d => h('a', {href: link('dashboard', d.id), class: 'card dash-card', testid: 'dashboard-card', dataset: {id: d.id}},
      h('div', {class: 'dash-card-head'}, h('span', {class: 'dash-title'}, d.title), h('span', {class: 'tag' + (d.source === 'user' ? ' tag-user' : '')}, d.source)),
      d.description ? h('p', {class: 'dim small'}, d.description) : null,
      h('div', {class: 'tiny dim'}, `${d.panels} panels · ${d.id}`)));
    const errs = (r.errors || []).length
      ? h('div', {class: 'card', testid: 'dashboard-errors'}, h('h3', null, 'Left out'), h('ul', {class: 'plain'}, r.errors.map(e => h('li', {class: 'err'}, h('span', {class: 'mono'}, e.file), ': ', e.error))))
      : null;
    replace(body, cards.length ? cards : h('div', {class: 'msg msg-empty'}, 'No dashboards.'), errs);
  }).catch(e => message(body, 'error', e.message));
  return {};
}

// subst fills ${name} with the variables; an empty one reads "(no name)"
// in a title (blank), never an empty gap.
const subst = (s, vars, blank = () => '') => String(s).replace(/\$\{([^}]*)\}/g, (_, k) => vars[k] || blank(k));
const titleOf = (s, vars) => subst(s, vars, k => `(no ${k})`);

// unset lists the variables a panel's query needs that have no value
// (no service has data yet, say).
const unset = (p, vars) => [...new Set([...JSON.stringify(p.query || {}).matchAll(/\$\{([^}]*)\}/g)].map(x => x[1]))].filter(k => !vars[k]);

// waiting stands for a panel whose query needs a variable without a
// value: it says so instead of asking the API a question it must refuse.
function waiting(body, names) {
  return {
    refresh() {
      body.dataset.state = 'empty';
      const panel = body.closest('[data-testid="panel"]');
      if (panel) panel.dataset.state = 'empty';
      message(body, 'empty', `Nothing to show: no ${names.join(', ')} to choose yet (none has data in the last 24 hours).`);
    },
    destroy() {},
  };
}

export function dashboardView(el, ctx) {
  const id = ctx.arg;
  let params = ctx.params;
  let def = null;
  let panels = [];
  let timer = null;
  let alive = true;
  let vars = {};
  const head = h('div');
  const controls = h('div', {class: 'toolbar', testid: 'dashboard-vars'});
  const grid = h('div', {class: 'dash-grid', testid: 'dashboard-grid'});
  el.append(head, controls, grid);
  message(head, 'loading', 'Loading dashboard…');

  async function options(v) {
    switch (v.type) {
      case 'service': {
        // The busiest service first: the natural default.
        const list = await api.serviceList({start: Date.now() - 24 * 3600e3}).catch(() => []);
        const top = list.reduce((a, b) => (a && Number(a.spanCount) >= Number(b.spanCount) ? a : b), null);
        return top ? [top.name, ...list.map(s => s.name).filter(n => n !== top.name)] : [];
      }
      case 'architecture':
        return ['none', ...(await api.architectures()).map(a => a.name)];
      case 'level':
        return LEVELS;
      default:
        return v.options || [];
    }
  }

  async function setup() {
    def = await api.get('/dashboards/' + api.enc(id));
    if (!alive) return;
    document.title = `${def.title} · Flowscope`;
    replace(head, h('div', {class: 'dash-head'}, h('h1', {testid: 'dashboard-title'}, def.title), h('span', {class: 'tag' + (def.source === 'user' ? ' tag-user' : '')}, def.source)), def.description ? h('p', {class: 'dim'}, def.description) : null);
    const sels = [];
    for (const v of def.variables || []) {
      const opts = await options(v);
      const cur = params.get('var-' + v.name) || v.default || opts[0] || '';
      vars[v.name] = cur;
      const sel = select(opts.includes(cur) || !cur ? opts : [cur, ...opts], cur, {testid: 'var-' + v.name, onchange: () => ctx.setParams({['var-' + v.name]: sel.value})});
      sels.push(field(v.label || v.name, sel));
    }
    replace(controls, sels, picker(params, ch => ctx.setParams(ch), def.range || '15m'));
    build();
  }

  function build() {
    for (const p of panels) p.inst.destroy();
    panels = [];
    replace(grid);
    def.panels.forEach((p, i) => {
      const body = h('div', {class: 'panel-body', style: {height: (p.height || 300) + 'px'}});
      const title = h('h3', {class: 'panel-title'}, titleOf(p.title, vars));
      const box = h('section', {class: 'card panel', testid: 'panel', dataset: {panelType: p.type, index: i, state: 'loading'}, style: {'grid-column': `span ${p.width || 6}`}}, title, body);
      grid.appendChild(box);
      panels.push({def: p, body, title, inst: null, index: i});
    });
    const c = context();
    for (const p of panels) {
      const missing = unset(p.def, vars);
      p.inst = missing.length ? waiting(p.body, missing) : makePanel(p.body, p.def, panelCtx(c, p));
    }
    refresh();
  }

  function context() {
    const cache = new Map();
    return {
      range: resolve(params, def.range || '15m'),
      get: (path, q) => {
        const k = path + '?' + new URLSearchParams(q).toString();
        if (!cache.has(k)) cache.set(k, api.get(path, q));
        return cache.get(k);
      },
    };
  }

  function panelCtx(c, p) {
    const query = {};
    for (const [k, v] of Object.entries(p.def.query || {})) query[k] = subst(v, vars);
    return Object.assign({}, c, {query, dashboard: id, index: p.index});
  }

  function refresh() {
    const c = context();
    for (const p of panels) {
      p.title.textContent = titleOf(p.def.title, vars);
      p.inst.refresh(panelCtx(c, p));
    }
    clearTimeout(timer);
    const ms = refreshMs();
    if (ms && c.range.live) {
      const tick = () => {
        if (!alive) return;
        if (document.hidden) timer = setTimeout(tick, ms);
        else refresh();
      };
      timer = setTimeout(tick, ms);
    }
  }

  function refreshMs() {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(def.refresh || '');
    if (!m) return 0;
    return Number(m[1]) * {ms: 1, s: 1e3, m: 60e3, h: 3600e3}[m[2]];
  }

  setup().catch(e => {
    el.dataset.state = 'error';
    message(head, 'error', e.status === 404 ? `Dashboard ${id} not found.` : 'Dashboard: ' + e.message);
  });

  return {
    update(c) {
      params = c.params;
      if (!def) return;
      let changed = false;
      for (const v of def.variables || []) {
        const cur = params.get('var-' + v.name) || vars[v.name];
        if (cur !== vars[v.name]) changed = true;
        vars[v.name] = cur;
      }
      if (changed) build();
      else refresh();
    },
    destroy() {
      alive = false;
      clearTimeout(timer);
      for (const p of panels) p.inst.destroy();
    },
  };
}
