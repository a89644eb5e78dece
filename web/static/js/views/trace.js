// One trace (GET /api/v1/traces/{id}) at #/trace/ID?span=&map=1&critical=off:
// a compact summary, the tools (service map, critical path, folding, time
// zoom), the waterfall with its minimap (tracewaterfall.js) and, beside
// it, the selected span's details (tracedetails.js). The trace's own
// service map is folded away unless map=1.
import {h, replace, link, message, select} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import {FlowMap} from '../graph.js';
import * as model from '../tracemodel.js';
import {Waterfall} from '../tracewaterfall.js';
import * as details from '../tracedetails.js';

const LEGEND_MAX = 16;

export default function mount(el, ctx) {
  const id = ctx.arg;
  let params = ctx.params;
  let t = null;
  let map = null;
  let wf = null;
  let colors = new Map();
  let shown = null;

  const input = h('input', {type: 'text', value: id, size: 36, placeholder: 'trace ID (32 or 16 hex digits)', testid: 'trace-id-input', class: 'mono', 'aria-label': 'Trace ID'});
  const form = h('form', {class: 'toolbar tv-idform', onsubmit: ev => {
    ev.preventDefault();
    const v = input.value.trim().toLowerCase();
    if (v) location.hash = link('trace', v);
  }}, h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'Trace ID'), input), h('button', {class: 'btn btn-primary', type: 'submit'}, 'Open'));
  const body = h('div', {class: 'tv-view-body'});
  el.append(form, body);
  if (!id) {
    message(body, 'empty', 'Enter a trace ID, or find traces with the search.');
    return {};
  }
  message(body, 'loading', 'Loading trace…');

  api.get('/traces/' + api.enc(id)).then(doc => {
    t = model.parse(doc);
    colors = model.colors(t);
    el.dataset.state = 'ready';
    render();
  }).catch(e => {
    el.dataset.state = 'error';
    message(body, 'error', e.status === 404 ? `Trace ${id} not found.` : 'Trace: ' + e.message);
  });

  const detailsEl = h('aside', {class: 'card span-details tv-details', testid: 'span-details', 'aria-label': 'Span details', tabindex: -1});
  const mapBox = h('div', {class: 'trace-map', testid: 'trace-map'});
  const mapCard = h('div', {class: 'card tv-mapcard', testid: 'trace-map-card', hidden: true}, mapBox);
  const mapBtn = h('button', {type: 'button', class: 'btn btn-ghost small', testid: 'trace-map-toggle', 'aria-expanded': 'false', onclick: () => {
    const open = mapCard.hidden;
    setMap(open);
    ctx.setParams({map: open ? '1' : null});
  }});
  const zoomBtn = h('button', {type: 'button', class: 'btn btn-ghost small', testid: 'trace-zoom-reset', hidden: true, title: 'Show the whole trace again', onclick: () => wf.zoom(0, t.total || 1)}, 'Reset zoom');
  const foldInfo = h('span', {class: 'small dim', testid: 'trace-row-count', 'aria-live': 'polite'});

  function setMap(open) {
    if (!t) return;
    mapCard.hidden = !open;
    mapBtn.setAttribute('aria-expanded', String(open));
    mapBtn.textContent = (open ? '▾ ' : '▸ ') + `Service map (${t.services.length})`;
    if (open && !map) {
      map = new FlowMap(mapBox, {particles: false, testid: 'trace-flowmap', padBottom: 24});
      map.setData(model.graph(t));
    }
  }

  function showDetails(s) {
    shown = s ? s.id : null;
    details.render(detailsEl, s, t, {color: s ? colors.get(s.service) : '', onSpan: pid => wf.select(pid, {center: true})});
  }

  function render() {
    const root = t.roots.reduce((a, b) => (b.dur > a.dur ? b : a), t.roots[0]);
    const corr = new Set();
    for (const s of t.spans) for (const [k, v] of s.attributes) if (/^(correlation[._]id|x-correlation-id|request\.id|x-request-id)$/.test(k)) corr.add(v);
    const critBox = h('input', {type: 'checkbox', checked: params.get('critical') !== 'off', testid: 'critical-toggle', onchange: ev => {
      wf.setCritical(ev.target.checked);
      ctx.setParams({critical: ev.target.checked ? null : 'off'});
    }});
    const depthSel = select([{value: '', label: 'all levels'}, ...Array.from({length: t.maxDepth + 1}, (_, i) => ({value: i + 1, label: `${i + 1} level${i ? 's' : ''}`}))], '', {testid: 'trace-depth', 'aria-label': 'Collapse to depth', onchange: () => {
      if (depthSel.value) wf.setFolds(model.foldDepth(t, Number(depthSel.value)));
      else wf.expandAll();
    }});
    const order = [...colors.keys()];
    const svcSel = select([{value: '', label: 'fold by service…'}, {value: '\u0000entries', label: 'every call into another service'}, ...order.map(s => ({value: s, label: 'all spans of ' + s}))], '', {testid: 'trace-fold-service', 'aria-label': 'Fold by service', onchange: () => {
      const v = svcSel.value;
      if (v === '\u0000entries') wf.setFolds(model.foldEntries(t), true);
      else if (v) wf.setFolds(model.foldService(t, v), true);
      svcSel.value = '';
    }});
    const expandBtn = h('button', {type: 'button', class: 'btn btn-ghost small', testid: 'trace-expand-all', onclick: () => {
      depthSel.value = '';
      wf.expandAll();
    }}, 'Expand all');
    const legend = h('div', {class: 'tv-legend small', testid: 'trace-legend'},
      order.slice(0, LEGEND_MAX).map(s => h('span', {class: 'tv-legend-item', testid: 'legend-service', dataset: {color: colors.get(s)}}, h('span', {class: 'tv-swatch', style: {'background-color': colors.get(s)}}), s)),
      order.length > LEGEND_MAX ? h('span', {class: 'dim'}, `+${order.length - LEGEND_MAX} more (colours repeat)`) : null,
      h('span', {class: 'dim tv-hint'}, '↑↓ move · ←→ fold · Enter details · drag the ruler to zoom'));

    wf = new Waterfall(t, {colors, critical: critBox.checked, onSelect: s => {
      showDetails(s);
      if (params.get('span') !== s.id) ctx.setParams({span: s.id});
    }, onChange: () => {
      if (!wf) return;
      zoomBtn.hidden = !wf.zoomed;
      foldInfo.textContent = wf.rows.length === t.spans.length ? `${t.spans.length} spans` : `${wf.rows.length} of ${t.spans.length} spans shown`;
    }});
    wf.opts.onChange();

    replace(body,
      h('div', {class: 'trace-head tv-summary'},
        h('h1', {testid: 'trace-title'}, root ? `${root.service}: ${root.name}` : 'Trace'),
        h('span', {class: 'mono dim tv-traceid', testid: 'trace-id'}, id),
        h('div', {class: 'stats summary-stats tv-stats'},
          stat('duration', fmt.dur(t.total)), stat('spans', t.spans.length), stat('services', t.services.length),
          stat('errors', t.errors), stat('depth', t.maxDepth + 1), stat('start', fmt.time(t.startMs))),
        corr.size ? h('div', {class: 'small tv-corr'}, 'correlation: ', [...corr].map(c => h('a', {href: link('correlation', c), class: 'tag', testid: 'trace-correlation'}, c))) : null),
      h('div', {class: 'wf-tools tv-tools'},
        mapBtn,
        h('label', {class: 'check small'}, critBox, 'critical path'),
        h('span', {class: 'tv-group small'}, h('span', {class: 'dim'}, 'show'), depthSel),
        svcSel, expandBtn, zoomBtn, foldInfo, form),
      legend,
      mapCard,
      h('div', {class: 'tv-main'}, wf.el, detailsEl));
    setMap(params.get('map') === '1');
    const sel = params.get('span');
    const first = (sel && t.byId.get(sel)) || root;
    if (first) wf.select(first.id, {center: true, notify: false});
    showDetails(first);
  }

  return {
    update(c) {
      params = c.params;
      if (!t || !wf) return;
      const sel = params.get('span');
      if (sel && sel !== shown && t.byId.get(sel)) wf.select(sel, {center: true});
      const open = params.get('map') === '1';
      if (open === mapCard.hidden) setMap(open);
    },
    destroy() {
      if (map) map.destroy();
      if (wf) wf.destroy();
    },
  };
}

function stat(label, value) {
  return h('div', {class: 'stat'}, h('span', {class: 'stat-label'}, label), h('span', {class: 'stat-value'}, String(value)));
}
