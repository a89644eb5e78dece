package spigo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// DefaultMetricsLimit is the size limit ReadMetrics applies when given a
// limit <= 0.
const DefaultMetricsLimit = 16 << 20

// Metrics is an old spigo metrics JSON file
// (json_metrics/<arch>_metrics.json, written until February 2016).
type Metrics struct {
	// Counters maps an actor name to the number of messages it received.
	Counters map[string]int64
	// Gauges maps an actor name to its delivery latency statistics in
	// nanoseconds by name: "P50", "P75", "P90", "P95", "P99", "P999" (and
	// "Min", "Max" in some files). Gauge names are split at their last dot.
	Gauges map[string]map[string]int64
}

// repairNeeded reports the known spigo defect, a missing comma before
// "gauges", at byte off of the input (where the comma belongs).
type repairNeeded struct{ off int64 }

func (r *repairNeeded) Error() string {
	return fmt.Sprintf(`missing comma before "gauges" at byte %d`, r.off)
}

// ReadMetrics reads an old spigo metrics JSON file of at most limit bytes
// (DefaultMetricsLimit when limit <= 0; a larger input is an error). spigo
// wrote these files without a comma between the "counters" object and
// "gauges"; ReadMetrics inserts it, returning the warning
// `repaired missing comma before "gauges" at byte N` (N: the byte after the
// counters object). Any other defect is an error naming it and its byte
// offset in the input as given; errors wrap ingest.ErrInvalid unless
// reading r failed. Values must be integers, names non-empty and distinct,
// and gauge names must end in ".<statistic>". Unknown top-level keys are
// ignored.
func ReadMetrics(r io.Reader, limit int64) (*Metrics, []string, error) {
	if limit <= 0 {
		limit = DefaultMetricsLimit
	}
	buf, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("spigo metrics: read: %w", err)
	}
	if int64(len(buf)) > limit {
		return nil, nil, invalidf("spigo metrics: file is larger than %d bytes", limit)
	}
	m, err := parseMetrics(buf, -1)
	var rep *repairNeeded
	if !errors.As(err, &rep) {
		return m, nil, err
	}
	fixed := make([]byte, 0, len(buf)+1)
	fixed = append(append(append(fixed, buf[:rep.off]...), ','), buf[rep.off:]...)
	if m, err = parseMetrics(fixed, rep.off); err != nil {
		return nil, nil, err
	}
	return m, []string{fmt.Sprintf(`repaired missing comma before "gauges" at byte %d`, rep.off)}, nil
}

// metricsParser holds the state of parseMetrics.
type metricsParser struct {
	j *jsonReader
	m *Metrics
}

// parseMetrics parses buf, into which a comma was inserted at byte
// inserted (-1: none). It returns *repairNeeded, unwrapped, when buf has
// the known defect and no comma was inserted yet.
func parseMetrics(buf []byte, inserted int64) (*Metrics, error) {
	p := &metricsParser{
		j: newJSONReader(bytes.NewReader(buf), "spigo metrics"),
		m: &Metrics{Counters: map[string]int64{}, Gauges: map[string]map[string]int64{}},
	}
	j := p.j
	j.inserted = inserted
	if _, err := j.open('{', "metrics file", false); err != nil {
		return nil, err
	}
	for j.dec.More() {
		key, off, err := j.key("metrics key")
		if err != nil {
			return nil, err
		}
		switch key {
		case "counters":
			err = p.values(`"counters"`, p.counter)
			if err == nil && inserted < 0 {
				// The known defect: "gauges" follows without a comma.
				end := j.offset()
				rest := bytes.TrimLeft(buf[end:], " \t\r\n")
				if bytes.HasPrefix(rest, []byte(`"gauges"`)) {
					return nil, &repairNeeded{off: end}
				}
			}
		case "gauges":
			err = p.values(`"gauges"`, p.gauge)
		default:
			err = j.skip(fmt.Sprintf("value of key %q (byte %d)", clip(key), j.pos(off)))
		}
		if err != nil {
			return nil, err
		}
	}
	if err := j.close("end of metrics file"); err != nil {
		return nil, err
	}
	if err := j.end(); err != nil {
		return nil, err
	}
	return p.m, nil
}

// values reads an object of integers, calling f for each name and value.
func (p *metricsParser) values(ctx string, f func(name string, v int64, off int64) error) error {
	j := p.j
	if _, err := j.open('{', ctx, false); err != nil {
		return err
	}
	for j.dec.More() {
		name, off, err := j.key(ctx + " name")
		if err != nil {
			return err
		}
		vOff := j.nextOffset()
		t, err := j.token(fmt.Sprintf("%s %q", ctx, clip(name)))
		if err != nil {
			return err
		}
		n, ok := t.(json.Number)
		if !ok {
			return p.j.failf(vOff, "%s %q: value is %s, want an integer", ctx, clip(name), describe(t))
		}
		v, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil {
			return p.j.failf(vOff, "%s %q: value %s is not an int64 integer", ctx, clip(name), clip(string(n)))
		}
		if name == "" {
			return p.j.failf(off, "%s: empty name", ctx)
		}
		if err := f(name, v, off); err != nil {
			return err
		}
	}
	return j.close("end of " + ctx)
}

func (p *metricsParser) counter(name string, v int64, off int64) error {
	if _, dup := p.m.Counters[name]; dup {
		return p.j.failf(off, "counter %q appears twice", clip(name))
	}
	p.m.Counters[name] = v
	return nil
}

func (p *metricsParser) gauge(name string, v int64, off int64) error {
	i := strings.LastIndexByte(name, '.')
	if i <= 0 || i == len(name)-1 {
		return p.j.failf(off, "gauge %q: want <actor>.<statistic>", clip(name))
	}
	actor, stat := name[:i], name[i+1:]
	g := p.m.Gauges[actor]
	if g == nil {
		g = make(map[string]int64)
		p.m.Gauges[actor] = g
	}
	if _, dup := g[stat]; dup {
		return p.j.failf(off, "gauge %q appears twice", clip(name))
	}
	g[stat] = v
	return nil
}

// quantiles maps the percentile gauge suffixes to AttrQuantile values, in
// the order their points are written.
var quantiles = []struct{ stat, q string }{
	{"Min", "0"}, {"P50", "0.5"}, {"P75", "0.75"}, {"P90", "0.9"}, {"P95", "0.95"},
	{"P99", "0.99"}, {"P999", "0.999"}, {"Max", "1"},
}

// Descriptions of the old metrics JSON metrics.
const (
	messagesDescription = "Messages the spigo actor received during the run (old spigo metrics JSON counter)"
	deliveryDescription = "Delivery latency (send to receive) of the messages the spigo actor received, " +
		"percentiles from its HDR histogram (old spigo metrics JSON gauges), in nanoseconds"
)

// MetricsRequest converts m into a protobuf-encoded OTLP
// ExportMetricsServiceRequest, one ResourceMetrics per actor (sorted by
// name, resource ResourceAttrs(actor)): the actor's counter as the
// monotonic cumulative int Sum MetricMessagesReceived (unit {message}; its
// start time is unknown and left 0) and its gauges as the Gauge
// MetricDeliveryLatency (unit ns) with one int point per statistic:
// percentiles and Min/Max carry AttrQuantile ("0.5" … "0.999", "0", "1"),
// other statistics AttrStatistic. All points are at at.
func MetricsRequest(m *Metrics, at time.Time) ([]byte, error) {
	ts, err := unixNano(at)
	if err != nil {
		return nil, fmt.Errorf("spigo metrics: %w", err)
	}
	actors := make([]string, 0, len(m.Counters)+len(m.Gauges))
	for a := range m.Counters {
		actors = append(actors, a)
	}
	for a := range m.Gauges {
		actors = append(actors, a)
	}
	slices.Sort(actors)
	actors = slices.Compact(actors)
	req := &colmetricspb.ExportMetricsServiceRequest{}
	for _, actor := range actors {
		var ms []*metricspb.Metric
		if c, ok := m.Counters[actor]; ok {
			ms = append(ms, &metricspb.Metric{
				Name: MetricMessagesReceived, Description: messagesDescription, Unit: "{message}",
				Data: &metricspb.Metric_Sum{Sum: &metricspb.Sum{
					AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
					IsMonotonic:            true,
					DataPoints: []*metricspb.NumberDataPoint{{
						TimeUnixNano: ts,
						Value:        &metricspb.NumberDataPoint_AsInt{AsInt: c},
					}},
				}},
			})
		}
		if g := m.Gauges[actor]; len(g) > 0 {
			ms = append(ms, &metricspb.Metric{
				Name: MetricDeliveryLatency, Description: deliveryDescription, Unit: "ns",
				Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: gaugePoints(g, ts)}},
			})
		}
		if len(ms) == 0 {
			continue
		}
		req.ResourceMetrics = append(req.ResourceMetrics, &metricspb.ResourceMetrics{
			Resource:     resourceOf(actor),
			ScopeMetrics: []*metricspb.ScopeMetrics{{Scope: scope(), Metrics: ms}},
		})
	}
	return proto.Marshal(req)
}

// gaugePoints returns the points of one actor's gauges: quantiles in
// increasing order, then other statistics by name.
func gaugePoints(g map[string]int64, ts uint64) []*metricspb.NumberDataPoint {
	point := func(key, value string, v int64) *metricspb.NumberDataPoint {
		return &metricspb.NumberDataPoint{
			Attributes:   []*commonpb.KeyValue{strKV(key, value)},
			TimeUnixNano: ts,
			Value:        &metricspb.NumberDataPoint_AsInt{AsInt: v},
		}
	}
	out := make([]*metricspb.NumberDataPoint, 0, len(g))
	known := make(map[string]bool, len(quantiles))
	for _, q := range quantiles {
		known[q.stat] = true
		if v, ok := g[q.stat]; ok {
			out = append(out, point(AttrQuantile, q.q, v))
		}
	}
	var other []string
	for stat := range g {
		if !known[stat] {
			other = append(other, stat)
		}
	}
	slices.Sort(other)
	for _, stat := range other {
		out = append(out, point(AttrStatistic, stat, g[stat]))
	}
	return out
}
