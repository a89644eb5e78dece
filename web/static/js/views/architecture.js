// Architecture: the flow policies (GET /api/v1/policies) with their
// violations in the range — each with its calls, first and last seen and
// an exemplar trace — the policies file's state and a reload button
// (POST /policies:reload); and the architecture lint of the flow graph
// (GET /api/v1/lint) by rule, with its evidence linked to the map and to
// traces. Refreshed every 5 s while the range is relative. Policy names,
// globs, node names and lint messages are data: inserted as text.
import {h, replace, link, field, select, table, message} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';
import * as timerange from '../timerange.js';

const REFRESH_MS = 5000;
const LEVELS = ['service', 'instance', 'zone', 'region', 'namespace'];
const RULE_TITLES = {
  chain_depth: 'Long synchronous chains', fan_out: 'Fan-out', fan_in: 'Fan-in', cycle: 'Cycles',
  single_point: 'Single points of failure', availability: 'Availability', timeout_budget: 'Timeout budgets', retry_storm: 'Retry storms',
};

export default function mount(el, ctx) {
  let params = ctx.params;
  const P = k => params.get(k) || '';
  let alive = true;
  let seq = 0;
  let timer = null;

  const status = h('span', {class: 'status dim', testid: 'arch-status'}, 'loading…');
  const reloadMsg = h('span', {class: 'small', testid: 'policies-reload-result'});
  const reloadBtn = h('button', {type: 'button', class: 'btn', testid: 'policies-reload', title: 'Read the policies file again (POST /api/v1/policies:reload), as SIGHUP does', onclick: () => reload()}, 'Reload policies');
  const levelSel = select(LEVELS.map(v => ({value: v, label: v})), P('level') || 'service', {testid: 'lint-level', onchange: () => ctx.setParams({level: levelSel.value === 'service' ? '' : levelSel.value})});
  const rangeBox = h('span');
  const toolbar = h('div', {class: 'toolbar'}, rangeBox, field('Lint level', levelSel), h('span', {class: 'inline'}, reloadBtn, reloadMsg), status);
  const fileBox = h('div', {testid: 'policies-file'});
  const policiesBox = h('div', {testid: 'policies'});
  const lintBox = h('div', {testid: 'lint'});
  el.append(h('h1', null, 'Architecture'), toolbar,
    h('section', {class: 'arch-section'}, h('h2', null, 'Flow policies'), fileBox, policiesBox),
    h('section', {class: 'arch-section'}, h('h2', null, 'Lint'), lintBox));

  function drawRange() {
    replace(rangeBox, timerange.picker(params, p => ctx.setParams(p), '5m'));
  }

  const mapEdge = (src, tgt, level) => link('map', '', {source: src, target: tgt, level: level === 'service' ? '' : level});
  const mapNode = (id, level) => link('map', '', {node: id, level: level === 'service' ? '' : level});
  const traceLink = (trace, span, testid) => trace
    ? h('a', {href: link('trace', trace, {span: span || ''}), class: 'mono small', testid, dataset: {traceId: trace}}, trace.slice(0, 12) + '…')
    : h('span', {class: 'dim'}, '–');
  const time = v => (v ? fmt.time(Date.parse(v)) : '–');

  function renderPolicies(p) {
    if (!p.path) {
      replace(fileBox, h('div', {class: 'card msg', testid: 'policies-none'},
        h('p', null, 'No flow policies are loaded. Start the collector with ', h('span', {class: 'mono'}, '--policies PATH'),
          ' (a policies file or a directory of *.yml files), FLOWSCOPE_POLICIES, or ', h('span', {class: 'mono'}, 'policies'),
          ' in its config file; see docs/architecture-rules.md. For example:'),
        h('pre', {class: 'mono small'}, 'policies:\n  - name: no-direct-db\n    deny: {from: "web*", to: "mysql*"}\n  - name: payments-callers\n    allow_only: {to: payments, from: [checkout]}\nlint:\n  fan_out: {threshold: 10}'),
        h('p', {class: 'small dim'}, 'The lint below runs with its default thresholds.')));
      replace(policiesBox);
      reloadBtn.hidden = true;
      return;
    }
    reloadBtn.hidden = false;
    replace(fileBox,
      h('p', {class: 'small dim'}, h('span', {class: 'mono'}, p.path), ` · loaded ${time(p.loadedAt)}`, p.lastReloadAt ? ` · last reload ${time(p.lastReloadAt)}` : ''),
      p.lastReloadError ? h('div', {class: 'banner banner-err', testid: 'policies-reload-error'}, 'The last reload was refused; the policies in use are kept: ', h('pre', {class: 'mono small'}, p.lastReloadError)) : null,
      (p.problems || []).length ? h('ul', {class: 'small warn', testid: 'policies-problems'}, p.problems.map(x => h('li', null, x))) : null);
    const pols = p.policies || [];
    const nViol = pols.reduce((n, x) => n + (x.violations || []).length, 0);
    replace(status, `${pols.length} polic${pols.length === 1 ? 'y' : 'ies'} · ${nViol} violation${nViol === 1 ? '' : 's'} · ${time(p.start)} – ${time(p.end)}`);
    replace(policiesBox, pols.length ? pols.map(pol => {
      const rule = pol.kind === 'deny_undeclared' ? ['calls not in the architecture ', h('span', {class: 'mono'}, pol.architecture)]
        : pol.kind === 'allow_only' ? ['only ', h('span', {class: 'mono'}, (pol.from || []).join(', ')), ' may call ', h('span', {class: 'mono'}, (pol.to || []).join(', '))]
          : [h('span', {class: 'mono'}, (pol.from || []).join(', ') || '*'), ' must not call ', h('span', {class: 'mono'}, (pol.to || []).join(', ') || '*')];
      const vs = pol.violations || [];
      return h('div', {class: 'card arch-policy' + (vs.length ? ' violated' : ''), testid: 'policy', dataset: {name: pol.name, violations: vs.length}},
        h('div', {class: 'arch-policy-head'},
          h('span', {class: 'strong', testid: 'policy-name'}, pol.name), ' ',
          h('span', {class: 'tag'}, pol.kind.replace('_', ' ')), ' ', h('span', {class: 'tag'}, pol.level), ' ',
          h('span', {class: vs.length ? 'badge badge-firing' : 'badge'}, vs.length ? `${vs.length} violation${vs.length === 1 ? '' : 's'}` : 'passing'),
          h('span', {class: 'dim small'}, ` ${pol.file}:${pol.line}`)),
        h('p', {class: 'small'}, rule),
        vs.length ? table(['call', 'calls', 'first seen', 'last seen', 'exemplar'], vs.map(v =>
          h('tr', {testid: 'violation', dataset: {source: v.source, target: v.target}},
            h('td', null, h('a', {href: mapEdge(v.source, v.target, pol.level), testid: 'violation-edge'}, v.source, ' → ', v.target)),
            h('td', {class: 'num'}, fmt.count(v.calls)),
            h('td', {class: 'dim'}, time(v.firstSeen)),
            h('td', {class: 'dim'}, time(v.lastSeen)),
            h('td', null, traceLink(v.exemplarTraceId, v.exemplarSpanId, 'violation-exemplar'))))) : null);
    }) : h('p', {class: 'dim'}, 'The policies file holds no policies.'));
  }

  function renderLint(l) {
    const fs = l.findings || [];
    const byRule = new Map();
    for (const f of fs) {
      if (!byRule.has(f.rule)) byRule.set(f.rule, []);
      byRule.get(f.rule).push(f);
    }
    const settings = table(['rule', 'enabled', 'threshold', 'severity'], (l.rules || []).map(r =>
      h('tr', null, h('td', null, r.rule), h('td', null, r.enabled ? 'yes' : 'no'), h('td', {class: 'num'}, String(fmt.num(r.threshold))), h('td', null, r.severity))), {testid: 'lint-rules'});
    replace(lintBox,
      fs.length ? null : h('p', {class: 'msg msg-empty', testid: 'lint-none'}, `No finding at the ${l.level} level in this range.`),
      [...byRule].map(([rule, list]) => h('div', {class: 'arch-rule', testid: 'lint-rule', dataset: {rule}},
        h('h3', null, RULE_TITLES[rule] || rule, ' ', h('span', {class: 'count dim'}, String(list.length))),
        list.map(f => h('div', {class: 'card arch-finding sev-' + f.severity, testid: 'finding', dataset: {rule: f.rule, severity: f.severity}},
          h('div', null, h('span', {class: 'badge sev sev-' + f.severity}, f.severity), ' ', h('span', {testid: 'finding-message'}, f.message)),
          h('div', {class: 'small dim'}, `value ${fmt.num(f.value)} · threshold ${fmt.num(f.threshold)}`, f.amplification ? ` · amplification ${fmt.num(f.amplification).toFixed(2)}` : '',
            f.latencyNs ? ` · p99s sum to ${fmt.dur(f.latencyNs)}` : ''),
          (f.nodes || []).length ? h('div', {class: 'small inline wrap'}, 'nodes: ', (f.nodes || []).slice(0, 30).map(n => h('a', {href: mapNode(n, l.level), class: 'mono', testid: 'finding-node'}, n)),
            f.nodes.length > 30 ? h('span', {class: 'dim'}, `and ${f.nodes.length - 30} more`) : null) : null,
          (f.edges || []).length ? h('div', {class: 'small inline wrap'}, 'calls: ', f.edges.slice(0, 30).map(e => h('a', {href: mapEdge(e.source, e.target, l.level), class: 'mono', testid: 'finding-edge'}, e.source, ' → ', e.target)),
            f.edges.length > 30 ? h('span', {class: 'dim'}, `and ${f.edges.length - 30} more`) : null) : null,
          f.exemplarTraceId ? h('div', {class: 'small'}, 'exemplar: ', traceLink(f.exemplarTraceId, '', 'finding-exemplar')) : null)))),
      h('details', {class: 'small'}, h('summary', null, 'Rule settings'), settings));
  }

  async function load() {
    const my = ++seq;
    const tr = timerange.resolve(params, '5m');
    const q = timerange.apiParams(tr);
    try {
      const [p, l] = await Promise.all([api.get('/policies', q), api.get('/lint', Object.assign({level: P('level') || 'service'}, q))]);
      if (!alive || my !== seq) return;
      el.dataset.state = 'ready';
      renderPolicies(p);
      renderLint(l);
    } catch (e) {
      if (!alive || my !== seq) return;
      el.dataset.state = 'error';
      message(policiesBox, 'error', 'Architecture: ' + e.message);
    }
    if (alive && tr.live) {
      clearTimeout(timer);
      timer = setTimeout(load, REFRESH_MS);
    }
  }

  async function reload() {
    reloadBtn.disabled = true;
    reloadMsg.className = 'small dim';
    reloadMsg.textContent = 'reloading…';
    try {
      const r = await api.post('/policies:reload');
      reloadMsg.className = 'small ok';
      reloadMsg.textContent = `Loaded ${r.policies} polic${r.policies === 1 ? 'y' : 'ies'}.`;
    } catch (e) {
      reloadMsg.className = 'small err';
      reloadMsg.textContent = e.message;
    } finally {
      reloadBtn.disabled = false;
      if (alive) load();
    }
  }

  drawRange();
  load();
  return {
    update(c) {
      params = c.params;
      levelSel.value = P('level') || 'service';
      drawRange();
      load();
    },
    destroy() {
      alive = false;
      clearTimeout(timer);
    },
  };
}
