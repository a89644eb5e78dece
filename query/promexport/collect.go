package promexport

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
)

// entityKind is what an entity is; the order of the kinds is the order of
// exposition and of admission under MaxSeries.
type entityKind uint8

const (
	entityService entityKind = iota
	entityEdge
	entityOperation
)

// entity is a service (a: node ID), an edge (a: source, b: target) or an
// operation (a: service node ID, b: span name, c: kind filter name).
type entity struct {
	kind    entityKind
	a, b, c string
}

func compareEntities(x, y entity) int {
	return cmp.Or(cmp.Compare(x.kind, y.kind), cmp.Compare(x.a, y.a), cmp.Compare(x.b, y.b), cmp.Compare(x.c, y.c))
}

// kindNames names the kind filters of operations as GET /api/v1/latency's
// kind parameter does.
var kindNames = map[aggregate.KindFilter]string{
	aggregate.KindServer:   "server",
	aggregate.KindClient:   "client",
	aggregate.KindInternal: "internal",
}

var kindFilters = map[string]aggregate.KindFilter{
	"server":   aggregate.KindServer,
	"client":   aggregate.KindClient,
	"internal": aggregate.KindInternal,
}

// kindFilter returns the kind filter an OTLP span kind belongs to.
func kindFilter(k tracepb.Span_SpanKind) aggregate.KindFilter {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_CONSUMER:
		return aggregate.KindServer
	case tracepb.Span_SPAN_KIND_CLIENT, tracepb.Span_SPAN_KIND_PRODUCER:
		return aggregate.KindClient
	}
	return aggregate.KindInternal
}

// metaSeries is the number of series about the exposition itself
// (start time, dropped series), exposed whatever MaxSeries says.
const metaSeries = 2

// exporter holds the counters' state between scrapes; see the package
// documentation, "Counters".
type exporter struct {
	st        Store
	log       *slog.Logger
	now       func() time.Time
	bounds    []int64 // classic bucket bounds, ns, ascending
	quantiles []float64
	qwin      time.Duration
	maxSeries int
	settle    int64 // seconds

	mu sync.Mutex // serializes scrapes
	// origin is the start (Unix seconds, a multiple of 10) of the first
	// rollup window the counters count.
	origin int64
	// settled is the end of the windows folded into base: windows in
	// [origin, settled) are counted from base, later ones are read at
	// every scrape. A multiple of 10.
	settled int64
	// base holds the rollups of [origin, settled) of every service and
	// edge seen and of the tracked operations (tracked[e]).
	base map[entity]*acc
	// tracked are the operations base holds: those considered for
	// exposition (empty ones too), at most maxTracked.
	tracked map[entity]bool
	// shown holds what was last exposed of each entity (never taken back).
	shown map[entity]*sample
	// namespace maps a service node ID to the namespace it carries ("" for
	// none), to list the operations of its service.name.
	namespace map[string]string
	dropping  bool // the last scrape left series out (logged on change)
}

// maxTracked bounds the operations whose state is kept.
func (e *exporter) maxTracked() int { return e.maxSeries }

// perEntity is the number of series of one service, edge or operation.
func (e *exporter) perEntity() int {
	return 2 + len(e.bounds) + 1 + 2 + len(e.quantiles)
}

// exposed is one entity's data in an exposition.
type exposed struct {
	ent entity
	s   *sample
	q   []float64 // quantiles, seconds (NaN: no timed span in the window)
}

// snapshot is what one scrape exposes.
type snapshot struct {
	origin   int64
	dropped  int
	entities []exposed // sorted by compareEntities
}

func unix(s int64) time.Time { return time.Unix(s, 0) }

func floorTo(t, step int64) int64 {
	r := t % step
	if r < 0 {
		r += step
	}
	return t - r
}

// chunks splits the windows [from, to) (multiples of 10 s) into ranges
// the store reads as they are: a range of 6 hours or more must start on
// the hour (store.DB.FlowGraph and Latency start longer ranges on the
// hour), so such a range is split at its first full hour.
func chunks(from, to int64) [][2]int64 {
	const hour, long = 3600, 6 * 3600
	if to <= from {
		return nil
	}
	if to-from < long || from%hour == 0 {
		return [][2]int64{{from, to}}
	}
	h := floorTo(from, hour) + hour
	return [][2]int64{{from, h}, {h, to}}
}

// rangeEnd returns the end time to give the store for the windows ending
// at to (exclusive): the store reads [start, end] to whole windows.
func rangeEnd(to int64) time.Time { return unix(to - 1) }

// addGraph adds the real nodes' requests and the edges' calls of g to m.
func (e *exporter) addGraph(m map[entity]*acc, g *aggregate.Graph) {
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if n.Virtual {
			continue
		}
		e.namespace[n.ID] = n.Namespace
		k := entity{kind: entityService, a: n.ID}
		a := m[k]
		if a == nil {
			a = newAcc(len(e.bounds))
			m[k] = a
		}
		a.add(&n.Requests, e.bounds)
	}
	for i := range g.Edges {
		ed := &g.Edges[i]
		k := entity{kind: entityEdge, a: ed.Source, b: ed.Target}
		a := m[k]
		if a == nil {
			a = newAcc(len(e.bounds))
			m[k] = a
		}
		a.add(&ed.Calls, e.bounds)
	}
}

var serviceLevel = aggregate.GraphQuery{Level: aggregate.LevelService}

// latencyQuery is the latency query of operation k.
func latencyQuery(k entity) aggregate.LatencyQuery {
	return aggregate.LatencyQuery{Service: k.a, Operation: k.b, Kind: kindFilters[k.c], Level: aggregate.LevelService}
}

// operationRange returns the rollup of operation k over the windows
// [from, to).
func (e *exporter) operationRange(ctx context.Context, k entity, from, to int64) (*acc, error) {
	a := newAcc(len(e.bounds))
	for _, c := range chunks(from, to) {
		lat, err := e.st.Latency(ctx, unix(c[0]), rangeEnd(c[1]), latencyQuery(k))
		if err != nil {
			return nil, fmt.Errorf("latency of %s %q %s: %w", k.a, k.b, k.c, err)
		}
		a.add(&lat.Total, e.bounds)
	}
	return a, nil
}

// fold adds the windows [e.settled, to) to base. Nothing changes on error.
func (e *exporter) fold(ctx context.Context, to int64) error {
	add := map[entity]*acc{}
	for _, c := range chunks(e.settled, to) {
		g, err := e.st.FlowGraph(ctx, unix(c[0]), rangeEnd(c[1]), serviceLevel)
		if err != nil {
			return fmt.Errorf("flow graph: %w", err)
		}
		e.addGraph(add, g)
	}
	for k := range e.tracked {
		a, err := e.operationRange(ctx, k, e.settled, to)
		if err != nil {
			return err
		}
		add[k] = a
	}
	for k, a := range add {
		if b := e.base[k]; b != nil {
			b.merge(a)
		} else {
			e.base[k] = a
		}
	}
	e.settled = to
	return nil
}

// scrape folds what has settled and returns the values to expose now.
func (e *exporter) scrape(ctx context.Context) (*snapshot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	nowS := now.Unix()
	if target := floorTo(nowS-e.settle, 60); target > e.settled {
		if err := e.fold(ctx, target); err != nil {
			return nil, fmt.Errorf("fold windows before %s: %w", unix(target).UTC().Format(time.RFC3339), err)
		}
	}

	// Services and edges: one flow graph for the counters, one for the
	// quantiles.
	live := map[entity]*acc{}
	g, err := e.st.FlowGraph(ctx, unix(e.settled), now, serviceLevel)
	if err != nil {
		return nil, fmt.Errorf("flow graph: %w", err)
	}
	e.addGraph(live, g)
	qFrom := now.Add(-e.qwin)
	qg, err := e.st.FlowGraph(ctx, qFrom, now, serviceLevel)
	if err != nil {
		return nil, fmt.Errorf("flow graph of the quantile window: %w", err)
	}
	windowQ := e.graphQuantiles(qg)

	var services, edges []entity
	seen := map[entity]bool{}
	note := func(k entity) {
		if k.kind == entityOperation || seen[k] {
			return
		}
		seen[k] = true
		if k.kind == entityService {
			services = append(services, k)
		} else {
			edges = append(edges, k)
		}
	}
	// Services and edges with spans since the origin, and those exposed
	// before (a counter, once exposed, stays).
	for k := range e.base {
		note(k)
	}
	for k := range live {
		note(k)
	}
	for k := range e.shown {
		note(k)
	}
	slices.SortFunc(services, compareEntities)
	slices.SortFunc(edges, compareEntities)

	snap := &snapshot{origin: e.origin}
	per := e.perEntity()
	room := max(0, (e.maxSeries-metaSeries)/per)
	value := func(k entity, parts ...*acc) *sample {
		sum := newAcc(len(e.bounds))
		for _, p := range parts {
			if p != nil {
				sum.merge(p)
			}
		}
		s := sum.cumulative()
		s.hold(e.shown[k])
		e.shown[k] = s
		return s
	}
	nan := quantiles(nil, e.quantiles)
	for _, group := range [][]entity{services, edges} {
		for _, k := range group {
			if room == 0 {
				snap.dropped += per
				continue
			}
			room--
			q := windowQ[k]
			if q == nil {
				q = nan
			}
			snap.entities = append(snap.entities, exposed{ent: k, s: value(k, e.base[k], live[k]), q: q})
		}
	}

	ops, err := e.operations(ctx, services)
	if err != nil {
		return nil, err
	}
	for k := range e.tracked {
		if _, ok := slices.BinarySearchFunc(ops, k, compareEntities); !ok {
			e.forget(k) // no longer listed
		}
	}
	if err := e.exposeOperations(ctx, snap, ops, room, now, value); err != nil {
		return nil, err
	}

	if d := snap.dropped > 0; d != e.dropping {
		e.dropping = d
		if d {
			e.log.Warn("RED metrics over max_series: series left out", "max_series", e.maxSeries, "dropped", snap.dropped)
		} else {
			e.log.Info("RED metrics within max_series again", "max_series", e.maxSeries)
		}
	}
	return snap, nil
}

// graphQuantiles returns the quantiles of the real nodes and the edges of
// the quantile window's graph g.
func (e *exporter) graphQuantiles(g *aggregate.Graph) map[entity][]float64 {
	out := map[entity][]float64{}
	for i := range g.Nodes {
		if n := &g.Nodes[i]; !n.Virtual {
			out[entity{kind: entityService, a: n.ID}] = quantiles(&n.Requests, e.quantiles)
		}
	}
	for i := range g.Edges {
		ed := &g.Edges[i]
		out[entity{kind: entityEdge, a: ed.Source, b: ed.Target}] = quantiles(&ed.Calls, e.quantiles)
	}
	return out
}

// exposeOperations adds to snap the operations ops (sorted) that had spans
// since the origin, while room (in entities) lasts, counting the rest as
// dropped. value returns an operation's exposed sample from its parts.
func (e *exporter) exposeOperations(ctx context.Context, snap *snapshot, ops []entity, room int, now time.Time,
	value func(k entity, parts ...*acc) *sample) error {
	per := e.perEntity()
	nan := quantiles(nil, e.quantiles)
	qFrom := now.Add(-e.qwin)
	quantileFrom := floorTo(qFrom.Unix(), 10)
	for _, k := range ops {
		if room == 0 || (!e.tracked[k] && len(e.tracked) >= e.maxTracked()) {
			if e.tracked[k] {
				known := e.shown[k] != nil
				e.forget(k)
				if !known {
					continue // known to have no spans
				}
			}
			snap.dropped += per
			continue
		}
		if !e.tracked[k] {
			b, err := e.operationRange(ctx, k, e.origin, e.settled)
			if err != nil {
				return err
			}
			e.base[k], e.tracked[k] = b, true
		}
		lat, err := e.st.Latency(ctx, unix(e.settled), now, latencyQuery(k))
		if err != nil {
			return fmt.Errorf("latency of %s %q %s: %w", k.a, k.b, k.c, err)
		}
		la := newAcc(len(e.bounds))
		la.add(&lat.Total, e.bounds)
		if e.base[k].empty() && la.empty() {
			continue // no span since the origin: nothing to expose
		}
		room--
		q := nan
		// Without a timed span since settled there is none in the
		// quantile window when it starts at or after settled.
		if lat.Total.Hist != nil && lat.Total.Hist.TotalCount() > 0 || quantileFrom < e.settled {
			ql, err := e.st.Latency(ctx, qFrom, now, latencyQuery(k))
			if err != nil {
				return fmt.Errorf("latency of %s %q %s: %w", k.a, k.b, k.c, err)
			}
			q = quantiles(&ql.Total, e.quantiles)
		}
		snap.entities = append(snap.entities, exposed{ent: k, s: value(k, e.base[k], la), q: q})
	}

	return nil
}

// forget drops the state of operation k, left out of an exposition: if it
// is exposed again its counters are recomputed from the origin.
func (e *exporter) forget(k entity) {
	delete(e.tracked, k)
	delete(e.base, k)
	delete(e.shown, k)
}

// operations lists the operations of services (sorted): every span name of
// the service's service.name, by kind filter.
func (e *exporter) operations(ctx context.Context, services []entity) ([]entity, error) {
	var out []entity
	for _, s := range services {
		name := s.a
		if ns := e.namespace[s.a]; ns != "" {
			name = strings.TrimPrefix(name, ns+"/")
		}
		ops, err := e.st.Operations(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("operations of %s: %w", name, err)
		}
		for _, op := range ops {
			out = append(out, entity{kind: entityOperation, a: s.a, b: op.Name, c: kindNames[kindFilter(op.Kind)]})
		}
	}
	slices.SortFunc(out, compareEntities)
	return slices.Compact(out), nil
}
