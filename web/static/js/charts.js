// SVG charts: the latency histogram on a logarithmic axis, time series and
// bar lists. Labels are SVG text nodes (textContent), never markup.
import {h, s} from './dom.js';
import * as fmt from './fmt.js';

export const PALETTE = ['#4ea1ff', '#3fb68b', '#e5a50a', '#e5484d', '#b07cf7', '#2ec4c6', '#f08c3a', '#9aa5b4', '#ff7ab2', '#8bd450'];
export const QCOLORS = {'0.5': '#3fb68b', '0.9': '#4ea1ff', '0.99': '#e5a50a', '0.999': '#e5484d'};

export function qColor(q, i = 0) {
  return QCOLORS[String(fmt.num(q))] || PALETTE[i % PALETTE.length];
}

function niceTicks(lo, hi, n = 5) {
  if (!(hi > lo)) return [lo];
  const span = hi - lo;
  const step0 = Math.pow(10, Math.floor(Math.log10(span / n)));
  const err = (span / n) / step0;
  const step = step0 * (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function logTicks(lo10, hi10, mults = [1, 2, 5]) {
  const out = [];
  for (let d = Math.floor(lo10); d <= Math.ceil(hi10); d++) {
    for (const m of mults) {
      const v = m * Math.pow(10, d);
      const l = Math.log10(v);
      if (l >= lo10 - 1e-9 && l <= hi10 + 1e-9) out.push(v);
    }
  }
  return out.length > 12 ? out.filter(v => /^1/.test(v.toExponential())) : out;
}

// histogram draws HDR buckets [{from, to, count}] (ns) re-binned on a log
// latency axis, so that the modes of a multi-modal distribution show as
// separate peaks, with vertical lines at the quantiles [{quantile, value}].
// barHref(lo, hi), if given, makes each bar a link: lo and hi (ns) are the
// lowest and highest values of the HDR buckets drawn in the bar, so a search
// for durations in [lo, hi] finds exactly the spans counted there.
export function histogram({buckets, quantiles = [], width = 640, height = 220, logCount = false, barHref = null}) {
  const W = Math.max(260, width), H = Math.max(120, height);
  const m = {l: 46, r: 12, t: 22, b: 30};
  const svg = s('svg', {class: 'chart hist', width: W, height: H, viewBox: `0 0 ${W} ${H}`, testid: 'histogram', role: 'img', 'aria-label': 'Latency distribution (log scale)'});
  const bs = (buckets || []).map(b => ({from: Math.max(1, fmt.num(b.from)), to: Math.max(1, fmt.num(b.to)), lo: fmt.num(b.from), hi: fmt.num(b.to), count: fmt.num(b.count)})).filter(b => b.count > 0);
  if (!bs.length) {
    svg.append(s('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis-label'}, 'no data in range'));
    return svg;
  }
  let lo10 = Math.log10(Math.min(...bs.map(b => b.from)));
  let hi10 = Math.log10(Math.max(...bs.map(b => b.to + 1)));
  const span = Math.max(hi10 - lo10, 0.3);
  lo10 -= span * 0.06;
  hi10 += span * 0.06;
  const nb = Math.max(24, Math.min(140, Math.round((hi10 - lo10) * 36)));
  const bw = (hi10 - lo10) / nb;
  const bins = new Float64Array(nb);
  const binLo = new Array(nb).fill(Infinity), binHi = new Array(nb).fill(-Infinity);
  let total = 0;
  for (const b of bs) {
    const mid = Math.log10((b.from + b.to) / 2);
    const i = Math.max(0, Math.min(nb - 1, Math.floor((mid - lo10) / bw)));
    bins[i] += b.count;
    binLo[i] = Math.min(binLo[i], b.lo);
    binHi[i] = Math.max(binHi[i], b.hi);
    total += b.count;
  }
  const ymax = Math.max(...bins);
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const X = l10 => m.l + ((l10 - lo10) / (hi10 - lo10)) * pw;
  const yv = v => (logCount ? Math.log10(1 + v) / Math.log10(1 + ymax) : v / ymax);
  const Y = v => m.t + ph - yv(v) * ph;
  const g = s('g', {class: 'bars'});
  for (let i = 0; i < nb; i++) {
    if (!bins[i]) continue;
    const x0 = X(lo10 + i * bw), x1 = X(lo10 + (i + 1) * bw);
    const y = Y(bins[i]);
    const a = Math.pow(10, lo10 + i * bw), b = Math.pow(10, lo10 + (i + 1) * bw);
    const share = `${fmt.count(bins[i])} (${fmt.pct(bins[i] / total)})`;
    const href = barHref ? barHref(binLo[i], binHi[i]) : null;
    if (!href) {
      g.append(s('rect', {x: x0 + 0.5, y, width: Math.max(1, x1 - x0 - 1), height: m.t + ph - y, class: 'bar'},
        s('title', null, `${fmt.dur(a)} – ${fmt.dur(b)}: ${share}`)));
      continue;
    }
    g.append(s('a', {href, class: 'bar-link', testid: 'hist-bar-link', dataset: {lo: binLo[i], hi: binHi[i], count: bins[i]}},
      s('title', null, `Traces from ${fmt.dur(binLo[i])} to ${fmt.dur(binHi[i])} (${share})`),
      s('rect', {x: x0 + 0.5, y, width: Math.max(1, x1 - x0 - 1), height: m.t + ph - y, class: 'bar'})));
  }
  const axis = s('g', {class: 'axis'});
  axis.append(s('line', {x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph}));
  for (const v of logTicks(lo10, hi10)) {
    const x = X(Math.log10(v));
    axis.append(s('line', {x1: x, x2: x, y1: m.t + ph, y2: m.t + ph + 4}), s('text', {x, y: m.t + ph + 16, 'text-anchor': 'middle'}, fmt.durShort(v)));
  }
  for (const v of logCount ? [1, 10, 100, 1000, 1e4, 1e5, 1e6].filter(v => v <= ymax) : niceTicks(0, ymax, 4)) {
    const y = Y(v);
    axis.append(s('line', {x1: m.l, x2: m.l + pw, y1: y, y2: y, class: 'grid'}), s('text', {x: m.l - 6, y: y + 4, 'text-anchor': 'end'}, fmt.count(v)));
  }
  axis.append(s('text', {x: m.l + pw, y: H - 2, 'text-anchor': 'end', class: 'axis-label'}, 'latency (log scale)'));
  const ql = s('g', {class: 'qlines'});
  // Labels go on the first row where they clear the labels already
  // placed (close quantiles, p90 ≈ p99, share an x); rows are
  // QROW apart, the height of an 11px bold label.
  const QROW = 14, rowEnds = [];
  (quantiles || []).map((q, i) => ({q, i, v: fmt.num(q.value)})).filter(o => o.v > 0).sort((a, b) => a.v - b.v).forEach(({q, i, v}) => {
    const x = X(Math.log10(v));
    if (x < m.l || x > m.l + pw) return;
    const c = qColor(q.quantile, i);
    const label = fmt.quantileLabel(q.quantile);
    // Near the right edge the label goes left of its line.
    const w = label.length * 7 + 2, left = x + 3 + w > W;
    const x0 = left ? x - 3 - w : x + 3, x1 = x0 + w;
    let row = rowEnds.findIndex(end => end <= x0);
    if (row < 0) row = rowEnds.length;
    rowEnds[row] = x1 + 3;
    ql.append(s('line', {x1: x, x2: x, y1: m.t - 4, y2: m.t + ph, stroke: c, 'stroke-dasharray': '4 3', class: 'qline'}));
    ql.append(s('text', {x: left ? x - 3 : x + 3, y: m.t - 8 + row * QROW, fill: c, class: 'qlabel', 'text-anchor': left ? 'end' : null, 'data-quantile': q.quantile}, label));
  });
  svg.append(axis, g, ql);
  return svg;
}

// lineChart draws series [{name, color, points: [[ms, value]], dash,
// class}] over time; a dashed series (a threshold, say) has no dots.
export function lineChart({series, width = 640, height = 220, yFormat = fmt.count, logY = false, yLabel = ''}) {
  const W = Math.max(260, width), H = Math.max(120, height);
  const m = {l: 58, r: 14, t: 12, b: 28};
  const svg = s('svg', {class: 'chart line', width: W, height: H, viewBox: `0 0 ${W} ${H}`, testid: 'line-chart', role: 'img'});
  const pts = series.flatMap(x => x.points).filter(p => Number.isFinite(p[1]));
  if (!pts.length) {
    svg.append(s('text', {x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'axis-label'}, 'no data in range'));
    return svg;
  }
  let x0 = Math.min(...pts.map(p => p[0])), x1 = Math.max(...pts.map(p => p[0]));
  if (x1 === x0) {
    x0 -= 30e3;
    x1 += 30e3;
  }
  const vals = pts.map(p => p[1]);
  let y0 = Math.min(0, ...vals), y1 = Math.max(...vals);
  const useLog = logY && Math.min(...vals) > 0;
  if (useLog) {
    y0 = Math.log10(Math.min(...vals)) - 0.1;
    y1 = Math.log10(Math.max(...vals)) + 0.1;
  } else if (y1 === y0) y1 = y0 + 1;
  else y1 += (y1 - y0) * 0.05;
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const X = t => m.l + ((t - x0) / (x1 - x0)) * pw;
  const Y = v => m.t + ph - (((useLog ? Math.log10(v) : v) - y0) / (y1 - y0)) * ph;
  const axis = s('g', {class: 'axis'});
  const yt = useLog ? logTicks(y0, y1) : niceTicks(y0, y1, 4);
  for (const v of yt) {
    const y = Y(v);
    axis.append(s('line', {x1: m.l, x2: m.l + pw, y1: y, y2: y, class: 'grid'}), s('text', {x: m.l - 6, y: y + 4, 'text-anchor': 'end'}, yFormat(v)));
  }
  const span = x1 - x0;
  const steps = [1e3, 5e3, 10e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3];
  const st = steps.find(x => span / x <= 7) || 86400e3;
  for (let t = Math.ceil(x0 / st) * st; t <= x1; t += st) {
    const x = X(t);
    const d = new Date(t);
    const lbl = st >= 86400e3 ? `${d.getMonth() + 1}/${d.getDate()}` : fmt.clock(t).slice(0, st < 60e3 ? 8 : 5);
    axis.append(s('line', {x1: x, x2: x, y1: m.t + ph, y2: m.t + ph + 4}), s('text', {x, y: m.t + ph + 16, 'text-anchor': 'middle'}, lbl));
  }
  axis.append(s('line', {x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph}));
  if (yLabel) axis.append(s('text', {x: 4, y: m.t + 8, class: 'axis-label'}, yLabel));
  svg.append(axis);
  series.forEach((sr, i) => {
    const c = sr.color || PALETTE[i % PALETTE.length];
    const p = sr.points.filter(q => Number.isFinite(q[1]) && (!useLog || q[1] > 0));
    if (!p.length) return;
    const d = p.map((q, j) => (j ? 'L' : 'M') + X(q[0]).toFixed(1) + ' ' + Y(q[1]).toFixed(1)).join('');
    const g = s('g', {class: 'series' + (sr.class ? ' ' + sr.class : '')}, s('title', null, sr.name));
    g.append(s('path', {d, fill: 'none', stroke: c, 'stroke-width': 1.8, 'stroke-dasharray': sr.dash || null}));
    if (p.length < 60 && !sr.dash) for (const q of p) g.append(s('circle', {cx: X(q[0]), cy: Y(q[1]), r: 2.4, fill: c}, s('title', null, `${sr.name}: ${yFormat(q[1])} at ${fmt.time(q[0])}`)));
    svg.append(g);
  });
  return svg;
}

// legend lists series names with their colours.
export function legend(series) {
  return h('div', {class: 'legend'}, series.map((sr, i) => h('span', {class: 'legend-item'}, h('span', {class: 'swatch', style: {background: sr.color || PALETTE[i % PALETTE.length]}}), sr.name)));
}

// barList draws [{label, value, text, href, color, title}] as horizontal bars.
export function barList(items, {testid = 'bar-list', max} = {}) {
  const mx = max ?? Math.max(0, ...items.map(i => i.value));
  return h('div', {class: 'barlist', testid}, items.map(it => {
    const w = mx > 0 ? Math.max(0.5, (it.value / mx) * 100) : 0;
    const label = it.href ? h('a', {href: it.href, class: 'bar-label', title: it.title || null}, it.label) : h('span', {class: 'bar-label', title: it.title || null}, it.label);
    return h('div', {class: 'bar-row', testid: 'bar-row'},
      label,
      h('span', {class: 'bar-track'}, h('span', {class: 'bar-fill', style: {width: w + '%', background: it.color || 'var(--accent)'}})),
      h('span', {class: 'bar-value'}, it.text ?? String(it.value)));
  }));
}

// widthOf returns the usable width of el for a chart.
export function widthOf(el, fallback = 640) {
  const w = el.getBoundingClientRect().width;
  return w > 50 ? Math.floor(w) : fallback;
}
