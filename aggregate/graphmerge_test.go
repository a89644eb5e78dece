package aggregate

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestGraphMerge checks Graph.Merge against the accumulator: for every
// query and random splits of the windows into two parts, merging the two
// parts' graphs gives the graph of all windows accumulated at once (but
// for Seconds, which Merge leaves to the caller) — virtual and real halves
// of a node, regions and instance services included.
func TestGraphMerge(t *testing.T) {
	g := DefaultGeometry()
	// Windows where cart is only the virtual target of unpaired calls (and
	// postgres, virtual everywhere), so that a split can make cart virtual
	// in one part and real in the other.
	w4 := NewWindow(200, 10)
	fe := Node{Service: "frontend", Instance: "fe-9", Zone: "a9", Region: "ap"}
	w4.Series[SeriesKey{Node: fe, Operation: "GET /", Kind: kindServer}] = rollupOf(4, 0, 10*time.Millisecond)
	w4.Edges[EdgeKey{Source: fe, Target: Node{Service: "cart", Virtual: true}, Operation: "GET /cart"}] = rollupOf(4, 2, 7*time.Millisecond)
	w5 := NewWindow(210, 10)
	w5.Edges[EdgeKey{Source: fe, Target: Node{Service: "cart", Virtual: true}, Operation: "GET /cart"}] = rollupOf(2, 0, 9*time.Millisecond)
	ws := append(manyWindows(t), w4, w5)
	render := func(g *Graph) string {
		out := renderGraph(g)
		for _, n := range g.Nodes {
			out += "\nservice " + n.ID + "=" + n.Service + " ns=" + n.Namespace
		}
		return out
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, q := range []GraphQuery{{}, {Level: LevelInstance}, {Level: LevelZone}, {Level: LevelRegion}, {Operation: "serve"}} {
		all := NewGraphAccumulator(q, g)
		for _, w := range ws {
			all.Add(w)
		}
		want := all.Result()
		want.Seconds = 0
		for split := range 20 {
			a, b := NewGraphAccumulator(q, g), NewGraphAccumulator(q, g)
			for _, w := range ws {
				if r.IntN(2) == 0 {
					a.Add(w)
				} else {
					b.Add(w)
				}
			}
			got := a.Result()
			got.Merge(b.Result())
			got.Seconds = 0
			if gr, wr := render(got), render(want); gr != wr {
				t.Fatalf("graph %+v, split %d: merged differs from accumulated:\n%s\n----\n%s", q, split, gr, wr)
			}
		}
	}
}

// TestGraphMergeVirtualThenReal pins the rule for a node that is virtual
// in g and real in b: the merged node is real, with b's requests, region
// and service, and edges into it are not virtual.
func TestGraphMergeVirtualThenReal(t *testing.T) {
	g := &Graph{
		Nodes: []GraphNode{{ID: "cart", Virtual: true, Requests: *rollupOf(3, 1, 0)}, {ID: "fe", Region: "eu"}},
		Edges: []GraphEdge{{Source: "fe", Target: "cart", Virtual: true, Calls: *rollupOf(3, 1, 0)}},
	}
	b := &Graph{Nodes: []GraphNode{{ID: "cart", Region: "us", Service: "cart", Requests: *rollupOf(5, 0, 0), Spans: 7}, {ID: "fe", Region: "ap"}}}
	g.Merge(b)
	cart, fe := g.Nodes[0], g.Nodes[1]
	if cart.Virtual || cart.Requests.Count != 5 || cart.Requests.Errors != 0 || cart.Region != "us" || cart.Service != "cart" || cart.Spans != 7 {
		t.Errorf("cart = %+v", cart)
	}
	if fe.Region != "ap" {
		t.Errorf("fe region = %q, want the least, ap", fe.Region)
	}
	if g.Edges[0].Virtual {
		t.Error("edge into a node real in the merge is still virtual")
	}
}
