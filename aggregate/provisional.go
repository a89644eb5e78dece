package aggregate

import (
	"math"
	"math/bits"
	"slices"
)

// Provisional calls (see the package documentation, "Provisional calls").
//
// A client half held with a virtual-target name and not paired (yet) is a
// provisional call: queries show it on its virtual edge until a server
// half pairs it (the call moves to the paired edge) or it is resolved
// (expired, evicted or replaced: the call is recorded on the virtual edge
// for real). The aggregator keeps a summary of the provisional calls per
// (window, source node, virtual target, operation): counts and a multiset
// of HDR-bucket durations, which, unlike a histogram, can be decremented.
//
// The summary is kept lazily so that Apply pays nothing for it: Live first
// adds the entries queued since its previous call (provSeen) that are
// provisional, marking them flagProv; from then on pairing and kill take a
// marked entry out of the summary. Entries that pair or leave before a
// query looks at them never enter it. The summary is thus a function of
// the queue alone, which Rebuild restores exactly after a crash.

// provKey identifies a provisional edge rollup; the IDs are interned (the
// target as a string: the virtual node is made at query time).
type provKey struct {
	start             int64 // window start, Unix seconds
	src, target, name uint32
}

// provSum is the summary of the provisional calls of one provKey.
type provSum struct {
	count, errors, clamped int64
	// durs counts the durations by the lowest value of their HDR bucket
	// (clamped to the histogram's range first); unknown durations
	// (DurationUnknownAttr) are only in count.
	durs map[int64]int64
}

// provisional reports whether e is a provisional call.
func provisional(e *entry) bool {
	return e.kind == entryClient && e.target != 0 && e.flags&(flagPaired|flagDead) == 0
}

// bucketFloor returns the lowest value of the HDR bucket of v (0 ≤ v ≤ the
// highest trackable value) at a's geometry: recording it gives the same
// histogram as recording v.
func (a *Aggregator) bucketFloor(v int64) int64 {
	s := bits.Len64(uint64(v)) - a.provMag
	if s <= 0 {
		return v
	}
	return v >> s << s
}

// subBucketMagnitude is log2 of the sub-bucket count of an HDR histogram
// with the given significant digits and a lowest discernible value of 1,
// as hdrhistogram-go computes it.
func subBucketMagnitude(digits int) int {
	largest := 2 * math.Pow10(digits)
	return int(math.Ceil(math.Log2(largest)))
}

// provDuration returns where e's duration goes in a summary: the bucket
// floor, and whether it was clamped; untimed for an unknown duration.
func (a *Aggregator) provDuration(e *entry) (v int64, clamped, untimed bool) {
	if e.dur == durUnknown {
		return 0, false, true
	}
	v = max(e.dur, 0)
	if v > a.provMax {
		v, clamped = a.provMax, true
	}
	return a.bucketFloor(v), clamped, false
}

// addProv adds the provisional entry e to the summary and marks it.
func (a *Aggregator) addProv(e *entry) {
	k := provKey{start: a.windowStart(e.start), src: e.node, target: e.target, name: e.name}
	ps := a.prov[k]
	if ps == nil {
		ps = &provSum{durs: map[int64]int64{}}
		a.prov[k] = ps
	}
	ps.count++
	if e.flags&flagErr != 0 {
		ps.errors++
	}
	if v, clamped, untimed := a.provDuration(e); !untimed {
		ps.durs[v]++
		if clamped {
			ps.clamped++
		}
	}
	e.flags |= flagProv
}

// dropProv takes the marked entry e out of the summary (it paired or is
// leaving the queue) and unmarks it; nothing if e is not marked.
func (a *Aggregator) dropProv(e *entry) {
	if e.flags&flagProv == 0 {
		return
	}
	e.flags &^= flagProv
	k := provKey{start: a.windowStart(e.start), src: e.node, target: e.target, name: e.name}
	ps := a.prov[k]
	if ps == nil {
		panic("BUG: provisional entry without its summary")
	}
	if ps.count--; ps.count == 0 {
		delete(a.prov, k)
		return
	}
	if e.flags&flagErr != 0 {
		ps.errors--
	}
	if v, clamped, untimed := a.provDuration(e); !untimed {
		if ps.durs[v]--; ps.durs[v] == 0 {
			delete(ps.durs, v)
		}
		if clamped {
			ps.clamped--
		}
	}
}

// scanProv adds the provisional entries queued since the last scan.
func (a *Aggregator) scanProv() {
	for id := max(a.provSeen, a.q.head); id < a.q.tail; id++ {
		if e := a.q.get(id); provisional(e) {
			a.addProv(e)
		}
	}
	a.provSeen = a.q.tail
}

// remapProv rewrites the summary keys after the intern tables were
// compacted.
func (a *Aggregator) remapProv(m *remapper) {
	if len(a.prov) == 0 {
		return
	}
	old := a.prov
	a.prov = make(map[provKey]*provSum, len(old))
	for k, ps := range old {
		k.src, k.target, k.name = m.node(k.src), m.str(k.target), m.str(k.name)
		a.prov[k] = ps
	}
}

// rollup returns the summary as an edge rollup: what the calls will add
// to their virtual edge when they are resolved, without exemplars.
func (ps *provSum) rollup(g Geometry) *Rollup {
	r := g.NewRollup()
	r.Count, r.Errors, r.Clamped = ps.count, ps.errors, ps.clamped
	vals := make([]int64, 0, len(ps.durs))
	for v := range ps.durs {
		vals = append(vals, v)
	}
	slices.Sort(vals)
	for _, v := range vals {
		// Cannot fail: v is in range and the counts are those of held spans.
		_ = r.Hist.RecordValues(v, ps.durs[v])
	}
	return r
}

// Live returns, taken together under one lock, the unflushed window deltas
// that overlap [from, to) (Unix seconds), as Open does, and the
// provisional calls of those windows: client halves held with a
// virtual-target name and not paired yet, as windows holding only edges to
// their virtual nodes, one rollup per (source, target, operation), without
// exemplars. A query that merges both with the persisted windows counts
// every call exactly once: a provisional call leaves the provisional
// windows in the same step as it is recorded on its paired edge or on its
// virtual edge. Provisional windows must never be persisted or merged into
// other windows; the caller owns all the windows returned.
func (a *Aggregator) Live(from, to int64) (open, prov []*Window) {
	a.mu.Lock()
	defer a.mu.Unlock()
	open = a.open(from, to)
	a.scanProv()
	byStart := map[int64]*Window{}
	for k, ps := range a.prov {
		if k.start >= to || k.start+a.widthSec <= from {
			continue
		}
		w := byStart[k.start]
		if w == nil {
			w = &Window{Start: k.start, Width: a.widthSec, Series: map[SeriesKey]*Rollup{}, Edges: map[EdgeKey]*Rollup{}}
			byStart[k.start] = w
			prov = append(prov, w)
		}
		w.Edges[EdgeKey{Source: a.in.nodes[k.src], Target: Node{Service: a.in.strs[k.target], Virtual: true},
			Operation: a.in.strs[k.name]}] = ps.rollup(a.geom)
	}
	slices.SortFunc(prov, func(x, y *Window) int { return int(sign(x.Start - y.Start)) })
	return open, prov
}

// AddProvisional merges a provisional window from Live, as Add would, and
// counts its calls in GraphEdge.Provisional too.
func (ga *GraphAccumulator) AddProvisional(w *Window) {
	ga.Add(w)
	op := ga.q.Operation
	for k, r := range w.Edges {
		if (op != "" && k.Operation != op) || !ga.edgeInScope(&k) {
			continue
		}
		ga.edge(ga.node(&k.Source), ga.node(&k.Target)).provisional += r.Count
	}
}

// AddProvisional merges a provisional window from Live, as Add would, and
// counts its calls in Latency.Provisional too.
func (la *LatencyAccumulator) AddProvisional(w *Window) {
	la.Add(w)
	for k, r := range w.Edges {
		if la.matchEdge(&k) {
			la.provisional += r.Count
		}
	}
}
