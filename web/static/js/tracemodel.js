// The trace model: OTLP/JSON (GET /api/v1/traces/{id}) flattened into spans
// with their service, tree, self time and critical path, and the trace's
// own service graph.
import * as fmt from './fmt.js';

export const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];

// anyValue renders an OTLP AnyValue as text.
export function anyValue(v) {
  if (v == null) return '';
  if ('stringValue' in v) return String(v.stringValue);
  if ('intValue' in v) return String(v.intValue);
  if ('doubleValue' in v) return String(v.doubleValue);
  if ('boolValue' in v) return String(v.boolValue);
  if ('bytesValue' in v) return 'base64:' + v.bytesValue;
  if ('arrayValue' in v) return '[' + ((v.arrayValue && v.arrayValue.values) || []).map(anyValue).join(', ') + ']';
  if ('kvlistValue' in v) return '{' + ((v.kvlistValue && v.kvlistValue.values) || []).map(kv => kv.key + '=' + anyValue(kv.value)).join(', ') + '}';
  return '';
}

export function attrs(list) {
  return (list || []).map(kv => [kv.key, anyValue(kv.value)]);
}

export function attr(list, key) {
  const kv = (list || []).find(x => x.key === key);
  return kv ? anyValue(kv.value) : '';
}

const big = x => {
  try {
    return BigInt(x || 0);
  } catch {
    return 0n;
  }
};

// parse flattens a TracesData document. Times are kept as offsets in
// nanoseconds from the earliest span (exact: computed with BigInt).
export function parse(doc) {
  const raw = [];
  for (const rs of doc.resourceSpans || []) {
    const res = (rs.resource && rs.resource.attributes) || [];
    const service = attr(res, 'service.name') || 'unknown';
    for (const ss of rs.scopeSpans || []) {
      for (const sp of ss.spans || []) raw.push({sp, res, scope: ss.scope || {}, service});
    }
  }
  let base = null;
  for (const r of raw) {
    const st = big(r.sp.startTimeUnixNano);
    if (base === null || st < base) base = st;
  }
  const spans = raw.map(({sp, res, scope, service}) => {
    const st = big(sp.startTimeUnixNano), en = big(sp.endTimeUnixNano);
    return {
      id: sp.spanId || '',
      parent: sp.parentSpanId || '',
      traceId: sp.traceId || '',
      name: sp.name || '',
      kind: KINDS[fmt.num(sp.kind)] || String(sp.kind),
      service,
      start: Number(st - base),
      dur: Math.max(0, Number(en - st)),
      startMs: fmt.nsToMs(sp.startTimeUnixNano),
      error: sp.status && fmt.num(sp.status.code) === 2,
      status: sp.status || {},
      attributes: attrs(sp.attributes),
      events: (sp.events || []).map(e => ({name: e.name || '', offset: Number(big(e.timeUnixNano) - st), attributes: attrs(e.attributes)})),
      links: (sp.links || []).map(l => ({traceId: l.traceId || '', spanId: l.spanId || '', attributes: attrs(l.attributes)})),
      resource: attrs(res),
      scope: [scope.name, scope.version].filter(Boolean).join(' '),
      traceState: sp.traceState || '',
      children: [],
      depth: 0,
    };
  });
  const byId = new Map(spans.map(s => [s.id, s]));
  const roots = [];
  for (const s of spans) {
    const p = s.parent && byId.get(s.parent);
    if (p && p !== s) p.children.push(s);
    else roots.push(s);
  }
  const cmp = (a, b) => a.start - b.start || (a.id < b.id ? -1 : 1);
  roots.sort(cmp);
  const order = [];
  const seen = new Set();
  const stack = roots.slice().reverse().map(s => [s, 0]);
  while (stack.length) {
    const [s, d] = stack.pop();
    if (seen.has(s)) continue;
    seen.add(s);
    s.depth = d;
    s.index = order.length;
    order.push(s);
    s.children.sort(cmp);
    for (let i = s.children.length - 1; i >= 0; i--) stack.push([s.children[i], d + 1]);
  }
  for (let i = order.length - 1; i >= 0; i--) {
    const s = order[i];
    s.end = s.children.reduce((m, c) => (seen.has(c) && c.index > s.index ? Math.max(m, c.end) : m), i + 1);
  }
  for (const s of spans) s.self = selfTime(s);
  const total = spans.reduce((m, s) => Math.max(m, s.start + s.dur), 0);
  const t = {spans: order, roots, byId, total, startMs: spans.length ? Math.min(...spans.map(s => s.startMs)) : 0};
  t.critical = criticalPath(t);
  t.services = [...new Set(order.map(s => s.service))].sort();
  t.maxDepth = order.reduce((m, s) => Math.max(m, s.depth), 0);
  t.errors = spans.filter(s => s.error).length;
  return t;
}

// selfTime is the part of a span's duration not covered by its children.
export function selfTime(s) {
  const iv = s.children.map(c => [Math.max(c.start, s.start), Math.min(c.start + c.dur, s.start + s.dur)]).filter(x => x[1] > x[0]).sort((a, b) => a[0] - b[0]);
  let covered = 0, cs = -1, ce = -1;
  for (const [a, b] of iv) {
    if (a > ce) {
      if (ce > cs) covered += ce - cs;
      cs = a;
      ce = b;
    } else ce = Math.max(ce, b);
  }
  if (ce > cs) covered += ce - cs;
  return Math.max(0, s.dur - covered);
}

// criticalPath returns the set of span ids on the critical path: from the
// longest root, repeatedly the child that finished last before the point
// reached so far.
export function criticalPath(t) {
  const out = new Set();
  if (!t.roots.length) return out;
  const root = t.roots.reduce((a, b) => (b.dur > a.dur ? b : a));
  const visit = (s, depth) => {
    out.add(s.id);
    if (depth > 500) return;
    let point = s.start + s.dur;
    const kids = s.children.slice().sort((a, b) => b.start + b.dur - (a.start + a.dur));
    for (const c of kids) {
      if (c.start >= point) continue;
      visit(c, depth + 1);
      point = c.start;
    }
  };
  visit(root, 0);
  return out;
}

// graph is the trace's service graph: an edge parent service → child
// service for every span whose parent is in another service.
export function graph(t) {
  const nodes = new Map(), edges = new Map();
  for (const s of t.spans) {
    if (!nodes.has(s.service)) nodes.set(s.service, {id: s.service, requestRate: 0, errorRate: 0, spans: 0, errs: 0, durs: []});
    const n = nodes.get(s.service);
    n.spans++;
    if (s.error) n.errs++;
    const p = s.parent && t.byId.get(s.parent);
    if (p && p.service !== s.service) {
      const k = p.service + '\u0000' + s.service;
      if (!edges.has(k)) edges.set(k, {source: p.service, target: s.service, calls: 0, errors: 0, durs: []});
      const e = edges.get(k);
      e.calls++;
      if (s.error) e.errors++;
      e.durs.push(s.dur);
      n.requestRate++;
      n.durs.push(s.dur);
    }
  }
  const lat = d => {
    const v = d.slice().sort((a, b) => a - b);
    const q = x => (v.length ? v[Math.min(v.length - 1, Math.ceil(x * v.length) - 1)] : 0);
    return {p50: q(0.5), p90: q(0.9), p99: q(0.99), p999: q(0.999)};
  };
  return {
    nodes: [...nodes.values()].map(n => ({id: n.id, requestRate: n.requestRate || n.spans, errorRate: n.spans ? n.errs / n.spans : 0, latency: lat(n.durs)})),
    edges: [...edges.values()].map(e => ({source: e.source, target: e.target, calls: e.calls, errors: e.errors, rate: e.calls, errorRate: e.errors / e.calls, latency: lat(e.durs)})),
  };
}

// PALETTE holds 16 service colours of well-separated hues, chosen by
// farthest-point selection in CIELAB (minimum pairwise CIEDE2000 ΔE 18.8;
// web/uitest/traceview_test.go checks it stays ≥ 15), each at least
// 12.8 ΔE from the error red. The order matters: any prefix of it is as
// spread out as the greedy choice allows, and a trace's services take
// colours in order of first appearance, so that a trace with up to 16
// services never shows one colour twice.
export const PALETTE = ['#4e8ff0', '#a2e619', '#e69019', '#b125b1', '#3eeaea', '#de9cb7', '#36a16b', '#a15936',
  '#decd9c', '#3698a1', '#4055bf', '#c1154f', '#b488f2', '#f2a288', '#a18f36', '#3eeaa2'];

// serviceColor is a colour for a service seen outside any one trace (the
// search results, the correlation timeline): a hash into PALETTE.
export function serviceColor(name) {
  let x = 0;
  for (let i = 0; i < name.length; i++) x = (x * 31 + name.charCodeAt(i)) >>> 0;
  return PALETTE[x % PALETTE.length];
}

// colors assigns PALETTE colours to a trace's services in order of first
// appearance (depth-first, as the waterfall lists them); after 16 services
// the palette repeats.
export function colors(t) {
  const m = new Map();
  for (const s of t.spans) if (!m.has(s.service)) m.set(s.service, PALETTE[m.size % PALETTE.length]);
  return m;
}

function channel(c) {
  c /= 255;
  return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
}

// luminance is the WCAG relative luminance of a #rrggbb colour.
export function luminance(hex) {
  const n = parseInt(hex.slice(1), 16);
  return 0.2126 * channel((n >> 16) & 255) + 0.7152 * channel((n >> 8) & 255) + 0.0722 * channel(n & 255);
}

// contrast is the WCAG contrast ratio of two #rrggbb colours.
export function contrast(a, b) {
  const x = luminance(a), y = luminance(b);
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}

// textOn picks black or white, whichever contrasts more with the
// background (at least 4.58:1 for any colour).
export function textOn(bg) {
  return contrast(bg, '#000000') >= contrast(bg, '#ffffff') ? '#000000' : '#ffffff';
}

// visible lists the spans the waterfall shows when the spans in collapsed
// are folded: depth-first, without the descendants of a folded span.
export function visible(t, collapsed) {
  const out = [];
  for (let i = 0; i < t.spans.length;) {
    const s = t.spans[i];
    out.push(s);
    i = collapsed.size && collapsed.has(s.id) && s.children.length ? s.end : i + 1;
  }
  return out;
}

// foldDepth returns the spans to fold so that n levels show (the roots are
// level 1).
export function foldDepth(t, n) {
  return t.spans.filter(s => s.depth === n - 1 && s.children.length).map(s => s.id);
}

// foldEntries returns the spans entered into from another service (the
// parent is in another service) that have children: folding them shows
// each service's part of the trace as one row per entry.
export function foldEntries(t) {
  return t.spans.filter(s => {
    const p = s.parent && t.byId.get(s.parent);
    return p && p.service !== s.service && s.children.length;
  }).map(s => s.id);
}

// foldService returns the spans of one service that have children.
export function foldService(t, service) {
  return t.spans.filter(s => s.service === service && s.children.length).map(s => s.id);
}

// ticks returns about n round time values (1, 2, 5 × 10^k) in [a, b].
export function ticks(a, b, n) {
  const span = b - a;
  if (!(span > 0)) return [a];
  const raw = span / Math.max(1, n);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map(m => m * p).find(x => x >= raw) || 10 * p;
  const out = [];
  for (let v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) out.push(v);
  return out;
}
