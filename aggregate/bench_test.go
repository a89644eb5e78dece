package aggregate

// Benchmarks in domain units. Compare runs with
//
//	go test ./aggregate -run '^$' -bench . -count 6 | tee new.txt
//	benchstat old.txt new.txt

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/otlpwire"
)

// applyLoad is a pool of parsed requests whose trace IDs are renewed on
// every pass, so that the pairing state sees fresh traces forever.
type applyLoad struct {
	reqs  []*otlpwire.Traces
	spans int
	pass  uint64
}

func (l *applyLoad) renew() {
	l.pass++
	for _, t := range l.reqs {
		for i := range t.Spans {
			t.Spans[i].TraceID[0] = byte(l.pass)
			t.Spans[i].TraceID[1] = byte(l.pass >> 8)
		}
	}
}

// applier returns a function that applies every request of l to a as the
// next chunks, committed step ns apart, then expires and flushes as the
// store does every second.
func (l *applyLoad) applier(a *Aggregator, step int64) func() {
	var seq uint64
	commit := t0.UnixNano()
	return func() {
		for _, t := range l.reqs {
			seq++
			commit += step
			a.Apply(seq, commit, t)
		}
		a.Expire(commit)
		a.Flush()
	}
}

func telemetrygenLoad(b *testing.B, n, perReq int) *applyLoad {
	r := rand.New(rand.NewPCG(1, 2))
	l := &applyLoad{}
	for range n {
		t := parse(b, otlptest.TelemetrygenRequest(r, perReq, t0))
		l.reqs = append(l.reqs, t)
		l.spans += len(t.Spans)
	}
	return l
}

// pairedLoad is traffic of CLIENT/SERVER pairs across 20 services, each
// request holding complete traces.
func pairedLoad(b *testing.B, n, perReq int) *applyLoad {
	l := &applyLoad{}
	for i := range n {
		ds := otlptest.Generate(otlptest.Options{Traces: perReq / 8, Services: 20, SpansPerTrace: 8, Start: t0, Seed: uint64(i + 1)})
		for _, td := range ds.Requests[1:] {
			ds.Requests[0].ResourceSpans = append(ds.Requests[0].ResourceSpans, td.ResourceSpans...)
		}
		t := parse(b, ds.Requests[0])
		l.reqs = append(l.reqs, t)
		l.spans += len(t.Spans)
	}
	return l
}

// BenchmarkApply measures Apply on the commit path, with Expire and Flush
// every simulated second as the store calls them, at 100,000 spans per
// simulated second. The steady state (after 15 simulated seconds) holds
// PairWait's worth of pairing state.
func BenchmarkApply(b *testing.B) {
	for _, c := range []struct {
		name string
		load func(*testing.B, int, int) *applyLoad
	}{
		{"telemetrygen", telemetrygenLoad},
		{"paired", pairedLoad},
	} {
		b.Run(c.name, func(b *testing.B) {
			const perReq = 200
			l := c.load(b, 500, perReq) // 100k spans: 1 simulated second
			spansPerReq := l.spans / len(l.reqs)
			step := int64(time.Second) * int64(spansPerReq) / 100_000
			a := New(DefaultOptions())
			apply := l.applier(a, step)
			for range 15 {
				l.renew()
				apply()
			}
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			spans := 0
			for b.Loop() {
				b.StopTimer()
				l.renew()
				b.StartTimer()
				apply()
				spans += l.spans
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(spans), "ns/span")
			st := a.Stats()
			b.ReportMetric(float64(st.PendingClients+st.PendingServers+st.RememberedParents), "pending")
		})
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkRollupMemory reports the memory of an active series: a Rollup
// (PackedHistogram, exemplars) held in an open window's map, after n spans
// of a multi-modal latency distribution (≈1 ms, ≈5 ms, ≈50 ms modes).
func BenchmarkRollupMemory(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		b.Run(fmt.Sprintf("spans=%d", n), func(b *testing.B) {
			series := min(2000, 2_000_000/n)
			r := rand.New(rand.NewPCG(5, 5))
			vals := multiModal(r, n, 0.8, 0.15)
			g := DefaultGeometry()
			var perSeries, buckets float64
			for b.Loop() {
				before := heapInUse()
				m := make(map[seriesID]*Rollup, series)
				for i := range series {
					ro := g.NewRollup()
					for j, v := range vals {
						ro.Record(v, false, Exemplar{TraceID: [16]byte{byte(j), 1}, Time: int64(j)})
					}
					m[seriesID{node: uint32(i)}] = ro
				}
				perSeries = float64(heapInUse()-before) / float64(series)
				buckets = float64(m[seriesID{}].Hist.Populated())
				runtime.KeepAlive(m)
			}
			b.ReportMetric(perSeries, "B/series")
			b.ReportMetric(buckets, "buckets/series")
		})
	}
}

// BenchmarkPendingMemory reports the memory of the pairing state per
// pending entry (client halves waiting for their PairWait).
func BenchmarkPendingMemory(b *testing.B) {
	l := telemetrygenLoad(b, 500, 200)
	var perEntry float64
	for b.Loop() {
		before := heapInUse()
		a := New(DefaultOptions())
		for i, t := range l.reqs {
			a.Apply(uint64(i+1), t0.UnixNano(), t)
		}
		a.Flush()
		st := a.Stats()
		n := st.PendingClients + st.PendingServers + st.RememberedParents
		perEntry = float64(heapInUse()-before) / float64(n)
		runtime.KeepAlive(a)
	}
	b.ReportMetric(perEntry, "B/entry")
}

// graphBenchWindows builds 24 windows (24 h of 1-hour tiers) of 100
// services with 3 operations each and about 300 edges.
func graphBenchWindows() []*Window {
	r := rand.New(rand.NewPCG(9, 9))
	g := DefaultGeometry()
	vals := multiModal(r, 200, 0.8, 0.15)
	fill := func() *Rollup {
		ro := g.NewRollup()
		for _, v := range vals {
			ro.Record(v, r.IntN(50) == 0, Exemplar{TraceID: [16]byte{byte(r.Uint32()), 1}})
		}
		return ro
	}
	nodes := make([]Node, 100)
	for i := range nodes {
		nodes[i] = Node{Service: fmt.Sprintf("svc%03d", i), Instance: fmt.Sprintf("svc%03d-0", i), Zone: fmt.Sprintf("z%d", i%6), Region: fmt.Sprintf("r%d", i%3)}
	}
	var ws []*Window
	for h := range 24 {
		w := NewWindow(int64(1_700_000_000+h*3600), 3600)
		for _, n := range nodes {
			for op := range 3 {
				w.Series[SeriesKey{Node: n, Operation: fmt.Sprintf("op%d", op), Kind: kindServer}] = fill()
				w.Series[SeriesKey{Node: n, Operation: fmt.Sprintf("call%d", op), Kind: kindClient}] = fill()
			}
		}
		for e := range 300 {
			src, dst := nodes[e%100], nodes[(e*7+1+e/100)%100]
			w.Edges[EdgeKey{Source: src, Target: dst, Operation: fmt.Sprintf("call%d", e/100)}] = fill()
		}
		ws = append(ws, w)
	}
	return ws
}

// BenchmarkGraphAccumulator merges 24 windows × 100 services × ~300 edges
// into a service-level flow graph (a 24-hour query on hourly rollups):
// "windows" from decoded windows (Add), "encoded" straight from their
// encoding (AddEncoded), which includes the decoding.
func BenchmarkGraphAccumulator(b *testing.B) {
	ws := graphBenchWindows()
	var enc [][]byte
	for _, w := range ws {
		enc = append(enc, AppendWindow(nil, w))
	}
	check := func(b *testing.B, g *Graph) {
		if len(g.Nodes) != 100 || len(g.Edges) == 0 {
			b.Fatalf("%d nodes %d edges", len(g.Nodes), len(g.Edges))
		}
	}
	b.Run("windows", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc := NewGraphAccumulator(GraphQuery{}, DefaultGeometry())
			for _, w := range ws {
				acc.Add(w)
			}
			check(b, acc.Result())
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/graph")
	})
	b.Run("decode+windows", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc := NewGraphAccumulator(GraphQuery{}, DefaultGeometry())
			for _, e := range enc {
				w, err := DecodeWindow(e, DefaultGeometry())
				if err != nil {
					b.Fatal(err)
				}
				acc.Add(w)
			}
			check(b, acc.Result())
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/graph")
	})
	b.Run("encoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			acc := NewGraphAccumulator(GraphQuery{}, DefaultGeometry())
			for _, e := range enc {
				if err := acc.AddEncoded(e); err != nil {
					b.Fatal(err)
				}
			}
			check(b, acc.Result())
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/graph")
	})
}

// BenchmarkWindowEncoding encodes and decodes one of the windows above
// (600 series, 300 edges).
func BenchmarkWindowEncoding(b *testing.B) {
	w := graphBenchWindows()[0]
	enc := AppendWindow(nil, w)
	rollups := float64(len(w.Series) + len(w.Edges))
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, len(enc))
		for b.Loop() {
			buf = AppendWindow(buf[:0], w)
		}
		b.ReportMetric(float64(len(enc))/rollups, "B/rollup")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := DecodeWindow(enc, DefaultGeometry()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rollups, "ns/rollup")
	})
}

// BenchmarkLive measures what a query pays for the provisional calls:
// Live over 100,000 held clients that name an uninstrumented callee (20
// service → database edges in 5 windows), with no new client since the
// previous query ("steady": the cost of the summary's 100 rollups) and
// with 1,000 new ones ("scan": they are added to the summary first; Apply
// is not timed).
func BenchmarkLive(b *testing.B) {
	const perReq = 1000
	mk := func(i int) *otlpwire.Traces {
		spans := make([]tspan, perReq)
		for j := range spans {
			spans[j] = tspan{svc: fmt.Sprintf("svc-%d", j%20), trace: uint64(i*perReq + j + 1), id: 1, name: "SELECT",
				kind: kClient, start: int64(j%5) * 10 * int64(time.Second), dur: int64(j%97+1) * ms,
				attrs: []kv{{"db.system", fmt.Sprintf("db-%d", j%10)}}}
		}
		return traces(b, spans...)
	}
	for _, c := range []struct {
		name string
		more bool
	}{{"steady", false}, {"scan", true}} {
		b.Run(c.name, func(b *testing.B) {
			a := New(DefaultOptions())
			var seq uint64
			for i := range 100 {
				seq++
				a.Apply(seq, t0.UnixNano(), mk(i))
			}
			a.Live(0, 1<<62)
			extra := mk(100)
			l := &applyLoad{reqs: []*otlpwire.Traces{extra}}
			b.ReportAllocs()
			for b.Loop() {
				if c.more {
					b.StopTimer()
					l.renew()
					seq++
					a.Apply(seq, t0.UnixNano(), extra)
					b.StartTimer()
				}
				a.Live(0, 1<<62)
			}
			_, prov := a.Live(0, 1<<62)
			var n int64
			for _, w := range prov {
				for _, r := range w.Edges {
					n += r.Count
				}
			}
			b.ReportMetric(float64(n), "provisional")
		})
	}
}

// BenchmarkState measures AppendState and LoadState (a clean stop's save
// and the next start's load) on the steady pairing state of 250,000 spans
// per simulated second of paired traffic (PairWait's worth of held halves
// and parents):
//
//	go test ./aggregate -run '^$' -bench State -benchtime 5x
func BenchmarkState(b *testing.B) {
	const perReq = 200
	l := pairedLoad(b, 1250, perReq) // 250k spans: 1 simulated second
	step := int64(time.Second) * int64(l.spans/len(l.reqs)) / 250_000
	a := New(DefaultOptions())
	apply := l.applier(a, step)
	for range 15 {
		l.renew()
		apply()
	}
	var state []byte
	var saveNs, loadNs int64
	for b.Loop() {
		start := time.Now()
		var err error
		if state, err = a.AppendState(state[:0]); err != nil {
			b.Fatal(err)
		}
		saveNs += time.Since(start).Nanoseconds()
		start = time.Now()
		if err := New(DefaultOptions()).LoadState(state); err != nil {
			b.Fatal(err)
		}
		loadNs += time.Since(start).Nanoseconds()
	}
	st := a.Stats()
	b.ReportMetric(float64(len(state))/(1<<20), "MiB")
	b.ReportMetric(float64(st.PendingClients+st.PendingServers), "held")
	b.ReportMetric(float64(st.RememberedParents), "parents")
	b.ReportMetric(float64(saveNs)/float64(b.N)/1e6, "save-ms")
	b.ReportMetric(float64(loadNs)/float64(b.N)/1e6, "load-ms")
}
