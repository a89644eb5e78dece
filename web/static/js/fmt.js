// Number, duration, rate and time formatting. API durations are nanoseconds;
// 64-bit integers may arrive as JSON strings.

export function num(x) {
  if (x == null || x === '') return 0;
  if (typeof x === 'number') return x;
  if (x === 'Infinity') return Infinity;
  if (x === '-Infinity') return -Infinity;
  const n = Number(x);
  return Number.isNaN(n) ? 0 : n;
}

function sig(x, digits = 3) {
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(digits >= 3 ? 1 : 0);
  return x.toFixed(digits - 1);
}

// UNKNOWN stands for a value the API answers as null: a latency of calls
// none of which has a measured duration (one-way messages), or of none.
export const UNKNOWN = '–';

// known reports whether an API value is present (not null or missing).
export function known(x) {
  return x != null && x !== '';
}

// dur formats nanoseconds: 950 ns, 12.3 µs, 4.57 ms, 1.20 s, 2.5 min; a
// null value (unknown) as UNKNOWN, never as 0 ns.
export function dur(ns) {
  if (!known(ns)) return UNKNOWN;
  ns = num(ns);
  if (!Number.isFinite(ns)) return ns > 0 ? '∞' : '-∞';
  const a = Math.abs(ns);
  if (a < 1e3) return sig(ns) + ' ns';
  if (a < 1e6) return sig(ns / 1e3) + ' µs';
  if (a < 1e9) return sig(ns / 1e6) + ' ms';
  if (a < 120e9) return sig(ns / 1e9) + ' s';
  if (a < 7200e9) return sig(ns / 60e9) + ' min';
  return sig(ns / 3600e9) + ' h';
}

// durShort formats axis ticks: 1ms, 20µs, 2s.
export function durShort(ns) {
  const a = Math.abs(ns);
  const t = (v, u) => (Math.round(v * 100) / 100) + u;
  if (a < 1e3) return t(ns, 'ns');
  if (a < 1e6) return t(ns / 1e3, 'µs');
  if (a < 1e9) return t(ns / 1e6, 'ms');
  return t(ns / 1e9, 's');
}

export function rate(r) {
  r = num(r);
  if (r === 0) return '0/s';
  if (r >= 100) return r.toFixed(0) + '/s';
  if (r >= 1) return r.toFixed(1) + '/s';
  return r.toPrecision(2) + '/s';
}

export function pct(x) {
  x = num(x) * 100;
  if (x === 0) return '0 %';
  if (x >= 10) return x.toFixed(0) + ' %';
  if (x >= 0.1) return x.toFixed(1) + ' %';
  return x.toPrecision(1) + ' %';
}

export function count(n) {
  n = num(n);
  if (Math.abs(n) < 1e4) return String(Math.round(n * 100) / 100);
  if (Math.abs(n) < 1e6) return (n / 1e3).toFixed(1) + 'k';
  if (Math.abs(n) < 1e9) return (n / 1e6).toFixed(1) + 'M';
  return (n / 1e9).toFixed(1) + 'G';
}

export function bytes(n) {
  n = num(n);
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return (i === 0 ? n : n.toFixed(1)) + ' ' + u[i];
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

// time formats Unix milliseconds as local date and time.
export function time(ms) {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function clock(ms) {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

// nsTime converts Unix nanoseconds (string or number) to milliseconds.
export function nsToMs(ns) {
  if (typeof ns === 'string' && ns.length > 6) {
    return Number(ns.slice(0, -6)) + Number(ns.slice(-6)) / 1e6;
  }
  return num(ns) / 1e6;
}

// parseDuration reads a Go-style duration (250us, 1.5s, 2m) into nanoseconds; NaN if invalid.
export function parseDuration(s) {
  const m = /^\s*([0-9]*\.?[0-9]+)\s*(ns|us|µs|ms|s|m|h)\s*$/.exec(s || '');
  if (!m) return NaN;
  const f = {ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9}[m[2]];
  return Number(m[1]) * f;
}

// latencyState describes the latency summary of an edge or a node
// (p50…p999 and timedCalls) against its calls: 'none' without calls,
// 'unknown' when none of them has a duration, 'partial' when only some
// have, else 'known'.
export function latencyState(lat, calls) {
  const timed = num(lat && lat.timedCalls);
  calls = num(calls);
  if (lat && known(lat.p50) && timed > 0) return calls > timed ? 'partial' : 'known';
  return calls > 0 ? 'unknown' : 'none';
}

// compareDesc orders API values largest first, unknown (null) values last
// whatever the direction: an unknown latency is not the fastest.
export function compareDesc(a, b) {
  if (!known(a) || !known(b)) return known(a) ? -1 : known(b) ? 1 : 0;
  return num(b) - num(a);
}

export function quantileLabel(q) {
  q = num(q);
  return 'p' + String(Math.round(q * 1e4) / 100);
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) + '…' : '';
}

// unitValue formats a value in the unit of an alert rule (GET /rules,
// /alerts): ns (a duration), fraction (a percentage), per_second or count.
export function unitValue(v, unit) {
  if (!known(v)) return UNKNOWN;
  switch (unit) {
    case 'ns':
      return dur(v);
    case 'fraction':
      return pct(v);
    case 'per_second':
      return rate(v);
    default:
      return count(v);
  }
}

// unitTick is the axis tick format of a unit (see unitValue).
export function unitTick(unit) {
  return {ns: durShort, fraction: pct, per_second: rate}[unit] || count;
}

// age formats a span of milliseconds coarsely: 45s, 3m 12s, 2h 5m, 3d 4h.
export function age(ms) {
  if (!Number.isFinite(ms)) return UNKNOWN;
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return s + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

// parseTime reads an RFC 3339 time of the API into Unix milliseconds; NaN
// for "" (not set).
export function parseTime(s) {
  return s ? Date.parse(s) : NaN;
}
