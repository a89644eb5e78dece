// Import: upload a spigo, Zipkin or OTLP file to POST /api/v1/import with
// an upload progress bar, then show the server's summary field by field.
import {h, replace, link, message} from '../dom.js';
import * as api from '../api.js';
import * as fmt from '../fmt.js';

// UNITS formats the summary's nanosecond and byte counts for reading.
const UNITS = {shift: fmt.dur, elapsed: fmt.dur, bytes: fmt.bytes};

// renderValue shows any JSON value as nested text (never markup).
export function renderValue(v, depth = 0) {
  if (v === null || v === undefined) return h('span', {class: 'dim'}, '—');
  if (Array.isArray(v)) {
    if (!v.length) return h('span', {class: 'dim'}, 'none');
    if (v.every(x => typeof x !== 'object' || x === null)) return h('span', null, v.map(String).join(', '));
    return h('ol', {class: 'plain'}, v.slice(0, 200).map(x => h('li', null, renderValue(x, depth + 1))));
  }
  if (typeof v === 'object') {
    if (depth > 6) return h('span', {class: 'mono small'}, JSON.stringify(v));
    return h('dl', {class: 'kv'}, Object.entries(v).map(([k, x]) => [h('dt', null, k), h('dd', {dataset: {field: k}}, typeof x === 'number' && UNITS[k] ? `${UNITS[k](x)} (${x})` : renderValue(x, depth + 1))]));
  }
  return h('span', null, String(v));
}

export default function mount(el) {
  const file = h('input', {type: 'file', testid: 'import-file', accept: '.json,.jsonl,.txt,.gz,.pb,.bin,.zip,application/json'});
  const rebase = h('input', {type: 'checkbox', testid: 'import-rebase'});
  const name = h('span', {class: 'dim', testid: 'import-name'}, 'no file chosen');
  const progress = h('progress', {max: 100, value: 0, testid: 'import-progress', class: 'progress'});
  const pct = h('span', {class: 'small dim', testid: 'import-progress-text'}, '');
  const result = h('div', {testid: 'import-result', class: 'import-result'});
  const go = h('button', {type: 'button', class: 'btn btn-primary', testid: 'import-submit', disabled: true}, 'Import');
  const drop = h('div', {class: 'dropzone', testid: 'import-drop'}, h('div', null, 'Drop a spigo, Zipkin (v1/v2 JSON) or OTLP file here, or '), h('label', {class: 'btn'}, 'choose a file', file), name);
  let chosen = null;
  const choose = f => {
    chosen = f;
    replace(name, f ? `${f.name} (${fmt.bytes(f.size)})` : 'no file chosen');
    go.disabled = !f;
  };
  file.addEventListener('change', () => choose(file.files[0] || null));
  drop.addEventListener('dragover', ev => {
    ev.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', ev => {
    ev.preventDefault();
    drop.classList.remove('over');
    if (ev.dataTransfer.files[0]) choose(ev.dataTransfer.files[0]);
  });
  go.addEventListener('click', async () => {
    if (!chosen) return;
    go.disabled = true;
    progress.value = 0;
    progress.removeAttribute('data-done');
    message(result, 'loading', 'Uploading…');
    const t0 = performance.now();
    try {
      const r = await api.upload(chosen, {name: chosen.name, rebase: rebase.checked ? 'now' : ''}, (loaded, total) => {
        const p = total ? (loaded / total) * 100 : 0;
        progress.value = p;
        pct.textContent = `${Math.round(p)} % · ${fmt.bytes(loaded)} of ${fmt.bytes(total)}`;
        if (p >= 100) message(result, 'loading', 'Uploaded; the collector is importing…');
      });
      progress.value = 100;
      progress.dataset.done = '1';
      if (r.status >= 200 && r.status < 300 && r.body && typeof r.body === 'object') {
        const b = r.body;
        // Offer what the file brought: traces (spans), metrics, or a
        // declared architecture to compare the map with.
        const range = b.start && b.end ? {range: 'custom', from: Date.parse(b.start) || '', to: Date.parse(b.end) || ''} : {};
        const spans = fmt.num(b.spans) > 0 || fmt.num(b.traces) > 0, points = fmt.num(b.metricPoints) > 0;
        const arch = typeof b.architecture === 'string' ? b.architecture : b.architecture && b.architecture.name;
        replace(result,
          h('div', {class: 'msg msg-ok', testid: 'import-ok'}, `Imported ${b.name || chosen.name}${b.format ? ' (' + b.format + ')' : ''}: ${fmt.count(b.spans ?? 0)} spans, ${fmt.count(b.traces ?? 0)} traces${points ? ', ' + fmt.count(b.metricPoints) + ' metric points' : ''} in ${Math.round(performance.now() - t0)} ms.`),
          h('div', {class: 'inline wrap', testid: 'import-next'},
            spans ? h('a', {class: 'btn', href: link('map', '', range), testid: 'import-map'}, 'Open the service map') : null,
            spans ? h('a', {class: 'btn', href: link('traces', '', range), testid: 'import-traces'}, 'Search its traces') : null,
            points ? h('a', {class: 'btn', href: link('metrics'), testid: 'import-metrics'}, 'Browse its metrics') : null,
            arch ? h('a', {class: 'btn', href: link('map', '', {compare: arch}), testid: 'import-compare'}, 'Compare the map with ', arch) : null),
          h('h3', null, 'Summary'), renderValue(b));
      } else {
        const msg = r.body && typeof r.body === 'object' ? r.body.error || r.body.message || JSON.stringify(r.body) : String(r.body || '');
        replace(result, h('div', {class: 'msg msg-error', testid: 'import-error'}, `Import failed (${r.status}): ${msg}`));
      }
    } catch (e) {
      replace(result, h('div', {class: 'msg msg-error', testid: 'import-error'}, e.message));
    } finally {
      go.disabled = !chosen;
    }
  });
  el.append(h('h1', null, 'Import'),
    h('p', {class: 'dim'}, 'Load traces simulated by spigo/simianviz, Zipkin v1/v2 JSON or OTLP files into this collector. ', h('b', null, 'Rebase'), ' shifts the file\'s timestamps so its last span ends now, so it shows up in the live views.'),
    h('div', {class: 'card'}, drop, h('div', {class: 'import-row'}, h('label', {class: 'check'}, rebase, 'rebase timestamps to now'), go), h('div', {class: 'import-row'}, progress, pct)),
    h('div', {class: 'card'}, result));
  message(result, 'empty', 'No import yet. The summary of an import shows here.');
  return {};
}
