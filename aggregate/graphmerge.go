package aggregate

import (
	"cmp"
	"slices"
)

// Merge adds the nodes and edges of b to g, as if the windows b was
// accumulated from had been accumulated into g (GraphAccumulator's
// rules): a node real in either is real — its Requests are then only the
// real halves' server-side requests, and its edges are not virtual — the
// region and the instance's service are the least non-empty ones seen,
// and counts add up. Nodes stay sorted by ID, edges by (Source, Target).
// g.Seconds is left as it is: the union of the windows behind two graphs
// cannot be told from their lengths, so the caller sets it. b is consumed:
// g may share its rollups' memory.
func (g *Graph) Merge(b *Graph) {
	nodes := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		nodes[n.ID] = i
	}
	for _, n := range b.Nodes {
		i, ok := nodes[n.ID]
		if !ok {
			g.Nodes = append(g.Nodes, n)
			continue
		}
		dst := &g.Nodes[i]
		switch {
		case dst.Virtual && !n.Virtual:
			// The real half replaces what the edges into a virtual node
			// made of it.
			dst.Requests = n.Requests
			dst.Virtual = false
			dst.Region, dst.Service = n.Region, n.Service
		case dst.Virtual == n.Virtual:
			dst.Requests.Merge(&n.Requests)
			if !n.Virtual {
				dst.Region = leastName(dst.Region, n.Region)
				dst.Service = leastName(dst.Service, n.Service)
			}
		}
		if dst.Namespace == "" {
			dst.Namespace = n.Namespace
		}
		dst.Spans += n.Spans
		dst.SpanErrors += n.SpanErrors
	}
	edges := make(map[[2]string]int, len(g.Edges))
	for i, e := range g.Edges {
		edges[[2]string{e.Source, e.Target}] = i
	}
	for _, e := range b.Edges {
		if i, ok := edges[[2]string{e.Source, e.Target}]; ok {
			g.Edges[i].Calls.Merge(&e.Calls)
			g.Edges[i].Provisional += e.Provisional
		} else {
			g.Edges = append(g.Edges, e)
		}
	}
	real := make(map[string]bool, len(g.Nodes))
	for _, n := range g.Nodes {
		real[n.ID] = !n.Virtual
	}
	for i := range g.Edges {
		g.Edges[i].Virtual = !real[g.Edges[i].Target]
	}
	slices.SortFunc(g.Nodes, func(x, y GraphNode) int { return cmp.Compare(x.ID, y.ID) })
	slices.SortFunc(g.Edges, func(x, y GraphEdge) int {
		return cmp.Or(cmp.Compare(x.Source, y.Source), cmp.Compare(x.Target, y.Target))
	})
}

// leastName is the rule for a node's region and an instance's service
// when several are seen: the least non-empty one, so that the answer does
// not depend on the order the spans (or graphs) came in.
func leastName(cur, cand string) string {
	if cur == "" || (cand != "" && cand < cur) {
		return cand
	}
	return cur
}
