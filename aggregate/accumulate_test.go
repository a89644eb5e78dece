package aggregate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// rollupOf records n spans of duration d (errs of them errors).
func rollupOf(n, errs int, d time.Duration) *Rollup {
	r := DefaultGeometry().NewRollup()
	for i := range n {
		r.Record(int64(d), i < errs, Exemplar{})
	}
	return r
}

func graphWindows() []*Window {
	fe := Node{Service: "frontend", Instance: "fe-1", Zone: "a1", Region: "eu"}
	fe2 := Node{Service: "frontend", Instance: "fe-2", Zone: "a2", Region: "eu"}
	cart := Node{Service: "cart", Instance: "cart-1", Zone: "b1", Region: "us"}
	batch := Node{Service: "batch"} // only internal spans, calls nobody
	pg := Node{Service: "postgres", Virtual: true}
	cartV := Node{Service: "cart", Virtual: true} // cart seen from a client that never paired

	w1 := NewWindow(100, 10)
	w1.Series[SeriesKey{Node: fe, Operation: "GET /", Kind: kindServer}] = rollupOf(10, 1, 10*time.Millisecond)
	w1.Series[SeriesKey{Node: fe, Operation: "GET /", Kind: kindServer, Status: 2}] = rollupOf(2, 2, 20*time.Millisecond)
	w1.Series[SeriesKey{Node: fe, Operation: "GET /cart", Kind: kindClient}] = rollupOf(8, 0, 5*time.Millisecond)
	w1.Series[SeriesKey{Node: cart, Operation: "GET /cart", Kind: kindServer}] = rollupOf(8, 0, 4*time.Millisecond)
	w1.Series[SeriesKey{Node: cart, Operation: "query", Kind: kindClient}] = rollupOf(3, 0, time.Millisecond)
	w1.Series[SeriesKey{Node: batch, Operation: "tick", Kind: kindInternal}] = rollupOf(1, 0, time.Second)
	w1.Edges[EdgeKey{Source: fe, Target: cart, Operation: "GET /cart"}] = rollupOf(8, 0, 5*time.Millisecond)
	w1.Edges[EdgeKey{Source: cart, Target: pg, Operation: "query"}] = rollupOf(3, 1, time.Millisecond)

	w2 := NewWindow(110, 10)
	w2.Series[SeriesKey{Node: fe2, Operation: "GET /", Kind: kindConsumer}] = rollupOf(5, 0, 10*time.Millisecond)
	w2.Edges[EdgeKey{Source: fe2, Target: cart, Operation: "POST /cart"}] = rollupOf(2, 1, 6*time.Millisecond)
	w2.Edges[EdgeKey{Source: fe2, Target: cartV, Operation: "POST /cart"}] = rollupOf(1, 0, 6*time.Millisecond)
	// A coarser window overlapping the first two.
	w3 := NewWindow(60, 60)
	return []*Window{w1, w2, w3}
}

func graphLines(g *Graph) []string {
	var out []string
	for _, n := range g.Nodes {
		line := fmt.Sprintf("node %s virtual=%v region=%q requests=%d/%d spans=%d/%d",
			n.ID, n.Virtual, n.Region, n.Requests.Count, n.Requests.Errors, n.Spans, n.SpanErrors)
		if n.Service != "" {
			line += " service=" + n.Service
		}
		out = append(out, line)
	}
	for _, e := range g.Edges {
		out = append(out, fmt.Sprintf("edge %s->%s virtual=%v calls=%d/%d hist=%d", e.Source, e.Target, e.Virtual,
			e.Calls.Count, e.Calls.Errors, e.Calls.Hist.TotalCount()))
	}
	return out
}

func TestGraphAccumulator(t *testing.T) {
	cases := []struct {
		name string
		q    GraphQuery
		want []string
	}{
		{name: "service level", q: GraphQuery{}, want: []string{
			`node batch virtual=false region="" requests=0/0 spans=1/0`,
			`node cart virtual=false region="us" requests=8/0 spans=11/0`,
			`node frontend virtual=false region="eu" requests=17/3 spans=25/3`,
			`node postgres virtual=true region="" requests=3/1 spans=0/0`,
			`edge cart->postgres virtual=true calls=3/1 hist=3`,
			`edge frontend->cart virtual=false calls=11/1 hist=11`,
		}},
		{name: "instance level", q: GraphQuery{Level: LevelInstance}, want: []string{
			`node batch virtual=false region="" requests=0/0 spans=1/0 service=batch`,
			`node cart virtual=true region="" requests=1/0 spans=0/0`,
			`node cart-1 virtual=false region="us" requests=8/0 spans=11/0 service=cart`,
			`node fe-1 virtual=false region="eu" requests=12/3 spans=20/3 service=frontend`,
			`node fe-2 virtual=false region="eu" requests=5/0 spans=5/0 service=frontend`,
			`node postgres virtual=true region="" requests=3/1 spans=0/0`,
			`edge cart-1->postgres virtual=true calls=3/1 hist=3`,
			`edge fe-1->cart-1 virtual=false calls=8/0 hist=8`,
			`edge fe-2->cart virtual=true calls=1/0 hist=1`,
			`edge fe-2->cart-1 virtual=false calls=2/1 hist=2`,
		}},
		{name: "region level", q: GraphQuery{Level: LevelRegion}, want: []string{
			// A virtual node keeps its name at every level.
			`node cart virtual=true region="" requests=1/0 spans=0/0`,
			`node eu virtual=false region="" requests=17/3 spans=25/3`,
			`node postgres virtual=true region="" requests=3/1 spans=0/0`,
			`node unknown virtual=false region="" requests=0/0 spans=1/0`,
			`node us virtual=false region="" requests=8/0 spans=11/0`,
			`edge eu->cart virtual=true calls=1/0 hist=1`,
			`edge eu->us virtual=false calls=10/1 hist=10`,
			`edge us->postgres virtual=true calls=3/1 hist=3`,
		}},
		{name: "operation filter", q: GraphQuery{Operation: "GET /cart"}, want: []string{
			`node cart virtual=false region="us" requests=8/0 spans=8/0`,
			`node frontend virtual=false region="eu" requests=0/0 spans=8/0`,
			`edge frontend->cart virtual=false calls=8/0 hist=8`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			acc := NewGraphAccumulator(c.q, DefaultGeometry())
			for _, w := range graphWindows() {
				acc.Add(w)
			}
			g := acc.Result()
			diffLines(t, "graph", graphLines(g), c.want)
			if g.Seconds != 60 {
				t.Errorf("Seconds = %d, want 60 (the union of the windows)", g.Seconds)
			}
		})
	}
	// The windows are only read.
	ws := graphWindows()
	before := canonical(ws)
	acc := NewGraphAccumulator(GraphQuery{}, DefaultGeometry())
	for _, w := range ws {
		acc.Add(w)
		acc.Add(w)
	}
	acc.Result()
	if after := canonical(ws); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("Add modified its window")
	}
}

func TestUnionLength(t *testing.T) {
	f := func(want int64, ws ...[2]int64) {
		t.Helper()
		m := map[[2]int64]struct{}{}
		for _, w := range ws {
			m[w] = struct{}{}
		}
		if got := unionLength(m); got != want {
			t.Errorf("unionLength(%v) = %d, want %d", ws, got, want)
		}
	}
	f(0)
	f(10, [2]int64{0, 10})
	f(20, [2]int64{0, 10}, [2]int64{10, 10})
	f(20, [2]int64{0, 10}, [2]int64{20, 10})
	f(60, [2]int64{0, 60}, [2]int64{10, 10}, [2]int64{50, 10})
	f(70, [2]int64{0, 60}, [2]int64{50, 20})
}

func TestLatencyAccumulator(t *testing.T) {
	cases := []struct {
		name  string
		q     LatencyQuery
		count int64
		steps []string
	}{
		{name: "service, server side by default", q: LatencyQuery{Service: "frontend"}, count: 17},
		{name: "service, client side", q: LatencyQuery{Service: "frontend", Kind: KindClient}, count: 8},
		{name: "service, internal", q: LatencyQuery{Service: "batch", Kind: KindInternal}, count: 1},
		{name: "service, all kinds", q: LatencyQuery{Service: "cart", Kind: KindAll}, count: 11},
		{name: "service and operation", q: LatencyQuery{Service: "frontend", Operation: "GET /cart", Kind: KindAll}, count: 8},
		{name: "unknown service", q: LatencyQuery{Service: "nope"}, count: 0},
		{name: "edge", q: LatencyQuery{Source: "frontend", Target: "cart"}, count: 11},
		{name: "edge with operation", q: LatencyQuery{Source: "frontend", Target: "cart", Operation: "POST /cart"}, count: 3},
		{name: "edge to a virtual node", q: LatencyQuery{Source: "cart", Target: "postgres"}, count: 3},
		{name: "edge at instance level", q: LatencyQuery{Source: "fe-2", Target: "cart-1", Level: LevelInstance}, count: 2},
		{name: "edges into a node", q: LatencyQuery{Target: "cart"}, count: 11},
		{name: "step series", q: LatencyQuery{Service: "frontend", Step: 20}, count: 17,
			steps: []string{"100:17"}},
		{name: "step series, one step per window", q: LatencyQuery{Service: "frontend", Step: 10}, count: 17,
			steps: []string{"100:12", "110:5"}},
		{name: "step series, edges", q: LatencyQuery{Source: "frontend", Target: "cart", Step: 10}, count: 11,
			steps: []string{"100:8", "110:3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			acc := NewLatencyAccumulator(c.q, DefaultGeometry())
			for _, w := range graphWindows() {
				acc.Add(w)
			}
			l := acc.Result()
			if l.Total.Count != c.count || l.Total.Hist.TotalCount() != c.count {
				t.Errorf("count = %d (hist %d), want %d", l.Total.Count, l.Total.Hist.TotalCount(), c.count)
			}
			var steps []string
			for _, s := range l.Series {
				steps = append(steps, fmt.Sprintf("%d:%d", s.Start, s.Rollup.Count))
			}
			diffLines(t, "steps", steps, c.steps)
		})
	}
}

func TestKindFilter(t *testing.T) {
	want := map[KindFilter][]int32{
		KindServer:   {kindServer, kindConsumer},
		KindClient:   {kindClient, kindProducer},
		KindInternal: {kindUnspecified, kindInternal, 9},
		KindAll:      {0, 1, 2, 3, 4, 5, 9},
	}
	for f, kinds := range want {
		var got []int32
		for _, k := range []int32{0, 1, 2, 3, 4, 5, 9} {
			if f.Match(k) {
				got = append(got, k)
			}
		}
		if !slices.Equal(got, kinds) {
			t.Errorf("filter %d selects %v, want %v", f, got, kinds)
		}
	}
}

// renderGraph renders a graph with the exact content of every rollup.
func renderGraph(g *Graph) string {
	var b []byte
	for _, n := range g.Nodes {
		b = fmt.Appendf(b, "node %s %v %q %d %d ", n.ID, n.Virtual, n.Region, n.Spans, n.SpanErrors)
		b = append(b, rollupBytes(&n.Requests)...)
		b = append(b, '\n')
	}
	for _, e := range g.Edges {
		b = fmt.Appendf(b, "edge %s %s %v ", e.Source, e.Target, e.Virtual)
		b = append(b, rollupBytes(&e.Calls)...)
		b = append(b, '\n')
	}
	return fmt.Sprintf("%s seconds=%d", b, g.Seconds)
}

func renderLatency(l *Latency) string {
	b := rollupBytes(&l.Total)
	for _, s := range l.Series {
		b = fmt.Appendf(b, "\nstep %d ", s.Start)
		b = append(b, rollupBytes(&s.Rollup)...)
	}
	return string(b)
}

// manyWindows returns windows in which rollups merge more than denseAfter
// times, from the topology generator.
func manyWindows(t *testing.T) []*Window {
	r := rand.New(rand.NewPCG(7, 7))
	tp := newTopology(r, 20)
	spans, _, _ := tp.traces(r, 100)
	a := New(testOptions())
	var ws []*Window
	for i := 0; i < len(spans); i += 40 {
		a.Apply(uint64(i+1), commitAt(time.Duration(i)*time.Millisecond), traces(t, spans[i:min(i+40, len(spans))]...))
		if i%200 == 0 {
			ws = append(ws, a.Flush().Windows...)
		}
	}
	a.Expire(commitAt(time.Minute))
	ws = append(ws, a.Flush().Windows...)
	ws = append(ws, graphWindows()...)
	return ws
}

// TestAddEncoded checks that AddEncoded(b) is Add(DecodeWindow(b)).
func TestAddEncoded(t *testing.T) {
	g := DefaultGeometry()
	ws := manyWindows(t)
	var enc [][]byte
	for _, w := range ws {
		enc = append(enc, AppendWindow(nil, w))
	}
	for _, q := range []GraphQuery{{}, {Level: LevelInstance}, {Level: LevelRegion}, {Operation: "serve"}, {Operation: "query"}} {
		a, b := NewGraphAccumulator(q, g), NewGraphAccumulator(q, g)
		for i, w := range ws {
			a.Add(w)
			if err := b.AddEncoded(enc[i]); err != nil {
				t.Fatal(err)
			}
		}
		if ga, gb := renderGraph(a.Result()), renderGraph(b.Result()); ga != gb {
			t.Errorf("graph %+v: AddEncoded differs from Add:\n%s\n----\n%s", q, gb, ga)
		}
	}
	for _, q := range []LatencyQuery{
		{Service: "svc00"}, {Service: "svc03", Kind: KindAll, Step: 20}, {Kind: KindClient},
		{Source: "svc00", Target: "svc01"}, {Target: "svc02", Step: 10}, {Source: "cart", Target: "postgres"},
	} {
		a, b := NewLatencyAccumulator(q, g), NewLatencyAccumulator(q, g)
		for i, w := range ws {
			a.Add(w)
			if err := b.AddEncoded(enc[i]); err != nil {
				t.Fatal(err)
			}
		}
		la, lb := a.Result(), b.Result()
		if la.Total.Count == 0 {
			t.Errorf("latency %+v: nothing selected", q)
		}
		if renderLatency(la) != renderLatency(lb) {
			t.Errorf("latency %+v: AddEncoded differs from Add", q)
		}
	}
	if err := NewGraphAccumulator(GraphQuery{}, g).AddEncoded(enc[0][:len(enc[0])-1]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated window: err = %v", err)
	}
	if err := NewLatencyAccumulator(LatencyQuery{}, g).AddEncoded([]byte{9}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad version: err = %v", err)
	}
}

// TestRollupAccDense checks that accumulating densely, packed, or packed
// after running out of dense budget gives the same rollup as Merge.
func TestRollupAccDense(t *testing.T) {
	g := DefaultGeometry()
	r := rand.New(rand.NewPCG(3, 3))
	var parts []*Rollup
	want := g.NewRollup()
	for i := range 30 {
		p := g.NewRollup()
		for j, v := range multiModal(r, 50, 0.7, 0.2) {
			p.Record(v, j%7 == 0, Exemplar{TraceID: [16]byte{byte(i), byte(j), 1}})
		}
		parts = append(parts, p)
		want.Merge(p)
	}
	for _, budget := range []int{0, 1, maxDensePerAccumulator} {
		ds := newDenseSet(g)
		ds.used = maxDensePerAccumulator - budget
		var acc rollupAcc
		for _, p := range parts {
			acc.add(p, ds)
		}
		got := acc.result(ds)
		if string(rollupBytes(&got)) != string(rollupBytes(want)) {
			t.Errorf("budget %d: accumulated rollup differs from merged", budget)
		}
	}
}
