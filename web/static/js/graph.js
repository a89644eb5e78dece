// FlowMap draws a flow graph (GET /api/v1/flowgraph: nodes and edges) on a
// canvas: pan (drag the background), zoom (wheel), drag nodes, hover
// tooltips, click to select, animated flow particles. Edge width grows with
// the request rate; colour shows the error rate, a second mark (a double
// line) a p99 above a threshold or the hour before's (see "Health marks");
// declared-only edges are dashed and observed-only ones
// highlighted. Node positions are kept by id in opts.positions, so
// refreshes and remounts keep the layout; only new nodes are placed.
// setAlerts marks the nodes and edges that active alerts name: a red ring
// or halo while firing, a fainter dashed one while pending. Synthetic
// checks' nodes ("synthetic:<check>", the prober's) are hexagons in their
// own colour inside a dashed outline. setStale(true) marks the graph as
// out of date (the collector cannot be reached): it is greyed out and its
// particles stop until fresh data arrives.
//
// Canvas keeps 300 nodes / 1,000 edges cheap: edges are batched into one
// path per style, the layout runs within a per-frame time budget and stops
// when its energy is spent, and labels are drawn only where they fit.
// Every label is canvas text: nothing here is parsed as markup.
import {h, replace} from './dom.js';
import * as fmt from './fmt.js';
import {place, Simulation, hash} from './layout.js';
import {Topology} from './groups.js';

const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const SEP = '->';

function cssColors(el) {
  const cs = getComputedStyle(el);
  const v = (name, dflt) => cs.getPropertyValue(name).trim() || dflt;
  return {
    ok: v('--map-ok', '#6b8fc7'),
    slow: v('--map-slow', '#d9a400'),
    warn: v('--map-warn', '#f08c3a'),
    err: v('--map-err', '#e5484d'),
    declared: v('--map-declared', '#8a94a3'),
    observedOnly: v('--map-observed-only', '#d05ce3'),
    violation: v('--map-violation', '#a371f7'),
    lint: v('--map-lint', '#e3b341'),
    node: v('--map-node', '#3d7be0'),
    nodeVirtual: v('--map-node-virtual', '#6d7785'),
    nodeStroke: v('--map-node-stroke', '#0d1117'),
    text: v('--text', '#d6dde6'),
    textDim: v('--text-dim', '#8b95a3'),
    select: v('--map-select', '#ffffff'),
    match: v('--map-match', '#ffd33d'),
    alert: v('--map-alert', '#ff3b4e'),
    alertPending: v('--map-alert-pending', '#f5a524'),
    synthetic: v('--map-synthetic', '#2ec4c6'),
    labelBg: v('--panel', '#161c24'),
  };
}

export function edgeKey(source, target) {
  return source + SEP + target;
}

// SYNTHETIC_PREFIX starts the id of a synthetic check's node.
export const SYNTHETIC_PREFIX = 'synthetic:';

// syntheticCheck returns the check of a synthetic node's id, else ''.
export function syntheticCheck(id) {
  return typeof id === 'string' && id.startsWith(SYNTHETIC_PREFIX) ? id.slice(SYNTHETIC_PREFIX.length) : '';
}

// Health marks: two independent channels. The colour of a node or an edge
// is its error rate (warn ≥ 1 %, err ≥ 5 %); a second mark, a double line
// (two rings round a node, a casing round an edge), says it is slow: its
// p99 is above the threshold (opts.thresholdMs) when one is set, else at
// least opts.slowRatio times its p99 over the previous hour (the baseline,
// setBaseline) and opts.slowMinMs more. Without a baseline (a new node or
// edge) only a threshold can flag it. A firing alert on an error signal
// gives the error colour, on a latency signal the slow mark.
export const SLOW_RATIO = 1.5;
export const SLOW_MIN_MS = 5;
export const ERROR_WARN = 0.01;
export const ERROR_ERR = 0.05;

// alertChannel is the mark an alert's signal drives: 'latency' (p50…p999,
// pNN.N, mean, synthetic_p99), 'error' (error_rate, synthetic_failure_rate)
// or '' (rate, count, …: only the alert's own ring or halo).
export function alertChannel(a) {
  const sig = String((a && a.signal) || '').toLowerCase();
  if (/^(synthetic_)?p\d/.test(sig) || sig === 'mean' || sig === 'synthetic_mean') return 'latency';
  if (/(^|_)(error|failure)_rate$/.test(sig) || sig === 'errors') return 'error';
  return '';
}

function distToSeg(px, py, x1, y1, x2, y2) {
  const dx = x2 - x1, dy = y2 - y1;
  const l2 = dx * dx + dy * dy;
  let t = l2 ? ((px - x1) * dx + (py - y1) * dy) / l2 : 0;
  t = Math.max(0, Math.min(1, t));
  return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy));
}

export class FlowMap {
  // opts: positions (Map id → saved position), thresholdMs, minRate,
  // particles, onSelect({type:'node'|'edge', ...} | null), onFocus(id),
  // testid, static (no refresh: layout still runs).
  constructor(container, opts = {}) {
    this.opts = Object.assign({thresholdMs: 0, minRate: 0, particles: true, positions: new Map(),
      slowRatio: SLOW_RATIO, slowMinMs: SLOW_MIN_MS, labels: [], unhealthyOnly: false}, opts);
    this.baseline = null;
    this.root = h('div', {class: 'flowmap', testid: opts.testid || 'flowmap'});
    this.canvas = h('canvas', {class: 'flowmap-canvas', testid: 'flowmap-canvas', role: 'img', 'aria-label': 'Flow graph'});
    this.tip = h('div', {class: 'flowmap-tip', hidden: true, testid: 'map-tooltip'});
    this.root.append(this.canvas, this.tip);
    container.appendChild(this.root);
    this.ctx = this.canvas.getContext('2d');
    this.colors = cssColors(this.root);
    this.nodes = new Map();
    this.nodeList = [];
    this.edges = [];
    this.edgeByKey = new Map();
    this.view = {k: 1, x: 0, y: 0};
    this.userView = false;
    this.sim = new Simulation();
    // Boxes (opts.group), filtered layouts and label placement: groups.js.
    this.topo = new Topology(this);
    this.focus = null;
    this.hover = null;
    this.selected = null;
    this.matches = new Set();
    this.alertList = [];
    this.alertMarks = {nodes: new Map(), edges: new Map()};
    this.W = 0;
    this.H = 0;
    this.dpr = 1;
    this.dirty = true;
    this.stats = {created: performance.now(), firstDataAt: 0, firstDrawAt: 0, draws: 0, drawTimes: [], updates: 0, lastDrawMs: 0, lastUpdateMs: 0, layoutMs: 0};
    this.frame = this.frame.bind(this);
    this.ro = new ResizeObserver(() => this.resize());
    this.ro.observe(this.root);
    this.resize();
    this.bindEvents();
    this.raf = requestAnimationFrame(this.frame);
    this.onScheme = () => {
      this.colors = cssColors(this.root);
      this.dirty = true;
    };
    this.mq = window.matchMedia('(prefers-color-scheme: light)');
    this.mq.addEventListener('change', this.onScheme);
    window.addEventListener('flowscope-theme', this.onScheme);
  }

  destroy() {
    this.destroyed = true;
    cancelAnimationFrame(this.raf);
    this.ro.disconnect();
    this.mq.removeEventListener('change', this.onScheme);
    window.removeEventListener('flowscope-theme', this.onScheme);
    this.savePositions();
    this.root.remove();
  }

  resize() {
    const r = this.root.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const W = Math.max(50, Math.floor(r.width)), H = Math.max(50, Math.floor(r.height));
    if (W === this.W && H === this.H && dpr === this.dpr) return;
    this.W = W;
    this.H = H;
    this.dpr = dpr;
    this.canvas.width = Math.floor(W * dpr);
    this.canvas.height = Math.floor(H * dpr);
    this.canvas.style.width = W + 'px';
    this.canvas.style.height = H + 'px';
    if (!this.userView) this.fit();
    this.dirty = true;
  }

  // setData merges a new graph, keeping the positions of known nodes.
  setData(g) {
    const t0 = performance.now();
    const next = new Map();
    const fresh = [];
    const get = (id, data) => {
      let n = next.get(id);
      if (n) return n;
      n = this.nodes.get(id);
      if (!n) {
        n = {id, x: 0, y: 0, vx: 0, vy: 0, placed: false, moving: false};
        const p = this.opts.positions.get(id);
        if (p) Object.assign(n, {x: p.x, y: p.y, homeX: p.homeX, homeY: p.homeY, pinned: p.pinned, placed: true});
        else fresh.push(n);
        n.synthetic = !!syntheticCheck(id);
      }
      n.data = data;
      next.set(id, n);
      return n;
    };
    for (const nd of g.nodes || []) get(nd.id, nd);
    const edges = [];
    const byKey = new Map();
    for (const ed of g.edges || []) {
      const s = next.get(ed.source) || get(ed.source, {id: ed.source, virtual: false});
      const t = next.get(ed.target) || get(ed.target, {id: ed.target, virtual: !!ed.virtual});
      const e = {key: edgeKey(ed.source, ed.target), s, t, data: ed};
      edges.push(e);
      byKey.set(e.key, e);
    }
    for (const e of edges) e.bidir = e.s !== e.t && byKey.has(edgeKey(e.t.id, e.s.id));
    this.nodes = next;
    this.nodeList = [...next.values()];
    this.edges = edges;
    this.edgeByKey = byKey;
    const plain = (g.edges || []).map(e => ({source: e.source, target: e.target}));
    // With boxes, groups.js lays the graph out when a node changes box.
    const boxed = this.topo.update(fresh);
    if (fresh.length && !boxed) {
      const lt = performance.now();
      place(fresh, plain, this.nodeList);
      for (const n of fresh) n.moving = true;
      this.stats.layoutMs += performance.now() - lt;
    }
    if (!boxed) this.sim.reset(this.nodeList, this.edges, fresh.length ? (fresh.length === this.nodeList.length ? 1 : 0.6) : 0);
    if (fresh.length && fresh.length === this.nodeList.length) {
      // A new graph: spend up to 60 ms on the layout before the first
      // frame, so that it appears nearly settled; frames finish the rest.
      const lt = performance.now();
      while (performance.now() - lt < 60 && this.sim.tick());
      this.stats.layoutMs += performance.now() - lt;
      // On a fast machine the layout can finish here, before any frame.
      if (!this.sim.running) this.layoutDone();
    }
    let maxRate = 0, maxNode = 0;
    for (const e of edges) maxRate = Math.max(maxRate, fmt.num(e.data.rate));
    for (const n of this.nodeList) maxNode = Math.max(maxNode, fmt.num(n.data.requestRate));
    this.maxRate = maxRate;
    this.maxNodeRate = maxNode;
    if (this.selected && !this.lookup(this.selected)) this.selected = null;
    this.markAlerts();
    this.computeVisible();
    if (!this.stats.firstDataAt) this.stats.firstDataAt = t0;
    this.stats.updates++;
    this.stats.lastUpdateMs = performance.now() - t0;
    if (!this.userView) this.fit();
    this.dirty = true;
  }

  lookup(sel) {
    if (!sel) return null;
    return sel.type === 'node' ? this.nodes.get(sel.id) : this.edgeByKey.get(edgeKey(sel.source, sel.target));
  }

  // setStale greys the graph out and stops its particles while it is out
  // of date (the last fetch failed); false restores it.
  setStale(stale) {
    stale = !!stale;
    if (stale === !!this.stale) return;
    this.stale = stale;
    this.root.classList.toggle('flowmap-stale', stale);
    if (stale) this.root.dataset.stale = 'true';
    else delete this.root.dataset.stale;
    this.dirty = true;
  }

  setOptions(o) {
    Object.assign(this.opts, o);
    this.refreshHealth();
    this.computeVisible();
    if (!this.userView) this.fit(); // a filter may have changed what is visible
    this.dirty = true;
  }

  // setFocus shows only the neighbourhood of id: up hops of callers and
  // down hops of callees. null shows everything.
  setFocus(f) {
    this.focus = f && f.id ? f : null;
    this.computeVisible();
    this.userView = false;
    this.fit();
    this.dirty = true;
  }

  // setAlerts takes the active alerts (GET /alerts) and marks what they
  // name on this graph: the node whose id is the alert's service label,
  // or the edge of its source and target labels. A node or an edge is
  // firing if any of its alerts is, else pending.
  // setLint marks the nodes and edges named by architecture lint findings
  // ({nodes: Map id → [rules], edges: Map edgeKey → [rules]}; null: none):
  // a "!" badge on nodes, a dotted outline on edges.
  setLint(marks) {
    this.lintMarks = marks || null;
    this.dirty = true;
  }

  setAlerts(alerts) {
    this.alertList = alerts || [];
    this.markAlerts();
    const sig = this.alertList.map(a => `${a.rule}\u0000${a.key}\u0000${a.state}`).join('\u0001');
    if (sig !== this.alertSig) {
      this.dirty = true;
      // Firing alerts count as unhealthy: the filter may change.
      if (this.opts.unhealthyOnly) {
        this.computeVisible();
        if (!this.userView) this.fit();
      }
    }
    this.alertSig = sig;
  }

  markAlerts() {
    const nodes = new Map(), edges = new Map();
    const add = (m, k, a) => {
      let x = m.get(k);
      if (!x) m.set(k, (x = {state: 'pending', alerts: []}));
      x.alerts.push(a);
      if (a.state === 'firing') x.state = 'firing';
    };
    for (const a of this.alertList) {
      const l = a.labels || {};
      if (l.source && l.target) {
        const k = edgeKey(l.source, l.target);
        if (this.edgeByKey.has(k)) add(edges, k, a);
      } else if (l.service && this.nodes.has(l.service)) {
        add(nodes, l.service, a);
      } else if (l.check && this.nodes.has(SYNTHETIC_PREFIX + l.check)) {
        add(nodes, SYNTHETIC_PREFIX + l.check, a);
      }
    }
    this.alertMarks = {nodes, edges};
    this.refreshHealth();
  }

  // setBaseline takes the flow graph of the hour before the range (null:
  // none): the p99 each node and edge is compared with.
  setBaseline(g) {
    if (!g) this.baseline = null;
    else {
      const nodes = new Map(), edges = new Map();
      for (const n of g.nodes || []) nodes.set(n.id, n.latency || {});
      for (const e of g.edges || []) edges.set(edgeKey(e.source, e.target), e.latency || {});
      this.baseline = {nodes, edges};
    }
    this.refreshHealth();
    this.computeVisible();
    if (!this.userView) this.fit(); // unhealthy only may show more or less
    this.dirty = true;
  }

  // health is the marks of a node's or an edge's data: errorLevel (0, 1
  // warn, 2 err), slow and why (slowReason: threshold, baseline or alert),
  // its p99 and the baseline's, and the channels of its firing alerts.
  health(d, base, mark) {
    const calls = fmt.num(d.calls);
    const er = d.errorRate != null ? fmt.num(d.errorRate) : calls ? fmt.num(d.errors) / calls : 0;
    let errorLevel = er >= ERROR_ERR ? 2 : er >= ERROR_WARN ? 1 : 0;
    const lat = d.latency || {};
    const p99 = fmt.known(lat.p99) ? fmt.num(lat.p99) : null; // unknown is never slow
    const b99 = base && fmt.known(base.p99) && fmt.num(base.p99) > 0 ? fmt.num(base.p99) : null;
    const th = this.thresholdNs();
    const ratio = Number(this.opts.slowRatio) || 0;
    let slow = false, slowReason = '';
    if (p99 != null) {
      if (th > 0) {
        if (p99 > th) [slow, slowReason] = [true, 'threshold'];
      } else if (ratio > 0 && b99 != null && p99 >= b99 * ratio && p99 - b99 >= (Number(this.opts.slowMinMs) || 0) * 1e6) {
        [slow, slowReason] = [true, 'baseline'];
      }
    }
    const alert = {error: false, latency: false};
    if (mark) {
      for (const a of mark.alerts) {
        if (a.state !== 'firing') continue;
        const ch = alertChannel(a);
        if (ch) alert[ch] = true;
      }
    }
    if (alert.error) errorLevel = 2;
    if (alert.latency && !slow) [slow, slowReason] = [true, 'alert'];
    return {errorLevel, errorRate: er, slow, slowReason, p99, baseline: b99, alert, firing: !!(mark && mark.state === 'firing')};
  }

  // refreshHealth recomputes the marks of every node and edge.
  refreshHealth() {
    const B = this.baseline;
    for (const n of this.nodeList) n.health = this.health(n.data, B ? B.nodes.get(n.id) : null, this.alertMarks.nodes.get(n.id));
    for (const e of this.edges) {
      e.health = e.data.declared === 'declared_only' ? null : this.health(e.data, B ? B.edges.get(e.key) : null, this.alertMarks.edges.get(e.key));
    }
    this.dirty = true;
  }

  // unhealthy reports whether a node or an edge has a mark: an error
  // colour, the slow mark, or a firing alert.
  unhealthy(x) {
    const hh = x.health;
    return !!hh && (hh.errorLevel > 0 || hh.slow || hh.firing);
  }

  // filterHealth (the last step of computeVisible) keeps, with
  // opts.unhealthyOnly, the unhealthy nodes and edges and the nodes at the
  // ends of those edges.
  filterHealth() {
    if (!this.opts.unhealthyOnly) return;
    const keep = new Set();
    for (const e of this.edges) {
      if (!e.visible) continue;
      if (this.unhealthy(e)) keep.add(e.s).add(e.t);
      else e.visible = false;
    }
    for (const n of this.nodeList) if (n.visible && !keep.has(n) && !this.unhealthy(n)) n.visible = false;
  }

  // marks lists the marked nodes and edges: [{type, id | source, target,
  // state, alerts}], firing first.
  marks() {
    const out = [];
    for (const [id, m] of this.alertMarks.nodes) out.push({type: 'node', id, state: m.state, alerts: m.alerts});
    for (const [k, m] of this.alertMarks.edges) {
      const e = this.edgeByKey.get(k);
      out.push({type: 'edge', source: e.s.id, target: e.t.id, state: m.state, alerts: m.alerts});
    }
    return out.sort((a, b) => (a.state === b.state ? 0 : a.state === 'firing' ? -1 : 1));
  }

  setMatches(ids) {
    this.matches = new Set(ids);
    this.dirty = true;
  }

  select(sel) {
    this.selected = sel;
    this.dirty = true;
  }

  computeVisible() {
    let vis = null;
    const f = this.focus;
    if (f && this.nodes.has(f.id)) {
      vis = new Set([f.id]);
      const walk = (hops, next) => {
        let frontier = [f.id];
        for (let i = 0; i < hops && frontier.length; i++) {
          const nf = [];
          for (const e of this.edges) {
            const [from, to] = next(e);
            if (frontier.includes(from) && !vis.has(to)) {
              vis.add(to);
              nf.push(to);
            }
          }
          frontier = nf;
        }
      };
      walk(f.down ?? 1, e => [e.s.id, e.t.id]);
      walk(f.up ?? 1, e => [e.t.id, e.s.id]);
    }
    for (const n of this.nodeList) n.visible = !vis || vis.has(n.id);
    const minRate = Number(this.opts.minRate) || 0;
    for (const e of this.edges) {
      const d = e.data;
      const belowRate = minRate > 0 && fmt.num(d.calls) > 0 && fmt.num(d.rate) < minRate;
      e.visible = e.s.visible && e.t.visible && !belowRate;
    }
    this.filterHealth();
    // The search filter, hiding the nodes a filter left without edges, and
    // the compact layout of what is left: groups.js.
    this.topo.afterVisible();
  }

  radius(n) {
    const r = fmt.num(n.data.requestRate);
    const rr = 6 + (this.maxNodeRate > 0 ? 9 * Math.sqrt(r / this.maxNodeRate) : 0);
    // A check's node serves no requests: big enough to show its shape.
    return n.synthetic ? Math.max(9, rr) : rr;
  }

  edgeWidth(e) {
    const r = fmt.num(e.data.rate);
    return 1 + (this.maxRate > 0 ? 7 * (r / this.maxRate) : 0);
  }

  thresholdNs() {
    return (Number(this.opts.thresholdMs) || 0) * 1e6;
  }

  // edgeColor is the error channel only: the slow mark is drawn apart.
  edgeColor(e) {
    const d = e.data, C = this.colors;
    if (d.declared === 'declared_only') return C.declared;
    const lv = e.health ? e.health.errorLevel : 0;
    return lv === 2 ? C.err : lv === 1 ? C.warn : C.ok;
  }

  nodeColor(n) {
    const d = n.data, C = this.colors;
    const lv = n.health ? n.health.errorLevel : 0;
    if (lv === 2) return C.err;
    if (lv === 1) return C.warn;
    return d.virtual ? C.nodeVirtual : n.synthetic ? C.synthetic : C.node;
  }

  geom(e) {
    const s = e.s, t = e.t;
    if (s === t) {
      const r = this.radius(s);
      return {loop: true, cx: s.x, cy: s.y - r - 9, rr: 9};
    }
    const dx = t.x - s.x, dy = t.y - s.y;
    const d = Math.hypot(dx, dy) || 1;
    const ux = dx / d, uy = dy / d;
    const off = e.bidir ? 5 : 0;
    const ox = -uy * off, oy = ux * off;
    const rs = this.radius(s), rt = this.radius(t);
    return {x1: s.x + ux * rs + ox, y1: s.y + uy * rs + oy, x2: t.x - ux * (rt + 2) + ox, y2: t.y - uy * (rt + 2) + oy, ux, uy};
  }

  // fit scales and centres the visible nodes into the canvas.
  fit() {
    // The box of every visible node, with its self-call loop above it
    // (coarse levels have many): a node is never cut at the canvas edge.
    const loops = new Set();
    for (const e of this.edges) if (e.visible && e.s === e.t) loops.add(e.s);
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const n of this.nodeList) {
      if (!n.visible) continue;
      const r = this.radius(n) + 8; // the alert ring
      x0 = Math.min(x0, n.x - r);
      y0 = Math.min(y0, n.y - Math.max(r, loops.has(n) ? this.radius(n) + 19 : 0));
      x1 = Math.max(x1, n.x + r);
      y1 = Math.max(y1, n.y + r);
    }
    if (!Number.isFinite(x0)) return;
    [x0, y0, x1, y1] = this.topo.extent([x0, y0, x1, y1]);
    const padL = 80, padR = 80, padT = 30, padB = this.opts.padBottom ?? 84;
    const bw = Math.max(1, x1 - x0), bh = Math.max(1, y1 - y0);
    const k = Math.max(0.03, Math.min((this.W - padL - padR) / bw, (this.H - padT - padB) / bh, 1.6));
    this.view.k = k;
    this.view.x = padL + (this.W - padL - padR - bw * k) / 2 - x0 * k;
    this.view.y = padT + (this.H - padT - padB - bh * k) / 2 - y0 * k;
    this.dirty = true;
  }

  resetView() {
    this.userView = false;
    this.fit();
  }

  // relayout forgets every position and lays the graph out again.
  relayout() {
    if (this.topo.relayout()) {
      this.computeVisible();
      return this.resetView();
    }
    for (const n of this.nodeList) {
      n.placed = false;
      n.pinned = false;
      n.homeX = undefined;
      n.homeY = undefined;
      this.opts.positions.delete(n.id);
    }
    place(this.nodeList, this.edges.map(e => ({source: e.s.id, target: e.t.id})), this.nodeList);
    for (const n of this.nodeList) n.moving = true;
    this.sim.alpha = 0;
    this.sim.reset(this.nodeList, this.edges, 1);
    this.computeVisible();
    this.resetView();
  }

  centerOn(id) {
    const n = this.nodes.get(id);
    if (!n) return;
    const k = Math.max(this.view.k, 0.9);
    this.view = {k, x: this.W / 2 - n.x * k, y: this.H / 2 - n.y * k};
    this.userView = true;
    this.dirty = true;
  }

  // centerOnEdge centres the view on the middle of an edge.
  centerOnEdge(source, target) {
    const e = this.edgeByKey.get(edgeKey(source, target));
    if (!e) return;
    const k = Math.max(this.view.k, 0.9);
    const mx = (e.s.x + e.t.x) / 2, my = (e.s.y + e.t.y) / 2;
    this.view = {k, x: this.W / 2 - mx * k, y: this.H / 2 - my * k};
    this.userView = true;
    this.dirty = true;
  }

  savePositions() {
    // Under a filter, the global layout (not the filtered one) is kept.
    for (const n of this.nodeList) {
      const p = this.topo.saved(n) || n;
      this.opts.positions.set(n.id, {x: p.x, y: p.y, homeX: p.homeX, homeY: p.homeY, pinned: p.pinned});
    }
  }

  toWorld(sx, sy) {
    return [(sx - this.view.x) / this.view.k, (sy - this.view.y) / this.view.k];
  }

  nodeAt(sx, sy) {
    const [wx, wy] = this.toWorld(sx, sy);
    const slack = 4 / this.view.k;
    let best = null, bd = Infinity;
    for (const n of this.nodeList) {
      if (!n.visible) continue;
      const d = Math.hypot(n.x - wx, n.y - wy);
      if (d <= this.radius(n) + slack && d < bd) {
        best = n;
        bd = d;
      }
    }
    return best;
  }

  edgeAt(sx, sy) {
    const [wx, wy] = this.toWorld(sx, sy);
    let best = null, bd = Infinity;
    for (const e of this.edges) {
      if (!e.visible) continue;
      const g = this.geom(e);
      const d = g.loop ? Math.abs(Math.hypot(wx - g.cx, wy - g.cy) - g.rr) : distToSeg(wx, wy, g.x1, g.y1, g.x2, g.y2);
      const tol = (Math.max(5, this.edgeWidth(e) / 2 + 3)) / this.view.k;
      if (d <= tol && d < bd) {
        best = e;
        bd = d;
      }
    }
    return best;
  }

  hitAt(sx, sy) {
    const n = this.nodeAt(sx, sy);
    if (n) return {type: 'node', id: n.id};
    const e = this.edgeAt(sx, sy);
    if (e) return {type: 'edge', source: e.s.id, target: e.t.id};
    return null;
  }

  bindEvents() {
    const c = this.canvas;
    let drag = null;
    const pos = ev => {
      const r = c.getBoundingClientRect();
      return [ev.clientX - r.left, ev.clientY - r.top];
    };
    c.addEventListener('pointerdown', ev => {
      if (ev.button !== 0) return;
      const [sx, sy] = pos(ev);
      const n = this.nodeAt(sx, sy);
      drag = {sx, sy, node: n, moved: false, vx: this.view.x, vy: this.view.y};
      c.setPointerCapture(ev.pointerId);
    });
    c.addEventListener('pointermove', ev => {
      const [sx, sy] = pos(ev);
      if (drag) {
        const dx = sx - drag.sx, dy = sy - drag.sy;
        if (!drag.moved && Math.hypot(dx, dy) < 4) return;
        drag.moved = true;
        this.hideTip();
        if (drag.node) {
          const [wx, wy] = this.toWorld(sx, sy);
          Object.assign(drag.node, {x: wx, y: wy, homeX: wx, homeY: drag.node.homeY != null ? wy : undefined, pinned: true, moving: false, vx: 0, vy: 0});
          this.topo.clamp(drag.node);
        } else {
          this.view.x = drag.vx + dx;
          this.view.y = drag.vy + dy;
          this.userView = true;
        }
        this.dirty = true;
        return;
      }
      this.hoverAt(sx, sy);
    });
    const end = ev => {
      if (!drag) return;
      const d = drag;
      drag = null;
      if (d.moved) {
        if (d.node) this.savePositions();
        return;
      }
      const [sx, sy] = pos(ev);
      const hit = this.hitAt(sx, sy);
      // A click on a box's name or header (over edges, not nodes)
      // collapses it.
      const box = (!hit || hit.type === 'edge') && this.opts.onToggleGroup ? this.topo.headerAt(...this.toWorld(sx, sy), sx, sy) : '';
      if (box) return this.opts.onToggleGroup(box);
      this.selected = hit;
      this.dirty = true;
      if (this.opts.onSelect) this.opts.onSelect(hit, this.lookup(hit));
    };
    c.addEventListener('pointerup', end);
    c.addEventListener('pointercancel', () => (drag = null));
    c.addEventListener('pointerleave', () => {
      this.hover = null;
      this.hideTip();
      this.dirty = true;
    });
    c.addEventListener('dblclick', ev => {
      const [sx, sy] = pos(ev);
      const n = this.nodeAt(sx, sy);
      if (n && this.opts.onFocus) this.opts.onFocus(n.id);
    });
    c.addEventListener('wheel', ev => {
      ev.preventDefault();
      const [sx, sy] = pos(ev);
      const f = Math.exp(-ev.deltaY * (ev.deltaMode ? 0.05 : 0.0015));
      this.zoomAt(sx, sy, f);
    }, {passive: false});
  }

  zoomAt(sx, sy, f) {
    const k = Math.max(0.03, Math.min(8, this.view.k * f));
    const [wx, wy] = this.toWorld(sx, sy);
    this.view.k = k;
    this.view.x = sx - wx * k;
    this.view.y = sy - wy * k;
    this.userView = true;
    this.dirty = true;
  }

  hoverAt(sx, sy) {
    const hit = this.hitAt(sx, sy);
    const same = (a, b) => (a && b ? a.type === b.type && a.id === b.id && a.source === b.source && a.target === b.target : a === b);
    if (!same(hit, this.hover)) {
      this.hover = hit;
      this.dirty = true;
    }
    if (!hit) return this.hideTip();
    this.showTip(hit, sx, sy);
  }

  hideTip() {
    this.tip.hidden = true;
  }

  showTip(hit, sx, sy) {
    const obj = this.lookup(hit);
    if (!obj) return this.hideTip();
    const d = obj.data, lat = d.latency || {};
    const row = (k, v) => h('div', {class: 'tip-row'}, h('span', {class: 'dim'}, k), h('span', null, v));
    const lines = [];
    if (hit.type === 'node') {
      lines.push(h('div', {class: 'tip-title'}, hit.id));
      if (d.virtual) lines.push(h('div', {class: 'dim'}, 'virtual (uninstrumented callee)'));
      if (obj.synthetic) lines.push(h('div', {class: 'dim', testid: 'tip-synthetic'}, 'synthetic check: the prober\'s runs'));
      if (d.declaredOnly) lines.push(h('div', {class: 'dim'}, 'declared only: no traffic observed'));
      if (d.group) lines.push(h('div', {class: 'dim', testid: 'tip-collapsed'}, `collapsed ${d.groupKind} box of ${d.members} nodes: rates summed; quantiles are the highest member's (an approximation)`));
      lines.push(row('requests', fmt.rate(d.requestRate)), row('errors', fmt.pct(d.errorRate)));
    } else {
      lines.push(h('div', {class: 'tip-title'}, hit.source, ' → ', hit.target));
      if (d.declared) lines.push(h('div', {class: 'dim'}, 'declared: ' + d.declared.replace('_', ' ')));
      if (d.aggregated) lines.push(h('div', {class: 'dim', testid: 'tip-aggregated'}, `${d.aggregated} edges of a collapsed box: rate, calls and errors summed; quantiles are the highest edge's (an approximation)`));
      lines.push(row('rate', fmt.rate(d.rate)), row('calls', fmt.count(d.calls)), row('errors', `${fmt.count(d.errors)} (${fmt.pct(d.errorRate)})`));
    }
    // A node's summary has no request count: a node with requests counts
    // as all timed, or as unknown when none is.
    const calls = hit.type === 'node' ? (fmt.num(d.requestRate) > 0 ? Math.max(1, fmt.num(lat.timedCalls)) : 0) : d.calls;
    const mark = hit.type === 'node' ? this.alertMarks.nodes.get(hit.id) : this.alertMarks.edges.get(edgeKey(hit.source, hit.target));
    if (mark) {
      for (const a of mark.alerts.slice(0, 6)) {
        lines.push(h('div', {class: 'tip-alert tip-alert-' + a.state, testid: 'tip-alert'}, a.state + ': ', h('span', {class: 'strong'}, a.rule), ` (${fmt.unitValue(a.value, a.unit)})`));
      }
      if (mark.alerts.length > 6) lines.push(h('div', {class: 'dim'}, `and ${mark.alerts.length - 6} more alerts`));
    }
    if (hit.type === 'edge' && (d.violations || []).length) {
      lines.push(h('div', {class: 'tip-violation', testid: 'tip-violation'}, 'violates: ', h('span', {class: 'strong'}, d.violations.join(', '))));
    }
    const lintRules = this.lintMarks && (hit.type === 'node' ? this.lintMarks.nodes.get(hit.id) : this.lintMarks.edges.get(edgeKey(hit.source, hit.target)));
    if (lintRules && lintRules.length) {
      lines.push(h('div', {class: 'tip-lint', testid: 'tip-lint'}, 'lint: ', h('span', {class: 'strong'}, lintRules.map(r => r.replace('_', ' ')).join(', '))));
    }
    const hh = obj.health;
    if (hh && hh.slow) {
      const why = hh.slowReason === 'threshold' ? `p99 ${fmt.dur(hh.p99)} > ${fmt.dur(this.thresholdNs())}`
        : hh.slowReason === 'baseline' ? `p99 ${fmt.dur(hh.p99)}, ${(hh.p99 / hh.baseline).toFixed(1)}× the hour before (${fmt.dur(hh.baseline)})`
          : 'a latency alert is firing';
      lines.push(h('div', {class: 'tip-slow', testid: 'tip-slow'}, 'slow: ', why));
    } else if (hh && hh.baseline != null && hh.p99 != null) {
      lines.push(row('hour before', 'p99 ' + fmt.dur(hh.baseline)));
    }
    const state = fmt.latencyState(lat, calls);
    if (state === 'unknown') {
      lines.push(h('div', {class: 'tip-row', testid: 'tip-latency-unknown'}, h('span', {class: 'dim'}, 'latency'), h('span', null, 'unknown')),
        h('div', {class: 'dim small'}, hit.type === 'node' ? 'no request has a measured duration' : 'no call has a measured duration (one-way messages)'));
    } else {
      lines.push(row('p50', fmt.dur(lat.p50)), row('p90', fmt.dur(lat.p90)), row('p99', fmt.dur(lat.p99)), row('p99.9', fmt.dur(lat.p999)));
      if (state === 'partial') lines.push(row('timed', `${fmt.count(lat.timedCalls)} of ${fmt.count(calls)} calls`));
    }
    replace(this.tip, lines);
    this.tip.hidden = false;
    const tw = this.tip.offsetWidth, th = this.tip.offsetHeight;
    const x = sx + 14 + tw > this.W ? sx - tw - 10 : sx + 14;
    const y = Math.min(Math.max(4, sy + 12), Math.max(4, this.H - th - 4));
    this.tip.style.left = x + 'px';
    this.tip.style.top = y + 'px';
  }

  frame(now) {
    if (this.destroyed) return;
    this.raf = requestAnimationFrame(this.frame);
    let moved = false;
    if (this.sim.running) {
      const t0 = performance.now();
      if (!this.stats.layoutRun) this.stats.layoutRun = {startAt: t0, frames: 0, ticks: 0};
      this.stats.layoutRun.frames++;
      while (performance.now() - t0 < 8 && this.sim.tick()) this.stats.layoutRun.ticks++;
      this.stats.layoutMs += performance.now() - t0;
      moved = true;
      if (!this.sim.running) this.layoutDone();
      if (!this.userView) this.fit();
    }
    const animate = this.opts.particles && this.maxRate > 0 && !document.hidden && !this.stale;
    this.animating = animate;
    if (this.dirty || moved || animate) this.draw(now);
  }

  // layoutDone records the end of a layout run (in a frame, or before
  // the first frame when the initial ticks finished it) and keeps the
  // positions.
  layoutDone() {
    this.savePositions();
    this.stats.layoutDoneAt = performance.now();
    const run = this.stats.layoutRun || {startAt: this.stats.layoutDoneAt, frames: 0, ticks: 0};
    this.stats.layoutRuns = (this.stats.layoutRuns || []).concat([Object.assign(run, {doneAt: this.stats.layoutDoneAt})]).slice(-10);
    this.stats.layoutRun = null;
  }

  highlight() {
    const sel = this.hover || this.selected;
    if (!sel) return null;
    const set = new Set();
    if (sel.type === 'node') {
      set.add(sel.id);
      for (const e of this.edges) if (e.s.id === sel.id || e.t.id === sel.id) set.add(e.key).add(e.s.id).add(e.t.id);
    } else {
      set.add(edgeKey(sel.source, sel.target)).add(sel.source).add(sel.target);
    }
    return set;
  }

  draw(now) {
    const t0 = performance.now();
    this.dirty = false;
    const {ctx, dpr, view} = this;
    const k = view.k;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, this.W, this.H);
    ctx.setTransform(dpr * k, 0, 0, dpr * k, dpr * view.x, dpr * view.y);
    const hl = this.highlight();
    const sel = this.selected;
    const selKey = sel && sel.type === 'edge' ? edgeKey(sel.source, sel.target) : null;

    // Boxes (groups), under everything else.
    this.topo.drawBoxes(ctx, k);
    const {groups, geoms, drawnEdges} = this.edgeStyles(hl);
    this.strokeEdges(groups);
    this.drawViolationBadges(geoms, hl);
    this.drawSelectedEdge(geoms, selKey);
    this.drawParticles(now, geoms, hl);
    const drawnNodes = this.drawNodes(hl);
    this.drawNodeMarks(hl, sel);
    // Labels and box names, in screen space, placed so that none overlaps
    // another (groups.js placeLabels): below, right, left or above the
    // node, else shortened, else left out (highlighted nodes first).
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.font = FONT;
    this.topo.drawLabels(ctx, hl);
    ctx.textBaseline = 'top';
    ctx.textAlign = 'center';
    ctx.globalAlpha = 1;
    this.drawEdgeLabels(geoms, hl);

    this.recordDraw(t0, drawnNodes, drawnEdges);
  }

  // edgeStyles groups the visible edges' strokes by style (colour, width,
  // dash, alpha, the marks' casings) so that each style is one path, and
  // returns the groups, each edge's geometry and how many were drawn.
  edgeStyles(hl) {
    const C = this.colors;
    const groups = new Map();
    const addTo = (key, style, fn) => {
      let g = groups.get(key);
      if (!g) groups.set(key, (g = Object.assign({items: []}, style)));
      g.items.push(fn);
    };
    let drawnEdges = 0;
    const geoms = new Map();
    for (const e of this.edges) {
      if (!e.visible) continue;
      drawnEdges++;
      const g = this.geom(e);
      geoms.set(e, g);
      const color = this.edgeColor(e);
      const w = Math.round(this.edgeWidth(e) * 2) / 2;
      const dim = hl && !hl.has(e.key);
      const dashed = e.data.declared === 'declared_only';
      const obs = e.data.declared === 'observed_only';
      if (obs) addTo('halo' + (dim ? 'd' : ''), {color: C.observedOnly, width: w + 5, alpha: dim ? 0.12 : 0.45, dash: false, arrows: false}, g);
      const al = this.alertMarks.edges.get(e.key);
      const slow = !!(e.health && e.health.slow);
      if (al) {
        const firing = al.state === 'firing';
        // Outside the slow mark's casing when there is one.
        addTo(`alert|${al.state}|${w}|${dim}|${slow}`, {color: firing ? C.alert : C.alertPending, width: w + (firing ? 8 : 5) + (slow ? 7 : 0), alpha: (dim ? 0.3 : 1) * (firing ? 0.6 : 0.45), dash: !firing, arrows: false}, g);
      }
      if (slow) {
        // The slow mark: a casing (two lines along the edge), a wide
        // stroke whose middle is then cut out.
        addTo(`slow|${w}|${dim}`, {color: C.slow, width: w + 7, alpha: dim ? 0.3 : 1, dash: false, arrows: false, z: 1}, g);
        addTo(`slowcut|${w}`, {color: '#000', width: w + 3, alpha: 1, dash: false, arrows: false, z: 2, cut: true}, g);
      }
      if (this.lintMarks && this.lintMarks.edges.has(e.key)) {
        addTo(`lint|${w}|${dim}`, {color: C.lint, width: w + 9, alpha: dim ? 0.2 : 0.55, dash: 'dot', arrows: false, z: 0}, g);
      }
      if (violated(e)) {
        // A flow policy violation: a dotted violet casing (colour stays the
        // error rate, the double line slowness), and a badge (below).
        addTo(`viol|${w}|${dim}`, {color: C.violation, width: w + 4, alpha: dim ? 0.3 : 0.95, dash: 'dot', arrows: false, z: 3}, g);
      }
      addTo(`${color}|${w}|${dashed}|${dim}`, {color, width: w, alpha: dim ? 0.15 : 0.85, dash: dashed, arrows: true}, g);
    }
    return {groups, geoms, drawnEdges};
  }

  // strokeEdges strokes the edge groups in order (marks under the edges,
  // arrows on top), with the arrow heads of the edges.
  strokeEdges(groups) {
    const {ctx} = this;
    const k = this.view.k;
    const order = [...groups.values()].sort((a, b) => (a.arrows - b.arrows) || ((a.z || 0) - (b.z || 0)) || (b.alpha < a.alpha ? 1 : -1));
    for (const g of order) {
      ctx.globalCompositeOperation = g.cut ? 'destination-out' : 'source-over';
      ctx.globalAlpha = g.alpha;
      ctx.strokeStyle = g.color;
      ctx.fillStyle = g.color;
      ctx.lineWidth = (g.width * Math.min(1, Math.sqrt(k))) / k;
      ctx.setLineDash(g.dash === 'dot' ? [2 / k, 3 / k] : g.dash ? [6 / k, 4 / k] : []);
      ctx.beginPath();
      for (const m of g.items) {
        if (m.loop) {
          ctx.moveTo(m.cx + m.rr, m.cy);
          ctx.arc(m.cx, m.cy, m.rr, 0, Math.PI * 2);
        } else {
          ctx.moveTo(m.x1, m.y1);
          ctx.lineTo(m.x2, m.y2);
        }
      }
      ctx.stroke();
      if (g.arrows) {
        ctx.setLineDash([]);
        const a = (5 + g.width) / k;
        ctx.beginPath();
        for (const m of g.items) {
          if (m.loop) continue;
          const bx = m.x2 - m.ux * a, by = m.y2 - m.uy * a;
          ctx.moveTo(m.x2, m.y2);
          ctx.lineTo(bx - m.uy * a * 0.45, by + m.ux * a * 0.45);
          ctx.lineTo(bx + m.uy * a * 0.45, by - m.ux * a * 0.45);
          ctx.closePath();
        }
        ctx.fill();
      }
    }
    ctx.globalCompositeOperation = 'source-over';
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
  }

  // drawViolationBadges draws the violation badge: a violet disc with a
  // bar ("no entry") at the middle of each violating edge.
  drawViolationBadges(geoms, hl) {
    const {ctx, colors: C} = this;
    const k = this.view.k;
    for (const [e, m] of geoms) {
      if (!violated(e) || m.loop) continue;
      const r = 6 / k, mx = (m.x1 + m.x2) / 2, my = (m.y1 + m.y2) / 2;
      ctx.globalAlpha = hl && !hl.has(e.key) ? 0.3 : 1;
      ctx.fillStyle = C.violation;
      ctx.beginPath();
      ctx.arc(mx, my, r, 0, Math.PI * 2);
      ctx.fill();
      ctx.fillStyle = '#ffffff';
      ctx.fillRect(mx - r * 0.6, my - r * 0.18, r * 1.2, r * 0.36);
    }
    ctx.globalAlpha = 1;
  }

  // drawSelectedEdge outlines the selected edge.
  drawSelectedEdge(geoms, selKey) {
    const {ctx, colors: C} = this;
    const k = this.view.k;
    if (selKey && this.edgeByKey.get(selKey) && geoms.has(this.edgeByKey.get(selKey))) {
      const m = geoms.get(this.edgeByKey.get(selKey));
      ctx.strokeStyle = C.select;
      ctx.lineWidth = 2 / k;
      ctx.setLineDash([4 / k, 3 / k]);
      ctx.beginPath();
      if (m.loop) ctx.arc(m.cx, m.cy, m.rr + 3 / k, 0, Math.PI * 2);
      else {
        ctx.moveTo(m.x1, m.y1);
        ctx.lineTo(m.x2, m.y2);
      }
      ctx.stroke();
      ctx.setLineDash([]);
    }

  }

  // drawParticles draws the flow particles: a few dots per edge, more and
  // faster with the rate.
  drawParticles(now, geoms, hl) {
    const {ctx} = this;
    const k = this.view.k;
    if (this.opts.particles && this.maxRate > 0 && !this.stale) {
      const t = now / 1000;
      const byColor = new Map();
      let budget = 2500;
      const sz = 2.6 / k;
      for (const [e, g] of geoms) {
        if (g.loop || budget <= 0) continue;
        const r = fmt.num(e.data.rate);
        if (r <= 0 || (hl && !hl.has(e.key))) continue;
        const rel = r / this.maxRate;
        const n = 1 + Math.floor(2 * Math.sqrt(rel));
        const len = Math.hypot(g.x2 - g.x1, g.y2 - g.y1) || 1;
        const speed = (40 + 80 * rel) / len;
        const ph = hash(e.key);
        const color = this.edgeColor(e);
        let list = byColor.get(color);
        if (!list) byColor.set(color, (list = []));
        for (let i = 0; i < n; i++) {
          const u = (t * speed + i / n + ph) % 1;
          list.push(g.x1 + (g.x2 - g.x1) * u, g.y1 + (g.y2 - g.y1) * u);
        }
        budget -= n;
      }
      for (const [color, pts] of byColor) {
        ctx.fillStyle = color;
        ctx.beginPath();
        for (let i = 0; i < pts.length; i += 2) ctx.rect(pts[i] - sz / 2, pts[i + 1] - sz / 2, sz, sz);
        ctx.fill();
      }
    }

  }

  // drawNodes draws the visible nodes, batched by look (colour, dimmed,
  // virtual diamond, synthetic hexagon, declared-only outline), and
  // returns how many were drawn.
  drawNodes(hl) {
    const {ctx, colors: C} = this;
    const k = this.view.k;
    let drawnNodes = 0;
    const nodeGroups = new Map();
    for (const n of this.nodeList) {
      if (!n.visible) continue;
      drawnNodes++;
      const c = n.data.declaredOnly ? 'declared' : this.nodeColor(n);
      const dim = hl && !hl.has(n.id);
      const synthetic = n.synthetic && !n.data.virtual;
      const key = c + (dim ? '|d' : '') + (n.data.virtual ? '|v' : '') + (synthetic ? '|s' : '');
      let g = nodeGroups.get(key);
      if (!g) nodeGroups.set(key, (g = {color: c, dim, virtual: !!n.data.virtual, synthetic, declared: c === 'declared', items: []}));
      g.items.push(n);
    }
    ctx.lineWidth = 1.5 / k;
    for (const g of nodeGroups.values()) {
      ctx.globalAlpha = g.dim ? 0.3 : 1;
      ctx.beginPath();
      for (const n of g.items) {
        const r = this.radius(n);
        if (g.virtual) {
          ctx.moveTo(n.x, n.y - r);
          ctx.lineTo(n.x + r, n.y);
          ctx.lineTo(n.x, n.y + r);
          ctx.lineTo(n.x - r, n.y);
          ctx.closePath();
        } else if (g.synthetic) {
          hexagon(ctx, n.x, n.y, r);
        } else {
          ctx.moveTo(n.x + r, n.y);
          ctx.arc(n.x, n.y, r, 0, Math.PI * 2);
        }
      }
      if (g.declared) {
        ctx.setLineDash([3 / k, 2 / k]);
        ctx.strokeStyle = C.declared;
        ctx.stroke();
        ctx.setLineDash([]);
      } else {
        ctx.fillStyle = g.color;
        ctx.fill();
        ctx.strokeStyle = C.nodeStroke;
        ctx.stroke();
      }
      if (g.synthetic) {
        // The dashed outline of synthetic nodes.
        ctx.beginPath();
        for (const n of g.items) hexagon(ctx, n.x, n.y, this.radius(n) + 3.5 / k);
        ctx.setLineDash([3 / k, 2.5 / k]);
        ctx.strokeStyle = C.synthetic;
        ctx.stroke();
        ctx.setLineDash([]);
      }
    }
    ctx.globalAlpha = 1;
    return drawnNodes;
  }

  // drawNodeMarks draws the marks round the nodes: slow arcs, alert
  // rings, lint badges, search matches, the selection and the focus.
  drawNodeMarks(hl, sel) {
    const {ctx, colors: C} = this;
    const k = this.view.k;
    const ring = (n, color, w) => {
      ctx.strokeStyle = color;
      ctx.lineWidth = w / k;
      ctx.beginPath();
      ctx.arc(n.x, n.y, this.radius(n) + 4 / k, 0, Math.PI * 2);
      ctx.stroke();
    };
    // The slow mark of a node: two arcs round it, open at the bottom
    // where its label is.
    ctx.strokeStyle = C.slow;
    ctx.lineWidth = 1.6 / k;
    for (const dimmed of [false, true]) {
      ctx.globalAlpha = dimmed ? 0.35 : 1;
      ctx.beginPath();
      for (const n of this.nodeList) {
        if (!n.visible || !n.health || !n.health.slow || (!!(hl && !hl.has(n.id))) !== dimmed) continue;
        for (const off of [3, 6]) {
          const rr = this.radius(n) + off / k;
          ctx.moveTo(n.x + rr * Math.cos(0.7 * Math.PI), n.y + rr * Math.sin(0.7 * Math.PI));
          ctx.arc(n.x, n.y, rr, 0.7 * Math.PI, 2.3 * Math.PI);
        }
      }
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    for (const [id, m] of this.alertMarks.nodes) {
      const n = this.nodes.get(id);
      if (!n || !n.visible) continue;
      const firing = m.state === 'firing';
      const out = n.health && n.health.slow ? 3 : 0;
      ctx.globalAlpha = hl && !hl.has(n.id) ? 0.4 : 1;
      ctx.strokeStyle = firing ? C.alert : C.alertPending;
      ctx.lineWidth = (firing ? 3 : 2) / k;
      ctx.setLineDash(firing ? [] : [4 / k, 3 / k]);
      ctx.beginPath();
      ctx.arc(n.x, n.y, this.radius(n) + (7 + out) / k, 0, Math.PI * 2);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    ctx.globalAlpha = 1;
    // Lint findings: a small "!" badge at the node's upper right.
    if (this.lintMarks) {
      for (const id of this.lintMarks.nodes.keys()) {
        const n = this.nodes.get(id);
        if (!n || !n.visible) continue;
        const r = 6 / k, rr = this.radius(n);
        const bx = n.x + rr * 0.8, by = n.y - rr * 0.8;
        ctx.globalAlpha = hl && !hl.has(n.id) ? 0.4 : 1;
        ctx.fillStyle = C.lint;
        ctx.beginPath();
        ctx.arc(bx, by, r, 0, Math.PI * 2);
        ctx.fill();
        ctx.fillStyle = '#000000';
        ctx.fillRect(bx - r * 0.14, by - r * 0.6, r * 0.28, r * 0.7);
        ctx.fillRect(bx - r * 0.14, by + r * 0.25, r * 0.28, r * 0.28);
      }
      ctx.globalAlpha = 1;
    }
    for (const id of this.matches) {
      const n = this.nodes.get(id);
      if (n && n.visible) ring(n, C.match, 2.5);
    }
    if (sel && sel.type === 'node' && this.nodes.get(sel.id)) ring(this.nodes.get(sel.id), C.select, 2);
    if (this.focus && this.nodes.get(this.focus.id)) ring(this.nodes.get(this.focus.id), C.match, 1.5);

  }

  // recordDraw records the draw's time and counts in this.stats.
  recordDraw(t0, drawnNodes, drawnEdges) {
    const dt = performance.now() - t0;
    const st = this.stats;
    st.draws++;
    st.lastDrawMs = dt;
    st.drawTimes.push(dt);
    if (st.drawTimes.length > 600) st.drawTimes.shift();
    st.drawnNodes = drawnNodes;
    st.drawnEdges = drawnEdges;
    if (!st.firstDrawAt && this.nodeList.length) {
      st.firstDrawAt = performance.now();
      st.firstDrawNodes = drawnNodes;
      st.firstDrawEdges = drawnEdges;
    }
  }

  // edgeLabelText is an edge's label: the parts of opts.labels (rate,
  // errors, p99) that it has.
  edgeLabelText(e) {
    const d = e.data, parts = [];
    for (const p of this.opts.labels || []) {
      if (p === 'rate') parts.push(fmt.rate(d.rate));
      else if (p === 'errors') parts.push(fmt.pct(e.health ? e.health.errorRate : d.errorRate) + ' err');
      else if (p === 'p99') parts.push('p99 ' + fmt.dur(d.latency && d.latency.p99));
    }
    return parts.join(' · ');
  }

  // drawEdgeLabels writes opts.labels on the visible edges, at their
  // midpoint (towards the source for one of a pair drawn side by side), on
  // a background. A label is left out when its edge is too short on the
  // screen to carry it, or when its box would overlap one already drawn:
  // unhealthy edges first, then by rate.
  drawEdgeLabels(geoms, hl) {
    const drawn = [];
    this.stats.edgeLabels = drawn;
    if (!(this.opts.labels || []).length || this.view.k < 0.25) return;
    const {ctx, view, colors: C} = this;
    const k = view.k;
    const list = [...geoms.keys()].sort((a, b) => (this.unhealthy(b) - this.unhealthy(a)) || fmt.num(b.data.rate) - fmt.num(a.data.rate));
    ctx.font = FONT;
    ctx.textAlign = 'left';
    ctx.textBaseline = 'middle';
    const padX = 4, H = 15;
    // Nodes and their names are obstacles too.
    const blocked = [];
    for (const n of this.nodeList) {
      if (!n.visible) continue;
      const sx = n.x * k + view.x, sy = n.y * k + view.y, r = this.radius(n) * k;
      if (sx < -200 || sx > this.W + 200 || sy < -50 || sy > this.H + 50) continue;
      const name = n.id.length > 36 ? n.id.slice(0, 35) + '…' : n.id;
      const hw = Math.max(r, ctx.measureText(name).width / 2);
      blocked.push({left: sx - hw, top: sy - r, right: sx + hw, bottom: sy + r + 16});
    }
    const hits = box => (o => box.left < o.right && o.left < box.right && box.top < o.bottom && o.top < box.bottom);
    for (const e of list) {
      const g = geoms.get(e);
      const text = this.edgeLabelText(e);
      if (!text) continue;
      // The midpoint (towards the source for one of a pair drawn side by
      // side), else a little off it.
      let cands;
      if (g.loop) cands = [[g.cx, g.cy - g.rr - 9 / k]];
      else {
        const len = Math.hypot(g.x2 - g.x1, g.y2 - g.y1) * k;
        if (len < 40) continue;
        cands = (e.bidir ? [0.4, 0.3, 0.55] : [0.5, 0.35, 0.65]).map(f => [g.x1 + (g.x2 - g.x1) * f, g.y1 + (g.y2 - g.y1) * f]);
      }
      const w = Math.ceil(ctx.measureText(text).width) + 2 * padX;
      let box = null, sy = 0;
      for (const [wx, wy] of cands) {
        const sx = wx * k + view.x;
        sy = wy * k + view.y;
        const bx = {left: sx - w / 2, top: sy - H / 2, right: sx + w / 2, bottom: sy + H / 2};
        if (bx.right < 0 || bx.left > this.W || bx.bottom < 0 || bx.top > this.H) continue;
        if (drawn.some(hits(bx)) || blocked.some(hits(bx))) continue;
        box = bx;
        break;
      }
      if (!box) continue;
      const dim = hl && !hl.has(e.key);
      ctx.globalAlpha = dim ? 0.35 : 0.88;
      ctx.fillStyle = C.labelBg;
      ctx.strokeStyle = this.edgeColor(e);
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.roundRect(box.left, box.top, w, H, 4);
      ctx.fill();
      ctx.stroke();
      ctx.globalAlpha = dim ? 0.45 : 1;
      ctx.fillStyle = C.text;
      ctx.fillText(text, box.left + padX, sy + 0.5);
      drawn.push(Object.assign({key: e.key, text}, box));
    }
    ctx.globalAlpha = 1;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
  }

  // Test and debugging hooks (read-only).

  state() {
    const st = this.stats;
    return {
      topology: this.topo.state(),
      nodes: this.nodeList.map(n => n.id),
      edges: this.edges.map(e => e.key),
      synthetic: this.nodeList.filter(n => n.synthetic).map(n => n.id),
      declared: Object.fromEntries(this.edges.filter(e => e.data.declared).map(e => [e.key, e.data.declared])),
      visibleNodes: this.nodeList.filter(n => n.visible).length,
      visibleEdges: this.edges.filter(e => e.visible).length,
      drawnNodes: st.drawnNodes || 0,
      drawnEdges: st.drawnEdges || 0,
      layoutRunning: this.sim.running,
      draws: st.draws,
      updates: st.updates,
      firstDrawAt: st.firstDrawAt,
      createdAt: st.created,
      firstDataAt: st.firstDataAt,
      firstRenderMs: st.firstDrawAt ? st.firstDrawAt - st.created : null,
      firstDrawNodes: st.firstDrawNodes || 0,
      firstDrawEdges: st.firstDrawEdges || 0,
      lastDrawMs: st.lastDrawMs,
      lastUpdateMs: st.lastUpdateMs,
      layoutMs: st.layoutMs,
      layoutDoneAt: st.layoutDoneAt || null,
      layoutRuns: st.layoutRuns || [],
      view: Object.assign({}, this.view),
      selected: this.selected,
      stale: !!this.stale,
      animating: !!this.animating,
      alerts: {
        nodes: Object.fromEntries([...this.alertMarks.nodes].map(([k, m]) => [k, m.state])),
        edges: Object.fromEntries([...this.alertMarks.edges].map(([k, m]) => [k, m.state])),
      },
      // The health marks: per node and edge {errorLevel, slow, slowReason,
      // p99, baseline (ns, null when none), alert}.
      health: {
        nodes: Object.fromEntries(this.nodeList.filter(n => n.health).map(n => [n.id, healthState(n.health)])),
        edges: Object.fromEntries(this.edges.filter(e => e.health).map(e => [e.key, healthState(e.health)])),
      },
      // The flow policies each edge violates (edges with violations only).
      violations: Object.fromEntries(this.edges.filter(violated).map(e => [e.key, e.data.violations.slice()])),
      // The lint findings marked: rules by node and by edge.
      lint: this.lintMarks ? {nodes: Object.fromEntries(this.lintMarks.nodes), edges: Object.fromEntries(this.lintMarks.edges)} : null,
      hasBaseline: !!this.baseline,
      visibleNodeIds: this.nodeList.filter(n => n.visible).map(n => n.id),
      visibleEdgeKeys: this.edges.filter(e => e.visible).map(e => e.key),
      edgeLabels: (st.edgeLabels || []).map(l => Object.assign({}, l)),
      healthOptions: {thresholdMs: Number(this.opts.thresholdMs) || 0, slowRatio: Number(this.opts.slowRatio) || 0, slowMinMs: Number(this.opts.slowMinMs) || 0,
        labels: (this.opts.labels || []).slice(), unhealthyOnly: !!this.opts.unhealthyOnly},
    };
  }

  // positions returns the layout (world coordinates) by node id.
  positions() {
    const out = {};
    for (const n of this.nodeList) out[n.id] = [Math.round(n.x * 100) / 100, Math.round(n.y * 100) / 100];
    return out;
  }

  drawTimes() {
    return this.stats.drawTimes.slice();
  }

  // screenPoint returns the page (client) coordinates of a node, or of the
  // point at frac along an edge.
  nodePoint(id) {
    const n = this.nodes.get(id);
    if (!n) return null;
    const r = this.canvas.getBoundingClientRect();
    return {x: r.left + n.x * this.view.k + this.view.x, y: r.top + n.y * this.view.k + this.view.y};
  }

  // nodeBox returns the page (client) box of what is drawn for a node:
  // its shape, the loop of its calls to itself above it, and the line of
  // its label below it.
  nodeBox(id) {
    const n = this.nodes.get(id);
    if (!n) return null;
    const p = this.nodePoint(id), r = this.radius(n) * this.view.k;
    const loop = this.edges.some(e => e.visible && e.s === n && e.t === n);
    return {left: p.x - r, top: p.y - (loop ? r + 18 * this.view.k : r), right: p.x + r, bottom: p.y + r + 3 + 13};
  }

  edgePoint(source, target, frac = 0.5) {
    const e = this.edgeByKey.get(edgeKey(source, target));
    if (!e) return null;
    const g = this.geom(e);
    const r = this.canvas.getBoundingClientRect();
    const wx = g.loop ? g.cx : g.x1 + (g.x2 - g.x1) * frac;
    const wy = g.loop ? g.cy - g.rr : g.y1 + (g.y2 - g.y1) * frac;
    return {x: r.left + wx * this.view.k + this.view.x, y: r.top + wy * this.view.k + this.view.y};
  }
}

function healthState(x) {
  return {errorLevel: x.errorLevel, slow: x.slow, slowReason: x.slowReason, p99: x.p99, baseline: x.baseline, alert: Object.assign({}, x.alert), firing: x.firing};
}

// hexagon adds a hexagon (points left and right) of circumradius r to the
// current path.
// violated reports whether edge e violates a flow policy.
function violated(e) {
  return !!(e.data && e.data.violations && e.data.violations.length);
}

function hexagon(ctx, x, y, r) {
  ctx.moveTo(x + r, y);
  for (let i = 1; i < 6; i++) {
    const a = (i * Math.PI) / 3;
    ctx.lineTo(x + r * Math.cos(a), y + r * Math.sin(a));
  }
  ctx.closePath();
}
