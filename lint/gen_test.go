package lint

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// genGraph returns a random graph of n nodes and about m edges, mostly
// pointing from lower to higher node numbers (layers of services) with a
// few back edges making cycles, some asynchronous edges and self-calls,
// and random counts, error rates, p99s, retries and timeouts. The same
// seed gives the same graph.
func genGraph(seed uint64, n, m int) Graph {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	id := func(i int) string { return fmt.Sprintf("svc-%04d", i) }
	var g Graph
	for i := range n {
		g.Nodes = append(g.Nodes, Node{ID: id(i), Virtual: i%50 == 49, Requests: 1000, Errors: int64(r.IntN(20))})
	}
	seen := map[[2]int]bool{}
	for len(g.Edges) < m {
		a := r.IntN(n)
		var b int
		switch x := r.Float64(); {
		case x < 0.02:
			b = a // self-call
		case x < 0.06:
			b = r.IntN(a + 1) // back edge
		default:
			b = a + 1 + r.IntN(max(1, min(n-a-1, 40)))
			if b >= n {
				continue
			}
		}
		if seen[[2]int{a, b}] {
			continue
		}
		seen[[2]int{a, b}] = true
		calls := int64(100 + r.IntN(10000))
		e := Edge{
			Source: id(a), Target: id(b),
			Calls:    calls,
			Errors:   int64(float64(calls) * r.Float64() * 0.01),
			P99:      float64(1e6 + r.IntN(100e6)),
			Async:    r.IntN(10) == 0,
			Retried:  int64(float64(calls) * r.Float64() * 0.15),
			Attempts: 1 + r.Float64(),
			Exemplar: fmt.Sprintf("%032x", r.Uint64()),
		}
		if r.IntN(4) == 0 {
			e.TimeoutNs = int64(10e6 + r.IntN(1000e6))
		}
		if r.IntN(20) == 0 {
			e.P99 = math.NaN()
		}
		g.Edges = append(g.Edges, e)
	}
	return g
}

// shuffled returns g with its nodes, edges and paths in a random order.
func shuffled(g Graph, seed uint64) Graph {
	r := rand.New(rand.NewPCG(seed, 1))
	h := Graph{Nodes: slices.Clone(g.Nodes), Edges: slices.Clone(g.Edges), Paths: slices.Clone(g.Paths)}
	r.Shuffle(len(h.Nodes), func(i, j int) { h.Nodes[i], h.Nodes[j] = h.Nodes[j], h.Nodes[i] })
	r.Shuffle(len(h.Edges), func(i, j int) { h.Edges[i], h.Edges[j] = h.Edges[j], h.Edges[i] })
	r.Shuffle(len(h.Paths), func(i, j int) { h.Paths[i], h.Paths[j] = h.Paths[j], h.Paths[i] })
	return h
}

// TestSinglePointBruteForce compares single_point with its definition on
// random small graphs: remove each node and count the nodes some entry no
// longer reaches.
func TestSinglePointBruteForce(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 7))
		n := 2 + r.IntN(9)
		g := genGraph(seed, n, r.IntN(n*(n+1)/2))
		if seed%3 == 0 { // sometimes mark entries
			for i := range g.Nodes {
				g.Nodes[i].Entry = r.IntN(3) == 0
			}
		}
		x := newIndex(g)
		want := map[string]float64{}
		// The entries, by their definition: the marked nodes, else the
		// nodes without callers other than themselves.
		var entries []int
		for pass := 0; pass < 2 && len(entries) == 0; pass++ {
			for _, nd := range g.Nodes {
				called := slices.ContainsFunc(g.Edges, func(e Edge) bool { return e.Target == nd.ID && e.Source != nd.ID })
				if (pass == 0 && nd.Entry) || (pass == 1 && !called) {
					entries = append(entries, x.pos[nd.ID])
				}
			}
		}
		slices.Sort(entries)
		for d := range n {
			lost := map[int]bool{}
			for _, s := range entries {
				if s == d {
					continue
				}
				before, after := reach(x, s, -1), reach(x, s, d)
				for v := range before {
					if v != d && !after[v] {
						lost[v] = true
					}
				}
			}
			if len(lost) > 0 {
				want[x.ids[d]] = float64(len(lost))
			}
		}
		got := map[string]float64{}
		for _, f := range Run(g, only(SinglePoint)) {
			got[f.Nodes[0]] = f.Value
			if len(f.Nodes) != int(f.Value)+1 {
				t.Errorf("seed %d: %s lists %d nodes for value %g", seed, f.Nodes[0], len(f.Nodes)-1, f.Value)
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("seed %d (%d nodes, entries %v): got %v, want %v; edges %v", seed, n, x.names(entries), got, want, edgeList(x))
		}
	}
}

// reach returns the nodes reachable from s without going through skip.
func reach(x *index, s, skip int) map[int]bool {
	seen := map[int]bool{s: true}
	stack := []int{s}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, e := range x.out[v] {
			if e.dst != skip && !seen[e.dst] {
				seen[e.dst] = true
				stack = append(stack, e.dst)
			}
		}
	}
	return seen
}

func edgeList(x *index) []string {
	var out []string
	for _, e := range x.edges {
		out = append(out, x.ids[e.src]+">"+x.ids[e.dst])
	}
	return out
}

// TestDAGBruteForce compares chain_depth and availability with their
// definitions on random small DAGs: the longest path by enumeration of
// all paths, and success(n) by plain recursion without memoization.
func TestDAGBruteForce(t *testing.T) {
	for seed := range uint64(300) {
		r := rand.New(rand.NewPCG(seed, 9))
		n := 2 + r.IntN(10)
		g := genGraph(seed, n, r.IntN(n*(n-1)/2+1))
		g.Edges = slices.DeleteFunc(g.Edges, func(e Edge) bool { return e.Source >= e.Target }) // a DAG
		x := newIndex(g)
		var longest func(v int) int
		longest = func(v int) int {
			best := 0
			for _, e := range x.out[v] {
				if !e.Async {
					best = max(best, 1+longest(e.dst))
				}
			}
			return best
		}
		var success func(v int) float64
		success = func(v int) float64 {
			p := 1.0
			for _, e := range x.out[v] {
				if !e.Async {
					p *= (1 - float64(e.Errors)/float64(e.Calls)) * success(e.dst)
				}
			}
			return p
		}
		wantHops := 0
		for v := range n {
			wantHops = max(wantHops, longest(v))
		}
		s := only(ChainDepth, Availability)
		s[ChainDepth] = Setting{Threshold: 0, Enabled: true}
		s[Availability] = Setting{Threshold: 2, Enabled: true} // report every entry
		gotHops := 0
		avail := map[string]float64{}
		for _, f := range Run(g, s) {
			switch f.Rule {
			case ChainDepth:
				gotHops = int(f.Value)
				for i, e := range f.Edges {
					if xe := x.findName(e[0], e[1]); xe == nil || xe.Async || f.Nodes[i] != e[0] {
						t.Fatalf("seed %d: chain edge %v is not a synchronous edge of the path", seed, e)
					}
				}
			case Availability:
				avail[f.Nodes[0]] = f.Value
			}
		}
		if gotHops != wantHops {
			t.Fatalf("seed %d: chain %d hops, want %d; edges %v", seed, gotHops, wantHops, edgeList(x))
		}
		for _, ent := range x.entries() {
			want := success(ent)
			got, ok := avail[x.ids[ent]]
			hasSync := slices.ContainsFunc(x.out[ent], func(e *edge) bool { return !e.Async })
			if ok != hasSync || (ok && math.Abs(got-want) > 1e-12) {
				t.Fatalf("seed %d: availability of %s = %v (reported %v), want %v", seed, x.ids[ent], got, ok, want)
			}
		}
	}
}

// FuzzRun builds graphs of up to 16 nodes from the input and checks that
// Run does not panic, returns sorted, finite findings, and returns the same
// findings for the input shuffled.
func FuzzRun(f *testing.F) {
	f.Add([]byte{0x01, 0x12, 0x23, 0x30, 0x44, 0x05})
	f.Add([]byte{0x01, 0x10, 0x12, 0x21, 0x23, 0x32, 0x80, 0x41})
	f.Add([]byte("some longer seed with many bytes to make edges of"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 512 {
			return
		}
		var g Graph
		for i := 0; i+1 < len(b); i += 2 {
			e := Edge{
				Source: fmt.Sprint("n", b[i]>>4), Target: fmt.Sprint("n", b[i]&15),
				Calls: int64(b[i+1]), Errors: int64(b[i+1] >> 2), Retried: int64(b[i+1] >> 3),
				Async: b[i+1]&1 == 1, Attempts: float64(b[i+1]&7) / 2, P99: float64(b[i+1]) * 1e6,
			}
			if b[i+1]&2 != 0 {
				e.TimeoutNs = int64(b[i+1]) * 1e6
			}
			if b[i+1]&4 != 0 {
				e.P99 = math.NaN()
			}
			if b[i+1]&8 != 0 {
				g.Nodes = append(g.Nodes, Node{ID: e.Source, Entry: true})
			}
			g.Edges = append(g.Edges, e)
			if b[i+1]&16 != 0 {
				g.Paths = append(g.Paths, Path{Nodes: []string{e.Source, e.Target, e.Source}, Count: int64(b[i])})
			}
		}
		s := Defaults()
		s[Availability] = Setting{Threshold: 1.01, Enabled: true}
		got := Run(g, s)
		checkFindings(t, got)
		if again := Run(shuffled(g, uint64(len(b))), s); !slices.EqualFunc(again, got, equalFinding) {
			t.Fatalf("output differs after shuffling the input")
		}
	})
}

// BenchmarkRun lints a generated graph of 1,000 nodes and 5,000 edges with
// the default settings. Compare runs with
//
//	go test -run '^$' -bench BenchmarkRun -count 10 ./lint/ | tee new.txt; benchstat old.txt new.txt
func BenchmarkRun(b *testing.B) {
	g := genGraph(1, 1000, 5000)
	b.ReportAllocs()
	var fs []Finding
	for b.Loop() {
		fs = Run(g, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e6/float64(b.N), "ms/op")
	b.ReportMetric(float64(len(fs)), "findings")
}
