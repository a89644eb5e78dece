// The REST API client: GET JSON from /api/v1 (query/API.md) and the import
// upload. Errors carry the server's message ({"code","message"} or {"error"}).
// Requests carry the API token the UI holds, and ask for one on a 401
// (auth.js).
import * as auth from './auth.js';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const enc = encodeURIComponent;

function query(params) {
  if (!params) return '';
  const q = params instanceof URLSearchParams ? params : new URLSearchParams();
  if (!(params instanceof URLSearchParams)) {
    for (const [k, v] of Object.entries(params)) {
      if (v == null || v === '') continue;
      if (Array.isArray(v)) v.forEach(x => q.append(k, x));
      else q.set(k, String(v));
    }
  }
  const s = q.toString();
  return s ? '?' + s : '';
}

// A query front end (docs/scale-out.md) marks the answers that miss a node
// (Flowscope-Partial, Flowscope-Missing-Peers). partial holds, by API path,
// the nodes its latest answer missed; onPartial's listeners get the union
// after every answer.
const partial = new Map();
const partialListeners = [];

function notePartial(path, missing) {
  const had = partial.size;
  if (missing) partial.set(path, missing);
  else partial.delete(path);
  if (!had && !partial.size) return;
  const peers = [...new Set([...partial.values()].flat())].sort();
  partialListeners.forEach(fn => fn(peers));
}

// onPartial calls fn(peers) whenever the set of nodes missing from the
// latest answers changes (empty: every answer is complete).
export function onPartial(fn) {
  partialListeners.push(fn);
}

// get fetches /api/v1+path with params and returns the decoded JSON.
export function get(path, params, opts = {}) {
  return request('GET', path, params, opts);
}

// post sends body (JSON; default {}) to /api/v1+path and returns the
// decoded answer, as get does.
export function post(path, body = {}, opts = {}) {
  return request('POST', path, null, Object.assign({body}, opts));
}

// message is the server's message in an answer's text: {"code","message"}
// or {"error"} JSON, else the text itself (shortened), else the status.
function message(text, statusText) {
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (body && typeof body === 'object' && (body.message || body.error)) return String(body.message || body.error);
  return (text || '').slice(0, 300) || statusText || 'no answer';
}

// scope is the token a request needs: reads (GET) the read token,
// anything else the write token.
const scope = method => (method === 'GET' || method === 'HEAD' ? 'read' : 'write');

async function request(method, path, params, opts) {
  const url = '/api/v1' + path + query(params);
  const r = await auth.withToken(scope(method), async headers => {
    const init = {method, signal: opts.signal, headers: Object.assign({Accept: 'application/json'}, headers), cache: 'no-store'};
    if (method !== 'GET') {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(opts.body ?? {});
    }
    let resp;
    try {
      resp = await fetch(url, init);
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'cannot reach the collector: ' + e.message);
    }
    const text = await resp.text();
    notePartial(path, resp.headers.get('Flowscope-Partial') === 'true' ? (resp.headers.get('Flowscope-Missing-Peers') || '').split(',').filter(Boolean) : null);
    return {status: resp.status, ok: resp.ok, statusText: resp.statusText, authenticate: resp.headers.get('WWW-Authenticate'), text, message: resp.ok ? '' : message(text, resp.statusText)};
  });
  if (!r.ok) throw new ApiError(r.status, `${r.status}: ${r.message}`);
  try {
    return r.text ? JSON.parse(r.text) : null;
  } catch {
    return null;
  }
}

// upload POSTs a file to /api/v1/import with progress callbacks; resolves
// to {status, body} (body parsed as JSON when possible). It carries the
// write token, asking for it (and sending the file again) on a 401.
export async function upload(file, params, onProgress) {
  const r = await auth.withToken('write', headers => new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/v1/import' + query(params));
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = e => onProgress && onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onload = () => resolve({status: xhr.status, authenticate: xhr.getResponseHeader('WWW-Authenticate'), text: xhr.responseText, message: message(xhr.responseText, xhr.statusText)});
    xhr.onerror = () => reject(new ApiError(0, 'upload failed: network error'));
    xhr.onabort = () => reject(new ApiError(0, 'upload cancelled'));
    xhr.send(file);
  }), {first: true});
  let body = null;
  try {
    body = JSON.parse(r.text);
  } catch {
    body = r.text;
  }
  return {status: r.status, body};
}

// Small caches for lists that many views share.
export async function services(range) {
  return (await serviceList(range)).map(s => s.name);
}

// serviceList returns [{name, spanCount, errorCount}] sorted by name.
export async function serviceList(range) {
  const r = await get('/services', range);
  return r.services || [];
}

export async function operations(service) {
  if (!service) return [];
  const r = await get('/services/' + enc(service) + '/operations');
  return r.operations || [];
}

export async function architectures() {
  try {
    const r = await get('/architectures');
    return r.architectures || [];
  } catch {
    return [];
  }
}
