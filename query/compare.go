package query

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

// Declared versus observed architecture (GetFlowGraph with compare=NAME).
//
// A declared architecture (store.Architecture) lists nodes with their names
// at each level and the calls "source calls target" between them. At the
// requested level every declared node maps to its name at that level
// (service → Service, instance → Instance, zone → Zone, region → Region,
// namespace → Namespace); a node without a name at the level (empty field)
// is left out, with its edges. Unlike observed spans, no fallback applies: a
// declared node without a zone does not become "unknown". Each declared
// edge maps to the pair of its endpoints' names, so coarse levels get self
// pairs (two services of one zone calling each other declare zone → same
// zone). The pairs are then compared with the observed edges:
//
//   - an observed edge whose (source, target) is declared is "both";
//   - an observed edge that is not declared is "observed_only", edges into
//     virtual nodes included (declare the callee under the virtual node's
//     name to match them);
//   - a declared pair without an observed edge is "declared_only": it is
//     added to the edges with no calls.
//
// Declared nodes absent from the observed graph are added to the nodes with
// declared_only set. The operation parameter restricts the observed edges
// only: declared calls carry no operation.
//
// Names follow the observed node IDs (aggregate.Node.ID): at the service
// and instance levels a declared node with a namespace is named
// "namespace/name", like the observed nodes of that namespace. An
// architecture is the design of one namespace (a spigo architecture is the
// service.namespace of its traces), so when all its nodes have the same
// namespace the observed graph is built for that namespace only
// (aggregate.GraphQuery.Namespace): its nodes, and the edges with one end in
// it — calls between other namespaces are not the architecture's, and are
// neither compared nor shown. An architecture without a namespace, or with
// several, is compared with the whole graph.

// Values of FlowEdge.declared.
const (
	// DeclaredBoth marks an observed edge the architecture declares.
	DeclaredBoth = "both"
	// DeclaredOnly marks a declared edge without calls in the range.
	DeclaredOnly = "declared_only"
	// ObservedOnly marks an observed edge the architecture does not declare.
	ObservedOnly = "observed_only"
)

// edgePair is an edge by its endpoints' names at one level.
type edgePair struct{ Source, Target string }

// archComparison is the result of compareArchitecture.
type archComparison struct {
	// Observed[i] classifies the observed edge i: DeclaredBoth or
	// ObservedOnly.
	Observed []string
	// DeclaredOnlyEdges are the declared pairs without an observed edge,
	// sorted by (Source, Target).
	DeclaredOnlyEdges []edgePair
	// ObservedOnlyEdges are the observed edges that are not declared, in
	// the order of the graph's edges.
	ObservedOnlyEdges []edgePair
	// DeclaredOnlyNodes are the declared node names that are not observed
	// nodes (nor endpoints of observed edges), sorted.
	DeclaredOnlyNodes []string
	// Namespaces gives the namespace of the declared names that carry
	// one (namespace/name).
	Namespaces map[string]string
	// Numbers of edges of each class.
	Both, DeclaredOnly, ObservedOnly int
}

// compareArchitecture compares the observed graph g with the architecture a
// at level l (see the comment at the top of this file). It reads g only.
func compareArchitecture(g *aggregate.Graph, a *store.Architecture, l aggregate.Level) archComparison {
	names := make(map[string]string, len(a.Nodes)) // node ID → name at l
	declNodes := make(map[string]struct{}, len(a.Nodes))
	var c archComparison
	for _, n := range a.Nodes {
		if name := n.NameAt(l); name != "" {
			names[n.ID] = name
			declNodes[name] = struct{}{}
			if ns := n.Namespace; ns != "" && strings.HasPrefix(name, ns+"/") {
				if c.Namespaces == nil {
					c.Namespaces = map[string]string{}
				}
				c.Namespaces[name] = ns
			}
		}
	}
	declEdges := make(map[edgePair]struct{}, len(a.Edges))
	for _, e := range a.Edges {
		src, ok1 := names[e.Source]
		dst, ok2 := names[e.Target]
		if ok1 && ok2 {
			declEdges[edgePair{src, dst}] = struct{}{}
		}
	}

	observedNodes := make(map[string]struct{}, len(g.Nodes))
	for _, n := range g.Nodes {
		observedNodes[n.ID] = struct{}{}
	}
	observedEdges := make(map[edgePair]struct{}, len(g.Edges))
	c.Observed = make([]string, len(g.Edges))
	for i, e := range g.Edges {
		p := edgePair{e.Source, e.Target}
		observedEdges[p] = struct{}{}
		observedNodes[e.Source] = struct{}{}
		observedNodes[e.Target] = struct{}{}
		if _, ok := declEdges[p]; ok {
			c.Observed[i] = DeclaredBoth
			c.Both++
		} else {
			c.Observed[i] = ObservedOnly
			c.ObservedOnly++
			c.ObservedOnlyEdges = append(c.ObservedOnlyEdges, p)
		}
	}
	for p := range declEdges {
		if _, ok := observedEdges[p]; !ok {
			c.DeclaredOnlyEdges = append(c.DeclaredOnlyEdges, p)
		}
	}
	c.DeclaredOnly = len(c.DeclaredOnlyEdges)
	slices.SortFunc(c.DeclaredOnlyEdges, func(x, y edgePair) int {
		return cmp.Or(cmp.Compare(x.Source, y.Source), cmp.Compare(x.Target, y.Target))
	})
	for name := range declNodes {
		if _, ok := observedNodes[name]; !ok {
			c.DeclaredOnlyNodes = append(c.DeclaredOnlyNodes, name)
		}
	}
	slices.Sort(c.DeclaredOnlyNodes)
	return c
}

// applyComparison marks resp, the response of graph g, with c: observed
// edges get their class, declared-only nodes and edges are added (zero rates
// and latency) and the lists are re-sorted; the summary names arch and the
// namespace ns the graph was scoped to, and lists the edges that differ.
func applyComparison(resp *querypb.GetFlowGraphResponse, g *aggregate.Graph, c archComparison, arch, ns string) {
	virtual := make(map[string]bool, len(g.Nodes))
	for _, n := range g.Nodes {
		if n.Virtual {
			virtual[n.ID] = true
		}
	}
	for i, e := range resp.Edges {
		e.Declared = c.Observed[i]
	}
	for _, id := range c.DeclaredOnlyNodes {
		resp.Nodes = append(resp.Nodes, &querypb.FlowNode{
			Id:           id,
			Namespace:    c.Namespaces[id],
			Latency:      &querypb.LatencySummary{},
			DeclaredOnly: true,
		})
	}
	for _, p := range c.DeclaredOnlyEdges {
		resp.Edges = append(resp.Edges, &querypb.FlowEdge{
			Source:   p.Source,
			Target:   p.Target,
			Virtual:  virtual[p.Target],
			Latency:  &querypb.LatencySummary{},
			Declared: DeclaredOnly,
		})
	}
	slices.SortStableFunc(resp.Nodes, func(a, b *querypb.FlowNode) int { return cmp.Compare(a.Id, b.Id) })
	slices.SortStableFunc(resp.Edges, func(a, b *querypb.FlowEdge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	resp.Comparison = &querypb.ArchComparison{
		Architecture:      arch,
		Both:              count32(c.Both),
		DeclaredOnly:      count32(c.DeclaredOnly),
		ObservedOnly:      count32(c.ObservedOnly),
		Namespace:         ns,
		DeclaredOnlyEdges: comparedEdges(c.DeclaredOnlyEdges),
		ObservedOnlyEdges: comparedEdges(c.ObservedOnlyEdges),
	}
}

// comparedEdges converts edge pairs for the response, sorted by (Source,
// Target); never nil, so that JSON shows an empty list.
func comparedEdges(ps []edgePair) []*querypb.ComparedEdge {
	out := make([]*querypb.ComparedEdge, 0, len(ps))
	for _, p := range ps {
		out = append(out, &querypb.ComparedEdge{Source: p.Source, Target: p.Target})
	}
	slices.SortFunc(out, func(a, b *querypb.ComparedEdge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	return out
}

// architecture reads the architecture a GetFlowGraph request compares
// with: NotFound naming it when the store has none of that name.
func (s *Service) architecture(ctx context.Context, name string) (*store.Architecture, error) {
	a, err := s.st.Architecture(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, status.Errorf(codes.NotFound, "architecture %q not found", name)
		}
		return nil, s.storeError(ctx, "read architecture", err)
	}
	return &a, nil
}

// ListArchitectures implements querypb.QueryServiceServer.
func (s *Service) ListArchitectures(ctx context.Context, _ *querypb.ListArchitecturesRequest) (*querypb.ListArchitecturesResponse, error) {
	infos, err := s.st.Architectures(ctx)
	if err != nil {
		return nil, s.storeError(ctx, "list architectures", err)
	}
	resp := &querypb.ListArchitecturesResponse{Architectures: make([]*querypb.ArchitectureInfo, 0, len(infos))}
	for _, in := range infos {
		imported := ""
		if !in.Imported.IsZero() {
			imported = formatTime(in.Imported)
		}
		resp.Architectures = append(resp.Architectures, &querypb.ArchitectureInfo{
			Name:     in.Name,
			Source:   in.Source,
			Imported: imported,
			Nodes:    count32(in.Nodes),
			Edges:    count32(in.Edges),
		})
	}
	slices.SortStableFunc(resp.Architectures, func(a, b *querypb.ArchitectureInfo) int { return cmp.Compare(a.Name, b.Name) })
	return resp, nil
}

// count32 converts a count to int32, saturating (counts this large do not
// occur in practice).
func count32(n int) int32 {
	return int32(min(n, math.MaxInt32))
}
