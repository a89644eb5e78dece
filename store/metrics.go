package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"

	"github.com/flowscope/flowscope/otlpwire"
)

// Metric chunk values ("mchunks") after the common chunk header:
//
//	varint  minTime, maxTime  (point time_unix_nano bounds)
//	uvarint nNames, then per name: uvarint len, name
//	zstd frame of an ExportMetricsServiceRequest

// WriteMetrics validates and durably stores the data points of req, a
// protobuf ExportMetricsServiceRequest. Invalid points (and metrics without
// a name or data) are counted in the result and dropped; the rest are
// committed before WriteMetrics returns nil. req is not retained.
//
// The limits of spans apply: a metric whose name is over
// otlpwire.MaxNameBytes (names are bbolt keys), a point with more than
// otlpwire.MaxAttributes attributes or a key over otlpwire.MaxAttrKeyBytes,
// and every point of a resource beyond those attribute limits are refused.
func (db *DB) WriteMetrics(ctx context.Context, req []byte) (WriteResult, error) {
	var r colmetricspb.ExportMetricsServiceRequest
	if err := proto.Unmarshal(req, &r); err != nil {
		return WriteResult{}, fmt.Errorf("%w: %v", ErrMalformedMetrics, err)
	}
	var res WriteResult
	reject := func(n int, msg string) {
		if n <= 0 {
			n = 1
		}
		res.Rejected += int64(n)
		if res.Message == "" {
			res.Message = msg
		}
	}
	minT, maxT := int64(1<<63-1), int64(0)
	names := map[string]MetricInfo{}
	future := uint64(db.opts.Now().Add(MaxFutureSkew).UnixNano())
	for _, rm := range r.ResourceMetrics {
		if problem := attrLimitProblem(rm.GetResource().GetAttributes()); problem != "" {
			// Like a span's resource: every point of the resource is refused.
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					reject(countPoints(m), fmt.Sprintf("metric %s: resource %s", quoteMetric(m.Name), problem))
				}
				sm.Metrics = nil
			}
			continue
		}
		for _, sm := range rm.ScopeMetrics {
			sm.Metrics = slices.DeleteFunc(sm.Metrics, func(m *metricspb.Metric) bool {
				n := validateMetric(m, future, reject)
				if n == 0 {
					return true
				}
				res.Accepted += int64(n)
				forEachPointTime(m, func(t uint64) {
					minT = min(minT, int64(t))
					maxT = max(maxT, int64(t))
				})
				if _, ok := names[m.Name]; !ok {
					names[m.Name] = MetricInfo{Name: m.Name, Type: metricType(m), Unit: m.Unit, Description: m.Description}
				}
				return false
			})
		}
	}
	if res.Rejected > 0 {
		db.m.pointsRejected.Add(float64(res.Rejected))
	}
	if res.Accepted == 0 {
		return res, nil
	}
	payload := req
	if res.Rejected > 0 {
		var err error
		if payload, err = proto.Marshal(&r); err != nil {
			return WriteResult{}, fmt.Errorf("re-encode metrics: %w", err)
		}
	}
	var extra []byte
	extra = binary.AppendVarint(extra, minT)
	extra = binary.AppendVarint(extra, maxT)
	extra = binary.AppendUvarint(extra, uint64(len(names)))
	p := &pending{metrics: true, points: res.Accepted, size: int64(len(req))}
	for name, mi := range names {
		extra = binary.AppendUvarint(extra, uint64(len(name)))
		extra = append(extra, name...)
		if old, ok := db.namesSeen.Load(name); !ok || old.(MetricInfo) != mi {
			p.names = append(p.names, mi)
		}
	}
	p.data = compressChunk(extra, payload)
	if err := db.enqueue(ctx, p); err != nil {
		db.m.pointsRefused.Add(float64(res.Accepted))
		return WriteResult{Rejected: res.Rejected, Message: res.Message}, err
	}
	db.m.pointsAccepted.Add(float64(res.Accepted))
	return res, nil
}

// ErrMalformedMetrics is wrapped by WriteMetrics errors for undecodable requests.
var ErrMalformedMetrics = fmt.Errorf("malformed OTLP metrics protobuf")

// validateMetric drops invalid points of m in place and returns how many
// points remain. reject is called for every dropped point or metric.
// validateMetric drops the invalid points of m, reporting each to reject,
// and returns how many are left. Points later than limit (Unix ns: the
// clock plus MaxFutureSkew) are refused like spans ending that late.
func validateMetric(m *metricspb.Metric, limit uint64, reject func(int, string)) int {
	if m.Name == "" {
		reject(countPoints(m), "metric name is missing")
		return 0
	}
	if len(m.Name) > otlpwire.MaxNameBytes {
		// Metric names are bbolt keys ("mnames"): refused here, never
		// discovered by a failing commit.
		reject(countPoints(m), fmt.Sprintf("metric %s: name is %d bytes, the limit is %d", quoteMetric(m.Name), len(m.Name), otlpwire.MaxNameBytes))
		return 0
	}
	bad := func(msg string) { reject(1, fmt.Sprintf("metric %q: %s", m.Name, msg)) }
	// overLimit refuses a point whose attributes exceed a limit.
	overLimit := func(attrs []*commonpb.KeyValue, t uint64) bool {
		if problem := attrLimitProblem(attrs); problem != "" {
			bad("data point " + problem)
			return true
		}
		if t > limit {
			bad(fmt.Sprintf("data point time %s is more than %s ahead of the collector's clock",
				time.Unix(0, int64(min(t, 1<<63-1))).UTC().Format(time.RFC3339), MaxFutureSkew))
			return true
		}
		return false
	}
	switch d := m.Data.(type) {
	case *metricspb.Metric_Gauge:
		d.Gauge.DataPoints = slices.DeleteFunc(d.Gauge.DataPoints, func(p *metricspb.NumberDataPoint) bool {
			return overLimit(p.Attributes, p.TimeUnixNano) || numberBad(p, bad)
		})
		return len(d.Gauge.DataPoints)
	case *metricspb.Metric_Sum:
		d.Sum.DataPoints = slices.DeleteFunc(d.Sum.DataPoints, func(p *metricspb.NumberDataPoint) bool {
			return overLimit(p.Attributes, p.TimeUnixNano) || numberBad(p, bad)
		})
		return len(d.Sum.DataPoints)
	case *metricspb.Metric_Histogram:
		d.Histogram.DataPoints = slices.DeleteFunc(d.Histogram.DataPoints, func(p *metricspb.HistogramDataPoint) bool {
			switch {
			case overLimit(p.Attributes, p.TimeUnixNano):
			case p.TimeUnixNano == 0:
				bad("data point time is missing")
			case len(p.BucketCounts) != 0 && len(p.BucketCounts) != len(p.ExplicitBounds)+1:
				bad(fmt.Sprintf("histogram has %d bucket counts for %d bounds", len(p.BucketCounts), len(p.ExplicitBounds)))
			case !slices.IsSorted(p.ExplicitBounds):
				bad("histogram bounds are not sorted")
			default:
				return false
			}
			return true
		})
		return len(d.Histogram.DataPoints)
	case *metricspb.Metric_ExponentialHistogram:
		d.ExponentialHistogram.DataPoints = slices.DeleteFunc(d.ExponentialHistogram.DataPoints, func(p *metricspb.ExponentialHistogramDataPoint) bool {
			switch {
			case overLimit(p.Attributes, p.TimeUnixNano):
			case p.TimeUnixNano == 0:
				bad("data point time is missing")
			case p.Scale < -10 || p.Scale > 20:
				bad(fmt.Sprintf("exponential histogram scale %d out of range [-10, 20]", p.Scale))
			default:
				return false
			}
			return true
		})
		return len(d.ExponentialHistogram.DataPoints)
	case *metricspb.Metric_Summary:
		d.Summary.DataPoints = slices.DeleteFunc(d.Summary.DataPoints, func(p *metricspb.SummaryDataPoint) bool {
			if overLimit(p.Attributes, p.TimeUnixNano) {
				return true
			}
			if p.TimeUnixNano == 0 {
				bad("data point time is missing")
				return true
			}
			for _, q := range p.QuantileValues {
				if q.Quantile < 0 || q.Quantile > 1 {
					bad(fmt.Sprintf("summary quantile %g out of range [0, 1]", q.Quantile))
					return true
				}
			}
			return false
		})
		return len(d.Summary.DataPoints)
	default:
		reject(1, fmt.Sprintf("metric %q has no data", m.Name))
		return 0
	}
}

// attrLimitProblem names the limit of otlpwire (MaxAttributes,
// MaxAttrKeyBytes) that attrs exceed, the same as for spans; "" if none.
func attrLimitProblem(attrs []*commonpb.KeyValue) string {
	if len(attrs) > otlpwire.MaxAttributes {
		return fmt.Sprintf("has %d attributes, the limit is %d", len(attrs), otlpwire.MaxAttributes)
	}
	for _, kv := range attrs {
		if len(kv.Key) > otlpwire.MaxAttrKeyBytes {
			return fmt.Sprintf("attribute key is %d bytes, the limit is %d", len(kv.Key), otlpwire.MaxAttrKeyBytes)
		}
	}
	return ""
}

// quoteMetric quotes a metric name for a message, cut to 128 bytes.
func quoteMetric(name string) string {
	const maxQuoted = 128
	if len(name) <= maxQuoted {
		return strconv.Quote(name)
	}
	return strconv.Quote(name[:maxQuoted]) + "…"
}

func numberBad(p *metricspb.NumberDataPoint, bad func(string)) bool {
	switch {
	case p.TimeUnixNano == 0:
		bad("data point time is missing")
	case p.Value == nil:
		bad("data point has no value")
	default:
		return false
	}
	return true
}

func countPoints(m *metricspb.Metric) int {
	n := 0
	forEachPointTime(m, func(uint64) { n++ })
	return n
}

func forEachPointTime(m *metricspb.Metric, f func(uint64)) {
	switch d := m.Data.(type) {
	case *metricspb.Metric_Gauge:
		for _, p := range d.Gauge.DataPoints {
			f(p.TimeUnixNano)
		}
	case *metricspb.Metric_Sum:
		for _, p := range d.Sum.DataPoints {
			f(p.TimeUnixNano)
		}
	case *metricspb.Metric_Histogram:
		for _, p := range d.Histogram.DataPoints {
			f(p.TimeUnixNano)
		}
	case *metricspb.Metric_ExponentialHistogram:
		for _, p := range d.ExponentialHistogram.DataPoints {
			f(p.TimeUnixNano)
		}
	case *metricspb.Metric_Summary:
		for _, p := range d.Summary.DataPoints {
			f(p.TimeUnixNano)
		}
	}
}

func metricType(m *metricspb.Metric) string {
	switch m.Data.(type) {
	case *metricspb.Metric_Gauge:
		return "gauge"
	case *metricspb.Metric_Sum:
		return "sum"
	case *metricspb.Metric_Histogram:
		return "histogram"
	case *metricspb.Metric_ExponentialHistogram:
		return "exponential_histogram"
	case *metricspb.Metric_Summary:
		return "summary"
	}
	return ""
}

func encodeMetricInfo(mi MetricInfo) []byte {
	var b []byte
	for _, s := range []string{mi.Type, mi.Unit, mi.Description} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeMetricInfo(k, v []byte) (MetricInfo, error) {
	r := reader{b: v}
	mi := MetricInfo{Name: string(k)}
	mi.Type = string(r.bytes(r.uvarint()))
	mi.Unit = string(r.bytes(r.uvarint()))
	mi.Description = string(r.bytes(r.uvarint()))
	if r.err != nil {
		return mi, fmt.Errorf("metric name %q: %w", k, r.err)
	}
	return mi, nil
}

// metricChunkHeader decodes the index part of a metric chunk value and
// returns the compressed payload.
func metricChunkHeader(v []byte) (minT, maxT int64, names []string, payload []byte, err error) {
	if len(v) < chunkHeaderSize || v[0] != chunkVersion {
		return 0, 0, nil, nil, fmt.Errorf("metric chunk: %w", errCorrupt)
	}
	r := reader{b: v[chunkHeaderSize:]}
	minT, maxT = r.varint(), r.varint()
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		names = append(names, string(r.bytes(r.uvarint())))
	}
	return minT, maxT, names, r.b, r.err
}

// MetricNames returns the metrics with points in [start, end], sorted by name.
func (db *DB) MetricNames(ctx context.Context, start, end time.Time) ([]MetricInfo, error) {
	seen := map[string]bool{}
	err := db.scanMetricChunks(start, end, func(names []string, _ []byte) (bool, error) {
		for _, n := range names {
			seen[n] = true
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]MetricInfo, 0, len(seen))
	for n := range seen {
		mi := MetricInfo{Name: n}
		if v, ok := db.namesSeen.Load(n); ok {
			mi = v.(MetricInfo)
		}
		out = append(out, mi)
	}
	slices.SortFunc(out, func(a, b MetricInfo) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

// Metrics returns the data of metric name with points in [start, end]: one
// ResourceMetrics per stored export request that had such points, holding
// only that metric, in commit order.
func (db *DB) Metrics(ctx context.Context, name string, start, end time.Time) ([]*metricspb.ResourceMetrics, error) {
	from, to := uint64(max(start.UnixNano(), 0)), uint64(end.UnixNano())
	if end.IsZero() {
		to = 1<<64 - 1
	}
	var out []*metricspb.ResourceMetrics
	_, dec := codecs()
	err := db.scanMetricChunks(start, end, func(names []string, payload []byte) (bool, error) {
		if !slices.Contains(names, name) {
			return false, nil
		}
		raw, err := dec.DecodeAll(payload, nil)
		if err != nil {
			return false, fmt.Errorf("decompress metric chunk: %w", err)
		}
		var r colmetricspb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(raw, &r); err != nil {
			return false, fmt.Errorf("decode metric chunk: %w", err)
		}
		for _, rm := range r.ResourceMetrics {
			keep := rm.ScopeMetrics[:0]
			for _, sm := range rm.ScopeMetrics {
				sm.Metrics = slices.DeleteFunc(sm.Metrics, func(m *metricspb.Metric) bool {
					return m.Name != name || !filterPoints(m, from, to)
				})
				if len(sm.Metrics) > 0 {
					keep = append(keep, sm)
				}
			}
			rm.ScopeMetrics = keep
			if len(keep) > 0 {
				out = append(out, rm)
			}
		}
		return ctx.Err() != nil, ctx.Err()
	})
	return out, err
}

// filterPoints keeps the points of m with time in [from, to] and reports
// whether any remain.
func filterPoints(m *metricspb.Metric, from, to uint64) bool {
	in := func(t uint64) bool { return t >= from && t <= to }
	switch d := m.Data.(type) {
	case *metricspb.Metric_Gauge:
		d.Gauge.DataPoints = slices.DeleteFunc(d.Gauge.DataPoints, func(p *metricspb.NumberDataPoint) bool { return !in(p.TimeUnixNano) })
		return len(d.Gauge.DataPoints) > 0
	case *metricspb.Metric_Sum:
		d.Sum.DataPoints = slices.DeleteFunc(d.Sum.DataPoints, func(p *metricspb.NumberDataPoint) bool { return !in(p.TimeUnixNano) })
		return len(d.Sum.DataPoints) > 0
	case *metricspb.Metric_Histogram:
		d.Histogram.DataPoints = slices.DeleteFunc(d.Histogram.DataPoints, func(p *metricspb.HistogramDataPoint) bool { return !in(p.TimeUnixNano) })
		return len(d.Histogram.DataPoints) > 0
	case *metricspb.Metric_ExponentialHistogram:
		d.ExponentialHistogram.DataPoints = slices.DeleteFunc(d.ExponentialHistogram.DataPoints, func(p *metricspb.ExponentialHistogramDataPoint) bool { return !in(p.TimeUnixNano) })
		return len(d.ExponentialHistogram.DataPoints) > 0
	case *metricspb.Metric_Summary:
		d.Summary.DataPoints = slices.DeleteFunc(d.Summary.DataPoints, func(p *metricspb.SummaryDataPoint) bool { return !in(p.TimeUnixNano) })
		return len(d.Summary.DataPoints) > 0
	}
	return false
}

// scanMetricChunks calls fn for every metric chunk whose point time bounds
// overlap [start, end] (zero = unbounded), oldest first, until fn says stop.
func (db *DB) scanMetricChunks(start, end time.Time, fn func(names []string, payload []byte) (bool, error)) error {
	if db.closed.Load() {
		return ErrClosed
	}
	return db.bolt.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketMChunks).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			minT, maxT, names, payload, err := metricChunkHeader(v)
			if err != nil {
				return fmt.Errorf("metric chunk %x: %w", k, err)
			}
			if (!start.IsZero() && maxT < start.UnixNano()) || (!end.IsZero() && minT > end.UnixNano()) {
				continue
			}
			stop, err := fn(names, payload)
			if err != nil || stop {
				return err
			}
		}
		return nil
	})
}
