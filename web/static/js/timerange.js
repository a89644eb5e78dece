// Time ranges: "last 1m/5m/15m/1h/6h/24h" (live: recomputed on every refresh)
// or a custom from/to. Kept in the route's query as range=15m or
// range=custom&from=<unix ms>&to=<unix ms>.
import {h, field, select} from './dom.js';

export const RANGES = [
  {value: '1m', label: 'Last minute', ms: 60e3},
  {value: '5m', label: 'Last 5 minutes', ms: 5 * 60e3},
  {value: '15m', label: 'Last 15 minutes', ms: 15 * 60e3},
  {value: '1h', label: 'Last hour', ms: 3600e3},
  {value: '6h', label: 'Last 6 hours', ms: 6 * 3600e3},
  {value: '24h', label: 'Last 24 hours', ms: 24 * 3600e3},
  {value: 'custom', label: 'Custom…'},
];

// resolve returns {start, end} (Unix ms), live (relative range) and ms (length).
export function resolve(params, fallback = '15m') {
  const r = params.get('range') || fallback;
  if (r === 'custom') {
    const now = Date.now();
    const from = Number(params.get('from')) || now - 15 * 60e3;
    const to = Number(params.get('to')) || now;
    return {start: Math.min(from, to), end: Math.max(from, to), live: false, ms: Math.abs(to - from), range: r};
  }
  const def = RANGES.find(x => x.value === r && x.ms) || RANGES.find(x => x.value === '15m');
  const end = Date.now();
  return {start: end - def.ms, end, live: true, ms: def.ms, range: def.value};
}

// apiParams turns a resolved range into the API's start/end.
export function apiParams(tr) {
  return {start: Math.floor(tr.start), end: Math.ceil(tr.end)};
}

const toLocal = ms => {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60e3);
  return d.toISOString().slice(0, 16);
};

// picker builds the range control; onChange receives the updated params
// (range, from, to) to merge into the route.
export function picker(params, onChange, fallback = '15m') {
  const cur = params.get('range') || fallback;
  const sel = select(RANGES, cur, {testid: 'range-select', title: 'Time range'});
  const tr = resolve(params, fallback);
  const from = h('input', {type: 'datetime-local', value: toLocal(tr.start), testid: 'range-from'});
  const to = h('input', {type: 'datetime-local', value: toLocal(tr.end), testid: 'range-to'});
  const custom = h('span', {class: 'range-custom', hidden: cur !== 'custom'}, from, h('span', {class: 'dim'}, '→'), to);
  const emit = () => {
    if (sel.value === 'custom') {
      const f = new Date(from.value).getTime(), t = new Date(to.value).getTime();
      if (!Number.isFinite(f) || !Number.isFinite(t)) return;
      onChange({range: 'custom', from: String(f), to: String(t)});
    } else {
      onChange({range: sel.value, from: '', to: ''});
    }
  };
  sel.addEventListener('change', () => {
    custom.hidden = sel.value !== 'custom';
    emit();
  });
  from.addEventListener('change', emit);
  to.addEventListener('change', emit);
  return field('Range', h('span', {class: 'range'}, sel, custom));
}

// stepFor picks a latency series step (a multiple of 10s) giving about n points.
export function stepFor(ms, n = 40) {
  const s = Math.max(10, Math.ceil(ms / 1000 / n / 10) * 10);
  const nice = [10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  const v = nice.find(x => x >= s) || Math.ceil(s / 86400) * 86400;
  return v % 60 === 0 ? v / 60 + 'm' : v + 's';
}
