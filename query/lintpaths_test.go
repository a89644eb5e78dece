package query

import (
	"fmt"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TestTracePaths checks the synchronous call paths read from one trace:
// calls into other services extend a path, spans within a service do not,
// an asynchronous hop ends it and starts one at the consumer, namespaces
// and synthetic checks are named as the flow graph names them.
func TestTracePaths(t *testing.T) {
	type sp struct {
		id, parent byte
		svc        string // "ns/name" for a namespace, "check:X" for the prober
		kind       tracepb.Span_SpanKind
	}
	const (
		server   = tracepb.Span_SPAN_KIND_SERVER
		client   = tracepb.Span_SPAN_KIND_CLIENT
		internal = tracepb.Span_SPAN_KIND_INTERNAL
		producer = tracepb.Span_SPAN_KIND_PRODUCER
		consumer = tracepb.Span_SPAN_KIND_CONSUMER
	)
	cases := []struct {
		name  string
		spans []sp
		want  string
	}{
		{"a chain", []sp{{1, 0, "a", server}, {2, 1, "a", client}, {3, 2, "b", server}, {4, 3, "b", internal}, {5, 4, "b", client}, {6, 5, "c", server}},
			"[[a b c]]"},
		{"a fan-out: one path per leaf", []sp{{1, 0, "a", server}, {2, 1, "a", client}, {3, 2, "b", server}, {4, 1, "a", client}, {5, 4, "c", server}},
			"[[a b] [a c]]"},
		{"asynchronous hop", []sp{{1, 0, "a", server}, {2, 1, "a", client}, {3, 2, "b", server}, {4, 3, "b", producer}, {5, 4, "q", consumer}, {6, 5, "q", client}, {7, 6, "r", server}},
			"[[a b] [q r]]"},
		{"uninstrumented caller", []sp{{1, 0, "a", server}, {2, 1, "b", server}},
			"[[a b]]"},
		{"a lone service", []sp{{1, 0, "a", server}, {2, 1, "a", client}},
			"[]"},
		{"namespaces and synthetic checks", []sp{{1, 0, "check:home", client}, {2, 1, "shop/web", server}, {3, 2, "shop/web", client}, {4, 3, "pay", server}},
			"[[synthetic:home shop/web pay]]"},
		{"a missing parent makes a root", []sp{{2, 9, "b", server}, {3, 2, "b", client}, {4, 3, "c", server}},
			"[[b c]]"},
	}
	for _, tc := range cases {
		td := &tracepb.TracesData{}
		for _, s := range tc.spans {
			var attrs []*commonpb.KeyValue
			str := func(k, v string) *commonpb.KeyValue {
				return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
			}
			switch {
			case len(s.svc) > 6 && s.svc[:6] == "check:":
				attrs = append(attrs, str("service.name", "prober"), str("synthetic.check", s.svc[6:]))
			default:
				name := s.svc
				for i := range s.svc {
					if s.svc[i] == '/' {
						attrs = append(attrs, str("service.namespace", s.svc[:i]))
						name = s.svc[i+1:]
					}
				}
				attrs = append(attrs, str("service.name", name))
			}
			span := &tracepb.Span{TraceId: make([]byte, 16), SpanId: []byte{0, 0, 0, 0, 0, 0, 0, s.id}, Kind: s.kind}
			if s.parent != 0 {
				span.ParentSpanId = []byte{0, 0, 0, 0, 0, 0, 0, s.parent}
			}
			td.ResourceSpans = append(td.ResourceSpans, &tracepb.ResourceSpans{Resource: &resourcepb.Resource{Attributes: attrs},
				ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{span}}}})
		}
		if got := fmt.Sprint(tracePaths(td)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
