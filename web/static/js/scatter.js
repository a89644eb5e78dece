// The trace search's scatter plot, as Jaeger draws it: one dot per trace,
// x = its start time, y = its duration (on a log axis when the durations
// span more than two decades), the dot's size by span count, traces with
// errors as red diamonds. Each dot is a link to its trace (focusable:
// Tab/Enter); hovering or focusing it shows a tooltip and reports the trace
// to onHover, so the table can highlight its row. Every label is a text
// node, never markup.
import {h, s, replace} from './dom.js';
import * as fmt from './fmt.js';

// A dot's radius is between R_MIN and R_MAX px, by span count.
const R_MIN = 3, R_MAX = 8;

// Time steps for the x axis (ms).
const TIME_STEPS = [1e3, 2e3, 5e3, 10e3, 15e3, 30e3, 60e3, 120e3, 300e3, 600e3, 900e3, 1800e3, 3600e3, 7200e3, 10800e3, 21600e3, 43200e3, 86400e3];

function niceTicks(lo, hi, n = 4) {
  if (!(hi > lo)) return [lo];
  const span = hi - lo;
  const step0 = Math.pow(10, Math.floor(Math.log10(span / n)));
  const err = span / n / step0;
  const step = step0 * (err >= 7.5 ? 10 : err >= 3.5 ? 5 : err >= 1.5 ? 2 : 1);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  return out;
}

function logTicks(lo10, hi10) {
  const out = [];
  for (let d = Math.floor(lo10); d <= Math.ceil(hi10); d++) {
    for (const m of [1, 2, 5]) {
      const v = m * Math.pow(10, d);
      const l = Math.log10(v);
      if (l >= lo10 - 1e-9 && l <= hi10 + 1e-9) out.push(v);
    }
  }
  return out.length > 6 ? out.filter(v => /^1/.test(v.toExponential())) : out;
}

// timeTicks returns tick times (ms) about every (hi-lo)/n, on round local times.
function timeTicks(lo, hi, n) {
  const step = TIME_STEPS.find(st => (hi - lo) / st <= n) || Math.ceil((hi - lo) / n / 86400e3) * 86400e3;
  const off = new Date(lo).getTimezoneOffset() * 60e3;
  const out = [];
  for (let t = Math.ceil((lo - off) / step) * step + off; t <= hi; t += step) out.push(t);
  return {ticks: out, step};
}

function timeLabel(ms, step) {
  const d = new Date(ms);
  const p = x => String(x).padStart(2, '0');
  if (step >= 86400e3) return `${d.getMonth() + 1}-${p(d.getDate())}`;
  if (step >= 60e3) return `${p(d.getHours())}:${p(d.getMinutes())}`;
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

// scale returns the plot's axes for items [{startMs, dur, spans}] in a
// box of W×H px with margins m.
export function scales(items, W, H, m) {
  const ts = items.map(i => i.startMs), ds = items.map(i => Math.max(1, i.dur));
  let t0 = Math.min(...ts), t1 = Math.max(...ts);
  if (t1 - t0 < 1000) {
    t0 -= 30e3;
    t1 += 30e3;
  } else {
    const pad = (t1 - t0) * 0.03;
    t0 -= pad;
    t1 += pad;
  }
  const dmin = Math.min(...ds), dmax = Math.max(...ds);
  const log = dmax / dmin > 100;
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const x = t => m.l + ((t - t0) / (t1 - t0)) * pw;
  let y, yTicks;
  if (log) {
    let lo10 = Math.log10(dmin), hi10 = Math.log10(dmax);
    const pad = (hi10 - lo10) * 0.08;
    lo10 -= pad;
    hi10 += pad;
    y = d => m.t + ph - ((Math.log10(Math.max(1, d)) - lo10) / (hi10 - lo10)) * ph;
    yTicks = logTicks(lo10, hi10);
  } else {
    const top = dmax * 1.1 || 1;
    y = d => m.t + ph - (d / top) * ph;
    yTicks = niceTicks(0, top, 3).filter(v => v <= top);
  }
  const sps = items.map(i => i.spans);
  const smin = Math.min(...sps), smax = Math.max(...sps);
  const r = sp => (smax > smin ? R_MIN + (R_MAX - R_MIN) * Math.sqrt((sp - smin) / (smax - smin)) : (R_MIN + R_MAX) / 2 - 1);
  return {x, y, r, log, t0, t1, yTicks, pw, ph};
}

// scatter draws items [{id, href, startMs, dur, spans, errors, root}] in a
// box width px wide. onHover(id) is called with the hovered or focused
// trace, onHover(null) when it is left. Returns {el, legend, highlight(id)}:
// legend is an element for the caller to place (null without items),
// highlight rings a trace's dot (null: none).
export function scatter({items, width, height = 150, onHover = () => {}}) {
  const W = Math.max(300, Math.floor(width)), H = height;
  const m = {l: 52, r: 14, t: 10, b: 22};
  const wrap = h('div', {class: 'scatter', testid: 'scatter'});
  const tip = h('div', {class: 'scatter-tip', testid: 'scatter-tip', hidden: true, role: 'tooltip'});
  const svg = s('svg', {class: 'chart scatter-svg', width: W, height: H, viewBox: `0 0 ${W} ${H}`, testid: 'scatter-svg', role: 'group', 'aria-label': 'Trace durations over time: one link per trace'});
  wrap.append(svg, tip);
  if (!items.length) return {el: wrap, legend: null, highlight() {}};
  const sc = scales(items, W, H, m);
  svg.dataset.scale = sc.log ? 'log' : 'linear';
  // The legend, for the caller to place: the marks, the size and the axis.
  const mark = (cls, shape) => s('svg', {width: 12, height: 12, viewBox: '0 0 12 12', class: 'lg-mark', 'aria-hidden': 'true'}, shape === 'circle' ? s('circle', {class: 'sc-mark ' + cls, cx: 6, cy: 6, r: 4}) : s('path', {class: 'sc-mark ' + cls, d: 'M6 1L11 6L6 11L1 6Z'}));
  const legend = h('div', {class: 'scatter-legend small dim', testid: 'scatter-legend'},
    h('span', null, mark('sc-ok', 'circle'), ' ok'), h('span', null, mark('sc-err', 'diamond'), ' errors'),
    h('span', null, 'size: spans'), h('span', {testid: 'scatter-scale'}, sc.log ? 'duration: log scale' : 'duration: linear'));

  const axis = s('g', {class: 'axis'});
  axis.append(s('line', {x1: m.l, x2: m.l + sc.pw, y1: m.t + sc.ph, y2: m.t + sc.ph}));
  const {ticks, step} = timeTicks(sc.t0, sc.t1, Math.max(2, Math.floor(sc.pw / 90)));
  for (const t of ticks) {
    const x = sc.x(t);
    axis.append(s('line', {x1: x, x2: x, y1: m.t + sc.ph, y2: m.t + sc.ph + 4}), s('text', {x, y: m.t + sc.ph + 16, 'text-anchor': 'middle'}, timeLabel(t, step)));
  }
  for (const v of sc.yTicks) {
    const y = sc.y(v);
    axis.append(s('line', {x1: m.l, x2: m.l + sc.pw, y1: y, y2: y, class: 'grid'}), s('text', {x: m.l - 6, y: y + 4, 'text-anchor': 'end'}, fmt.durShort(v)));
  }
  svg.append(axis);

  // Big dots first, so that small ones stay on top and reachable; traces
  // with errors last, above the others.
  const order = items.slice().sort((a, b) => (a.errors > 0) - (b.errors > 0) || b.spans - a.spans || a.startMs - b.startMs);
  const dots = s('g', {class: 'dots'});
  const byId = new Map();
  const show = (it, cx, cy) => {
    replace(tip,
      h('div', {class: 'tip-title'}, it.root),
      h('div', {class: 'tip-row'}, h('span', {class: 'dim'}, 'duration'), h('span', null, fmt.dur(it.dur))),
      h('div', {class: 'tip-row'}, h('span', {class: 'dim'}, 'spans'), h('span', null, fmt.count(it.spans))),
      h('div', {class: 'tip-row' + (it.errors > 0 ? ' err' : '')}, h('span', {class: 'dim'}, 'errors'), h('span', null, fmt.count(it.errors))),
      h('div', {class: 'tip-row'}, h('span', {class: 'dim'}, 'start'), h('span', null, fmt.time(it.startMs))));
    tip.hidden = false;
    const tw = tip.offsetWidth || 200;
    const left = cx + 14 + tw > W ? cx - 14 - tw : cx + 14;
    tip.style.left = Math.max(0, left) + 'px';
    tip.style.top = Math.max(0, Math.min(H - 40, cy - 20)) + 'px';
  };
  for (const it of order) {
    const cx = sc.x(it.startMs), cy = sc.y(it.dur), r = sc.r(it.spans);
    const err = it.errors > 0;
    const shape = err
      ? s('path', {class: 'sc-mark sc-err', d: `M${cx} ${cy - r * 1.3}L${cx + r * 1.3} ${cy}L${cx} ${cy + r * 1.3}L${cx - r * 1.3} ${cy}Z`})
      : s('circle', {class: 'sc-mark sc-ok', cx, cy, r});
    const label = `${it.root}: ${fmt.dur(it.dur)}, ${fmt.count(it.spans)} spans, ${fmt.count(it.errors)} errors`;
    const a = s('a', {href: it.href, class: 'sc-dot', testid: 'scatter-dot', 'aria-label': label, dataset: {traceId: it.id, error: err ? '1' : '0', cx: cx.toFixed(1), cy: cy.toFixed(1), r: r.toFixed(1)}}, shape);
    const enter = () => {
      show(it, cx, cy);
      onHover(it.id);
    };
    const leave = () => {
      tip.hidden = true;
      onHover(null);
    };
    a.addEventListener('mouseenter', enter);
    a.addEventListener('focus', enter);
    a.addEventListener('mouseleave', leave);
    a.addEventListener('blur', leave);
    byId.set(it.id, {cx, cy, r: err ? r * 1.3 : r});
    dots.append(a);
  }
  const ring = s('circle', {class: 'sc-ring', r: 0, cx: -20, cy: -20, visibility: 'hidden', testid: 'scatter-ring'});
  svg.append(dots, ring);
  return {
    el: wrap,
    legend,
    highlight(id) {
      const d = id && byId.get(id);
      ring.setAttribute('visibility', d ? 'visible' : 'hidden');
      ring.dataset.traceId = d ? id : '';
      if (!d) return;
      ring.setAttribute('cx', d.cx);
      ring.setAttribute('cy', d.cy);
      ring.setAttribute('r', d.r + 3);
    },
  };
}
