package main

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/flowscope/flowscope/alerting/rules"
)

// TestGenRules checks that the generated rules parse and that the topology
// has the edges asked for, each once, with a call per edge per request.
func TestGenRules(t *testing.T) {
	dir := t.TempDir()
	path, err := genRules(dir, defaultGenRules, defaultRuleEdges)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rules.Parse(path, data)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != defaultGenRules {
		t.Fatalf("%d rules, want %d", len(rs), defaultGenRules)
	}
	for _, r := range rs {
		if r.Each != rules.EachEdge {
			t.Fatalf("rule %s: each %q", r.Name, r.Each)
		}
	}
	edges := topology(defaultRuleEdges)
	seen := map[[2]string]bool{}
	for _, e := range edges {
		k := [2]string{e.source, e.target}
		if seen[k] || e.source == e.target {
			t.Fatalf("edge %v repeated or a self-call", k)
		}
		seen[k] = true
	}
	if len(seen) != defaultRuleEdges {
		t.Fatalf("%d edges, want %d", len(seen), defaultRuleEdges)
	}
	req := topologyRequest(edges, rand.New(rand.NewPCG(1, 2)), time.Now(), 0, 1)
	n := 0
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	if n != 2*defaultRuleEdges {
		t.Fatalf("topology request has %d spans, want %d", n, 2*defaultRuleEdges)
	}
}

// TestShortCompareRules runs -compare-rules once, briefly, with 100
// generated rules over a 50-edge topology.
func TestShortCompareRules(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and drives the collector; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := config{
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, Clients: 2,
		SpansPerRequest: 512, Pool: 8, MaxRequests: 100_000, Timeout: 30 * time.Second,
		Aggregation: true, CompareRules: true, Repeat: 1, GenRules: 100, Edges: 50,
	}
	cleanup, err := prepareRules(&c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	cr, err := runCompare(ctx, c, t.Logf)
	if cr != nil {
		var b bytes.Buffer
		cr.printTable(&b)
		t.Logf("result:\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if cr.Mode != "rules" || len(cr.Runs) != 2 || cr.Runs[0].Rules != nil || cr.Runs[1].Rules == nil {
		t.Fatalf("want a run without rules, then one with them")
	}
	for i, r := range cr.Runs {
		if r.TopologyEdges != 50 || r.TopologyRequests < 2 || !r.Aggregation {
			t.Errorf("run %d: topology %d edges, %d requests, aggregation %v", i+1, r.TopologyEdges, r.TopologyRequests, r.Aggregation)
		}
	}
	if r := cr.Runs[1].Rules; r.Loaded != 100 || r.Errors != 0 || r.Cycles < 1 || r.Firing == 0 {
		t.Errorf("rules: %+v", r)
	}
	if cr.Ratio <= 0 || len(cr.PairRatios) != 1 || cr.Target != rulesCompareTarget {
		t.Errorf("summary incomplete: %+v", cr)
	}
}
