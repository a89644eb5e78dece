package aggregate

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// topology is a random call tree of services; some call a database.
type topology struct {
	n        int
	children [][]int
	db       []string // "" or the db.system a service calls
	region   []string
}

func newTopology(r *rand.Rand, n int) *topology {
	tp := &topology{n: n, children: make([][]int, n), db: make([]string, n), region: make([]string, n)}
	for i := 1; i < n; i++ {
		p := r.IntN(i)
		tp.children[p] = append(tp.children[p], i)
	}
	for i := range n {
		if r.IntN(4) == 0 {
			tp.db[i] = fmt.Sprintf("db%d", r.IntN(3))
		}
		tp.region[i] = fmt.Sprintf("r%d", i%3)
	}
	return tp
}

func (tp *topology) svc(i int) string { return fmt.Sprintf("svc%02d", i) }

// genTopologyTraces walks the tree from the root in every trace, calling
// each child with probability 1/2 (once or twice), and returns the spans
// and the expected calls per edge "src->dst" (virtual targets marked '*')
// and server spans per service.
func (tp *topology) traces(r *rand.Rand, traces int) ([]tspan, map[string]int64, map[string]int64) {
	var spans []tspan
	calls := map[string]int64{}
	requests := map[string]int64{}
	var id uint64
	next := func() uint64 { id++; return id }
	res := func(i int) []kv {
		return []kv{{"cloud.region", tp.region[i]}, {"service.instance.id", fmt.Sprintf("%s-%d", tp.svc(i), r.IntN(3))}}
	}
	var visit func(tr uint64, s int, sid uint64, start int64)
	visit = func(tr uint64, s int, sid uint64, start int64) {
		for _, c := range tp.children[s] {
			if r.IntN(2) == 0 {
				continue
			}
			for range 1 + r.IntN(2) {
				cid, csid := next(), next()
				spans = append(spans,
					tspan{svc: tp.svc(s), resAttrs: res(s), trace: tr, id: cid, parent: sid, name: "call " + tp.svc(c), kind: kClient, start: start, dur: 3 * ms},
					tspan{svc: tp.svc(c), resAttrs: res(c), trace: tr, id: csid, parent: cid, name: "serve", kind: kServer, start: start + ms, dur: ms})
				calls[tp.svc(s)+"->"+tp.svc(c)]++
				requests[tp.svc(c)]++
				visit(tr, c, csid, start+ms)
			}
		}
		if tp.db[s] != "" && r.IntN(2) == 0 {
			spans = append(spans, tspan{svc: tp.svc(s), resAttrs: res(s), trace: tr, id: next(), parent: sid, name: "query",
				kind: kClient, start: start, dur: ms, attrs: []kv{{"db.system", tp.db[s]}}})
			calls[tp.svc(s)+"->*"+tp.db[s]]++
		}
	}
	for tr := range uint64(traces) {
		start := int64(r.IntN(60)) * int64(time.Second)
		rid := next()
		spans = append(spans, tspan{svc: tp.svc(0), resAttrs: res(0), trace: tr + 1, id: rid, name: "GET /", kind: kServer, start: start, dur: 10 * ms})
		requests[tp.svc(0)]++
		visit(tr+1, 0, rid, start)
	}
	return spans, calls, requests
}

// TestTopology feeds a generated 50-service topology in random order and
// checks the flow graph against it, call for call.
func TestTopology(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 42))
	tp := newTopology(r, 50)
	spans, calls, requests := tp.traces(r, 200)
	r.Shuffle(len(spans), func(i, j int) { spans[i], spans[j] = spans[j], spans[i] })

	a := New(testOptions())
	var ws []*Window
	seq := uint64(0)
	for i := 0; i < len(spans); {
		m := min(1+r.IntN(50), len(spans)-i)
		seq++
		a.Apply(seq, commitAt(time.Duration(seq)*time.Millisecond), traces(t, spans[i:i+m]...))
		i += m
		if seq%10 == 0 {
			ws = append(ws, a.Flush().Windows...)
		}
	}
	a.Expire(commitAt(time.Minute))
	ws = append(ws, a.Flush().Windows...)
	if st := a.Stats(); st.UnpairedClients != 0 || st.UnpairedServers != 0 {
		t.Errorf("unpaired halves: %+v", st)
	}

	acc := NewGraphAccumulator(GraphQuery{Level: LevelService}, DefaultGeometry())
	for _, w := range ws {
		acc.Add(w)
	}
	g := acc.Result()
	got := map[string]int64{}
	for _, e := range g.Edges {
		dst := e.Target
		if e.Virtual {
			dst = "*" + dst
		}
		got[e.Source+"->"+dst] = e.Calls.Count
		if e.Calls.Hist.TotalCount() != e.Calls.Count {
			t.Errorf("edge %s->%s: histogram count %d, calls %d", e.Source, e.Target, e.Calls.Hist.TotalCount(), e.Calls.Count)
		}
	}
	if !maps.Equal(got, calls) {
		for k, v := range calls {
			if got[k] != v {
				t.Errorf("edge %s: %d calls, want %d", k, got[k], v)
			}
		}
		for k, v := range got {
			if _, ok := calls[k]; !ok {
				t.Errorf("unexpected edge %s: %d calls", k, v)
			}
		}
	}
	var spanTotal int64
	for _, n := range g.Nodes {
		spanTotal += n.Spans
		if n.Virtual {
			continue
		}
		if n.Requests.Count != requests[n.ID] {
			t.Errorf("node %s: %d requests, want %d", n.ID, n.Requests.Count, requests[n.ID])
		}
	}
	if spanTotal != int64(len(spans)) {
		t.Errorf("nodes count %d spans, want %d", spanTotal, len(spans))
	}
	if !slices.IsSortedFunc(g.Nodes, func(x, y GraphNode) int { return compareStrings(x.ID, y.ID) }) {
		t.Error("nodes not sorted")
	}

	// At region level the calls add up per region pair.
	acc = NewGraphAccumulator(GraphQuery{Level: LevelRegion}, DefaultGeometry())
	for _, w := range ws {
		acc.Add(w)
	}
	var regionCalls, allCalls int64
	for _, e := range acc.Result().Edges {
		regionCalls += e.Calls.Count
	}
	for _, c := range calls {
		allCalls += c
	}
	if regionCalls != allCalls {
		t.Errorf("region level: %d calls, want %d", regionCalls, allCalls)
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
