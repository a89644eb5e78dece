// What protects the collector, from GET /api/v1/security (no token
// needed): a warning banner above every view when a listener is exposed
// beyond loopback without TLS or tokens (dismissible for the session),
// and a lock in the header when the collector serves TLS.
import {h, s, replace} from './dom.js';

const DISMISSED = 'flowscope.securityBanner.dismissed';

// status fetches the security status; null when the collector has none to
// give (an older collector) or cannot be reached.
export async function status() {
  try {
    const r = await fetch('/api/v1/security', {headers: {Accept: 'application/json'}, cache: 'no-store'});
    if (!r.ok) return null;
    const st = await r.json();
    return st && typeof st === 'object' ? st : null;
  } catch {
    return null;
  }
}

function warningsOf(st) {
  return st && Array.isArray(st.warnings) ? st.warnings.filter(w => typeof w === 'string' && w) : [];
}

function dismissedFor() {
  try {
    return sessionStorage.getItem(DISMISSED);
  } catch {
    return null;
  }
}

// banner fills el with the status's warnings, unless the same warnings
// were dismissed in this session; el is hidden when there is nothing to
// show.
export function banner(el, st) {
  const warnings = warningsOf(st);
  const key = JSON.stringify(warnings);
  if (!warnings.length || dismissedFor() === key) {
    el.hidden = true;
    replace(el);
    return;
  }
  const dismiss = h('button', {type: 'button', class: 'btn btn-ghost small security-dismiss', testid: 'security-banner-dismiss', title: 'Hide this warning until the tab is closed', onclick: () => {
    try {
      sessionStorage.setItem(DISMISSED, key);
    } catch {
      /* hidden for this page only */
    }
    el.hidden = true;
    replace(el);
  }}, 'Dismiss');
  replace(el,
    h('div', {class: 'security-body'},
      h('strong', null, 'This collector is exposed. '),
      'Anyone who reaches ', warnings.length === 1 ? 'this listener' : 'these listeners', ' may read the traces or send data:',
      h('ul', {class: 'security-warnings'}, warnings.map(w => h('li', {testid: 'security-warning'}, w))),
      h('span', {class: 'small'}, 'To require TLS, tokens and known host names, see ', h('span', {class: 'mono', testid: 'security-docs'}, 'docs/security.md'), '.')),
    dismiss);
  el.hidden = false;
}

// lock fills el with a lock while the collector serves TLS.
export function lock(el, st) {
  const on = !!(st && st.tls);
  el.hidden = !on;
  if (!on) return replace(el);
  const what = st.mutualTls ? 'TLS with client certificates (mutual TLS)' : 'TLS';
  el.title = 'This collector serves ' + what;
  el.setAttribute('aria-label', 'Served over ' + what);
  replace(el, s('svg', {viewBox: '0 0 16 16', width: 14, height: 14, 'aria-hidden': 'true'},
    s('path', {d: 'M5 7V5a3 3 0 0 1 6 0v2', fill: 'none', stroke: 'currentColor', 'stroke-width': 1.6}),
    s('rect', {x: 3, y: 7, width: 10, height: 7, rx: 1.5, fill: 'currentColor'})),
  st.mutualTls ? h('span', {class: 'tiny'}, 'mTLS') : null);
}
