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

func TestForEachBaggageMember(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"correlation.id=abc", []string{"correlation.id=abc"}},
		{" a = 1 ; prop=x , b=2;p", []string{"a=1", "b=2"}},
		{"k=hello%20world%2C%3B", []string{"k=hello world,;"}},
		{"k=bad%2", nil}, // truncated escape
		{"k=bad%zz,j=ok", []string{"j=ok"}},
		{"=v,k=,novalue,k2=v2", []string{"k2=v2"}},
		{"", nil},
		{",,,", nil},
	} {
		var got []string
		forEachBaggageMember([]byte(tc.in), func(k, v []byte) { got = append(got, string(k)+"="+string(v)) })
		if !slices.Equal(got, tc.want) {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
	for _, k := range []struct {
		key string
		ok  bool
	}{{"baggage", true}, {"http.request.header.baggage", true}, {"xbaggage", false}, {"baggage.x", false}, {"bag", false}} {
		if got := isBaggageKey([]byte(k.key)); got != k.ok {
			t.Errorf("isBaggageKey(%q) = %v", k.key, got)
		}
	}
}

// TestCorrelationBaggage checks that a correlation ID carried only as a
// member of a W3C baggage attribute is indexed and found, together with a
// trace carrying it as a plain attribute, and that baggage members under
// other keys are not.
func TestCorrelationBaggage(t *testing.T) {
	db := openTest(t, t.TempDir(), nil)
	span := func(trace uint64, start int64, attrs ...*commonpb.KeyValue) *tracepb.ResourceSpans {
		return &tracepb.ResourceSpans{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", "svc")}},
			ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
				TraceId: otlptest.TraceID(trace), SpanId: otlptest.SpanID(1), Name: "op",
				StartTimeUnixNano: uint64(t0.UnixNano() + start), EndTimeUnixNano: uint64(t0.UnixNano() + start + 1000),
				Attributes: attrs,
			}}}},
		}
	}
	td := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{
		span(1, 0, otlptest.Str("correlation.id", "order 42")),
		span(2, 1e6, otlptest.Str("http.request.header.baggage", "user=alice,correlation.id=order%2042;ttl=60")),
		span(3, 2e6, otlptest.Str("baggage", "other.key=order%2042")),         // not a correlation key
		span(4, 3e6, otlptest.Str("notbaggage", "correlation.id=order%2042")), // not a baggage attribute
		span(5, 4e6, otlptest.Str("baggage", "x-request-id=order%2042")),
	}}
	if res, err := db.WriteTraces(context.Background(), encode(t, td)); err != nil || res.Rejected != 0 {
		t.Fatalf("write: %v %+v", err, res)
	}
	got, err := db.Correlation(context.Background(), "order 42", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		string(otlptest.TraceID(1)), string(otlptest.TraceID(2)), string(otlptest.TraceID(5)),
	}
	var ids []string
	for _, s := range got {
		ids = append(ids, string(s.TraceID[:]))
	}
	if !slices.Equal(ids, want) {
		t.Errorf("correlation found traces %x, want 1, 2 and 5 in time order", ids)
	}
}
