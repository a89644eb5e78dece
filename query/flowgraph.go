package query

import (
	"cmp"
	"context"
	"slices"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

// Flow graph responses (GetFlowGraph).
//
// Rates divide counts by aggregate.Graph.Seconds, the time the merged rollup
// windows cover (0 when it is 0). Node requests are the node's server-side
// spans (for a virtual node, the calls into it); edge calls are the
// client-side spans of the calls. Latency quantiles are HDR values in
// nanoseconds, computed from the calls with a known duration only (those in
// the histogram; see aggregate.Rollup.RecordUntimed): LatencySummary says
// how many in timed_calls, and leaves the quantiles unset (JSON null) when
// there are none, so that an edge of one-way messages does not read as the
// fastest.

// summaryQuantiles are the quantiles of a LatencySummary: p50, p90, p99,
// p99.9 (nearest rank).
var summaryQuantiles = []float64{0.5, 0.9, 0.99, 0.999}

// GetFlowGraph implements querypb.QueryServiceServer. With format=vizceral
// the response carries only vizceral_json (see vizceralJSON). With compare
// the graph is compared with that declared architecture (see compare.go).
func (s *Service) GetFlowGraph(ctx context.Context, req *querypb.GetFlowGraphRequest) (*querypb.GetFlowGraphResponse, error) {
	p, err := graphRequest(req, s.now())
	if err != nil {
		return nil, err
	}
	var arch *store.Architecture
	if p.compare != "" {
		if arch, err = s.architecture(ctx, p.compare); err != nil {
			return nil, err
		}
		p.q.Namespace = arch.Namespace()
	}
	g, err := s.st.FlowGraph(ctx, p.start, p.end, p.q)
	if err != nil {
		return nil, s.storeError(ctx, "flow graph", err)
	}
	if g == nil {
		g = &aggregate.Graph{}
	}
	sortGraph(g)
	if p.format == FormatVizceral {
		doc, err := vizceralJSON(g, p.q.Level, p.end)
		if err != nil {
			return nil, s.storeError(ctx, "encode vizceral graph", err)
		}
		return &querypb.GetFlowGraphResponse{VizceralJson: doc}, nil
	}
	resp := flowGraphResponse(g)
	if s.policies != nil {
		if v := s.policies.EdgeViolations(ctx, p.q.Level, g); len(v) > 0 {
			for _, e := range resp.Edges {
				e.Violations = v[e.Source+"\x00"+e.Target]
			}
		}
	}
	if arch != nil {
		applyComparison(resp, g, compareArchitecture(g, arch, p.q.Level), arch.Name, p.q.Namespace)
	}
	return resp, nil
}

// sortGraph sorts nodes by ID and edges by (Source, Target), as the Store
// contract promises, so that responses are deterministic even if a store
// forgets.
func sortGraph(g *aggregate.Graph) {
	slices.SortStableFunc(g.Nodes, func(a, b aggregate.GraphNode) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortStableFunc(g.Edges, func(a, b aggregate.GraphEdge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
}

// flowGraphResponse converts a graph into the JSON form of GetFlowGraph.
func flowGraphResponse(g *aggregate.Graph) *querypb.GetFlowGraphResponse {
	resp := &querypb.GetFlowGraphResponse{
		Nodes: make([]*querypb.FlowNode, 0, len(g.Nodes)),
		Edges: make([]*querypb.FlowEdge, 0, len(g.Edges)),
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		resp.Nodes = append(resp.Nodes, &querypb.FlowNode{
			Id:          n.ID,
			Namespace:   n.Namespace,
			Service:     n.Service,
			Virtual:     n.Virtual,
			RequestRate: rate(n.Requests.Count, g.Seconds),
			ErrorRate:   fraction(n.Requests.Errors, n.Requests.Count),
			SpanCount:   float64(n.Spans),
			Latency:     latencySummary(n.Requests.Hist),
		})
	}
	for i := range g.Edges {
		e := &g.Edges[i]
		resp.Edges = append(resp.Edges, &querypb.FlowEdge{
			Source:    e.Source,
			Target:    e.Target,
			Virtual:   e.Virtual,
			Calls:     float64(e.Calls.Count),
			Errors:    float64(e.Calls.Errors),
			Rate:      rate(e.Calls.Count, g.Seconds),
			ErrorRate: fraction(e.Calls.Errors, e.Calls.Count),
			Latency:   latencySummary(e.Calls.Hist),
		})
	}
	return resp
}

// rate is n per second over seconds, 0 when seconds is not positive.
func rate(n, seconds int64) float64 {
	if seconds <= 0 {
		return 0
	}
	return float64(n) / float64(seconds)
}

// fraction is part/whole, 0 when whole is not positive.
func fraction(part, whole int64) float64 {
	if whole <= 0 {
		return 0
	}
	return float64(part) / float64(whole)
}

// latencySummary returns p50, p90, p99 and p99.9 of h and the number of
// values they are computed from. Without values (h nil or empty: no call, or
// only calls of unknown duration) the quantiles are unset.
func latencySummary(h *hdr.PackedHistogram) *querypb.LatencySummary {
	n := timedCount(h)
	if n == 0 {
		return &querypb.LatencySummary{}
	}
	ps := make([]float64, len(summaryQuantiles))
	for i, q := range summaryQuantiles {
		ps[i] = nearestRankPercentile(q, n)
	}
	v := h.ValueAtPercentilesSlice(ps)
	return &querypb.LatencySummary{
		P50:        wrapperspb.Double(float64(v[0])),
		P90:        wrapperspb.Double(float64(v[1])),
		P99:        wrapperspb.Double(float64(v[2])),
		P999:       wrapperspb.Double(float64(v[3])),
		TimedCalls: float64(n),
	}
}
