package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/otlpwire"
)

// innocentResource is a resource of service "innocent" with spans 1..n of
// trace 100, valid.
func innocentResource(n int) wb {
	ss := wb{}
	for i := 1; i <= n; i++ {
		ss = ss.msg(2, poisonSpan(100, uint64(i), 0, "op", wb{}.msg(9, kv("http.route", strValue("/ok")))))
	}
	return wb{}.msg(1, wb{}.msg(1, kv("service.name", strValue("innocent")))).msg(2, ss)
}

// manyAttrs is n span or resource attributes (field 9 or 1) with short
// distinct keys.
func manyAttrs(field protowire.Number, n int) wb {
	w := make(wb, 0, n*17)
	key := []byte("k0000000")
	for i := range n {
		for j, v := len(key)-1, i; j > 0; j, v = j-1, v/10 {
			key[j] = byte('0' + v%10)
		}
		// KeyValue{key, value{string_value: "v"}}: 15 bytes.
		w = protowire.AppendTag(w, field, protowire.BytesType)
		w = append(w, 15, 0x0a, 8)
		w = append(w, key...)
		w = append(w, 0x12, 3, 0x0a, 1, 'v')
	}
	return w
}

// TestOversizedItemsRefused sends, with innocent spans in the same request,
// spans and resources beyond otlpwire's limits: they must be refused one
// by one with a partial success naming the limit, the innocent spans
// stored and findable, and the next checkpoint must succeed (before the
// limits, a 64 KiB attribute key broke it with bbolt "key too large").
func TestOversizedItemsRefused(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	cases := []struct {
		name     string
		poison   wb // a ResourceSpans of trace 200
		rejected int64
		message  string
	}{
		{"span name of 40000 bytes",
			wb{}.msg(2, wb{}.msg(2, poisonSpan(200, 1, 0, long(40000), nil))),
			1, "name is 40000 bytes, the limit is 4096"},
		{"service.name of 40000 bytes",
			wb{}.msg(1, wb{}.msg(1, kv("service.name", strValue(long(40000))))).
				msg(2, wb{}.msg(2, poisonSpan(200, 1, 0, "op", nil)).msg(2, poisonSpan(200, 2, 1, "op", nil))),
			2, "resource service.name is 40000 bytes, the limit is 4096"},
		{"span attribute key of 64 KiB",
			wb{}.msg(2, wb{}.msg(2, poisonSpan(200, 1, 0, "op", wb{}.msg(9, kv(long(64<<10), strValue("v")))))),
			1, "attribute key is 65536 bytes, the limit is 1024"},
		{"resource attribute key of 64 KiB",
			wb{}.msg(1, wb{}.msg(1, kv(long(64<<10), strValue("v")))).msg(2, wb{}.msg(2, poisonSpan(200, 1, 0, "op", nil))),
			1, "resource attribute key is 65536 bytes, the limit is 1024"},
		{"span with 1025 attributes",
			wb{}.msg(2, wb{}.msg(2, poisonSpan(200, 1, 0, "op", manyAttrs(9, otlpwire.MaxAttributes+1)))),
			1, "has 1025 attributes, the limit is 1024"},
		{"resource with 1025 attributes",
			wb{}.msg(1, manyAttrs(1, otlpwire.MaxAttributes+1)).msg(2, wb{}.msg(2, poisonSpan(200, 1, 0, "op", nil))),
			1, "resource has 1025 attributes, the limit is 1024"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t, t.TempDir(), nil)
			ctx := context.Background()
			// The poison first, then the innocent spans, in one request.
			req := wb{}.msg(1, tc.poison).msg(1, innocentResource(3))
			res, err := db.WriteTraces(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != 3 || res.Rejected != tc.rejected || !strings.Contains(res.Message, tc.message) {
				t.Fatalf("result %+v, want 3 accepted, %d rejected naming %q", res, tc.rejected, tc.message)
			}
			if len(res.Message) > 300 {
				t.Fatalf("message of %d bytes", len(res.Message))
			}
			checkInnocent(t, db, 3)
			if err := db.checkpoint(); err != nil {
				t.Fatalf("checkpoint: %v", err)
			}
			checkInnocent(t, db, 3)
		})
	}
}

// checkInnocent checks trace 100 holds n spans of service "innocent",
// findable by service, operation and attribute, and trace 200 nothing.
func checkInnocent(t *testing.T, db *DB, n int) {
	t.Helper()
	ctx := context.Background()
	var id, poisoned TraceID
	copy(id[:], otlptest.TraceID(100))
	copy(poisoned[:], otlptest.TraceID(200))
	td, err := db.Trace(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(td.ResourceSpans[0].ScopeSpans[0].Spans); got != n {
		t.Fatalf("%d innocent spans, want %d", got, n)
	}
	if _, err := db.Trace(ctx, poisoned); !errors.Is(err, ErrNotFound) {
		t.Fatalf("poisoned trace: %v", err)
	}
	sums, err := db.FindTraces(ctx, TraceQuery{Service: "innocent", Operation: "op", Attributes: map[string]string{"http.route": "/ok"}})
	if err != nil || len(sums) != 1 || sums[0].SpanCount != n {
		t.Fatalf("search: %+v, %v", sums, err)
	}
	ops, err := db.Operations(ctx, "innocent")
	if err != nil || len(ops) != 1 {
		t.Fatalf("operations: %v, %v", ops, err)
	}
}

// TestMillionAttributes sends one span with 1,000,000 attributes (about
// 15 MB) among innocent spans of the same trace: the big span is refused
// by partial success without its attributes being collected, the others
// are stored and findable, and the checkpoint has nothing large to index.
func TestMillionAttributes(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	ctx := context.Background()
	big := poisonSpan(100, 9, 1, "big", manyAttrs(9, 1_000_000))
	innocent := innocentResource(3)
	req := wb{}.msg(1, wb{}.msg(1, wb{}.msg(1, kv("service.name", strValue("innocent")))).msg(2, wb{}.msg(2, big))).
		msg(1, innocent)
	res, err := db.WriteTraces(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 3 || res.Rejected != 1 || !strings.Contains(res.Message, `span "big": has 1000000 attributes, the limit is 1024`) {
		t.Fatalf("result %+v", res)
	}
	checkInnocent(t, db, 3)
	if err := db.checkpoint(); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	checkInnocent(t, db, 3)
}

// TestMetricLimits checks that metric names and point attributes beyond
// otlpwire's limits are refused point by point, with a partial success
// naming the limit, while the other points of the request are stored.
func TestMetricLimits(t *testing.T) {
	str := func(k, v string) *commonpb.KeyValue { return otlptest.Str(k, v) }
	attrs := func(n int) []*commonpb.KeyValue {
		out := make([]*commonpb.KeyValue, n)
		for i := range out {
			out[i] = str(fmt.Sprintf("k%d", i), "v")
		}
		return out
	}
	ts := uint64(t0.UnixNano())
	gauge := func(name string, pointAttrs ...[]*commonpb.KeyValue) *metricspb.Metric {
		g := &metricspb.Gauge{}
		for _, a := range pointAttrs {
			g.DataPoints = append(g.DataPoints, &metricspb.NumberDataPoint{TimeUnixNano: ts, Attributes: a,
				Value: &metricspb.NumberDataPoint_AsInt{AsInt: 1}})
		}
		return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Gauge{Gauge: g}}
	}
	histogram := func(name string, pointAttrs []*commonpb.KeyValue) *metricspb.Metric {
		return &metricspb.Metric{Name: name, Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{
			DataPoints: []*metricspb.HistogramDataPoint{{TimeUnixNano: ts, Attributes: pointAttrs}}}}}
	}
	rm := func(resAttrs []*commonpb.KeyValue, ms ...*metricspb.Metric) *metricspb.ResourceMetrics {
		return &metricspb.ResourceMetrics{Resource: &resourcepb.Resource{Attributes: resAttrs},
			ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: ms}}}
	}
	innocent := rm([]*commonpb.KeyValue{str("service.name", "innocent")}, gauge("innocent.gauge", nil, nil))
	svc := []*commonpb.KeyValue{str("service.name", "poisoned")}
	cases := []struct {
		name     string
		poison   *metricspb.ResourceMetrics
		rejected int64
		message  string
	}{
		{"name of 40000 bytes", rm(svc, gauge(strings.Repeat("m", 40000), nil, nil)),
			2, "name is 40000 bytes, the limit is 4096"},
		{"point with 1025 attributes", rm(svc, gauge("g", attrs(otlpwire.MaxAttributes+1), nil)),
			1, `metric "g": data point has 1025 attributes, the limit is 1024`},
		{"point attribute key of 2000 bytes", rm(svc, histogram("h", []*commonpb.KeyValue{str(strings.Repeat("k", 2000), "v")})),
			1, `metric "h": data point attribute key is 2000 bytes, the limit is 1024`},
		{"resource attribute key of 2000 bytes", rm(append(svc, str(strings.Repeat("k", 2000), "v")), gauge("g", nil), gauge("g2", nil)),
			2, `metric "g": resource attribute key is 2000 bytes, the limit is 1024`},
		{"resource with 1025 attributes", rm(attrs(otlpwire.MaxAttributes+1), gauge("g", nil)),
			1, "resource has 1025 attributes, the limit is 1024"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t, t.TempDir(), nil)
			ctx := context.Background()
			req, err := proto.Marshal(&colmetricspb.ExportMetricsServiceRequest{
				ResourceMetrics: []*metricspb.ResourceMetrics{tc.poison, innocent}})
			if err != nil {
				t.Fatal(err)
			}
			res, err := db.WriteMetrics(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			// The valid point of the "g" gauge (no attributes) is kept in
			// the point-level cases.
			wantAccepted := int64(2)
			if strings.HasPrefix(tc.name, "point with") {
				wantAccepted = 3
			}
			if res.Accepted != wantAccepted || res.Rejected != tc.rejected || !strings.Contains(res.Message, tc.message) {
				t.Fatalf("result %+v, want %d accepted, %d rejected naming %q", res, wantAccepted, tc.rejected, tc.message)
			}
			if len(res.Message) > 300 {
				t.Fatalf("message of %d bytes", len(res.Message))
			}
			names, err := db.MetricNames(ctx, time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				if len(n.Name) > otlpwire.MaxNameBytes {
					t.Fatalf("metric name of %d bytes stored", len(n.Name))
				}
			}
			got, err := db.Metrics(ctx, "innocent.gauge", time.Time{}, time.Time{})
			if err != nil || len(got) != 1 {
				t.Fatalf("innocent metric: %v, %v", got, err)
			}
		})
	}
}
