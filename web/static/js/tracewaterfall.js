// The trace view's waterfall: virtualised rows (only the rows in and near
// the viewport are in the DOM, so a trace of 10,000 spans scrolls as
// smoothly as one of 10), a sticky header with the time ruler, a minimap
// of the whole trace that shows and moves the visible window, folding,
// keyboard navigation (an ARIA tree with a roving tabindex) and a time
// zoom (drag on the ruler). Span data is inserted as text only (dom.js) or
// drawn on the canvas.
import {h, clear} from './dom.js';
import * as fmt from './fmt.js';
import * as model from './tracemodel.js';

export const ROW_H = 24;
const OVERSCAN = 10;

export class Waterfall {
  // opts: colors (service → colour), critical (outline the critical
  // path), onSelect(span) when a row is opened (click, Enter), onChange()
  // after folding or zooming.
  constructor(t, opts) {
    this.t = t;
    this.opts = opts;
    this.colors = opts.colors;
    this.critical = !!opts.critical;
    this.collapsed = new Set();
    this.rows = [];
    this.rowOf = new Map();
    this.cursorId = t.spans.length ? t.spans[0].id : null;
    this.selected = null;
    this.v0 = 0;
    this.v1 = t.total || 1;
    this.rendered = new Map();
    this.raf = 0;

    this.canvas = h('canvas', {class: 'tv-minimap-canvas', testid: 'trace-minimap-canvas', role: 'img', 'aria-label': 'Minimap: every span of the trace as a thin bar, coloured by service, errors in red; click or drag to scroll there'});
    this.win = h('div', {class: 'tv-minimap-window', testid: 'trace-minimap-window'});
    this.minimap = h('div', {class: 'tv-minimap', testid: 'trace-minimap'}, this.canvas, this.win);
    this.zoomSel = h('div', {class: 'tv-zoomsel', hidden: true});
    this.ticks = h('div', {class: 'tv-ticks'});
    this.ruler = h('div', {class: 'tv-track tv-ruler', testid: 'trace-ruler', title: 'Drag across the ruler to zoom into an interval; double-click to show the whole trace'}, this.ticks, this.zoomSel);
    this.head = h('div', {class: 'tv-head', testid: 'trace-ruler-row'},
      h('div', {class: 'tv-hlabel'}, 'service · operation'), this.ruler, h('div', {class: 'tv-hself', title: 'self time: the part of a span not covered by its children'}, 'self'));
    this.gridTrack = h('div', {class: 'tv-gridtrack'});
    this.grid = h('div', {class: 'tv-grid', 'aria-hidden': 'true'}, h('div'), this.gridTrack, h('div'));
    this.body = h('div', {class: 'tv-body', role: 'tree', 'aria-label': 'Spans of the trace', testid: 'trace-rows'}, this.grid);
    this.scroller = h('div', {class: 'waterfall tv-scroller', testid: 'waterfall'}, this.head, this.body);
    this.el = h('div', {class: 'tv-pane'}, this.minimap, this.scroller);

    this.scroller.addEventListener('scroll', () => this.schedule(), {passive: true});
    this.body.addEventListener('click', ev => this.onClick(ev));
    this.body.addEventListener('keydown', ev => this.onKey(ev));
    this.body.addEventListener('focusin', ev => {
      const row = ev.target.closest && ev.target.closest('.tv-row');
      if (row) this.setCursor(Number(row.dataset.row));
    });
    this.minimapEvents();
    this.rulerEvents();
    // Render times of the rows (ms), newest last, for the browser tests.
    this.renderTimes = [];
    Object.defineProperty(this.scroller, 'tvRenderTimes', {get: () => this.renderTimes.slice()});
    this.ro = new ResizeObserver(() => {
      this.measure();
      this.drawRuler();
      this.drawMinimap();
      this.renderWindow(false);
    });
    this.ro.observe(this.scroller);
    this.refresh();
  }

  destroy() {
    this.ro.disconnect();
    cancelAnimationFrame(this.raf);
  }

  // --- folding ---------------------------------------------------------

  isFolded(s) {
    return s.children.length > 0 && this.collapsed.has(s.id);
  }

  toggle(id) {
    if (this.collapsed.has(id)) this.collapsed.delete(id);
    else this.collapsed.add(id);
    this.refresh();
  }

  setFolds(ids, add) {
    if (!add) this.collapsed.clear();
    for (const id of ids) this.collapsed.add(id);
    this.refresh();
  }

  expandAll() {
    this.collapsed.clear();
    this.refresh();
  }

  // reveal unfolds the ancestors of a span; it reports whether any was
  // folded.
  reveal(id) {
    let changed = false;
    for (let s = this.t.byId.get(id), p; s && (p = s.parent && this.t.byId.get(s.parent)); s = p) {
      if (this.collapsed.delete(p.id)) changed = true;
    }
    return changed;
  }

  // refresh recomputes the visible rows after folding and redraws.
  refresh() {
    if (this.el.isConnected) this.measure();
    this.rows = model.visible(this.t, this.collapsed);
    this.rowOf = new Map(this.rows.map((s, i) => [s.id, i]));
    this.body.style.height = this.rows.length * ROW_H + 'px';
    this.scroller.dataset.visibleRows = this.rows.length;
    this.scroller.dataset.totalSpans = this.t.spans.length;
    this.renderWindow(true);
    this.drawMinimap();
    if (this.opts.onChange) this.opts.onChange();
  }

  // visibleRowOf is the row of a span, or of its nearest shown ancestor.
  visibleRowOf(id) {
    for (let s = this.t.byId.get(id); s; s = s.parent && this.t.byId.get(s.parent)) {
      if (this.rowOf.has(s.id)) return this.rowOf.get(s.id);
    }
    return 0;
  }

  get cursor() {
    return this.cursorId == null ? 0 : this.visibleRowOf(this.cursorId);
  }

  setCursor(i) {
    const s = this.rows[i];
    if (!s || s.id === this.cursorId) return;
    const old = this.rendered.get(this.cursor);
    if (old) old.tabIndex = -1;
    this.cursorId = s.id;
    const el = this.rendered.get(i);
    if (el) el.tabIndex = 0;
  }

  // --- selection and scrolling -----------------------------------------

  // select shows a span: unfolds its ancestors, scrolls its row into view
  // (centred when asked), marks it selected and, with notify, opens its
  // details.
  select(id, {focus = false, center = false, notify = true} = {}) {
    const s = this.t.byId.get(id);
    if (!s) return;
    this.measure();
    if (this.reveal(id)) this.refresh();
    this.selected = id;
    this.cursorId = id;
    const i = this.rowOf.get(id);
    this.scrollToRow(i, center);
    this.renderWindow(true);
    if (focus) this.focusRow(i);
    if (notify && this.opts.onSelect) this.opts.onSelect(s);
  }

  // measure reads the sizes the rows depend on; they are cached so that
  // rendering while scrolling never forces a layout.
  measure() {
    this.viewH = this.scroller.clientHeight;
    this.headH = this.head.offsetHeight;
    this.mapW = this.minimap.clientWidth;
  }

  viewRows() {
    return Math.max(1, (this.viewH || 0) - (this.headH || 0));
  }

  scrollToRow(i, center) {
    const top = i * ROW_H, vis = this.viewRows(), st = this.scroller.scrollTop;
    let next = st;
    if (center) next = top - vis / 2 + ROW_H / 2;
    else if (top < st) next = top;
    else if (top + ROW_H > st + vis) next = top + ROW_H - vis;
    next = Math.max(0, Math.min(next, this.rows.length * ROW_H - vis));
    if (Math.abs(next - st) >= 1) this.scroller.scrollTop = next;
    this.renderWindow(false);
  }

  focusRow(i) {
    this.renderWindow(false);
    const el = this.rendered.get(i);
    if (el) el.focus({preventScroll: true});
  }

  move(i) {
    i = Math.max(0, Math.min(this.rows.length - 1, i));
    this.setCursor(i);
    this.scrollToRow(i, false);
    this.focusRow(i);
  }

  // --- events ----------------------------------------------------------

  onClick(ev) {
    const row = ev.target.closest('.tv-row');
    if (!row) return;
    const s = this.rows[Number(row.dataset.row)];
    if (!s) return;
    if (ev.target.closest('[data-twisty]')) {
      this.cursorId = s.id;
      this.toggle(s.id);
      this.focusRow(this.rowOf.get(s.id));
      return;
    }
    this.select(s.id, {focus: true});
  }

  onKey(ev) {
    const row = ev.target.closest('.tv-row');
    if (!row || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const i = Number(row.dataset.row), s = this.rows[i];
    if (!s) return;
    const page = Math.max(1, Math.floor(this.viewRows() / ROW_H) - 1);
    switch (ev.key) {
      case 'ArrowDown': this.move(i + 1); break;
      case 'ArrowUp': this.move(i - 1); break;
      case 'PageDown': this.move(i + page); break;
      case 'PageUp': this.move(i - page); break;
      case 'Home': this.move(0); break;
      case 'End': this.move(this.rows.length - 1); break;
      case 'ArrowRight':
        if (this.isFolded(s)) {
          this.toggle(s.id);
          this.focusRow(this.rowOf.get(s.id));
        } else if (s.children.length) this.move(i + 1);
        break;
      case 'ArrowLeft':
        if (s.children.length && !this.isFolded(s)) {
          this.toggle(s.id);
          this.focusRow(this.rowOf.get(s.id));
        } else if (s.parent && this.rowOf.has(s.parent)) this.move(this.rowOf.get(s.parent));
        break;
      case 'Enter':
      case ' ':
        this.select(s.id, {focus: true});
        break;
      default:
        return;
    }
    ev.preventDefault();
  }

  schedule() {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.renderWindow(false);
    });
  }

  // --- rows ------------------------------------------------------------

  // renderWindow puts the rows in and near the viewport (and the cursor
  // row, so that Tab always finds it) in the DOM and removes the others;
  // force rebuilds them all (after folding, zooming, selecting).
  renderWindow(force) {
    const t0 = performance.now();
    const n = this.rows.length;
    const st = this.scroller.scrollTop, vis = this.viewRows();
    const first = Math.max(0, Math.floor(st / ROW_H) - OVERSCAN);
    const last = Math.min(n - 1, Math.ceil((st + vis) / ROW_H) + OVERSCAN);
    const cursor = this.cursor;
    const hadFocus = this.body.contains(document.activeElement) && document.activeElement !== this.body;
    const want = [];
    if (cursor < first && cursor < n) want.push(cursor);
    for (let i = first; i <= last; i++) want.push(i);
    if (cursor > last && cursor < n) want.push(cursor);
    const keep = new Set(want);
    for (const [i, el] of this.rendered) {
      if (force || !keep.has(i)) {
        el.remove();
        this.rendered.delete(i);
      }
    }
    const existing = [...this.rendered.keys()].sort((a, b) => a - b);
    let k = 0;
    for (const i of want) {
      if (this.rendered.has(i)) continue;
      while (k < existing.length && existing[k] < i) k++;
      const el = this.makeRow(i, cursor);
      this.body.insertBefore(el, k < existing.length ? this.rendered.get(existing[k]) : null);
      this.rendered.set(i, el);
    }
    if (force && hadFocus) {
      const el = this.rendered.get(cursor);
      if (el) el.focus({preventScroll: true});
    }
    this.scroller.dataset.renderedRows = this.rendered.size;
    this.updateWindow(st);
    this.renderTimes.push(performance.now() - t0);
    if (this.renderTimes.length > 2000) this.renderTimes.splice(0, 1000);
  }

  makeRow(i, cursor) {
    const s = this.rows[i];
    const t = this.t;
    const color = this.colors.get(s.service) || model.serviceColor(s.service);
    const folded = this.isFolded(s);
    const onCrit = this.critical && t.critical.has(s.id);
    const sel = this.selected === s.id;
    const span = this.v1 - this.v0 || 1;
    const left = ((s.start - this.v0) / span) * 100, width = (s.dur / span) * 100, end = left + width;
    const hidden = s.end - s.index - 1;
    const label = h('div', {class: 'wf-label', style: {'padding-left': 4 + Math.min(s.depth, 24) * 12 + 'px'}},
      s.children.length
        ? h('span', {class: 'tv-twisty', dataset: {twisty: '1'}, title: folded ? `unfold (${hidden} spans hidden)` : 'fold'}, folded ? '▸' : '▾')
        : h('span', {class: 'tv-twisty-pad'}),
      h('span', {class: 'svc', style: {'border-color': color}}, s.service),
      h('span', {class: 'wf-name'}, s.name),
      folded ? h('span', {class: 'tv-hidden-count', testid: 'hidden-count'}, '+' + hidden) : null,
      s.error ? h('span', {class: 'tag tag-err'}, 'error') : null);
    const selfPct = s.dur ? (s.self / s.dur) * 100 : 100;
    const bar = h('div', {class: 'tv-bar' + (s.error ? ' tv-bar-err' : ''), testid: 'span-bar', style: {left: left + '%', width: width + '%', 'background-color': color}},
      h('div', {class: 'tv-self', style: {width: selfPct + '%'}}));
    // The duration: beside the bar where there is room, else on it, in
    // black or white, whichever contrasts more with the bar.
    const d = fmt.dur(s.dur);
    let text;
    if (end <= 0) text = h('span', {class: 'tv-dur tv-dur-off', style: {left: '4px'}, title: 'before the zoomed interval'}, '◂ ' + d);
    else if (left >= 100) text = h('span', {class: 'tv-dur tv-dur-off', style: {right: '4px'}, title: 'after the zoomed interval'}, d + ' ▸');
    else if (end < 80) text = h('span', {class: 'tv-dur', style: {left: `calc(${end}% + 4px)`}}, d);
    else if (left > 20) text = h('span', {class: 'tv-dur', style: {right: `calc(${100 - left}% + 4px)`}}, d);
    else text = h('span', {class: 'tv-dur tv-dur-in', testid: 'bar-text', style: {left: `calc(${Math.max(left, 0)}% + 3px)`, 'background-color': color, color: model.textOn(color)}}, d);
    const track = h('div', {class: 'tv-track', title: `${s.service}: ${s.name} — ${fmt.dur(s.dur)} (self ${fmt.dur(s.self)}) at +${fmt.dur(s.start)}`}, bar, text);
    return h('div', {
      class: 'tv-row' + (s.error ? ' tv-err' : '') + (onCrit ? ' tv-crit' : '') + (sel ? ' selected' : ''),
      testid: 'span-row', role: 'treeitem', tabindex: i === cursor ? 0 : -1,
      'aria-level': s.depth + 1, 'aria-selected': sel ? 'true' : 'false', 'aria-expanded': s.children.length ? String(!folded) : null,
      dataset: {spanId: s.id, row: i, depth: s.depth, critical: onCrit ? '1' : null},
      style: {top: i * ROW_H + 'px'},
    }, label, track, h('div', {class: 'tv-selfcol'}, fmt.dur(s.self)));
  }

  setCritical(on) {
    this.critical = on;
    this.renderWindow(true);
  }

  // --- time zoom -------------------------------------------------------

  get zoomed() {
    return this.v0 > 0 || this.v1 < (this.t.total || 1);
  }

  zoom(a, b) {
    const total = this.t.total || 1;
    a = Math.max(0, a);
    b = Math.min(total, b);
    if (!(b > a)) [a, b] = [0, total];
    this.v0 = a;
    this.v1 = b;
    this.drawRuler();
    this.renderWindow(true);
    this.drawMinimap();
    if (this.opts.onChange) this.opts.onChange();
  }

  drawRuler() {
    const w = this.ruler.clientWidth || 600;
    const span = this.v1 - this.v0 || 1;
    const vals = model.ticks(this.v0, this.v1, Math.max(2, Math.floor(w / 90)));
    const pct = v => ((v - this.v0) / span) * 100;
    clear(this.ticks);
    clear(this.gridTrack);
    for (const v of vals) {
      const p = pct(v);
      this.ticks.appendChild(h('span', {class: 'tv-tick' + (p < 4 ? ' tv-tick-first' : p > 96 ? ' tv-tick-last' : ''), style: {left: p + '%'}}, fmt.durShort(v)));
      this.gridTrack.appendChild(h('span', {class: 'tv-gridline', style: {left: p + '%'}}));
    }
  }

  rulerEvents() {
    let x0 = null;
    const pos = ev => {
      const r = this.ruler.getBoundingClientRect();
      return Math.max(0, Math.min(r.width, ev.clientX - r.left));
    };
    this.ruler.addEventListener('pointerdown', ev => {
      if (ev.button !== 0) return;
      x0 = pos(ev);
      this.ruler.setPointerCapture(ev.pointerId);
    });
    this.ruler.addEventListener('pointermove', ev => {
      if (x0 == null) return;
      const x = pos(ev);
      this.zoomSel.hidden = false;
      this.zoomSel.style.left = Math.min(x, x0) + 'px';
      this.zoomSel.style.width = Math.abs(x - x0) + 'px';
    });
    const end = ev => {
      if (x0 == null) return;
      const x = pos(ev), w = this.ruler.getBoundingClientRect().width || 1;
      this.zoomSel.hidden = true;
      if (Math.abs(x - x0) > 4) {
        const span = this.v1 - this.v0;
        this.zoom(this.v0 + (Math.min(x, x0) / w) * span, this.v0 + (Math.max(x, x0) / w) * span);
      }
      x0 = null;
    };
    this.ruler.addEventListener('pointerup', end);
    this.ruler.addEventListener('pointercancel', () => {
      x0 = null;
      this.zoomSel.hidden = true;
    });
    this.ruler.addEventListener('dblclick', () => this.zoom(0, this.t.total || 1));
  }

  // --- minimap ---------------------------------------------------------

  minimapHeight() {
    return Math.max(24, Math.min(56, this.t.spans.length * 4));
  }

  drawMinimap() {
    const t = this.t, n = t.spans.length;
    const w = this.mapW, hgt = this.minimapHeight();
    if (!w || !n) return;
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(hgt * dpr);
    this.canvas.style.height = hgt + 'px';
    const ctx = this.canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, hgt);
    const total = t.total || 1, rh = hgt / n, bh = Math.max(1, rh > 3 ? rh - 1 : rh);
    const shown = new Uint8Array(n);
    for (const s of this.rows) shown[s.index] = 1;
    // Bars grouped by colour (fewer state changes); folded spans faint.
    const groups = new Map();
    for (const s of t.spans) {
      const key = (this.colors.get(s.service) || model.serviceColor(s.service)) + (shown[s.index] ? '' : '~');
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(s);
    }
    for (const [key, list] of groups) {
      ctx.globalAlpha = key.endsWith('~') ? 0.3 : 1;
      ctx.fillStyle = key.replace('~', '');
      for (const s of list) ctx.fillRect((s.start / total) * w, s.index * rh, Math.max(1, (s.dur / total) * w), bh);
    }
    ctx.globalAlpha = 1;
    ctx.fillStyle = getComputedStyle(this.minimap).getPropertyValue('--err').trim() || '#e5484d';
    let errs = 0;
    for (const s of t.spans) {
      if (!s.error) continue;
      errs++;
      const y = s.index * rh;
      ctx.fillRect((s.start / total) * w, y, Math.max(2, (s.dur / total) * w), Math.max(2, bh));
      ctx.fillRect(0, y, 3, Math.max(2, bh));
    }
    this.minimap.dataset.spans = n;
    this.minimap.dataset.errors = errs;
    this.updateWindow();
  }

  // updateWindow frames, on the minimap, the spans of the rows in view
  // (with what is folded under them) and the zoomed time interval.
  updateWindow(st = this.scroller.scrollTop) {
    const n = this.t.spans.length;
    if (!this.rows.length || !n) return;
    const vis = this.viewRows();
    const first = Math.max(0, Math.min(Math.floor(st / ROW_H), this.rows.length - 1));
    const last = Math.max(first, Math.min(Math.floor((st + vis - 1) / ROW_H), this.rows.length - 1));
    const a = this.rows[first].index;
    const ls = this.rows[last];
    const b = this.isFolded(ls) ? ls.end : ls.index + 1;
    const hgt = this.minimapHeight(), w = this.mapW || 0, total = this.t.total || 1;
    const y0 = Math.min((a / n) * hgt, hgt - 4), y1 = Math.max(y0 + 4, (b / n) * hgt);
    const x0 = (this.v0 / total) * w, x1 = Math.max(x0 + 2, (this.v1 / total) * w);
    Object.assign(this.win.style, {top: y0 + 'px', height: y1 - y0 + 'px', left: x0 + 'px', width: x1 - x0 + 'px'});
    this.win.dataset.firstRow = first;
    this.win.dataset.lastRow = last;
  }

  minimapEvents() {
    let dragging = false;
    const spanAt = ev => {
      const r = this.canvas.getBoundingClientRect();
      const n = this.t.spans.length;
      const i = Math.floor(((ev.clientY - r.top) / (r.height || 1)) * n);
      return this.t.spans[Math.max(0, Math.min(n - 1, i))];
    };
    const go = ev => {
      const s = spanAt(ev);
      if (!s) return;
      const i = this.visibleRowOf(s.id);
      const vis = this.viewRows();
      this.scroller.scrollTop = Math.max(0, i * ROW_H - vis / 2 + ROW_H / 2);
      this.renderWindow(false);
    };
    this.minimap.addEventListener('pointerdown', ev => {
      if (ev.button !== 0) return;
      dragging = true;
      this.minimap.setPointerCapture(ev.pointerId);
      go(ev);
      ev.preventDefault();
    });
    this.minimap.addEventListener('pointermove', ev => {
      if (dragging) return go(ev);
      const s = spanAt(ev);
      if (s) this.canvas.title = `${s.service}: ${s.name} — ${fmt.dur(s.dur)}`;
    });
    const stop = () => {
      dragging = false;
    };
    this.minimap.addEventListener('pointerup', stop);
    this.minimap.addEventListener('pointercancel', stop);
  }
}
