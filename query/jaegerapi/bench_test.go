package jaegerapi

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// largeTrace is a trace of n spans over 20 services: a tree (each span
// the child of span i/4), every span with 8 attributes and an event.
func largeTrace(n int) *tracepb.TracesData {
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	num := func(k string, v int64) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
	}
	tid := make([]byte, 16)
	binary.BigEndian.PutUint64(tid, 0xabc)
	binary.BigEndian.PutUint64(tid[8:], 0xdef)
	sid := func(i int) []byte {
		b := make([]byte, 8)
		binary.BigEndian.PutUint64(b, uint64(i)+1)
		return b
	}
	const services = 20
	td := &tracepb.TracesData{}
	for s := range services {
		td.ResourceSpans = append(td.ResourceSpans, &tracepb.ResourceSpans{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				str("service.name", fmt.Sprintf("svc-%02d", s)), str("host.name", fmt.Sprintf("host-%d", s)),
				str("telemetry.sdk.language", "go"), num("process.pid", int64(1000+s))}},
			ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "lib", Version: "1.0"}}},
		})
	}
	start := uint64(1_700_000_000_000_000_000)
	for i := range n {
		sp := &tracepb.Span{
			TraceId: tid, SpanId: sid(i), Name: fmt.Sprintf("op-%d", i%50),
			Kind:              tracepb.Span_SpanKind(1 + i%5),
			StartTimeUnixNano: start + uint64(i)*1000, EndTimeUnixNano: start + uint64(i)*1000 + uint64(n-i)*1000,
			Attributes: []*commonpb.KeyValue{
				str("http.method", "GET"), num("http.status_code", 200), str("url.path", fmt.Sprintf("/item/%d", i)),
				num("retries", int64(i%3)), str("db.system", "postgresql"), str("peer.service", "db"),
				{Key: "ok", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: i%7 != 0}}},
				{Key: "ratio", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: float64(i) / 3}}},
			},
			Events: []*tracepb.Span_Event{{TimeUnixNano: start + uint64(i)*1000 + 10, Name: "log", Attributes: []*commonpb.KeyValue{str("message", "hello")}}},
		}
		if i > 0 {
			sp.ParentSpanId = sid(i / 4)
		}
		if i%11 == 0 {
			sp.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "failed"}
		}
		ss := td.ResourceSpans[i%services].ScopeSpans[0]
		ss.Spans = append(ss.Spans, sp)
	}
	return td
}

// BenchmarkConvertTrace converts a trace of 10,000 spans as the API does
// (sanitized, adjusted, rendered), raw, and with the JSON encoding.
// Compare runs with:
//
//	go test ./query/jaegerapi -run '^$' -bench ConvertTrace -count 10 > new.txt && benchstat old.txt new.txt
func BenchmarkConvertTrace(b *testing.B) {
	const n = 10_000
	td := largeTrace(n)
	for _, bc := range []struct {
		name string
		run  func() error
	}{
		{"adjusted", func() error { convertTrace(td, false); return nil }},
		{"raw", func() error { convertTrace(td, true); return nil }},
		{"adjusted+json", func() error {
			_, err := json.Marshal(&envelope{Data: []*uiTrace{convertTrace(td, false)}})
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.run(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n*b.N), "ns/span")
		})
	}
}
