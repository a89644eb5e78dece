package uitest

import (
	"encoding/hex"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// shop is the seeded topology of the functional tests:
//
//	frontend → checkout → payments      (payments fails 5 %)
//	frontend → cart → inventory-db      (a virtual node: db.name, no server spans)
//	batch-job                           (isolated: internal spans only)
//	notifier                            (Zipkin, consumer of an order)
//
// plus one rich trace through frontend, checkout and payments with events,
// links and the correlation ID order-4711, which a notifier trace (sent as
// Zipkin v2 JSON) also carries.
type shop struct {
	now         time.Time
	richTrace   string // hex trace ID of the rich trace
	zipkinID    string // hex trace ID of the notifier trace
	edgeDurs    map[string][]time.Duration
	correlation string
}

const correlationID = "order-4711"

func seedShop(t *testing.T, s *server) *shop {
	t.Helper()
	now := time.Now()
	sh := &shop{now: now, edgeDurs: map[string][]time.Duration{}, correlation: correlationID}
	start := now.Add(-2 * time.Minute)
	var spans []span
	add := func(from, to, cname, sname string, n int, dur func(i int) time.Duration, failEvery int) {
		for i := 0; i < n; i++ {
			d := dur(i)
			st := start.Add(time.Duration(i) * (90 * time.Second) / time.Duration(n))
			spans = append(spans, call(from, to, cname, sname, st, d, failEvery > 0 && i%failEvery == failEvery-1)...)
			sh.edgeDurs[from+"->"+to] = append(sh.edgeDurs[from+"->"+to], d)
		}
	}
	// frontend → checkout: 196 calls around 10 ms and 4 slow ones, so the
	// p99 lies in the slow mode.
	add("frontend", "checkout", "POST checkout", "POST /checkout", 200, func(i int) time.Duration {
		if i%50 == 49 {
			return time.Duration(200+20*(i/50)) * time.Millisecond
		}
		return 10*time.Millisecond + time.Duration(i)*20*time.Microsecond
	}, 0)
	add("frontend", "cart", "GET cart", "GET /cart", 60, func(i int) time.Duration { return time.Duration(3+i%5) * time.Millisecond }, 0)
	add("checkout", "payments", "charge", "POST /charge", 100, func(i int) time.Duration { return time.Duration(20+i%30) * time.Millisecond }, 20)
	// cart → inventory-db: client spans only, named by db.name.
	for i := 0; i < 30; i++ {
		tid, ids := newIDs(1)
		spans = append(spans, span{service: "cart", traceID: tid, spanID: ids[0], name: "SELECT stock", kind: tracepb.Span_SPAN_KIND_CLIENT,
			start: start.Add(time.Duration(i) * time.Second), dur: 2 * time.Millisecond,
			attrs: []*commonpb.KeyValue{otlptest.Str("db.system", "postgresql"), otlptest.Str("db.name", "inventory-db")}})
	}
	for i := 0; i < 5; i++ {
		tid, ids := newIDs(1)
		spans = append(spans, span{service: "batch-job", traceID: tid, spanID: ids[0], name: "nightly cleanup", kind: tracepb.Span_SPAN_KIND_INTERNAL,
			start: start.Add(time.Duration(i) * 10 * time.Second), dur: 50 * time.Millisecond})
	}

	// The rich trace.
	zipkinTrace := "4bf92f3577b34da6a3ce929d0e0e4736"
	zipkinRoot := "00f067aa0ba902b7"
	tid, ids := newIDs(7)
	sh.richTrace = hex.EncodeToString(tid)
	sh.zipkinID = zipkinTrace
	rs := now.Add(-40 * time.Second)
	ms := func(n float64) time.Duration { return time.Duration(n * float64(time.Millisecond)) }
	zid, _ := hex.DecodeString(zipkinTrace)
	zsid, _ := hex.DecodeString(zipkinRoot)
	rich := []span{
		{service: "frontend", traceID: tid, spanID: ids[0], name: "GET /checkout", kind: tracepb.Span_SPAN_KIND_SERVER, start: rs, dur: ms(40),
			attrs:  []*commonpb.KeyValue{otlptest.Str("http.route", "/checkout"), otlptest.Str("correlation.id", correlationID), otlptest.Int("http.response.status_code", 200)},
			events: []*tracepb.Span_Event{{TimeUnixNano: uint64(rs.Add(ms(1)).UnixNano()), Name: "cache miss", Attributes: []*commonpb.KeyValue{otlptest.Str("cache.key", "cart:42")}}}},
		{service: "frontend", traceID: tid, spanID: ids[1], parentID: ids[0], name: "POST checkout", kind: tracepb.Span_SPAN_KIND_CLIENT, start: rs.Add(ms(2)), dur: ms(36)},
		{service: "checkout", traceID: tid, spanID: ids[2], parentID: ids[1], name: "POST /checkout", kind: tracepb.Span_SPAN_KIND_SERVER, start: rs.Add(ms(3)), dur: ms(34),
			attrs: []*commonpb.KeyValue{otlptest.Str("order.id", "4711")}},
		{service: "checkout", traceID: tid, spanID: ids[3], parentID: ids[2], name: "validate cart", kind: tracepb.Span_SPAN_KIND_INTERNAL, start: rs.Add(ms(4)), dur: ms(4)},
		{service: "checkout", traceID: tid, spanID: ids[4], parentID: ids[2], name: "charge", kind: tracepb.Span_SPAN_KIND_CLIENT, start: rs.Add(ms(10)), dur: ms(20)},
		{service: "payments", traceID: tid, spanID: ids[5], parentID: ids[4], name: "POST /charge", kind: tracepb.Span_SPAN_KIND_SERVER, start: rs.Add(ms(11)), dur: ms(18),
			attrs: []*commonpb.KeyValue{otlptest.Str("payment.method", "card")},
			links: []*tracepb.Span_Link{{TraceId: zid, SpanId: zsid, Attributes: []*commonpb.KeyValue{otlptest.Str("link.kind", "notification")}}}},
		{service: "checkout", traceID: tid, spanID: ids[6], parentID: ids[2], name: "audit log", kind: tracepb.Span_SPAN_KIND_INTERNAL, start: rs.Add(ms(31)), dur: ms(2)},
	}
	sh.edgeDurs["frontend->checkout"] = append(sh.edgeDurs["frontend->checkout"], ms(36))
	sh.edgeDurs["checkout->payments"] = append(sh.edgeDurs["checkout->payments"], ms(20))
	spans = append(spans, rich...)
	s.postTraces(t, spans)

	// The notifier trace, as Zipkin v2 JSON, with the same correlation ID.
	zs := now.Add(-35 * time.Second).UnixMicro()
	s.postZipkin(t, []map[string]any{
		{"traceId": zipkinTrace, "id": zipkinRoot, "name": "consume order", "kind": "CONSUMER", "timestamp": zs, "duration": 15000,
			"localEndpoint": map[string]any{"serviceName": "notifier"}, "tags": map[string]string{"correlation.id": correlationID, "messaging.system": "kafka"}},
		{"traceId": zipkinTrace, "id": "00f067aa0ba902b8", "parentId": zipkinRoot, "name": "send email", "timestamp": zs + 2000, "duration": 9000,
			"localEndpoint": map[string]any{"serviceName": "notifier"}, "tags": map[string]string{"email.template": "order-confirmation"}},
	})
	seedMetrics(t, s, now, "checkout", "http.server.request.duration", "queue.depth")
	// The call into the database becomes an edge once the edge wait is over.
	s.waitEdge(t, "cart", "inventory-db")
	return sh
}

// seedMetrics sends a histogram and a gauge for service.
func seedMetrics(t *testing.T, s *server, now time.Time, service, histName, gaugeName string) {
	t.Helper()
	res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", service)}}
	var hist []*metricspb.HistogramDataPoint
	var gpts []*metricspb.NumberDataPoint
	for i := 0; i < 12; i++ {
		ts := uint64(now.Add(time.Duration(i-12) * 10 * time.Second).UnixNano())
		counts := []uint64{uint64(10 + i), uint64(30 + i%4), uint64(8 + i%3), uint64(1 + i%2)}
		var n uint64
		for _, c := range counts {
			n += c
		}
		hist = append(hist, &metricspb.HistogramDataPoint{
			StartTimeUnixNano: ts - 10e9, TimeUnixNano: ts, Count: n, Sum: ptr(float64(n) * 18),
			ExplicitBounds: []float64{5, 20, 100}, BucketCounts: counts,
			Attributes: []*commonpb.KeyValue{otlptest.Str("http.route", "/checkout")},
		})
		gpts = append(gpts, &metricspb.NumberDataPoint{TimeUnixNano: ts, Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 5 + 4*math.Sin(float64(i)/2)}})
	}
	s.postMetrics(t, &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: res,
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{
			{Name: histName, Unit: "ms", Description: "Server request latency.", Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
				AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, DataPoints: hist}}},
			{Name: gaugeName, Unit: "{message}", Description: "Messages waiting.", Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: gpts}}},
		}}},
	}}})
}

func ptr[T any](v T) *T { return &v }

// exactQuantile is the nearest-rank quantile of durations.
func exactQuantile(d []time.Duration, q float64) time.Duration {
	v := slices.Clone(d)
	slices.Sort(v)
	rank := int(math.Ceil(q * float64(len(v))))
	return v[max(rank, 1)-1]
}

// bigTopology seeds n services and m edges (every service but the first
// is called by at least one other; the rest random but deterministic),
// each edge a few client/server call pairs.
func bigTopology(t *testing.T, s *server, nodes, edges int) (wantNodes []string, wantEdges []string) {
	t.Helper()
	name := func(i int) string { return fmt.Sprintf("svc-%03d", i) }
	type pair struct{ a, b int }
	seen := map[pair]bool{}
	var list []pair
	x := uint64(42)
	rnd := func(n int) int {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		return int(x % uint64(n))
	}
	for j := 1; j < nodes && len(list) < edges; j++ {
		p := pair{rnd(j), j}
		seen[p] = true
		list = append(list, p)
	}
	for len(list) < edges {
		a, b := rnd(nodes), rnd(nodes)
		if a == b {
			continue
		}
		if a > b {
			a, b = b, a
		}
		p := pair{a, b}
		if seen[p] {
			continue
		}
		seen[p] = true
		list = append(list, p)
	}
	now := time.Now().Add(-90 * time.Second)
	var spans []span
	for k, p := range list {
		for c := 0; c < 1+k%3; c++ {
			st := now.Add(time.Duration(k*3+c) * 10 * time.Millisecond)
			spans = append(spans, call(name(p.a), name(p.b), "call "+name(p.b), "handle", st, time.Duration(2+(k+c)%40)*time.Millisecond, (k+c)%53 == 0)...)
		}
		wantEdges = append(wantEdges, name(p.a)+"->"+name(p.b))
	}
	for i := 0; i < nodes; i++ {
		wantNodes = append(wantNodes, name(i))
	}
	s.postTraces(t, spans)
	return wantNodes, wantEdges
}

// waitEdge waits until the flow graph has the edge source → target.
func (s *server) waitEdge(t *testing.T, source, target string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var g struct {
			Edges []struct {
				Source string `json:"source"`
				Target string `json:"target"`
			} `json:"edges"`
		}
		s.getJSON(t, "/api/v1/flowgraph", &g)
		for _, e := range g.Edges {
			if e.Source == source && e.Target == target {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge %s → %s not in the flow graph after 15s", source, target)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
