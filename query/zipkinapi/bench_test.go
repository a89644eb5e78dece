package zipkinapi

import (
	"encoding/binary"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest/zipkin"
	"github.com/flowscope/flowscope/store"
)

// bigTrace builds a trace of n spans over 10 services: half from the
// OpenTelemetry SDK (attributes, an event), half from our Zipkin receiver
// as client spans with shared server halves and their children.
func bigTrace(n int) *tracepb.TracesData {
	tid := make16(7)
	start := uint64(t0.UnixNano())
	id := func(i int) []byte { b := make([]byte, 8); binary.BigEndian.PutUint64(b, uint64(i+1)); return b }
	td := &tracepb.TracesData{}
	for svc := range 10 {
		res := &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			str("service.name", "service-"+string(rune('a'+svc))), str("host.name", "h"), intKV("pid", 42)}}
		otel := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "lib", Version: "1"}}
		zk := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: zipkin.ScopeName}}
		td.ResourceSpans = append(td.ResourceSpans, &tracepb.ResourceSpans{Resource: res, ScopeSpans: []*tracepb.ScopeSpans{otel, zk}})
		for i := svc; i < n; i += 10 {
			s := &tracepb.Span{TraceId: tid, SpanId: id(i), ParentSpanId: id(i / 2), Name: "GET /items/{id}",
				StartTimeUnixNano: start + uint64(i)*1000, EndTimeUnixNano: start + uint64(i)*1000 + 123456}
			if i%2 == 0 {
				s.Kind = tracepb.Span_SPAN_KIND_SERVER
				s.Attributes = []*commonpb.KeyValue{str("http.request.method", "GET"), intKV("http.response.status_code", 200),
					str("url.path", "/items/42"), str("network.peer.address", "10.0.0.1")}
				s.Events = []*tracepb.Span_Event{{TimeUnixNano: s.StartTimeUnixNano + 10, Name: "cache miss"}}
				s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK}
				otel.Spans = append(otel.Spans, s)
				continue
			}
			s.Kind = tracepb.Span_SPAN_KIND_CLIENT
			s.Attributes = []*commonpb.KeyValue{str("peer.service", "backend"), str("server.address", "10.0.0.2"),
				intKV("server.port", 8080), str("http.path", "/x")}
			zk.Spans = append(zk.Spans, s)
			server := &tracepb.Span{TraceId: tid, SpanId: nil, ParentSpanId: s.SpanId, Name: s.Name,
				Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: s.StartTimeUnixNano + 100,
				EndTimeUnixNano: s.EndTimeUnixNano - 100, Attributes: []*commonpb.KeyValue{str("tier", "api")}}
			d := zipkin.DerivedSpanID(store.TraceID(tid), [8]byte(s.SpanId), 1)
			server.SpanId = d[:]
			zk.Spans = append(zk.Spans, server)
		}
	}
	return td
}

// BenchmarkConvertTrace converts a large trace to Zipkin JSON, as
// /api/v2/trace/{id} does. Compare runs with
//
//	go test ./query/zipkinapi -run '^$' -bench ConvertTrace -count 10 > new.txt; benchstat old.txt new.txt
func BenchmarkConvertTrace(b *testing.B) {
	for _, n := range []int{100, 10_000} {
		td := bigTrace(n)
		spans := 0
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				spans += len(ss.Spans)
			}
		}
		b.Run(map[int]string{100: "spans=150", 10_000: "spans=15000"}[n], func(b *testing.B) {
			b.ReportAllocs()
			var out []byte
			for b.Loop() {
				out = appendTrace(out[:0], convertTrace(td))
			}
			b.SetBytes(int64(len(out)))
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(spans), "ns/span")
			b.ReportMetric(float64(len(out))/float64(spans), "B-json/span")
		})
	}
}

// TestBigTrace checks the benchmark's trace converts as meant: every
// shared server half is undone, and the JSON decodes.
func TestBigTrace(t *testing.T) {
	spans := convertTrace(bigTrace(100))
	shared := 0
	for _, s := range spans {
		if s.Shared {
			shared++
		}
	}
	if len(spans) != 150 || shared != 50 {
		t.Errorf("%d spans, %d shared; want 150 and 50", len(spans), shared)
	}
}
