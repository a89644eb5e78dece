package aggregate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// rollupDiff describes how b differs from a, "" if it does not: every
// exported field, the histogram's nil-ness, geometry and buckets, and the
// merge state (exemplar cap, spread bands).
func rollupDiff(a, b *Rollup) string {
	var d []string
	add := func(format string, args ...any) { d = append(d, fmt.Sprintf(format, args...)) }
	if a.Count != b.Count || a.Errors != b.Errors || a.Clamped != b.Clamped || a.Retried != b.Retried {
		add("counts %d/%d/%d/%d, want %d/%d/%d/%d", b.Count, b.Errors, b.Clamped, b.Retried, a.Count, a.Errors, a.Clamped, a.Retried)
	}
	for _, l := range []struct {
		name string
		x, y []Exemplar
	}{{"exemplars", a.Exemplars, b.Exemplars}, {"spread", a.Spread, b.Spread}, {"error exemplars", a.ErrorExemplars, b.ErrorExemplars}} {
		if !slices.Equal(l.x, l.y) {
			add("%s %+v, want %+v", l.name, l.y, l.x)
		}
	}
	if !slices.Equal(a.Failed, b.Failed) {
		add("failed %+v, want %+v", b.Failed, a.Failed)
	}
	if a.maxExemplars != b.maxExemplars || a.spreadMask != b.spreadMask {
		add("exemplar cap %d, spread mask %#x, want %d, %#x", b.maxExemplars, b.spreadMask, a.maxExemplars, a.spreadMask)
	}
	switch {
	case (a.Hist == nil) != (b.Hist == nil):
		add("histogram nil: %v, want %v", b.Hist == nil, a.Hist == nil)
	case a.Hist != nil:
		if a.Hist.SignificantFigures() != b.Hist.SignificantFigures() || a.Hist.HighestTrackableValue() != b.Hist.HighestTrackableValue() {
			add("histogram geometry %d digits to %d, want %d to %d", b.Hist.SignificantFigures(), b.Hist.HighestTrackableValue(),
				a.Hist.SignificantFigures(), a.Hist.HighestTrackableValue())
		}
		if a.Hist.TotalCount() != b.Hist.TotalCount() || !slices.Equal(buckets(a), buckets(b)) {
			add("buckets %v, want %v", buckets(b), buckets(a))
		}
	}
	return strings.Join(d, "; ")
}

// graphDiff describes how b differs from a, "" if it does not.
func graphDiff(a, b *Graph) string {
	var d []string
	if a.Seconds != b.Seconds {
		d = append(d, fmt.Sprintf("seconds %d, want %d", b.Seconds, a.Seconds))
	}
	if len(a.Nodes) != len(b.Nodes) || len(a.Edges) != len(b.Edges) {
		return fmt.Sprintf("%d nodes %d edges, want %d nodes %d edges", len(b.Nodes), len(b.Edges), len(a.Nodes), len(a.Edges))
	}
	for i := range a.Nodes {
		x, y := a.Nodes[i], b.Nodes[i]
		if x.ID != y.ID || x.Namespace != y.Namespace || x.Virtual != y.Virtual || x.Region != y.Region ||
			x.Service != y.Service || x.Spans != y.Spans || x.SpanErrors != y.SpanErrors {
			d = append(d, fmt.Sprintf("node %d: %+v, want %+v", i, y, x))
		}
		if s := rollupDiff(&x.Requests, &y.Requests); s != "" {
			d = append(d, fmt.Sprintf("node %s requests: %s", x.ID, s))
		}
	}
	for i := range a.Edges {
		x, y := a.Edges[i], b.Edges[i]
		if x.Source != y.Source || x.Target != y.Target || x.Virtual != y.Virtual || x.Provisional != y.Provisional {
			d = append(d, fmt.Sprintf("edge %d: %+v, want %+v", i, y, x))
		}
		if s := rollupDiff(&x.Calls, &y.Calls); s != "" {
			d = append(d, fmt.Sprintf("edge %s→%s calls: %s", x.Source, x.Target, s))
		}
	}
	return strings.Join(d, "\n")
}

// latencyDiff describes how b differs from a, "" if it does not.
func latencyDiff(a, b *Latency) string {
	var d []string
	if a.Provisional != b.Provisional {
		d = append(d, fmt.Sprintf("provisional %d, want %d", b.Provisional, a.Provisional))
	}
	if s := rollupDiff(&a.Total, &b.Total); s != "" {
		d = append(d, "total: "+s)
	}
	if len(a.Series) != len(b.Series) {
		return strings.Join(append(d, fmt.Sprintf("%d steps, want %d", len(b.Series), len(a.Series))), "\n")
	}
	for i := range a.Series {
		if a.Series[i].Start != b.Series[i].Start {
			d = append(d, fmt.Sprintf("step %d starts at %d, want %d", i, b.Series[i].Start, a.Series[i].Start))
		}
		if s := rollupDiff(&a.Series[i].Rollup, &b.Series[i].Rollup); s != "" {
			d = append(d, fmt.Sprintf("step %d: %s", i, s))
		}
	}
	return strings.Join(d, "\n")
}

// randomRollup records n spans of random durations (zero, clamped and
// negative ones included), some failing, some untimed, most with an
// exemplar, into a rollup of geometry geo.
func randomRollup(r *rand.Rand, geo Geometry, n int) *Rollup {
	ro := geo.NewRollup()
	for range n {
		var d int64
		switch r.IntN(20) {
		case 0:
			d = 0
		case 1:
			d = 2 * geo.normalized().MaxValue // clamped
		case 2:
			d = -5
		case 3:
			ro.RecordUntimed(r.IntN(2) == 0)
			continue
		default:
			d = int64(float64(time.Millisecond) * math.Exp(r.NormFloat64()*3))
		}
		var ex Exemplar
		if r.IntN(8) != 0 {
			ex = Exemplar{TraceID: [16]byte{byte(r.Uint32()), byte(r.Uint32()), 1}, SpanID: [8]byte{byte(r.Uint32())}, Time: r.Int64N(1 << 40)}
		}
		ro.Record(d, r.IntN(4) == 0, ex)
	}
	ro.Retried = int64(r.IntN(3))
	return ro
}

// fullRollup has every exemplar list full (the slowest at the cap, a
// spread exemplar in many octaves, MaxErrorExemplars failing ones) and
// failed durations in several bands.
func fullRollup(geo Geometry) *Rollup {
	ro := geo.NewRollup()
	for i := range 40 {
		d := int64(1) << (i % 34)
		ro.Record(d+int64(i), i%3 == 0, Exemplar{TraceID: [16]byte{byte(i + 1), 7}, SpanID: [8]byte{byte(i)}, Time: int64(1000 + i)})
	}
	ro.Retried = 4
	return ro
}

type graphCase struct {
	name string
	g    *Graph
	geo  Geometry
}

type latencyCase struct {
	name string
	l    *Latency
	geo  Geometry
}

// wireGraphCases covers the graph encoding's features.
func wireGraphCases(tb testing.TB) []graphCase {
	r := rand.New(rand.NewPCG(1, 2))
	def := DefaultGeometry()
	small := Geometry{Digits: 3, MaxValue: int64(time.Second), MaxExemplars: 3}
	full := fullRollup(def)
	if len(full.Exemplars) != def.MaxExemplars || len(full.ErrorExemplars) != MaxErrorExemplars || len(full.Spread) < 30 || len(full.Failed) < 10 {
		tb.Fatalf("fullRollup is not full: %d exemplars, %d spread, %d failing, %d failed bands",
			len(full.Exemplars), len(full.Spread), len(full.ErrorExemplars), len(full.Failed))
	}
	ownCap := Geometry{MaxExemplars: 2}.NewRollup()
	for i := range 5 {
		ownCap.Record(int64(i*1000), false, Exemplar{TraceID: [16]byte{byte(i + 1)}})
	}
	cases := []graphCase{
		{"empty", &Graph{}, def},
		{"empty with seconds", &Graph{Nodes: []GraphNode{}, Edges: []GraphEdge{}, Seconds: 3600}, def},
		{"virtual nodes", &Graph{
			Nodes: []GraphNode{
				{ID: "shop/frontend", Namespace: "shop", Region: "eu", Requests: *randomRollup(r, def, 50), Spans: 80, SpanErrors: 3},
				{ID: "postgres", Virtual: true, Requests: *randomRollup(r, def, 20)},
			},
			Edges:   []GraphEdge{{Source: "shop/frontend", Target: "postgres", Virtual: true, Calls: *randomRollup(r, def, 20), Provisional: 2}},
			Seconds: 60,
		}, def},
		{"nil and empty histograms", &Graph{
			Nodes: []GraphNode{{ID: "a", Requests: Rollup{}}, {ID: "b", Requests: *def.NewRollup()}, {ID: "c", Requests: Rollup{Count: 3, Errors: 1}}},
			Edges: []GraphEdge{{Source: "a", Target: "b", Calls: Rollup{}}, {Source: "b", Target: "c", Calls: *def.NewRollup()}},
		}, def},
		{"all exemplar lists full", &Graph{
			Nodes: []GraphNode{{ID: "a", Requests: *full}, {ID: "b", Requests: *full.Clone()}},
			Edges: []GraphEdge{{Source: "a", Target: "b", Calls: *full.Clone()}},
		}, def},
		{"failed bands", &Graph{
			Nodes: []GraphNode{{ID: "a", Requests: *rollupOf(10, 10, 3*time.Second)}},
			Edges: []GraphEdge{{Source: "a", Target: "a", Calls: Rollup{Count: 5, Errors: 5, Failed: []FailedBand{{Band: 0, Count: 1}, {Band: 31, Count: 4, Min: 1 << 30, Max: 1<<31 - 1}}}}},
		}, def},
		{"instance level", &Graph{
			Nodes: []GraphNode{
				{ID: "shop/fe-1", Namespace: "shop", Region: "eu-west", Service: "shop/frontend", Requests: *randomRollup(r, def, 30), Spans: 30},
				{ID: "shop/fe-2", Namespace: "shop", Region: "eu-west", Service: "shop/frontend", Requests: *randomRollup(r, def, 30), Spans: 31},
				{ID: "ünïcödé ✓", Service: "", Requests: *randomRollup(r, def, 3)},
			},
			Edges: []GraphEdge{
				{Source: "shop/fe-1", Target: "shop/fe-2", Calls: *randomRollup(r, def, 30)},
				{Source: "shop/fe-2", Target: "ünïcödé ✓", Calls: *randomRollup(r, def, 3)},
			},
		}, def},
		{"other geometry", &Graph{
			Nodes: []GraphNode{{ID: "a", Requests: *randomRollup(r, small, 200)}, {ID: "b", Requests: *fullRollup(small)}},
			Edges: []GraphEdge{{Source: "a", Target: "b", Calls: *randomRollup(r, small, 200)}},
		}, small},
		{"own exemplar cap", &Graph{Nodes: []GraphNode{{ID: "a", Requests: *ownCap}}}, def},
		{"extremes", &Graph{
			Nodes:   []GraphNode{{ID: "", Spans: math.MaxInt64, SpanErrors: math.MinInt64, Requests: Rollup{Count: math.MaxInt64, Clamped: math.MaxInt64}}},
			Edges:   []GraphEdge{{Provisional: math.MinInt64}},
			Seconds: math.MinInt64,
		}, def},
	}
	// And what the accumulator makes of real windows, at every level.
	ws := manyWindowsTB(tb)
	for _, l := range []Level{LevelService, LevelInstance, LevelRegion} {
		acc := NewGraphAccumulator(GraphQuery{Level: l}, def)
		for _, w := range ws {
			acc.Add(w)
		}
		cases = append(cases, graphCase{"accumulated " + l.String(), acc.Result(), def})
	}
	return cases
}

// manyWindowsTB is manyWindows for any testing.TB.
func manyWindowsTB(tb testing.TB) []*Window {
	if t, ok := tb.(*testing.T); ok {
		return manyWindows(t)
	}
	return graphWindows()
}

// wireLatencyCases covers the latency encoding's features.
func wireLatencyCases(tb testing.TB) []latencyCase {
	r := rand.New(rand.NewPCG(3, 4))
	def := DefaultGeometry()
	small := Geometry{Digits: 1, MaxValue: int64(time.Millisecond), MaxExemplars: 1}
	cases := []latencyCase{
		{"empty", &Latency{}, def},
		{"total only", &Latency{Total: *randomRollup(r, def, 100)}, def},
		{"series", &Latency{Total: *randomRollup(r, def, 100), Series: []LatencyStep{
			{Start: -10, Rollup: *randomRollup(r, def, 10)}, {Start: 0, Rollup: Rollup{}}, {Start: 1_700_000_000, Rollup: *fullRollup(def)},
		}}, def},
		{"provisional", &Latency{Total: *randomRollup(r, def, 20), Provisional: 7}, def},
		{"provisional series", &Latency{Total: *randomRollup(r, small, 20), Provisional: 3, Series: []LatencyStep{
			{Start: 10, Rollup: *randomRollup(r, small, 10)}, {Start: 20, Rollup: *small.NewRollup()},
		}}, small},
	}
	ws := manyWindowsTB(tb)
	for _, q := range []LatencyQuery{{Service: "svc00"}, {Service: "svc03", Kind: KindAll, Step: 20}, {Source: "cart", Target: "postgres", Step: 10}} {
		acc := NewLatencyAccumulator(q, def)
		for _, w := range ws {
			acc.Add(w)
		}
		cases = append(cases, latencyCase{fmt.Sprintf("accumulated %+v", q), acc.Result(), def})
	}
	return cases
}

func TestGraphRoundTrip(t *testing.T) {
	for _, c := range wireGraphCases(t) {
		t.Run(c.name, func(t *testing.T) {
			before := AppendGraph(nil, c.g, c.geo)
			b := AppendGraph([]byte("prefix"), c.g, c.geo)[len("prefix"):]
			if !bytes.Equal(b, before) {
				t.Fatal("AppendGraph depends on dst")
			}
			g, geo, err := DecodeGraph(b)
			if err != nil {
				t.Fatal(err)
			}
			if geo != c.geo.normalized() {
				t.Errorf("geometry %+v, want %+v", geo, c.geo.normalized())
			}
			if d := graphDiff(c.g, g); d != "" {
				t.Errorf("decoded graph differs:\n%s", d)
			}
			if g.Nodes == nil || g.Edges == nil {
				t.Error("nil Nodes or Edges")
			}
			if again := AppendGraph(nil, g, geo); !bytes.Equal(again, b) {
				t.Error("re-encoding the decoded graph differs")
			}
			if again := AppendGraph(nil, c.g, c.geo); !bytes.Equal(again, b) {
				t.Error("encoding is not deterministic or modified the graph")
			}
		})
	}
}

func TestLatencyRoundTrip(t *testing.T) {
	for _, c := range wireLatencyCases(t) {
		t.Run(c.name, func(t *testing.T) {
			b := AppendLatency(nil, c.l, c.geo)
			l, geo, err := DecodeLatency(b)
			if err != nil {
				t.Fatal(err)
			}
			if geo != c.geo.normalized() {
				t.Errorf("geometry %+v, want %+v", geo, c.geo.normalized())
			}
			if d := latencyDiff(c.l, l); d != "" {
				t.Errorf("decoded latency differs:\n%s", d)
			}
			if (c.l.Series == nil) != (l.Series == nil) {
				t.Errorf("series nil: %v, want %v", l.Series == nil, c.l.Series == nil)
			}
			if again := AppendLatency(nil, l, geo); !bytes.Equal(again, b) {
				t.Error("re-encoding the decoded latency differs")
			}
		})
	}
}

// TestWireStringTable checks that node IDs repeated by edges are written
// once.
func TestWireStringTable(t *testing.T) {
	id := strings.Repeat("x", 1000)
	g := &Graph{Nodes: []GraphNode{{ID: id}}}
	for range 10 {
		g.Edges = append(g.Edges, GraphEdge{Source: id, Target: id})
	}
	if n := len(AppendGraph(nil, g, Geometry{})); n > 1300 {
		t.Errorf("%d bytes: node IDs are not shared", n)
	}
}

// randomGraph returns a graph as accumulators and merges make them:
// nodes with unique IDs sorted, edges with unique (source, target)
// sorted, virtual nodes and the edges into them, and rollups of every
// shape (zero ones with a nil histogram and no exemplar cap included).
func randomGraph(r *rand.Rand, geo Geometry) *Graph {
	rollup := func() Rollup {
		if r.IntN(6) == 0 {
			return Rollup{}
		}
		return *randomRollup(r, geo, r.IntN(40))
	}
	g := &Graph{Seconds: r.Int64N(1000)}
	virtual := map[string]bool{}
	for i := range 12 {
		if r.IntN(3) == 0 {
			continue
		}
		n := GraphNode{ID: fmt.Sprintf("n%02d", i), Virtual: r.IntN(4) == 0, Requests: rollup()}
		if !n.Virtual {
			n.Region = []string{"", "eu", "us"}[r.IntN(3)]
			n.Service = []string{"", "svc-a", "svc-b"}[r.IntN(3)]
			n.Spans, n.SpanErrors = int64(r.IntN(100)), int64(r.IntN(5))
		}
		if r.IntN(2) == 0 {
			n.Namespace = "ns"
		}
		virtual[n.ID] = n.Virtual
		g.Nodes = append(g.Nodes, n)
	}
	for _, s := range g.Nodes {
		for _, t := range g.Nodes {
			if r.IntN(4) == 0 {
				g.Edges = append(g.Edges, GraphEdge{Source: s.ID, Target: t.ID, Virtual: virtual[t.ID], Calls: rollup(), Provisional: int64(r.IntN(3))})
			}
		}
	}
	return g
}

// TestGraphMergeDecoded checks that merging decoded graphs gives exactly
// what merging the originals gives: the rollups' merge state survives
// the encoding. The graphs come from the accumulator (random splits of
// windows, as TestGraphMerge) and from randomGraph.
func TestGraphMergeDecoded(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	roundTrip := func(g *Graph, geo Geometry) *Graph {
		t.Helper()
		d, _, err := DecodeGraph(AppendGraph(nil, g, geo))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	check := func(what string, a, b *Graph, geo Geometry) {
		t.Helper()
		da, db := roundTrip(a, geo), roundTrip(b, geo)
		a.Merge(b)
		da.Merge(db)
		if d := graphDiff(a, da); d != "" {
			t.Fatalf("%s: merged decoded graphs differ from merged originals:\n%s", what, d)
		}
	}
	def := DefaultGeometry()
	ws := manyWindows(t)
	for _, q := range []GraphQuery{{}, {Level: LevelInstance}, {Level: LevelZone}, {Operation: "serve"}} {
		for split := range 5 {
			a, b := NewGraphAccumulator(q, def), NewGraphAccumulator(q, def)
			for _, w := range ws {
				if r.IntN(2) == 0 {
					a.Add(w)
				} else {
					b.Add(w)
				}
			}
			check(fmt.Sprintf("query %+v, split %d", q, split), a.Result(), b.Result(), def)
		}
	}
	for _, geo := range []Geometry{def, {Digits: 3, MaxValue: int64(time.Second), MaxExemplars: 2}} {
		for i := range 50 {
			check(fmt.Sprintf("random graphs %d, geometry %+v", i, geo), randomGraph(r, geo), randomGraph(r, geo), geo)
		}
	}
}

// TestRollupMergeDecoded merges decoded rollups of different exemplar
// caps, in both orders and into zero rollups, against the originals.
func TestRollupMergeDecoded(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	def := DefaultGeometry()
	roundTrip := func(ro *Rollup) *Rollup {
		t.Helper()
		l, _, err := DecodeLatency(AppendLatency(nil, &Latency{Total: *ro}, def))
		if err != nil {
			t.Fatal(err)
		}
		return &l.Total
	}
	shapes := []func() *Rollup{
		func() *Rollup { return &Rollup{} },
		func() *Rollup { return def.NewRollup() },
		func() *Rollup { return randomRollup(r, def, 30) },
		func() *Rollup { return randomRollup(r, Geometry{MaxExemplars: 2}, 30) },
		func() *Rollup { return randomRollup(r, Geometry{MaxExemplars: 9}, 30) },
		func() *Rollup { return fullRollup(def) },
	}
	for i, mx := range shapes {
		for j, my := range shapes {
			x, y := mx(), my()
			dx, dy := roundTrip(x), roundTrip(y)
			x.Merge(y)
			dx.Merge(dy)
			if d := rollupDiff(x, dx); d != "" {
				t.Errorf("shapes %d, %d: %s", i, j, d)
			}
			// And once more, so that the merged caps and spread bands count.
			z := randomRollup(r, def, 20)
			dz := roundTrip(z)
			x.Merge(z)
			dx.Merge(dz)
			if d := rollupDiff(x, dx); d != "" {
				t.Errorf("shapes %d, %d, then another: %s", i, j, d)
			}
		}
	}
}

// Builders of hostile encodings.
var (
	wuv = binary.AppendUvarint
	wsv = binary.AppendVarint
)

func wcat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// wireHdr is a header of the default geometry.
func wireHdr(tag byte) []byte { return appendWireHeader(nil, tag, DefaultGeometry()) }

// wireRoll is a rollup with flags, count and (delta, count) bucket pairs.
func wireRoll(flags byte, count int64, pairs ...uint64) []byte {
	body := wuv(nil, uint64(len(pairs)/2))
	for _, p := range pairs {
		body = wuv(body, p)
	}
	body = append(body, 0, 0, 0, 0, 0) // exemplar lists, retried, failed bands
	return wcat([]byte{flags}, wsv(nil, count), wsv(nil, 0), wsv(nil, 0), wuv(nil, uint64(len(body))), body)
}

// wireGraph is a graph of seconds 0 and the strings "a", "b".
func wireGraph(nodes, edges [][]byte) []byte {
	return wcat(wireHdr('G'), []byte{0, 2, 1, 'a', 1, 'b'}, wuv(nil, uint64(len(nodes))), wcat(nodes...), wuv(nil, uint64(len(edges))), wcat(edges...))
}

func wireNode(flags byte, roll []byte) []byte { return wcat([]byte{0, 1, 1, 1, flags, 0, 0}, roll) }

func TestDecodeWireErrors(t *testing.T) {
	for _, c := range wireGraphCases(t)[:9] {
		valid := AppendGraph(nil, c.g, c.geo)
		for n := range len(valid) {
			if _, _, err := DecodeGraph(valid[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("graph %s truncated to %d bytes: err = %v", c.name, n, err)
			}
		}
	}
	for _, c := range wireLatencyCases(t)[:5] {
		valid := AppendLatency(nil, c.l, c.geo)
		for n := range len(valid) {
			if _, _, err := DecodeLatency(valid[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("latency %s truncated to %d bytes: err = %v", c.name, n, err)
			}
		}
	}

	okRoll := wireRoll(wireHist, 2, 5, 2)
	okGraph := wireGraph([][]byte{wireNode(0, okRoll)}, [][]byte{wcat([]byte{0, 1, 1, 0}, okRoll)})
	if g, _, err := DecodeGraph(okGraph); err != nil || len(g.Nodes) != 1 || g.Nodes[0].Requests.Hist.TotalCount() != 2 {
		t.Fatalf("builder's valid graph: %+v, %v", g, err)
	}
	okLatency := wcat(wireHdr('L'), []byte{0}, okRoll, []byte{1, 20}, okRoll)
	if l, _, err := DecodeLatency(okLatency); err != nil || len(l.Series) != 1 || l.Series[0].Start != 10 {
		t.Fatalf("builder's valid latency: %+v, %v", l, err)
	}
	geoHdr := func(tag, version, digits byte, maxValue uint64, maxEx byte) []byte {
		return wcat([]byte{tag, version, digits}, wuv(nil, maxValue), []byte{maxEx})
	}
	emptyGraph := []byte{0, 0, 0, 0}
	window := AppendWindow(nil, sampleWindows(t)[1])
	cases := []struct {
		name    string
		latency bool
		b       []byte
		want    string // in the error message
	}{
		{"empty", false, nil, "unexpected end"},
		{"window as graph", false, window, "tag 0x4"},
		{"latency as graph", false, okLatency, "tag 0x4c"},
		{"graph as latency", true, okGraph, "tag 0x47"},
		{"version 0", false, wcat(geoHdr('G', 0, 2, 1000, 5), emptyGraph), "version 0"},
		{"version 2", true, wcat(geoHdr('L', 2, 2, 1000, 5), []byte{0}, wireRoll(0, 0), []byte{0}), "version 2"},
		{"digits 0", false, wcat(geoHdr('G', 1, 0, 1000, 5), emptyGraph), "geometry"},
		{"digits 6", false, wcat(geoHdr('G', 1, 6, 1000, 5), emptyGraph), "geometry"},
		{"max value 1", false, wcat(geoHdr('G', 1, 2, 1, 5), emptyGraph), "geometry"},
		{"max value beyond int64", false, wcat(geoHdr('G', 1, 2, 1<<63, 5), emptyGraph), "geometry"},
		{"zero exemplars", true, wcat(geoHdr('L', 1, 2, 1000, 0), []byte{0}, wireRoll(0, 0), []byte{0}), "geometry"},
		{"trailing bytes", false, append(slices.Clone(okGraph), 0), "trailing"},
		{"latency trailing bytes", true, append(slices.Clone(okLatency), 0), "trailing"},
		{"string count too large", false, wcat(wireHdr('G'), []byte{0}, wuv(nil, 1<<40)), "string count"},
		{"string length too large", false, wcat(wireHdr('G'), []byte{0, 1, 100, 'a'}), "string length"},
		{"node count too large", false, wcat(wireHdr('G'), []byte{0, 0}, wuv(nil, 1<<20)), "node count"},
		{"edge count too large", false, wcat(wireHdr('G'), []byte{0, 0, 0, 100}), "edge count"},
		{"step count too large", true, wcat(wireHdr('L'), []byte{0}, wireRoll(0, 0), []byte{100}), "step count"},
		{"string index out of range", false, wireGraph([][]byte{wcat([]byte{0, 1, 1, 2, 0, 0, 0}, okRoll)}, nil), "string index 2"},
		{"node flags", false, wireGraph([][]byte{wireNode(2, okRoll)}, nil), "node flags"},
		{"edge flags", false, wireGraph(nil, [][]byte{wcat([]byte{0, 1, 3, 0}, okRoll)}), "edge flags"},
		{"rollup flags", false, wireGraph([][]byte{wireNode(0, wireRoll(8, 0))}, nil), "rollup flags"},
		{"both cap flags", false, wireGraph([][]byte{wireNode(0, wireRoll(wireCapUnset|wireCapOwn, 0))}, nil), "rollup flags"},
		{"own cap 0", true, wcat(wireHdr('L'), []byte{0, wireCapOwn, 0}, wireRoll(0, 0)[1:], []byte{0}), "exemplar cap 0"},
		{"buckets of a nil histogram", false, wireGraph([][]byte{wireNode(0, wireRoll(0, 2, 5, 2))}, nil), "nil histogram"},
		{"negative count", true, wcat(wireHdr('L'), []byte{0}, wireRoll(wireHist, -1), []byte{0}), "negative count"},
		{"zero bucket count", true, wcat(wireHdr('L'), []byte{0}, wireRoll(wireHist, 1, 5, 0), []byte{0}), "bucket count 0"},
	}
	for _, c := range cases {
		var err error
		if c.latency {
			_, _, err = DecodeLatency(c.b)
		} else {
			_, _, err = DecodeGraph(c.b)
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want ErrCorrupt with %q", c.name, err, c.want)
		}
	}
	// Windows do not take graphs and latencies either.
	for _, b := range [][]byte{okGraph, okLatency} {
		if _, err := DecodeWindow(b, DefaultGeometry()); !errors.Is(err, ErrCorrupt) {
			t.Errorf("DecodeWindow(%q…): err = %v", b[:1], err)
		}
	}
	// A bucket above the maximum, with the histogram flag: clamped, as in windows.
	l, _, err := DecodeLatency(wcat(geoHdr('L', 1, 2, 1000, 5), []byte{0}, wireRoll(wireHist, 1, 5000, 1), []byte{0}))
	if err != nil || l.Total.Clamped != 1 || l.Total.Hist.TotalCount() != 1 || l.Total.Hist.Max() < 1000 || l.Total.Hist.Max() > 1010 {
		t.Errorf("bucket above the maximum: %+v, %v", l, err)
	}
}

// TestWireRollupMin checks the smallest rollup the decoders' count
// bounds assume.
func TestWireRollupMin(t *testing.T) {
	b, _ := appendWireRollup(nil, &Rollup{maxExemplars: 5}, DefaultGeometry(), nil)
	if len(b) != wireRollupMin {
		t.Errorf("smallest rollup: %d bytes, wireRollupMin is %d", len(b), wireRollupMin)
	}
	g := AppendGraph(nil, &Graph{Nodes: []GraphNode{{Requests: Rollup{maxExemplars: 5}}}}, DefaultGeometry())
	if n := len(g) - len(AppendGraph(nil, &Graph{}, DefaultGeometry())) - 1; n != wireNodeMin { // and the empty string
		t.Errorf("smallest node: %d bytes, wireNodeMin is %d", n, wireNodeMin)
	}
}

// FuzzDecodeGraph checks that DecodeGraph never panics, that its errors
// wrap ErrCorrupt, and that what it accepts re-encodes to a fixed point.
func FuzzDecodeGraph(f *testing.F) {
	for _, c := range wireGraphCases(f) {
		if len(c.g.Nodes) <= 20 {
			f.Add(AppendGraph(nil, c.g, c.geo))
		}
	}
	f.Add(wireGraph([][]byte{wireNode(0, wireRoll(wireHist, 2, 5, 2))}, [][]byte{wcat([]byte{0, 1, 1, 0}, wireRoll(wireCapOwn, 1))}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		g, geo, err := DecodeGraph(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		b1 := AppendGraph(nil, g, geo)
		g1, geo1, err := DecodeGraph(b1)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if geo1 != geo {
			t.Fatalf("geometry %+v, then %+v", geo, geo1)
		}
		if d := graphDiff(g, g1); d != "" {
			t.Fatalf("re-decoded graph differs:\n%s", d)
		}
		if b2 := AppendGraph(nil, g1, geo1); !bytes.Equal(b1, b2) {
			t.Fatalf("not a fixed point:\n%x\n%x", b1, b2)
		}
	})
}

// FuzzDecodeLatency is FuzzDecodeGraph for latencies.
func FuzzDecodeLatency(f *testing.F) {
	for _, c := range wireLatencyCases(f) {
		f.Add(AppendLatency(nil, c.l, c.geo))
	}
	f.Add(wcat(wireHdr('L'), []byte{4, wireCapOwn | wireHist, 3}, wireRoll(wireHist, 2, 5, 2)[1:], []byte{1, 20}, wireRoll(wireCapUnset, 1)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		l, geo, err := DecodeLatency(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		b1 := AppendLatency(nil, l, geo)
		l1, geo1, err := DecodeLatency(b1)
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if geo1 != geo {
			t.Fatalf("geometry %+v, then %+v", geo, geo1)
		}
		if d := latencyDiff(l, l1); d != "" {
			t.Fatalf("re-decoded latency differs:\n%s", d)
		}
		if b2 := AppendLatency(nil, l1, geo1); !bytes.Equal(b1, b2) {
			t.Fatalf("not a fixed point:\n%x\n%x", b1, b2)
		}
	})
}

// BenchmarkAppendDecodeGraph encodes and decodes a graph of 200 nodes and
// 1,000 edges whose rollups hold 200 spans of a multi-modal distribution
// and their exemplars.
func BenchmarkAppendDecodeGraph(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 11))
	geo := DefaultGeometry()
	vals := multiModal(r, 200, 0.8, 0.15)
	fill := func() Rollup {
		ro := geo.NewRollup()
		for _, v := range vals {
			ro.Record(v, r.IntN(50) == 0, Exemplar{TraceID: [16]byte{byte(r.Uint32()), byte(r.Uint32()), 1}, Time: r.Int64N(1 << 40)})
		}
		return *ro
	}
	g := &Graph{Seconds: 3600}
	for i := range 200 {
		g.Nodes = append(g.Nodes, GraphNode{ID: fmt.Sprintf("shop/svc%03d", i), Namespace: "shop", Region: fmt.Sprintf("r%d", i%3),
			Requests: fill(), Spans: 400, SpanErrors: 4})
	}
	for e := range 1000 {
		g.Edges = append(g.Edges, GraphEdge{Source: g.Nodes[e%200].ID, Target: g.Nodes[(e*7+1+e/200)%200].ID, Calls: fill()})
	}
	enc := AppendGraph(nil, g, geo)
	nodes := float64(len(g.Nodes))
	rollups := float64(len(g.Nodes) + len(g.Edges))
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		buf := make([]byte, 0, len(enc))
		for b.Loop() {
			buf = AppendGraph(buf[:0], g, geo)
		}
		b.ReportMetric(float64(len(enc))/rollups, "B/rollup")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nodes, "ns/node")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, _, err := DecodeGraph(enc); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rollups, "ns/rollup")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nodes, "ns/node")
	})
}
