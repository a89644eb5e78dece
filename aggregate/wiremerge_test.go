package aggregate

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// normalizeMerged gives a merged graph's rollups what GraphMerger's
// always have: a histogram (empty for a rollup that had none) and an
// exemplar cap.
func normalizeMerged(g *Graph, geo Geometry) {
	fix := func(r *Rollup) {
		if r.Hist == nil {
			r.Hist = geo.NewRollup().Hist
		}
		if r.maxExemplars == 0 {
			r.maxExemplars = int32(geo.normalized().MaxExemplars)
		}
	}
	for i := range g.Nodes {
		fix(&g.Nodes[i].Requests)
	}
	for i := range g.Edges {
		fix(&g.Edges[i].Calls)
	}
}

// TestGraphMerger checks that merging encoded graphs with GraphMerger
// gives what decoding them and merging with Graph.Merge gives, for
// graphs from the accumulator (random splits of windows) and random ones
// (virtual in one part and real in another, nil histograms, own caps).
func TestGraphMerger(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	def := DefaultGeometry()
	check := func(what string, parts []*Graph) {
		t.Helper()
		m := NewGraphMerger()
		var want *Graph
		for _, p := range parts {
			b := AppendGraph(nil, p, def)
			if err := m.Add(b); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			d, _, err := DecodeGraph(b)
			if err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want = d
			} else {
				secs := max(want.Seconds, d.Seconds)
				want.Merge(d)
				want.Seconds = secs
			}
		}
		got, err := m.Result()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		normalizeMerged(want, def)
		if d := graphDiff(want, got); d != "" {
			t.Fatalf("%s: GraphMerger differs from Graph.Merge:\n%s", what, d)
		}
	}
	ws := manyWindows(t)
	for trial := range 20 {
		k := 2 + r.IntN(3)
		accs := make([]*GraphAccumulator, k)
		for i := range accs {
			accs[i] = NewGraphAccumulator(GraphQuery{Level: Level(trial % 3)}, def)
		}
		for _, w := range ws {
			accs[r.IntN(k)].Add(w)
		}
		parts := make([]*Graph, k)
		for i, a := range accs {
			parts[i] = a.Result()
		}
		check(fmt.Sprintf("accumulated, trial %d", trial), parts)
	}
	for trial := range 100 {
		parts := make([]*Graph, 1+r.IntN(4))
		for i := range parts {
			parts[i] = randomGraph(r, def)
		}
		check(fmt.Sprintf("random, trial %d", trial), parts)
	}
}

// TestGraphMergerErrors: corrupt input is an error wrapping ErrCorrupt.
func TestGraphMergerErrors(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	b := AppendGraph(nil, randomGraph(r, DefaultGeometry()), DefaultGeometry())
	for cut := 0; cut < len(b); cut++ {
		if err := NewGraphMerger().Add(b[:cut]); err == nil {
			t.Fatalf("truncated at %d of %d: no error", cut, len(b))
		}
	}
	if err := NewGraphMerger().Add(AppendLatency(nil, &Latency{}, DefaultGeometry())); err == nil {
		t.Error("a latency encoding merged as a graph")
	}
}

// BenchmarkGraphMerger merges three encoded graphs of 200 nodes and 1000
// edges, against decoding them and merging with Graph.Merge.
func BenchmarkGraphMerger(b *testing.B) {
	r := rand.New(rand.NewPCG(3, 4))
	def := DefaultGeometry()
	var encs [][]byte
	for range 3 {
		g := &Graph{}
		for i := range 200 {
			g.Nodes = append(g.Nodes, GraphNode{ID: fmt.Sprintf("svc-%03d", i), Requests: *randomRollup(r, def, 200)})
		}
		for i := range 1000 {
			g.Edges = append(g.Edges, GraphEdge{Source: fmt.Sprintf("svc-%03d", i%200), Target: fmt.Sprintf("svc-%03d", (i*7+1)%200), Calls: *randomRollup(r, def, 200)})
		}
		encs = append(encs, AppendGraph(nil, g, def))
	}
	b.Run("merger", func(b *testing.B) {
		for b.Loop() {
			m := NewGraphMerger()
			for _, e := range encs {
				if err := m.Add(e); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := m.Result(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode+merge", func(b *testing.B) {
		for b.Loop() {
			var g *Graph
			for _, e := range encs {
				d, _, err := DecodeGraph(e)
				if err != nil {
					b.Fatal(err)
				}
				if g == nil {
					g = d
				} else {
					g.Merge(d)
				}
			}
		}
	})
}
