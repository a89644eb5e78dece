// Package otlptest generates OTLP trace data sets for tests and benchmarks.
package otlptest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Str returns a string KeyValue.
func Str(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// Int returns an int KeyValue.
func Int(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// TraceID returns a deterministic non-zero trace ID for n.
func TraceID(n uint64) []byte {
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b[0:8], n*0x9E3779B97F4A7C15+1)
	binary.BigEndian.PutUint64(b[8:16], n+1)
	return b
}

// SpanID returns a deterministic non-zero span ID for n.
func SpanID(n uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, n+1)
	return b
}

// Options shape a generated data set.
type Options struct {
	Traces        int
	Services      int
	SpansPerTrace int       // at least 1
	Start         time.Time // first trace start; traces are Step apart
	Step          time.Duration
	Seed          uint64
}

// Span is a generated span with its service, for oracles in tests.
type Span struct {
	Service string
	Span    *tracepb.Span
	Attrs   map[string]string // span + resource string attributes
}

// Dataset is a generated set of traces.
type Dataset struct {
	Spans []Span
	// Requests holds the spans as export payloads (TracesData), one per trace.
	Requests []*tracepb.TracesData
}

// Generate builds a data set: trace i has a root span in service i%Services
// calling services further down with CLIENT/SERVER pairs; attributes
// "customer" (one of 7), "tier" (resource: one of 3) and "correlation.id"
// (one per 5 traces); every 10th trace has an error span; durations vary.
func Generate(o Options) *Dataset {
	if o.SpansPerTrace < 1 {
		o.SpansPerTrace = 1
	}
	if o.Step == 0 {
		o.Step = time.Millisecond
	}
	r := rand.New(rand.NewPCG(o.Seed, 7))
	ds := &Dataset{}
	var spanN uint64
	for i := 0; i < o.Traces; i++ {
		tid := TraceID(uint64(i) + o.Seed*1_000_000)
		start := o.Start.Add(time.Duration(i) * o.Step)
		td := &tracepb.TracesData{}
		var parent []byte
		for j := 0; j < o.SpansPerTrace; j++ {
			svc := fmt.Sprintf("svc-%02d", (i+j)%o.Services)
			tier := []string{"gold", "silver", "bronze"}[(i+j)%3]
			spanN++
			sid := SpanID(spanN + o.Seed*10_000_000)
			dur := time.Duration(1+r.IntN(500)) * time.Millisecond
			s := &tracepb.Span{
				TraceId:           tid,
				SpanId:            sid,
				ParentSpanId:      parent,
				Name:              fmt.Sprintf("op-%d", (i+j)%4),
				Kind:              tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: uint64(start.Add(time.Duration(j) * time.Millisecond).UnixNano()),
				Attributes:        []*commonpb.KeyValue{Str("customer", fmt.Sprintf("c%d", (i*3+j)%7)), Int("http.status_code", 200)},
			}
			if j == 0 {
				s.Kind = tracepb.Span_SPAN_KIND_SERVER
			} else if j%2 == 1 {
				s.Kind = tracepb.Span_SPAN_KIND_CLIENT
			}
			s.EndTimeUnixNano = s.StartTimeUnixNano + uint64(dur)
			attrs := map[string]string{"customer": s.Attributes[0].Value.GetStringValue(), "http.status_code": "200",
				"tier": tier, "service.name": svc}
			if i%5 == 0 && j == 0 {
				cid := fmt.Sprintf("corr-%d", i/10)
				s.Attributes = append(s.Attributes, Str("correlation.id", cid))
				attrs["correlation.id"] = cid
			}
			if i%10 == 3 && j == o.SpansPerTrace-1 {
				s.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"}
			}
			td.ResourceSpans = append(td.ResourceSpans, &tracepb.ResourceSpans{
				Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{Str("service.name", svc), Str("tier", tier)}},
				ScopeSpans: []*tracepb.ScopeSpans{{
					Scope: &commonpb.InstrumentationScope{Name: "otlptest", Version: "1"},
					Spans: []*tracepb.Span{s},
				}},
			})
			ds.Spans = append(ds.Spans, Span{Service: svc, Span: s, Attrs: attrs})
			parent = sid
		}
		ds.Requests = append(ds.Requests, td)
	}
	return ds
}

// TraceIDsWhere returns the hex trace IDs (sorted, distinct) of traces with
// a span for which keep returns true: an oracle for search tests.
func (ds *Dataset) TraceIDsWhere(keep func(Span) bool) []string {
	set := map[string]bool{}
	for _, s := range ds.Spans {
		if keep(s) {
			set[fmt.Sprintf("%x", s.Span.TraceId)] = true
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// CountSpans returns the number of spans of td.
func CountSpans(td *tracepb.TracesData) int {
	n := 0
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	return n
}
