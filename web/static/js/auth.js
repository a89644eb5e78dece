// Bearer tokens for the API (docs/security.md). A collector may require a
// read token for its data (GETs) and a write token for imports, reloads
// and manual runs; the write token also reads. When the API answers 401,
// the UI asks for the token of the scope the answer names, in one modal
// dialog at a time (requests refused meanwhile wait for the same answer),
// and sends it again. A token is kept for the tab's session
// (sessionStorage), or on the device (localStorage) when the user asks.
//
// A token only ever travels in the Authorization header: it is never put
// in a URL, the route, the console, an error message or a DOM attribute
// (the password input holds it as its value while it is typed, and is
// emptied on submit).
import {h, replace} from './dom.js';

const SCOPES = ['read', 'write'];
const KEY = {read: 'flowscope.token.read', write: 'flowscope.token.write'};

function stores() {
  const out = [];
  for (const name of ['sessionStorage', 'localStorage']) {
    try {
      if (window[name]) out.push(window[name]);
    } catch {
      /* storage disabled: tokens live in memory only */
    }
  }
  return out;
}

function loadStored(scope) {
  for (const st of stores()) {
    try {
      const v = st.getItem(KEY[scope]);
      if (v) return v;
    } catch {
      /* unreadable: not kept */
    }
  }
  return null;
}

function removeStored(scope) {
  for (const st of stores()) {
    try {
      st.removeItem(KEY[scope]);
    } catch {
      /* nothing to remove */
    }
  }
}

// save keeps token in sessionStorage, or in localStorage when remember is
// set, and removes it from the other.
function save(scope, token, remember) {
  removeStored(scope);
  try {
    (remember ? localStorage : sessionStorage).setItem(KEY[scope], token);
  } catch {
    /* storage full or disabled: the token stays in memory */
  }
}

const tokens = {read: loadStored('read'), write: loadStored('write')};
// unsaved maps a token typed in the dialog to where it is to be kept once
// an answer other than 401 shows that the collector takes it.
const unsaved = new Map();
// declined is set when the user cancels the read dialog: reads then fail
// with the server's 401 instead of asking again (polls would reopen it)
// until the user asks for the dialog with the header's button.
let declined = false;
const listeners = new Set();
// configured is which tokens the collector requires, from GET
// /api/v1/security (setConfigured); unknown until then.
const configured = {read: false, write: false};

// setConfigured records the tokens the collector requires
// ({ingest, read, write} booleans of GET /api/v1/security).
export function setConfigured(t) {
  configured.read = !!(t && t.read);
  configured.write = !!(t && t.write);
}

function notify() {
  for (const fn of listeners) fn();
}

// token returns the token to send for scope: the write token for writes;
// for reads the read token, else the write token (which also reads).
export function token(scope) {
  return scope === 'write' ? tokens.write : tokens.read || tokens.write;
}

// held reports whether the UI holds any token.
export function held() {
  return SCOPES.some(s => tokens[s]);
}

// scopeOf reads the scope a 401's WWW-Authenticate header asks for.
export function scopeOf(header) {
  const m = /\bscope="?(read|write)"?/i.exec(header || '');
  return m ? m[1].toLowerCase() : null;
}

// withToken runs attempt(headers) — one request carrying the token for
// scope in headers — and while the answer is a 401 asks for the token and
// runs it again. attempt resolves to {status, authenticate, message}: the
// HTTP status, the WWW-Authenticate header and the server's message. The
// last answer is returned: a 401 when the user cancelled the dialog.
// An upload (set upload) asks for the token before its first request when
// the collector is known to require one (a large body refused early may
// end in a network error rather than its 401), and its dialog closes as
// soon as a token is entered: the upload's own progress shows what follows.
export async function withToken(scope, attempt, {upload = false} = {}) {
  if (upload && configured[scope] && !token(scope) && !(await ask(scope, '', false))) {
    const message = `the ${scope} token is needed`;
    return {status: 401, authenticate: '', text: JSON.stringify({code: 401, message}), message};
  }
  let need = scope; // the scope the last 401 named
  for (;;) {
    const sent = token(need);
    let r;
    try {
      r = await attempt(sent ? {Authorization: 'Bearer ' + sent} : {});
    } catch (e) {
      settled(sent, false);
      throw e;
    }
    if (r.status !== 401) {
      settled(sent, true);
      return r;
    }
    need = scopeOf(r.authenticate) || need;
    const next = await rejected(need, sent, r.message, !upload);
    if (!next) return r;
  }
}

// rejected handles a 401 for scope to a request that carried sent (or no
// token): a held token the collector refused is dropped; it resolves to
// the token to try next, or null to give up.
function rejected(scope, sent, message, verify) {
  if (sent) {
    for (const s of SCOPES) {
      if (tokens[s] === sent) {
        tokens[s] = null;
        removeStored(s);
      }
    }
    unsaved.delete(sent);
    notify();
  }
  const cur = token(scope);
  if (cur && cur !== sent) return Promise.resolve(cur); // set meanwhile
  if (scope === 'read' && declined) return Promise.resolve(null);
  return ask(scope, sent ? message || 'The collector refused this token.' : '', verify);
}

// settled records the outcome of a request that carried tok: accepted
// (any answer but 401) keeps a newly typed token as the user chose, and
// closes the dialog that waited for it.
function settled(tok, accepted) {
  if (!tok) return;
  const u = unsaved.get(tok);
  if (u && accepted) {
    unsaved.delete(tok);
    if (tokens[u.scope] === tok) save(u.scope, tok, u.remember);
  }
  if (active && active.checking === tok) close(active);
}

// forget drops every token (memory and both storages) and reloads the UI,
// so nothing read with them stays on screen.
export function forget() {
  for (const s of SCOPES) {
    tokens[s] = null;
    removeStored(s);
  }
  unsaved.clear();
  declined = false;
  notify();
  location.reload();
}

// ---- the dialog ----

const TEXT = {
  read: {
    title: 'Read token needed',
    help: 'This collector requires a bearer token to show its data: the read token configured with FLOWSCOPE_READ_TOKEN or --read-token-file (the write token works too).',
    label: 'Read token',
  },
  write: {
    title: 'Write token needed',
    help: 'Imports, reloads and manual runs of checks require the write token configured with FLOWSCOPE_WRITE_TOKEN or --write-token-file.',
    label: 'Write token',
  },
};

let active = null; // the prompt on screen
const queue = []; // prompts waiting for it to close
let seq = 0;

function deferred() {
  let resolve;
  const promise = new Promise(r => (resolve = r));
  return {promise, resolve};
}

// ask returns the token the user gives for scope, or null when they
// cancel. Requests asking while a dialog for the same scope is open or
// queued wait for that one. With verify, the dialog stays open (checking)
// until a request shows whether the collector takes the token.
function ask(scope, error, verify = true) {
  let p = active && active.scope === scope ? active : queue.find(q => q.scope === scope);
  if (!p) {
    p = {scope, verify, waiting: deferred(), checking: null, error: '', el: null};
    queue.push(p);
  }
  if (error) {
    p.error = error;
    if (p === active) {
      p.checking = null;
      p.show();
    }
  }
  pump();
  return p.waiting.promise;
}

function pump() {
  while (!active && queue.length) {
    const p = queue.shift();
    // A token given in an earlier dialog (the write token reads too).
    const t = token(p.scope);
    if (t) {
      p.waiting.resolve(t);
      continue;
    }
    active = p;
    open(p);
  }
}

function open(p) {
  const id = 'auth-' + ++seq;
  const txt = TEXT[p.scope];
  const input = h('input', {type: 'password', id: id + '-input', class: 'auth-input', testid: 'auth-token', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off', required: true, 'aria-describedby': id + '-help ' + id + '-error'});
  const remember = h('input', {type: 'checkbox', testid: 'auth-remember', checked: remembering()});
  const error = h('p', {class: 'form-error auth-error', id: id + '-error', testid: 'auth-error', role: 'alert'});
  const status = h('span', {class: 'small dim', testid: 'auth-status', 'aria-live': 'polite'});
  const submit = h('button', {type: 'submit', class: 'btn btn-primary', testid: 'auth-submit'}, 'Continue');
  const cancel = h('button', {type: 'button', class: 'btn', testid: 'auth-cancel', onclick: () => dismiss(p)}, 'Cancel');
  const form = h('form', {class: 'auth-form', novalidate: true},
    h('h2', {id: id + '-title'}, txt.title),
    h('p', {id: id + '-help', class: 'dim small'}, txt.help),
    h('label', {class: 'field', for: id + '-input'}, h('span', {class: 'field-label'}, txt.label), input),
    h('label', {class: 'check small'}, remember, 'Remember on this device'),
    h('p', {class: 'tiny dim'}, 'Unchecked, the token is forgotten when this tab closes.'),
    error,
    h('div', {class: 'auth-actions'}, status, cancel, submit));
  const dlg = h('dialog', {class: 'auth-dialog', testid: 'auth-dialog', dataset: {scope: p.scope}, 'aria-labelledby': id + '-title', 'aria-describedby': id + '-help'}, form);
  form.addEventListener('submit', ev => {
    ev.preventDefault();
    if (p.checking) return;
    const t = input.value.trim();
    input.value = '';
    if (!t) {
      p.error = 'Enter the token.';
      return p.show();
    }
    if (/[^\x21-\x7e]/.test(t)) {
      p.error = 'A token is printable ASCII text without spaces.';
      return p.show();
    }
    p.error = '';
    tokens[p.scope] = t;
    unsaved.set(t, {scope: p.scope, remember: remember.checked});
    notify();
    const w = p.waiting;
    p.waiting = deferred(); // for requests that the token does not satisfy
    if (p.verify) {
      p.checking = t;
      p.show();
    } else {
      close(p);
    }
    w.resolve(t);
  });
  // Escape cancels (the dialog's own cancel event), except while a token
  // is being checked.
  dlg.addEventListener('cancel', ev => {
    ev.preventDefault();
    if (!p.checking) dismiss(p);
  });
  p.show = () => {
    replace(error, p.error);
    error.hidden = !p.error;
    replace(status, p.checking ? 'Checking…' : '');
    submit.disabled = cancel.disabled = input.disabled = !!p.checking;
    if (!p.checking) input.focus();
  };
  p.el = dlg;
  p.returnFocus = document.activeElement;
  document.body.appendChild(dlg);
  dlg.showModal();
  p.show();
}

// remembering reports whether a token is kept on the device, the choice
// the next dialog starts with.
function remembering() {
  try {
    return SCOPES.some(s => localStorage.getItem(KEY[s]));
  } catch {
    return false;
  }
}

// dismiss closes p without a token: its requests fail with the 401.
function dismiss(p) {
  if (p.scope === 'read') {
    declined = true;
    notify();
  }
  p.waiting.resolve(null);
  close(p);
}

function close(p) {
  if (p.el) {
    if (p.el.open) p.el.close();
    p.el.remove();
    p.el = null;
  }
  if (active === p) active = null;
  // Requests that joined after the token was entered go on with what is held.
  p.waiting.resolve(token(p.scope));
  const back = p.returnFocus;
  if (back && back.isConnected && typeof back.focus === 'function') back.focus();
  pump();
}

// control is the header's token button: "Forget tokens" while the UI
// holds one, "Enter token" after the read dialog was cancelled.
export function control() {
  const forgetBtn = h('button', {type: 'button', class: 'btn btn-ghost small', testid: 'auth-forget', title: 'Remove the API tokens from this browser and reload', onclick: forget}, 'Forget tokens');
  const enterBtn = h('button', {type: 'button', class: 'btn btn-ghost small', testid: 'auth-enter', title: 'Enter the read token', onclick: () => {
    declined = false;
    location.reload();
  }}, 'Enter token');
  const box = h('span', {class: 'auth-control'}, enterBtn, forgetBtn);
  const update = () => {
    forgetBtn.hidden = !held();
    enterBtn.hidden = !declined || !!token('read');
  };
  listeners.add(update);
  update();
  return box;
}
