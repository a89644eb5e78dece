// Service map: the live flow graph (GET /api/v1/flowgraph) with level,
// time range, declared-architecture comparison, search, neighbourhood
// focus, rate filter and p99 threshold; the side panel shows what is
// selected, with its latency distribution. Nodes and edges named by an
// active alert (GET /alerts, at the service level) are marked, and listed
// above the map. A synthetic check's node (synthetic:<check>) links to the
// check in the Synthetics view.
import {h, replace, link, field, select, fillSelect, message, debounce, table} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import {FlowMap, edgeKey, syntheticCheck} from '../graph.js';
import {picker, resolve, apiParams} from '../timerange.js';
import {LatencyPanel, latencyCell} from '../latency.js';
import {setMap, clearMap} from '../hooks.js';
import {subscribe as subscribeAlerts} from '../alertfeed.js';

export const REFRESH_MS = 1500;
export const LEVELS = ['service', 'instance', 'zone', 'region', 'namespace'];

// Positions survive remounts (navigating away and back), per level.
const positionStores = new Map();
function positions(level) {
  if (!positionStores.has(level)) positionStores.set(level, new Map());
  return positionStores.get(level);
}

export function legend() {
  const item = (cls, label) => h('span', {class: 'lg-item'}, h('span', {class: 'lg ' + cls}), label);
  return h('div', {class: 'map-legend', testid: 'map-legend'},
    item('lg-ok', 'ok'), item('lg-slow', 'p99 over threshold'), item('lg-warn', 'errors ≥ 1 %'), item('lg-err', 'errors ≥ 5 %'),
    item('lg-declared', 'declared only'), item('lg-observed', 'observed only'), item('lg-virtual', 'virtual node'), item('lg-synthetic', 'synthetic check'),
    item('lg-alert', 'alert firing'), item('lg-alert-pending', 'alert pending'),
    h('span', {class: 'dim'}, 'width ∝ rate · drag to move · wheel to zoom · double-click to focus'));
}

export default function mount(el, ctx) {
  let params = ctx.params;
  const P = (k, d = '') => params.get(k) ?? d;
  let level = LEVELS.includes(P('level')) ? P('level') : 'service';
  let graph = null;
  let map = null;
  let timer = null;
  let inflight = false;
  let destroyed = false;
  let latency = null;
  let sideKey = null;
  let tick = 0;
  let lastFetch = 0;
  let lastOk = 0;
  let alerts = [];

  const status = h('span', {class: 'status dim', testid: 'map-status'}, 'loading…');
  const levelSel = select(LEVELS.map(l => ({value: l, label: l})), level, {testid: 'level-select', onchange: () => ctx.setParams({level: levelSel.value, focus: '', node: '', source: '', target: ''})});
  const compareSel = select([{value: '', label: 'none'}], P('compare'), {testid: 'compare-select', onchange: () => ctx.setParams({compare: compareSel.value})});
  api.architectures().then(list => {
    fillSelect(compareSel, [{value: '', label: 'none'}, ...list.map(a => ({value: a.name, label: `${a.name} (${a.nodes} nodes, ${a.edges} calls)`}))], P('compare'));
  });
  const datalist = h('datalist', {id: 'map-nodes'});
  const search = h('input', {type: 'search', placeholder: 'find a node…', list: 'map-nodes', testid: 'map-search', value: P('focus'), autocomplete: 'off'});
  const up = h('input', {type: 'number', min: 0, max: 9, value: P('up', '1'), class: 'num-input', testid: 'hops-up', title: 'hops upstream (callers)'});
  const down = h('input', {type: 'number', min: 0, max: 9, value: P('down', '1'), class: 'num-input', testid: 'hops-down', title: 'hops downstream (callees)'});
  const minRate = h('input', {type: 'number', min: 0, step: 'any', value: P('minRate', ''), placeholder: '0', class: 'num-input', testid: 'min-rate', title: 'hide edges below this rate (calls/s)'});
  const threshold = h('input', {type: 'number', min: 0, step: 'any', value: P('p99', ''), placeholder: 'off', class: 'num-input', testid: 'p99-threshold', title: 'colour edges whose p99 exceeds this (ms)'});
  const particles = h('input', {type: 'checkbox', checked: P('particles') !== 'off', testid: 'particles'});

  const doFocus = () => {
    const q = search.value.trim();
    if (!q) return ctx.setParams({focus: ''});
    const ids = graph ? graph.nodes.map(n => n.id) : [];
    const exact = ids.find(id => id === q) || ids.find(id => id.toLowerCase() === q.toLowerCase());
    const hits = ids.filter(id => id.toLowerCase().includes(q.toLowerCase()));
    const id = exact || (hits.length ? hits[0] : '');
    if (id) ctx.setParams({focus: id, node: id, source: '', target: ''});
  };
  search.addEventListener('input', () => {
    const q = search.value.trim().toLowerCase();
    if (map) map.setMatches(q && graph ? graph.nodes.map(n => n.id).filter(id => id.toLowerCase().includes(q)) : []);
  });
  search.addEventListener('keydown', ev => {
    if (ev.key === 'Enter') doFocus();
  });
  const num = (v, d) => (v.value === '' ? d : v.value);
  up.addEventListener('change', () => ctx.setParams({up: num(up, '')}));
  down.addEventListener('change', () => ctx.setParams({down: num(down, '')}));
  minRate.addEventListener('input', debounce(() => ctx.setParams({minRate: minRate.value}), 250));
  threshold.addEventListener('input', debounce(() => ctx.setParams({p99: threshold.value}), 250));
  particles.addEventListener('change', () => ctx.setParams({particles: particles.checked ? '' : 'off'}));

  const toolbar = h('div', {class: 'toolbar'},
    field('Level', levelSel),
    picker(params, ch => ctx.setParams(ch)),
    field('Compare with', compareSel),
    field('Search', h('span', {class: 'inline'}, search, datalist,
      h('button', {type: 'button', class: 'btn', testid: 'focus-btn', onclick: doFocus}, 'Focus'),
      h('button', {type: 'button', class: 'btn btn-ghost', testid: 'unfocus-btn', onclick: () => {
        search.value = '';
        if (map) map.setMatches([]);
        ctx.setParams({focus: ''});
      }}, 'All'))),
    field('Hops ↑/↓', h('span', {class: 'inline'}, up, down)),
    field('Min rate /s', minRate),
    field('p99 > ms', threshold),
    h('label', {class: 'check small'}, particles, 'flow'),
    h('span', {class: 'inline'},
      h('button', {type: 'button', class: 'btn btn-ghost', testid: 'fit-btn', onclick: () => map && map.resetView()}, 'Fit'),
      h('button', {type: 'button', class: 'btn btn-ghost', testid: 'relayout-btn', onclick: () => map && map.relayout()}, 'Re-layout')),
    status);

  const canvasWrap = h('div', {class: 'map-wrap'});
  const overlay = h('div', {class: 'map-overlay', hidden: true, testid: 'map-overlay'});
  const alertBox = h('div', {class: 'map-alerts', hidden: true, testid: 'map-alerts'});
  const sideAlerts = h('div', {class: 'side-alerts', testid: 'side-alerts'});
  canvasWrap.append(overlay, legend());
  const side = h('aside', {class: 'side', testid: 'map-side'});
  el.append(toolbar, alertBox, h('div', {class: 'map-body'}, canvasWrap, side));

  function newMap() {
    if (map) {
      clearMap(map);
      map.destroy();
    }
    map = new FlowMap(canvasWrap, {
      positions: positions(level),
      thresholdMs: Number(P('p99')) || 0,
      minRate: Number(P('minRate')) || 0,
      particles: P('particles') !== 'off',
      testid: 'service-map',
      onSelect: hit => {
        if (!hit) ctx.setParams({node: '', source: '', target: ''});
        else if (hit.type === 'node') ctx.setParams({node: hit.id, source: '', target: ''});
        else ctx.setParams({node: '', source: hit.source, target: hit.target});
      },
      onFocus: id => {
        search.value = id;
        ctx.setParams({focus: id, node: id, source: '', target: ''});
      },
    });
    canvasWrap.insertBefore(map.root, overlay);
    setMap(map);
    applyAlerts();
  }

  // applyAlerts marks the alerts on the map (node ids are service names
  // only at the service level), lists them over it and in the side panel.
  let alertSig = '';
  function applyAlerts() {
    if (!map) return;
    map.setAlerts(level === 'service' ? alerts : []);
    const marks = map.marks();
    const sig = JSON.stringify([String(params), marks.map(m => [m.type, m.id, m.source, m.target, m.state, m.alerts.map(a => [a.rule, a.state])])]);
    if (sig !== alertSig) {
      alertSig = sig;
      alertBox.hidden = !marks.length;
      const base = Object.fromEntries(params);
      replace(alertBox, h('a', {href: link('alerts'), class: 'map-alerts-head', testid: 'map-alerts-link'}, 'Alerts on this map'),
        marks.slice(0, 12).map(m => h('a', {
          class: 'map-alert map-alert-' + m.state,
          testid: 'map-alert',
          href: link('map', '', Object.assign({}, base, m.type === 'node' ? {node: m.id, source: '', target: ''} : {node: '', source: m.source, target: m.target})),
          title: m.alerts.map(a => `${a.state}: ${a.rule}`).join('\n'),
          dataset: m.type === 'node' ? {alert: m.state, kind: 'node', node: m.id} : {alert: m.state, kind: 'edge', source: m.source, target: m.target},
        }, h('span', {class: 'dot'}), h('span', {class: 'map-alert-rules'}, [...new Set(m.alerts.map(a => a.rule))].join(', ')), h('span', {class: 'dim'}, m.type === 'node' ? m.id : `${m.source} → ${m.target}`))),
        marks.length > 12 ? h('div', {class: 'dim small'}, `and ${marks.length - 12} more`) : null);
    }
    updateSideAlerts();
  }

  // updateSideAlerts lists the alerts of the selected node or edge.
  let sideSig = '';
  function updateSideAlerts() {
    const nodeId = P('node'), src = P('source'), tgt = P('target');
    const mine = level !== 'service' ? [] : alerts.filter(a => {
      const l = a.labels || {};
      if (nodeId && l.check) return 'synthetic:' + l.check === nodeId;
      return nodeId ? !l.source && l.service === nodeId : src && l.source === src && l.target === tgt;
    });
    const sig = JSON.stringify(mine.map(a => [a.rule, a.key, a.state, a.value]));
    if (sig === sideSig) return;
    sideSig = sig;
    replace(sideAlerts, mine.length ? [h('h3', null, `Alerts (${mine.length})`), h('ul', {class: 'plain'}, mine.map(a => h('li', {class: 'side-alert', dataset: {state: a.state}},
      h('span', {class: 'badge badge-' + a.state}, a.state), ' ',
      h('a', {href: link('alerts', '', {rule: a.rule})}, a.rule), ' ',
      h('span', {class: 'dim'}, `${a.signal} ${fmt.unitValue(a.value, a.unit)} (threshold ${fmt.unitValue(a.threshold, a.unit)})`))))] : []);
  }

  function applyOptions() {
    if (!map) return;
    map.setOptions({thresholdMs: Number(P('p99')) || 0, minRate: Number(P('minRate')) || 0, particles: P('particles') !== 'off'});
    const f = P('focus');
    const cur = map.focus;
    const nf = f ? {id: f, up: Number(P('up', '1')), down: Number(P('down', '1'))} : null;
    if (JSON.stringify(cur) !== JSON.stringify(nf)) {
      map.setFocus(nf);
      if (f) map.setMatches([f]);
    }
    const sel = P('node') ? {type: 'node', id: P('node')} : P('source') ? {type: 'edge', source: P('source'), target: P('target')} : null;
    map.select(sel);
  }

  async function refresh() {
    if (inflight || destroyed) return;
    inflight = true;
    const tr = resolve(params);
    const t0 = performance.now();
    try {
      const q = Object.assign({level}, apiParams(tr));
      if (P('compare')) q.compare = P('compare');
      const g = await api.get('/flowgraph', q);
      if (destroyed) return;
      graph = g;
      lastOk = Date.now();
      lastFetch = performance.now() - t0;
      map.setData(g);
      map.setStale(false);
      applyOptions();
      applyAlerts();
      overlay.hidden = true;
      if (!g.nodes.length) {
        overlay.hidden = false;
        replace(overlay, h('div', {class: 'msg msg-empty', testid: 'msg-empty'}, 'No services in this range yet. Point an OpenTelemetry SDK at the collector, or import a file.'));
      }
      updateDatalist();
      const cmp = g.comparison;
      replace(status, `${g.nodes.length} nodes · ${g.edges.length} edges`, cmp ? ` · declared: ${cmp.both} both, ${cmp.declaredOnly} declared only, ${cmp.observedOnly} observed only` : '', ` · ${tr.live ? 'live, ' : ''}updated ${fmt.clock(Date.now())} (${Math.round(lastFetch)} ms)`);
      el.dataset.state = 'ready';
      renderSide(false);
    } catch (e) {
      if (destroyed) return;
      el.dataset.state = 'error';
      // The last graph stays, greyed out and still, so that it is not
      // taken for live traffic.
      if (map) map.setStale(true);
      overlay.hidden = false;
      replace(overlay, h('div', {class: 'msg msg-error', testid: 'msg-error'}, 'Flow graph: ' + e.message,
        graph ? ` · showing the last graph, of ${fmt.clock(lastOk)}, greyed out` : ''));
      replace(status, 'error');
    } finally {
      inflight = false;
    }
  }

  let datalistKey = '';
  function updateDatalist() {
    const ids = graph.nodes.map(n => n.id);
    const key = ids.join('\u0000');
    if (key === datalistKey) return;
    datalistKey = key;
    replace(datalist, ids.slice(0, 2000).map(id => h('option', {value: id})));
  }

  function schedule() {
    clearInterval(timer);
    timer = null;
    if (resolve(params).live) {
      timer = setInterval(() => {
        if (!document.hidden) {
          tick++;
          refresh();
        }
      }, REFRESH_MS);
    }
  }

  // traceSearch is the trace search of a service node: its id is
  // namespace/name when it has a namespace, and traces are searched by
  // service.name and the namespace attribute.
  function traceSearch(n, tr) {
    const check = syntheticCheck(n.id);
    // The prober's spans: service.name "synthetics", synthetic.check.
    if (check) return {service: 'synthetics', 'attr.synthetic.check': check, range: tr.range === 'custom' ? '' : tr.range};
    const ns = n.namespace || '';
    return {service: ns ? n.id.slice(ns.length + 1) : n.id, 'attr.service.namespace': ns, range: tr.range === 'custom' ? '' : tr.range};
  }

  function nodeRow(e, other) {
    return h('tr', null,
      h('td', null, h('a', {href: link('map', '', Object.assign(Object.fromEntries(params), {node: '', source: e.source, target: e.target})), testid: 'side-edge-link'}, other)),
      h('td', {class: 'num'}, fmt.rate(e.rate)), h('td', {class: 'num'}, fmt.pct(e.errorRate)), latencyCell(e.latency && e.latency.p99));
  }

  // renderSide draws the side panel; full=false keeps the latency panel
  // and only refreshes it every few ticks.
  function renderSide(full) {
    if (!graph) return;
    const tr = resolve(params);
    const nodeId = P('node'), src = P('source'), tgt = P('target');
    const key = nodeId ? 'n:' + nodeId : src ? 'e:' + edgeKey(src, tgt) : '';
    const changed = key !== sideKey || full;
    if (!changed) {
      if (latency && tick % 4 === 0) latency.update(null, tr);
      updateSummary();
      return;
    }
    sideKey = key;
    if (latency) latency.destroy();
    latency = null;
    // lat shows the quantiles of a node or an edge; calls of unknown
    // duration (one-way messages) are said to be so, never shown as 0.
    const lat = (s, calls) => {
      const l = s.latency || {}, state = fmt.latencyState(l, calls);
      if (state === 'unknown') return h('div', {class: 'stats'}, h('div', {class: 'stat', testid: 'side-latency-unknown'}, h('span', {class: 'stat-label'}, 'latency'), h('span', {class: 'stat-value'}, 'unknown')),
        h('p', {class: 'dim small'}, 'No call has a measured duration (one-way messages, or spans without an end).'));
      return h('div', null, h('div', {class: 'stats'}, ['p50', 'p90', 'p99', 'p999'].map(q => h('div', {class: 'stat'}, h('span', {class: 'stat-label'}, q === 'p999' ? 'p99.9' : q), h('span', {class: 'stat-value'}, fmt.dur(l[q]))))),
        state === 'partial' ? h('p', {class: 'dim small', testid: 'side-latency-partial'}, `From the ${fmt.count(l.timedCalls)} of ${fmt.count(calls)} calls with a measured duration.`) : null);
    };
    // Each statistic is shown once: rates, counts and errors from the
    // graph; the quantiles from the latency panel (GET /latency) when
    // there is one, else from the graph.
    const sideLatency = {series: true, histogramHeight: 170, counts: false};
    if (nodeId) {
      const n = graph.nodes.find(x => x.id === nodeId);
      if (!n) return replace(side, h('div', {class: 'msg msg-empty'}, 'Node not in this graph.'));
      const ins = graph.edges.filter(e => e.target === nodeId), outs = graph.edges.filter(e => e.source === nodeId);
      const latBox = h('div');
      const check = level === 'service' ? syntheticCheck(nodeId) : '';
      const hasPanel = level === 'service' && !n.virtual && !n.declaredOnly && !check;
      const calls = fmt.num(n.requestRate) > 0 ? Math.max(1, fmt.num(n.latency && n.latency.timedCalls)) : 0;
      replace(side,
        h('h2', {class: 'side-title', testid: 'side-title'}, nodeId),
        sideAlerts,
        h('div', {class: 'tags'}, h('span', {class: 'tag'}, level), n.virtual ? h('span', {class: 'tag'}, 'virtual') : null, n.declaredOnly ? h('span', {class: 'tag'}, 'declared only') : null,
          check ? h('span', {class: 'tag', testid: 'side-synthetic-tag', title: 'the synthetic-check prober\'s runs of this check'}, 'synthetic check') : null),
        h('div', {class: 'stats summary-stats'}, statBox('requests', fmt.rate(n.requestRate)), statBox('errors', fmt.pct(n.errorRate)), statBox('spans', fmt.count(n.spanCount))),
        hasPanel && fmt.latencyState(n.latency || {}, calls) !== 'unknown' ? null : lat(n, calls),
        h('div', {class: 'inline wrap'},
          check ? h('a', {class: 'btn btn-primary', href: link('synthetics', check, {range: P('range') === 'custom' ? '' : P('range')}), testid: 'side-synthetic', title: 'the check\'s runs, steps and timings'}, 'Open check in Synthetics') : null,
          h('a', {class: 'btn', href: link('map', '', Object.assign(Object.fromEntries(params), {focus: nodeId})), testid: 'side-focus'}, 'Focus neighbourhood'),
          level === 'service' && !n.virtual ? h('a', {class: 'btn', href: link('traces', '', traceSearch(n, tr)), testid: 'side-traces'}, 'Traces') : null),
        ins.length ? h('h3', null, `Callers (${ins.length})`) : null,
        ins.length ? table(['from', 'rate', 'err', 'p99'], ins.slice(0, 50).map(e => nodeRow(e, e.source))) : null,
        outs.length ? h('h3', null, `Callees (${outs.length})`) : null,
        outs.length ? table(['to', 'rate', 'err', 'p99'], outs.slice(0, 50).map(e => nodeRow(e, e.target))) : null,
        check ? h('p', {class: 'dim small', testid: 'side-synthetic-note'}, 'The prober of the synthetic check ', h('span', {class: 'mono'}, check), ' serves no requests: its calls are the edges above; its runs, their steps and timings are in the Synthetics view.') : null,
        latBox);
      if (hasPanel) latency = new LatencyPanel(latBox, Object.assign({query: {service: nodeId}, range: tr}, sideLatency));
      return;
    }
    if (src) {
      const e = graph.edges.find(x => x.source === src && x.target === tgt);
      if (!e) return replace(side, h('div', {class: 'msg msg-empty'}, `No edge ${src} → ${tgt} in this graph.`));
      const latBox = h('div');
      replace(side,
        h('h2', {class: 'side-title', testid: 'side-title'}, src, ' → ', tgt),
        sideAlerts,
        h('div', {class: 'tags'}, h('span', {class: 'tag'}, level), e.virtual ? h('span', {class: 'tag'}, 'to a virtual node') : null, e.declared ? h('span', {class: 'tag', testid: 'edge-declared'}, e.declared.replace('_', ' ')) : null),
        h('div', {class: 'stats summary-stats'}, statBox('rate', fmt.rate(e.rate)), statBox('calls', fmt.count(e.calls)), statBox('errors', `${fmt.count(e.errors)} (${fmt.pct(e.errorRate)})`)),
        fmt.num(e.calls) > 0 && fmt.latencyState(e.latency || {}, e.calls) !== 'unknown' ? null : lat(e, e.calls),
        latBox);
      if (fmt.num(e.calls) > 0) latency = new LatencyPanel(latBox, Object.assign({query: {source: src, target: tgt, level}, range: tr}, sideLatency));
      return;
    }
    replace(side, h('h2', {class: 'side-title'}, 'Overview'), h('div', {testid: 'map-summary', class: 'summary'}));
    updateSummary();
  }

  function updateSummary() {
    const box = side.querySelector('[data-testid="map-summary"]');
    if (!box || !graph) return;
    const edges = graph.edges.filter(e => fmt.num(e.calls) > 0);
    const total = graph.nodes.reduce((a, n) => a + fmt.num(n.requestRate), 0);
    const entry = entryRate(graph);
    const linked = new Set(graph.edges.flatMap(e => [e.source, e.target]));
    const isolated = graph.nodes.filter(n => !linked.has(n.id));
    const busiest = edges.slice().sort((a, b) => fmt.num(b.rate) - fmt.num(a.rate)).slice(0, 10);
    // Edges of unknown latency (no call with a duration) are left out: they
    // are neither slow nor fast.
    const slowest = edges.filter(e => fmt.known(e.latency && e.latency.p99)).sort((a, b) => fmt.compareDesc(a.latency.p99, b.latency.p99)).slice(0, 5);
    const edgeLink = e => h('a', {href: link('map', '', Object.assign(Object.fromEntries(params), {source: e.source, target: e.target, node: ''})), testid: 'summary-edge'}, e.source, ' → ', e.target);
    replace(box,
      h('div', {class: 'stats summary-stats'}, statBox('nodes', graph.nodes.length), statBox('edges', graph.edges.length),
        statBox('entering', fmt.rate(entry), {testid: 'summary-entry', rate: entry, title: 'requests into the system from outside: those of the nodes no other node calls (or, for a pure client, its calls)'}),
        statBox('all hops', fmt.rate(total), {testid: 'summary-hops', rate: total, title: 'requests of every node, summed: one request counts once per service it passes'})),
      h('p', {class: 'dim small'}, 'Click a node or an edge for its latency distribution.'),
      busiest.length ? h('h3', null, 'Busiest calls') : null,
      busiest.length ? table(['call', 'rate', 'err'], busiest.map(e => h('tr', null, h('td', null, edgeLink(e)), h('td', {class: 'num'}, fmt.rate(e.rate)), h('td', {class: 'num'}, fmt.pct(e.errorRate))))) : null,
      slowest.length ? h('h3', null, 'Slowest calls (p99)') : null,
      slowest.length ? table(['call', 'p99'], slowest.map(e => h('tr', null, h('td', null, edgeLink(e)), h('td', {class: 'num'}, fmt.dur(e.latency.p99))))) : null,
      isolated.length ? h('h3', null, `Isolated (${isolated.length})`) : null,
      isolated.length ? h('ul', {class: 'plain'}, isolated.slice(0, 30).map(n => h('li', null, h('a', {href: link('map', '', Object.assign(Object.fromEntries(params), {node: n.id}))}, n.id)))) : null);
  }

  newMap();
  refresh();
  schedule();
  const unsubscribe = subscribeAlerts(st => {
    alerts = st.alerts;
    applyAlerts();
  });

  return {
    update(c) {
      const prev = params;
      params = c.params;
      const newLevel = LEVELS.includes(P('level')) ? P('level') : 'service';
      const rangeChanged = ['range', 'from', 'to', 'compare'].some(k => (prev.get(k) || '') !== (params.get(k) || ''));
      if (newLevel !== level) {
        level = newLevel;
        levelSel.value = level;
        graph = null;
        sideKey = '#';
        newMap();
        refresh();
      } else if (rangeChanged) {
        refresh();
      }
      if (rangeChanged) schedule();
      compareSel.value = P('compare');
      applyOptions();
      renderSide(rangeChanged);
      applyAlerts();
    },
    destroy() {
      destroyed = true;
      unsubscribe();
      clearInterval(timer);
      if (latency) latency.destroy();
      if (map) {
        clearMap(map);
        map.destroy();
      }
    },
  };
}

function statBox(label, value, o = {}) {
  return h('div', {class: 'stat', testid: o.testid || null, title: o.title || null, dataset: o.rate != null ? {rate: o.rate} : null},
    h('span', {class: 'stat-label'}, label), h('span', {class: 'stat-value'}, String(value)));
}

// entryRate is the traffic entering the system, per second: the requests
// of the nodes that no other node calls (the roots of the graph: what
// they serve comes from outside), or, for such a node that serves none
// (a load generator, a synthetic check's prober, a client-only service),
// the calls it makes. Every other request is a hop of one of these.
export function entryRate(g) {
  const called = new Set(g.edges.filter(e => e.source !== e.target && fmt.num(e.calls) > 0).map(e => e.target));
  let sum = 0;
  for (const n of g.nodes) {
    if (called.has(n.id)) continue;
    const own = fmt.num(n.requestRate);
    sum += own > 0 ? own : g.edges.filter(e => e.source === n.id && e.target !== n.id).reduce((a, e) => a + fmt.num(e.rate), 0);
  }
  return sum;
}
