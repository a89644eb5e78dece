// Latency page: pick a service (operation, span kind) or an edge, see its
// HDR distribution, quantiles over time and exemplars.
import {h, field, select, fillSelect, message} from '../dom.js';
import * as api from '../api.js';
import {picker, resolve} from '../timerange.js';
import {LatencyPanel} from '../latency.js';
import {LEVELS} from './map.js';

const KINDS = ['server', 'client', 'internal', 'all'];

export default function mount(el, ctx) {
  let params = ctx.params;
  const P = k => params.get(k) || '';
  const mode = () => (P('source') || P('target') || P('mode') === 'edge' ? 'edge' : 'service');

  const svcList = h('datalist', {id: 'lat-services'});
  const serviceSel = select([{value: '', label: '—'}], P('service'), {testid: 'lat-service'});
  const opSel = select([{value: '', label: 'all operations'}], P('operation'), {testid: 'lat-operation'});
  const kindSel = select(KINDS, P('kind') || 'server', {testid: 'lat-kind'});
  const source = h('input', {type: 'text', list: 'lat-services', value: P('source'), placeholder: 'caller', testid: 'lat-source'});
  const target = h('input', {type: 'text', list: 'lat-services', value: P('target'), placeholder: 'callee', testid: 'lat-target'});
  const levelSel = select(LEVELS, P('level') || 'service', {testid: 'lat-level'});
  const modeSel = select([{value: 'service', label: 'a service'}, {value: 'edge', label: 'an edge (calls A → B)'}], mode(), {testid: 'lat-mode'});

  const svcFields = h('span', {class: 'inline wrap'}, field('Service', serviceSel), field('Operation', opSel), field('Span kind', kindSel));
  const edgeFields = h('span', {class: 'inline wrap'}, field('Source', source), field('Target', target), field('Level', levelSel), svcList);
  const showMode = () => {
    svcFields.hidden = modeSel.value !== 'service';
    edgeFields.hidden = modeSel.value !== 'edge';
  };
  modeSel.addEventListener('change', showMode);
  showMode();

  const loadOps = async svc => {
    try {
      const ops = await api.operations(svc);
      const names = [...new Set(ops.map(o => o.name))];
      fillSelect(opSel, [{value: '', label: 'all operations'}, ...names.map(n => ({value: n, label: n}))], P('service') === svc ? P('operation') : '');
    } catch {
      fillSelect(opSel, [{value: '', label: 'all operations'}], '');
    }
  };
  serviceSel.addEventListener('change', () => loadOps(serviceSel.value));

  const apply = ev => {
    if (ev) ev.preventDefault();
    if (modeSel.value === 'service') {
      ctx.setParams({mode: '', service: serviceSel.value, operation: opSel.value, kind: kindSel.value === 'server' ? '' : kindSel.value, source: '', target: '', level: ''}, {push: true});
    } else {
      ctx.setParams({mode: 'edge', service: '', operation: '', kind: '', source: source.value.trim(), target: target.value.trim(), level: levelSel.value === 'service' ? '' : levelSel.value}, {push: true});
    }
  };
  const form = h('form', {class: 'toolbar', testid: 'latency-form', onsubmit: apply},
    field('Latency of', modeSel), svcFields, edgeFields,
    picker(params, ch => ctx.setParams(ch)),
    h('button', {type: 'submit', class: 'btn btn-primary', testid: 'lat-submit'}, 'Show'));
  const body = h('div', {class: 'card'});
  el.append(h('h1', null, 'Latency'), form, body);

  api.services(Object.fromEntries([['start', Date.now() - 24 * 3600e3]])).then(names => {
    fillSelect(serviceSel, [{value: '', label: '—'}, ...names.map(n => ({value: n, label: n}))], P('service'));
    for (const n of names) svcList.appendChild(h('option', {value: n}));
    if (P('service')) loadOps(P('service'));
  }).catch(() => {});

  let panel = null;
  let timer = null;
  const show = () => {
    const q = {service: P('service'), operation: P('operation'), kind: P('kind'), source: P('source'), target: P('target'), level: P('level')};
    const tr = resolve(params);
    if (!q.service && !(q.source && q.target)) {
      if (panel) panel.destroy();
      panel = null;
      message(body, 'empty', 'Choose a service, or the source and target of an edge, and press Show.');
      return;
    }
    if (panel) panel.update(q, tr);
    else {
      body.textContent = '';
      panel = new LatencyPanel(body, {query: q, range: tr, histogramHeight: 280, link: false});
    }
    clearInterval(timer);
    if (tr.live) timer = setInterval(() => !document.hidden && panel && panel.update(null, resolve(params)), 10000);
  };
  show();
  return {
    update(c) {
      params = c.params;
      show();
    },
    destroy() {
      clearInterval(timer);
      if (panel) panel.destroy();
    },
  };
}
