package aggregate

import (
	"cmp"
	"slices"
)

// GraphAccumulator merges windows into a flow graph. Add each window once;
// Result may be called once, after the last Add. An accumulator is not
// safe for concurrent use; the windows it is given are only read.
type GraphAccumulator struct {
	q       GraphQuery
	g       Geometry
	nodes   map[string]*graphNode
	edges   map[[2]string]*GraphEdge
	windows map[[2]int64]struct{}
}

type graphNode struct {
	id       string
	real     bool // has series, or is a non-virtual edge endpoint
	region   string
	requests *Rollup // server-side series (real node)
	inbound  *Rollup // edges into the node while it is virtual
	spans    int64
	errors   int64
}

// NewGraphAccumulator returns an accumulator for q; g is the geometry of
// the rollups it will be given.
func NewGraphAccumulator(q GraphQuery, g Geometry) *GraphAccumulator {
	return &GraphAccumulator{q: q, g: g, nodes: map[string]*graphNode{},
		edges: map[[2]string]*GraphEdge{}, windows: map[[2]int64]struct{}{}}
}

func (ga *GraphAccumulator) node(n Node) *graphNode {
	id := n.At(ga.q.Level)
	gn := ga.nodes[id]
	if gn == nil {
		gn = &graphNode{id: id}
		ga.nodes[id] = gn
	}
	if !n.Virtual {
		gn.real = true
		if ga.q.Level < LevelRegion && n.Region != "" && (gn.region == "" || n.Region < gn.region) {
			gn.region = n.Region
		}
	}
	return gn
}

// Add merges the series and edges of w that q selects.
func (ga *GraphAccumulator) Add(w *Window) {
	ga.windows[[2]int64{w.Start, w.Width}] = struct{}{}
	op := ga.q.Operation
	for k, r := range w.Series {
		if op != "" && k.Operation != op {
			continue
		}
		gn := ga.node(k.Node)
		gn.spans += r.Count
		gn.errors += r.Errors
		if k.Kind == kindServer || k.Kind == kindConsumer {
			if gn.requests == nil {
				gn.requests = ga.g.NewRollup()
			}
			gn.requests.Merge(r)
		}
	}
	for k, r := range w.Edges {
		if op != "" && k.Operation != op {
			continue
		}
		src := ga.node(k.Source)
		dst := ga.node(k.Target)
		if k.Target.Virtual {
			if dst.inbound == nil {
				dst.inbound = ga.g.NewRollup()
			}
			dst.inbound.Merge(r)
		}
		ek := [2]string{src.id, dst.id}
		e := ga.edges[ek]
		if e == nil {
			e = &GraphEdge{Source: src.id, Target: dst.id, Calls: *ga.g.NewRollup()}
			ga.edges[ek] = e
		}
		e.Calls.Merge(r)
	}
}

// Result returns the graph: every node with a series or an edge, sorted by
// ID, and edges sorted by (Source, Target). A node is virtual only if it
// is nothing but the target of virtual edges (an instrumented service with
// the same name wins); a virtual node's Requests merge the edges into it.
// Seconds is the length of the union of the windows added (overlapping
// windows, as from two tiers, count once).
func (ga *GraphAccumulator) Result() *Graph {
	out := &Graph{Nodes: make([]GraphNode, 0, len(ga.nodes)), Edges: make([]GraphEdge, 0, len(ga.edges))}
	for _, gn := range ga.nodes {
		n := GraphNode{ID: gn.id, Virtual: !gn.real, Spans: gn.spans, SpanErrors: gn.errors}
		var req *Rollup
		if gn.real {
			n.Region = gn.region
			req = gn.requests
		} else {
			req = gn.inbound
		}
		if req == nil {
			req = ga.g.NewRollup()
		}
		n.Requests = *req
		out.Nodes = append(out.Nodes, n)
	}
	slices.SortFunc(out.Nodes, func(x, y GraphNode) int { return cmp.Compare(x.ID, y.ID) })
	for _, e := range ga.edges {
		e.Virtual = !ga.nodes[e.Target].real
		out.Edges = append(out.Edges, *e)
	}
	slices.SortFunc(out.Edges, func(x, y GraphEdge) int {
		return cmp.Or(cmp.Compare(x.Source, y.Source), cmp.Compare(x.Target, y.Target))
	})
	out.Seconds = unionLength(ga.windows)
	return out
}

// unionLength returns the length of the union of [start, start+width).
func unionLength(ws map[[2]int64]struct{}) int64 {
	iv := make([][2]int64, 0, len(ws))
	for w := range ws {
		iv = append(iv, [2]int64{w[0], w[0] + w[1]})
	}
	slices.SortFunc(iv, func(x, y [2]int64) int { return cmp.Compare(x[0], y[0]) })
	var total, end int64
	first := true
	for _, v := range iv {
		switch {
		case first || v[0] >= end:
			total += v[1] - v[0]
			end = v[1]
			first = false
		case v[1] > end:
			total += v[1] - end
			end = v[1]
		}
	}
	return total
}

// LatencyAccumulator merges the rollups a LatencyQuery selects. Add each
// window once; Result may be called once, after the last Add. It is not
// safe for concurrent use; the windows it is given are only read.
type LatencyAccumulator struct {
	q     LatencyQuery
	g     Geometry
	edge  bool
	total *Rollup
	steps map[int64]*Rollup
}

// NewLatencyAccumulator returns an accumulator for q. With Source or
// Target set it selects edges (an empty one matches any node), by node
// names at q.Level; otherwise the series of q.Service (any instance; ""
// matches every service) of the kinds q.Kind selects. q.Operation, when
// set, filters both.
func NewLatencyAccumulator(q LatencyQuery, g Geometry) *LatencyAccumulator {
	return &LatencyAccumulator{q: q, g: g, edge: q.Source != "" || q.Target != "",
		total: g.NewRollup(), steps: map[int64]*Rollup{}}
}

// Match reports whether f selects the OTLP span kind.
func (f KindFilter) Match(kind int32) bool {
	switch f {
	case KindServer:
		return kind == kindServer || kind == kindConsumer
	case KindClient:
		return kind == kindClient || kind == kindProducer
	case KindInternal:
		return kind != kindServer && kind != kindConsumer && kind != kindClient && kind != kindProducer
	case KindAll:
		return true
	}
	return false
}

// Add merges the rollups of w that the query selects.
func (la *LatencyAccumulator) Add(w *Window) {
	q := &la.q
	var step *Rollup
	add := func(r *Rollup) {
		la.total.Merge(r)
		if q.Step > 0 {
			if step == nil {
				s := floorDiv(w.Start, q.Step) * q.Step
				if step = la.steps[s]; step == nil {
					step = la.g.NewRollup()
					la.steps[s] = step
				}
			}
			step.Merge(r)
		}
	}
	if la.edge {
		for k, r := range w.Edges {
			if (q.Operation == "" || k.Operation == q.Operation) &&
				(q.Source == "" || k.Source.At(q.Level) == q.Source) &&
				(q.Target == "" || k.Target.At(q.Level) == q.Target) {
				add(r)
			}
		}
		return
	}
	for k, r := range w.Series {
		if (q.Operation == "" || k.Operation == q.Operation) && q.Kind.Match(k.Kind) &&
			(q.Service == "" || k.Node.At(LevelService) == q.Service) {
			add(r)
		}
	}
}

// Result returns the merged distribution and, with Step > 0, one step per
// step bucket that has data, sorted by Start.
func (la *LatencyAccumulator) Result() *Latency {
	out := &Latency{Total: *la.total}
	for s, r := range la.steps {
		out.Series = append(out.Series, LatencyStep{Start: s, Rollup: *r})
	}
	slices.SortFunc(out.Series, func(x, y LatencyStep) int { return cmp.Compare(x.Start, y.Start) })
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
