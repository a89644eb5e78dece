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
    order.push(s);
    s.children.sort(cmp);
    for (let i = s.children.length - 1; i >= 0; i--) stack.push([s.children[i], d + 1]);
  }
  for (const s of spans) s.self = selfTime(s);
  const total = spans.reduce((m, s) => Math.max(m, s.start + s.dur), 0);
  const t = {spans: order, roots, byId, total, startMs: spans.length ? Math.min(...spans.map(s => s.startMs)) : 0};
  t.critical = criticalPath(t);
  t.services = [...new Set(order.map(s => s.service))].sort();
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

const SERVICE_COLORS = ['#4ea1ff', '#3fb68b', '#e5a50a', '#b07cf7', '#2ec4c6', '#f08c3a', '#ff7ab2', '#8bd450', '#9aa5b4', '#d4b84a', '#5fa8d3', '#c97b63'];

export function serviceColor(name) {
  let x = 0;
  for (let i = 0; i < name.length; i++) x = (x * 31 + name.charCodeAt(i)) >>> 0;
  return SERVICE_COLORS[x % SERVICE_COLORS.length];
}
