// DOM helpers. Everything that comes from span data is inserted as text
// (createTextNode / textContent / attribute values), never parsed as
// markup: this module has no innerHTML and the rest of the UI uses only it.

const SVG_NS = 'http://www.w3.org/2000/svg';

// h builds an HTML element: h('a', {href: '#/x', class: 'c'}, 'text', child).
// Strings and numbers among the children become text nodes.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

// s builds an SVG element the same way.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

const PROPS = new Set(['value', 'checked', 'selected', 'disabled', 'multiple', 'indeterminate']);

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'style' && typeof v === 'object') {
      for (const [p, pv] of Object.entries(v)) el.style.setProperty(p, pv);
    } else if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'testid') {
      el.setAttribute('data-testid', v);
    } else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) if (dv != null) el.dataset[dk] = String(dv);
    } else if (k === 'href') {
      el.setAttribute('href', safeHref(v));
    } else if (PROPS.has(k) && !(el instanceof SVGElement)) {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

// safeHref keeps links inside the UI or the API: a fragment route, or an
// absolute path on this origin. Anything else (javascript:, data:) is dropped.
export function safeHref(v) {
  v = String(v);
  return /^#/.test(v) || /^\/(?!\/)/.test(v) ? v : '#';
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// replace empties el and appends children.
export function replace(el, ...children) {
  clear(el);
  return append(el, children);
}

// link builds the href of a route: link('trace', id) or link('traces', '', {service: 'x'}).
export function link(route, arg, params) {
  let href = '#/' + route;
  if (arg) href += '/' + encodeURIComponent(arg);
  const q = params instanceof URLSearchParams ? params : toParams(params);
  const qs = q.toString();
  return qs ? href + '?' + qs : href;
}

export function toParams(obj) {
  const q = new URLSearchParams();
  if (!obj) return q;
  for (const [k, v] of Object.entries(obj)) {
    if (v == null || v === '') continue;
    q.set(k, String(v));
  }
  return q;
}

// message shows a status line (loading, empty, error) in el.
export function message(el, kind, text) {
  return replace(el, h('div', {class: 'msg msg-' + kind, testid: 'msg-' + kind}, text));
}

// debounce delays fn until calls stop for ms.
export function debounce(fn, ms) {
  let t;
  return (...a) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...a), ms);
  };
}

// field wraps a control with a label.
export function field(label, control, extra) {
  return h('label', {class: 'field' + (extra ? ' ' + extra : '')}, h('span', {class: 'field-label'}, label), control);
}

// select builds a <select> of options [{value, label}] or strings.
export function select(options, value, attrs) {
  const el = h('select', attrs);
  fillSelect(el, options, value);
  return el;
}

export function fillSelect(el, options, value) {
  clear(el);
  for (const o of options) {
    const opt = typeof o === 'object' ? o : {value: o, label: o};
    el.appendChild(h('option', {value: opt.value}, opt.label ?? opt.value));
  }
  if (value != null) el.value = value;
  return el;
}

// table builds a table from column headers and rows of cells.
export function table(headers, rows, attrs) {
  return h('table', Object.assign({class: 'tbl'}, attrs),
    h('thead', null, h('tr', null, headers.map(x => h('th', typeof x === 'object' && !(x instanceof Node) ? x.attrs : null, typeof x === 'object' && !(x instanceof Node) ? x.label : x)))),
    h('tbody', null, rows));
}
