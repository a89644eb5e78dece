// The active alerts (GET /api/v1/alerts), fetched once for every part of
// the UI that shows them: the count in the header, the Alerts view and the
// marks on the maps. While anything listens it polls every POLL_MS, and
// only while the page is visible; a listener gets the last answer at once
// and every new one: {alerts, firing, pending, error, at}.
import * as api from './api.js';

export const POLL_MS = 1500;
// An API without alerting routes (404) is asked again only this rarely.
const ABSENT_MS = 60e3;

const listeners = new Set();
let last = null;
let timer = null;
let inflight = false;
let again = false;

// subscribe calls fn with every answer until the returned function is called.
export function subscribe(fn) {
  listeners.add(fn);
  if (last) fn(last);
  if (!timer && !inflight) schedule(0);
  return () => {
    listeners.delete(fn);
    if (!listeners.size) {
      clearTimeout(timer);
      timer = null;
    }
  };
}

// refresh asks at once (after a rules reload, say).
export function refresh() {
  if (inflight) {
    again = true;
    return;
  }
  schedule(0);
}

function schedule(ms) {
  clearTimeout(timer);
  timer = setTimeout(poll, ms);
}

async function poll() {
  timer = null;
  if (!listeners.size) return;
  if (document.hidden) {
    schedule(POLL_MS);
    return;
  }
  inflight = true;
  let next = POLL_MS;
  try {
    const r = await api.get('/alerts');
    const alerts = (r && r.alerts) || [];
    last = {alerts, firing: alerts.filter(a => a.state === 'firing').length, pending: alerts.filter(a => a.state === 'pending').length, error: null, at: Date.now()};
  } catch (e) {
    if (e.status === 404) next = ABSENT_MS;
    last = {alerts: last ? last.alerts : [], firing: last ? last.firing : 0, pending: last ? last.pending : 0, error: e, at: Date.now()};
  } finally {
    inflight = false;
  }
  for (const fn of [...listeners]) {
    try {
      fn(last);
    } catch (e) {
      console.error(e);
    }
  }
  if (listeners.size) schedule(again ? 0 : next);
  again = false;
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && listeners.size && !inflight) schedule(0);
});

// alertKey identifies an alert instance: its rule and key.
export function alertKey(a) {
  return a.rule + '\u0000' + a.key;
}

// alertTarget names what an alert or a history event is about, from its
// labels: "source → target", the service (and operation), or the check.
export function alertTarget(x) {
  if (x.target) return x.target;
  const l = x.labels || {};
  if (l.source && l.target) return `${l.source} → ${l.target}`;
  if (l.service) return l.operation ? `${l.service} · ${l.operation}` : l.service;
  if (l.check) return l.check;
  return x.key || '';
}
