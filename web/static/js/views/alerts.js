// Alerts: the active alert instances (GET /api/v1/alerts, shared with the
// header count through alertfeed.js) — firing, then pending — and those
// resolved in the last hour (GET /alerts/history), each with its value
// over time against the threshold, labels, annotations and links to its
// exemplar traces; the history of one rule (#/alerts?rule=NAME) or of
// all; the rules with their health and the last reload error (GET /rules),
// and a button for POST /rules:reload. Refreshed every 1.5 s while
// visible. Rule names, labels and annotations are operator and span text:
// like everything else they are inserted as text, never as markup.
import {h, replace, link, field, select, fillSelect, table} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import {lineChart, legend} from '../charts.js';
import {subscribe, refresh as refreshFeed, alertKey, alertTarget} from '../alertfeed.js';

// RESOLVED_MS is how far back "recently resolved" looks.
export const RESOLVED_MS = 3600e3;
// HISTORY_MS is how often the history is read again when nothing changed.
const HISTORY_MS = 5000;
const HISTORY_LIMIT = 200;
const CHART_W = 440, CHART_H = 150;
const THRESHOLD_COLOR = '#e5484d', RECOVER_COLOR = '#8b95a3', VALUE_COLOR = '#4ea1ff';

export default function mount(el, ctx) {
  let params = ctx.params;
  const P = k => params.get(k) || '';
  let alive = true;
  let feed = null; // the last answer of alertfeed
  let rules = null; // GET /rules
  let rulesErr = null;
  let rulesSeq = 0;
  let histSeq = 0;
  let histAt = 0;
  let histSig = '';
  let resolvedEvents = null;
  let historyEvents = null;
  let histErr = null;

  const status = h('span', {class: 'status dim', testid: 'alerts-status'}, 'loading…');
  const ruleSel = select([{value: '', label: 'all rules'}], P('rule'), {testid: 'alerts-rule', onchange: () => ctx.setParams({rule: ruleSel.value}, {push: true})});
  const reloadMsg = h('span', {class: 'small', testid: 'rules-reload-result'});
  const reloadBtn = h('button', {type: 'button', class: 'btn', testid: 'rules-reload', title: 'Read the rules files again (POST /api/v1/rules:reload), as SIGHUP does', onclick: () => reload()}, 'Reload rules');
  const toolbar = h('div', {class: 'toolbar'}, field('Rule', ruleSel), h('span', {class: 'inline'}, reloadBtn, reloadMsg), status);
  const banner = h('div', {testid: 'rules-banner'});
  const ruleBox = h('div', {testid: 'rule-detail'});
  const firing = section('Firing', 'alerts-firing', 'Nothing is firing.');
  const pending = section('Pending', 'alerts-pending', 'Nothing is pending.');
  const resolvedBox = h('div');
  const resolvedCount = h('span', {class: 'count dim'});
  const historyTitle = h('span');
  const historyBox = h('div');
  const rulesBox = h('div');
  const rulesCount = h('span', {class: 'count dim'});
  el.append(
    h('h1', null, 'Alerts'), toolbar, banner, ruleBox, firing.el, pending.el,
    h('section', {class: 'alerts-section', testid: 'alerts-resolved'}, h('h2', null, 'Recently resolved ', resolvedCount, h('span', {class: 'dim small'}, ' last hour')), resolvedBox),
    h('section', {class: 'alerts-section', testid: 'alert-history'}, h('h2', null, historyTitle), historyBox),
    h('section', {class: 'alerts-section', testid: 'rules'}, h('h2', null, 'Rules ', rulesCount), rulesBox));

  const ruleOf = name => (rules ? rules.rules.find(r => r.name === name) : null);

  // ---- active alerts ----

  function renderActive() {
    if (!feed) return;
    const now = Date.now();
    const rule = P('rule');
    const list = feed.alerts.filter(a => !rule || a.rule === rule);
    reconcile(firing, list.filter(a => a.state === 'firing'), now);
    reconcile(pending, list.filter(a => a.state !== 'firing'), now);
    if (feed.error) {
      status.className = 'status err';
      replace(status, 'Alerts: ' + feed.error.message);
    } else {
      status.className = 'status dim';
      replace(status, `${feed.firing} firing · ${feed.pending} pending · updated ${fmt.clock(feed.at)}`);
    }
  }

  function reconcile(sec, list, now) {
    sec.count.textContent = `(${list.length})`;
    sec.none.hidden = list.length > 0;
    const keep = new Set();
    let prev = null;
    for (const a of list) {
      const k = alertKey(a);
      keep.add(k);
      let c = sec.cards.get(k);
      if (!c) sec.cards.set(k, (c = newCard()));
      updateCard(c, a, ruleOf(a.rule), now);
      const want = prev ? prev.nextSibling : sec.list.firstChild;
      if (want !== c.el) sec.list.insertBefore(c.el, want);
      prev = c.el;
    }
    for (const [k, c] of sec.cards) {
      if (!keep.has(k)) {
        c.el.remove();
        sec.cards.delete(k);
      }
    }
  }

  // ---- history: recently resolved, and the events of one rule or all ----

  async function loadHistory(sig) {
    const my = ++histSeq;
    histSig = sig;
    histAt = Date.now();
    const rule = P('rule');
    try {
      const [rec, hist] = await Promise.all([
        api.get('/alerts/history', {rule, start: Date.now() - RESOLVED_MS, limit: 1000}),
        api.get('/alerts/history', {rule, limit: HISTORY_LIMIT}),
      ]);
      if (!alive || my !== histSeq) return;
      resolvedEvents = rec.events || [];
      historyEvents = hist.events || [];
      histErr = null;
    } catch (e) {
      if (!alive || my !== histSeq) return;
      histErr = e;
    }
    renderResolved();
    renderHistory();
  }

  function maybeLoadHistory(force) {
    const sig = P('rule') + '\u0000' + (feed ? feed.alerts.map(a => alertKey(a) + a.state).join('\u0001') : '');
    if (force || sig !== histSig || Date.now() - histAt > HISTORY_MS) loadHistory(sig);
  }

  function renderResolved() {
    if (histErr) return replace(resolvedBox, h('div', {class: 'msg msg-error'}, 'History: ' + histErr.message));
    if (!resolvedEvents) return;
    const evs = resolvedEvents;
    const rows = [];
    evs.forEach((ev, i) => {
      if (ev.kind !== 'transition' || ev.from !== 'firing' || ev.to !== 'inactive') return;
      // When it fired: the older transition of the same instance to firing.
      const fired = evs.slice(i + 1).find(x => x.kind === 'transition' && x.rule === ev.rule && x.key === ev.key && x.to === 'firing');
      rows.push({ev, fired});
    });
    resolvedCount.textContent = `(${rows.length})`;
    if (!rows.length) return replace(resolvedBox, h('div', {class: 'msg msg-empty small'}, 'Nothing resolved in the last hour.'));
    const now = Date.now();
    replace(resolvedBox, table(['resolved', 'rule', 'target', 'fired for', 'last value', 'threshold', 'labels', 'exemplars'], rows.map(({ev, fired}) => {
      const r = ruleOf(ev.rule), unit = r ? r.unit : '';
      const t = fmt.parseTime(ev.time);
      return h('tr', {testid: 'resolved-row', dataset: {rule: ev.rule, key: ev.key}},
        h('td', {class: 'nowrap', title: fmt.time(t)}, fmt.clock(t), h('div', {class: 'dim tiny'}, fmt.age(now - t) + ' ago')),
        h('td', null, h('a', {href: link('alerts', '', {rule: ev.rule}), class: 'alert-rule'}, ev.rule)),
        h('td', null, alertTarget(ev)),
        h('td', {class: 'num'}, fired ? fmt.age(t - fmt.parseTime(fired.time)) : '–'),
        h('td', {class: 'num'}, fmt.unitValue(ev.value, unit)),
        h('td', {class: 'num'}, fmt.unitValue(ev.threshold, unit)),
        h('td', null, labelTags(ev.labels)),
        h('td', null, exemplarLinks(ev.exemplars)));
    }), {testid: 'resolved-table'}));
  }

  function renderHistory() {
    const rule = P('rule');
    replace(historyTitle, rule ? ['History of ', h('span', {class: 'alert-rule'}, rule)] : 'History of all rules');
    if (histErr) return replace(historyBox, h('div', {class: 'msg msg-error'}, 'History: ' + histErr.message));
    if (!historyEvents) return;
    if (!historyEvents.length) return replace(historyBox, h('div', {class: 'msg msg-empty small'}, rule ? 'No events of this rule yet.' : 'No alert events yet.'));
    const r = rule ? ruleOf(rule) : null;
    replace(historyBox,
      h('p', {class: 'dim small'}, `State changes and notification deliveries, newest first (at most ${HISTORY_LIMIT}).`),
      table(['time', rule ? null : 'rule', 'target', 'event', 'value', 'threshold', 'exemplars'].filter(Boolean), historyEvents.map(ev => {
        const unit = (r || ruleOf(ev.rule) || {}).unit || '';
        const t = fmt.parseTime(ev.time);
        return h('tr', {testid: 'history-row', class: 'hist-' + ev.kind, dataset: {kind: ev.kind, from: ev.from, to: ev.to}},
          h('td', {class: 'nowrap dim', title: fmt.time(t)}, fmt.time(t).slice(5, 19)),
          rule ? null : h('td', null, h('a', {href: link('alerts', '', {rule: ev.rule}), class: 'alert-rule'}, ev.rule)),
          h('td', null, alertTarget(ev)),
          h('td', null, eventText(ev)),
          h('td', {class: 'num'}, ev.kind === 'transition' ? fmt.unitValue(ev.value, unit) : ''),
          h('td', {class: 'num'}, ev.kind === 'transition' ? fmt.unitValue(ev.threshold, unit) : ''),
          h('td', null, exemplarLinks(ev.exemplars)));
      }), {testid: 'history-table'}));
  }

  // ---- rules ----

  async function loadRules() {
    const my = ++rulesSeq;
    try {
      const r = await api.get('/rules');
      if (!alive || my !== rulesSeq) return;
      rules = r;
      rulesErr = null;
    } catch (e) {
      if (!alive || my !== rulesSeq) return;
      rulesErr = e;
    }
    if (renderRules()) {
      // The rules give the units of the history's values.
      renderResolved();
      renderHistory();
    }
    renderActive();
    el.dataset.state = rulesErr ? 'error' : 'ready';
  }

  let rulesSig = '';
  const evalCells = new Map();
  // renderRules draws the rules and reports whether they changed.
  function renderRules() {
    const now = Date.now();
    const sel = P('rule');
    const list = rules ? rules.rules : [];
    const sig = JSON.stringify([sel, rulesErr && rulesErr.message, rules && Object.assign({}, rules, {rules: list.map(r => Object.assign({}, r, {lastEvaluation: '', evaluationDurationSeconds: 0}))})]);
    const changed = sig !== rulesSig;
    if (changed) {
      rulesSig = sig;
      const names = list.map(r => r.name);
      fillSelect(ruleSel, [{value: '', label: 'all rules'}, ...names.map(n => ({value: n, label: n})), ...(sel && !names.includes(sel) ? [{value: sel, label: sel + ' (not loaded)'}] : [])], sel);
      reloadBtn.disabled = !!rules && !rules.path;
      const parts = [];
      if (rulesErr) parts.push(h('div', {class: 'msg msg-error', testid: 'rules-error'}, 'Rules: ' + rulesErr.message));
      if (rules && !rules.path) {
        parts.push(h('div', {class: 'card msg', testid: 'no-rules'}, 'No alert rules are loaded. Start the collector with --rules PATH (a rules file or a directory of *.yml files), FLOWSCOPE_RULES, or alerting.rules in its config file; see docs/alerting.md.'));
      }
      if (rules && rules.lastReloadError) {
        parts.push(h('div', {class: 'card alert-banner', testid: 'reload-error'},
          h('strong', null, 'The last reload failed'), rules.lastReloadAt ? ` (${fmt.time(fmt.parseTime(rules.lastReloadAt))})` : '',
          rules.loadedAt ? `; the rules loaded at ${fmt.time(fmt.parseTime(rules.loadedAt))} are still in use` : '', ':',
          h('pre', {class: 'mono err reload-error'}, rules.lastReloadError)));
      }
      replace(banner, parts);
      renderRuleDetail();
      rulesCount.textContent = `(${list.length})`;
      evalCells.clear();
      if (!list.length) replace(rulesBox, h('div', {class: 'msg msg-empty small'}, rules && rules.path ? 'The rules files define no rule.' : 'None.'));
      else {
        replace(rulesBox,
          rules.path ? h('p', {class: 'dim small'}, 'From ', h('span', {class: 'mono'}, rules.path), rules.loadedAt ? `, loaded ${fmt.time(fmt.parseTime(rules.loadedAt))}` : '', '.') : null,
          table(['rule', 'condition', 'window', 'health', 'last evaluation', 'active', 'file'], list.map(r => {
            const evalCell = h('td', {class: 'nowrap dim small'});
            evalCells.set(r.name, evalCell);
            return h('tr', {testid: 'rule-row', class: r.name === sel ? 'selected' : null, dataset: {name: r.name, health: r.health}},
              h('td', null, h('a', {href: link('alerts', '', {rule: r.name}), class: 'alert-rule', testid: 'rule-link'}, r.name)),
              h('td', null, condition(r), h('div', {class: 'dim tiny'}, selection(r))),
              h('td', {class: 'nowrap'}, secs(r.windowSeconds), r.forSeconds ? h('div', {class: 'dim tiny'}, 'for ' + secs(r.forSeconds)) : null),
              h('td', null, h('span', {class: 'badge badge-health-' + r.health, testid: 'rule-health'}, r.health), r.lastError ? h('div', {class: 'err small', testid: 'rule-error'}, r.lastError) : null),
              evalCell,
              h('td', {class: 'nowrap'}, r.firing ? h('span', {class: 'badge badge-firing'}, `${r.firing} firing`) : null, ' ', r.pending ? h('span', {class: 'badge badge-pending'}, `${r.pending} pending`) : null),
              h('td', {class: 'mono dim tiny'}, r.file ? `${r.file}:${r.line}` : ''));
          }), {testid: 'rules-table'}));
      }
    }
    for (const r of list) {
      const c = evalCells.get(r.name);
      if (!c) continue;
      const t = fmt.parseTime(r.lastEvaluation);
      c.textContent = Number.isFinite(t) ? `${fmt.age(now - t)} ago, took ${fmt.dur(fmt.num(r.evaluationDurationSeconds) * 1e9)}` : 'not yet';
    }
    return changed;
  }

  function renderRuleDetail() {
    const name = P('rule');
    if (!name) return replace(ruleBox);
    const r = ruleOf(name);
    if (!r) {
      return replace(ruleBox, h('div', {class: 'card msg', testid: 'rule-missing'}, 'Rule ', h('span', {class: 'alert-rule'}, name), ' is not among the loaded rules; its history is shown below. ', h('a', {href: link('alerts')}, 'All rules')));
    }
    const kv = (k, v) => (v == null || v === '' ? null : [h('dt', null, k), h('dd', null, v)]);
    const annotations = Object.entries(r.annotations || {});
    replace(ruleBox, h('section', {class: 'card rule-detail'},
      h('div', {class: 'alert-head'}, h('span', {class: 'badge badge-health-' + r.health}, r.health), h('h2', {class: 'alert-rule', testid: 'rule-title'}, r.name), h('a', {href: link('alerts'), class: 'small'}, 'all rules')),
      h('dl', {class: 'kv'},
        kv('condition', condition(r)),
        kv('selection', selection(r)),
        kv('window', secs(r.windowSeconds)),
        kv('pending for', r.forSeconds ? secs(r.forSeconds) : '0 (fires at once)'),
        kv('keep firing for', r.keepFiringForSeconds ? secs(r.keepFiringForSeconds) : null),
        kv('min count', r.minCount ? String(r.minCount) : null),
        kv('labels', Object.keys(r.labels || {}).length ? labelTags(r.labels) : null),
        annotations.map(([k, v]) => kv('annotation ' + k, h('span', {class: 'mono'}, v))),
        kv('last error', r.lastError ? h('span', {class: 'err'}, r.lastError) : null),
        kv('defined in', r.file ? h('span', {class: 'mono'}, `${r.file}:${r.line}`) : null))));
  }

  async function reload() {
    reloadBtn.disabled = true;
    reloadMsg.className = 'small dim';
    reloadMsg.textContent = 'reloading…';
    try {
      const r = await api.post('/rules:reload');
      reloadMsg.className = 'small ok';
      reloadMsg.textContent = `Loaded ${r.rules} rule${r.rules === 1 ? '' : 's'}.`;
    } catch (e) {
      reloadMsg.className = 'small err';
      reloadMsg.textContent = e.message;
    } finally {
      reloadBtn.disabled = false;
      if (alive) {
        rulesSig = '';
        loadRules();
        refreshFeed();
      }
    }
  }

  const unsubscribe = subscribe(st => {
    if (!alive) return;
    feed = st;
    renderActive();
    loadRules();
    maybeLoadHistory(false);
  });
  renderHistory();

  return {
    update(c) {
      params = c.params;
      ruleSel.value = P('rule');
      rulesSig = '';
      renderRules();
      renderActive();
      resolvedEvents = historyEvents = null;
      replace(resolvedBox, h('div', {class: 'msg msg-loading small'}, 'Loading…'));
      replace(historyBox);
      renderHistory();
      maybeLoadHistory(true);
    },
    destroy() {
      alive = false;
      unsubscribe();
    },
  };
}

function section(title, testid, empty) {
  const count = h('span', {class: 'count dim'});
  const list = h('div', {class: 'alert-list'});
  const none = h('div', {class: 'msg msg-empty small'}, empty);
  const el = h('section', {class: 'alerts-section', testid}, h('h2', null, title, ' ', count), none, list);
  return {el, count, list, none, cards: new Map()};
}

// A card is redrawn part by part, each only when what it shows changed,
// so that links under the pointer survive the refreshes.
function slot(cls) {
  return h('div', {class: cls});
}

const sigs = new WeakMap();

function fill(el, sig, build) {
  if (sigs.get(el) === sig) return;
  sigs.set(el, sig);
  replace(el, build());
}

function newCard() {
  const c = {head: slot('alert-head'), stats: slot('stats alert-stats'), text: slot('alert-text'), ex: slot('alert-exemplars'), chart: slot('alert-chart'), since: h('span', {class: 'dim small', testid: 'alert-since'})};
  c.el = h('article', {class: 'card alert', testid: 'alert'}, c.head, h('div', {class: 'alert-body'}, h('div', {class: 'alert-info'}, c.stats, c.text, c.ex), c.chart));
  return c;
}

function updateCard(c, a, rule, now) {
  c.el.className = 'card alert alert-' + a.state;
  c.el.dataset.state = a.state;
  c.el.dataset.rule = a.rule;
  c.el.dataset.key = a.key;
  const l = a.labels || {};
  fill(c.head, JSON.stringify([a.state, a.rule, a.target, a.key, a.unit]), () => [
    h('span', {class: 'badge badge-' + a.state, testid: 'alert-state'}, a.state),
    h('a', {href: link('alerts', '', {rule: a.rule}), class: 'alert-rule', testid: 'alert-rule', title: 'the rule and its history'}, a.rule),
    h('span', {class: 'alert-target', testid: 'alert-target'}, alertTarget(a)),
    c.since,
    h('span', {class: 'alert-links small'},
      l.source && l.target ? h('a', {href: link('map', '', {source: l.source, target: l.target})}, 'map') : l.service ? h('a', {href: link('map', '', {node: l.service})}, 'map') : null,
      a.unit === 'ns' && ((l.source && l.target) || l.service) ? h('a', {href: link('latency', '', l.source && l.target ? {source: l.source, target: l.target} : {service: l.service, operation: l.operation})}, 'latency') : null),
  ]);
  const since = fmt.parseTime(a.state === 'firing' ? a.firedAt || a.activeAt : a.activeAt);
  c.since.textContent = Number.isFinite(since) ? `${a.state} for ${fmt.age(now - since)}${a.state === 'pending' && rule && rule.forSeconds ? ` (fires after ${secs(rule.forSeconds)})` : ''}` : '';
  c.since.title = Number.isFinite(since) ? 'since ' + fmt.time(since) : '';
  const cmp = rule ? rule.comparison : 'above';
  const recover = rule ? rule.recoverThreshold : null;
  fill(c.stats, JSON.stringify([a.value, a.threshold, a.unit, a.signal, cmp, recover]), () => [
    stat(a.signal, fmt.unitValue(a.value, a.unit), 'alert-value'),
    stat('threshold', `${cmp === 'below' ? '<' : '>'} ${fmt.unitValue(a.threshold, a.unit)}`, 'alert-threshold'),
    recover != null ? stat('recovers', `${cmp === 'below' ? '≥' : '≤'} ${fmt.unitValue(recover, a.unit)}`) : null,
  ]);
  fill(c.text, JSON.stringify([a.annotations, a.labels]), () => {
    const ann = a.annotations || {};
    const rest = Object.entries(ann).filter(([k]) => k !== 'summary' && k !== 'exemplar');
    return [
      ann.summary ? h('p', {class: 'alert-summary', testid: 'alert-summary'}, ann.summary) : null,
      labelTags(a.labels),
      rest.length ? h('dl', {class: 'kv small'}, rest.map(([k, v]) => [h('dt', null, k), h('dd', {testid: 'alert-annotation'}, v)])) : null,
    ];
  });
  fill(c.ex, (a.exemplars || []).join(','), () => ((a.exemplars || []).length ? [h('span', {class: 'dim small'}, 'Exemplar traces: '), exemplarLinks(a.exemplars)] : []));
  fill(c.chart, JSON.stringify([a.samples, a.threshold, recover, a.unit]), () => sampleChart(a, recover));
}

// sampleChart draws an alert's recent values against its threshold (and
// recovery threshold, dashed).
function sampleChart(a, recover) {
  const pts = (a.samples || []).map(x => [fmt.parseTime(x.time), fmt.num(x.value)]).filter(p => Number.isFinite(p[0]));
  if (!pts.length) return h('div', {class: 'dim small alert-nochart'}, 'No samples yet.');
  let t0 = pts[0][0], t1 = pts[pts.length - 1][0];
  if (t1 - t0 < 1000) {
    t0 -= 30e3;
    t1 += 30e3;
  }
  const line = (name, v, color, cls, dash) => ({name, color, class: cls, dash, points: [[t0, fmt.num(v)], [t1, fmt.num(v)]]});
  const series = [
    {name: a.signal, color: VALUE_COLOR, class: 'value', points: pts},
    line('threshold ' + fmt.unitValue(a.threshold, a.unit), a.threshold, THRESHOLD_COLOR, 'threshold', '6 4'),
  ];
  if (recover != null) series.push(line('recovers at ' + fmt.unitValue(recover, a.unit), recover, RECOVER_COLOR, 'recover', '2 4'));
  return [lineChart({series, width: CHART_W, height: CHART_H, yFormat: fmt.unitTick(a.unit)}), legend(series)];
}

function stat(label, value, testid) {
  return h('div', {class: 'stat', testid: testid || null}, h('span', {class: 'stat-label'}, label), h('span', {class: 'stat-value'}, value));
}

// labelTags shows labels as name=value tags, alertname left out (it is the rule).
function labelTags(labels) {
  const list = Object.entries(labels || {}).filter(([k]) => k !== 'alertname').sort(([a], [b]) => (a < b ? -1 : 1));
  if (!list.length) return null;
  return h('div', {class: 'alert-labels'}, list.map(([k, v]) => h('span', {class: 'tag label', testid: 'alert-label', dataset: {name: k}}, h('span', {class: 'dim'}, k, '='), v)));
}

function exemplarLinks(ids) {
  if (!ids || !ids.length) return null;
  return h('span', {class: 'exemplars'}, ids.map(id => h('a', {href: link('trace', id), class: 'mono small', testid: 'alert-exemplar', title: 'trace ' + id, dataset: {traceId: id}}, id.slice(0, 12) + '…')));
}

function eventText(ev) {
  if (ev.kind === 'transition') {
    return h('span', null, h('span', {class: 'state-' + ev.from}, ev.from), ' → ', h('span', {class: 'state-' + ev.to}, ev.to), ev.from === 'firing' && ev.to === 'inactive' ? h('span', {class: 'dim'}, ' (resolved)') : null);
  }
  return h('span', {class: ev.outcome === 'sent' ? '' : ev.outcome === 'retrying' ? 'warn' : 'err'},
    `${ev.status || 'notification'} → ${ev.receiver}: ${ev.outcome}`,
    ev.attempt > 1 ? ` (attempt ${ev.attempt})` : '',
    ev.httpStatus ? ` · HTTP ${ev.httpStatus}` : '',
    ev.error ? h('div', {class: 'small'}, ev.error) : null);
}

function condition(r) {
  const op = r.comparison === 'below' ? '<' : '>';
  return `${r.signal} ${op} ${fmt.unitValue(r.threshold, r.unit)}`;
}

function selection(r) {
  const s = r.select || {};
  const parts = ['service', 'operation', 'kind', 'source', 'target', 'synthetic'].filter(k => s[k]).map(k => `${k}=${s[k]}`);
  if (r.each) parts.push('each ' + r.each);
  return parts.join(' · ') || 'everything';
}

// secs formats a rule's seconds as the rules file would: 30s, 1m, 1h30m.
function secs(n) {
  n = fmt.num(n);
  if (n < 1) return fmt.dur(n * 1e9);
  const hh = Math.floor(n / 3600), mm = Math.floor((n % 3600) / 60), ss = Math.round((n % 60) * 1000) / 1000;
  return (hh ? hh + 'h' : '') + (mm ? mm + 'm' : '') + (ss || (!hh && !mm) ? ss + 's' : '');
}
