// The latency component: GET /api/v1/latency for a service (optionally an
// operation and span kind) or an edge source → target, drawn as an HDR
// distribution on a log axis with quantile lines, the quantiles over time,
// and exemplar links from the high quantiles to their traces.
import {h, replace, message, link, table} from './dom.js';
import * as api from './api.js';
import * as fmt from './fmt.js';
import {histogram, lineChart, legend, qColor, widthOf} from './charts.js';
import {apiParams, stepFor} from './timerange.js';

export const QUANTILES = '0.5,0.9,0.99,0.999';

// latencyQuery keeps the latency parameters of a query object.
export function latencyQuery(q) {
  const out = {};
  for (const k of ['service', 'operation', 'kind', 'source', 'target', 'level']) if (q[k]) out[k] = q[k];
  if (out.level === 'service') delete out.level;
  if (out.service) delete out.level;
  return out;
}

// latencyCell is a table cell for a latency value in nanoseconds; a null
// value (no call with a measured duration) reads UNKNOWN, with a tooltip.
export function latencyCell(v, cls = '') {
  const known = fmt.known(v);
  return h('td', {class: ('num ' + cls + (known ? '' : ' dim')).trim(), title: known ? null : 'unknown: no call with a measured duration'}, fmt.dur(v));
}

export function latencyTitle(q) {
  const op = q.operation ? ` · ${q.operation}` : '';
  if (q.source) return `${q.source} → ${q.target}${op}`;
  return `${q.service}${op}${q.kind && q.kind !== 'server' ? ` (${q.kind} spans)` : ''}`;
}

export class LatencyPanel {
  // opts: query (service | source+target …), range (resolved), series
  // (draw the quantiles over time), exemplars, histogramHeight, title,
  // counts (false: leave the count and errors out, where they are shown
  // next to the panel already).
  constructor(container, opts) {
    this.opts = Object.assign({series: true, exemplars: true, histogramHeight: 220, quantiles: QUANTILES, title: true, counts: true}, opts);
    this.el = h('section', {class: 'latency', testid: 'latency-panel'});
    container.appendChild(this.el);
    this.logCount = false;
    this.seq = 0;
    this.load();
  }

  update(query, range) {
    if (query) this.opts.query = query;
    if (range) this.opts.range = range;
    return this.load();
  }

  destroy() {
    this.seq++;
    this.el.remove();
  }

  async load() {
    const seq = ++this.seq;
    const q = latencyQuery(this.opts.query || {});
    const tr = this.opts.range;
    if (!q.service && !(q.source && q.target)) {
      message(this.el, 'empty', 'Choose a service or an edge.');
      return;
    }
    if (!this.data) message(this.el, 'loading', 'Loading latency…');
    const params = Object.assign({}, q, apiParams(tr), {quantiles: this.opts.quantiles});
    if (this.opts.series) params.step = stepFor(tr.end - tr.start);
    try {
      const d = await api.get('/latency', params);
      if (seq !== this.seq) return;
      this.data = d;
      this.el.dataset.state = 'ready';
      this.render(q, d);
    } catch (e) {
      if (seq !== this.seq) return;
      this.el.dataset.state = 'error';
      message(this.el, 'error', `Latency: ${e.message}`);
    }
  }

  render(q, d) {
    const o = this.opts;
    const parts = [];
    if (o.title) {
      const full = link('latency', '', Object.assign({}, q, {range: o.range.range, from: o.range.range === 'custom' ? o.range.start : '', to: o.range.range === 'custom' ? o.range.end : ''}));
      parts.push(h('header', {class: 'latency-head'},
        h('h3', {testid: 'latency-title'}, latencyTitle(q)),
        o.link !== false ? h('a', {href: full, class: 'small', testid: 'latency-open'}, 'open latency page ↗') : null));
    }
    const count = fmt.num(d.count), timed = fmt.num(d.timedCount);
    parts.push(h('div', {class: 'stats'},
      o.counts ? stat('count', fmt.count(count), 'stat-count') : null,
      timed < count ? stat('timed', `${fmt.count(timed)} (${fmt.pct(timed / count)})`, 'stat-timed') : null,
      o.counts ? stat('errors', `${fmt.count(d.errors)}${count ? ' (' + fmt.pct(fmt.num(d.errors) / count) + ')' : ''}`, 'stat-errors') : null,
      stat('min', fmt.dur(d.min)), stat('mean', fmt.dur(d.mean)), stat('max', fmt.dur(d.max))));
    parts.push(h('div', {class: 'quantiles'}, (d.quantiles || []).map((x, i) => {
      const label = fmt.quantileLabel(x.quantile);
      const known = fmt.known(x.value);
      return h('div', {class: 'qchip', testid: 'quantile-' + label, dataset: {ns: known ? fmt.num(x.value) : '', quantile: x.quantile},
        title: known ? `exact value within [${fmt.dur(x.from)}, ${fmt.dur(x.to)}]` : 'unknown: no span with a measured duration'},
      h('span', {class: 'qchip-label', style: {color: qColor(x.quantile, i)}}, label),
      h('span', {class: 'qchip-value'}, fmt.dur(x.value)));
    })));
    if (!count) {
      parts.push(h('div', {class: 'msg msg-empty', testid: 'msg-empty'}, 'No spans in this range.'));
      replace(this.el, parts);
      return;
    }
    if (!timed) {
      parts.push(h('div', {class: 'msg msg-empty', testid: 'msg-untimed'},
        `The latency is unknown: none of the ${fmt.count(count)} spans has a measured duration (one-way messages, or spans without an end).`));
      replace(this.el, parts);
      return;
    }
    if (timed < count) {
      parts.push(h('p', {class: 'dim small', testid: 'latency-partial'},
        `${fmt.count(count - timed)} of the ${fmt.count(count)} spans have no measured duration (one-way messages, or spans without an end); the distribution is that of the others.`));
    }
    const histBox = h('div', {class: 'chart-box'});
    const toggle = h('label', {class: 'small check'}, h('input', {type: 'checkbox', checked: this.logCount, onchange: ev => {
      this.logCount = ev.target.checked;
      this.render(q, d);
    }}), 'log count');
    parts.push(h('div', {class: 'chart-head'}, h('span', {class: 'chart-title'}, 'Distribution'), toggle), histBox);
    let seriesBox = null;
    if (o.series && (d.series || []).length) {
      seriesBox = h('div', {class: 'chart-box'});
      parts.push(h('div', {class: 'chart-head'}, h('span', {class: 'chart-title'}, 'Quantiles over time')), seriesBox);
    }
    if (o.exemplars && (d.modes || []).length) {
      parts.push(h('div', {class: 'chart-head'}, h('span', {class: 'chart-title'}, d.modes.length > 1 ? `Modes (${d.modes.length}): a span of each` : 'Mode: a span of it')));
      parts.push(table(['mode', 'peak', 'range', 'share', 'example span'], d.modes.map((m, i) =>
        h('tr', {testid: 'mode-row', dataset: {peak: fmt.num(m.peak), from: fmt.num(m.from), to: fmt.num(m.to)}},
          h('td', null, String(i + 1)),
          h('td', {class: 'num'}, fmt.dur(m.peak)),
          h('td', {class: 'num dim'}, `${fmt.dur(m.from)} – ${fmt.dur(m.to)}`),
          h('td', {class: 'num'}, fmt.pct(fmt.num(m.share))),
          h('td', null, m.exemplar ? exemplarLink(m.exemplar, 'mode-exemplar') : h('span', {class: 'dim'}, 'none kept')))), {testid: 'modes'}));
    }
    if (o.exemplars && (d.errorExemplars || []).length) {
      parts.push(h('div', {class: 'chart-head'}, h('span', {class: 'chart-title'}, 'Failing spans (newest)')));
      parts.push(table(['latency', 'time', 'trace'], d.errorExemplars.map(x =>
        h('tr', null,
          h('td', {class: 'num'}, fmt.dur(x.value)),
          h('td', {class: 'dim'}, x.time ? fmt.time(Date.parse(x.time)) : ''),
          h('td', null, exemplarLink(x, 'error-exemplar')))), {testid: 'error-exemplars'}));
    }
    if (o.exemplars && (d.exemplars || []).length) {
      parts.push(h('div', {class: 'chart-head'}, h('span', {class: 'chart-title'}, 'Exemplars (slowest spans)')));
      parts.push(table(['latency', 'quantile', 'time', 'trace'], d.exemplars.slice(0, 12).map(x =>
        h('tr', null,
          h('td', {class: 'num'}, fmt.dur(x.value)),
          h('td', null, fmt.num(x.quantile) ? '≥ ' + fmt.quantileLabel(x.quantile) : ''),
          h('td', {class: 'dim'}, x.time ? fmt.time(Date.parse(x.time)) : ''),
          h('td', null, exemplarLink(x, 'exemplar-link')))), {testid: 'exemplars'}));
    }
    replace(this.el, parts);
    const w = widthOf(this.el, 560);
    histBox.append(histogram({buckets: d.buckets, quantiles: d.quantiles, width: w, height: o.histogramHeight, logCount: this.logCount,
      barHref: (q.service || (q.source && q.target && (!q.level || q.level === 'service'))) ? (lo, hi) => tracesHref(q, o.range, lo, hi) : null}));
    if (seriesBox) {
      const series = seriesOf(d);
      seriesBox.append(lineChart({series, width: w, height: 180, yFormat: fmt.durShort, logY: true}), legend(series));
    }
  }
}

// exemplarLink links to an exemplar's trace opened at its span, marked
// when the span failed.
function exemplarLink(x, testid) {
  return h('span', null,
    h('a', {href: link('trace', x.traceId, {span: x.spanId || ''}), testid, class: 'mono', dataset: {traceId: x.traceId, spanId: x.spanId || ''}}, x.traceId),
    x.error ? h('span', {class: 'badge badge-err', testid: 'exemplar-error', title: 'status ERROR'}, 'error') : null);
}

// tracesHref links to the trace search for a service's (and operation's)
// spans with a duration in [lo, hi] ns, over the range tr, or for an
// edge's calls (source, target: service-level node IDs) of that duration.
// The search has no span kind condition.
export function tracesHref(q, tr, lo, hi) {
  const custom = tr && tr.range === 'custom';
  const edge = !q.service && q.source && q.target;
  return link('traces', '', {
    service: edge ? '' : q.service, source: edge ? q.source : '', target: edge ? q.target : '', operation: q.operation || '',
    minDuration: Math.max(0, Math.floor(lo)) + 'ns',
    // maxDuration 0 means no bound: a bucket of zero durations ends at 1ns.
    maxDuration: Math.max(1, Math.ceil(hi)) + 'ns',
    range: tr ? tr.range : '', from: custom ? Math.floor(tr.start) : '', to: custom ? Math.ceil(tr.end) : '',
  });
}

// seriesOf turns latency series into chart series, one per quantile.
export function seriesOf(d) {
  const qs = (d.quantiles || []).map(x => x.quantile);
  return qs.map((q, i) => ({
    name: fmt.quantileLabel(q),
    color: qColor(q, i),
    // Steps without a measured duration (empty, or of one-way messages
    // only) have null values: no point, rather than one at 0.
    points: (d.series || []).map(p => [Date.parse(p.start), (p.quantiles || []).find(x => fmt.num(x.quantile) === fmt.num(q))?.value])
      .filter(([, v]) => fmt.known(v)).map(([t, v]) => [t, fmt.num(v)]),
  }));
}

function stat(label, value, testid) {
  return h('div', {class: 'stat', testid: testid || null}, h('span', {class: 'stat-label'}, label), h('span', {class: 'stat-value'}, value));
}
