// Correlation search: every trace (and synthetic result) carrying one
// correlation ID (GET /api/v1/correlations/{id}) on one timeline, each
// trace's spans drawn inside its row.
import {h, replace, link, message, table} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import * as model from '../tracemodel.js';

const DETAIL_LIMIT = 25;

export default function mount(el, ctx) {
  const id = ctx.arg;
  const input = h('input', {type: 'text', value: id, size: 40, placeholder: 'correlation ID, e.g. req-42', testid: 'corr-input'});
  const form = h('form', {class: 'toolbar', testid: 'corr-form', onsubmit: ev => {
    ev.preventDefault();
    const v = input.value.trim();
    if (v) location.hash = link('correlation', v);
  }}, h('label', {class: 'field'}, h('span', {class: 'field-label'}, 'Correlation ID'), input), h('button', {type: 'submit', class: 'btn btn-primary', testid: 'corr-submit'}, 'Find'));
  const body = h('div', {class: 'card', testid: 'corr-results'});
  el.append(h('h1', null, 'Correlation'), form, body);
  if (!id) {
    message(body, 'empty', 'Paste a correlation ID (span attribute correlation.id, x-request-id, …) to see every trace that carries it on one timeline.');
    return {};
  }
  let alive = true;
  message(body, 'loading', 'Searching…');
  api.get('/correlations/' + api.enc(id), {limit: 200}).then(async r => {
    if (!alive) return;
    const traces = (r.traces || []).map(t => ({...t, start: fmt.nsToMs(t.startTimeUnixNano), dur: fmt.num(t.durationNanos)}));
    if (!traces.length && !(r.syntheticResults || []).length) return message(body, 'empty', `No traces carry ${id}.`);
    traces.sort((a, b) => a.start - b.start);
    const t0 = Math.min(...traces.map(t => t.start));
    const t1 = Math.max(...traces.map(t => t.start + t.dur / 1e6));
    const span = Math.max(t1 - t0, 0.001);
    const rows = traces.map(t => {
      const left = ((t.start - t0) / span) * 100, width = Math.max(0.3, (t.dur / 1e6 / span) * 100);
      const lane = h('div', {class: 'corr-lane'}, h('div', {class: 'corr-bar', style: {left: left + '%', width: width + '%'}, title: `${fmt.dur(t.dur)} from ${fmt.time(t.start)}`}));
      t.lane = lane;
      t.left = left;
      t.width = width;
      return h('div', {class: 'corr-row', testid: 'corr-trace', dataset: {traceId: t.traceId}},
        h('div', {class: 'corr-label'},
          h('a', {href: link('trace', t.traceId), testid: 'corr-trace-link'}, h('span', {class: 'svc', style: {'border-color': model.serviceColor(t.rootServiceName || '')}}, t.rootServiceName || '?'), ' ', t.rootOperation || ''),
          h('div', {class: 'tiny dim'}, h('span', {class: 'mono'}, t.traceId.slice(0, 16)), ` · ${fmt.dur(t.dur)} · ${fmt.count(t.spanCount)} spans`, fmt.num(t.errorCount) ? h('span', {class: 'err'}, ` · ${fmt.count(t.errorCount)} errors`) : null)),
        lane);
    });
    const ticks = [0, 0.25, 0.5, 0.75, 1].map(f => h('span', {class: 'wf-tick', style: {left: f * 100 + '%'}}, '+' + fmt.dur(f * span * 1e6)));
    replace(body,
      h('div', {class: 'dim small', testid: 'corr-count'}, `${traces.length} trace${traces.length === 1 ? '' : 's'} carry `, h('b', null, id), ` · from ${fmt.time(t0)} over ${fmt.dur(span * 1e6)}`),
      h('div', {class: 'corr-timeline', testid: 'corr-timeline'}, h('div', {class: 'corr-row corr-head'}, h('div', {class: 'corr-label dim small'}, 'trace'), h('div', {class: 'corr-lane wf-ruler'}, ticks)), rows),
      (r.syntheticResults || []).length ? [h('h3', null, 'Synthetic results'), table(['result'], r.syntheticResults.map(x => h('tr', null, h('td', {class: 'mono small'}, JSON.stringify(x)))))] : null);
    // Draw each trace's spans inside its bar (the first few traces).
    for (const t of traces.slice(0, DETAIL_LIMIT)) {
      try {
        const m = model.parse(await api.get('/traces/' + api.enc(t.traceId)));
        if (!alive) return;
        const maxDepth = Math.min(8, Math.max(...m.spans.map(s => s.depth)) + 1);
        const base = m.startMs;
        for (const s of m.spans) {
          if (s.depth >= maxDepth) continue;
          const l = ((base + s.start / 1e6 - t0) / span) * 100, w = Math.max(0.2, (s.dur / 1e6 / span) * 100);
          t.lane.appendChild(h('div', {class: 'corr-span' + (s.error ? ' wf-err' : ''), style: {left: l + '%', width: w + '%', top: 3 + (s.depth * 22) / maxDepth + 'px', background: model.serviceColor(s.service)}, title: `${s.service}: ${s.name} ${fmt.dur(s.dur)}`}));
        }
      } catch {
        /* the summary bar stays */
      }
    }
  }).catch(e => alive && message(body, 'error', 'Correlation: ' + e.message));
  return {destroy: () => (alive = false)};
}
