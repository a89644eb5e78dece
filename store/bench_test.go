package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// BenchmarkWriteTraces measures durable ingest through the store alone
// (parse, index, compress, group commit with fsync) with 16 concurrent
// writers of telemetrygen-like 512-span requests. Reports spans/s and bytes
// on disk per span. Compare runs with:
//
//	go test -run=^$ -bench=WriteTraces -count=6 ./store | benchstat -
func BenchmarkWriteTraces(b *testing.B) {
	for _, agg := range []bool{false, true} {
		b.Run(fmt.Sprintf("aggregation=%v", agg), func(b *testing.B) { benchmarkWriteTraces(b, !agg) })
	}
}

func benchmarkWriteTraces(b *testing.B, noAgg bool) {
	const spansPerReq = 512
	r := rand.New(rand.NewPCG(1, 2))
	reqs := make([][]byte, 64)
	for i := range reqs {
		reqs[i], _ = proto.Marshal(otlptest.TelemetrygenRequest(r, spansPerReq, time.Now()))
	}
	dir := b.TempDir()
	db, err := Open(dir, Options{DisableAggregation: noAgg})
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(8) // 16 writers on 2 cores
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := int(n.Add(1))
		for pb.Next() {
			res, err := db.WriteTraces(context.Background(), reqs[i%len(reqs)])
			if err != nil || res.Accepted != spansPerReq {
				b.Error(err, res)
				return
			}
			i++
		}
	})
	elapsed := time.Since(start)
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	spans := float64(b.N * spansPerReq)
	fi, _ := os.Stat(filepath.Join(dir, FileName))
	b.ReportMetric(spans/elapsed.Seconds(), "spans/s")
	b.ReportMetric(float64(fi.Size())/spans, "B/span")
	b.ReportMetric(float64(elapsed.Nanoseconds())/spans, "ns/span")
}

// BenchmarkTraceByID measures trace lookup by ID over a store holding many
// persisted segments and runs.
func BenchmarkTraceByID(b *testing.B) {
	dir := b.TempDir()
	db, err := Open(dir, Options{CheckpointInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	r := rand.New(rand.NewPCG(3, 4))
	var ids []TraceID
	for seg := 0; seg < 40; seg++ {
		for j := 0; j < 20; j++ {
			req := otlptest.TelemetrygenRequest(r, 512, time.Now())
			raw, _ := proto.Marshal(req)
			if _, err := db.WriteTraces(context.Background(), raw); err != nil {
				b.Fatal(err)
			}
			var id TraceID
			copy(id[:], req.ResourceSpans[0].ScopeSpans[0].Spans[0].TraceId)
			ids = append(ids, id)
		}
		if err := db.checkpoint(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := db.Trace(context.Background(), ids[i%len(ids)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
