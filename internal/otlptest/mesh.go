package otlptest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Mesh is the traffic of the 24-hour flow-graph benchmarks: services
// svc-000… joined by random call edges, each edge called once a minute at
// a random second with a duration of 1 to 51 ms.
type Mesh struct {
	start time.Time
	res   []*resourcepb.Resource
	edges [][2]int
	r     *rand.Rand
	n     uint64
}

// NewMesh returns a mesh of services and edges (distinct, no self-calls)
// whose minute 0 starts at start; seed makes it.
func NewMesh(services, edges int, start time.Time, seed uint64) *Mesh {
	m := &Mesh{start: start, r: rand.New(rand.NewPCG(seed, seed+1))}
	for len(m.edges) < edges {
		e := [2]int{m.r.IntN(services), m.r.IntN(services)}
		if e[0] != e[1] && !slices.Contains(m.edges, e) {
			m.edges = append(m.edges, e)
		}
	}
	for i := range services {
		m.res = append(m.res, &resourcepb.Resource{Attributes: []*commonpb.KeyValue{Str("service.name", fmt.Sprintf("svc-%03d", i))}})
	}
	return m
}

// Minute returns the calls of minute minute (call it for 0, 1, 2, … in
// order): one per edge, each the client span's and the server span's
// ResourceSpans, in one trace.
func (m *Mesh) Minute(minute int) [][2]*tracepb.ResourceSpans {
	out := make([][2]*tracepb.ResourceSpans, 0, len(m.edges))
	for _, e := range m.edges {
		m.n++
		st := uint64(m.start.Add(time.Duration(minute)*time.Minute + time.Duration(m.r.IntN(60000))*time.Millisecond).UnixNano())
		d := uint64(1e6 + m.r.IntN(50e6))
		client := &tracepb.Span{TraceId: TraceID(m.n), SpanId: SpanID(2 * m.n), Name: "call",
			Kind: tracepb.Span_SPAN_KIND_CLIENT, StartTimeUnixNano: st, EndTimeUnixNano: st + d}
		server := &tracepb.Span{TraceId: TraceID(m.n), SpanId: SpanID(2*m.n + 1), ParentSpanId: client.SpanId,
			Name: "handle", Kind: tracepb.Span_SPAN_KIND_SERVER, StartTimeUnixNano: st + 1000, EndTimeUnixNano: st + d - 1000}
		out = append(out, [2]*tracepb.ResourceSpans{
			{Resource: m.res[e[0]], ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{client}}}},
			{Resource: m.res[e[1]], ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{server}}}},
		})
	}
	return out
}
