package lint

import (
	"cmp"
	"math"
	"slices"
)

// index is the graph in a form the rules walk: nodes numbered in the
// order of their IDs, merged edges sorted by (source, target), and
// adjacency lists in that order. Because numbering follows the IDs, every
// walk visits nodes and edges in an order fixed by the content of the
// graph alone.
type index struct {
	ids   []string // node IDs, sorted
	pos   map[string]int
	nodes []Node  // by node number, merged
	edges []*edge // sorted by (src, dst)
	out   [][]*edge
	in    [][]*edge
}

// edge is a merged Edge between numbered nodes.
type edge struct {
	src, dst int
	Edge
}

// errorRate returns Errors/Calls clamped to [0, 1]; 0 without calls.
func (e *edge) errorRate() float64 {
	if e.Calls <= 0 || e.Errors <= 0 {
		return 0
	}
	return min(float64(e.Errors)/float64(e.Calls), 1)
}

// attempts returns Attempts, or 1 when it is unknown or below 1.
func (e *edge) attempts() float64 {
	if e.Attempts >= 1 && !math.IsInf(e.Attempts, 0) {
		return e.Attempts
	}
	return 1
}

func newIndex(g Graph) *index {
	x := &index{pos: map[string]int{}}
	add := func(id string) {
		if _, ok := x.pos[id]; !ok {
			x.pos[id] = -1
			x.ids = append(x.ids, id)
		}
	}
	for _, n := range g.Nodes {
		add(n.ID)
	}
	for _, e := range g.Edges {
		if e.Source != "" && e.Target != "" {
			add(e.Source)
			add(e.Target)
		}
	}
	slices.Sort(x.ids)
	for i, id := range x.ids {
		x.pos[id] = i
	}
	x.nodes = make([]Node, len(x.ids))
	for i, id := range x.ids {
		x.nodes[i].ID = id
	}
	for _, n := range g.Nodes {
		m := &x.nodes[x.pos[n.ID]]
		m.Virtual = m.Virtual || n.Virtual
		m.Entry = m.Entry || n.Entry
		m.Requests += n.Requests
		m.Errors += n.Errors
	}

	byPair := map[[2]int]*edge{}
	for _, e := range g.Edges {
		if e.Source == "" || e.Target == "" {
			continue
		}
		k := [2]int{x.pos[e.Source], x.pos[e.Target]}
		m := byPair[k]
		if m == nil {
			m = &edge{src: k[0], dst: k[1], Edge: e}
			m.P99 = math.NaN()
			m.Calls, m.Errors, m.Retried, m.Attempts, m.TimeoutNs, m.Exemplar = 0, 0, 0, 0, 0, ""
			byPair[k] = m
			x.edges = append(x.edges, m)
		} else {
			m.Async = m.Async && e.Async
		}
		mergeEdge(m, e)
	}
	slices.SortFunc(x.edges, func(a, b *edge) int {
		return cmp.Or(cmp.Compare(a.src, b.src), cmp.Compare(a.dst, b.dst))
	})
	x.out = make([][]*edge, len(x.ids))
	x.in = make([][]*edge, len(x.ids))
	for _, e := range x.edges {
		x.out[e.src] = append(x.out[e.src], e)
		x.in[e.dst] = append(x.in[e.dst], e)
	}
	return x
}

// mergeEdge adds e into m: counts and Attempts summed, the largest known
// P99 and TimeoutNs, the least non-empty Exemplar (so that the result does
// not depend on the input order).
func mergeEdge(m *edge, e Edge) {
	m.Calls += e.Calls
	m.Errors += e.Errors
	m.Retried += e.Retried
	if e.Attempts > 0 && !math.IsInf(e.Attempts, 0) { // NaN > 0 is false
		m.Attempts += e.Attempts
	}
	if !math.IsNaN(e.P99) && !math.IsInf(e.P99, 0) && (math.IsNaN(m.P99) || e.P99 > m.P99) {
		m.P99 = e.P99
	}
	m.TimeoutNs = max(m.TimeoutNs, e.TimeoutNs)
	if e.Exemplar != "" && (m.Exemplar == "" || e.Exemplar < m.Exemplar) {
		m.Exemplar = e.Exemplar
	}
}

// find returns the merged edge src → dst, or nil.
func (x *index) find(src, dst int) *edge {
	out := x.out[src]
	i, ok := slices.BinarySearchFunc(out, dst, func(e *edge, d int) int { return cmp.Compare(e.dst, d) })
	if !ok {
		return nil
	}
	return out[i]
}

// entries returns the entry nodes: those marked Entry, or, when none is
// marked, those without callers (a self-call does not count).
func (x *index) entries() []int {
	var out []int
	for i := range x.nodes {
		if x.nodes[i].Entry {
			out = append(out, i)
		}
	}
	if len(out) > 0 {
		return out
	}
	for i := range x.nodes {
		callers := 0
		for _, e := range x.in[i] {
			if e.src != i {
				callers++
			}
		}
		if callers == 0 {
			out = append(out, i)
		}
	}
	return out
}

// names returns the IDs of nodes.
func (x *index) names(nodes []int) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = x.ids[n]
	}
	return out
}

// pair returns the evidence form of e.
func (x *index) pair(e *edge) [2]string { return [2]string{x.ids[e.src], x.ids[e.dst]} }
