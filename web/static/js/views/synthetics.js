// Synthetics: the synthetic checks (GET /api/v1/synthetics) with their
// schedule, success rate, p50/p99 duration and last run in the range, each
// with a strip of its runs (GET /synthetics/{check}/runs) coloured by
// outcome, oldest left, newest right. #/synthetics/CHECK shows one check
// with a table of its runs; #/synthetics/CHECK/RUN also shows a run (GET
// /synthetics/{check}/runs/{runId}): its steps with their status, request,
// timing phases and assertions, the error and body of a failure, the
// joined trace's summary, and links to the trace's waterfall and to the
// correlation view. "Run now" (POST /synthetics/{check}:run) shows the run
// it answers; "Reload checks" is POST /synthetics:reload. Refreshed every
// REFRESH_MS while the range is relative and the page visible. Check names,
// labels, URLs, errors and bodies are operator and response text: they are
// inserted as text, never as markup.
import {h, replace, link, table} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import {picker, resolve, apiParams} from '../timerange.js';
import {subscribe as subscribeAlerts} from '../alertfeed.js';

export const REFRESH_MS = 1500;
// STRIP_RUNS is how many of a check's newest runs its strip shows (and the
// run table of one check lists).
export const STRIP_RUNS = 100;
// RUNS_MAX_AGE_MS is how often a check's runs are read again when its last
// run did not change (runs leave a relative range on the left).
const RUNS_MAX_AGE_MS = 15e3;
// A run's detail is read again while its trace may still be growing.
const DETAIL_FRESH_MS = 30e3, DETAIL_UNJOINED_MS = 120e3;
const DEFAULT_RANGE = '1h';

// The phases of a step's request, as its timing bar splits it.
export const PHASES = [
  {key: 'dns', label: 'DNS'},
  {key: 'connect', label: 'connect'},
  {key: 'tls', label: 'TLS'},
  {key: 'wait', label: 'first byte'},
  {key: 'rest', label: 'rest'},
];

// Answers survive remounts (navigating away and back), so that the view
// draws at once and then refreshes: the checks of the last range, the runs
// per check and range, and the runs opened (at most MEMO_MAX of each).
const memo = {list: null, listKey: '', runs: new Map(), details: new Map()};
const MEMO_MAX = 200;

function remember(map, key, value) {
  map.delete(key);
  map.set(key, value);
  while (map.size > MEMO_MAX) map.delete(map.keys().next().value);
}

// rangeKey identifies the range of a route's params.
function rangeKey(params) {
  return ['range', 'from', 'to'].map(k => params.get(k) || '').join('\u0000');
}

// route splits the view's argument "CHECK" or "CHECK/RUN" (check names
// have no slash).
function route(arg) {
  const i = (arg || '').indexOf('/');
  return i < 0 ? {check: arg || '', runId: ''} : {check: arg.slice(0, i), runId: arg.slice(i + 1)};
}

export default function mount(el, ctx) {
  let params = ctx.params;
  let {check, runId} = route(ctx.arg);
  let alive = true;
  let timer = null;
  let listSeq = 0;
  let list = memo.listKey === rangeKey(params) ? memo.list : null; // GET /synthetics
  let listErr = null;
  let alerts = [];
  const cards = new Map();

  // href of a route of this view, keeping the range.
  const href = (c, r) => {
    const q = new URLSearchParams();
    for (const k of ['range', 'from', 'to']) if (params.get(k)) q.set(k, params.get(k));
    const qs = q.toString();
    return '#/synthetics' + (c ? '/' + encodeURIComponent(c) : '') + (c && r ? '/' + encodeURIComponent(r) : '') + (qs ? '?' + qs : '');
  };

  const status = h('span', {class: 'status dim', testid: 'syn-status'}, 'loading…');
  const reloadMsg = h('span', {class: 'small', testid: 'syn-reload-result'});
  const reloadBtn = h('button', {type: 'button', class: 'btn', testid: 'syn-reload', title: 'Read the checks files again (POST /api/v1/synthetics:reload), as SIGHUP does', onclick: () => reload()}, 'Reload checks');
  const toolbar = h('div', {class: 'toolbar'}, picker(params, ch => ctx.setParams(ch), DEFAULT_RANGE), h('span', {class: 'inline'}, reloadBtn, reloadMsg), status);
  const crumb = h('div', {class: 'syn-crumb small', testid: 'syn-crumb'});
  const banner = h('div', {testid: 'syn-banner'});
  const listBox = h('div', {class: 'syn-list', testid: 'syn-checks'});
  const detailBox = h('div', {testid: 'syn-detail-box'});
  const runsBox = h('div', {testid: 'syn-runs-box'});
  el.append(h('h1', null, 'Synthetics'), toolbar, crumb, banner, listBox, detailBox, runsBox);

  const checkOf = name => (list ? list.checks.find(c => c.name === name) : null);

  // ---- loading ----

  function schedule(ms = REFRESH_MS) {
    clearTimeout(timer);
    timer = setTimeout(tick, ms);
  }

  async function tick() {
    timer = null;
    if (!alive) return;
    if (document.hidden) return schedule();
    await refresh();
    if (alive && resolve(params, DEFAULT_RANGE).live) schedule();
  }

  // refresh reads the checks, then the runs of the checks shown whose last
  // run changed, then the selected run; and draws.
  async function refresh() {
    const my = ++listSeq;
    const tr = resolve(params, DEFAULT_RANGE);
    try {
      const r = await api.get('/synthetics', apiParams(tr));
      if (!alive || my !== listSeq) return;
      list = memo.list = Object.assign({checks: []}, r);
      memo.listKey = rangeKey(params);
      listErr = null;
    } catch (e) {
      if (!alive || my !== listSeq) return;
      listErr = e;
    }
    renderAll();
    if (list) {
      const shown = list.checks.filter(c => !check || c.name === check);
      await Promise.all(shown.map(c => loadRuns(c, tr, my)));
      if (!alive || my !== listSeq) return;
    }
    await loadDetail(false);
    if (!alive || my !== listSeq) return;
    renderAll();
    status.className = listErr ? 'status err' : 'status dim';
    replace(status, listErr ? 'error' : `${list.checks.length} check${list.checks.length === 1 ? '' : 's'} · ${tr.live ? 'live, ' : ''}updated ${fmt.clock(Date.now())}`);
    el.dataset.state = listErr ? 'error' : 'ready';
  }

  function runsKey(name) {
    return name + '\u0000' + rangeKey(params);
  }

  async function loadRuns(c, tr, my) {
    const key = runsKey(c.name);
    const have = memo.runs.get(key);
    const last = c.lastRun ? c.lastRun.runId : '';
    if (have && have.last === last && !have.stale && (!tr.live || Date.now() - have.at < RUNS_MAX_AGE_MS)) return;
    try {
      const r = await api.get('/synthetics/' + api.enc(c.name) + '/runs', Object.assign(apiParams(tr), {limit: STRIP_RUNS}));
      if (!alive || my !== listSeq) return;
      remember(memo.runs, key, {runs: r.runs || [], last, at: Date.now(), err: null});
    } catch (e) {
      if (!alive || my !== listSeq) return;
      remember(memo.runs, key, {runs: have ? have.runs : [], last, at: Date.now(), err: e});
    }
  }

  const runsOf = name => memo.runs.get(runsKey(name)) || null;

  // loadDetail reads the selected run, again while its trace may still
  // be growing (recent, or not joined yet).
  async function loadDetail(force) {
    if (!check || !runId) return;
    const key = check + '/' + runId;
    const have = memo.details.get(key);
    if (have && !force) {
      if (have.err) return;
      const age = Date.now() - fmt.parseTime(have.run.start);
      const joined = have.run.trace && have.run.trace.found;
      if (!(age < DETAIL_FRESH_MS || (!joined && age < DETAIL_UNJOINED_MS)) || Date.now() - have.at < 900) return;
    }
    const c = check, r = runId;
    try {
      const res = await api.get('/synthetics/' + api.enc(c) + '/runs/' + api.enc(r));
      remember(memo.details, key, {run: res.run, at: Date.now(), err: null});
    } catch (e) {
      // Keep what was shown when a re-read fails.
      if (!have || have.err) remember(memo.details, key, {run: null, at: Date.now(), err: e});
    }
    if (alive && c === check && r === runId) renderDetail();
  }

  // ---- drawing ----

  function renderAll() {
    renderBanner();
    renderCrumb();
    renderList();
    renderDetail();
    renderRunTable();
  }

  function renderCrumb() {
    fill(crumb, JSON.stringify([check, runId, String(params)]), () => check ? [
      h('a', {href: href(), testid: 'syn-all'}, 'All checks'), ' › ',
      runId ? h('a', {href: href(check), class: 'mono'}, check) : h('span', {class: 'mono'}, check),
      runId ? [' › ', h('span', {class: 'mono'}, 'run ' + runId)] : null,
    ] : []);
  }

  function renderBanner() {
    const sig = JSON.stringify([listErr && listErr.message, list && [list.path, list.checks.length, list.lastReloadError, list.lastReloadAt, list.loadedAt], check, !!(check && checkOf(check))]);
    fill(banner, sig, () => {
      const parts = [];
      if (listErr) parts.push(h('div', {class: 'msg msg-error', testid: 'syn-error'}, 'Synthetic checks: ' + listErr.message));
      if (list && !list.path) {
        parts.push(h('div', {class: 'card msg', testid: 'syn-empty'},
          h('p', {class: 'syn-empty-title'}, 'No synthetic checks are configured.'),
          h('p', null, 'A synthetic check runs a few HTTP steps against your services on a schedule; each run is one trace, and the check shows on the map as the node synthetic:<check>. ',
            'Start the collector with ', h('span', {class: 'mono'}, '--synthetics PATH'), ' (a checks file or a directory of *.yml files), ', h('span', {class: 'mono'}, 'FLOWSCOPE_SYNTHETICS'),
            ', or ', h('span', {class: 'mono'}, 'synthetics.checks'), ' in its config file; see docs/synthetics.md.'),
          h('pre', {class: 'mono syn-example'}, 'checks:\n  - name: checkout-journey\n    every: 30s\n    steps:\n      - name: home\n        request: {method: GET, url: "http://shop.local:8080/"}\n        assert: [{status: 200}]')));
      } else if (list && !list.checks.length) {
        parts.push(h('div', {class: 'card msg', testid: 'syn-none'}, 'The checks files (', h('span', {class: 'mono'}, list.path), ') define no check.'));
      }
      if (list && list.lastReloadError) {
        parts.push(h('div', {class: 'card alert-banner', testid: 'syn-reload-error'},
          h('strong', null, 'The last reload of the checks failed'), list.lastReloadAt ? ` (${fmt.time(fmt.parseTime(list.lastReloadAt))})` : '',
          list.loadedAt ? `; the checks loaded at ${fmt.time(fmt.parseTime(list.loadedAt))} are still in use` : '', ':',
          h('pre', {class: 'mono err reload-error'}, list.lastReloadError)));
      }
      if (list && check && !checkOf(check)) {
        parts.push(h('div', {class: 'card msg', testid: 'syn-missing'}, 'Check ', h('span', {class: 'mono strong'}, check), ' is not among the loaded checks. ', h('a', {href: href()}, 'All checks')));
      }
      return parts;
    });
    reloadBtn.disabled = !!list && !list.path;
  }

  function renderList() {
    if (!list) return;
    const now = Date.now();
    const shown = list.checks.filter(c => !check || c.name === check);
    const keep = new Set();
    let prev = null;
    for (const c of shown) {
      keep.add(c.name);
      let card = cards.get(c.name);
      if (!card) cards.set(c.name, (card = newCard(c.name)));
      updateCard(card, c, now);
      const want = prev ? prev.nextSibling : listBox.firstChild;
      if (want !== card.el) listBox.insertBefore(card.el, want);
      prev = card.el;
    }
    for (const [name, card] of cards) {
      if (!keep.has(name)) {
        card.el.remove();
        cards.delete(name);
      }
    }
  }

  function newCard(name) {
    const c = {
      name,
      head: slot('alert-head syn-head'),
      stats: slot('stats syn-stats'),
      strip: h('div', {class: 'syn-strip', testid: 'syn-strip', role: 'group', 'aria-label': `Runs of ${name}, oldest left, newest right`}),
      axis: slot('syn-axis'),
      foot: slot('syn-foot dim tiny'),
      runMsg: h('span', {class: 'small', testid: 'syn-run-now-result', role: 'status'}),
    };
    c.runBtn = h('button', {type: 'button', class: 'btn', testid: 'syn-run-now', title: `Run ${name} now (POST /api/v1/synthetics/${name}:run)`, onclick: () => runNow(c)}, 'Run now');
    c.actions = h('span', {class: 'alert-links syn-actions'}, c.runMsg, c.runBtn);
    c.el = h('article', {class: 'card syn-check', testid: 'syn-check', dataset: {check: name}}, c.head, c.stats, h('div', {class: 'syn-strip-wrap'}, c.strip, c.axis), c.foot);
    return c;
  }

  function updateCard(card, c, now) {
    const last = c.lastRun;
    const state = last ? (last.ok ? 'ok' : 'failed') : 'none';
    card.el.dataset.state = state;
    card.el.classList.toggle('selected', c.name === check);
    const mine = alerts.filter(a => a.labels && a.labels.check === c.name);
    fill(card.head, JSON.stringify([state, c.name, c.every, c.timeout, c.retries, c.steps, c.labels, mine.map(a => [a.rule, a.state]), String(params)]), () => [
      h('span', {class: 'badge badge-' + (state === 'ok' ? 'ok' : state === 'failed' ? 'failed' : 'none'), testid: 'syn-check-state', title: last ? `last run ${last.ok ? 'passed' : 'failed'}` : 'no run in this range'}, state === 'ok' ? 'passing' : state === 'failed' ? 'failing' : 'no runs'),
      h('a', {href: href(c.name), class: 'alert-rule syn-name', testid: 'syn-check-name'}, c.name),
      h('span', {class: 'dim small', testid: 'syn-schedule'}, `every ${c.every}`, c.timeout ? ` · timeout ${c.timeout}` : '', ` · ${(c.steps || []).length} step${(c.steps || []).length === 1 ? '' : 's'}`, c.retries ? ` · ${c.retries} retr${c.retries === 1 ? 'y' : 'ies'}` : ''),
      labelTags(c.labels),
      mine.map(a => h('a', {href: link('alerts', '', {rule: a.rule}), class: 'badge badge-' + a.state, testid: 'syn-alert', title: `${a.state}: ${a.rule}`}, `${a.state}: ${a.rule}`)),
      card.actions,
    ]);
    const rate = c.successRate;
    const rateCls = !fmt.known(rate) ? '' : fmt.num(rate) >= 1 ? 'ok' : fmt.num(rate) >= 0.9 ? 'warn' : 'err';
    const lastT = last ? fmt.parseTime(last.start) : NaN;
    fill(card.stats, JSON.stringify([rate, c.runs, c.failures, c.p50Ms, c.p99Ms, last && last.runId, Math.floor((now - lastT) / 1000), String(params)]), () => [
      stat('success', h('span', {class: rateCls}, fmt.known(rate) ? fmt.pct(rate) : fmt.UNKNOWN), 'syn-success'),
      stat('runs', fmt.count(c.runs), 'syn-runs'),
      stat('failed', h('span', {class: fmt.num(c.failures) ? 'err' : ''}, fmt.count(c.failures)), 'syn-failures'),
      stat('p50', ms(c.p50Ms), 'syn-p50'),
      stat('p99', ms(c.p99Ms), 'syn-p99'),
      stat('last run', last ? h('a', {href: href(c.name, last.runId), class: last.ok ? 'ok' : 'err', title: fmt.time(lastT) + (last.error ? '\n' + last.error : '')},
        `${last.ok ? 'ok' : 'failed'} · ${fmt.age(now - lastT)} ago`) : h('span', {class: 'dim'}, 'none'), 'syn-last'),
    ]);
    const rs = runsOf(c.name);
    const runs = rs ? rs.runs.slice().reverse() : null; // oldest first: newest right
    const sel = c.name === check ? runId : '';
    fill(card.strip, JSON.stringify([runs && runs.map(r => r.runId), rs && rs.err && rs.err.message, sel, String(params)]), () => {
      if (!rs) return h('span', {class: 'dim small'}, 'loading runs…');
      if (rs.err && !runs.length) return h('span', {class: 'err small'}, 'Runs: ' + rs.err.message);
      if (!runs.length) return h('span', {class: 'dim small', testid: 'syn-strip-empty'}, `No run in this range yet (the check runs every ${c.every}).`);
      return runs.map(r => runBox(c.name, r, r.runId === sel));
    });
    fill(card.axis, JSON.stringify([runs && runs.length && [runs[0].start, runs[runs.length - 1].start], c.runs]), () => {
      if (!runs || !runs.length) return [];
      const total = fmt.num(c.runs);
      return [
        h('span', null, fmt.time(fmt.parseTime(runs[0].start)).slice(11, 19)),
        h('span', null, total > runs.length ? `the newest ${runs.length} of ${fmt.count(total)} runs in range` : `${runs.length} run${runs.length === 1 ? '' : 's'} in range`),
        h('span', null, fmt.time(fmt.parseTime(runs[runs.length - 1].start)).slice(11, 19)),
      ];
    });
    fill(card.foot, JSON.stringify([c.file, c.line, c.steps]), () => [
      (c.steps || []).length ? h('span', {class: 'syn-stepnames'}, 'steps: ', c.steps.join(' → ')) : null,
      c.file ? h('span', {class: 'mono', testid: 'syn-file'}, `${c.file}:${c.line}`) : null,
    ]);
  }

  function runBox(name, r, selected) {
    const t = fmt.parseTime(r.start);
    const text = `${fmt.time(t)} · ${r.ok ? 'ok' : 'failed'} · ${ms(r.durationMs)}${r.trigger === 'manual' ? ' · run now' : ''}${r.attempt > 1 ? ` · attempt ${r.attempt}` : ''}${r.error ? '\n' + r.error : ''}`;
    return h('a', {
      href: href(name, r.runId),
      class: 'syn-run syn-run-' + (r.ok ? 'ok' : 'failed') + (r.trigger === 'manual' ? ' syn-run-manual' : '') + (selected ? ' selected' : ''),
      testid: 'syn-run',
      title: text,
      'aria-label': `Run ${r.runId}: ${text.replace('\n', ': ')}`,
      'aria-current': selected ? 'true' : null,
      dataset: {runId: r.runId, ok: String(!!r.ok), trigger: r.trigger},
    });
  }

  // ---- one run ----

  function renderDetail() {
    const key = check && runId ? check + '/' + runId : '';
    const d = key ? memo.details.get(key) : null;
    const sig = JSON.stringify([key, d && d.run, d && d.err && d.err.message, String(params), neighbours(key)]);
    fill(detailBox, sig, () => {
      if (!key) return [];
      if (!d) return h('section', {class: 'card syn-detail'}, h('div', {class: 'msg msg-loading'}, 'Loading run…'));
      if (d.err) {
        return h('section', {class: 'card syn-detail', testid: 'syn-run-detail-error'}, h('div', {class: 'msg msg-error'},
          d.err.status === 404 ? `Run ${runId} of ${check} is not stored (it may be older than the retention).` : 'Run: ' + d.err.message));
      }
      return runDetail(d.run);
    });
  }

  // neighbours returns the older and newer runs of the selected one among
  // the strip's.
  function neighbours(key) {
    if (!key) return null;
    const rs = runsOf(check);
    if (!rs) return null;
    const i = rs.runs.findIndex(r => r.runId === runId);
    if (i < 0) return null;
    return {newer: i > 0 ? rs.runs[i - 1].runId : '', older: i + 1 < rs.runs.length ? rs.runs[i + 1].runId : ''};
  }

  function runDetail(run) {
    const t = fmt.parseTime(run.start);
    const steps = run.steps || [];
    const nb = neighbours(check + '/' + runId) || {};
    const maxTotal = Math.max(1e-9, ...steps.map(s => fmt.num(s.timings && s.timings.totalMs)));
    const passed = steps.filter(s => s.ok && !s.skipped).length;
    const tr = run.trace;
    return h('section', {class: 'card syn-detail', testid: 'syn-run-detail', dataset: {runId: run.runId, ok: String(!!run.ok)}},
      h('div', {class: 'alert-head'},
        h('span', {class: 'badge badge-' + (run.ok ? 'ok' : 'failed'), testid: 'syn-run-state'}, run.ok ? 'ok' : 'failed'),
        h('h2', {class: 'syn-run-title'}, h('span', {class: 'alert-rule'}, run.check), ' ', h('span', {class: 'mono dim', testid: 'syn-run-id'}, 'run ' + run.runId)),
        h('span', {class: 'tag', title: run.trigger === 'manual' ? 'started with Run now (POST :run)' : 'started by the schedule'}, run.trigger === 'manual' ? 'run now' : run.trigger || 'schedule'),
        run.attempt > 1 ? h('span', {class: 'tag', title: 'the attempt stored after retries'}, `attempt ${run.attempt}`) : null,
        h('span', {class: 'alert-links small'},
          nb.older ? h('a', {href: href(check, nb.older), testid: 'syn-older', title: 'the previous run'}, '‹ older') : null,
          nb.newer ? h('a', {href: href(check, nb.newer), testid: 'syn-newer', title: 'the next run'}, 'newer ›') : null,
          h('a', {href: href(check), testid: 'syn-close'}, 'close'))),
      h('div', {class: 'stats'},
        stat('started', fmt.time(t)),
        stat('duration', ms(run.durationMs), 'syn-run-duration'),
        stat('steps passed', `${passed} of ${steps.length}`, 'syn-run-passed'),
        tr && tr.found ? stat('spans', fmt.count(tr.spanCount), 'syn-trace-spans') : null,
        tr && tr.found ? stat('span errors', h('span', {class: fmt.num(tr.errorCount) ? 'err' : ''}, fmt.count(tr.errorCount)), 'syn-trace-errors') : null),
      run.error ? h('p', {class: 'err syn-error', testid: 'syn-run-error'}, run.error) : null,
      h('div', {class: 'syn-links'},
        run.traceId ? h('a', {class: 'btn btn-primary', href: link('trace', run.traceId), testid: 'syn-open-trace', title: 'trace ' + run.traceId}, 'Open trace') : null,
        run.correlationId ? h('span', {class: 'small'}, 'correlation ', h('a', {href: link('correlation', run.correlationId), class: 'tag mono', testid: 'syn-correlation', title: 'every trace carrying this correlation ID'}, run.correlationId)) : null,
        run.traceId ? h('span', {class: 'mono dim tiny'}, 'trace ' + run.traceId) : null),
      traceSummary(tr),
      h('h3', null, `Steps (${steps.length})`),
      h('div', {class: 'legend syn-legend', testid: 'syn-legend'}, PHASES.map(p => h('span', {class: 'legend-item'}, h('span', {class: 'swatch syn-ph-' + p.key}), p.label)),
        h('span', {class: 'dim'}, `bars to scale: the longest step is ${ms(maxTotal)}`)),
      h('ol', {class: 'syn-steps', testid: 'syn-steps'}, steps.map((s, i) => stepItem(s, i, maxTotal))));
  }

  function traceSummary(tr) {
    if (!tr) return h('p', {class: 'dim small', testid: 'syn-trace-summary'}, 'No trace summary.');
    if (!tr.found) return h('p', {class: 'dim small', testid: 'syn-trace-summary', dataset: {found: 'false'}}, 'The run\'s trace is not stored yet; its summary appears once its spans arrive.');
    const services = tr.services || [];
    return h('div', {class: 'syn-trace small', testid: 'syn-trace-summary', dataset: {found: 'true'}},
      h('span', {class: 'dim'}, `Services reached (${services.length}): `),
      services.map(s => h('a', {href: link('map', '', {node: s}), class: 'svc', testid: 'syn-trace-service', title: 'on the map'}, s)));
  }

  // ---- the run table of one check ----

  function renderRunTable() {
    const rs = check ? runsOf(check) : null;
    const c = check ? checkOf(check) : null;
    fill(runsBox, JSON.stringify([check, runId, rs && rs.runs.map(r => [r.runId, r.ok]), !!c, String(params)]), () => {
      if (!check || !c || !rs) return [];
      if (!rs.runs.length) return [];
      const now = Date.now();
      return h('section', {class: 'alerts-section'}, h('h2', null, 'Runs ', h('span', {class: 'count dim'}, `(newest ${rs.runs.length} in range)`)),
        table(['started', 'trigger', 'outcome', 'duration', 'error', 'trace'], rs.runs.map(r => {
          const t = fmt.parseTime(r.start);
          return h('tr', {class: 'clickable' + (r.runId === runId ? ' selected' : ''), testid: 'syn-run-row', dataset: {runId: r.runId, ok: String(!!r.ok)}, onclick: ev => {
            if (ev.target.closest('a')) return;
            location.hash = href(check, r.runId);
          }},
          h('td', {class: 'nowrap', title: fmt.time(t)}, h('a', {href: href(check, r.runId)}, fmt.time(t).slice(11, 23)), h('div', {class: 'dim tiny'}, fmt.age(now - t) + ' ago')),
          h('td', null, r.trigger === 'manual' ? 'run now' : r.trigger),
          h('td', null, h('span', {class: r.ok ? 'ok' : 'err'}, r.ok ? 'ok' : 'failed'), r.attempt > 1 ? h('span', {class: 'dim small'}, ` (attempt ${r.attempt})`) : null),
          h('td', {class: 'num'}, ms(r.durationMs)),
          h('td', {class: 'err small'}, r.error || ''),
          h('td', null, r.traceId ? h('a', {href: link('trace', r.traceId), class: 'mono small', title: 'trace ' + r.traceId}, r.traceId.slice(0, 12) + '…') : null));
        }), {testid: 'syn-runs-table'}));
    });
  }

  // ---- writes ----

  async function runNow(card) {
    const name = card.name;
    card.runBtn.disabled = true;
    card.runMsg.className = 'small dim';
    card.runMsg.textContent = 'running…';
    card.runMsg.dataset.state = 'running';
    try {
      const r = await api.post('/synthetics/' + api.enc(name) + ':run');
      const run = r && r.run;
      if (!run) throw new Error('the answer has no run');
      remember(memo.details, name + '/' + run.runId, {run, at: Date.now(), err: null});
      const rs = runsOf(name);
      if (rs && !rs.runs.some(x => x.runId === run.runId)) {
        rs.runs = [Object.assign({}, run, {steps: undefined, trace: undefined}), ...rs.runs].slice(0, STRIP_RUNS);
        rs.stale = true;
      }
      card.runMsg.className = 'small ' + (run.ok ? 'ok' : 'err');
      card.runMsg.textContent = `Run ${run.runId}: ${run.ok ? 'ok' : 'failed'} in ${ms(run.durationMs)}`;
      card.runMsg.dataset.state = 'done';
      if (alive) location.hash = href(name, run.runId);
    } catch (e) {
      card.runMsg.className = 'small err';
      card.runMsg.textContent = 'Run now failed: ' + e.message;
      card.runMsg.dataset.state = 'error';
    } finally {
      card.runBtn.disabled = false;
      if (alive) schedule(0);
    }
  }

  async function reload() {
    reloadBtn.disabled = true;
    reloadMsg.className = 'small dim';
    reloadMsg.textContent = 'reloading…';
    try {
      const r = await api.post('/synthetics:reload');
      reloadMsg.className = 'small ok';
      reloadMsg.textContent = `Loaded ${r.checks} check${r.checks === 1 ? '' : 's'}.`;
    } catch (e) {
      reloadMsg.className = 'small err';
      reloadMsg.textContent = e.message;
    } finally {
      reloadBtn.disabled = false;
      if (alive) schedule(0);
    }
  }

  if (list) renderAll();
  schedule(0);
  const unsubscribe = subscribeAlerts(st => {
    if (!alive) return;
    const sig = JSON.stringify(st.alerts.filter(a => a.labels && a.labels.check).map(a => [a.rule, a.key, a.state]));
    const before = JSON.stringify(alerts.filter(a => a.labels && a.labels.check).map(a => [a.rule, a.key, a.state]));
    alerts = st.alerts;
    if (sig !== before) renderList();
  });

  return {
    update(c) {
      const prev = params;
      params = c.params;
      ({check, runId} = route(c.arg));
      if (rangeKey(prev) !== rangeKey(params)) list = null;
      renderAll();
      // The run opened shows without waiting for the checks and runs.
      if (runId && !memo.details.has(check + '/' + runId)) loadDetail(false);
      schedule(0);
    },
    destroy() {
      alive = false;
      clearTimeout(timer);
      unsubscribe();
    },
  };
}

// stepItem draws one step: its status, request, timing bar, assertions,
// and the error and body of a failure.
function stepItem(s, i, maxTotal) {
  const state = s.skipped ? 'skipped' : s.ok ? 'ok' : 'failed';
  const tm = s.timings || {};
  return h('li', {class: 'syn-step syn-step-' + state, testid: 'syn-step', dataset: {index: i + 1, status: state, http: s.status}},
    h('div', {class: 'syn-step-head'},
      h('span', {class: 'syn-step-num dim'}, String(i + 1)),
      h('span', {class: 'strong syn-step-name', testid: 'syn-step-name'}, s.name),
      h('span', {class: 'badge badge-' + state, testid: 'syn-step-status'}, state === 'ok' ? 'OK' : state),
      s.continueOnFailure ? h('span', {class: 'tag', title: 'a failure of this step does not end the run'}, 'continue on failure') : null,
      s.skipped ? h('span', {class: 'dim small'}, 'not run: an earlier step failed') : h('span', {class: 'small', testid: 'syn-step-http'},
        'HTTP ', h('span', {class: 'strong ' + (s.status >= 400 || !s.status ? 'err' : 'ok')}, s.status ? String(s.status) : 'no response'))),
    h('div', {class: 'syn-request mono', testid: 'syn-step-request'}, h('span', {class: 'strong'}, s.method || 'GET'), ' ', s.url),
    s.skipped ? null : timingBar(tm, maxTotal),
    (s.assertions || []).length ? table(['assertion', 'expected', 'actual', 'result'], s.assertions.map(a => h('tr', {testid: 'syn-assertion', dataset: {ok: String(!!a.ok), type: a.type}},
      h('td', null, a.type, a.target ? h('span', {class: 'mono dim'}, ' ' + a.target) : null),
      h('td', {class: 'mono', testid: 'syn-expected'}, a.expected),
      h('td', {class: 'mono', testid: 'syn-actual'}, a.actual),
      h('td', {class: a.ok ? 'ok' : 'err', testid: 'syn-assertion-result'}, a.ok ? '✓ pass' : '✗ fail'))), {class: 'tbl syn-assertions', testid: 'syn-assertions'}) : null,
    s.error ? h('div', {class: 'err small syn-step-error', testid: 'syn-step-error'}, s.error) : null,
    s.body ? h('details', {class: 'syn-body', open: true}, h('summary', {class: 'dim small'}, 'Response body (first 1 KiB)'), h('pre', {class: 'mono syn-body-text', testid: 'syn-step-body'}, s.body)) : null);
}

// phases splits a step's timings (ms) into DNS, connect, TLS, the wait
// for the first byte (first byte minus the phases before it) and the rest
// of the total (the body).
export function phases(tm) {
  const n = k => Math.max(0, fmt.num(tm[k]));
  const dns = n('dnsMs'), connect = n('connectMs'), tls = n('tlsMs'), first = n('firstByteMs'), total = n('totalMs');
  const wait = Math.max(0, first - dns - connect - tls);
  const rest = Math.max(0, total - Math.max(first, dns + connect + tls));
  return {dns, connect, tls, wait, rest, total: Math.max(total, dns + connect + tls + wait + rest)};
}

// timingBar draws a step's phases as one bar, on a scale where the run's
// longest step fills the track, with their values below.
function timingBar(tm, maxTotal) {
  const p = phases(tm);
  const text = PHASES.map(x => `${x.label} ${ms(p[x.key])}`).join(', ') + `; total ${ms(p.total)}`;
  return h('div', {class: 'syn-timing', testid: 'syn-timing', dataset: {total: p.total}},
    h('div', {class: 'syn-track', role: 'img', 'aria-label': 'timing: ' + text, title: text},
      h('div', {class: 'syn-bar', style: {width: Math.max(0.5, (p.total / maxTotal) * 100) + '%'}},
        PHASES.filter(x => p[x.key] > 0).map(x => h('span', {class: 'syn-ph syn-ph-' + x.key, testid: 'syn-phase', dataset: {phase: x.key, ms: p[x.key]}, style: {'flex-grow': String(p[x.key])}, title: `${x.label}: ${ms(p[x.key])}`})))),
    h('span', {class: 'syn-total num small'}, ms(p.total)),
    h('div', {class: 'syn-phase-values dim tiny'}, PHASES.map(x => h('span', {class: 'nowrap'}, `${x.label} ${p[x.key] ? ms(p[x.key]) : '0'}`))));
}

// ms formats the API's milliseconds.
function ms(v) {
  return fmt.known(v) ? fmt.dur(fmt.num(v) * 1e6) : fmt.UNKNOWN;
}

function stat(label, value, testid) {
  return h('div', {class: 'stat', testid: testid || null}, h('span', {class: 'stat-label'}, label), h('span', {class: 'stat-value'}, value));
}

function labelTags(labels) {
  const list = Object.entries(labels || {}).sort(([a], [b]) => (a < b ? -1 : 1));
  if (!list.length) return null;
  return h('span', {class: 'alert-labels syn-labels'}, list.map(([k, v]) => h('span', {class: 'tag label', testid: 'syn-label', dataset: {name: k}}, h('span', {class: 'dim'}, k, '='), v)));
}

// A part of a card is redrawn only when what it shows changed, so that
// links under the pointer and open tooltips survive the refreshes.
function slot(cls) {
  return h('div', {class: cls});
}

const sigs = new WeakMap();

function fill(el, sig, build) {
  if (sigs.get(el) === sig) return;
  sigs.set(el, sig);
  replace(el, build());
}
