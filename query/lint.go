package query

import (
	"context"
	"encoding/hex"
	"math"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/lint"
	"github.com/flowscope/flowscope/query/querypb"
)

// GetLint implements querypb.QueryServiceServer: the architecture lint of
// the flow graph of a range (package lint), with the thresholds of the
// policies file's lint section over the defaults.
func (s *Service) GetLint(ctx context.Context, req *querypb.GetLintRequest) (*querypb.GetLintResponse, error) {
	start, end, err := parseRange(req.GetStart(), req.GetEnd(), s.now())
	if err != nil {
		return nil, err
	}
	level := aggregate.LevelService
	if req.GetLevel() != "" {
		if level, err = parseLevel(req.GetLevel()); err != nil {
			return nil, err
		}
	}
	g, err := s.st.FlowGraph(ctx, start, end, aggregate.GraphQuery{Level: level})
	if err != nil {
		return nil, s.storeError(ctx, "lint", err)
	}
	if g == nil {
		g = &aggregate.Graph{}
	}
	settings := s.lintSettings()
	resp := &querypb.GetLintResponse{Findings: []*querypb.LintFinding{}, Start: formatTime(start), End: formatTime(end), Level: level.String()}
	lg := lintGraph(g)
	if level == aggregate.LevelService {
		if lg.Paths, err = s.observedPaths(ctx, start, end); err != nil {
			return nil, s.storeError(ctx, "lint", err)
		}
	}
	for _, f := range lint.Run(lg, settings) {
		lf := &querypb.LintFinding{
			Rule: string(f.Rule), Severity: f.Severity, Nodes: nonNil(f.Nodes), Edges: make([]*querypb.LintEdge, 0, len(f.Edges)),
			Value: finite(f.Value), Threshold: finite(f.Threshold), Amplification: finite(f.Amplification),
			ExemplarTraceId: f.Exemplar, Message: f.Message, LatencyNs: finite(f.LatencyNs),
		}
		for _, e := range f.Edges {
			lf.Edges = append(lf.Edges, &querypb.LintEdge{Source: e[0], Target: e[1]})
		}
		resp.Findings = append(resp.Findings, lf)
	}
	for _, r := range lint.Rules {
		st := settings[r]
		resp.Rules = append(resp.Rules, &querypb.LintRuleSetting{Rule: string(r), Enabled: st.Enabled, Threshold: finite(st.Threshold), Severity: st.Severity})
	}
	return resp, nil
}

// lintSettings are the lint defaults overridden by the policies file.
func (s *Service) lintSettings() map[lint.Rule]lint.Setting {
	settings := lint.Defaults()
	if s.policies == nil {
		return settings
	}
	set := s.policies.Set()
	if set == nil {
		return settings
	}
	for name, ls := range set.Lint {
		r := lint.Rule(name)
		st, ok := settings[r]
		if !ok {
			continue // the parser knows the same rules
		}
		if ls.Threshold != nil {
			st.Threshold = *ls.Threshold
		}
		if ls.Severity != "" {
			st.Severity = ls.Severity
		}
		if ls.Enabled != nil {
			st.Enabled = *ls.Enabled
		}
		settings[r] = st
	}
	return settings
}

// lintGraph describes a flow graph for the lint: nodes without callers
// are the entry nodes; an edge without any timed call (one-way messages)
// is asynchronous; its attempts are its calls per request into its
// source, its retried calls those marked http.request.resend_count ≥ 1,
// and its timeout the one its failed calls reveal
// (aggregate.Rollup.InferTimeout).
func lintGraph(g *aggregate.Graph) lint.Graph {
	called := map[string]bool{}
	for _, e := range g.Edges {
		if e.Source != e.Target {
			called[e.Target] = true
		}
	}
	out := lint.Graph{Nodes: make([]lint.Node, 0, len(g.Nodes)), Edges: make([]lint.Edge, 0, len(g.Edges))}
	requests := make(map[string]int64, len(g.Nodes))
	for _, n := range g.Nodes {
		if !n.Virtual {
			requests[n.ID] = n.Requests.Count
		}
	}
	for _, n := range g.Nodes {
		out.Nodes = append(out.Nodes, lint.Node{ID: n.ID, Virtual: n.Virtual, Entry: !called[n.ID] && !n.Virtual,
			Requests: n.Requests.Count, Errors: n.Requests.Errors})
	}
	for _, e := range g.Edges {
		if e.Calls.Count == 0 {
			continue
		}
		le := lint.Edge{Source: e.Source, Target: e.Target, Calls: e.Calls.Count, Errors: e.Calls.Errors, P99: math.NaN()}
		if n := timedCount(e.Calls.Hist); n > 0 {
			le.P99 = float64(e.Calls.Hist.ValueAtPercentilesSlice([]float64{nearestRankPercentile(0.99, n)})[0])
		} else {
			le.Async = true
		}
		// Calls on the edge per request into its source; unknown (0) for a
		// source without server spans (a load generator, a batch job).
		if r := requests[e.Source]; r > 0 {
			le.Attempts = float64(e.Calls.Count) / float64(r)
		}
		le.Retried, le.TimeoutNs = e.Calls.Retried, e.Calls.InferTimeout()
		if ex := newestExemplar(&e.Calls); ex != nil {
			le.Exemplar = hex.EncodeToString(ex.TraceID[:])
		}
		out.Edges = append(out.Edges, le)
	}
	return out
}

// newestExemplar is the newest span kept in r, nil if none.
func newestExemplar(r *aggregate.Rollup) *aggregate.Exemplar {
	var best *aggregate.Exemplar
	for _, list := range [][]aggregate.Exemplar{r.Spread, r.ErrorExemplars, r.Exemplars} {
		for i := range list {
			if best == nil || list[i].Time > best.Time {
				best = &list[i]
			}
		}
	}
	return best
}

// finite replaces NaN and infinities (not valid JSON numbers) with 0.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	return v
}
