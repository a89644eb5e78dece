// Graph layout: a layered initial placement (callers left of callees, by
// longest path after breaking cycles) refined by a bounded force
// simulation. Positions are kept by node id so a refresh never moves what
// the user sees; only new nodes are placed (next to a neighbour) and
// settle while the rest stays put.

export const DX = 190; // distance between layers
export const DY = 56; // distance between nodes of a layer

// hash gives a stable pseudo-random number in [0, 1) for a string, so
// layouts (and screenshots) are reproducible.
export function hash(str) {
  let x = 2166136261;
  for (let i = 0; i < str.length; i++) {
    x ^= str.charCodeAt(i);
    x = Math.imul(x, 16777619);
  }
  return ((x >>> 0) % 100000) / 100000;
}

// layers assigns every node a layer: 0 for nodes nobody calls, else one
// more than its deepest caller, ignoring the back edges of cycles.
export function layers(nodes, edges) {
  const out = new Map(), index = new Map();
  nodes.forEach((n, i) => index.set(n.id, i));
  const succ = nodes.map(() => []);
  for (const e of edges) {
    const a = index.get(e.source), b = index.get(e.target);
    if (a == null || b == null || a === b) continue;
    succ[a].push(b);
  }
  // Iterative DFS marks back edges (cycles) to ignore.
  const state = new Uint8Array(nodes.length); // 0 new, 1 on stack, 2 done
  const keep = succ.map(() => []);
  const order = [];
  for (let r = 0; r < nodes.length; r++) {
    if (state[r]) continue;
    const stack = [[r, 0]];
    state[r] = 1;
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [v, i] = top;
      if (i < succ[v].length) {
        top[1]++;
        const w = succ[v][i];
        if (state[w] === 1) continue; // back edge
        keep[v].push(w);
        if (state[w] === 0) {
          state[w] = 1;
          stack.push([w, 0]);
        }
      } else {
        state[v] = 2;
        order.push(v);
        stack.pop();
      }
    }
  }
  order.reverse(); // topological order of the kept edges
  const layer = new Int32Array(nodes.length);
  for (const v of order) for (const w of keep[v]) if (layer[w] < layer[v] + 1) layer[w] = layer[v] + 1;
  nodes.forEach((n, i) => out.set(n.id, layer[i]));
  return out;
}

// place gives initial positions to the nodes in list that have none:
// next to a placed neighbour when there is one, else in their layer's
// column (ordered by the mean position of their callers); nodes without
// any edge go to a grid below.
export function place(list, edges, all) {
  const byId = new Map(all.map(n => [n.id, n]));
  const nbrs = new Map();
  const addN = (a, b) => {
    if (!nbrs.has(a)) nbrs.set(a, []);
    nbrs.get(a).push(b);
  };
  for (const e of edges) {
    if (e.source === e.target) continue;
    addN(e.source, e.target);
    addN(e.target, e.source);
  }
  const anyPlaced = all.some(n => n.placed);
  const lay = layers(all, edges);
  const fresh = list.filter(n => !n.placed);
  if (!fresh.length) return;
  if (anyPlaced) {
    // Incremental: next to a neighbour, or at the edge of the drawing.
    let maxY = -Infinity, minX = Infinity;
    for (const n of all) if (n.placed) { maxY = Math.max(maxY, n.y); minX = Math.min(minX, n.x); }
    let k = 0;
    for (const n of fresh) {
      const nb = (nbrs.get(n.id) || []).map(id => byId.get(id)).find(m => m && m.placed);
      const a = hash(n.id) * Math.PI * 2;
      if (nb) {
        const dir = lay.get(n.id) >= lay.get(nb.id) ? 1 : -1;
        n.x = nb.x + dir * DX * 0.8 + Math.cos(a) * 20;
        n.y = nb.y + Math.sin(a) * DY;
      } else {
        n.x = minX + (k % 8) * DX * 0.6;
        n.y = maxY + DY * (1.5 + Math.floor(k / 8));
        k++;
      }
      n.placed = true;
    }
    return;
  }
  // Full layered placement.
  const connected = fresh.filter(n => nbrs.has(n.id));
  const isolated = fresh.filter(n => !nbrs.has(n.id));
  const cols = new Map();
  for (const n of connected) {
    const l = lay.get(n.id) || 0;
    if (!cols.has(l)) cols.set(l, []);
    cols.get(l).push(n);
  }
  const perCol = Math.max(10, Math.ceil(Math.sqrt(connected.length) * 1.6));
  let x = 0, maxH = 0;
  const keys = [...cols.keys()].sort((a, b) => a - b);
  for (const l of keys) {
    const col = cols.get(l);
    // Order by the mean y of already placed callers (barycentre heuristic).
    const bary = new Map();
    for (const n of col) {
      const ys = (nbrs.get(n.id) || []).map(id => byId.get(id)).filter(m => m && m.placed).map(m => m.y);
      bary.set(n, ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : hash(n.id) * 1e6);
    }
    col.sort((a, b) => bary.get(a) - bary.get(b) || (a.id < b.id ? -1 : 1));
    const sub = Math.ceil(col.length / perCol);
    const rows = Math.ceil(col.length / sub);
    col.forEach((n, i) => {
      const c = i % sub, r = Math.floor(i / sub);
      n.x = x + c * (DX * 0.45);
      n.y = (r - (rows - 1) / 2) * DY + (c % 2) * DY * 0.35;
      n.placed = true;
    });
    maxH = Math.max(maxH, rows * DY);
    x += DX + (sub - 1) * DX * 0.45;
  }
  const gridCols = Math.max(4, Math.ceil(Math.sqrt(isolated.length) * 2));
  isolated.sort((a, b) => (a.id < b.id ? -1 : 1)).forEach((n, i) => {
    n.x = (i % gridCols) * DX * 0.6;
    n.y = maxH / 2 + DY * (1.5 + Math.floor(i / gridCols));
    n.homeX = n.x;
    n.homeY = n.y;
    n.placed = true;
  });
}

// Simulation refines positions with springs along edges, repulsion
// between nodes, a pull towards each node's layer column and a weak
// gravity. Only nodes with moving=true move; tick stops when alpha is
// spent, so the cost of a layout is bounded.
export class Simulation {
  constructor() {
    this.alpha = 0;
    this.nodes = [];
    this.edges = [];
  }

  reset(nodes, edges, alpha) {
    this.nodes = nodes;
    this.edges = edges.filter(e => e.s !== e.t);
    for (const n of nodes) if (n.homeX == null) n.homeX = n.x;
    const deg = new Map();
    for (const e of this.edges) {
      deg.set(e.s, (deg.get(e.s) || 0) + 1);
      deg.set(e.t, (deg.get(e.t) || 0) + 1);
    }
    for (const n of nodes) n.deg = deg.get(n) || 0;
    this.alpha = Math.max(this.alpha, alpha);
  }

  get running() {
    return this.alpha > 0.02 && this.nodes.some(n => n.moving);
  }

  tick() {
    const nodes = this.nodes, n = nodes.length;
    const a = this.alpha;
    if (a <= 0.02) return false;
    const rep = 2600 * a, cutoff2 = 400 * 400;
    for (let i = 0; i < n; i++) {
      const p = nodes[i];
      for (let j = i + 1; j < n; j++) {
        const q = nodes[j];
        if (!p.moving && !q.moving) continue;
        let dx = p.x - q.x, dy = p.y - q.y;
        let d2 = dx * dx + dy * dy;
        if (d2 > cutoff2) continue;
        if (d2 < 1) {
          dx = (hash(p.id) - 0.5) * 2;
          dy = (hash(q.id) - 0.5) * 2;
          d2 = dx * dx + dy * dy + 0.01;
        }
        const f = rep / d2;
        p.vx += dx * f; p.vy += dy * f;
        q.vx -= dx * f; q.vy -= dy * f;
      }
    }
    const L = DX * 0.85;
    for (const e of this.edges) {
      const p = e.s, q = e.t;
      if (!p.moving && !q.moving) continue;
      const dx = q.x - p.x, dy = q.y - p.y;
      const d = Math.sqrt(dx * dx + dy * dy) || 1;
      const k = ((d - L) / d) * 0.06 * a / Math.max(1, Math.min(p.deg, q.deg) * 0.5);
      p.vx += dx * k; p.vy += dy * k;
      q.vx -= dx * k; q.vy -= dy * k;
    }
    for (const p of nodes) {
      if (!p.moving) {
        p.vx = p.vy = 0;
        continue;
      }
      if (p.bx0 != null) {
        // In a box: held near its place in the box's layout.
        p.vx += (p.homeX - p.x) * 0.08 * a;
        p.vy += (p.homeY - p.y) * 0.08 * a;
      } else if (p.deg) {
        p.vx += (p.homeX - p.x) * 0.08 * a;
        p.vy -= p.y * 0.002 * a;
      } else if (p.homeY != null) {
        // Isolated nodes stay in their row below the graph.
        p.vx += (p.homeX - p.x) * 0.1 * a;
        p.vy += (p.homeY - p.y) * 0.1 * a;
      }
      p.vx *= 0.55; p.vy *= 0.55;
      const v = Math.hypot(p.vx, p.vy), max = 40;
      if (v > max) { p.vx *= max / v; p.vy *= max / v; }
      p.x += p.vx; p.y += p.vy;
      if (p.bx0 != null) {
        // The simulation never moves a node out of its box.
        p.x = Math.min(Math.max(p.x, p.bx0), p.bx1);
        p.y = Math.min(Math.max(p.y, p.by0), p.by1);
      }
    }
    this.alpha *= 0.965;
    if (this.alpha <= 0.02) for (const p of nodes) p.moving = false;
    return true;
  }
}

// Compound layout. BOX gives the geometry of the boxes of groups.js:
// padding, the height of a box's header (its name), the cell of one node
// in a box (room for its shape and its label below) and the gaps between
// the items of a box.
export const BOX = {pad: 12, headNamespace: 30, headService: 24, cellW: 108, cellH: 52, gapX: 54, gapY: 22, nodeGapX: 6, nodeGapY: 4};

const head = g => (g.kind === 'namespace' ? BOX.headNamespace : g.kind === 'service' ? BOX.headService : 0);

// boxLayout places the nodes of a tree (groups.js buildTree) box by box,
// from the inside out: the items of a box (its sub-boxes and its own
// nodes) are laid out with the layered placement on the graph of the
// calls between them (callers left of callees), columns wrapped so that
// the box is about 1.5 times as wide as high, and the box takes the size
// of what it holds. Every box gets its world rectangle (x0, y0, x1, y1),
// every node its position, home and the inner rectangle of its box
// (bx0…by1), which the simulation keeps it in. Boxes never overlap
// their siblings and hold their children entirely.
export function boxLayout(root, edges) {
  const path = new Map(); // node id → the boxes from the root down
  const walk = (g, chain) => {
    chain = chain.concat([g]);
    for (const c of g.groups) walk(c, chain);
    for (const n of g.nodes) path.set(n.id, chain);
  };
  walk(root, []);
  const byId = new Map();
  for (const chain of path.values()) for (const g of chain) byId.set(g.id, g);
  const measure = (g, depth) => {
    for (const c of g.groups) measure(c, depth + 1);
    const items = [];
    for (const c of g.groups) items.push({id: 'g:' + c.id, ref: c, w: c.w, h: c.h});
    for (const n of g.nodes) items.push({id: 'n:' + n.id, ref: n, node: true, w: BOX.cellW, h: BOX.cellH});
    const index = new Map(items.map(it => [it.id, it]));
    const itemOf = id => {
      const chain = path.get(id);
      if (!chain || chain[depth] !== g) return null;
      return chain.length > depth + 1 ? 'g:' + chain[depth + 1].id : 'n:' + id;
    };
    const iedges = [], seen = new Set();
    for (const e of edges) {
      const a = itemOf(e.source), b = itemOf(e.target);
      if (!a || !b || a === b) continue;
      const k = a + '\u0000' + b;
      if (seen.has(k)) continue;
      seen.add(k);
      iedges.push({source: a, target: b});
    }
    const onlyNodes = !g.groups.length;
    const gx = onlyNodes ? BOX.nodeGapX : BOX.gapX, gy = onlyNodes ? BOX.nodeGapY : BOX.gapY;
    const lay = layers(items, iedges);
    const preds = new Map();
    for (const e of iedges) {
      if (!preds.has(e.target)) preds.set(e.target, []);
      preds.get(e.target).push(e.source);
    }
    let area = 0, maxH = 0;
    for (const it of items) {
      area += (it.w + gx) * (it.h + gy);
      maxH = Math.max(maxH, it.h);
    }
    const aspect = depth === 0 ? 1.7 : 1.5;
    const target = Math.max(maxH, Math.sqrt(area / aspect));
    const byLayer = new Map();
    for (const it of items) {
      const l = lay.get(it.id) || 0;
      if (!byLayer.has(l)) byLayer.set(l, []);
      byLayer.get(l).push(it);
    }
    const cols = [];
    let x = 0;
    const newCol = () => {
      const c = {x, w: 0, h: 0, items: []};
      cols.push(c);
      return c;
    };
    for (const l of [...byLayer.keys()].sort((a, b) => a - b)) {
      const list = byLayer.get(l);
      const bary = it => {
        const ys = (preds.get(it.id) || []).map(id => index.get(id)).filter(p => p && p.ry != null).map(p => p.ry + p.h / 2);
        return ys.length ? ys.reduce((a, b) => a + b, 0) / ys.length : Infinity;
      };
      const bc = new Map(list.map(it => [it, bary(it)]));
      list.sort((a, b) => bc.get(a) - bc.get(b) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      let col = null;
      for (const it of list) {
        if (!col || (col.items.length && col.h + gy + it.h > target)) {
          if (col) x += col.w + gx;
          col = newCol();
          col.x = x;
        }
        it.ry = col.items.length ? col.h + gy : 0;
        col.h = it.ry + it.h;
        col.w = Math.max(col.w, it.w);
        col.items.push(it);
      }
      if (col) x += col.w + gx;
    }
    // Columns wrap into bands (rows of columns) so that a long chain of
    // calls does not make one long row: callers stay left of callees
    // within a band, and bands follow each other top to bottom.
    let maxW = 0;
    for (const it of items) maxW = Math.max(maxW, it.w);
    const wrapW = Math.max(maxW, Math.sqrt(area * aspect));
    const bands = [];
    let band = null, bx = 0;
    for (const c of cols) {
      if (!band || (band.cols.length && bx + c.w > wrapW)) {
        band = {cols: [], y: band ? band.y + band.h + gy * 2 : 0, h: 0};
        bands.push(band);
        bx = 0;
      }
      c.x = bx;
      bx += c.w + gx;
      band.cols.push(c);
      band.h = Math.max(band.h, c.h);
    }
    let cw = 0, ch = 0;
    for (const bd of bands) {
      for (const c of bd.cols) {
        cw = Math.max(cw, c.x + c.w);
        const dy = bd.y + (bd.h - c.h) / 2;
        for (const it of c.items) {
          it.rx = c.x + (c.w - it.w) / 2;
          it.ry += dy;
        }
      }
      ch = Math.max(ch, bd.y + bd.h);
    }
    g.items = items;
    const pad = g === root ? 0 : BOX.pad;
    g.w = Math.max(cw + 2 * pad, g === root ? 0 : 120);
    g.h = ch + 2 * pad + head(g);
  };
  measure(root, 0);
  const position = (g, ox, oy) => {
    const pad = g === root ? 0 : BOX.pad;
    g.x0 = ox;
    g.y0 = oy;
    g.x1 = ox + g.w;
    g.y1 = oy + g.h;
    const cx = ox + (g.w - (g.w - 2 * pad)) / 2; // content starts after the padding
    for (const it of g.items) {
      const ix = cx + it.rx, iy = oy + pad + head(g) + it.ry;
      if (!it.node) {
        position(it.ref, ix, iy);
        continue;
      }
      const n = it.ref;
      n.x = ix + BOX.cellW / 2;
      n.y = iy + 17;
      n.homeX = n.x;
      n.homeY = n.y;
      n.placed = true;
      n.vx = n.vy = 0;
      if (g === root) {
        n.bx0 = n.bx1 = n.by0 = n.by1 = undefined;
      } else {
        n.bx0 = g.x0 + pad + 6;
        n.bx1 = g.x1 - pad - 6;
        n.by0 = g.y0 + head(g) + pad + 6;
        n.by1 = g.y1 - pad - 18;
      }
    }
    delete g.items;
  };
  position(root, 0, 0);
  const boxes = [];
  const collect = (g, depth) => {
    if (g !== root) boxes.push({id: g.id, kind: g.kind, name: g.name, full: g.full, parent: g.parent && g.parent !== root ? g.parent.id : '', depth,
      x0: g.x0, y0: g.y0, x1: g.x1, y1: g.y1, head: head(g)});
    for (const c of g.groups) collect(c, depth + 1);
  };
  collect(root, -1);
  return boxes;
}
