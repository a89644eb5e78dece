package spigo

import (
	"fmt"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
)

// ScopeName is the instrumentation scope name of the OTLP metrics built by
// GuessMetrics and MetricsRequest.
const ScopeName = "github.com/flowscope/flowscope/ingest/spigo"

// Names of the OTLP metrics and attributes built from spigo files.
const (
	// MetricLatency is the exponential histogram of Guesstimate samples (ns).
	MetricLatency = "spigo.latency"
	// AttrHistogram names a traffic generator's histogram on
	// MetricLatency points: resp, serv, net or rt.
	AttrHistogram = "spigo.histogram"
	// MetricMessagesReceived is the old metrics JSON counter of messages an
	// actor received.
	MetricMessagesReceived = "spigo.messages.received"
	// MetricDeliveryLatency is the gauge of the old metrics JSON delivery
	// latency percentiles (ns).
	MetricDeliveryLatency = "spigo.delivery.latency"
	// AttrQuantile is the quantile of a MetricDeliveryLatency point, as a
	// decimal string ("0.5", "0.999"; "0" for Min, "1" for Max).
	AttrQuantile = "quantile"
	// AttrStatistic names a MetricDeliveryLatency point of another
	// statistic than a quantile: the gauge name's suffix as written.
	AttrStatistic = "statistic"
)

// scope returns the instrumentation scope of the built metrics.
func scope() *commonpb.InstrumentationScope {
	return &commonpb.InstrumentationScope{Name: ScopeName}
}

// resourceOf returns the resource of a spigo actor name (ResourceAttrs).
func resourceOf(name string) *resourcepb.Resource {
	attrs := ResourceAttrs(name)
	kvs := make([]*commonpb.KeyValue, len(attrs))
	for i, a := range attrs {
		kvs[i] = strKV(a.Key, a.Value)
	}
	return &resourcepb.Resource{Attributes: kvs}
}

func strKV(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// unixNano returns at as OTLP time; at must be after the Unix epoch (OTLP
// reads 0 as "no time") and representable.
func unixNano(at time.Time) (uint64, error) {
	if !at.After(time.Unix(0, 0)) || at.After(time.Unix(0, 1<<63-1)) {
		return 0, fmt.Errorf("time %v is not between the Unix epoch and the year 2262", at)
	}
	return uint64(at.UnixNano()), nil
}
