package store

import (
	"context"
	"slices"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/internal/otlptest"
)

// strArray returns an attribute whose value is an array of strings, as OTel
// HTTP instrumentations record captured request headers.
func strArray(key string, vs ...string) *commonpb.KeyValue {
	arr := &commonpb.ArrayValue{}
	for _, v := range vs {
		arr.Values = append(arr.Values, &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}})
	}
	return &commonpb.KeyValue{Key: key, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: arr}}}
}

// TestArrayAttributes checks that every element of an array attribute is
// indexed and matched like a scalar attribute of the same key: for the
// correlation keys, for W3C baggage inside an element, and for attribute
// search, before and after the index is persisted.
func TestArrayAttributes(t *testing.T) {
	dir := t.TempDir()
	db := openTest(t, dir, nil)
	trace := func(n uint64, resAttrs []*commonpb.KeyValue, attrs ...*commonpb.KeyValue) *tracepb.ResourceSpans {
		start := uint64(t0.UnixNano()) + n*1e6
		return &tracepb.ResourceSpans{
			Resource: &resourcepb.Resource{Attributes: append([]*commonpb.KeyValue{otlptest.Str("service.name", "svc")}, resAttrs...)},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
				TraceId: otlptest.TraceID(n), SpanId: otlptest.SpanID(n), Name: "GET /api",
				StartTimeUnixNano: start, EndTimeUnixNano: start + 1000, Attributes: attrs,
			}}}},
		}
	}
	ints := &commonpb.KeyValue{Key: "codes", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
		Values: []*commonpb.AnyValue{{Value: &commonpb.AnyValue_IntValue{IntValue: 1}}, {Value: &commonpb.AnyValue_IntValue{IntValue: 2}}}}}}}
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{
		trace(1, nil, strArray("http.request.header.x-request-id", "rid-123")),
		trace(2, nil, strArray("http.request.header.baggage", "correlation_id=corr-r2-3,other=x%20y")),
		trace(3, []*commonpb.KeyValue{strArray("correlation.id", "res-corr")}),
		trace(4, nil, strArray("http.request.header.x-request-id", "a", "rid-multi")),
		trace(5, nil, strArray("tags", "rid-123")), // not a correlation key
		trace(6, nil, ints),
		trace(7, nil, otlptest.Str("http.request.header.x-request-id", "rid-123")),
		trace(8, nil, strArray("http.request.header.baggage", "user=u1", "x-request-id=rid-second%2Felem")),
	}}
	if res, err := db.WriteTraces(context.Background(), encode(t, td)); err != nil || res.Rejected != 0 {
		t.Fatalf("write: %v %+v", err, res)
	}
	cases := []struct {
		name        string
		correlation string            // query Correlation when set
		attrs       map[string]string // else FindTraces with these attributes
		want        []uint64          // trace numbers, oldest first
	}{
		{name: "request ID header array", correlation: "rid-123", want: []uint64{1, 7}},
		{name: "baggage in a header array", correlation: "corr-r2-3", want: []uint64{2}},
		{name: "baggage in a later element", correlation: "rid-second/elem", want: []uint64{8}},
		{name: "resource array", correlation: "res-corr", want: []uint64{3}},
		{name: "second element", correlation: "rid-multi", want: []uint64{4}},
		{name: "baggage member under another key", correlation: "x y", want: nil},
		{name: "search header array", attrs: map[string]string{"http.request.header.x-request-id": "rid-123"}, want: []uint64{1, 7}},
		{name: "search first element", attrs: map[string]string{"http.request.header.x-request-id": "a"}, want: []uint64{4}},
		{name: "search array of another key", attrs: map[string]string{"tags": "rid-123"}, want: []uint64{5}},
		{name: "search int array", attrs: map[string]string{"codes": "2"}, want: []uint64{6}},
		{name: "search resource array", attrs: map[string]string{"correlation.id": "res-corr"}, want: []uint64{3}},
		{name: "search whole baggage element", attrs: map[string]string{"http.request.header.baggage": "correlation_id=corr-r2-3,other=x%20y"}, want: []uint64{2}},
		{name: "search element and scalar", attrs: map[string]string{"tags": "rid-123", "service.name": "svc"}, want: []uint64{5}},
		{name: "search no element", attrs: map[string]string{"codes": "3"}, want: nil},
	}
	check := func(phase string) {
		for _, tc := range cases {
			var got []TraceSummary
			var err error
			if tc.correlation != "" {
				got, err = db.Correlation(context.Background(), tc.correlation, 0)
			} else {
				got, err = db.FindTraces(context.Background(), TraceQuery{Attributes: tc.attrs})
				slices.Reverse(got) // newest first
			}
			if err != nil {
				t.Fatalf("%s: %s: %v", phase, tc.name, err)
			}
			var want, ids []string
			for _, n := range tc.want {
				want = append(want, string(otlptest.TraceID(n)))
			}
			for _, s := range got {
				ids = append(ids, string(s.TraceID[:]))
			}
			if !slices.Equal(ids, want) {
				t.Errorf("%s: %s: got traces %x, want %v", phase, tc.name, ids, tc.want)
			}
		}
	}
	check("in memory")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openTest(t, dir, nil)
	check("reopened")
}
