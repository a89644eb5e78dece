// Service map: the live flow graph (GET /api/v1/flowgraph) with level,
// time range, declared-architecture comparison, search, neighbourhood
// focus, rate filter and p99 threshold; the side panel shows what is
// selected, with its latency distribution. Nodes and edges named by an
// active alert (GET /alerts, at the service level) are marked, and listed
// above the map. A synthetic check's node (synthetic:<check>) links to the
// check in the Synthetics view. Health: colour is the error rate, a double
// line marks a slow node or edge (p99 against the hour before the range —
// fetched at most once a minute — or the p99 threshold); edge labels and
// "unhealthy only" are toggles in the URL. With nothing selected, the side
// panel lists the nodes and their calls as buttons, for the keyboard.
import {h, replace, link, field, select, fillSelect, message, debounce, table} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import {FlowMap, edgeKey, syntheticCheck, SLOW_RATIO, SLOW_MIN_MS} from '../graph.js';
import {collapseGraph, groupList, hasGroups} from '../groups.js';
import {picker, resolve, apiParams} from '../timerange.js';
import {LatencyPanel, latencyCell} from '../latency.js';
import {setMap, clearMap} from '../hooks.js';
import {subscribe as subscribeAlerts} from '../alertfeed.js';

export const REFRESH_MS = 1500;
export const LEVELS = ['service', 'instance', 'zone', 'region', 'namespace'];
// The baseline (the flow graph of the hour before the range) is fetched
// again after BASELINE_MS at most.
export const BASELINE_MS = 60e3;
export const LABEL_PARTS = ['rate', 'errors', 'p99'];

// Positions survive remounts (navigating away and back), per level.
const positionStores = new Map();
function positions(level) {
  if (!positionStores.has(level)) positionStores.set(level, new Map());
  return positionStores.get(level);
}

// The collapsed boxes (groups.js IDs), per level, survive remounts too.
const collapsedStores = new Map();
function collapsedSet(level) {
  if (!collapsedStores.has(level)) collapsedStores.set(level, new Set());
  return collapsedStores.get(level);
}

// legend explains the marks; its slow rule and counts are filled in by
// setLegend.
export function legend() {
  const item = (cls, label, testid) => h('span', {class: 'lg-item', testid: testid || null}, h('span', {class: 'lg ' + cls}), label);
  return h('div', {class: 'map-legend', testid: 'map-legend'},
    h('span', {class: 'lg-head'}, 'colour = errors:'), item('lg-ok', 'ok'), item('lg-warn', '≥ 1 %'), item('lg-err', '≥ 5 %'),
    h('span', {class: 'lg-item', testid: 'legend-slow'}, h('span', {class: 'lg lg-slowmark'}), h('span', {class: 'lg lg-slowring'}), 'slow: ',
      h('span', {testid: 'legend-slow-rule'}, `p99 ≥ ${SLOW_RATIO}× the hour before`)),
    h('span', {class: 'lg-counts dim', testid: 'legend-counts'}),
    item('lg-declared', 'declared only'), item('lg-observed', 'observed only'), item('lg-virtual', 'virtual node'), item('lg-synthetic', 'synthetic check'),
    item('lg-alert', 'alert firing'), item('lg-alert-pending', 'alert pending'),
    item('lg-violation', 'policy violation', 'legend-violation'), item('lg-lint', 'lint finding', 'legend-lint'),
    h('span', {class: 'dim'}, 'width ∝ rate · drag to move · wheel to zoom · double-click to focus'));
}

export default function mount(el, ctx) {
  let params = ctx.params;
  const P = (k, d = '') => params.get(k) ?? d;
  let level = LEVELS.includes(P('level')) ? P('level') : 'service';
  let graph = null; // what the map shows: the API's graph, collapsed boxes merged
  let rawGraph = null; // the API's graph
  let grouped = false; // whether the map draws boxes (group=0 turns them off)
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
  const search = h('input', {type: 'search', placeholder: 'find a node…', list: 'map-nodes', testid: 'map-search', value: P('filter') || P('focus'), autocomplete: 'off'});
  const up = h('input', {type: 'number', min: 0, max: 9, value: P('up', '1'), class: 'num-input', testid: 'hops-up', title: 'hops upstream (callers)'});
  const down = h('input', {type: 'number', min: 0, max: 9, value: P('down', '1'), class: 'num-input', testid: 'hops-down', title: 'hops downstream (callees)'});
  const minRate = h('input', {type: 'number', min: 0, step: 'any', value: P('minRate', ''), placeholder: '0', class: 'num-input', testid: 'min-rate', title: 'hide edges below this rate (calls/s)'});
  const threshold = h('input', {type: 'number', min: 0, step: 'any', value: P('p99', ''), placeholder: 'off', class: 'num-input', testid: 'p99-threshold', title: 'colour edges whose p99 exceeds this (ms)'});
  const particles = h('input', {type: 'checkbox', checked: P('particles') !== 'off', testid: 'particles'});
  // Health: the slow ratio against the hour before, edge labels, unhealthy only.
  const labelParts = () => P('labels').split(',').map(x => x.trim()).filter(x => LABEL_PARTS.includes(x));
  const ratioOpt = () => (P('slow') === '' ? SLOW_RATIO : Math.max(0, Number(P('slow')) || 0));
  const slowRatio = h('input', {type: 'number', min: 0, step: 0.1, value: P('slow', ''), placeholder: String(SLOW_RATIO), class: 'num-input', testid: 'slow-ratio',
    title: `mark a node or an edge slow when its p99 is this many times its p99 over the hour before the range (and ${SLOW_MIN_MS} ms more); 0: off. A p99 threshold, when set, is used instead`});
  const labelsBox = h('input', {type: 'checkbox', checked: labelParts().length > 0, testid: 'edge-labels'});
  const unhealthyBox = h('input', {type: 'checkbox', checked: P('unhealthy') === '1', testid: 'unhealthy-only'});
  slowRatio.addEventListener('input', debounce(() => ctx.setParams({slow: slowRatio.value}), 250));
  labelsBox.addEventListener('change', () => ctx.setParams({labels: labelsBox.checked ? LABEL_PARTS.join(',') : ''}));
  unhealthyBox.addEventListener('change', () => ctx.setParams({unhealthy: unhealthyBox.checked ? '1' : ''}));
  // Architecture lint on the map: lint=1 marks the nodes and calls of the
  // findings of GET /lint (read once per range and level, again at most
  // every LINT_MS while live).
  const lintBox = h('input', {type: 'checkbox', checked: P('lint') === '1', testid: 'lint-toggle'});
  lintBox.addEventListener('change', () => ctx.setParams({lint: lintBox.checked ? '1' : ''}));

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
  // Boxes per namespace and service: on whenever the graph has any, unless
  // group=0.
  const groupBox = h('input', {type: 'checkbox', checked: P('group') !== '0', testid: 'group-toggle'});
  groupBox.addEventListener('change', () => ctx.setParams({group: groupBox.checked ? '' : '0'}));
  const wantGroups = g => P('group') !== '0' && !!g && hasGroups(g);
  const doFilter = () => ctx.setParams({filter: search.value.trim()});

  const toolbar = h('div', {class: 'toolbar'},
    field('Level', levelSel),
    picker(params, ch => ctx.setParams(ch)),
    field('Compare with', compareSel),
    field('Search', h('span', {class: 'inline'}, search, datalist,
      h('button', {type: 'button', class: 'btn', testid: 'focus-btn', onclick: doFocus}, 'Focus'),
      h('button', {type: 'button', class: 'btn', testid: 'filter-btn', title: 'show only the matching nodes and their calls', onclick: doFilter}, 'Filter'),
      h('button', {type: 'button', class: 'btn btn-ghost', testid: 'unfocus-btn', onclick: () => {
        search.value = '';
        if (map) map.setMatches([]);
        ctx.setParams({focus: '', filter: ''});
      }}, 'All'))),
    field('Hops ↑/↓', h('span', {class: 'inline'}, up, down)),
    field('Min rate /s', minRate),
    field('p99 > ms', threshold),
    field('slow × hour before', slowRatio),
    h('span', {class: 'inline health-toggles'},
      h('label', {class: 'check small', title: 'rate, error % and p99 on each edge, where they fit'}, labelsBox, 'labels'),
      h('label', {class: 'check small', title: 'only what has errors, is slow or has a firing alert, and the nodes at the ends of such calls'}, unhealthyBox, 'unhealthy only'),
      h('label', {class: 'check small', title: 'mark the nodes and calls of the architecture lint\'s findings (chains, fan-out, cycles, single points, availability, timeouts, retries)'}, lintBox, 'lint')),
    h('label', {class: 'check small'}, particles, 'flow'),
    h('label', {class: 'check small', title: 'boxes per namespace and service (at the instance level); click a box\'s name to collapse it'}, groupBox, 'group'),
    h('span', {class: 'inline'},
      h('button', {type: 'button', class: 'btn btn-ghost', testid: 'fit-btn', onclick: () => map && map.resetView()}, 'Fit'),
      h('button', {type: 'button', class: 'btn btn-ghost', testid: 'relayout-btn', onclick: () => map && map.relayout()}, 'Re-layout')),
    status);

  const canvasWrap = h('div', {class: 'map-wrap'});
  const overlay = h('div', {class: 'map-overlay', hidden: true, testid: 'map-overlay'});
  const alertBox = h('div', {class: 'map-alerts', hidden: true, testid: 'map-alerts'});
  const sideAlerts = h('div', {class: 'side-alerts', testid: 'side-alerts'});
  const legendEl = legend();
  // The boxes, as a list for the keyboard: each button collapses or
  // expands its box.
  const groupsEl = h('details', {class: 'topo-groups', testid: 'group-list', hidden: true});
  canvasWrap.append(overlay, legendEl, groupsEl);
  const side = h('aside', {class: 'side', testid: 'map-side'});
  // The keyboard list of the overview: kept across refreshes (see renderKeylist).
  const keylist = h('section', {class: 'keylist', testid: 'map-keylist', 'aria-label': 'Nodes and calls'});
  el.append(toolbar, alertBox, h('div', {class: 'map-body'}, canvasWrap, side));

  function newMap() {
    if (map) {
      clearMap(map);
      map.destroy();
    }
    map = new FlowMap(canvasWrap, {
      positions: positions(level + (grouped ? '|group' : '')),
      group: grouped,
      filter: P('filter'),
      onToggleGroup: toggleGroup,
      thresholdMs: Number(P('p99')) || 0,
      minRate: Number(P('minRate')) || 0,
      particles: P('particles') !== 'off',
      slowRatio: ratioOpt(),
      labels: labelParts(),
      unhealthyOnly: P('unhealthy') === '1',
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
    if (baseline.g && baseline.key === baselineKey(resolve(params))) map.setBaseline(baseline.g);
    applyAlerts();
    applyLint();
  }

  // The baseline: the flow graph of the hour before the range, fetched
  // again when the level, operation or range changes, else at most once
  // every BASELINE_MS.
  const baseline = {key: '', at: 0, inflight: false, g: null, requests: 0};
  const lintState = {key: '', at: 0, inflight: false, findings: null};
  const LINT_MS = 30e3;

  // refreshLint reads the lint findings when lint=1 and marks them.
  async function refreshLint(tr) {
    if (P('lint') !== '1') {
      if (lintState.findings) {
        Object.assign(lintState, {key: '', findings: null});
        if (map) map.setLint(null);
      }
      return;
    }
    const key = level + '|' + (tr.live ? tr.range : tr.start + '-' + tr.end);
    if (lintState.inflight || destroyed || (key === lintState.key && Date.now() - lintState.at < LINT_MS)) return;
    lintState.inflight = true;
    try {
      const l = await api.get('/lint', Object.assign({level}, apiParams(tr)));
      if (destroyed) return;
      Object.assign(lintState, {key, at: Date.now(), findings: l.findings || []});
    } catch (e) {
      Object.assign(lintState, {key, at: Date.now(), findings: []});
    } finally {
      lintState.inflight = false;
    }
    applyLint();
    renderSide(false);
  }

  function applyLint() {
    if (!map) return;
    if (!lintState.findings) return map.setLint(null);
    const nodes = new Map(), edges = new Map();
    const add = (m, k, rule) => m.set(k, [...new Set([...(m.get(k) || []), rule])]);
    for (const f of lintState.findings) {
      // A cycle's nodes all get the badge; otherwise the node the finding
      // is about (the first: the caller, the single point, the entry).
      for (const id of f.rule === 'cycle' ? f.nodes || [] : (f.nodes || []).slice(0, 1)) add(nodes, id, f.rule);
      for (const e of f.edges || []) add(edges, edgeKey(e.source, e.target), f.rule);
    }
    map.setLint({nodes, edges});
  }

  function baselineKey(tr) {
    return [level, P('operation'), tr.live ? tr.range : `${tr.start}-${tr.end}`].join('\u0000');
  }
  async function refreshBaseline(tr) {
    if (ratioOpt() <= 0 || baseline.inflight || destroyed) return;
    const key = baselineKey(tr);
    if (key === baseline.key && Date.now() - baseline.at < BASELINE_MS) return;
    baseline.inflight = true;
    baseline.requests++;
    try {
      const q = {level, start: Math.floor(tr.start - 3600e3), end: Math.floor(tr.start)};
      if (P('operation')) q.operation = P('operation');
      const g = await api.get('/flowgraph', q);
      if (destroyed) return;
      Object.assign(baseline, {key, at: Date.now(), g});
      if (map) map.setBaseline(g);
    } catch (e) {
      // Without a baseline only a threshold marks slowness; try again later.
      Object.assign(baseline, {key, at: Date.now(), g: null});
      if (map) map.setBaseline(null);
    } finally {
      baseline.inflight = false;
    }
    el.dataset.baseline = baseline.g ? 'ready' : 'none';
    setLegend();
    renderKeylist();
  }

  // setLegend fills in the legend's slow rule and the counts of what is
  // marked on the map.
  function setLegend() {
    const th = Number(P('p99')) || 0, r = ratioOpt();
    const rule = th > 0 ? `p99 > ${th} ms` : r > 0 ? `p99 ≥ ${r}× the hour before${baseline.g ? '' : ' (no baseline yet)'}` : 'off (set a threshold or a ratio)';
    const ruleEl = legendEl.querySelector('[data-testid=legend-slow-rule]');
    if (ruleEl.textContent !== rule) ruleEl.textContent = rule;
    let slow = 0, failing = 0;
    if (map) {
      for (const x of [...map.nodeList, ...map.edges]) {
        if (!x.visible || !x.health) continue;
        if (x.health.slow) slow++;
        if (x.health.errorLevel > 0) failing++;
      }
    }
    const counts = map ? `${slow} slow · ${failing} with errors` : '';
    const cEl = legendEl.querySelector('[data-testid=legend-counts]');
    if (cEl.textContent !== counts) cEl.textContent = counts;
    cEl.dataset.slow = slow;
    cEl.dataset.failing = failing;
    legendEl.querySelector('[data-testid=legend-lint]').hidden = P('lint') !== '1';
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
    map.setOptions({thresholdMs: Number(P('p99')) || 0, minRate: Number(P('minRate')) || 0, particles: P('particles') !== 'off',
      slowRatio: ratioOpt(), labels: labelParts(), unhealthyOnly: P('unhealthy') === '1', filter: P('filter')});
    groupBox.checked = P('group') !== '0';
    labelsBox.checked = labelParts().length > 0;
    unhealthyBox.checked = P('unhealthy') === '1';
    lintBox.checked = P('lint') === '1';
    refreshLint(resolve(params));
    if (document.activeElement !== slowRatio) slowRatio.value = P('slow');
    if (document.activeElement !== threshold) threshold.value = P('p99');
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

  // toggleGroup collapses or expands a box (a click on its name on the
  // map, or its button in the list).
  function toggleGroup(id) {
    const set = collapsedSet(level);
    if (set.has(id)) set.delete(id);
    else set.add(id);
    if (!rawGraph || !map) return;
    graph = grouped ? collapseGraph(rawGraph, set) : rawGraph;
    map.setData(graph);
    applyOptions();
    renderGroups();
    updateDatalist();
    renderSide(true);
  }

  let groupsSig = '';
  function renderGroups() {
    const list = grouped && rawGraph ? groupList(rawGraph.nodes) : [];
    const set = collapsedSet(level);
    const sig = JSON.stringify(list.map(g => [g.id, g.members, set.has(g.id)]));
    if (sig === groupsSig) return;
    groupsSig = sig;
    groupsEl.hidden = !list.length;
    const active = document.activeElement;
    const focusId = active && groupsEl.contains(active) ? active.dataset.group : '';
    replace(groupsEl, h('summary', {testid: 'group-list-summary'}, `Boxes (${list.length})`, set.size ? ` · ${[...set].filter(id => list.some(g => g.id === id)).length} collapsed` : ''),
      h('ul', {class: 'topo-group-list'}, list.map(g => h('li', {class: 'topo-group topo-group-' + g.kind},
        h('button', {type: 'button', class: 'topo-group-btn', testid: 'group-item', title: `${g.kind} ${g.full}: ${set.has(g.id) ? 'expand' : 'collapse'}`,
          'aria-expanded': String(!set.has(g.id)), dataset: {group: g.id, kind: g.kind}, onclick: () => toggleGroup(g.id)},
        h('span', {class: 'topo-caret', 'aria-hidden': 'true'}, set.has(g.id) ? '▸' : '▾'), ' ', h('span', {class: 'topo-group-name'}, g.name), ' ', h('span', {class: 'dim'}, String(g.members)))))));
    if (focusId) {
      const b = [...groupsEl.querySelectorAll('button[data-group]')].find(x => x.dataset.group === focusId);
      if (b) b.focus();
    }
  }

  async function refresh() {
    if (inflight || destroyed) return;
    inflight = true;
    const tr = resolve(params);
    const t0 = performance.now();
    try {
      const q = Object.assign({level}, apiParams(tr));
      if (P('compare')) q.compare = P('compare');
      if (P('operation')) q.operation = P('operation');
      const g = await api.get('/flowgraph', q);
      if (destroyed) return;
      rawGraph = g;
      lastOk = Date.now();
      lastFetch = performance.now() - t0;
      const gr = wantGroups(g);
      if (gr !== grouped) {
        grouped = gr;
        if (map.stats.updates) newMap();
        else Object.assign(map.opts, {group: gr, positions: positions(level + (gr ? '|group' : ''))});
      }
      graph = grouped ? collapseGraph(g, collapsedSet(level)) : g;
      map.setData(graph);
      renderGroups();
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
      setLegend();
      refreshBaseline(tr);
      refreshLint(tr);
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
      renderKeylist();
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
        healthNote(map && map.nodes.get(nodeId)),
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
        healthNote(map && map.edgeByKey.get(edgeKey(src, tgt))),
        (e.violations || []).length ? h('p', {class: 'violation-note small', testid: 'side-violations'}, 'Violates the flow ', e.violations.length > 1 ? 'policies ' : 'policy ',
          e.violations.flatMap((name, i) => [i ? ', ' : '', h('a', {href: link('architecture', '', {range: tr.range === 'custom' ? '' : tr.range}), class: 'strong'}, name)])) : null,
        edgeTraceLinks(src, tgt, tr),
        fmt.num(e.calls) > 0 && fmt.latencyState(e.latency || {}, e.calls) !== 'unknown' ? null : lat(e, e.calls),
        latBox);
      if (fmt.num(e.calls) > 0) latency = new LatencyPanel(latBox, Object.assign({query: {source: src, target: tgt, level}, range: tr}, sideLatency));
      return;
    }
    replace(side, h('h2', {class: 'side-title', tabindex: -1}, 'Overview'), h('div', {testid: 'map-summary', class: 'summary'}), keylist);
    updateSummary();
    renderKeylist(true);
  }

  // healthNote says why a node or an edge is marked slow (or failing by
  // an alert), with the p99 of the hour before.
  function healthNote(x) {
    const hh = x && x.health;
    if (!hh) return null;
    const parts = [];
    if (hh.slow) {
      parts.push(h('span', {class: 'hm hm-slow'}, 'slow'), ' ',
        hh.slowReason === 'threshold' ? `p99 ${fmt.dur(hh.p99)} > ${fmt.dur((Number(P('p99')) || 0) * 1e6)}`
          : hh.slowReason === 'baseline' ? `p99 ${fmt.dur(hh.p99)} is ${(hh.p99 / hh.baseline).toFixed(1)}× the hour before's (${fmt.dur(hh.baseline)})`
            : 'a latency alert is firing');
    } else if (hh.baseline != null) {
      parts.push(`p99 of the hour before: ${fmt.dur(hh.baseline)}`);
    }
    if (hh.alert.error) parts.push(parts.length ? ' · ' : '', h('span', {class: 'hm hm-err'}, 'errors'), ' an error alert is firing');
    return parts.length ? h('p', {class: 'health-note small', testid: 'side-health', dataset: {slow: hh.slow, reason: hh.slowReason || null}}, parts) : null;
  }

  // edgeTraceLinks: the traces of an edge's calls, and the failing ones,
  // by the node IDs of its services (at the instance level each instance's
  // service, when known), in the map's range and operation.
  function edgeTraceLinks(src, tgt, tr) {
    let ids = null;
    // The API's nodes, not a collapsed box standing for several.
    const api = rawGraph || graph;
    const real = id => api.nodes.some(x => x.id === id);
    if (level === 'service') ids = real(src) && real(tgt) ? [src, tgt] : null;
    else if (level === 'instance') {
      const svc = id => {
        const n = api.nodes.find(x => x.id === id);
        return !n ? '' : n.service || (n.virtual ? n.id : '');
      };
      const a = svc(src), b = svc(tgt);
      if (a && b) ids = [a, b];
    }
    if (!ids) {
      return h('p', {class: 'dim small', testid: 'side-edge-traces-none'}, level === 'service' || level === 'instance' ? 'No trace search here: an end of this call is not one service.' : `No trace search at the ${level} level: open the map by service or instance.`);
    }
    const q = Object.assign({source: ids[0], target: ids[1], operation: P('operation')},
      tr.range === 'custom' ? {range: 'custom', from: Math.floor(tr.start), to: Math.ceil(tr.end)} : {range: tr.range});
    return h('div', {class: 'inline wrap side-links'},
      h('a', {class: 'btn', href: link('traces', '', q), testid: 'side-edge-traces', title: 'traces with a call ' + ids[0] + ' → ' + ids[1]}, 'Traces'),
      h('a', {class: 'btn', href: link('traces', '', Object.assign({}, q, {status: 'error'})), testid: 'side-edge-failing', title: 'traces with such a call and a span of status ERROR'}, 'Failing traces'));
  }

  // renderKeylist lists the visible nodes, each with its calls, as
  // buttons: Tab reaches them, Enter or Space selects (as a click on the
  // canvas would), Escape comes back here. Rebuilt only when what it
  // lists changes, keeping the focused item focused.
  let keylistSig = '';
  let returnKey = '';
  function renderKeylist(force) {
    if (!map || !graph || !keylist.isConnected && !force) return;
    const nodes = map.nodeList.filter(n => n.visible);
    const outs = new Map();
    for (const e of map.edges) {
      if (!e.visible) continue;
      if (!outs.has(e.s.id)) outs.set(e.s.id, []);
      outs.get(e.s.id).push(e);
    }
    const flags = x => (x.health ? `${x.health.errorLevel}${x.health.slow ? 's' : ''}${x.health.firing ? 'a' : ''}` : '');
    const sig = level + '\u0001' + nodes.map(n => n.id + '\u0000' + flags(n) + '\u0000' + (outs.get(n.id) || []).map(e => e.t.id + '\u0000' + flags(e)).join('\u0000')).join('\u0001');
    if (sig === keylistSig && keylist.firstChild) return;
    keylistSig = sig;
    const active = document.activeElement;
    const focusKey = active && keylist.contains(active) ? active.dataset.key : '';
    const marks = x => {
      const hh = x.health;
      if (!hh) return null;
      return [hh.errorLevel ? h('span', {class: 'hm ' + (hh.errorLevel === 2 ? 'hm-err' : 'hm-warn')}, fmt.pct(hh.errorRate) + ' err') : null,
        hh.slow ? h('span', {class: 'hm hm-slow'}, 'slow') : null,
        hh.firing ? h('span', {class: 'hm hm-alert'}, 'alert') : null];
    };
    const MAX = 500;
    replace(keylist,
      h('h3', {tabindex: -1, testid: 'keylist-head'}, `Nodes and calls (${nodes.length})`),
      h('p', {class: 'dim small'}, 'Tab to a node or a call, Enter to select it, Escape to come back.'),
      h('ul', {class: 'keylist-nodes'}, nodes.slice(0, MAX).map(n => h('li', null,
        h('button', {type: 'button', class: 'keylist-btn', testid: 'keylist-node', dataset: {key: 'n:' + n.id, node: n.id},
          onclick: () => choose({type: 'node', id: n.id})}, h('span', {class: 'keylist-name'}, n.id), marks(n)),
        (outs.get(n.id) || []).length ? h('ul', {class: 'keylist-edges'}, outs.get(n.id).map(e => h('li', null,
          h('button', {type: 'button', class: 'keylist-btn keylist-edge', testid: 'keylist-edge', dataset: {key: 'e:' + e.key, source: e.s.id, target: e.t.id},
            'aria-label': `call ${e.s.id} to ${e.t.id}`, onclick: () => choose({type: 'edge', source: e.s.id, target: e.t.id})},
          h('span', {class: 'dim'}, '→ '), h('span', {class: 'keylist-name'}, e.t.id), marks(e))))) : null))),
      nodes.length > MAX ? h('p', {class: 'dim small'}, `and ${nodes.length - MAX} more: search or focus to narrow the map`) : null);
    if (focusKey) focusItem(focusKey);
  }

  function focusItem(key) {
    const b = [...keylist.querySelectorAll('button[data-key]')].find(x => x.dataset.key === key);
    if (b) b.focus();
    else if (keylist.isConnected) keylist.querySelector('[data-testid=keylist-head]')?.focus();
  }

  // choose selects a node or an edge from the keyboard list: the side
  // panel shows it, the map highlights and centres it; focus moves to
  // the panel's title.
  function choose(hit) {
    returnKey = hit.type === 'node' ? 'n:' + hit.id : 'e:' + edgeKey(hit.source, hit.target);
    if (hit.type === 'node') ctx.setParams({node: hit.id, source: '', target: ''});
    else ctx.setParams({node: '', source: hit.source, target: hit.target});
    if (map) {
      if (hit.type === 'node') map.centerOn(hit.id);
      else map.centerOnEdge(hit.source, hit.target);
    }
    const title = side.querySelector('[data-testid=side-title]');
    if (title) {
      title.setAttribute('tabindex', '-1');
      title.focus();
    }
  }

  // Escape (outside a form control) leaves a selection for the overview,
  // focusing the list's item of what was selected.
  function onKey(ev) {
    if (ev.key !== 'Escape' || ev.defaultPrevented) return;
    const t = ev.target;
    if (t && (t.closest('input, select, textarea, dialog') || t.isContentEditable)) return;
    if (!P('node') && !P('source')) return;
    const key = P('node') ? 'n:' + P('node') : 'e:' + edgeKey(P('source'), P('target'));
    ev.preventDefault();
    ctx.setParams({node: '', source: '', target: ''});
    focusItem(returnKey || key);
    returnKey = '';
  }
  document.addEventListener('keydown', onKey);

  // architectureSummary lists the calls violating flow policies and, with
  // lint=1, the lint findings, linked to the map's nodes and calls, the
  // Architecture view and exemplar traces.
  function architectureSummary(edgeLink) {
    const out = [];
    const tr = resolve(params);
    const archHref = link('architecture', '', tr.range === 'custom' ? {range: 'custom', from: Math.floor(tr.start), to: Math.ceil(tr.end)} : {range: tr.range});
    const viol = graph.edges.filter(e => (e.violations || []).length);
    if (viol.length) {
      out.push(h('h3', null, `Policy violations (${viol.length}) `, h('a', {href: archHref, class: 'small'}, 'details')),
        table(['call', 'policies'], viol.slice(0, 20).map(e => h('tr', {testid: 'summary-violation'}, h('td', null, edgeLink(e)), h('td', null, e.violations.join(', '))))));
    }
    const fs = lintState.findings;
    if (fs && fs.length) {
      const nodeLink = id => h('a', {href: link('map', '', Object.assign(Object.fromEntries(params), {node: id, source: '', target: ''})), class: 'mono'}, id);
      out.push(h('h3', null, `Lint findings (${fs.length}) `, h('a', {href: link('architecture', '', {level: level === 'service' ? '' : level}), class: 'small'}, 'details')),
        h('ul', {class: 'plain small', testid: 'summary-lint'}, fs.slice(0, 20).map(f => h('li', {testid: 'summary-finding', dataset: {rule: f.rule}},
          h('span', {class: 'badge sev sev-' + f.severity}, f.rule.replace('_', ' ')), ' ',
          (f.nodes || []).length ? nodeLink(f.nodes[0]) : null, ' ', h('span', {class: 'dim'}, f.message),
          f.exemplarTraceId ? [' ', h('a', {href: link('trace', f.exemplarTraceId), class: 'mono', testid: 'summary-finding-exemplar'}, 'trace')] : null))));
    }
    return out;
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
      ...architectureSummary(edgeLink),
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
      const rangeChanged = ['range', 'from', 'to', 'compare', 'operation'].some(k => (prev.get(k) || '') !== (params.get(k) || ''));
      if (newLevel !== level) {
        level = newLevel;
        levelSel.value = level;
        graph = null;
        rawGraph = null;
        grouped = false;
        sideKey = '#';
        newMap();
        refresh();
      } else if (rangeChanged) {
        refresh();
      } else if (rawGraph && wantGroups(rawGraph) !== grouped) {
        // group=0 or back: a map of its own (positions are kept apart).
        grouped = !grouped;
        newMap();
        graph = grouped ? collapseGraph(rawGraph, collapsedSet(level)) : rawGraph;
        map.setData(graph);
        renderGroups();
      }
      if (rangeChanged) schedule();
      compareSel.value = P('compare');
      applyOptions();
      renderSide(rangeChanged);
      applyAlerts();
    },
    destroy() {
      destroyed = true;
      document.removeEventListener('keydown', onKey);
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
