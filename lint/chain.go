package lint

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// chainDepth reports the longest synchronous call path when it has more
// hops than the threshold: the longest observed path when paths has one
// of at least two nodes, else the longest path of the condensation of the
// synchronous edges.
func (x *index) chainDepth(paths []Path, s Setting) []Finding {
	var (
		nodes    []string
		exemplar string
		how      string
	)
	if p, ok := longestObserved(paths); ok {
		nodes, exemplar, how = p.Nodes, p.Exemplar, "observed in traces"
		if p.Count > 0 {
			how = fmt.Sprintf("observed in traces, %s", plural(int(min(p.Count, math.MaxInt32)), "request"))
		}
	} else {
		nodes, how = x.longestGraphPath(), "graph path, not seen as one request"
	}
	hops := len(nodes) - 1
	if hops < 1 || !(float64(hops) > s.Threshold) {
		return nil
	}
	var (
		sum     float64
		unknown int
		edges   = make([][2]string, 0, hops)
	)
	for i := 0; i < hops; i++ {
		edges = append(edges, [2]string{nodes[i], nodes[i+1]})
		e := x.findName(nodes[i], nodes[i+1])
		if e == nil || math.IsNaN(e.P99) {
			unknown++
			continue
		}
		sum += e.P99
		if exemplar == "" {
			exemplar = e.Exemplar
		}
	}
	lat := fmt.Sprintf("its p99s sum to %s", fmtDur(sum))
	switch {
	case unknown == hops:
		lat = "the p99 of its hops is unknown"
	case unknown > 0:
		lat += fmt.Sprintf(" (p99 unknown on %s)", plural(unknown, "hop"))
	}
	return []Finding{{
		Nodes:     slices.Clone(nodes),
		Edges:     edges,
		Value:     float64(hops),
		Threshold: s.Threshold,
		LatencyNs: sum,
		Exemplar:  exemplar,
		Message: fmt.Sprintf("The longest synchronous call path %s has %s (%s), more than %s; %s.",
			strings.Join(nodes, " → "), plural(hops, "hop"), how, fmtNum(s.Threshold), lat),
	}}
}

// longestObserved returns the observed path with the most hops; ties go
// to the most requests, then to the least node list.
func longestObserved(paths []Path) (Path, bool) {
	var best Path
	found := false
	for _, p := range paths {
		if len(p.Nodes) < 2 {
			continue
		}
		if !found || cmp.Or(
			cmp.Compare(len(p.Nodes), len(best.Nodes)),
			cmp.Compare(p.Count, best.Count),
			-slices.Compare(p.Nodes, best.Nodes),
			-strings.Compare(p.Exemplar, best.Exemplar),
		) > 0 {
			best, found = p, true
		}
	}
	return best, found
}

// findName returns the merged edge between two node IDs, or nil.
func (x *index) findName(src, dst string) *edge {
	s, ok1 := x.pos[src]
	d, ok2 := x.pos[dst]
	if !ok1 || !ok2 {
		return nil
	}
	return x.find(s, d)
}

// longestGraphPath returns the longest path (in hops) over the synchronous
// edges between different strongly connected components of the
// synchronous graph: the condensation, with each edge kept as the edge
// between its own two nodes, which is a DAG on the nodes. Ties go to the
// larger sum of known p99s, then to the least node IDs. It returns nil for
// a graph without synchronous edges between components.
func (x *index) longestGraphPath() []string {
	comps, comp := x.sccs(isSync)
	n := len(x.ids)
	hops := make([]int, n)
	lat := make([]float64, n)
	next := make([]int, n)
	for i := range next {
		next[i] = -1
	}
	// Components come in reverse topological order, so every node a
	// node's inter-component edges lead to is final before it.
	for _, c := range comps {
		for _, v := range c {
			for _, e := range x.out[v] {
				w := e.dst
				if e.Async || comp[w] == comp[v] {
					continue
				}
				h, l := hops[w]+1, lat[w]+p99OrZero(e)
				if h > hops[v] || (h == hops[v] && l > lat[v]) {
					hops[v], lat[v], next[v] = h, l, w
				}
			}
		}
	}
	start := -1
	for v := range n {
		if hops[v] > 0 && (start < 0 || hops[v] > hops[start] || (hops[v] == hops[start] && lat[v] > lat[start])) {
			start = v
		}
	}
	if start < 0 {
		return nil
	}
	var path []int
	for v := start; v >= 0; v = next[v] {
		path = append(path, v)
	}
	return x.names(path)
}

func p99OrZero(e *edge) float64 {
	if math.IsNaN(e.P99) {
		return 0
	}
	return e.P99
}
