// Read-only hooks for browser tests and debugging, at window.__flowscope:
// the open map's state (node and edge ids, render timings), screen
// positions of its nodes and edges, and a frame-time sampler. They expose
// nothing the page does not already show.

let map = null;
let routeInfo = () => null;

export function setMap(m) {
  map = m;
}

export function clearMap(m) {
  if (map === m) map = null;
}

export function setRouteInfo(fn) {
  routeInfo = fn;
}

function quantile(sorted, q) {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

function summary(xs) {
  const v = xs.slice().sort((a, b) => a - b);
  const mean = v.length ? v.reduce((a, b) => a + b, 0) / v.length : 0;
  return {n: v.length, mean, p50: quantile(v, 0.5), p95: quantile(v, 0.95), max: v.length ? v[v.length - 1] : 0};
}

const hooks = {
  version: 1,
  route: () => routeInfo(),
  mapState: () => (map ? map.state() : null),
  positions: () => (map ? map.positions() : null),
  nodePoint: id => (map ? map.nodePoint(id) : null),
  nodeBox: id => (map ? map.nodeBox(id) : null),
  edgePoint: (source, target, frac) => (map ? map.edgePoint(source, target, frac) : null),
  hitAt: (clientX, clientY) => {
    if (!map) return null;
    const r = map.canvas.getBoundingClientRect();
    return map.hitAt(clientX - r.left, clientY - r.top);
  },
  // sampleFrames records requestAnimationFrame intervals for ms
  // milliseconds, and the map's draw times over the same period.
  sampleFrames: ms =>
    new Promise(resolve => {
      const ts = [];
      const draws0 = map ? map.drawTimes().length : 0;
      const updates0 = map ? map.state().updates : 0;
      const t0 = performance.now();
      const step = t => {
        ts.push(t);
        if (t - t0 < ms) requestAnimationFrame(step);
        else {
          const intervals = ts.slice(1).map((x, i) => x - ts[i]);
          const dt = map ? map.drawTimes() : [];
          const draws = dt.slice(Math.max(0, Math.min(draws0, dt.length - (ts.length - 1))));
          resolve({frames: ts.length, interval: summary(intervals), draw: summary(draws), updates: map ? map.state().updates - updates0 : 0});
        }
      };
      requestAnimationFrame(step);
    }),
};

Object.defineProperty(window, '__flowscope', {value: Object.freeze(hooks), configurable: false, writable: false});
