// Trace search: service, operation, duration bounds, attributes
// (attr.KEY=VALUE), status (error|ok) and time range → GET /api/v1/traces;
// results link to the waterfall.
import {h, replace, link, field, select, fillSelect, message, table} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import {picker, resolve, apiParams} from '../timerange.js';
import {serviceColor} from '../tracemodel.js';

export default function mount(el, ctx) {
  let params = ctx.params;
  const P = k => params.get(k) || '';
  const attrLines = () => [...params.entries()].filter(([k]) => k.startsWith('attr.')).map(([k, v]) => k.slice(5) + '=' + v).join('\n');

  const serviceSel = select([{value: '', label: 'any service'}], P('service'), {testid: 'tr-service'});
  const opSel = select([{value: '', label: 'any operation'}], P('operation'), {testid: 'tr-operation'});
  const minD = h('input', {type: 'text', value: P('minDuration'), placeholder: 'e.g. 100ms', size: 9, testid: 'tr-min'});
  const maxD = h('input', {type: 'text', value: P('maxDuration'), placeholder: 'e.g. 2s', size: 9, testid: 'tr-max'});
  const attrsIn = h('textarea', {rows: 1, placeholder: 'key=value, one per line', testid: 'tr-attrs', class: 'attrs-input'});
  attrsIn.value = attrLines();
  const statusSel = select([{value: '', label: 'any'}, {value: 'error', label: 'errors only'}, {value: 'ok', label: 'ok only'}], P('status'), {testid: 'tr-status'});
  const limit = h('input', {type: 'number', min: 1, max: 1000, value: P('limit') || '20', class: 'num-input', testid: 'tr-limit'});
  const err = h('span', {class: 'form-error', testid: 'tr-form-error'});

  const loadOps = async (svc, keep) => {
    const ops = svc ? await api.operations(svc).catch(() => []) : [];
    fillSelect(opSel, [{value: '', label: 'any operation'}, ...[...new Set(ops.map(o => o.name))].map(n => ({value: n, label: n}))], keep);
  };
  serviceSel.addEventListener('change', () => loadOps(serviceSel.value, ''));
  api.services({start: Date.now() - 24 * 3600e3}).then(names => {
    fillSelect(serviceSel, [{value: '', label: 'any service'}, ...names.map(n => ({value: n, label: n}))], P('service'));
    if (P('service') && !names.includes(P('service'))) serviceSel.appendChild(h('option', {value: P('service'), selected: true}, P('service')));
    serviceSel.value = P('service');
    loadOps(P('service'), P('operation'));
  }).catch(() => {});

  const submit = ev => {
    ev.preventDefault();
    err.textContent = '';
    for (const [inp, name] of [[minD, 'min duration'], [maxD, 'max duration']]) {
      if (inp.value.trim() && Number.isNaN(fmt.parseDuration(inp.value))) {
        err.textContent = `${name}: use a duration such as 250us, 150ms, 1.5s`;
        return;
      }
    }
    const changes = {service: serviceSel.value, operation: opSel.value, minDuration: minD.value.trim(), maxDuration: maxD.value.trim(), status: statusSel.value, limit: limit.value === '20' ? '' : limit.value};
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
  const form = h('form', {class: 'toolbar', testid: 'trace-form', onsubmit: submit},
    field('Service', serviceSel), field('Operation', opSel), field('Min duration', minD), field('Max duration', maxD),
    field('Attributes', attrsIn), field('Status', statusSel), field('Limit', limit), picker(params, ch => ctx.setParams(ch)),
    h('button', {type: 'submit', class: 'btn btn-primary', testid: 'tr-submit'}, 'Search'), err);
  const results = h('div', {class: 'card', testid: 'trace-results'});
  el.append(h('h1', null, 'Traces'), form, results);

  let seq = 0;
  async function search() {
    const my = ++seq;
    const q = {};
    for (const [k, v] of params) {
      if (['service', 'operation', 'minDuration', 'maxDuration', 'status', 'limit'].includes(k) || k.startsWith('attr.')) q[k] = v;
    }
    Object.assign(q, apiParams(resolve(params)));
    message(results, 'loading', 'Searching…');
    try {
      const r = await api.get('/traces', q);
      if (my !== seq) return;
      render(r.traces || []);
    } catch (e) {
      if (my !== seq) return;
      message(results, 'error', 'Search: ' + e.message);
    }
  }

  function render(list) {
    if (!list.length) return message(results, 'empty', 'No traces match.');
    const maxDur = Math.max(...list.map(t => fmt.num(t.durationNanos)));
    replace(results,
      h('div', {class: 'dim small', testid: 'trace-count'}, `${list.length} trace${list.length === 1 ? '' : 's'}, newest first`),
      table(['start', 'root', 'duration', 'spans', 'errors', 'services'], list.map(t => {
        const d = fmt.num(t.durationNanos);
        return h('tr', {testid: 'trace-row', dataset: {traceId: t.traceId}, class: 'clickable', onclick: ev => {
          if (ev.target.closest('a')) return;
          location.hash = link('trace', t.traceId);
        }},
        h('td', {class: 'dim nowrap'}, fmt.time(fmt.nsToMs(t.startTimeUnixNano))),
        h('td', null, h('a', {href: link('trace', t.traceId), testid: 'trace-link'}, h('span', {class: 'svc', style: {'border-color': serviceColor(t.rootServiceName || '')}}, t.rootServiceName || '?'), ' ', t.rootOperation || ''), h('div', {class: 'mono dim tiny'}, t.traceId)),
        h('td', {class: 'durcell'}, h('span', {class: 'durbar', style: {width: (maxDur ? (d / maxDur) * 100 : 0) + '%'}}), h('span', {class: 'num'}, fmt.dur(d))),
        h('td', {class: 'num'}, fmt.count(t.spanCount)),
        h('td', {class: 'num' + (fmt.num(t.errorCount) ? ' err' : '')}, fmt.count(t.errorCount)),
        h('td', {class: 'small'}, (t.services || []).map(s => h('span', {class: 'svc', style: {'border-color': serviceColor(s)}}, s))));
      }), {testid: 'trace-table'}));
  }

  search();
  return {
    update(c) {
      params = c.params;
      search();
    },
  };
}
