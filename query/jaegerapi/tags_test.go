package jaegerapi

import (
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/store"
)

// TestMatchesTag checks where a tag search looks and how values are
// written.
func TestMatchesTag(t *testing.T) {
	str := func(k, v string) *commonpb.KeyValue {
		return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
	}
	val := func(k string, v *commonpb.AnyValue) *commonpb.KeyValue { return &commonpb.KeyValue{Key: k, Value: v} }
	view := store.SpanView{
		Span: &tracepb.Span{
			Name: "op", Kind: tracepb.Span_SPAN_KIND_SERVER, TraceState: "v=1",
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "boom"},
			Attributes: []*commonpb.KeyValue{
				str("http.method", "GET"),
				val("code", &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 200}}),
				val("ok", &commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: false}}),
				val("ratio", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1234567.5}}),
				val("tiny", &commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1e-7}}),
				val("raw", &commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xde, 0xad}}}),
				val("list", &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{Values: []*commonpb.AnyValue{
					{Value: &commonpb.AnyValue_StringValue{StringValue: "a"}}, {Value: &commonpb.AnyValue_IntValue{IntValue: 1}}}}}}),
			},
			Events: []*tracepb.Span_Event{
				{Name: "cache miss", Attributes: []*commonpb.KeyValue{str("key", "k1")}},
				{Name: "renamed", Attributes: []*commonpb.KeyValue{str("event", "custom")}},
			},
		},
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("host.name", "h1")}},
		Scope:    &commonpb.InstrumentationScope{Name: "lib", Version: "1.0", Attributes: []*commonpb.KeyValue{str("scope.attr", "s1")}},
	}
	for _, tc := range []struct {
		key, value string
		want       bool
	}{
		{"http.method", "GET", true},
		{"http.method", "get", false},
		{"code", "200", true},
		{"code", "200.0", false},
		{"ok", "false", true},
		{"ratio", "1234567.5", true},
		{"ratio", "1.2345675e+06", false},
		{"tiny", "1e-7", true},  // JSON (pcommon) form
		{"tiny", "1e-07", true}, // Jaeger's %.10g form
		{"raw", "3q0=", true},   // base64
		{"raw", "dead", true},   // hex
		{"list", `["a",1]`, true},
		{"list", "a", false},
		{"host.name", "h1", true},
		{"service.name", "missing-service-name", true}, // as Jaeger stores it
		{"scope.attr", "s1", true},
		{"key", "k1", true},
		{"event", "cache miss", true},
		{"event", "renamed", false}, // its "event" attribute wins
		{"event", "custom", true},
		{"span.kind", "server", true},
		{"span.kind", "client", false},
		{"otel.status_code", "ERROR", true},
		{"error", "true", true},
		{"error", "false", false},
		{"otel.status_description", "boom", true},
		{"otel.scope.name", "lib", true},
		{"otel.scope.version", "1.0", true},
		{"w3c.tracestate", "v=1", true},
		{"missing", "", false},
	} {
		if got := matchesTag(view, tc.key, tc.value); got != tc.want {
			t.Errorf("%s=%s: %v, want %v", tc.key, tc.value, got, tc.want)
		}
	}
	if f := tagFilter(map[string]string{"http.method": "GET", "span.kind": "client"}); f(view) {
		t.Error("tags are not all required")
	}
	if tagFilter(nil) != nil {
		t.Error("no tags, yet a filter")
	}
}
