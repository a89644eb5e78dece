package aggregate

import (
	"cmp"
	"slices"
	"sync"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Merging for queries. Merging a PackedHistogram into another costs a
// pass over both; adding one into a dense hdr.Histogram costs a pass over
// its buckets only, about five times less, but a dense histogram takes
// about 37 KB (default geometry) and converting it back costs about 14 µs.
// So a merged rollup starts packed and moves to a dense histogram, taken
// from a pool, from its denseAfter-th merge on, while the accumulator's
// budget of dense histograms lasts. BenchmarkGraphAccumulator measures it.

// denseAfter is the merge from which a rollup accumulates densely.
const denseAfter = 2

// maxDensePerAccumulator bounds the dense histograms of one accumulator
// (about 37 MB with the default geometry); rollups beyond it stay packed.
const maxDensePerAccumulator = 1024

// densePools recycles dense histograms across queries, by geometry.
var densePools sync.Map // Geometry → *sync.Pool of *hdr.Histogram

// denseSet hands out the dense histograms of one accumulator.
type denseSet struct {
	g      Geometry
	pool   *sync.Pool
	used   int
	packed bool // no dense histograms (SetPackedOnly)
}

func newDenseSet(g Geometry) *denseSet {
	g = g.normalized()
	p, ok := densePools.Load(g)
	if !ok {
		p, _ = densePools.LoadOrStore(g, &sync.Pool{New: func() any { return hdr.New(1, g.MaxValue, g.Digits) }})
	}
	return &denseSet{g: g, pool: p.(*sync.Pool)}
}

// get returns an empty dense histogram, or nil over budget.
func (ds *denseSet) get() *hdr.Histogram {
	if ds.packed || ds.used >= maxDensePerAccumulator {
		return nil
	}
	ds.used++
	return ds.pool.Get().(*hdr.Histogram)
}

func (ds *denseSet) put(h *hdr.Histogram) {
	h.Reset()
	ds.pool.Put(h)
}

// rollupAcc merges rollups into one.
type rollupAcc struct {
	r      Rollup // counts and exemplars; r.Hist while packed
	dense  *hdr.Histogram
	merges int
}

// add merges o.
func (ra *rollupAcc) add(o *Rollup, ds *denseSet) {
	ra.r.Count += o.Count
	ra.r.Errors += o.Errors
	ra.r.Clamped += o.Clamped
	if ra.r.maxExemplars == 0 {
		ra.r.maxExemplars = o.maxExemplars
	}
	ra.r.mergeExemplars(o)
	ra.r.mergeEvidence(o)
	if o.Hist == nil || o.Hist.TotalCount() == 0 {
		return
	}
	ra.merges++
	switch {
	case ra.dense != nil:
		o.Hist.MergeInto(ra.dense)
	case ra.r.Hist == nil:
		ra.r.Hist = o.Hist.Clone()
	case ra.merges >= denseAfter && ra.toDense(ds):
		o.Hist.MergeInto(ra.dense)
	default:
		ra.r.Hist.Merge(o.Hist)
	}
}

// toDense moves the histogram to a dense one, if the budget allows.
func (ra *rollupAcc) toDense(ds *denseSet) bool {
	d := ds.get()
	if d == nil {
		return false
	}
	if ra.r.Hist != nil {
		ra.r.Hist.MergeInto(d)
		ra.r.Hist = nil
	}
	ra.dense = d
	return true
}

// dst returns where to decode the buckets of one more rollup.
func (ra *rollupAcc) dst(ds *denseSet) bucketDst {
	ra.merges++
	if ra.dense != nil || (ra.merges >= 2 && ra.toDense(ds)) {
		return bucketDst{dense: ra.dense}
	}
	if ra.r.Hist == nil {
		ra.r.Hist = ds.g.NewRollup().Hist
		ra.r.maxExemplars = int32(ds.g.MaxExemplars)
	}
	return bucketDst{packed: ra.r.Hist}
}

// result returns the merged rollup, giving the dense histogram back.
func (ra *rollupAcc) result(ds *denseSet) Rollup {
	r := ra.r
	switch {
	case ra.dense != nil:
		r.Hist = ds.g.NewRollup().Hist
		r.Hist.MergeFrom(ra.dense)
		ds.put(ra.dense)
		ra.dense = nil
	case r.Hist == nil:
		r.Hist = ds.g.NewRollup().Hist
	}
	if r.maxExemplars == 0 {
		r.maxExemplars = int32(ds.g.MaxExemplars)
	}
	return r
}

// GraphAccumulator merges windows into a flow graph. Add (or AddEncoded)
// each window once; call Result once, after the last Add: it gives pooled
// memory back, and the accumulator must not be used after it. An
// accumulator is not safe for concurrent use; the windows it is given are
// only read, and not retained.
type GraphAccumulator struct {
	q     GraphQuery
	ds    *denseSet
	nodes map[string]*graphNode // by ID
	// byNS finds the nodes of namespaced IDs by (namespace, name at the
	// level) without building the ID.
	byNS    map[[2]string]*graphNode
	edges   map[[2]string]*graphEdge
	windows map[[2]int64]struct{}
}

type graphNode struct {
	id       string
	ns       string // the namespace the ID carries
	real     bool   // has series, or is a non-virtual edge endpoint
	region   string
	service  string    // at LevelInstance: the service's node ID (the least seen)
	requests rollupAcc // server-side series (real node)
	inbound  rollupAcc // edges into the node while it is virtual
	spans    int64
	errors   int64
}

type graphEdge struct {
	src, dst    string
	calls       rollupAcc
	provisional int64 // calls from AddProvisional
}

// NewGraphAccumulator returns an accumulator for q; g is the geometry of
// the rollups it will be given.
func NewGraphAccumulator(q GraphQuery, g Geometry) *GraphAccumulator {
	return &GraphAccumulator{q: q, ds: newDenseSet(g), nodes: map[string]*graphNode{},
		edges: map[[2]string]*graphEdge{}, windows: map[[2]int64]struct{}{}}
}

// Node identity.
//
// At the service and instance levels a node's name is only unique within
// its service.namespace (OpenTelemetry: service.name and
// service.instance.id are unique within a namespace; spigo: every
// architecture has its own www and www00), so the ID of a node with a
// namespace is "namespace/name" there: lamp/www, lamp/www00. A node
// without a namespace keeps its plain name, so data without namespaces
// reads as before; virtual nodes, named from a client span's attributes,
// have none. Zones, regions and namespaces are shared places: their IDs
// are their names.

// ID returns the node's identity at level l in flow graphs: At(l),
// prefixed with "Namespace/" at LevelService and LevelInstance when the
// node has a namespace.
func (n Node) ID(l Level) string {
	if n.namespaced(l) {
		return n.Namespace + "/" + n.at(l)
	}
	return n.at(l)
}

// namespaced reports whether the node's ID at l carries its namespace.
func (n *Node) namespaced(l Level) bool {
	return n.Namespace != "" && !n.Virtual && (l == LevelService || l == LevelInstance)
}

// Is reports whether name selects the node at level l: its ID, or its
// plain name At(l), which selects the nodes of that name in every
// namespace (so that selections by service.name alone keep working).
func (n *Node) Is(l Level, name string) bool {
	at := n.at(l)
	if at == name {
		return true
	}
	ns := n.Namespace
	return n.namespaced(l) && len(name) == len(ns)+1+len(at) &&
		name[:len(ns)] == ns && name[len(ns)] == '/' && name[len(ns)+1:] == at
}

// SetPackedOnly keeps every merged histogram packed. Call it before the
// first Add when only a few windows will be added (an incremental merge):
// a dense histogram pays off only over many merges, its allocation and
// conversion back cost more than a few packed merges.
func (ga *GraphAccumulator) SetPackedOnly() { ga.ds.packed = true }

// inScope reports whether a node is in the query's namespace.
func (ga *GraphAccumulator) inScope(n *Node) bool {
	return ga.q.Namespace == "" || n.Namespace == ga.q.Namespace
}

// edgeInScope reports whether an edge has an end in the query's namespace.
func (ga *GraphAccumulator) edgeInScope(k *EdgeKey) bool {
	return ga.q.Namespace == "" || k.Source.Namespace == ga.q.Namespace || k.Target.Namespace == ga.q.Namespace
}

func (ga *GraphAccumulator) node(n *Node) *graphNode {
	var gn *graphNode
	if n.namespaced(ga.q.Level) {
		k := [2]string{n.Namespace, n.at(ga.q.Level)}
		if gn = ga.byNS[k]; gn == nil {
			gn = ga.nodeByID(k[0] + "/" + k[1])
			gn.ns = n.Namespace
			if ga.byNS == nil {
				ga.byNS = map[[2]string]*graphNode{}
			}
			ga.byNS[k] = gn
		}
	} else {
		gn = ga.nodeByID(n.at(ga.q.Level))
	}
	if !n.Virtual {
		gn.real = true
		if ga.q.Level < LevelRegion {
			gn.region = leastName(gn.region, n.Region)
		}
		if ga.q.Level == LevelInstance {
			gn.service = leastName(gn.service, n.ID(LevelService))
		}
	}
	return gn
}

// nodeByID returns the node of ID id, created when new.
func (ga *GraphAccumulator) nodeByID(id string) *graphNode {
	gn := ga.nodes[id]
	if gn == nil {
		gn = &graphNode{id: id}
		ga.nodes[id] = gn
	}
	return gn
}

func (ga *GraphAccumulator) edge(src, dst *graphNode) *graphEdge {
	k := [2]string{src.id, dst.id}
	e := ga.edges[k]
	if e == nil {
		e = &graphEdge{src: src.id, dst: dst.id}
		ga.edges[k] = e
	}
	return e
}

func isServerKind(kind int32) bool { return kind == kindServer || kind == kindConsumer }

// Add merges the series and edges of w that q selects.
func (ga *GraphAccumulator) Add(w *Window) {
	ga.windows[[2]int64{w.Start, w.Width}] = struct{}{}
	op := ga.q.Operation
	for k, r := range w.Series {
		if (op != "" && k.Operation != op) || !ga.inScope(&k.Node) {
			continue
		}
		gn := ga.node(&k.Node)
		gn.spans += r.Count
		gn.errors += r.Errors
		if isServerKind(k.Kind) {
			gn.requests.add(r, ga.ds)
		}
	}
	for k, r := range w.Edges {
		if (op != "" && k.Operation != op) || !ga.edgeInScope(&k) {
			continue
		}
		src, dst := ga.node(&k.Source), ga.node(&k.Target)
		if k.Target.Virtual {
			dst.inbound.add(r, ga.ds)
		}
		ga.edge(src, dst).calls.add(r, ga.ds)
	}
}

// AddEncoded adds the window encoded in b (by AppendWindow) as Add would
// add DecodeWindow(b, g), but faster: it merges buckets straight into its
// accumulators and skips the histograms the graph does not use. On error
// (wrapping ErrCorrupt) part of the window may have been added.
func (ga *GraphAccumulator) AddEncoded(b []byte) error {
	d := &decoder{b: b}
	h := d.header()
	if d.err != nil {
		return d.err
	}
	ga.windows[[2]int64{h.start, h.width}] = struct{}{}
	op := ga.q.Operation
	g := ga.ds.g
	ns := d.count("series", 8)
	for i := 0; i < ns && d.err == nil; i++ {
		k := d.seriesKey(h)
		if d.err != nil || (op != "" && k.Operation != op) || !ga.inScope(&k.Node) {
			d.rollupCounts(nil)
			d.rollupBody(g, nil, bucketDst{})
			continue
		}
		gn := ga.node(&k.Node)
		if !isServerKind(k.Kind) {
			n, e := d.rollupCounts(nil)
			gn.spans += n
			gn.errors += e
			d.rollupBody(g, nil, bucketDst{})
			continue
		}
		acc := &gn.requests
		n, e := d.rollupCounts(&acc.r)
		gn.spans += n
		gn.errors += e
		d.rollupBody(g, &acc.r, acc.dst(ga.ds))
	}
	ne := d.count("edge", 8)
	for i := 0; i < ne && d.err == nil; i++ {
		k := d.edgeKey(h)
		if d.err != nil || (op != "" && k.Operation != op) || !ga.edgeInScope(&k) {
			d.rollupCounts(nil)
			d.rollupBody(g, nil, bucketDst{})
			continue
		}
		src, dst := ga.node(&k.Source), ga.node(&k.Target)
		acc := &ga.edge(src, dst).calls
		if !k.Target.Virtual {
			d.rollupCounts(&acc.r)
			d.rollupBody(g, &acc.r, acc.dst(ga.ds))
			continue
		}
		// Into a virtual node: the edge and the node get the same rollup.
		r := &Rollup{maxExemplars: int32(g.MaxExemplars)}
		scratch := g.NewRollup().Hist
		d.rollupCounts(r)
		d.rollupBody(g, r, bucketDst{packed: scratch})
		r.Hist = scratch
		acc.add(r, ga.ds)
		dst.inbound.add(r, ga.ds)
	}
	d.end()
	return d.err
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
		n := GraphNode{ID: gn.id, Namespace: gn.ns, Virtual: !gn.real, Spans: gn.spans, SpanErrors: gn.errors}
		if gn.real {
			n.Region, n.Service = gn.region, gn.service
			n.Requests = gn.requests.result(ga.ds)
			gn.inbound.result(ga.ds)
		} else {
			n.Requests = gn.inbound.result(ga.ds)
		}
		out.Nodes = append(out.Nodes, n)
	}
	slices.SortFunc(out.Nodes, func(x, y GraphNode) int { return cmp.Compare(x.ID, y.ID) })
	for _, e := range ga.edges {
		out.Edges = append(out.Edges, GraphEdge{Source: e.src, Target: e.dst, Virtual: !ga.nodes[e.dst].real,
			Calls: e.calls.result(ga.ds), Provisional: e.provisional})
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

// LatencyAccumulator merges the rollups a LatencyQuery selects. Add (or
// AddEncoded) each window once; call Result once, after the last Add (the
// accumulator must not be used after it). It is not safe for concurrent
// use; the windows it is given are only read, and not retained.
type LatencyAccumulator struct {
	q     LatencyQuery
	ds    *denseSet
	edge  bool
	total rollupAcc
	steps map[int64]*rollupAcc
	// provisional counts the calls from AddProvisional.
	provisional int64
}

// NewLatencyAccumulator returns an accumulator for q. With Source or
// Target set it selects edges (an empty one matches any node), by node
// names at q.Level; otherwise the series of q.Service (any instance; ""
// matches every service) of the kinds q.Kind selects. q.Operation, when
// set, filters both.
func NewLatencyAccumulator(q LatencyQuery, g Geometry) *LatencyAccumulator {
	return &LatencyAccumulator{q: q, ds: newDenseSet(g), edge: q.Source != "" || q.Target != "",
		steps: map[int64]*rollupAcc{}}
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

func (la *LatencyAccumulator) matchSeries(k *SeriesKey) bool {
	q := &la.q
	return !la.edge && (q.Operation == "" || k.Operation == q.Operation) && q.Kind.Match(k.Kind) &&
		(q.Service == "" || k.Node.Is(LevelService, q.Service))
}

func (la *LatencyAccumulator) matchEdge(k *EdgeKey) bool {
	q := &la.q
	return la.edge && (q.Operation == "" || k.Operation == q.Operation) &&
		(q.Source == "" || k.Source.Is(q.Level, q.Source)) &&
		(q.Target == "" || k.Target.Is(q.Level, q.Target))
}

// step returns the accumulator of the step holding a window that starts
// at start, or nil without steps.
func (la *LatencyAccumulator) step(start int64) *rollupAcc {
	if la.q.Step <= 0 {
		return nil
	}
	s := floorDiv(start, la.q.Step) * la.q.Step
	acc := la.steps[s]
	if acc == nil {
		acc = &rollupAcc{}
		la.steps[s] = acc
	}
	return acc
}

// Add merges the rollups of w that the query selects.
func (la *LatencyAccumulator) Add(w *Window) {
	var step *rollupAcc
	add := func(r *Rollup) {
		la.total.add(r, la.ds)
		if step == nil {
			step = la.step(w.Start)
		}
		if step != nil {
			step.add(r, la.ds)
		}
	}
	for k, r := range w.Series {
		if la.matchSeries(&k) {
			add(r)
		}
	}
	for k, r := range w.Edges {
		if la.matchEdge(&k) {
			add(r)
		}
	}
}

// AddEncoded adds the window encoded in b (by AppendWindow) as Add would
// add DecodeWindow(b, g), but faster: it decodes only the rollups the
// query selects. On error (wrapping ErrCorrupt) part of the window may
// have been added.
func (la *LatencyAccumulator) AddEncoded(b []byte) error {
	d := &decoder{b: b}
	h := d.header()
	if d.err != nil {
		return d.err
	}
	g := la.ds.g
	read := func(match bool) {
		if !match || d.err != nil {
			d.rollupCounts(nil)
			d.rollupBody(g, nil, bucketDst{})
			return
		}
		step := la.step(h.start)
		if step == nil {
			d.rollupCounts(&la.total.r)
			d.rollupBody(g, &la.total.r, la.total.dst(la.ds))
			return
		}
		// Into both the total and the step.
		r := &Rollup{maxExemplars: int32(g.MaxExemplars)}
		scratch := g.NewRollup().Hist
		d.rollupCounts(r)
		d.rollupBody(g, r, bucketDst{packed: scratch})
		r.Hist = scratch
		la.total.add(r, la.ds)
		step.add(r, la.ds)
	}
	ns := d.count("series", 8)
	for i := 0; i < ns && d.err == nil; i++ {
		k := d.seriesKey(h)
		read(la.matchSeries(&k))
	}
	ne := d.count("edge", 8)
	for i := 0; i < ne && d.err == nil; i++ {
		k := d.edgeKey(h)
		read(la.matchEdge(&k))
	}
	d.end()
	return d.err
}

// Result returns the merged distribution and, with Step > 0, one step per
// step bucket that has data, sorted by Start.
func (la *LatencyAccumulator) Result() *Latency {
	out := &Latency{Total: la.total.result(la.ds), Provisional: la.provisional}
	for s, acc := range la.steps {
		out.Series = append(out.Series, LatencyStep{Start: s, Rollup: acc.result(la.ds)})
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
