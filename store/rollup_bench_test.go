package store

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// BenchmarkFlowGraph24h measures the flow-graph query over 24 hours of
// rollups for 100 services and 300 call edges, with traffic in every minute,
// flushed and compacted as a running collector would. Reports the p50 and
// p99 query time (target p99 ≤ 50 ms):
//
//	go test -run=^$ -bench=FlowGraph24h -benchtime=50x ./store
func BenchmarkFlowGraph24h(b *testing.B) {
	const services, edges = 100, 300
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	now := start
	db, err := Open(b.TempDir(), Options{CheckpointInterval: time.Hour, RetentionInterval: time.Hour,
		RollupFlushInterval: time.Hour, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	mesh := otlptest.NewMesh(services, edges, start, 1)
	for minute := 0; minute < 24*60; minute++ {
		req := &coltracepb.ExportTraceServiceRequest{}
		for _, call := range mesh.Minute(minute) {
			req.ResourceSpans = append(req.ResourceSpans, call[0], call[1])
		}
		raw, _ := proto.Marshal(req)
		if _, err := db.WriteTraces(context.Background(), raw); err != nil {
			b.Fatal(err)
		}
		now = start.Add(time.Duration(minute+1) * time.Minute)
		if err := db.flushRollups(true); err != nil {
			b.Fatal(err)
		}
		if minute%10 == 9 {
			if err := db.compactRollups(); err != nil {
				b.Fatal(err)
			}
		}
	}
	now = start.Add(24*time.Hour + 30*time.Second)
	if err := db.flushRollups(true); err != nil {
		b.Fatal(err)
	}
	if err := db.compactRollups(); err != nil {
		b.Fatal(err)
	}
	// A running collector checkpoints its in-memory index every 10 s; do
	// so here too, so that the heap (and GC work) is that of steady state.
	if err := db.checkpoint(); err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	from, to := now.Add(-24*time.Hour), now
	q := aggregate.GraphQuery{Level: aggregate.LevelService}
	g, err := db.FlowGraph(context.Background(), from, to, q)
	if err != nil {
		b.Fatal(err)
	}
	if len(g.Edges) != edges || len(g.Nodes) < services-5 {
		b.Fatalf("graph has %d nodes, %d edges", len(g.Nodes), len(g.Edges))
	}
	// Cold queries merge all 24 hours (as after a late write into a closed
	// hour invalidates the cached merge); warm ones merge the cached closed
	// hours with the last two.
	var cold []time.Duration
	for range 20 {
		db.oldWrites.Add(1)
		t := time.Now()
		if _, err := db.FlowGraph(context.Background(), from, to, q); err != nil {
			b.Fatal(err)
		}
		cold = append(cold, time.Since(t))
	}
	slices.Sort(cold)
	var times []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t := time.Now()
		if _, err := db.FlowGraph(context.Background(), from, to, q); err != nil {
			b.Fatal(err)
		}
		times = append(times, time.Since(t))
	}
	slices.Sort(times)
	b.ReportMetric(float64(cold[len(cold)/2].Microseconds())/1000, "cold-p50-ms")
	b.ReportMetric(float64(cold[len(cold)-1].Microseconds())/1000, "cold-max-ms")
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
	b.Logf("p90 %v p95 %v max %v", times[len(times)*90/100], times[len(times)*95/100], times[len(times)-1])
}
