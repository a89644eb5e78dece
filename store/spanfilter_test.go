package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// TestSpanFilter checks TraceQuery.SpanFilter: it sees the decoded span,
// resource and scope, applies to the same span as the other conditions
// (not to another span of the trace), and the limit counts only traces it
// accepts.
//
// Trace i has a span "GET" in frontend with an event "cache.miss" when i
// is even, and a span "query" in db with an event "retry" when i%3 == 0.
func TestSpanFilter(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	const n = 30
	for i := range n {
		start := uint64(t0.Add(time.Duration(i) * time.Second).UnixNano())
		span := func(svc, name, event string, id uint64) *tracepb.ResourceSpans {
			sp := &tracepb.Span{TraceId: otlptest.TraceID(uint64(i)), SpanId: otlptest.SpanID(id), Name: name,
				StartTimeUnixNano: start, EndTimeUnixNano: start + uint64(time.Millisecond)}
			if event != "" {
				sp.Events = []*tracepb.Span_Event{{Name: event, TimeUnixNano: start}}
			}
			return &tracepb.ResourceSpans{
				Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", svc)}},
				ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "lib-" + svc}, Spans: []*tracepb.Span{sp}}},
			}
		}
		var miss, retry string
		if i%2 == 0 {
			miss = "cache.miss"
		}
		if i%3 == 0 {
			retry = "retry"
		}
		b, err := proto.Marshal(&coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
			span("frontend", "GET", miss, uint64(2*i+1)), span("db", "query", retry, uint64(2*i+2))}})
		if err != nil {
			t.Fatal(err)
		}
		if res, err := db.WriteTraces(context.Background(), b); err != nil || res.Rejected != 0 {
			t.Fatalf("write: %v %+v", err, res)
		}
	}
	hasEvent := func(name string) func(SpanView) bool {
		return func(v SpanView) bool {
			for _, e := range v.Span.Events {
				if e.Name == name {
					return true
				}
			}
			return false
		}
	}
	ids := func(cond func(i int) bool, limit int) []string {
		var out []string
		for i := n - 1; i >= 0 && len(out) < limit; i-- {
			if cond(i) {
				out = append(out, fmt.Sprint(i+1))
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		q    TraceQuery
		want []string
	}{
		{"event on any span", TraceQuery{SpanFilter: hasEvent("retry"), Limit: 100}, ids(func(i int) bool { return i%3 == 0 }, 100)},
		{"with a service: same span", TraceQuery{Service: "frontend", SpanFilter: hasEvent("retry"), Limit: 100}, nil},
		{"with a service", TraceQuery{Service: "frontend", SpanFilter: hasEvent("cache.miss"), Limit: 100}, ids(func(i int) bool { return i%2 == 0 }, 100)},
		{"limit after the filter", TraceQuery{SpanFilter: hasEvent("retry"), Limit: 3}, ids(func(i int) bool { return i%3 == 0 }, 3)},
		{"resource and scope", TraceQuery{SpanFilter: func(v SpanView) bool {
			return v.Scope.Name == "lib-db" && v.Resource.Attributes[0].Value.GetStringValue() == "db" && v.Span.Name == "query"
		}, Limit: 100}, ids(func(int) bool { return true }, 100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := db.FindTraces(context.Background(), tc.q)
			if err != nil {
				t.Fatal(err)
			}
			// otlptest.TraceID(i) ends in byte i+1; results are newest
			// first, and trace i is newer than trace i-1.
			var names []string
			for _, s := range got {
				names = append(names, fmt.Sprint(s.TraceID[15]))
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("got traces %v, want %v", names, tc.want)
			}
		})
	}
}
