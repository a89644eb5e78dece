// Metrics browser: the metric names in range (GET /api/v1/metrics) and one
// metric's series (GET /api/v1/metrics/{name}) as charts; histograms and
// summaries show their quantiles over time and the latest distribution.
import {h, replace, link, field, select, message, table, debounce} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import {picker, resolve, apiParams} from '../timerange.js';
import {lineChart, legend, barList, qColor, widthOf, PALETTE} from '../charts.js';

const MAX_SERIES = 12;

export function seriesLabel(sr) {
  const parts = [];
  for (const [k, v] of Object.entries(sr.resourceAttributes || {})) if (k === 'service.name' || k === 'service.instance.id') parts.push(v);
  for (const [k, v] of Object.entries(sr.attributes || {})) parts.push(`${k}=${v}`);
  return parts.join(' ') || '(no attributes)';
}

// metricChart renders one metric's response into box.
export function metricChart(box, m, {height = 220, seriesIndex = 0, onSeries} = {}) {
  const series = m.series || [];
  if (!series.length) return message(box, 'empty', 'No points in this range.');
  const w = widthOf(box, 640);
  const unit = m.unit ? ` (${m.unit})` : '';
  const parts = [];
  if (m.type === 'gauge' || m.type === 'sum') {
    const ss = series.slice(0, MAX_SERIES).map((sr, i) => ({name: seriesLabel(sr), color: PALETTE[i % PALETTE.length], points: sr.points.map(p => [fmt.nsToMs(p.timeUnixNano), fmt.num(p.value)])}));
    parts.push(lineChart({series: ss, width: w, height, yLabel: m.unit}), legend(ss));
    if (series.length > MAX_SERIES) parts.push(h('div', {class: 'dim small'}, `showing ${MAX_SERIES} of ${series.length} series`));
  } else {
    const idx = Math.min(seriesIndex, series.length - 1);
    const sr = series[idx];
    if (series.length > 1) {
      const sel = select(series.map((x, i) => ({value: String(i), label: seriesLabel(x)})), String(idx), {testid: 'metric-series-select', onchange: () => onSeries && onSeries(Number(sel.value))});
      parts.push(field('Series', sel));
    } else parts.push(h('div', {class: 'small dim'}, seriesLabel(sr)));
    const qs = [...new Set(sr.points.flatMap(p => (p.quantiles || []).map(q => fmt.num(q.quantile))))].sort((a, b) => a - b);
    const ss = qs.map((q, i) => ({name: fmt.quantileLabel(q), color: qColor(q, i), points: sr.points.map(p => [fmt.nsToMs(p.timeUnixNano), fmt.num((p.quantiles || []).find(x => fmt.num(x.quantile) === q)?.value)])}));
    parts.push(h('div', {class: 'chart-head'}, h('span', {class: 'chart-title'}, 'Quantiles over time' + unit)), lineChart({series: ss, width: w, height}), legend(ss));
    const last = sr.points[sr.points.length - 1];
    if (last) {
      parts.push(h('div', {class: 'stats'},
        stat('count', fmt.count(last.count)), stat('sum', fmt.count(last.sum)),
        last.min != null ? stat('min', fmt.count(last.min)) : null, last.max != null ? stat('max', fmt.count(last.max)) : null,
        (last.quantiles || []).map(q => h('div', {class: 'stat', testid: 'metric-quantile'}, h('span', {class: 'stat-label'}, fmt.quantileLabel(q.quantile)), h('span', {class: 'stat-value'}, fmt.count(q.value))))));
      if ((last.buckets || []).length) {
        const b = last.buckets.map(x => ({label: `${fmtBound(x.lower)} – ${fmtBound(x.upper)}`, value: fmt.num(x.count), text: fmt.count(x.count)}));
        parts.push(h('div', {class: 'chart-head'}, h('span', {class: 'chart-title'}, 'Latest buckets' + unit)), barList(b, {testid: 'metric-buckets'}));
      }
    }
  }
  replace(box, parts);
}

function fmtBound(x) {
  const v = fmt.num(x);
  return Number.isFinite(v) ? String(Math.round(v * 1000) / 1000) : v > 0 ? '+∞' : '−∞';
}

function stat(label, value) {
  return h('div', {class: 'stat'}, h('span', {class: 'stat-label'}, label), h('span', {class: 'stat-value'}, value));
}

export default function mount(el, ctx) {
  let params = ctx.params;
  const P = k => params.get(k) || '';
  const filter = h('input', {type: 'search', placeholder: 'filter…', testid: 'metric-filter'});
  const list = h('div', {class: 'metric-list', testid: 'metric-list'});
  const detail = h('div', {class: 'card metric-detail', testid: 'metric-detail'});
  el.append(h('h1', null, 'Metrics'), h('div', {class: 'toolbar'}, picker(params, ch => ctx.setParams(ch))),
    h('div', {class: 'split'}, h('div', {class: 'card metric-side'}, filter, list), detail));
  let names = [];
  let seriesIndex = 0;

  const drawList = () => {
    const f = filter.value.trim().toLowerCase();
    const shown = names.filter(m => !f || m.name.toLowerCase().includes(f));
    if (!shown.length) return message(list, 'empty', names.length ? 'No metric matches.' : 'No metrics in this range.');
    replace(list, shown.map(m => h('a', {href: link('metrics', '', Object.assign(Object.fromEntries(params), {name: m.name})), class: 'metric-item' + (m.name === P('name') ? ' active' : ''), testid: 'metric-item', dataset: {name: m.name}},
      h('span', {class: 'metric-name'}, m.name), h('span', {class: 'tag'}, m.type.replace('_', ' ')), m.unit ? h('span', {class: 'dim small'}, m.unit) : null)));
  };
  filter.addEventListener('input', debounce(drawList, 120));

  let seq = 0;
  async function load() {
    const my = ++seq;
    const tr = apiParams(resolve(params));
    try {
      const r = await api.get('/metrics', tr);
      if (my !== seq) return;
      names = r.metrics || [];
      drawList();
    } catch (e) {
      message(list, 'error', e.message);
    }
    const name = P('name');
    if (!name) return message(detail, 'empty', 'Choose a metric.');
    message(detail, 'loading', 'Loading…');
    try {
      const m = await api.get('/metrics/' + api.enc(name), tr);
      if (my !== seq) return;
      const info = h('div', {class: 'metric-chart'});
      replace(detail, h('h2', {testid: 'metric-title'}, m.name || name), h('div', {class: 'small dim'}, [m.type, m.unit, m.description].filter(Boolean).join(' · ')), info);
      const draw = () => metricChart(info, m, {seriesIndex, onSeries: i => {
        seriesIndex = i;
        draw();
      }});
      draw();
      el.dataset.state = 'ready';
    } catch (e) {
      if (my === seq) message(detail, 'error', 'Metric: ' + e.message);
    }
  }
  load();
  return {
    update(c) {
      params = c.params;
      seriesIndex = 0;
      load();
    },
  };
}
