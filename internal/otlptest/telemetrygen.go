package otlptest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TelemetrygenRequest builds an export request shaped like telemetrygen's
// output: one resource (service.name=telemetrygen), one scope, and n spans in
// parent/child pairs (a SERVER "lets-go" span and a CLIENT "okey-dokey-N"
// child), each with net.peer.ip and peer.service attributes. IDs are random
// from r; spans start at start.
func TelemetrygenRequest(r *rand.Rand, n int, start time.Time) *coltracepb.ExportTraceServiceRequest {
	ss := &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "telemetrygen"}}
	for i := 0; i < n; i += 2 {
		tid := make([]byte, 16)
		binary.LittleEndian.PutUint64(tid, r.Uint64()|1)
		binary.LittleEndian.PutUint64(tid[8:], r.Uint64())
		parent := make([]byte, 8)
		binary.LittleEndian.PutUint64(parent, r.Uint64()|1)
		st := uint64(start.UnixNano()) + uint64(i)*1000
		attrs := []*commonpb.KeyValue{Str("net.peer.ip", "1.2.3.4"), Str("peer.service", "telemetrygen-server")}
		ss.Spans = append(ss.Spans, &tracepb.Span{
			TraceId: tid, SpanId: parent, Name: "lets-go", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: st, EndTimeUnixNano: st + 123456, Attributes: attrs, Status: &tracepb.Status{},
		})
		if i+1 < n {
			child := make([]byte, 8)
			binary.LittleEndian.PutUint64(child, r.Uint64()|1)
			ss.Spans = append(ss.Spans, &tracepb.Span{
				TraceId: tid, SpanId: child, ParentSpanId: parent, Name: fmt.Sprintf("okey-dokey-%d", r.IntN(10)),
				Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: st + 1000, EndTimeUnixNano: st + 100000,
				Attributes: attrs, Status: &tracepb.Status{},
			})
		}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{Str("service.name", "telemetrygen")}},
		ScopeSpans: []*tracepb.ScopeSpans{ss},
		SchemaUrl:  "https://opentelemetry.io/schemas/1.4.0",
	}}}
}
