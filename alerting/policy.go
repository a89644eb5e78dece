package alerting

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flowscope/flowscope/alerting/rules"
)

// PolicyEdge is an observed edge violating flow policies over a range.
type PolicyEdge struct {
	Policy         string
	Source, Target string
	Calls          int64
	Exemplar       string // a trace ID with such a call (hex), or ""
}

// PolicySource lists the edges violating the flow policies over a range.
// The collector's policy runtime provides it.
type PolicySource interface {
	PolicyViolations(ctx context.Context, start, end time.Time) ([]PolicyEdge, error)
}

// PolicySignals evaluates policy_violations, the number of calls over the
// rule's window on edges that violate a flow policy, as an ExtraSignals.
// The selection's source and target (node names) narrow the edges; each:
// edge gives one instance per violating edge, each: service one per
// calling node, and no each one instance in all (Count 0 retires it).
type PolicySignals struct {
	Source PolicySource
}

// Observe implements ExtraSignals.
func (p PolicySignals) Observe(ctx context.Context, r *rules.Rule, start, end time.Time) ([]Observation, error) {
	if r.Signal.Kind != rules.SignalPolicyViolations {
		return nil, fmt.Errorf("no source for signal %s", r.Signal.Name)
	}
	edges, err := p.Source.PolicyViolations(ctx, start, end)
	if err != nil {
		return nil, fmt.Errorf("policy violations: %w", err)
	}
	type group struct {
		sel       selection
		calls     int64
		policies  []string
		exemplars []string
		seen      map[[2]string]bool
	}
	groups := map[string]*group{}
	var order []string
	for _, e := range edges {
		if (r.Select.Source != "" && e.Source != r.Select.Source) || (r.Select.Target != "" && e.Target != r.Select.Target) {
			continue
		}
		var sel selection
		switch r.Each {
		case rules.EachEdge:
			sel = selection{source: e.Source, target: e.Target}
		case rules.EachService:
			sel = selection{service: e.Source}
		default:
			sel = selection{source: r.Select.Source, target: r.Select.Target}
		}
		k := sel.key()
		g := groups[k]
		if g == nil {
			g = &group{sel: sel, seen: map[[2]string]bool{}}
			groups[k] = g
			order = append(order, k)
		}
		// An edge violating several policies counts its calls once.
		if ek := [2]string{e.Source, e.Target}; !g.seen[ek] {
			g.seen[ek] = true
			g.calls += e.Calls
			if e.Exemplar != "" && len(g.exemplars) < 5 {
				g.exemplars = append(g.exemplars, e.Exemplar)
			}
		}
		if !slices.Contains(g.policies, e.Policy) {
			g.policies = append(g.policies, e.Policy)
		}
	}
	if len(order) == 0 && r.Each == rules.EachNone {
		sel := selection{source: r.Select.Source, target: r.Select.Target}
		return []Observation{{Key: sel.key(), Labels: sel.labels(), Target: "flow policies", Count: 0}}, nil
	}
	slices.Sort(order)
	out := make([]Observation, 0, len(order))
	for _, k := range order {
		g := groups[k]
		slices.Sort(g.policies)
		labels := g.sel.labels()
		target := "flow policies"
		switch {
		case g.sel.source != "" && g.sel.target != "":
			target = g.sel.source + " → " + g.sel.target
		case g.sel.service != "":
			target = g.sel.service
		}
		out = append(out, Observation{Key: k, Labels: labels, Target: target, Count: g.calls, Value: float64(g.calls), Exemplars: g.exemplars})
	}
	return out, nil
}
