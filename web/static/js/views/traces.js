// Trace search: by service, or by a call of the service map (edge: source
// → target node IDs), operation, duration bounds, attributes (attr.KEY=VALUE),
// status (error|ok) and time range → GET /api/v1/traces. The results: a
// scatter plot of duration over time (scatter.js) above a compact table,
// sortable by start, duration, span count and errors (sort=&dir= in the
// route); links open the trace at the span that matched.
import {h, replace, link, field, select, fillSelect, message} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import {picker, resolve, apiParams, RANGES} from '../timerange.js';
import {serviceColor} from '../tracemodel.js';
import {scatter} from '../scatter.js';

// The sortable columns: their key in the route, the value sorted on, and
// how the header reads each direction.
const SORTS = {
  start: {label: 'start', value: t => t.startMs, desc: 'newest first', asc: 'oldest first'},
  duration: {label: 'duration', value: t => t.dur, desc: 'longest first', asc: 'shortest first'},
  spans: {label: 'spans', value: t => t.spans, desc: 'most spans first', asc: 'fewest spans first'},
  errors: {label: 'errors', value: t => t.errors, desc: 'most errors first', asc: 'fewest errors first'},
};

// The route's parameters that go to the API as they are.
const API_KEYS = ['service', 'source', 'target', 'operation', 'minDuration', 'maxDuration', 'status', 'limit'];

const HEX16 = /^[0-9a-f]{16}$/i;

// sortOf reads sort and dir from the route: start, newest first by default.
export function sortOf(params) {
  const key = SORTS[params.get('sort')] ? params.get('sort') : 'start';
  const dir = params.get('dir') === 'asc' ? 'asc' : 'desc';
  return {key, dir};
}

// sortTraces orders the results by key and dir; ties newest first, then by
// trace ID, whatever the direction.
export function sortTraces(list, {key, dir}) {
  const v = SORTS[key].value, sign = dir === 'asc' ? 1 : -1;
  return list.slice().sort((a, b) => sign * (v(a) - v(b)) || b.startMs - a.startMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

// normalize turns an API summary into the numbers the view draws.
function normalize(t) {
  const root = (t.rootServiceName || '?') + ': ' + (t.rootOperation || '');
  const span = HEX16.test(t.matchedSpanId || '') ? t.matchedSpanId.toLowerCase() : '';
  return {
    id: t.traceId,
    raw: t,
    root,
    startMs: fmt.nsToMs(t.startTimeUnixNano),
    dur: fmt.num(t.durationNanos),
    spans: fmt.num(t.spanCount),
    errors: fmt.num(t.errorCount),
    services: t.services || [],
    span,
    href: link('trace', t.traceId, span ? {span} : null),
  };
}

// describe says what a route searches, in words: "calls frontend →
// checkout, operation GET /cart, status error".
export function describe(params) {
  const P = k => params.get(k) || '';
  const parts = [];
  if (P('source') || P('target')) parts.push(`calls ${P('source') || '?'} → ${P('target') || '?'}`);
  else parts.push(P('service') ? `service ${P('service')}` : 'all services');
  if (P('operation')) parts.push(`operation ${P('operation')}`);
  if (P('minDuration') && P('maxDuration')) parts.push(`duration ${P('minDuration')} – ${P('maxDuration')}`);
  else if (P('minDuration')) parts.push(`duration ≥ ${P('minDuration')}`);
  else if (P('maxDuration')) parts.push(`duration ≤ ${P('maxDuration')}`);
  for (const [k, v] of params) if (k.startsWith('attr.')) parts.push(`${k.slice(5)} = ${v}`);
  if (P('status')) parts.push(`status ${P('status')}`);
  const tr = resolve(params);
  const def = RANGES.find(x => x.value === tr.range);
  if (tr.range === 'custom') parts.push(`${fmt.time(tr.start)} → ${fmt.time(tr.end)}`);
  else if (def) parts.push(def.label.toLowerCase());
  return parts.join(', ');
}

// apiKey is the part of a route that decides the API's answer (the time
// range aside): when only the sort changes, the results are sorted again
// without a new search.
function apiKey(params) {
  const q = new URLSearchParams();
  for (const [k, v] of params) if (API_KEYS.includes(k) || k.startsWith('attr.') || ['range', 'from', 'to'].includes(k)) q.append(k, v);
  return q.toString();
}

export default function mount(el, ctx) {
  let params = ctx.params;
  const P = k => params.get(k) || '';
  const attrLines = () => [...params.entries()].filter(([k]) => k.startsWith('attr.')).map(([k, v]) => k.slice(5) + '=' + v).join('\n');

  // By service, or by a call (edge) of the service map.
  const modeSel = select([{value: 'service', label: 'service'}, {value: 'edge', label: 'call (edge)'}], P('source') || P('target') ? 'edge' : 'service', {testid: 'tr-mode', title: 'Search the spans of a service, or the calls from one service to another'});
  const serviceSel = select([{value: '', label: 'any service'}], P('service'), {testid: 'tr-service'});
  const sourceList = h('datalist', {id: 'tr-source-list'});
  const targetList = h('datalist', {id: 'tr-target-list'});
  const sourceIn = h('input', {type: 'text', value: P('source'), placeholder: 'caller, e.g. frontend', size: 12, list: 'tr-source-list', testid: 'tr-source', autocomplete: 'off'});
  const targetIn = h('input', {type: 'text', value: P('target'), placeholder: 'callee, e.g. checkout', size: 12, list: 'tr-target-list', testid: 'tr-target', autocomplete: 'off'});
  const opSel = select([{value: '', label: 'any operation'}], P('operation'), {testid: 'tr-operation'});
  const minD = h('input', {type: 'text', value: P('minDuration'), placeholder: '100ms', size: 8, testid: 'tr-min'});
  const maxD = h('input', {type: 'text', value: P('maxDuration'), placeholder: '2s', size: 8, testid: 'tr-max'});
  const attrsIn = h('textarea', {rows: 1, placeholder: 'key=value', title: 'Attributes: key=value, one per line', testid: 'tr-attrs', class: 'attrs-input'});
  attrsIn.value = attrLines();
  const statusSel = select([{value: '', label: 'any'}, {value: 'error', label: 'errors only'}, {value: 'ok', label: 'ok only'}], P('status'), {testid: 'tr-status'});
  const limit = h('input', {type: 'number', min: 1, max: 1000, value: P('limit') || '20', class: 'num-input', testid: 'tr-limit'});
  const err = h('span', {class: 'form-error', testid: 'tr-form-error'});

  const serviceField = field('Service', serviceSel);
  const sourceField = field('Source', sourceIn);
  const targetField = field('Target', targetIn);
  const opField = field('Operation', opSel);
  const isEdge = () => modeSel.value === 'edge';

  // ensureOption keeps a value the route names among a select's options.
  const ensureOption = (sel, v) => {
    if (v && ![...sel.options].some(o => o.value === v)) sel.appendChild(h('option', {value: v}, v));
    sel.value = v;
  };
  const fillOps = (ops, keep) => {
    fillSelect(opSel, [{value: '', label: 'any operation'}, ...[...new Set(ops.map(o => o.name))].map(n => ({value: n, label: n}))], keep);
    ensureOption(opSel, keep);
  };
  let opSeq = 0;
  const loadOps = async (svc, keep) => {
    const my = ++opSeq;
    const ops = svc ? await api.operations(svc).catch(() => []) : [];
    if (my === opSeq) fillOps(ops, keep);
  };

  // The flow graph's nodes and edges feed the source and target
  // suggestions, and map a node ID (namespace/name) to its service.name.
  let graph = null;
  const loadGraph = async () => {
    if (graph) return graph;
    try {
      const g = await api.get('/flowgraph', apiParams(resolve(params)));
      graph = {nodes: g.nodes || [], edges: g.edges || []};
    } catch {
      graph = {nodes: [], edges: []};
    }
    return graph;
  };
  const fillList = (list, names) => replace(list, [...new Set(names)].sort().map(n => h('option', {value: n})));
  const refreshSuggestions = async () => {
    const g = await loadGraph();
    fillList(sourceList, g.edges.map(e => e.source));
    const src = sourceIn.value.trim();
    fillList(targetList, g.edges.filter(e => !src || e.source === src).map(e => e.target));
  };
  // serviceOf is the service.name of a node ID, for its operations.
  const serviceOf = async id => {
    const g = await loadGraph();
    const n = g.nodes.find(x => x.id === id);
    if (n && n.virtual) return '';
    return n && n.namespace && id.startsWith(n.namespace + '/') ? id.slice(n.namespace.length + 1) : id;
  };
  const loadEdgeOps = async keep => {
    const svc = await serviceOf(sourceIn.value.trim());
    const my = ++opSeq;
    const ops = svc ? await api.operations(svc).catch(() => []) : [];
    // The calls' names: client and producer spans first.
    const rank = o => (/CLIENT|PRODUCER/.test(o.spanKind || '') ? 0 : 1);
    if (my === opSeq) fillOps(ops.slice().sort((a, b) => rank(a) - rank(b)), keep);
  };

  const showMode = () => {
    const edge = isEdge();
    serviceField.hidden = edge;
    sourceField.hidden = !edge;
    targetField.hidden = !edge;
    opField.querySelector('.field-label').textContent = edge ? 'Call operation' : 'Operation';
    if (edge) refreshSuggestions();
  };
  modeSel.addEventListener('change', () => {
    showMode();
    if (isEdge()) loadEdgeOps('');
    else loadOps(serviceSel.value, '');
  });
  serviceSel.addEventListener('change', () => loadOps(serviceSel.value, ''));
  sourceIn.addEventListener('change', () => {
    refreshSuggestions();
    loadEdgeOps('');
  });
  api.services({start: Date.now() - 24 * 3600e3}).then(names => {
    fillSelect(serviceSel, [{value: '', label: 'any service'}, ...names.map(n => ({value: n, label: n}))], P('service'));
    ensureOption(serviceSel, P('service'));
    if (!isEdge()) loadOps(P('service'), P('operation'));
  }).catch(() => {});
  if (isEdge()) loadEdgeOps(P('operation'));
  else ensureOption(opSel, P('operation'));

  const submit = ev => {
    ev.preventDefault();
    err.textContent = '';
    for (const [inp, name] of [[minD, 'min duration'], [maxD, 'max duration']]) {
      if (inp.value.trim() && Number.isNaN(fmt.parseDuration(inp.value))) {
        err.textContent = `${name}: use a duration such as 250us, 150ms, 1.5s`;
        return;
      }
    }
    const edge = isEdge();
    const source = sourceIn.value.trim(), target = targetIn.value.trim();
    if (edge && (!source || !target)) {
      err.textContent = 'a call needs both its source and its target';
      return;
    }
    const changes = {
      service: edge ? '' : serviceSel.value, source: edge ? source : '', target: edge ? target : '',
      operation: opSel.value, minDuration: minD.value.trim(), maxDuration: maxD.value.trim(), status: statusSel.value, limit: limit.value === '20' ? '' : limit.value,
    };
    for (const k of [...params.keys()]) if (k.startsWith('attr.')) changes[k] = '';
    for (const line of attrsIn.value.split(/\n|,(?=[^=,]+=)/)) {
      const t = line.trim();
      if (!t) continue;
      const i = t.indexOf('=');
      if (i <= 0) {
        err.textContent = `attribute "${t}": write key=value`;
        return;
      }
      changes['attr.' + t.slice(0, i).trim()] = t.slice(i + 1).trim();
    }
    const before = location.hash;
    ctx.setParams(changes, {push: true});
    if (location.hash === before) search();
  };
  const form = h('form', {class: 'toolbar search-form', testid: 'trace-form', onsubmit: submit},
    field('Search by', modeSel), serviceField, sourceField, targetField, sourceList, targetList, opField,
    field('Min duration', minD), field('Max duration', maxD), field('Attributes', attrsIn), field('Status', statusSel), field('Limit', limit),
    picker(params, ch => ctx.setParams(ch)),
    h('button', {type: 'submit', class: 'btn btn-primary', testid: 'tr-submit'}, 'Search'), err);
  showMode();
  const results = h('div', {class: 'card search-results', testid: 'trace-results'});
  el.append(h('h1', null, 'Traces'), form, results);

  let seq = 0;
  let last = null; // {key, list} of the shown answer
  async function search() {
    const my = ++seq;
    const q = {};
    for (const [k, v] of params) if (API_KEYS.includes(k) || k.startsWith('attr.')) q[k] = v;
    Object.assign(q, apiParams(resolve(params)));
    const key = apiKey(params);
    message(results, 'loading', 'Searching…');
    try {
      const r = await api.get('/traces', q);
      if (my !== seq) return;
      last = {key, list: (r.traces || []).map(normalize)};
      render();
    } catch (e) {
      if (my !== seq) return;
      last = null;
      replace(results, summaryLine(), h('div', {class: 'msg msg-error', testid: 'msg-error'}, 'Search: ' + e.message));
    }
  }

  const summaryLine = () => h('div', {class: 'search-summary', testid: 'search-summary'}, describe(params));

  let chart = null;
  // refocus: the header button to focus again once the table is redrawn
  // (a sort by keyboard keeps the focus on its column).
  let refocus = '';
  let rowsById = new Map();
  let hl = null;
  const highlight = id => {
    if (hl) hl.classList.remove('hl');
    hl = id ? rowsById.get(id) || null : null;
    if (hl) hl.classList.add('hl');
  };

  function render() {
    if (!last) return;
    const {key, dir} = sortOf(params);
    const list = sortTraces(last.list, {key, dir});
    const n = list.length;
    const lim = Number(P('limit') || 20);
    const count = n === 0 ? 'No traces match.' : `${n} trace${n === 1 ? '' : 's'}${n >= lim ? ` (the newest ${lim}: the limit)` : ''}, ${SORTS[key].label === 'start' ? '' : 'sorted by ' + SORTS[key].label + ', '}${SORTS[key][dir]}`;
    const head = h('div', {class: 'search-head'}, summaryLine(),
      h('div', {class: 'dim small', testid: 'trace-count', dataset: {count: n, sort: key, dir}}, count));
    if (!n) {
      chart = null;
      rowsById = new Map();
      return replace(results, head, h('div', {class: 'msg msg-empty', testid: 'msg-empty'}, 'No traces match.'));
    }
    const plotBox = h('div', {class: 'scatter-box'});
    const legendBox = h('div', {class: 'legend-box'});
    head.append(legendBox);
    replace(results, head, plotBox, table(list));
    drawChart(plotBox, list);
    if (refocus) {
      const b = results.querySelector(`[data-testid="${refocus}"]`);
      refocus = '';
      if (b) b.focus();
    }
  }

  function drawChart(box, list) {
    const width = box.clientWidth || results.clientWidth - 28;
    chart = scatter({items: list, width, height: 140, onHover: id => highlight(id)});
    replace(box, chart.el);
    const lb = results.querySelector('.legend-box');
    if (lb) replace(lb, chart.legend);
  }

  function header(k) {
    const {key, dir} = sortOf(params);
    const active = key === k;
    const next = active ? (dir === 'desc' ? 'asc' : 'desc') : 'desc';
    const arrow = active ? (dir === 'desc' ? '▼' : '▲') : '↕';
    const label = SORTS[k].label;
    return h('th', {class: 'sortable th-' + k, 'aria-sort': active ? (dir === 'desc' ? 'descending' : 'ascending') : 'none'},
      h('button', {type: 'button', class: 'sort-btn' + (active ? ' active' : ''), testid: 'sort-' + k, title: `Sort by ${label}: ${SORTS[k][next]}`,
        onclick: () => (refocus = 'sort-' + k, ctx.setParams({sort: k === 'start' && next === 'desc' ? '' : k, dir: k === 'start' && next === 'desc' ? '' : next}))},
      label, h('span', {class: 'sort-arrow', 'aria-hidden': 'true'}, arrow)));
  }

  function table(list) {
    const maxDur = Math.max(...list.map(t => t.dur));
    rowsById = new Map();
    hl = null;
    const rows = list.map(t => {
      const r = t.raw;
      const svcs = t.services;
      const chips = svcs.length <= 3 ? svcs : svcs.slice(0, 2);
      const tr = h('tr', {testid: 'trace-row', dataset: {traceId: t.id, matchedSpan: t.span || null}, class: 'clickable',
        onclick: ev => {
          if (ev.target.closest('a')) return;
          location.hash = t.href;
        },
        onmouseenter: () => chart && chart.highlight(t.id),
        onmouseleave: () => chart && chart.highlight(null)},
      h('td', {class: 'dim nowrap c-start'}, fmt.time(t.startMs)),
      h('td', {class: 'c-root'}, h('a', {href: t.href, testid: 'trace-link', title: `${t.root}\ntrace ${t.id}${t.span ? ', at span ' + t.span : ''}`},
        h('span', {class: 'svc', style: {'border-color': serviceColor(r.rootServiceName || '')}}, r.rootServiceName || '?'), ' ', h('span', {class: 'root-op'}, r.rootOperation || ''))),
      h('td', {class: 'durcell c-dur'}, h('span', {class: 'durbar', style: {width: `calc((100% - 76px) * ${maxDur ? (t.dur / maxDur).toFixed(4) : 0})`}}), h('span', {class: 'num'}, fmt.dur(t.dur))),
      h('td', {class: 'num c-spans'}, fmt.count(t.spans)),
      h('td', {class: 'num c-errors'}, t.errors > 0 ? h('span', {class: 'err-count', testid: 'err-count'}, fmt.count(t.errors)) : h('span', {class: 'dim'}, '0')),
      h('td', {class: 'c-svcs', title: svcs.join(', ')}, chips.map(x => h('span', {class: 'svc', style: {'border-color': serviceColor(x)}}, x)),
        svcs.length > chips.length ? h('span', {class: 'more-svcs', testid: 'more-services'}, `+${svcs.length - chips.length} more`) : null));
      rowsById.set(t.id, tr);
      return tr;
    });
    return h('table', {class: 'tbl search-tbl', testid: 'trace-table'},
      h('colgroup', null, h('col', {class: 'w-start'}), h('col', {class: 'w-root'}), h('col', {class: 'w-dur'}), h('col', {class: 'w-spans'}), h('col', {class: 'w-errors'}), h('col', {class: 'w-svcs'})),
      h('thead', null, h('tr', null, header('start'), h('th', null, 'root'), header('duration'), header('spans'), header('errors'), h('th', null, 'services'))),
      h('tbody', null, rows));
  }

  // The plot follows the width of the page.
  let resizeTimer = 0;
  const onResize = () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      const box = results.querySelector('.scatter-box');
      if (box && last && last.list.length) drawChart(box, sortTraces(last.list, sortOf(params)));
    }, 150);
  };
  window.addEventListener('resize', onResize);

  // syncForm shows the route's search in the form (back and forward, links
  // into an open view).
  const syncForm = () => {
    const edge = !!(P('source') || P('target'));
    modeSel.value = edge ? 'edge' : 'service';
    ensureOption(serviceSel, P('service'));
    sourceIn.value = P('source');
    targetIn.value = P('target');
    minD.value = P('minDuration');
    maxD.value = P('maxDuration');
    attrsIn.value = attrLines();
    statusSel.value = P('status');
    limit.value = P('limit') || '20';
    showMode();
    if (opSel.value !== P('operation')) {
      if (edge) loadEdgeOps(P('operation'));
      else loadOps(P('service'), P('operation'));
    }
  };

  search();
  return {
    update(c) {
      const prev = params;
      params = c.params;
      if (apiKey(prev) !== apiKey(params)) syncForm();
      // Only the sort changed: sort the answer again.
      if (last && apiKey(prev) === apiKey(params) && last.key === apiKey(params) && (prev.get('sort') !== params.get('sort') || prev.get('dir') !== params.get('dir'))) {
        render();
        return;
      }
      search();
    },
    destroy() {
      window.removeEventListener('resize', onResize);
      clearTimeout(resizeTimer);
    },
  };
}
