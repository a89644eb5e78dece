package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// liveTraffic writes, for the second ending at now, one call per edge of
// a topology of services (a CLIENT and its SERVER child; the edges from
// the last service go to an uninstrumented "db", so they are virtual),
// some of them late (starting up to 40 s earlier) and some failing.
type liveTraffic struct {
	r        *rand.Rand
	res      []*resourcepb.Resource
	edges    [][2]int
	n        uint64
	services int
}

func newLiveTraffic(services, edges int) *liveTraffic {
	lt := &liveTraffic{r: rand.New(rand.NewPCG(7, 9)), services: services}
	for i := range services {
		lt.res = append(lt.res, &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			otlptest.Str("service.name", fmt.Sprintf("live-%03d", i))}})
	}
	for len(lt.edges) < edges {
		e := [2]int{lt.r.IntN(services), lt.r.IntN(services + 1)} // services = "db"
		if e[0] != e[1] && !slices.Contains(lt.edges, e) {
			lt.edges = append(lt.edges, e)
		}
	}
	return lt
}

func (lt *liveTraffic) request(now time.Time) []byte {
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, e := range lt.edges {
		lt.n++
		st := now.Add(-time.Duration(lt.r.IntN(1000)) * time.Millisecond)
		if lt.r.IntN(20) == 0 {
			st = st.Add(-time.Duration(lt.r.IntN(40)) * time.Second) // late
		}
		d := uint64(1e6 + lt.r.IntN(200e6))
		client := &tracepb.Span{TraceId: otlptest.TraceID(lt.n), SpanId: otlptest.SpanID(2 * lt.n), Name: "call",
			Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: uint64(st.UnixNano()), EndTimeUnixNano: uint64(st.UnixNano()) + d}
		if e[1] == lt.services {
			client.Attributes = []*commonpb.KeyValue{otlptest.Str("db.system", "postgresql"), otlptest.Str("server.address", "db")}
			req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{Resource: lt.res[e[0]],
				ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{client}}}})
			continue
		}
		server := &tracepb.Span{TraceId: client.TraceId, SpanId: otlptest.SpanID(2*lt.n + 1), ParentSpanId: client.SpanId,
			Name: "handle", Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: client.StartTimeUnixNano + 1000,
			EndTimeUnixNano: client.EndTimeUnixNano - 1000}
		if lt.r.IntN(10) == 0 {
			server.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}
		}
		req.ResourceSpans = append(req.ResourceSpans,
			&tracepb.ResourceSpans{Resource: lt.res[e[0]], ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{client}}}},
			&tracepb.ResourceSpans{Resource: lt.res[e[1]], ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{server}}}})
	}
	b, err := proto.Marshal(req)
	if err != nil {
		panic(err)
	}
	return b
}

// sameGraph fails unless a and b have the same nodes and edges with the
// same counts, errors, histograms (count, min, max, quantiles) and
// virtual flags.
func sameGraph(t *testing.T, phase string, a, b *aggregate.Graph) {
	t.Helper()
	sameRollup := func(what string, x, y *aggregate.Rollup) {
		t.Helper()
		if x.Count != y.Count || x.Errors != y.Errors || x.Clamped != y.Clamped {
			t.Fatalf("%s: %s: count/errors/clamped %d/%d/%d, want %d/%d/%d", phase, what, x.Count, x.Errors, x.Clamped, y.Count, y.Errors, y.Clamped)
		}
		if (x.Hist == nil) != (y.Hist == nil) {
			t.Fatalf("%s: %s: histogram presence differs", phase, what)
		}
		if x.Hist == nil {
			return
		}
		if x.Hist.TotalCount() != y.Hist.TotalCount() || x.Hist.Min() != y.Hist.Min() || x.Hist.Max() != y.Hist.Max() {
			t.Fatalf("%s: %s: histogram count/min/max %d/%d/%d, want %d/%d/%d", phase, what,
				x.Hist.TotalCount(), x.Hist.Min(), x.Hist.Max(), y.Hist.TotalCount(), y.Hist.Min(), y.Hist.Max())
		}
		for _, q := range []float64{10, 50, 90, 99, 99.9} {
			if x.Hist.ValueAtPercentile(q) != y.Hist.ValueAtPercentile(q) {
				t.Fatalf("%s: %s: p%v %d, want %d", phase, what, q, x.Hist.ValueAtPercentile(q), y.Hist.ValueAtPercentile(q))
			}
		}
	}
	if len(a.Nodes) != len(b.Nodes) || len(a.Edges) != len(b.Edges) {
		t.Fatalf("%s: %d nodes %d edges, want %d nodes %d edges", phase, len(a.Nodes), len(a.Edges), len(b.Nodes), len(b.Edges))
	}
	for i := range a.Nodes {
		x, y := &a.Nodes[i], &b.Nodes[i]
		if x.ID != y.ID || x.Virtual != y.Virtual || x.Spans != y.Spans || x.SpanErrors != y.SpanErrors || x.Region != y.Region {
			t.Fatalf("%s: node %+v, want %+v", phase, *x, *y)
		}
		sameRollup("node "+x.ID, &x.Requests, &y.Requests)
	}
	for i := range a.Edges {
		x, y := &a.Edges[i], &b.Edges[i]
		if x.Source != y.Source || x.Target != y.Target || x.Virtual != y.Virtual || x.Provisional != y.Provisional {
			t.Fatalf("%s: edge %s→%s (virtual %v, provisional %d), want %s→%s (%v, %d)", phase,
				x.Source, x.Target, x.Virtual, x.Provisional, y.Source, y.Target, y.Virtual, y.Provisional)
		}
		sameRollup("edge "+x.Source+"→"+x.Target, &x.Calls, &y.Calls)
	}
}

// TestRecentGraphMatchesFullMerge runs three minutes of live traffic with
// late spans, a flush every second and compaction every ten, and checks
// after every second that the incrementally extended 1-minute and
// 5-minute graphs (and one with an older end) equal a merge of every
// record from scratch.
func TestRecentGraphMatchesFullMerge(t *testing.T) {
	now := t0
	db := openAgg(t, t.TempDir(), &now)
	lt := newLiveTraffic(12, 30)
	ctx := context.Background()
	q := aggregate.GraphQuery{Level: aggregate.LevelService}
	for sec := 1; sec <= 180; sec++ {
		now = t0.Add(time.Duration(sec) * time.Second)
		if _, err := db.WriteTraces(ctx, lt.request(now)); err != nil {
			t.Fatal(err)
		}
		if err := db.awaitAggregation(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.flushRollups(true); err != nil {
			t.Fatal(err)
		}
		if sec%10 == 0 {
			if err := db.compactRollups(); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range []struct {
			name       string
			start, end time.Time
		}{
			{"1m", now.Add(-time.Minute), now},
			{"5m", now.Add(-5 * time.Minute), now},
			{"5m to 30s ago", now.Add(-5 * time.Minute), now.Add(-30 * time.Second)},
		} {
			from, to := db.alignRange(r.start, r.end)
			if !db.isRecent(from, to) {
				t.Fatalf("%s is not a recent range", r.name)
			}
			got, err := db.FlowGraph(ctx, r.start, r.end, q)
			if err != nil {
				t.Fatal(err)
			}
			want, err := db.mergeRange(ctx, from, to, q)
			if err != nil {
				t.Fatal(err)
			}
			want.Seconds = to - from
			sameGraph(t, fmt.Sprintf("second %d, %s", sec, r.name), got, want)
		}
	}
	if len(db.recent.m) == 0 {
		t.Fatal("no recent merge was kept")
	}
}

// BenchmarkRecentGraph measures the flow graph of the last 1 and 5
// minutes as the alert evaluator asks for it every second, over 500 edges
// with a flush every second and compaction every ten: the incremental
// merge ("recent") against a merge of every record ("full"). Reports
// ms per query pair:
//
//	go test -run=^$ -bench=RecentGraph -benchtime=60x ./store
func BenchmarkRecentGraph(b *testing.B) {
	for _, mode := range []string{"recent", "full"} {
		b.Run(mode, func(b *testing.B) {
			now := t0
			db := openAgg(b, b.TempDir(), &now)
			lt := newLiveTraffic(250, 500)
			ctx := context.Background()
			q := aggregate.GraphQuery{Level: aggregate.LevelService}
			sec := 0
			tick := func() {
				sec++
				now = t0.Add(time.Duration(sec) * time.Second)
				if _, err := db.WriteTraces(ctx, lt.request(now)); err != nil {
					b.Fatal(err)
				}
				if err := db.awaitAggregation(ctx); err != nil {
					b.Fatal(err)
				}
				if err := db.flushRollups(true); err != nil {
					b.Fatal(err)
				}
				if sec%10 == 0 {
					if err := db.compactRollups(); err != nil {
						b.Fatal(err)
					}
				}
			}
			query := func() {
				for _, w := range []time.Duration{time.Minute, 5 * time.Minute} {
					if mode == "recent" {
						if _, err := db.FlowGraph(ctx, now.Add(-w), now, q); err != nil {
							b.Fatal(err)
						}
						continue
					}
					from, to := db.alignRange(now.Add(-w), now)
					if _, err := db.mergeRange(ctx, from, to, q); err != nil {
						b.Fatal(err)
					}
				}
			}
			for range 300 { // five minutes of history
				tick()
				query()
			}
			var spent time.Duration
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				tick()
				b.StartTimer()
				t := time.Now()
				query()
				spent += time.Since(t)
			}
			b.ReportMetric(float64(spent.Microseconds())/1000/float64(b.N), "ms/cycle")
		})
	}
}
