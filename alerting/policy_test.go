package alerting

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flowscope/flowscope/alerting/rules"
)

type fakePolicySource []PolicyEdge

func (f fakePolicySource) PolicyViolations(context.Context, time.Time, time.Time) ([]PolicyEdge, error) {
	return f, nil
}

// TestPolicySignals checks policy_violations: calls on violating edges,
// an edge breaking two policies counted once, the selection narrowing the
// edges, and one instance per edge, per calling service, or in all (Count
// 0 without violations, which retires it).
func TestPolicySignals(t *testing.T) {
	src := fakePolicySource{
		{Policy: "no-db", Source: "web", Target: "db", Calls: 7, Exemplar: "t1"},
		{Policy: "as-designed", Source: "web", Target: "db", Calls: 7, Exemplar: "t1"},
		{Policy: "as-designed", Source: "web", Target: "cache", Calls: 3},
		{Policy: "payments", Source: "refunds", Target: "payments", Calls: 2, Exemplar: "t2"},
	}
	sig := rules.Signal{Kind: rules.SignalPolicyViolations, Name: "policy_violations"}
	cases := []struct {
		name string
		rule rules.Rule
		src  fakePolicySource
		want string
	}{
		{"all", rules.Rule{Signal: sig}, src, `[{"" "flow policies" 12 [t1 t2]}]`},
		{"each edge", rules.Rule{Signal: sig, Each: rules.EachEdge}, src,
			`[{"source=refunds,target=payments" "refunds → payments" 2 [t2]} {"source=web,target=cache" "web → cache" 3 []} {"source=web,target=db" "web → db" 7 [t1]}]`},
		{"each service", rules.Rule{Signal: sig, Each: rules.EachService}, src,
			`[{"service=refunds" "refunds" 2 [t2]} {"service=web" "web" 10 [t1]}]`},
		{"selected edge", rules.Rule{Signal: sig, Select: rules.Selector{Source: "web", Target: "db"}}, src,
			`[{"source=web,target=db" "web → db" 7 [t1]}]`},
		{"selected target, each edge", rules.Rule{Signal: sig, Each: rules.EachEdge, Select: rules.Selector{Target: "payments"}}, src,
			`[{"source=refunds,target=payments" "refunds → payments" 2 [t2]}]`},
		{"no violations", rules.Rule{Signal: sig}, nil, `[{"" "flow policies" 0 []}]`},
		{"no violations, each edge", rules.Rule{Signal: sig, Each: rules.EachEdge}, nil, `[]`},
	}
	for _, tc := range cases {
		obs, err := PolicySignals{Source: tc.src}.Observe(context.Background(), &tc.rule, time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range obs {
			if o.Value != float64(o.Count) {
				t.Errorf("%s: value %v, count %d", tc.name, o.Value, o.Count)
			}
			got = append(got, fmt.Sprintf("{%q %q %d %v}", o.Key, o.Target, o.Count, o.Exemplars))
		}
		if s := fmt.Sprint(got); s != tc.want && !(len(got) == 0 && tc.want == "[]") {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, s, tc.want)
		}
	}
	if _, err := (PolicySignals{Source: src}).Observe(context.Background(), &rules.Rule{Signal: rules.Signal{Kind: rules.SignalQuantile, Name: "p99"}}, time.Time{}, time.Time{}); err == nil {
		t.Error("p99 observed by the policy signals")
	}
}
