package aggregate

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
)

// GraphMerger merges encoded graphs (AppendGraph) into one, as decoding
// them and merging with Graph.Merge does, but merges every histogram's
// encoded bucket lists in one ascending pass (appending each bucket to the
// packed histogram, never inserting): the query front end's merge of its
// peers' flow graphs. Add each graph once, then call Result once; a GraphMerger is not
// safe for concurrent use.
type GraphMerger struct {
	started bool // a graph was added: geo is its geometry
	geo     Geometry
	seconds int64
	nodes   map[string]*mergeNode
	edges   map[[2]string]*mergeEdge
	scratch []byte
}

// mergeNode is a node's parts so far: the real parts' requests and the
// virtual parts' (used only if no part is real).
type mergeNode struct {
	id, ns, region, service string
	real                    bool
	spans, errors           int64
	realReq, virtReq        partAcc
}

type mergeEdge struct {
	src, dst    string
	calls       partAcc
	provisional int64
}

// partAcc is a merged rollup whose histogram is merged last (Result): it
// keeps the encoded bucket lists of its parts, each sorted by value, and
// merges them in one ascending pass, so that every bucket is appended to
// the packed histogram rather than inserted among others.
type partAcc struct {
	r       Rollup
	buckets [][]byte
	counts  []int
}

// result merges the parts' buckets into r.Hist.
func (pa *partAcc) result(d *decoder, geo Geometry) Rollup {
	r := pa.r
	r.Hist = geo.NewRollup().Hist
	if r.maxExemplars == 0 {
		r.maxExemplars = int32(geo.MaxExemplars)
	}
	if len(pa.buckets) > 0 {
		if err := mergeBuckets(geo, &r, pa.buckets, pa.counts); err != nil && d.err == nil {
			d.err = err
		}
	}
	return r
}

// mergeBuckets records the union of the encoded bucket lists into r.Hist
// in ascending order of value (counts of equal values added).
func mergeBuckets(geo Geometry, r *Rollup, lists [][]byte, counts []int) error {
	type cursor struct {
		b    []byte
		left int
		v    uint64
		c    uint64
	}
	cs := make([]cursor, 0, len(lists))
	next := func(c *cursor) bool {
		if c.left == 0 {
			return false
		}
		delta, n := binary.Uvarint(c.b)
		if n <= 0 {
			return false
		}
		cnt, m := binary.Uvarint(c.b[n:])
		if m <= 0 || cnt == 0 || cnt > math.MaxInt64 || delta > math.MaxInt64-c.v {
			return false
		}
		c.b, c.v, c.c = c.b[n+m:], c.v+delta, cnt
		c.left--
		return true
	}
	for i, l := range lists {
		c := cursor{b: l, left: counts[i]}
		if next(&c) {
			cs = append(cs, c)
		} else if counts[i] > 0 {
			return fmt.Errorf("%w: bad bucket list", ErrCorrupt)
		}
	}
	for len(cs) > 0 {
		lo := cs[0].v
		for _, c := range cs[1:] {
			lo = min(lo, c.v)
		}
		var sum uint64
		for i := 0; i < len(cs); {
			c := &cs[i]
			if c.v != lo {
				i++
				continue
			}
			sum += c.c
			if next(c) {
				i++
				continue
			}
			if c.left != 0 {
				return fmt.Errorf("%w: bad bucket list", ErrCorrupt)
			}
			cs = slices.Delete(cs, i, i+1)
		}
		if sum > math.MaxInt64 {
			return fmt.Errorf("%w: bucket count overflows", ErrCorrupt)
		}
		val := int64(lo)
		if val > geo.MaxValue {
			val = geo.MaxValue
			r.Clamped = satAdd(r.Clamped, int64(sum))
		}
		if err := r.Hist.RecordValues(val, int64(sum)); err != nil {
			return fmt.Errorf("%w: bucket %d: %v", ErrCorrupt, lo, err)
		}
	}
	return nil
}

// NewGraphMerger returns an empty merger.
func NewGraphMerger() *GraphMerger {
	return &GraphMerger{nodes: map[string]*mergeNode{}, edges: map[[2]string]*mergeEdge{}}
}

// Add merges the graph encoded in b. The histograms are merged with the
// geometry of the first graph added, in Result: b must not be modified
// until then. Errors wrap ErrCorrupt; after one, the merger holds part of
// b and must not be used.
func (m *GraphMerger) Add(b []byte) error {
	d := &decoder{b: b}
	geo := d.wireHeader(graphWireTag)
	if d.err != nil {
		return d.err
	}
	if !m.started {
		m.geo, m.started = geo, true
	}
	m.seconds = max(m.seconds, d.varint())
	strs := d.wireStrings()
	nn := d.count("node", wireNodeMin)
	for i := 0; i < nn && d.err == nil; i++ {
		id, ns, region, service := d.str(strs), d.str(strs), d.str(strs), d.str(strs)
		virtual := d.wireBool("node")
		spans, errs := d.varint(), d.varint()
		if d.err != nil {
			break
		}
		n := m.nodes[id]
		if n == nil {
			n = &mergeNode{id: id}
			m.nodes[id] = n
		}
		if n.ns == "" {
			n.ns = ns
		}
		n.spans += spans
		n.errors += errs
		acc := &n.virtReq
		if !virtual {
			n.real = true
			n.region, n.service = leastName(n.region, region), leastName(n.service, service)
			acc = &n.realReq
		}
		m.mergeRollup(d, geo, acc)
	}
	ne := d.count("edge", wireEdgeMin)
	for i := 0; i < ne && d.err == nil; i++ {
		src, dst := d.str(strs), d.str(strs)
		d.wireBool("edge") // recomputed from the merged nodes
		prov := d.varint()
		if d.err != nil {
			break
		}
		k := [2]string{src, dst}
		e := m.edges[k]
		if e == nil {
			e = &mergeEdge{src: src, dst: dst}
			m.edges[k] = e
		}
		e.provisional += prov
		m.mergeRollup(d, geo, &e.calls)
	}
	d.end()
	return d.err
}

// mergeRollup decodes one encoded rollup (wireRollup's format) into acc.
func (m *GraphMerger) mergeRollup(d *decoder, geo Geometry, acc *partAcc) {
	var head Rollup
	flags, ok := d.wireRollupHead(geo, &head)
	if !ok {
		return
	}
	if acc.r.maxExemplars == 0 {
		acc.r.maxExemplars = head.maxExemplars
	}
	d.rollupCounts(&acc.r)
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("rollup of %d bytes exceeds the %d bytes left", n, len(d.b))
	}
	body := d.bytes(int(n))
	if d.err != nil {
		return
	}
	sub := &decoder{b: body, version: windowFormatVersion}
	nb := sub.count("bucket", 2)
	start := sub.b
	for k := 0; k < nb && sub.err == nil; k++ {
		sub.uvarint()
		sub.uvarint()
	}
	buckets := start[:len(start)-len(sub.b)]
	sub.rollupExemplars(&acc.r)
	sub.rollupEvidence(&acc.r)
	sub.end()
	switch {
	case sub.err != nil:
		d.err, d.b = sub.err, nil
	case flags&wireHist == 0 && nb > 0:
		d.fail("buckets of a nil histogram")
	case nb > 0:
		acc.buckets = append(acc.buckets, buckets)
		acc.counts = append(acc.counts, nb)
	}
}

// Result returns the merged graph, or an error wrapping ErrCorrupt for a
// bad bucket list: nodes sorted by ID, edges by (Source,
// Target), Seconds the longest of the graphs'. A node real in any graph
// is real, with only the real parts' requests, and the edges into it are
// not virtual (Graph.Merge's rules). The merger must not be used after.
func (m *GraphMerger) Result() (*Graph, error) {
	geo := m.geo
	if !m.started {
		geo = DefaultGeometry()
	}
	out := &Graph{Seconds: m.seconds, Nodes: make([]GraphNode, 0, len(m.nodes)), Edges: make([]GraphEdge, 0, len(m.edges))}
	// The histograms are merged last, on every core: each rollup's merge
	// is independent of the others'.
	type job struct {
		acc *partAcc
		dst *Rollup
	}
	jobs := make([]job, 0, len(m.nodes)+len(m.edges))
	for _, n := range m.nodes {
		out.Nodes = append(out.Nodes, GraphNode{ID: n.id, Namespace: n.ns, Virtual: !n.real, Spans: n.spans, SpanErrors: n.errors})
	}
	slices.SortFunc(out.Nodes, func(x, y GraphNode) int { return cmp.Compare(x.ID, y.ID) })
	for i := range out.Nodes {
		g := &out.Nodes[i]
		n := m.nodes[g.ID]
		acc := &n.virtReq
		if n.real {
			g.Region, g.Service = n.region, n.service
			acc = &n.realReq
		}
		jobs = append(jobs, job{acc, &g.Requests})
	}
	for _, e := range m.edges {
		real := m.nodes[e.dst] != nil && m.nodes[e.dst].real
		out.Edges = append(out.Edges, GraphEdge{Source: e.src, Target: e.dst, Virtual: !real, Provisional: e.provisional})
	}
	slices.SortFunc(out.Edges, func(x, y GraphEdge) int {
		return cmp.Or(cmp.Compare(x.Source, y.Source), cmp.Compare(x.Target, y.Target))
	})
	for i := range out.Edges {
		e := &out.Edges[i]
		jobs = append(jobs, job{&m.edges[[2]string{e.Source, e.Target}].calls, &e.Calls})
	}
	workers := min(runtime.GOMAXPROCS(0), max(1, len(jobs)/64))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := &decoder{}
			for k := w; k < len(jobs); k += workers {
				*jobs[k].dst = jobs[k].acc.result(d, geo)
			}
			errs[w] = d.err
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}
