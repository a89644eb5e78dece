package jaegerapi

import (
	"cmp"
	"slices"
	"strings"

	"github.com/flowscope/flowscope/aggregate"
)

// dependencyLinks turns the service-level flow graph into Jaeger's
// dependency links: one per (caller, callee) service pair with the number
// of calls. Nodes are named by service.name without the namespace that
// flow-graph IDs carry (links of one name in several namespaces are
// summed); edges into virtual nodes (uninstrumented callees named from
// client spans) are left out, since Jaeger links only services that
// report spans. With service set, only the links from or to it are kept.
// Links are sorted by parent, then child.
func dependencyLinks(g *aggregate.Graph, service string) []uiDependencyLink {
	names := make(map[string]string, len(g.Nodes))
	for _, n := range g.Nodes {
		name := n.ID
		if n.Namespace != "" && !n.Virtual {
			name = strings.TrimPrefix(n.ID, n.Namespace+"/")
		}
		names[n.ID] = jaegerService(name)
	}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		return jaegerService(id)
	}
	type pair struct{ parent, child string }
	counts := map[pair]uint64{}
	for _, e := range g.Edges {
		if e.Virtual || e.Calls.Count <= 0 {
			continue
		}
		p := pair{name(e.Source), name(e.Target)}
		if service != "" && p.parent != service && p.child != service {
			continue
		}
		counts[p] += uint64(e.Calls.Count)
	}
	out := make([]uiDependencyLink, 0, len(counts))
	for p, n := range counts {
		out = append(out, uiDependencyLink{Parent: p.parent, Child: p.child, CallCount: n})
	}
	slices.SortFunc(out, func(a, b uiDependencyLink) int {
		return cmp.Or(strings.Compare(a.Parent, b.Parent), strings.Compare(a.Child, b.Child))
	})
	return out
}
