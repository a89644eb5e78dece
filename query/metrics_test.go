package query

import (
	"math"
	"testing"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

func TestAnyValueString(t *testing.T) {
	f := func(v *commonpb.AnyValue, want string) {
		t.Helper()
		if got := anyValueString(v); got != want {
			t.Errorf("anyValueString(%v) = %q, want %q", v, got, want)
		}
	}
	str := func(s string) *commonpb.AnyValue {
		return &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: s}}
	}
	f(nil, "")
	f(str("a \"b\""), `a "b"`)
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_BoolValue{BoolValue: true}}, "true")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: -42}}, "-42")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: 1.5}}, "1.5")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_DoubleValue{DoubleValue: math.Inf(1)}}, "+Inf")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_BytesValue{BytesValue: []byte{0xca, 0xfe}}}, "cafe")
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_ArrayValue{ArrayValue: &commonpb.ArrayValue{
		Values: []*commonpb.AnyValue{str("x"), {Value: &commonpb.AnyValue_IntValue{IntValue: 1}}},
	}}}, `["x",1]`)
	f(&commonpb.AnyValue{Value: &commonpb.AnyValue_KvlistValue{KvlistValue: &commonpb.KeyValueList{
		Values: []*commonpb.KeyValue{{Key: "b", Value: str("2")}, {Key: "a", Value: str("1")}},
	}}}, `{"a":"1","b":"2"}`)
}

func TestMetricResponseMalformedHistogram(t *testing.T) {
	rm := fixtureHistogram()[0]
	p := rm.ScopeMetrics[0].Metrics[0].GetHistogram().DataPoints[0]
	p.BucketCounts = p.BucketCounts[:2] // does not match the bounds
	resp := metricResponse("http.server.request.duration", fixtureHistogram()[:0], DefaultQuantiles)
	if len(resp.Series) != 0 || resp.Type != "" {
		t.Fatalf("empty input gave %v", resp)
	}
	resp = metricResponse("http.server.request.duration", []*metricspb.ResourceMetrics{rm}, DefaultQuantiles)
	pt := resp.Series[0].Points[0]
	if len(pt.Buckets) != 0 || len(pt.Quantiles) != 0 || pt.GetCount() != 10 {
		t.Errorf("malformed histogram point = %v; want count only", pt)
	}
}
