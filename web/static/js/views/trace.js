// One trace (GET /api/v1/traces/{id}): summary, the trace's own service
// map, the waterfall with self time and the critical path, and the
// selected span's details (attributes, events, links, resource).
import {h, replace, link, message, table} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import {FlowMap} from '../graph.js';
import * as model from '../tracemodel.js';

const MAX_ROWS = 5000;

export default function mount(el, ctx) {
  const id = ctx.arg;
  let params = ctx.params;
  let t = null;
  let map = null;
  const collapsed = new Set();
  let critical = params.get('critical') !== 'off';

  const form = h('form', {class: 'toolbar', onsubmit: ev => {
    ev.preventDefault();
    const v = input.value.trim().toLowerCase();
    if (v) location.hash = link('trace', v);
  }});
  const input = h('input', {type: 'text', value: id, size: 36, placeholder: 'trace ID (32 or 16 hex digits)', testid: 'trace-id-input', class: 'mono'});
  form.append(h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'Trace ID'), input), h('button', {class: 'btn btn-primary', type: 'submit'}, 'Open'));
  const body = h('div');
  el.append(form, body);
  if (!id) {
    message(body, 'empty', 'Enter a trace ID, or find traces with the search.');
    return {};
  }
  message(body, 'loading', 'Loading trace…');

  api.get('/traces/' + api.enc(id)).then(doc => {
    t = model.parse(doc);
    el.dataset.state = 'ready';
    render();
  }).catch(e => {
    el.dataset.state = 'error';
    message(body, 'error', e.status === 404 ? `Trace ${id} not found.` : 'Trace: ' + e.message);
  });

  const details = h('section', {class: 'card span-details', testid: 'span-details'});
  const wf = h('div', {class: 'waterfall', testid: 'waterfall'});

  function render() {
    if (map) map.destroy();
    const root = t.roots.reduce((a, b) => (b.dur > a.dur ? b : a), t.roots[0]);
    const corr = new Set();
    for (const s of t.spans) for (const [k, v] of s.attributes) if (/^(correlation[._]id|x-correlation-id|request\.id|x-request-id)$/.test(k)) corr.add(v);
    const mapBox = h('div', {class: 'trace-map', testid: 'trace-map'});
    const critBox = h('input', {type: 'checkbox', checked: critical, testid: 'critical-toggle', onchange: ev => {
      critical = ev.target.checked;
      drawWaterfall();
    }});
    replace(body,
      h('div', {class: 'trace-head'},
        h('h1', {testid: 'trace-title'}, root ? `${root.service}: ${root.name}` : 'Trace'),
        h('div', {class: 'mono dim', testid: 'trace-id'}, id),
        h('div', {class: 'stats summary-stats'},
          stat('duration', fmt.dur(t.total)), stat('spans', t.spans.length), stat('services', t.services.length),
          stat('errors', t.errors), stat('start', fmt.time(t.startMs))),
        corr.size ? h('div', {class: 'small'}, 'correlation: ', [...corr].map(c => h('a', {href: link('correlation', c), class: 'tag', testid: 'trace-correlation'}, c))) : null),
      h('details', {class: 'card', open: t.services.length > 1}, h('summary', null, `Service map of this trace (${t.services.length} services)`), mapBox),
      h('div', {class: 'wf-tools'}, h('label', {class: 'check small'}, critBox, 'highlight the critical path'),
        h('span', {class: 'small dim'}, 'self = time not covered by child spans · click a span for details')),
      wf, details);
    map = new FlowMap(mapBox, {particles: false, testid: 'trace-flowmap', padBottom: 24});
    map.setData(model.graph(t));
    drawWaterfall();
    const sel = params.get('span');
    showDetails(sel ? t.byId.get(sel) : root);
  }

  function drawWaterfall() {
    const total = t.total || 1;
    const rows = [];
    const hiddenUnder = [];
    for (const s of t.spans) {
      if (rows.length >= MAX_ROWS) break;
      while (hiddenUnder.length && s.depth <= hiddenUnder[hiddenUnder.length - 1]) hiddenUnder.pop();
      if (hiddenUnder.length) continue;
      if (collapsed.has(s.id)) hiddenUnder.push(s.depth);
      const left = (s.start / total) * 100, width = Math.max(0.15, (s.dur / total) * 100);
      const onCrit = critical && t.critical.has(s.id);
      const toggle = s.children.length
        ? h('button', {type: 'button', class: 'wf-toggle', title: collapsed.has(s.id) ? 'expand' : 'collapse', onclick: ev => {
          ev.stopPropagation();
          if (collapsed.has(s.id)) collapsed.delete(s.id);
          else collapsed.add(s.id);
          drawWaterfall();
        }}, collapsed.has(s.id) ? '▸' : '▾')
        : h('span', {class: 'wf-toggle-pad'});
      const selfPct = s.dur ? (s.self / s.dur) * 100 : 100;
      rows.push(h('div', {class: 'wf-row' + (s.error ? ' wf-err' : '') + (onCrit ? ' wf-crit' : '') + (params.get('span') === s.id ? ' selected' : ''), testid: 'span-row', dataset: {spanId: s.id, critical: onCrit ? '1' : null}, onclick: () => {
        showDetails(s);
        ctx.setParams({span: s.id});
      }},
      h('div', {class: 'wf-label', style: {'padding-left': 4 + Math.min(s.depth, 30) * 14 + 'px'}},
        toggle,
        h('span', {class: 'svc', style: {'border-color': model.serviceColor(s.service)}}, s.service),
        h('span', {class: 'wf-name'}, s.name),
        s.error ? h('span', {class: 'tag tag-err'}, 'error') : null),
      h('div', {class: 'wf-track'},
        h('div', {class: 'wf-bar', style: {left: left + '%', width: width + '%', background: model.serviceColor(s.service)}, title: `${s.service}: ${s.name} — ${fmt.dur(s.dur)} (self ${fmt.dur(s.self)})`},
          h('div', {class: 'wf-self', style: {width: selfPct + '%'}})),
        h('span', {class: 'wf-dur' + (left + width >= 82 && left <= 15 ? ' wf-dur-in' : ''), style: left + width < 82 ? {left: left + width + 0.5 + '%'} : left > 15 ? {right: 100 - left + 0.5 + '%'} : {right: 100 - left - width + 0.5 + '%'}}, fmt.dur(s.dur))),
      h('div', {class: 'wf-selfcol num small'}, fmt.dur(s.self))));
    }
    const ticks = [0, 0.25, 0.5, 0.75, 1].map(f => h('span', {class: 'wf-tick', style: {left: f * 100 + '%'}}, fmt.dur(f * total)));
    replace(wf,
      h('div', {class: 'wf-row wf-header'}, h('div', {class: 'wf-label'}, 'service · operation'), h('div', {class: 'wf-track wf-ruler'}, ticks), h('div', {class: 'wf-selfcol small'}, 'self')),
      rows,
      t.spans.length > MAX_ROWS ? h('div', {class: 'msg msg-empty'}, `Showing the first ${MAX_ROWS} of ${t.spans.length} spans.`) : null);
  }

  function showDetails(s) {
    if (!s) return replace(details, h('div', {class: 'msg msg-empty'}, 'Click a span.'));
    for (const r of wf.querySelectorAll('.wf-row.selected')) r.classList.remove('selected');
    const row = [...wf.querySelectorAll('[data-testid="span-row"]')].find(r => r.dataset.spanId === s.id);
    if (row) row.classList.add('selected');
    const kv = list => (list.length ? table(['key', 'value'], list.map(([k, v]) => h('tr', null, h('td', {class: 'attr-key'}, k), h('td', {class: 'attr-val'}, v)))) : h('div', {class: 'dim small'}, 'none'));
    const parent = s.parent && t.byId.get(s.parent);
    replace(details,
      h('h2', {testid: 'span-title'}, h('span', {class: 'svc', style: {'border-color': model.serviceColor(s.service)}}, s.service), ' ', s.name),
      h('dl', {class: 'kv'},
        dt('span ID', h('span', {class: 'mono'}, s.id)),
        dt('parent', s.parent ? (parent ? h('a', {href: '#', class: 'mono', onclick: ev => {
          ev.preventDefault();
          showDetails(parent);
        }}, s.parent) : h('span', {class: 'mono'}, s.parent + ' (not in this trace)')) : 'root'),
        dt('kind', s.kind),
        dt('status', s.error ? h('span', {class: 'err'}, 'ERROR' + (s.status.message ? ': ' + s.status.message : '')) : fmt.num(s.status.code) === 1 ? 'OK' : 'unset' + (s.status.message ? ': ' + s.status.message : '')),
        dt('start', `${fmt.time(s.startMs)} (+${fmt.dur(s.start)})`),
        dt('duration', fmt.dur(s.dur)),
        dt('self time', fmt.dur(s.self)),
        dt('critical path', t.critical.has(s.id) ? 'yes' : 'no'),
        s.scope ? dt('scope', s.scope) : null,
        s.traceState ? dt('trace state', s.traceState) : null),
      h('h3', null, 'Attributes'), h('div', {testid: 'span-attributes'}, kv(s.attributes)),
      h('h3', null, `Events (${s.events.length})`),
      s.events.length ? table(['at', 'name', 'attributes'], s.events.map(e => h('tr', {testid: 'span-event'}, h('td', {class: 'num nowrap'}, '+' + fmt.dur(e.offset)), h('td', null, e.name), h('td', {class: 'small'}, e.attributes.map(([k, v]) => h('div', null, h('span', {class: 'attr-key'}, k), ' = ', v)))))) : h('div', {class: 'dim small'}, 'none'),
      h('h3', null, `Links (${s.links.length})`),
      s.links.length ? table(['trace', 'span', 'attributes'], s.links.map(l => h('tr', {testid: 'span-link'}, h('td', null, h('a', {href: link('trace', l.traceId), class: 'mono'}, l.traceId)), h('td', {class: 'mono'}, l.spanId), h('td', {class: 'small'}, l.attributes.map(([k, v]) => h('div', null, k, ' = ', v)))))) : h('div', {class: 'dim small'}, 'none'),
      h('h3', null, 'Resource'), h('div', {testid: 'span-resource'}, kv(s.resource)));
  }

  return {
    update(c) {
      params = c.params;
    },
    destroy() {
      if (map) map.destroy();
    },
  };
}

function stat(label, value) {
  return h('div', {class: 'stat'}, h('span', {class: 'stat-label'}, label), h('span', {class: 'stat-value'}, String(value)));
}

function dt(k, v) {
  return [h('dt', null, k), h('dd', null, v)];
}
