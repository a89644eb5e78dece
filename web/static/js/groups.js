// Grouping of the service map into compound boxes (namespace → service →
// instance, as Kiali's namespace and app boxes), collapsing a box into one
// node with the aggregated edges of its members, and the label collision
// pass that keeps node labels and box names from overlapping.
//
// A flow-graph node belongs to the box of its service when it has a
// `service` member (instance level), and that box, or the node itself
// when it has no service, to the box of its `namespace`. Nodes without
// either (virtual nodes, services without a namespace) are in no box.
// Nothing here is markup: names are only ever drawn as canvas text.
import * as fmt from './fmt.js';
import {place, boxLayout, DX, DY, hash} from './layout.js';

export const NS = 'ns:';
export const SVC = 'svc:';

// nsOf and serviceOf read a flow-graph node's membership.
const nsOf = d => (d && typeof d.namespace === 'string' ? d.namespace : '');
const serviceOf = d => (d && typeof d.service === 'string' ? d.service : '');

// shortName is a service ID without its "namespace/" prefix.
export function shortName(id, ns) {
  return ns && id.startsWith(ns + '/') ? id.slice(ns.length + 1) : id;
}

// hasGroups reports whether a graph has anything to group.
export function hasGroups(g) {
  return (g.nodes || []).some(n => nsOf(n) || serviceOf(n));
}

// groupList lists the boxes of a graph (API nodes), namespaces first, each
// followed by its services: [{id, kind, name, full, parent, members}].
// members counts the nodes directly or indirectly inside.
export function groupList(nodes) {
  const byId = new Map();
  const get = (id, kind, name, full, parent) => {
    let g = byId.get(id);
    if (!g) byId.set(id, (g = {id, kind, name, full, parent, members: 0}));
    return g;
  };
  for (const n of nodes) {
    const ns = nsOf(n), svc = serviceOf(n);
    if (ns) get(NS + ns, 'namespace', ns, ns, '').members++;
    if (svc) get(SVC + svc, 'service', shortName(svc, ns), svc, ns ? NS + ns : '').members++;
  }
  const all = [...byId.values()];
  const out = [];
  const byName = (a, b) => (a.full < b.full ? -1 : a.full > b.full ? 1 : 0);
  for (const ns of all.filter(g => g.kind === 'namespace').sort(byName)) {
    out.push(ns);
    out.push(...all.filter(g => g.parent === ns.id).sort(byName));
  }
  out.push(...all.filter(g => g.kind === 'service' && !g.parent).sort(byName));
  return out;
}

// repId is the node ID that stands for a collapsed box: the service's own
// node ID, or "namespace/*" for a namespace.
export function repId(groupId) {
  return groupId.startsWith(SVC) ? groupId.slice(SVC.length) : groupId.slice(NS.length) + '/*';
}

const maxKnown = (a, b) => (b == null || !Number.isFinite(Number(b)) ? a : a == null ? Number(b) : Math.max(a, Number(b)));
const num = v => (Number.isFinite(Number(v)) ? Number(v) : 0);

// collapseGraph returns the graph with each collapsed box (a Set of group
// IDs) replaced by one node: its rates, span counts and calls are the sums
// of its members', its error rate their weighted mean, and each of its
// latency quantiles the highest of the members' (an approximation: the
// tooltip says so). Edges between members become a loop on that node.
// The input is not modified; without anything collapsed it is returned.
export function collapseGraph(g, collapsed) {
  if (!collapsed || !collapsed.size) return g;
  const repOf = new Map(); // node id → rep id
  const reps = new Map();
  const taken = new Set((g.nodes || []).map(n => n.id));
  for (const n of g.nodes || []) {
    const ns = nsOf(n), svc = serviceOf(n);
    let gid = '';
    if (ns && collapsed.has(NS + ns)) gid = NS + ns;
    else if (svc && collapsed.has(SVC + svc)) gid = SVC + svc;
    if (!gid) continue;
    let r = reps.get(gid);
    if (!r) {
      let id = repId(gid);
      // An instance that kept the plain service name as its ID is inside
      // the box it stands for; any other holder of that ID is not.
      if (taken.has(id) && !(g.nodes || []).some(m => m.id === id && (serviceOf(m) === gid.slice(SVC.length) || nsOf(m) === gid.slice(NS.length)))) id += ' (box)';
      r = {id, namespace: gid.startsWith(SVC) ? ns : '', service: '', virtual: false, requestRate: 0, errorRate: 0, spanCount: 0,
        latency: {p50: null, p90: null, p99: null, p999: null, timedCalls: 0}, declaredOnly: true,
        group: gid, groupKind: gid.startsWith(SVC) ? 'service' : 'namespace', groupName: gid.startsWith(SVC) ? shortName(svc, ns) : ns, members: 0, _err: 0};
      reps.set(gid, r);
    }
    repOf.set(n.id, r.id);
    r.members++;
    const rate = num(n.requestRate);
    r.requestRate += rate;
    r._err += rate * num(n.errorRate);
    r.spanCount += num(n.spanCount);
    if (!n.declaredOnly) r.declaredOnly = false;
    const l = n.latency || {};
    for (const q of ['p50', 'p90', 'p99', 'p999']) r.latency[q] = maxKnown(r.latency[q], l[q]);
    r.latency.timedCalls += num(l.timedCalls);
  }
  for (const r of reps.values()) {
    r.errorRate = r.requestRate > 0 ? r._err / r.requestRate : 0;
    delete r._err;
  }
  const nodes = (g.nodes || []).filter(n => !repOf.has(n.id)).concat([...reps.values()]);
  nodes.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const edges = new Map();
  for (const e of g.edges || []) {
    const s = repOf.get(e.source) || e.source, t = repOf.get(e.target) || e.target;
    if (s === e.source && t === e.target) {
      edges.set(s + '\u0000' + t, e);
      continue;
    }
    const k = s + '\u0000' + t;
    let a = edges.get(k);
    if (!a || !a.aggregated) {
      const prev = a;
      a = {source: s, target: t, virtual: false, calls: 0, errors: 0, rate: 0, errorRate: 0, declared: '',
        latency: {p50: null, p90: null, p99: null, p999: null, timedCalls: 0}, aggregated: 0};
      edges.set(k, a);
      if (prev) add(a, prev);
    }
    add(a, e);
  }
  function add(a, e) {
    a.aggregated++;
    a.virtual = a.virtual || !!e.virtual;
    a.calls += num(e.calls);
    a.errors += num(e.errors);
    a.rate += num(e.rate);
    a.errorRate = a.calls > 0 ? a.errors / a.calls : 0;
    if (e.declared && (!a.declared || a.declared === e.declared)) a.declared = e.declared;
    const l = e.latency || {};
    for (const q of ['p50', 'p90', 'p99', 'p999']) a.latency[q] = maxKnown(a.latency[q], l[q]);
    a.latency.timedCalls += num(l.timedCalls);
  }
  const list = [...edges.values()].sort((a, b) => (a.source < b.source ? -1 : a.source > b.source ? 1 : a.target < b.target ? -1 : a.target > b.target ? 1 : 0));
  return Object.assign({}, g, {nodes, edges: list});
}

// buildTree puts map nodes (objects with .id and .data) into their boxes:
// {root, groups: Map id → group, sig}. A group is {id, kind, name, full,
// parent, groups, nodes}; the root holds the top-level boxes and the
// nodes in none. sig changes when any node changes box.
export function buildTree(nodes) {
  const root = {id: '', kind: 'root', name: '', full: '', parent: null, groups: [], nodes: []};
  const groups = new Map();
  const get = (id, kind, name, full, parent) => {
    let g = groups.get(id);
    if (!g) {
      g = {id, kind, name, full, parent, groups: [], nodes: []};
      groups.set(id, g);
      parent.groups.push(g);
    }
    return g;
  };
  const sig = [];
  for (const n of nodes) {
    const ns = nsOf(n.data), svc = serviceOf(n.data);
    let box = root;
    if (ns) box = get(NS + ns, 'namespace', ns, ns, root);
    if (svc) box = get(SVC + svc, 'service', shortName(svc, ns), svc, box);
    box.nodes.push(n);
    n.group = box === root ? null : box;
    sig.push(n.id + '\u0000' + box.id);
  }
  const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  const sortAll = g => {
    g.groups.sort(byId);
    g.nodes.sort(byId);
    g.groups.forEach(sortAll);
  };
  sortAll(root);
  return {root, groups, sig: sig.sort().join('\u0001')};
}

// visibleTree is the tree of the nodes that pass keep (for a filtered
// view): boxes without any such node are left out.
export function visibleTree(nodes, keep) {
  return buildTree(nodes.filter(keep));
}

// Label placement. Each label is {id, text, full, x, y, r, prio, kind}
// with (x, y) the screen centre of its node (or, for a box name,
// kind 'box' and the box's screen corner in x, y and its width in w).
// measure(text) is the text's width. Labels are placed by decreasing
// priority at the first free spot of: below, right, left, above; failing
// that shortened with … (the full name stays in the tooltip); failing that
// hidden. Free means: inside the canvas, over no placed label and no other
// node's shape. Returns {placed: [{id, kind, text, full, pos, left, top,
// right, bottom}], hidden: [id]}.
export const LABEL_H = 14;

export function placeLabels(labels, obstacles, W, H, measure) {
  const CELL = 64;
  const grid = new Map();
  const key = (cx, cy) => cx * 100003 + cy;
  const insert = (b, ownerId) => {
    const o = {l: b.left, t: b.top, r: b.right, b: b.bottom, id: ownerId};
    for (let cx = Math.floor(b.left / CELL); cx <= Math.floor(b.right / CELL); cx++) {
      for (let cy = Math.floor(b.top / CELL); cy <= Math.floor(b.bottom / CELL); cy++) {
        const k = key(cx, cy);
        let list = grid.get(k);
        if (!list) grid.set(k, (list = []));
        list.push(o);
      }
    }
  };
  const free = (b, selfId) => {
    if (b.left < 0 || b.top < 0 || b.right > W || b.bottom > H) return false;
    for (let cx = Math.floor(b.left / CELL); cx <= Math.floor(b.right / CELL); cx++) {
      for (let cy = Math.floor(b.top / CELL); cy <= Math.floor(b.bottom / CELL); cy++) {
        const list = grid.get(key(cx, cy));
        if (!list) continue;
        for (const o of list) {
          if (o.id === selfId) continue;
          if (b.left < o.r && o.l < b.right && b.top < o.b && o.t < b.bottom) return false;
        }
      }
    }
    return true;
  };
  for (const o of obstacles) insert(o, o.id);
  const placed = [], hidden = [];
  const sorted = labels.slice().sort((a, b) => b.prio - a.prio || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const lb of sorted) {
    const variants = shortenings(lb.text);
    let done = null;
    for (const text of variants) {
      const w = measure(text, lb.kind) + 4;
      for (const [pos, b] of spots(lb, w)) {
        if (free(b, lb.id)) {
          done = Object.assign({id: lb.id, kind: lb.kind || 'node', text, full: lb.full, pos}, b);
          break;
        }
      }
      if (done) break;
    }
    if (!done) {
      hidden.push(lb.id);
      continue;
    }
    placed.push(done);
    // The label's own node must not block the next labels of other
    // nodes either: insert under a key no other label uses.
    insert(done, '\u0000label');
  }
  return {placed, hidden};
}

// shortenings: the text, then shorter forms ending in … (keeping the end
// of long names, where instances differ, and their start).
function shortenings(text) {
  const out = [text];
  for (const n of [18, 11]) {
    if (text.length > n + 1) out.push(text.slice(0, Math.ceil(n / 2)) + '…' + text.slice(text.length - Math.floor(n / 2)));
  }
  return out;
}

function spots(lb, w) {
  const h = LABEL_H;
  if (lb.kind === 'box') {
    // A box's name: at its top left corner, inside it, no wider than it.
    if (w > lb.w - 6) return [];
    return [['inside', {left: lb.x + 5, top: lb.y + 3, right: lb.x + 5 + w, bottom: lb.y + 3 + h}],
      ['above', {left: lb.x + 5, top: lb.y - h - 1, right: lb.x + 5 + w, bottom: lb.y - 1}]];
  }
  const {x, y, r} = lb;
  return [
    ['below', {left: x - w / 2, top: y + r + 2, right: x + w / 2, bottom: y + r + 2 + h}],
    ['right', {left: x + r + 3, top: y - h / 2, right: x + r + 3 + w, bottom: y + h / 2}],
    ['left', {left: x - r - 3 - w, top: y - h / 2, right: x - r - 3, bottom: y + h / 2}],
    ['above', {left: x - w / 2, top: y - r - 2 - h, right: x + w / 2, bottom: y - r - 2}],
  ];
}

// boxColors reads the box colours of the current scheme.
export function boxColors(el) {
  const cs = getComputedStyle(el);
  const v = (name, dflt) => cs.getPropertyValue(name).trim() || dflt;
  return {
    nsFill: v('--map-ns-fill', 'rgba(78, 161, 255, 0.05)'),
    nsStroke: v('--map-ns-stroke', '#3a4a5e'),
    svcFill: v('--map-svc-fill', 'rgba(140, 150, 170, 0.07)'),
    svcStroke: v('--map-svc-stroke', '#465264'),
    head: v('--map-box-head', '#9fb0c4'),
  };
}

// Topology is the part of a FlowMap (graph.js) that deals with boxes,
// filters and labels:
//
//   - update(fresh): with opts.group, puts the nodes into their boxes and
//     lays the boxes out again when a node changed box (or appeared);
//   - afterVisible(): the end of computeVisible: applies the search filter
//     (opts.filter), hides the nodes a filter left without any visible
//     edge, and, when the filter changed, lays the visible nodes out afresh
//     (a compact layout of their own, boxes included); clearing the filter
//     puts every node back where it was;
//   - drawBoxes / drawLabels: the boxes under the graph, and every node
//     label and box name placed by placeLabels (no two overlap);
//   - state(): boxes, labels and timings for tests.
export class Topology {
  constructor(map) {
    this.map = map;
    this.tree = null;
    this.boxes = []; // the boxes drawn: the global ones, or the filtered view's
    this.globalBoxes = [];
    this.snap = null; // the global layout while a filtered layout is shown
    this.local = new Set(); // nodes placed in the filtered layout
    this.filterSig = '';
    this.globalStale = false;
    this.labels = {placed: [], hidden: []};
    this.labelSig = '';
    this.widths = new Map();
    this.stats = {relayouts: 0, lastRelayout: null, globalLayouts: 0, lastGlobalMs: 0, labelMs: 0, selDrawnAt: 0, selKey: ''};
  }

  get grouped() {
    return !!this.map.opts.group;
  }

  // update runs in setData after the nodes and edges are merged; it
  // returns true when it laid the boxes out (the caller then skips the
  // ungrouped placement).
  update(fresh) {
    const m = this.map;
    if (!this.grouped) {
      if (this.tree) {
        // Grouping was turned off: forget the boxes and lay out again.
        this.tree = null;
        this.boxes = this.globalBoxes = [];
        for (const n of m.nodeList) clearBox(n);
        if (!this.snap) {
          for (const n of m.nodeList) n.placed = false;
          place(m.nodeList, plainEdges(m.edges), m.nodeList);
          for (const n of m.nodeList) n.moving = true;
          m.sim.alpha = 0;
          m.sim.reset(m.nodeList, m.edges, 1);
          return true;
        }
        this.globalStale = true;
        this.filterSig = '';
      }
      return false;
    }
    const tree = buildTree(m.nodeList);
    const changed = !this.tree || tree.sig !== this.tree.sig;
    this.tree = tree;
    if (!changed && !fresh.length) return false;
    if (this.snap) {
      // A filtered layout is shown: lay it out again; the global one is
      // made when the filter is cleared.
      this.globalStale = true;
      this.filterSig = '';
      for (const n of fresh) n.placed = true;
      return true;
    }
    this.layoutGlobal();
    return true;
  }

  layoutGlobal() {
    const m = this.map, t0 = performance.now();
    const tree = buildTree(m.nodeList);
    this.tree = tree;
    this.globalBoxes = this.boxes = boxLayout(tree.root, plainEdges(m.edges));
    for (const n of m.nodeList) {
      n.pinned = false;
      n.moving = true;
    }
    m.sim.alpha = 0;
    m.sim.reset(m.nodeList, m.edges, 0.3);
    this.globalStale = false;
    this.stats.globalLayouts++;
    this.stats.lastGlobalMs = performance.now() - t0;
    m.stats.layoutMs += this.stats.lastGlobalMs;
  }

  // relayout is the Re-layout button.
  relayout() {
    if (this.snap) this.restore();
    this.filterSig = '';
    if (this.grouped) this.layoutGlobal();
    return this.grouped;
  }

  // filterState is what decides the filtered layout: the focus (when its
  // node is on the map), the search filter, the rate filter and the boxes.
  filterState() {
    const m = this.map, f = m.focus;
    const focus = f && m.nodes.has(f.id) ? [f.id, f.up ?? 1, f.down ?? 1] : null;
    const filter = String(m.opts.filter || '').trim().toLowerCase();
    const minRate = Number(m.opts.minRate) || 0;
    const active = !!(focus || filter || minRate > 0);
    return {active, focus, filter, minRate, sig: JSON.stringify([focus, filter, minRate, this.grouped, this.tree ? this.tree.sig : ''])};
  }

  afterVisible() {
    const m = this.map;
    const fs = this.filterState();
    if (fs.filter) {
      const match = n => n.id.toLowerCase().includes(fs.filter);
      const keepN = new Set();
      for (const e of m.edges) {
        if (!e.visible) continue;
        if (match(e.s) || match(e.t)) keepN.add(e.s).add(e.t);
        else e.visible = false;
      }
      for (const n of m.nodeList) if (n.visible && !keepN.has(n) && !match(n)) n.visible = false;
      this.filterMatches = m.nodeList.filter(n => n.visible && match(n)).length;
    } else this.filterMatches = 0;
    if (fs.active) {
      // A node that the filters left without any visible edge is hidden,
      // except the focus's centre and the search filter's matches.
      const linked = new Set();
      for (const e of m.edges) if (e.visible) linked.add(e.s).add(e.t);
      for (const n of m.nodeList) {
        if (!n.visible || linked.has(n)) continue;
        if (fs.focus && n.id === fs.focus[0]) continue;
        if (fs.filter && n.id.toLowerCase().includes(fs.filter)) continue;
        n.visible = false;
      }
    }
    if (fs.sig !== this.filterSig) {
      this.filterSig = fs.sig;
      const had = !!this.snap;
      if (had) this.restore();
      if (fs.active) this.layoutLocal();
      if (had || fs.active) {
        m.userView = false;
        m.fit();
      }
    } else if (this.snap) {
      this.placeNewlyVisible();
    }
    if (this.snap) {
      // Only the shown nodes take part in the simulation.
      const vis = m.nodeList.filter(n => n.visible);
      for (const n of m.nodeList) if (!n.visible) n.moving = false;
      m.sim.reset(vis, m.edges.filter(e => e.visible), 0);
    }
  }

  // layoutLocal gives the visible nodes a compact layout of their own.
  layoutLocal() {
    const m = this.map, t0 = performance.now();
    // The global layout is kept settled: finish it first.
    while (m.sim.tick());
    for (const n of m.nodeList) n.moving = false;
    this.snap = new Map();
    for (const n of m.nodeList) this.snap.set(n.id, {x: n.x, y: n.y, homeX: n.homeX, homeY: n.homeY, pinned: n.pinned, bx0: n.bx0, bx1: n.bx1, by0: n.by0, by1: n.by1});
    this.snap.boxes = this.globalBoxes;
    const vis = m.nodeList.filter(n => n.visible);
    const vedges = m.edges.filter(e => e.visible);
    this.local = new Set(vis);
    if (this.grouped) {
      const tree = buildTree(vis);
      this.boxes = boxLayout(tree.root, plainEdges(vedges));
      for (const n of vis) n.moving = true;
      m.sim.alpha = 0;
      m.sim.reset(vis, vedges, 0.3);
    } else {
      const tmp = vis.map(n => ({id: n.id, placed: false}));
      place(tmp, plainEdges(vedges), tmp);
      vis.forEach((n, i) => {
        const p = tmp[i];
        Object.assign(n, {x: p.x, y: p.y, homeX: p.homeX ?? p.x, homeY: p.homeY, pinned: false, vx: 0, vy: 0, moving: true});
        clearBox(n);
      });
      this.boxes = [];
      m.sim.alpha = 0;
      m.sim.reset(vis, vedges, 1);
      // As for a new graph: most of the settling before the first frame.
      const lt = performance.now();
      while (performance.now() - lt < 40 && m.sim.tick());
    }
    this.stats.relayouts++;
    this.stats.lastRelayout = {at: t0, ms: performance.now() - t0, nodes: vis.length, edges: vedges.length, drawnAt: 0};
  }

  // placeNewlyVisible puts a node that a refresh made visible under the
  // filter next to a visible neighbour (in its box when it has one).
  placeNewlyVisible() {
    const m = this.map;
    for (const n of m.nodeList) {
      if (!n.visible || this.local.has(n)) continue;
      let nb = null;
      for (const e of m.edges) {
        if (!e.visible) continue;
        const o = e.s === n ? e.t : e.t === n ? e.s : null;
        if (o && this.local.has(o)) {
          nb = o;
          break;
        }
      }
      const a = hash(n.id) * Math.PI * 2;
      const base = nb || {x: 0, y: 0};
      n.x = base.x + Math.cos(a) * DX * 0.6;
      n.y = base.y + Math.sin(a) * DY;
      clearBox(n);
      const box = this.boxes.find(b => n.group && b.id === n.group.id);
      if (box) {
        n.x = Math.min(Math.max(n.x, box.x0 + 20), box.x1 - 20);
        n.y = Math.min(Math.max(n.y, box.y0 + box.head + 20), box.y1 - 30);
      }
      n.homeX = n.x;
      n.homeY = undefined;
      n.moving = true;
      this.local.add(n);
    }
  }

  // restore puts every node back at its place in the global layout.
  restore() {
    const m = this.map;
    const snap = this.snap;
    this.snap = null;
    this.local = new Set();
    const unplaced = [];
    for (const n of m.nodeList) {
      const p = snap.get(n.id);
      if (p) Object.assign(n, p, {vx: 0, vy: 0, moving: false});
      else {
        n.placed = false;
        unplaced.push(n);
      }
    }
    this.boxes = this.globalBoxes = snap.boxes || [];
    m.sim.alpha = 0;
    if (this.grouped && (this.globalStale || unplaced.length)) {
      this.layoutGlobal();
      return;
    }
    this.globalStale = false;
    if (unplaced.length) {
      place(unplaced, plainEdges(m.edges), m.nodeList);
      for (const n of unplaced) n.moving = true;
    }
    m.sim.reset(m.nodeList, m.edges, unplaced.length ? 0.6 : 0);
  }

  // saved is where a node's position is kept (the global one).
  saved(n) {
    return this.snap && this.snap.get(n.id);
  }

  // clamp keeps a dragged node in its box.
  clamp(n) {
    if (n.bx0 == null) return;
    n.x = Math.min(Math.max(n.x, n.bx0), n.bx1);
    n.y = Math.min(Math.max(n.y, n.by0), n.by1);
    n.homeX = n.x;
    n.homeY = n.y;
  }

  // shownBoxes are the boxes with a visible node inside.
  shownBoxes() {
    if (!this.boxes.length) return [];
    const m = this.map;
    const live = new Set();
    for (const n of m.nodeList) {
      if (!n.visible) continue;
      for (let g = n.group; g; g = g.parent) live.add(g.id);
    }
    return this.boxes.filter(b => live.has(b.id));
  }

  // extent widens a bounding box ([x0, y0, x1, y1]) by the shown boxes.
  extent(bb) {
    for (const b of this.shownBoxes()) {
      bb[0] = Math.min(bb[0], b.x0);
      bb[1] = Math.min(bb[1], b.y0);
      bb[2] = Math.max(bb[2], b.x1);
      bb[3] = Math.max(bb[3], b.y1);
    }
    return bb;
  }

  // headerAt returns the ID of the box whose header is at a world point
  // (the innermost), or ''.
  headerAt(wx, wy, sx, sy) {
    for (const l of this.labels.placed) {
      if (l.kind === 'box' && sx >= l.left && sx <= l.right && sy >= l.top && sy <= l.bottom) return l.id;
    }
    let best = null;
    for (const b of this.shownBoxes()) {
      if (wx >= b.x0 && wx <= b.x1 && wy >= b.y0 && wy <= b.y0 + b.head && (!best || b.depth > best.depth)) best = b;
    }
    return best ? best.id : '';
  }

  // boxAt returns the innermost shown box at a world point.
  boxAt(wx, wy) {
    let best = null;
    for (const b of this.shownBoxes()) {
      if (wx >= b.x0 && wx <= b.x1 && wy >= b.y0 && wy <= b.y1 && (!best || b.depth > best.depth)) best = b;
    }
    return best;
  }

  // drawBoxes draws the boxes (in world coordinates, under the edges) and
  // an outline round each collapsed box's node.
  drawBoxes(ctx, k) {
    const m = this.map;
    if (this.colorsFor !== m.colors) {
      // Read again after a change of colour scheme (graph.js renews colors).
      this.colors = boxColors(m.root);
      this.colorsFor = m.colors;
    }
    const C = this.colors;
    const shown = this.shownBoxes();
    this.shown = shown;
    for (const b of shown) {
      const ns = b.kind === 'namespace';
      ctx.fillStyle = ns ? C.nsFill : C.svcFill;
      ctx.strokeStyle = ns ? C.nsStroke : C.svcStroke;
      ctx.lineWidth = (ns ? 1.5 : 1) / k;
      ctx.setLineDash(ns ? [] : [5 / k, 3 / k]);
      ctx.beginPath();
      ctx.roundRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0, ns ? 10 : 7);
      ctx.fill();
      ctx.stroke();
      // The header band: where a click collapses the box.
      ctx.globalAlpha = 0.5;
      ctx.beginPath();
      ctx.moveTo(b.x0, b.y0 + b.head);
      ctx.lineTo(b.x1, b.y0 + b.head);
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    ctx.setLineDash([4 / k, 3 / k]);
    ctx.strokeStyle = C.svcStroke;
    ctx.lineWidth = 1.5 / k;
    ctx.beginPath();
    for (const n of m.nodeList) {
      if (!n.visible || !n.data.group) continue;
      const r = m.radius(n) + 6;
      ctx.roundRect(n.x - r, n.y - r, 2 * r, 2 * r, 5);
    }
    ctx.stroke();
    ctx.setLineDash([]);
  }

  // drawLabels places (when anything moved) and draws the box names and
  // node labels, in screen coordinates.
  drawLabels(ctx, hl) {
    const m = this.map, view = m.view, k = view.k, C = m.colors;
    const sel = m.selected;
    let sum = 0;
    for (const n of m.nodeList) if (n.visible) sum += n.x * 3.1 + n.y * 1.7 + m.radius(n);
    const imp = n => (hl && hl.has(n.id)) || m.matches.has(n.id) || (sel && sel.id === n.id) || (m.focus && m.focus.id === n.id);
    const sig = [view.k, view.x, view.y, m.W, m.H, sum, this.boxes.length, hl ? [...hl].join('\u0000') : '', [...m.matches].join('\u0000'), sel ? sel.id : '', m.focus ? m.focus.id : ''].join('|');
    ctx.font = FONT;
    if (sig !== this.labelSig) {
      const t0 = performance.now();
      this.labelSig = sig;
      const labels = [], obstacles = [];
      for (const b of this.shown || []) {
        const sx = b.x0 * k + view.x, sy = b.y0 * k + view.y;
        labels.push({id: b.id, kind: 'box', text: b.name, full: b.full, x: sx, y: sy, w: (b.x1 - b.x0) * k, prio: (b.kind === 'namespace' ? 4e12 : 3e12) - b.depth});
      }
      for (const n of m.nodeList) {
        if (!n.visible) continue;
        const sx = n.x * k + view.x, sy = n.y * k + view.y, r = m.radius(n) * k;
        if (sx < -r || sx > m.W + r || sy < -r || sy > m.H + r) continue;
        obstacles.push({id: n.id, left: sx - r, top: sy - r, right: sx + r, bottom: sy + r});
        // In a namespace's box, the namespace is its name: the label
        // leaves it out (the tooltip has the full ID).
        const full = n.data.group ? `${n.data.groupName} (${n.data.members})` : n.id;
        const ns = this.grouped && n.group ? nsOf(n.data) : '';
        const short = ns ? shortName(full, ns) : full;
        const text = short.length > 36 ? short.slice(0, 35) + '…' : short;
        labels.push({id: n.id, kind: 'node', text, full, x: sx, y: sy, r, prio: (imp(n) ? 2e12 : 0) + fmt.num(n.data.requestRate) * 1e3 + (n.data.group ? 1e12 : 0)});
      }
      const measure = (text, kind) => {
        const key = kind === 'box' ? '\u0001' + text : text;
        let w = this.widths.get(key);
        if (w == null) {
          ctx.font = kind === 'box' ? BOX_FONT : FONT;
          w = ctx.measureText(text).width;
          if (this.widths.size > 5000) this.widths.clear();
          this.widths.set(key, w);
        }
        return w;
      };
      this.labels = placeLabels(labels, obstacles, m.W, m.H, measure);
      this.stats.labelMs = performance.now() - t0;
    }
    ctx.textBaseline = 'top';
    ctx.textAlign = 'left';
    const hC = this.colors || boxColors(m.root);
    for (const lb of this.labels.placed) {
      if (lb.kind === 'box') {
        ctx.font = BOX_FONT;
        ctx.globalAlpha = 1;
        ctx.fillStyle = hC.head;
      } else {
        const n = m.nodes.get(lb.id);
        if (!n) continue;
        ctx.font = FONT;
        ctx.globalAlpha = hl && !hl.has(n.id) ? 0.35 : 1;
        ctx.fillStyle = n.data.declaredOnly || n.data.virtual ? C.textDim : C.text;
      }
      ctx.fillText(lb.text, lb.left + 2, lb.top + 1);
    }
    ctx.font = FONT;
    ctx.globalAlpha = 1;
    ctx.textAlign = 'center';
    const now = performance.now();
    if (this.stats.lastRelayout && !this.stats.lastRelayout.drawnAt) this.stats.lastRelayout.drawnAt = now;
    const sk = sel ? JSON.stringify(sel) : '';
    if (sk !== this.stats.selKey) {
      this.stats.selKey = sk;
      this.stats.selDrawnAt = now;
    }
  }

  state() {
    const m = this.map, view = m.view;
    const scr = b => ({left: b.x0 * view.k + view.x, top: b.y0 * view.k + view.y, right: b.x1 * view.k + view.x, bottom: b.y1 * view.k + view.y});
    const shown = this.shownBoxes();
    return {
      grouped: this.grouped,
      filtered: !!this.snap,
      groups: shown.map(b => Object.assign({id: b.id, kind: b.kind, name: b.name, full: b.full, parent: b.parent, depth: b.depth, x0: b.x0, y0: b.y0, x1: b.x1, y1: b.y1, head: b.head}, {screen: scr(b)})),
      nodeGroups: Object.fromEntries(m.nodeList.filter(n => n.visible).map(n => [n.id, n.group && this.grouped ? n.group.id : ''])),
      collapsed: Object.fromEntries(m.nodeList.filter(n => n.data.group).map(n => [n.id, n.data.group])),
      labels: this.labels.placed.map(l => ({id: l.id, kind: l.kind, text: l.text, full: l.full, pos: l.pos, left: l.left, top: l.top, right: l.right, bottom: l.bottom})),
      hiddenLabels: this.labels.hidden.length,
      labelMs: this.stats.labelMs,
      relayouts: this.stats.relayouts,
      lastRelayout: this.stats.lastRelayout,
      globalLayouts: this.stats.globalLayouts,
      lastGlobalLayoutMs: this.stats.lastGlobalMs,
      selDrawnAt: this.stats.selDrawnAt,
      filterMatches: this.filterMatches || 0,
      visibleNodeIds: m.nodeList.filter(n => n.visible).map(n => n.id),
      visibleEdgeKeys: m.edges.filter(e => e.visible).map(e => e.key),
    };
  }
}

export const FONT = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
const BOX_FONT = '600 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

function clearBox(n) {
  n.bx0 = n.bx1 = n.by0 = n.by1 = undefined;
}

function plainEdges(edges) {
  return edges.map(e => ({source: e.s.id, target: e.t.id}));
}
