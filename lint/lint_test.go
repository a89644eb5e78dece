package lint

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// fanout returns "hub>p1 … hub>pN".
func fanout(hub, prefix string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s>%s%02d ", hub, prefix, i)
	}
	return b.String()
}

// fanin returns "p1>hub … pN>hub".
func fanin(hub, prefix string, n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%s%02d>%s ", prefix, i, hub)
	}
	return b.String()
}

func names(prefix string, from, to int) string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, fmt.Sprintf("%s%02d", prefix, i))
	}
	return strings.Join(out, " ")
}

// TestRules checks each rule on small graphs with known answers.
func TestRules(t *testing.T) {
	custom := func(r Rule, thr float64, sev string) map[Rule]Setting {
		s := only(r)
		s[r] = Setting{Threshold: thr, Severity: sev, Enabled: true}
		return s
	}
	cases := []struct {
		name     string
		graph    string
		paths    []Path
		settings map[Rule]Setting
		want     []string // summaries, in order
		message  []string // substrings of the messages, by finding
	}{
		{
			name:     "chain of 7 hops",
			graph:    "c0>c1[p99=1ms] c1>c2[p99=2ms] c2>c3[p99=3ms] c3>c4[p99=4ms] c4>c5[p99=5ms] c5>c6[p99=6ms] c6>c7[p99=7ms]",
			settings: only(ChainDepth),
			want:     []string{"chain_depth warning [c0 c1 c2 c3 c4 c5 c6 c7] 7/5"},
			message:  []string{"c0 → c1 → c2 → c3 → c4 → c5 → c6 → c7 has 7 hops (graph path, not seen as one request), more than 5; its p99s sum to 28 ms."},
		},
		{
			name:     "chain of 5 hops is not flagged",
			graph:    chain("c", 5, "[p99=1ms]"),
			settings: only(ChainDepth),
		},
		{
			name: "chain picks the longest branch and goes through a cycle's condensation",
			// b and c form a cycle; the condensation path is a>b>d>e>f>g>h (6 hops)
			// or a>c>d… — both enter the component {b,c} once.
			graph:    "a>b b>c c>b b>d c>x d>e e>f f>g g>h a>y",
			settings: only(ChainDepth),
			want:     []string{"chain_depth warning [a b d e f g h] 6/5"},
			message:  []string{"the p99 of its hops is unknown"},
		},
		{
			name:     "chain with p99 partly unknown",
			graph:    chain("c", 6, "") + " c6>c7[p99=2ms]",
			settings: only(ChainDepth),
			want:     []string{"chain_depth warning [c0 c1 c2 c3 c4 c5 c6 c7] 7/5"},
			message:  []string{"its p99s sum to 2 ms (p99 unknown on 6 hops)"},
		},
		{
			name:     "async edges do not extend chains",
			graph:    "a>b b>c c>>d d>e e>f f>g g>h",
			settings: custom(ChainDepth, 3, ""),
			want:     []string{"chain_depth warning [d e f g h] 4/3"},
		},
		{
			name:     "observed paths are preferred over graph paths",
			graph:    chain("c", 7, "[p99=1ms]") + " p>q[p99=3ms] q>r[p99=4ms]",
			paths:    []Path{{Nodes: []string{"p", "q", "r"}, Count: 5, Exemplar: "abcd"}, {Nodes: []string{"p", "q"}, Count: 9}},
			settings: custom(ChainDepth, 1, ""),
			want:     []string{"chain_depth warning [p q r] 2/1"},
			message:  []string{"p → q → r has 2 hops (observed in traces, 5 requests), more than 1; its p99s sum to 7 ms."},
		},
		{
			name:     "observed paths shorter than the graph's are not flagged",
			graph:    chain("c", 7, ""),
			paths:    []Path{{Nodes: []string{"c0", "c1", "c2"}, Count: 5}},
			settings: only(ChainDepth),
		},
		{
			name:     "a 3-service cycle and a self-call",
			graph:    "a>b b>c c>a c>d d>d e>a",
			settings: only(Cycle),
			want:     []string{"cycle warning [a b c] 3/0", "cycle warning [d] 1/0"},
			message:  []string{"3 nodes call each other in a cycle of 3 edges: a, b and c.", "d calls itself."},
		},
		{
			name:     "cycle threshold",
			graph:    "a>b b>c c>a d>d x>y y>x",
			settings: custom(Cycle, 2, ""),
			want:     []string{"cycle warning [a b c] 3/2"},
		},
		{
			name:     "fan-out of 15 flagged, of 10 not",
			graph:    fanout("big", "s", 14) + " ~db big>db " + fanout("small", "t", 10),
			settings: only(FanOut, FanIn),
			want:     []string{"fan_out warning [big db " + names("s", 1, 14) + "] 15/10"},
		},
		{
			name:     "fan-in of 11 flagged as info, a self-call not counted",
			graph:    fanin("db", "c", 11) + " db>db " + fanin("cache", "d", 10),
			settings: only(FanOut, FanIn),
			want:     []string{"fan_in info [db " + names("c", 1, 11) + "] 11/10"},
		},
		{
			name:     "single point cutting the entry off from 4 services",
			graph:    "+e e>gw gw>a gw>b gw>c gw>d",
			settings: only(SinglePoint),
			want:     []string{"single_point warning [gw a b c d] 4/0"},
			message:  []string{"Losing gw cuts entry e off from 4 nodes reached only through it: a, b, c and d."},
		},
		{
			name: "marked entries replace the nodes without callers",
			// Without the mark, e would be the entry and gw would cut it
			// off from a and b; from gw, a and b are leaves.
			graph:    "+gw e>gw gw>a gw>b a>c",
			settings: only(SinglePoint, Availability),
			want:     []string{"single_point warning [a c] 1/0"},
		},
		{
			name:     "diamond has no single point",
			graph:    "e>b e>c b>d c>d",
			settings: only(SinglePoint),
		},
		{
			name: "single point: union over entries, entries not their own",
			// From e1, m dominates x and y; from e2, m dominates y only (x
			// is reached directly); z is cut off by y from both.
			graph:    "e1>m e2>m e2>x m>x m>y y>z",
			settings: only(SinglePoint),
			want:     []string{"single_point warning [m x y z] 3/0", "single_point warning [y z] 1/0"},
			message:  []string{"cuts entries e1 and e2 off from 3 nodes", "cuts entries e1 and e2 off from 1 node"},
		},
		{
			name:     "retry storm at 30 % flagged, 5 % not",
			graph:    "a>b[calls=1000,retried=300,att=1.3,ex=feed] c>d[calls=1000,retried=50,att=1.05]",
			settings: only(RetryStorm),
			want:     []string{"retry_storm warning [a b] 0.3/0.1"},
			message:  []string{"30 % of the 1000 calls a → b are retries, above 10 %; each request into a makes 1.3 calls to b."},
		},
		{
			name:     "timeout budget: caller 100 ms over callee 200 ms × 3 attempts",
			graph:    "a>b[to=100ms] b>c[to=200ms,att=3]",
			settings: only(TimeoutBudget),
			want:     []string{"timeout_budget critical [a b c] 1e+08/6e+08"},
			message:  []string{"a → b times out after 100 ms, not longer than b's own downstream budget of 600 ms (b → c: timeout 200 ms × 3 attempts)"},
		},
		{
			name:     "timeout budget: caller 200 ms × 3 over callee 100 ms is fine",
			graph:    "a>b[to=200ms,att=3] b>c[to=100ms,att=1]",
			settings: only(TimeoutBudget),
		},
		{
			name:     "timeout budget: equal is flagged, async callee edges ignored",
			graph:    "a>b[to=300ms] b>c[to=100ms,att=3] b>>q[to=10s]",
			settings: only(TimeoutBudget),
			want:     []string{"timeout_budget critical [a b c] 3e+08/3e+08"},
		},
		{
			name:     "availability excludes async edges",
			graph:    "+a a>b[calls=100,err=2] b>>q[calls=100,err=90]",
			settings: only(Availability),
			want:     []string{"availability critical [a] 0.98/0.99"},
		},
		{
			name:     "settings override a threshold",
			graph:    chain("c", 4, ""),
			settings: custom(ChainDepth, 3, "critical"),
			want:     []string{"chain_depth critical [c0 c1 c2 c3 c4] 4/3"},
		},
		{
			name:  "settings disable a rule; missing rules take defaults; empty severity the default",
			graph: fanout("big", "s", 11) + " x>x",
			settings: map[Rule]Setting{
				Cycle:       {Threshold: 0, Enabled: false},
				FanOut:      {Threshold: 10, Enabled: true},
				SinglePoint: {},
			},
			want: []string{"fan_out warning [big " + names("s", 1, 11) + "] 11/10"},
		},
		{
			name:     "a NaN threshold disables the rule",
			graph:    fanout("big", "s", 11),
			settings: custom(FanOut, math.NaN(), ""),
		},
		{
			name:  "findings sort by rule, then severity",
			graph: "+e e>a[calls=10,err=5] a>b a>a",
			want: []string{
				"cycle warning [a] 1/0",
				"single_point warning [a b] 1/0",
				"availability critical [e] 0.5/0.99",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := parseGraph(t, tc.graph)
			g.Paths = tc.paths
			got := Run(g, tc.settings)
			if s := summaries(got); !slices.Equal(s, tc.want) && (len(s) > 0 || len(tc.want) > 0) {
				t.Fatalf("findings:\n got %q\nwant %q", s, tc.want)
			}
			for i, m := range tc.message {
				if !strings.Contains(got[i].Message, m) {
					t.Errorf("finding %d message %q lacks %q", i, got[i].Message, m)
				}
			}
			checkFindings(t, got)
		})
	}
}

// checkFindings checks what holds for every finding: finite numbers, non-nil
// evidence, a one-line message, evidence edges between evidence nodes
// (except for availability, whose nodes are the entry only).
func checkFindings(t *testing.T, fs []Finding) {
	t.Helper()
	for i, f := range fs {
		for _, v := range []float64{f.Value, f.Threshold, f.Amplification, f.LatencyNs} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Errorf("finding %d (%s): non-finite number: %+v", i, f.Rule, f)
			}
		}
		if f.Nodes == nil || f.Edges == nil || f.Severity == "" || f.Message == "" {
			t.Errorf("finding %d: missing fields: %+v", i, f)
		}
		if strings.ContainsAny(f.Message, "\n<>*`") || !strings.HasSuffix(f.Message, ".") {
			t.Errorf("finding %d: message %q is not one plain sentence", i, f.Message)
		}
		if f.Rule == Availability {
			continue
		}
		for _, e := range f.Edges {
			if !slices.Contains(f.Nodes, e[0]) || !slices.Contains(f.Nodes, e[1]) {
				t.Errorf("finding %d (%s): edge %v outside its nodes %v", i, f.Rule, e, f.Nodes)
			}
		}
	}
	if !slices.IsSortedFunc(fs, compareFindings) {
		t.Errorf("findings not sorted")
	}
}

// TestChainDepthExact checks the path, the hop count and the sum of the
// p99s of a 7-hop chain exactly.
func TestChainDepthExact(t *testing.T) {
	g := parseGraph(t, "c0>c1[p99=1.5ms,ex=01] c1>c2[p99=2ms] c2>c3[p99=3ms] c3>c4[p99=4ms] c4>c5[p99=5ms] c5>c6[p99=6ms] c6>c7[p99=7.25ms] c7>>c8[p99=1s]")
	fs := Run(g, only(ChainDepth))
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want 1", len(fs))
	}
	f := fs[0]
	wantEdges := [][2]string{{"c0", "c1"}, {"c1", "c2"}, {"c2", "c3"}, {"c3", "c4"}, {"c4", "c5"}, {"c5", "c6"}, {"c6", "c7"}}
	if !slices.Equal(f.Edges, wantEdges) || f.Value != 7 || f.Threshold != 5 {
		t.Errorf("got %+v", f)
	}
	if want := (1.5 + 2 + 3 + 4 + 5 + 6 + 7.25) * 1e6; f.LatencyNs != want {
		t.Errorf("LatencyNs = %v, want %v", f.LatencyNs, want)
	}
	if f.Exemplar != "01" {
		t.Errorf("Exemplar = %q, want the first hop's", f.Exemplar)
	}
}

// TestAvailabilityProduct checks the availability estimate of a call tree
// against the product computed by hand.
func TestAvailabilityProduct(t *testing.T) {
	// e calls a (1 % errors) and b (2 %); a calls c (5 %) and d (0 %);
	// b calls d (1 %); d calls f (10 %); c calls back into a (a cycle:
	// counts 1) and q asynchronously (not counted).
	g := parseGraph(t, "+e[req=1000,err=300] e>a[calls=1000,err=10] e>b[calls=200,err=4] a>c[calls=100,err=5] a>d[calls=50] "+
		"b>d[calls=100,err=1] d>f[calls=1000,err=100,ex=bad1] c>a[calls=10,err=5] c>>q[calls=10,err=10]")
	fs := Run(g, only(Availability))
	if len(fs) != 1 {
		t.Fatalf("got %d findings, want 1: %q", len(fs), summaries(fs))
	}
	succD := 0.9
	succA := (1 - 0.05) * 1 * (1 - 0) * succD // c counts 1: its edge back to a is a cycle
	succB := (1 - 0.01) * succD
	want := (1 - 0.01) * succA * (1 - 0.02) * succB
	if math.Abs(want-0.739103211) > 1e-9 {
		t.Fatalf("BUG in the test: hand product %v", want)
	}
	f := fs[0]
	if math.Abs(f.Value-want) > 1e-9 {
		t.Errorf("availability = %.12f, want %.12f", f.Value, want)
	}
	if f.Exemplar != "bad1" || !strings.Contains(f.Message, "the worst is d → f, failing 10 % of 1000 calls") ||
		!strings.Contains(f.Message, "observed at the entry: 70 %") {
		t.Errorf("finding %+v", f)
	}
	wantEdges := [][2]string{{"a", "c"}, {"b", "d"}, {"d", "f"}, {"e", "a"}, {"e", "b"}} // not c → a: a back edge
	if !slices.Equal(f.Edges, wantEdges) {
		t.Errorf("edges %v, want %v", f.Edges, wantEdges)
	}
}

// TestLargeGraphs runs the walks on a long chain and a long cycle: they are
// iterative, so depth is not limited by the stack, and linear enough.
func TestLargeGraphs(t *testing.T) {
	const n = 20000
	var ring, line []Edge
	for i := range n {
		ring = append(ring, Edge{Source: fmt.Sprint("r", i), Target: fmt.Sprint("r", (i+1)%n), P99: math.NaN()})
		if i+1 < n {
			line = append(line, Edge{Source: fmt.Sprint("l", i), Target: fmt.Sprint("l", i+1), P99: 1})
		}
	}
	fs := Run(Graph{Edges: ring}, only(Cycle, ChainDepth))
	if len(fs) != 1 || fs[0].Rule != Cycle || fs[0].Value != n || len(fs[0].Edges) != n {
		t.Fatalf("ring: %d findings, first %v", len(fs), summaries(fs[:min(1, len(fs))]))
	}
	fs = Run(Graph{Edges: line}, only(ChainDepth))
	if len(fs) != 1 || fs[0].Value != n-1 || fs[0].LatencyNs != n-1 {
		t.Errorf("line chain: %v", summaries(fs))
	}
	// Every node of a line but the first and the last is a single point;
	// the evidence is capped, the count is not.
	const m = 3000
	fs = Run(Graph{Edges: line[:m-1]}, only(SinglePoint))
	if len(fs) != m-2 {
		t.Fatalf("line single points: %d findings, want %d", len(fs), m-2)
	}
	for _, f := range fs {
		if f.Nodes[0] == "l1" && (f.Value != m-2 || len(f.Nodes) != 1+maxEvidence || !strings.Contains(f.Message, "and 2993 more.")) {
			t.Errorf("l1: %v: %s", summary(f), f.Message)
		}
	}
}

// TestOrderIndependence shuffles the input and checks the output is the
// same.
func TestOrderIndependence(t *testing.T) {
	g := genGraph(7, 120, 500)
	want := Run(g, nil)
	if len(want) == 0 {
		t.Fatal("no findings on the generated graph")
	}
	for seed := range uint64(5) {
		h := shuffled(g, seed)
		if got := Run(h, nil); !slices.EqualFunc(got, want, equalFinding) {
			t.Fatalf("seed %d: output differs after shuffling the input", seed)
		}
	}
	checkFindings(t, want)
}

func equalFinding(a, b Finding) bool {
	return a.Rule == b.Rule && a.Severity == b.Severity && slices.Equal(a.Nodes, b.Nodes) &&
		slices.Equal(a.Edges, b.Edges) && a.Value == b.Value && a.Threshold == b.Threshold &&
		a.Amplification == b.Amplification && a.LatencyNs == b.LatencyNs && a.Exemplar == b.Exemplar &&
		a.Message == b.Message
}

// TestMergeEdges checks that edges repeated by (source, target), e.g. one
// per operation, are merged: counts summed, the largest p99 and timeout,
// asynchronous only if all are.
func TestMergeEdges(t *testing.T) {
	g := parseGraph(t, "a>b[calls=100,retried=10,p99=5ms] a>b[calls=100,retried=20,att=1.5,p99=9ms,to=50ms] "+
		"a>>c[calls=10] a>c[calls=10,p99=1ms] c>>d[p99=1ms] c>>d b>x[to=100ms]")
	s := only(RetryStorm, ChainDepth, TimeoutBudget)
	s[ChainDepth] = Setting{Threshold: 1, Enabled: true}
	got := Run(g, s)
	want := []string{
		"chain_depth warning [a b x] 2/1", // a>c is synchronous, but c>d is not
		"timeout_budget critical [a b x] 5e+07/1e+08",
		"retry_storm warning [a b] 0.15/0.1",
	}
	if s := summaries(got); !slices.Equal(s, want) {
		t.Fatalf("got %q\nwant %q", s, want)
	}
	if got[0].LatencyNs != 9e6 || got[2].Amplification != 1.5 {
		t.Errorf("merged p99 %v (want 9e6), attempts %v (want 1.5)", got[0].LatencyNs, got[2].Amplification)
	}
}
