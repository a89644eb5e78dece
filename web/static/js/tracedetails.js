// The selected span's details, beside the waterfall: IDs, status, timing,
// attributes, events, links (to the linked trace and span), scope and
// resource, each value with a copy button. Span data is inserted as text.
import {h, s as svg, replace, link, table} from './dom.js';
import * as fmt from './fmt.js';

// render fills el with span sp of trace t. color is the service's colour;
// onSpan(id) shows another span of the trace (the parent).
export function render(el, sp, t, {color, onSpan}) {
  if (!sp) return replace(el, h('div', {class: 'msg msg-empty'}, 'Click a span, or press Enter on one, for its details.'));
  const parent = sp.parent && t.byId.get(sp.parent);
  const status = sp.error ? 'ERROR' : fmt.num(sp.status.code) === 1 ? 'OK' : 'unset';
  const kv = list => (list.length
    ? table(['key', 'value'], list.map(([k, v]) => h('tr', null, h('td', {class: 'attr-key'}, k), h('td', {class: 'attr-val'}, copyable(v, 'Copy the value of ' + k)))), {class: 'tbl tv-kv'})
    : h('div', {class: 'dim small'}, 'none'));
  replace(el,
    h('div', {class: 'tv-details-head'},
      h('h2', {testid: 'span-title'}, h('span', {class: 'svc', style: {'border-color': color}}, sp.service), ' ', sp.name),
      h('div', {class: 'tv-details-sub small dim'}, `${sp.kind} · ${fmt.dur(sp.dur)}`, sp.error ? h('span', {class: 'tag tag-err'}, 'error') : null)),
    h('dl', {class: 'kv tv-ids'},
      dt('span ID', copyable(sp.id, 'Copy the span ID', 'mono'), 'detail-span-id'),
      dt('trace ID', copyable(sp.traceId || t.spans[0]?.traceId || '', 'Copy the trace ID', 'mono')),
      dt('parent', sp.parent
        ? h('span', null, parent
          ? h('a', {href: '#', class: 'mono', testid: 'detail-parent', onclick: ev => {
            ev.preventDefault();
            onSpan(parent.id);
          }}, sp.parent)
          : h('span', {class: 'mono'}, sp.parent + ' (not in this trace)'), copyButton(sp.parent, 'Copy the parent span ID'))
        : 'root'),
      dt('kind', sp.kind),
      dt('status', h('span', {class: sp.error ? 'err' : ''}, status, sp.status.message ? [': ', copyable(sp.status.message, 'Copy the status message')] : null), 'detail-status'),
      dt('start', `${fmt.time(sp.startMs)} (+${fmt.dur(sp.start)})`),
      dt('duration', copyable(fmt.dur(sp.dur), 'Copy the duration')),
      dt('self time', fmt.dur(sp.self)),
      dt('critical path', t.critical.has(sp.id) ? 'yes' : 'no'),
      sp.scope ? dt('scope', copyable(sp.scope, 'Copy the scope')) : null,
      sp.traceState ? dt('trace state', copyable(sp.traceState, 'Copy the trace state', 'mono')) : null),
    h('h3', null, `Attributes (${sp.attributes.length})`), h('div', {testid: 'span-attributes'}, kv(sp.attributes)),
    h('h3', null, `Events (${sp.events.length})`),
    sp.events.length
      ? table(['at', 'name', 'attributes'], sp.events.map(e => h('tr', {testid: 'span-event'},
        h('td', {class: 'num nowrap'}, '+' + fmt.dur(e.offset)),
        h('td', null, copyable(e.name, 'Copy the event name')),
        h('td', {class: 'small'}, e.attributes.map(([k, v]) => h('div', null, h('span', {class: 'attr-key'}, k), ' = ', copyable(v, 'Copy the value of ' + k)))))))
      : h('div', {class: 'dim small'}, 'none'),
    h('h3', null, `Links (${sp.links.length})`),
    sp.links.length
      ? table(['trace · span', 'attributes'], sp.links.map(l => h('tr', {testid: 'span-link'},
        h('td', null,
          h('div', null, h('a', {href: link('trace', l.traceId, l.spanId ? {span: l.spanId} : null), class: 'mono', testid: 'span-link-href', title: 'Open the linked span'}, l.traceId), copyButton(l.traceId, 'Copy the linked trace ID')),
          l.spanId ? h('div', {class: 'small'}, 'span ', copyable(l.spanId, 'Copy the linked span ID', 'mono')) : null),
        h('td', {class: 'small'}, l.attributes.map(([k, v]) => h('div', null, h('span', {class: 'attr-key'}, k), ' = ', copyable(v, 'Copy the value of ' + k)))))))
      : h('div', {class: 'dim small'}, 'none'),
    h('h3', null, 'Resource'), h('div', {testid: 'span-resource'}, kv(sp.resource)));
  el.scrollTop = 0;
  return el;
}

function dt(k, v, testid) {
  return [h('dt', null, k), h('dd', testid ? {testid} : null, v)];
}

// copyable is a value and its copy button.
function copyable(text, label, cls) {
  const v = h('span', {class: 'tv-val' + (cls ? ' ' + cls : '')}, text);
  return h('span', {class: 'tv-copyable'}, v, copyButton(text, label, v));
}

// copyButton copies text with the Clipboard API; where that fails (no
// permission, not a secure context) it selects the value instead, for
// Ctrl+C. The button's data-copied says which happened.
function copyButton(text, label, valueEl) {
  const b = h('button', {type: 'button', class: 'tv-copy', title: label, 'aria-label': label, testid: 'copy'},
    svg('svg', {viewBox: '0 0 16 16', width: 12, height: 12, 'aria-hidden': 'true'},
      svg('rect', {x: 5, y: 5, width: 9, height: 9, rx: 1.5}), svg('path', {d: 'M11 3V2.5A1.5 1.5 0 0 0 9.5 1h-7A1.5 1.5 0 0 0 1 2.5v7A1.5 1.5 0 0 0 2.5 11H3'})));
  const done = how => {
    b.dataset.copied = how;
    b.title = how === 'ok' ? 'Copied' : 'Selected: press Ctrl+C to copy';
    clearTimeout(b.timer);
    b.timer = setTimeout(() => {
      delete b.dataset.copied;
      b.title = label;
    }, 2000);
  };
  const select = () => {
    const target = valueEl || b.previousElementSibling;
    if (target) {
      const r = document.createRange();
      r.selectNodeContents(target);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
    }
    done('selected');
  };
  b.addEventListener('click', ev => {
    ev.stopPropagation();
    try {
      if (!navigator.clipboard || !navigator.clipboard.writeText) return select();
      navigator.clipboard.writeText(String(text)).then(() => done('ok'), select);
    } catch {
      select();
    }
  });
  return b;
}
