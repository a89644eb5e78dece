package promexport

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// BenchmarkScrape measures one exposition of a real store holding five
// minutes of traffic between services (each calls the next, each serves
// ops operations and has a client operation per callee), the steady state
// between two folds. Compare runs with
//
//	go test -run=^$ -bench=Scrape -count=6 ./query/promexport > new.txt
//	benchstat old.txt new.txt
func BenchmarkScrape(b *testing.B) {
	for _, c := range []struct{ services, ops int }{{10, 4}, {40, 8}} {
		b.Run(fmt.Sprintf("services=%d/ops=%d", c.services, c.ops), func(b *testing.B) {
			clk := newClock(t0)
			db := openStore(b, clk, nil)
			h := NewHandler(Options{Store: db, Now: clk.Now})
			clk.advance(5*time.Minute + 30*time.Second)
			const traces = 20000
			var batch []span
			for i := range traces {
				caller, callee := i%c.services, (i+1)%c.services
				start := t0.Add(time.Duration(i) * 5 * time.Minute / traces)
				d := time.Duration(1+i%97) * time.Millisecond
				id := uint64(i) * 4
				batch = append(batch,
					span{service: fmt.Sprintf("svc-%02d", caller), name: fmt.Sprintf("op-%d", i%c.ops), kind: tracepb.Span_SPAN_KIND_SERVER,
						start: start, dur: d + 2*time.Millisecond, err: i%50 == 0, trace: uint64(i), id: id + 1},
					span{service: fmt.Sprintf("svc-%02d", caller), name: fmt.Sprintf("call svc-%02d", callee), kind: tracepb.Span_SPAN_KIND_CLIENT,
						start: start.Add(time.Millisecond), dur: d, trace: uint64(i), id: id + 2, pid: id + 1},
					span{service: fmt.Sprintf("svc-%02d", callee), name: fmt.Sprintf("op-%d", (i/7)%c.ops), kind: tracepb.Span_SPAN_KIND_SERVER,
						start: start.Add(1100 * time.Microsecond), dur: d - 200*time.Microsecond, trace: uint64(i), id: id + 3, pid: id + 2},
				)
				if len(batch) >= 3000 {
					write(b, db, batch...)
					batch = batch[:0]
				}
			}
			write(b, db, batch...)
			series := seriesCount(scrapeBody(b, h)) // also settles the first fold
			req := httptest.NewRequest(http.MethodGet, "/api/v1/prometheus/metrics", nil)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/scrape")
			b.ReportMetric(float64(series)*float64(b.N)/elapsed.Seconds(), "series/s")
			b.ReportMetric(float64(series), "series")
		})
	}
}

// BenchmarkWrite measures the text rendering alone of 100,000 series
// (5,263 operations of 19 series).
func BenchmarkWrite(b *testing.B) {
	def := DefaultOptions()
	bounds := make([]int64, len(def.Buckets))
	for i, d := range def.Buckets {
		bounds[i] = int64(d)
	}
	w := newWriter(bounds, def.Quantiles)
	snap := &snapshot{origin: t0.Unix()}
	per := 2 + len(bounds) + 1 + 2 + len(def.Quantiles)
	for i := range 100000 / per {
		a := newAcc(len(bounds))
		for j := range a.bins {
			a.bins[j] = int64(i + j)
		}
		a.requests, a.errors, a.sum = int64(i)*20, int64(i), float64(i)*1e9
		snap.entities = append(snap.entities, exposed{
			ent: entity{kind: entityOperation, a: fmt.Sprintf("service-%03d", i/50), b: fmt.Sprintf("GET /api/v1/items/{id}/op%d", i%50), c: "server"},
			s:   a.cumulative(), q: []float64{0.012, 0.045, 0.5},
		})
	}
	series := metaSeries + per*len(snap.entities)
	var buf []byte
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		buf = w.write(buf[:0], snap)
	}
	elapsed := time.Since(start)
	b.SetBytes(int64(len(buf)))
	b.ReportMetric(float64(series)*float64(b.N)/elapsed.Seconds(), "series/s")
}
