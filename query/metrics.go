package query

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/flowscope/flowscope/query/querypb"
)

// Metric type names, as in store.MetricInfo.Type.
const (
	metricTypeGauge                = "gauge"
	metricTypeSum                  = "sum"
	metricTypeHistogram            = "histogram"
	metricTypeExponentialHistogram = "exponential_histogram"
	metricTypeSummary              = "summary"
)

// flagNoRecordedValue is OTLP's DataPointFlags FLAG_NO_RECORDED_VALUE: the
// point marks the end of a series and carries no value. Such points are left
// out of the response.
const flagNoRecordedValue = uint32(metricspb.DataPointFlags_DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK)

// seriesBuilder groups the points of one metric into series keyed by
// resource attributes plus point attributes.
type seriesBuilder struct {
	qs     []float64
	series map[string]*seriesEntry
}

type seriesEntry struct {
	key    string
	series *querypb.Series
}

// metricResponse converts the store's data of metric name into the API
// response, estimating quantiles qs for histogram points. Series are sorted
// by their attributes, points by time.
func metricResponse(name string, rms []*metricspb.ResourceMetrics, qs []float64) *querypb.GetMetricResponse {
	resp := &querypb.GetMetricResponse{Name: name, Series: []*querypb.Series{}}
	b := &seriesBuilder{qs: qs, series: make(map[string]*seriesEntry)}
	for _, rm := range rms {
		res := rm.GetResource().GetAttributes()
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m.GetName() != name {
					continue
				}
				if resp.Type == "" {
					resp.Type = metricType(m)
					resp.Unit = m.GetUnit()
					resp.Description = m.GetDescription()
				}
				b.add(res, m)
			}
		}
	}
	entries := make([]*seriesEntry, 0, len(b.series))
	for _, e := range b.series {
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b *seriesEntry) int { return cmp.Compare(a.key, b.key) })
	for _, e := range entries {
		slices.SortStableFunc(e.series.Points, func(a, b *querypb.Point) int {
			return cmp.Or(cmp.Compare(a.TimeUnixNano, b.TimeUnixNano), cmp.Compare(a.StartTimeUnixNano, b.StartTimeUnixNano))
		})
		resp.Series = append(resp.Series, e.series)
	}
	return resp
}

// metricType names the data type of m as store.MetricInfo.Type does.
func metricType(m *metricspb.Metric) string {
	switch m.GetData().(type) {
	case *metricspb.Metric_Gauge:
		return metricTypeGauge
	case *metricspb.Metric_Sum:
		return metricTypeSum
	case *metricspb.Metric_Histogram:
		return metricTypeHistogram
	case *metricspb.Metric_ExponentialHistogram:
		return metricTypeExponentialHistogram
	case *metricspb.Metric_Summary:
		return metricTypeSummary
	}
	return ""
}

func (b *seriesBuilder) add(res []*commonpb.KeyValue, m *metricspb.Metric) {
	switch d := m.GetData().(type) {
	case *metricspb.Metric_Gauge:
		for _, p := range d.Gauge.GetDataPoints() {
			b.addNumber(res, p)
		}
	case *metricspb.Metric_Sum:
		for _, p := range d.Sum.GetDataPoints() {
			b.addNumber(res, p)
		}
	case *metricspb.Metric_Histogram:
		for _, p := range d.Histogram.GetDataPoints() {
			b.addHistogram(res, p)
		}
	case *metricspb.Metric_ExponentialHistogram:
		for _, p := range d.ExponentialHistogram.GetDataPoints() {
			b.addExponential(res, p)
		}
	case *metricspb.Metric_Summary:
		for _, p := range d.Summary.GetDataPoints() {
			b.addSummary(res, p)
		}
	}
}

// append adds pt to the series of (res, attrs).
func (b *seriesBuilder) append(res, attrs []*commonpb.KeyValue, pt *querypb.Point) {
	ra, pa := attrMap(res), attrMap(attrs)
	key := seriesKey(ra) + "\x00" + seriesKey(pa)
	e, ok := b.series[key]
	if !ok {
		e = &seriesEntry{key: key, series: &querypb.Series{ResourceAttributes: ra, Attributes: pa}}
		b.series[key] = e
	}
	e.series.Points = append(e.series.Points, pt)
}

func newPoint(start, t uint64, exemplars []*metricspb.Exemplar) *querypb.Point {
	return &querypb.Point{
		TimeUnixNano:      int64(t),
		StartTimeUnixNano: int64(start),
		Buckets:           []*querypb.Bucket{},
		Quantiles:         []*querypb.Quantile{},
		Exemplars:         convertExemplars(exemplars),
	}
}

func (b *seriesBuilder) addNumber(res []*commonpb.KeyValue, p *metricspb.NumberDataPoint) {
	if p.GetFlags()&flagNoRecordedValue != 0 {
		return
	}
	pt := newPoint(p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), p.GetExemplars())
	v := numberValue(p.GetValue())
	pt.Value = &v
	b.append(res, p.GetAttributes(), pt)
}

func (b *seriesBuilder) addHistogram(res []*commonpb.KeyValue, p *metricspb.HistogramDataPoint) {
	if p.GetFlags()&flagNoRecordedValue != 0 {
		return
	}
	pt := newPoint(p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), p.GetExemplars())
	count := p.GetCount()
	pt.Count = &count
	pt.Sum, pt.Min, pt.Max = p.Sum, p.Min, p.Max
	bounds, counts := p.GetExplicitBounds(), p.GetBucketCounts()
	if len(counts) == len(bounds)+1 {
		for i, c := range counts {
			if c == 0 {
				continue
			}
			lower, upper := math.Inf(-1), math.Inf(1)
			if i > 0 {
				lower = bounds[i-1]
			}
			if i < len(bounds) {
				upper = bounds[i]
			}
			pt.Buckets = append(pt.Buckets, &querypb.Bucket{Lower: lower, Upper: upper, Count: c})
		}
		for _, q := range b.qs {
			if v, ok := explicitQuantile(q, bounds, counts); ok {
				pt.Quantiles = append(pt.Quantiles, &querypb.Quantile{Quantile: q, Value: clamp(v, p.Min, p.Max)})
			}
		}
	}
	b.append(res, p.GetAttributes(), pt)
}

func (b *seriesBuilder) addExponential(res []*commonpb.KeyValue, p *metricspb.ExponentialHistogramDataPoint) {
	if p.GetFlags()&flagNoRecordedValue != 0 {
		return
	}
	pt := newPoint(p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), p.GetExemplars())
	count := p.GetCount()
	pt.Count = &count
	pt.Sum, pt.Min, pt.Max = p.Sum, p.Min, p.Max
	buckets := exponentialBuckets(p.GetScale(), p.GetZeroCount(), p.GetZeroThreshold(),
		p.GetPositive().GetOffset(), p.GetPositive().GetBucketCounts(),
		p.GetNegative().GetOffset(), p.GetNegative().GetBucketCounts())
	for _, bk := range buckets {
		if bk.count > 0 {
			pt.Buckets = append(pt.Buckets, &querypb.Bucket{Lower: bk.lower, Upper: bk.upper, Count: bk.count})
		}
	}
	for _, q := range b.qs {
		if v, ok := bucketQuantile(q, buckets); ok {
			pt.Quantiles = append(pt.Quantiles, &querypb.Quantile{Quantile: q, Value: clamp(v, p.Min, p.Max)})
		}
	}
	b.append(res, p.GetAttributes(), pt)
}

func (b *seriesBuilder) addSummary(res []*commonpb.KeyValue, p *metricspb.SummaryDataPoint) {
	if p.GetFlags()&flagNoRecordedValue != 0 {
		return
	}
	pt := newPoint(p.GetStartTimeUnixNano(), p.GetTimeUnixNano(), nil)
	count, sum := p.GetCount(), p.GetSum()
	pt.Count, pt.Sum = &count, &sum
	for _, qv := range p.GetQuantileValues() {
		pt.Quantiles = append(pt.Quantiles, &querypb.Quantile{Quantile: qv.GetQuantile(), Value: qv.GetValue()})
	}
	slices.SortStableFunc(pt.Quantiles, func(a, b *querypb.Quantile) int { return cmp.Compare(a.Quantile, b.Quantile) })
	b.append(res, p.GetAttributes(), pt)
}

// numberValue returns a NumberDataPoint or Exemplar value as a float64.
func numberValue(v any) float64 {
	switch v := v.(type) {
	case *metricspb.NumberDataPoint_AsDouble:
		return v.AsDouble
	case *metricspb.NumberDataPoint_AsInt:
		return float64(v.AsInt)
	case *metricspb.Exemplar_AsDouble:
		return v.AsDouble
	case *metricspb.Exemplar_AsInt:
		return float64(v.AsInt)
	}
	return 0
}

func convertExemplars(exs []*metricspb.Exemplar) []*querypb.Exemplar {
	out := make([]*querypb.Exemplar, 0, len(exs))
	for _, ex := range exs {
		out = append(out, &querypb.Exemplar{
			TimeUnixNano: int64(ex.GetTimeUnixNano()),
			Value:        numberValue(ex.GetValue()),
			TraceId:      hex.EncodeToString(ex.GetTraceId()),
			SpanId:       hex.EncodeToString(ex.GetSpanId()),
			Attributes:   attrMap(ex.GetFilteredAttributes()),
		})
	}
	return out
}

// attrMap renders OTLP attributes as strings (see anyValueString). Of
// repeated keys the last wins.
func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = anyValueString(kv.GetValue())
	}
	return m
}

// seriesKey encodes m canonically: sorted, quoted key=value pairs.
func seriesKey(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for _, k := range keys {
		sb.WriteString(strconv.Quote(k))
		sb.WriteByte('=')
		sb.WriteString(strconv.Quote(m[k]))
		sb.WriteByte(',')
	}
	return sb.String()
}

// anyValueString renders an attribute value as a string: strings as they
// are, numbers and booleans as in JSON (non-finite doubles as +Inf, -Inf,
// NaN), bytes as lowercase hex, arrays and key-value lists as compact JSON.
func anyValueString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case nil:
		return ""
	}
	switch x := anyValueGo(v).(type) {
	case string:
		return x
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return ""
		}
		return string(b)
	}
}

// anyValueGo converts an AnyValue to the Go value encoding/json renders as
// wanted; non-finite doubles become strings, which JSON cannot hold.
func anyValueGo(v *commonpb.AnyValue) any {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_BoolValue:
		return x.BoolValue
	case *commonpb.AnyValue_IntValue:
		return x.IntValue
	case *commonpb.AnyValue_DoubleValue:
		if math.IsInf(x.DoubleValue, 0) || math.IsNaN(x.DoubleValue) {
			return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
		}
		return x.DoubleValue
	case *commonpb.AnyValue_BytesValue:
		return hex.EncodeToString(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue:
		out := make([]any, 0, len(x.ArrayValue.GetValues()))
		for _, e := range x.ArrayValue.GetValues() {
			out = append(out, anyValueGo(e))
		}
		return out
	case *commonpb.AnyValue_KvlistValue:
		out := make(map[string]any, len(x.KvlistValue.GetValues()))
		for _, kv := range x.KvlistValue.GetValues() {
			out[kv.GetKey()] = anyValueGo(kv.GetValue())
		}
		return out
	}
	return nil
}
