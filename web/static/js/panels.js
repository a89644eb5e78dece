// Dashboard panels: each panel type of dashboards/ (see docs/dashboards.md)
// drawn with the same components as the views. A panel is
// make(body, panel, ctx) → {refresh(ctx), destroy()}; ctx carries the
// resolved time range, the panel's query with variables substituted, and
// get (a fetch shared by the panels of one refresh).
import {h, replace, link, message, table} from './dom.js';
import * as fmt from './fmt.js';
import {FlowMap} from './graph.js';
import {LatencyPanel, latencyCell, latencyQuery, seriesOf, QUANTILES} from './latency.js';
import {lineChart, legend, barList, widthOf} from './charts.js';
import {apiParams, stepFor} from './timerange.js';
import {metricChart} from './views/metrics.js';
import {subscribe as subscribeAlerts, alertTarget} from './alertfeed.js';
import {setMap, clearMap} from './hooks.js';

const mapPositions = new Map();

function state(body, s) {
  body.dataset.state = s;
  const panel = body.closest('[data-testid="panel"]');
  if (panel) panel.dataset.state = s;
}

async function guard(body, fn) {
  try {
    await fn();
  } catch (e) {
    state(body, 'error');
    message(body, 'error', e.message);
  }
}

function flowQuery(ctx) {
  const q = Object.assign({level: 'service'}, ctx.query, apiParams(ctx.range));
  if (!q.compare || q.compare === 'none') delete q.compare;
  return q;
}

const latHref = (q, ctx) => link('latency', '', Object.assign({}, latencyQuery(q), {range: ctx.range.range === 'custom' ? '' : ctx.range.range}));
const edgeHref = (e, ctx) => latHref({source: e.source, target: e.target, level: ctx.query.level}, ctx);
const nodeHref = (n, ctx) => ((ctx.query.level || 'service') === 'service' && !n.virtual ? latHref({service: n.id}, ctx) : link('map', '', {level: ctx.query.level, node: n.id}));

// sortKey is the value a panel sorts by; a latency may be null (unknown).
function sortKey(by, x) {
  if (by === 'rate') return fmt.num(x.rate ?? x.requestRate);
  if (by === 'calls') return fmt.num(x.calls ?? x.spanCount);
  if (by === 'errorRate') return fmt.num(x.errorRate);
  return x.latency ? x.latency[by || 'p99'] : null;
}

// byDesc orders by sortKey, largest first; unknown latencies come last,
// never as the fastest.
const byDesc = by => (a, b) => fmt.compareDesc(sortKey(by, a), sortKey(by, b));

const TYPES = {
  flowgraph(body, panel, ctx0) {
    const key = `${ctx0.dashboard}/${ctx0.index}/${ctx0.query.level || 'service'}`;
    if (!mapPositions.has(key)) mapPositions.set(key, new Map());
    let ctx = ctx0;
    const map = new FlowMap(body, {
      positions: mapPositions.get(key),
      thresholdMs: (panel.options && panel.options.thresholdMs) || 0,
      particles: true,
      testid: 'panel-flowmap',
      padBottom: 24,
      onSelect: hit => {
        if (!hit) return;
        if (hit.type === 'edge') location.hash = edgeHref(hit, ctx);
        else location.hash = nodeHref(map.nodes.get(hit.id).data, ctx);
      },
    });
    // The test hooks (hooks.js) see the dashboard's flow graph.
    setMap(map);
    // Active alerts are marked as on the service map (node ids are
    // service names only at the service level).
    let alerts = [];
    const mark = () => map.setAlerts((ctx.query.level || 'service') === 'service' ? alerts : []);
    const unsubscribe = subscribeAlerts(st => {
      alerts = st.alerts;
      mark();
    });
    const refresh = c => guard(body, async () => {
      ctx = c;
      const g = await c.get('/flowgraph', flowQuery(c));
      map.setData(g);
      mark();
      state(body, g.nodes.length ? 'ready' : 'empty');
    });
    return {refresh, destroy: () => {
      unsubscribe();
      clearMap(map);
      map.destroy();
    }};
  },

  distribution(body, panel, ctx) {
    const lp = new LatencyPanel(body, {query: ctx.query, range: ctx.range, quantiles: ctx.query.quantiles || QUANTILES, series: false, exemplars: false, title: false, histogramHeight: Math.max(100, (panel.height || 300) - 120)});
    const sync = () => state(body, lp.el.dataset.state === 'error' ? 'error' : 'ready');
    return {
      refresh: async c => {
        await lp.update(c.query, c.range);
        sync();
      },
      destroy: () => lp.destroy(),
    };
  },

  quantileSeries(body, panel) {
    return {
      refresh: c => guard(body, async () => {
        const q = Object.assign({}, latencyQuery(c.query), apiParams(c.range), {quantiles: c.query.quantiles || QUANTILES, step: c.query.step || stepFor(c.range.end - c.range.start)});
        const d = await c.get('/latency', q);
        const series = seriesOf(d);
        replace(body, lineChart({series, width: widthOf(body), height: Math.max(100, (panel.height || 300) - 70), yFormat: fmt.durShort, logY: true}), legend(series));
        state(body, fmt.num(d.count) ? 'ready' : 'empty');
      }),
      destroy() {},
    };
  },

  topEdges(body, panel) {
    const o = panel.options || {};
    return {
      refresh: c => guard(body, async () => {
        const g = await c.get('/flowgraph', flowQuery(c));
        const by = o.by || 'p99';
        const edges = g.edges.filter(e => fmt.num(e.calls) > 0).sort(byDesc(by)).slice(0, o.limit || 10);
        if (!edges.length) {
          state(body, 'empty');
          return message(body, 'empty', 'No calls in this range.');
        }
        replace(body, table(['call', 'rate', 'errors', 'p50', 'p99'], edges.map(e => h('tr', {testid: 'panel-row'},
          h('td', null, h('a', {href: edgeHref(e, c)}, e.source, ' → ', e.target)),
          h('td', {class: 'num'}, fmt.rate(e.rate)), h('td', {class: 'num'}, fmt.pct(e.errorRate)),
          latencyCell(e.latency.p50), latencyCell(e.latency.p99, by.startsWith('p') ? 'strong' : '')))));
        state(body, 'ready');
      }),
      destroy() {},
    };
  },

  errorRates(body, panel) {
    const o = panel.options || {};
    return {
      refresh: c => guard(body, async () => {
        const g = await c.get('/flowgraph', flowQuery(c));
        const of = o.of || 'edges';
        const items = (of === 'nodes' ? g.nodes.filter(n => fmt.num(n.requestRate) > 0) : g.edges.filter(e => fmt.num(e.calls) > 0))
          .sort((a, b) => fmt.num(b.errorRate) - fmt.num(a.errorRate)).slice(0, o.limit || 10);
        if (!items.length) {
          state(body, 'empty');
          return message(body, 'empty', 'No requests in this range.');
        }
        replace(body, barList(items.map(x => ({
          label: of === 'nodes' ? x.id : `${x.source} → ${x.target}`,
          title: of === 'nodes' ? x.id : `${x.source} → ${x.target}`,
          href: of === 'nodes' ? nodeHref(x, c) : edgeHref(x, c),
          value: fmt.num(x.errorRate),
          text: fmt.pct(x.errorRate),
          color: fmt.num(x.errorRate) >= 0.05 ? 'var(--err)' : fmt.num(x.errorRate) >= 0.01 ? 'var(--warn)' : 'var(--ok)',
        })), {testid: 'panel-bars', max: Math.max(0.01, ...items.map(x => fmt.num(x.errorRate)))}));
        state(body, 'ready');
      }),
      destroy() {},
    };
  },

  nodeTable(body, panel) {
    const o = panel.options || {};
    return {
      refresh: c => guard(body, async () => {
        const g = await c.get('/flowgraph', flowQuery(c));
        const by = o.by || 'rate';
        const nodes = g.nodes.slice().sort((a, b) => byDesc(by)(a, b) || (a.id < b.id ? -1 : 1)).slice(0, o.limit || 10);
        if (!nodes.length) {
          state(body, 'empty');
          return message(body, 'empty', 'No services in this range.');
        }
        replace(body, table(['node', 'requests', 'errors', 'p50', 'p99'], nodes.map(n => h('tr', {testid: 'panel-row'},
          h('td', null, h('a', {href: nodeHref(n, c)}, n.id), n.virtual ? h('span', {class: 'tag'}, 'virtual') : null),
          h('td', {class: 'num'}, fmt.rate(n.requestRate)), h('td', {class: 'num' + (fmt.num(n.errorRate) >= 0.01 ? ' err' : '')}, fmt.pct(n.errorRate)),
          latencyCell(n.latency.p50), latencyCell(n.latency.p99)))));
        state(body, 'ready');
      }),
      destroy() {},
    };
  },

  // alerts lists the active alerts (GET /alerts: firing, then pending),
  // optionally of one rule (query.rule), in one state (query.state) and
  // with given labels (query.labels: "name=value,…", all must match).
  alerts(body, panel) {
    const o = panel.options || {};
    return {
      refresh: c => guard(body, async () => {
        const [r, rules] = await Promise.all([c.get('/alerts', Object.fromEntries(['rule', 'state'].filter(k => c.query[k]).map(k => [k, c.query[k]]))), c.get('/rules', {})]);
        const want = parseLabels(c.query.labels);
        const all = (r.alerts || []).filter(a => want.every(([k, v]) => (a.labels || {})[k] === v));
        const list = all.slice(0, o.limit || 10);
        if (!(rules.rules || []).length) {
          state(body, 'empty');
          return message(body, 'empty', 'No alert rules are loaded (start the collector with --rules).');
        }
        if (!list.length) {
          state(body, 'ready');
          return replace(body, h('div', {class: 'msg msg-ok', testid: 'panel-no-alerts'}, c.query.rule ? `No active alerts of ${c.query.rule}.` : 'No active alerts.'));
        }
        const now = Date.now();
        replace(body, table(['state', 'rule', 'target', 'value', 'threshold', 'since'], list.map(a => {
          const since = fmt.parseTime(a.state === 'firing' ? a.firedAt || a.activeAt : a.activeAt);
          return h('tr', {testid: 'panel-row', dataset: {state: a.state, rule: a.rule}},
            h('td', null, h('span', {class: 'badge badge-' + a.state}, a.state)),
            h('td', null, h('a', {href: link('alerts', '', {rule: a.rule}), class: 'alert-rule'}, a.rule), a.annotations && a.annotations.summary ? h('div', {class: 'dim small'}, a.annotations.summary) : null),
            h('td', null, alertTarget(a)),
            h('td', {class: 'num'}, fmt.unitValue(a.value, a.unit)),
            h('td', {class: 'num dim'}, ((rules.rules || []).find(x => x.name === a.rule) || {}).comparison === 'below' ? '< ' : '> ', fmt.unitValue(a.threshold, a.unit)),
            h('td', {class: 'num dim'}, Number.isFinite(since) ? fmt.age(now - since) : ''));
        })), all.length > list.length ? h('div', {class: 'dim small'}, `and ${all.length - list.length} more: `, h('a', {href: link('alerts')}, 'all alerts')) : null);
        state(body, 'ready');
      }),
      destroy() {},
    };
  },

  metric(body, panel) {
    return {
      refresh: c => guard(body, async () => {
        const q = Object.assign({}, apiParams(c.range));
        if (c.query.quantiles) q.quantiles = c.query.quantiles;
        const m = await c.get('/metrics/' + encodeURIComponent(c.query.name), q);
        metricChart(body, m, {height: Math.max(100, (panel.height || 300) - 110)});
        state(body, (m.series || []).length ? 'ready' : 'empty');
      }),
      destroy() {},
    };
  },
};

// parseLabels reads an alerts panel's labels query, "name=value,…", into
// [[name, value]]; the dashboard validation has checked its form.
function parseLabels(s) {
  if (!s) return [];
  return s.split(',').map(x => x.trim()).filter(Boolean).map(x => {
    const i = x.indexOf('=');
    return [x.slice(0, i).trim(), x.slice(i + 1).trim()];
  });
}

export function makePanel(body, panel, ctx) {
  const f = TYPES[panel.type];
  if (!f) {
    state(body, 'error');
    message(body, 'error', `Unknown panel type ${panel.type}.`);
    return {refresh() {}, destroy() {}};
  }
  return f(body, panel, ctx);
}
