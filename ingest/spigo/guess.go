package spigo

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// GuessDataType is the guesstimateType of raw samples.
const GuessDataType = "DATA"

// Guess is a spigo Guesstimate file (json_metrics/<arch>.guess): latency
// samples per actor histogram.
type Guess struct {
	Name        string // "space.name": the architecture
	Description string // "space.description"
	// Series holds the DATA guesstimates, in file order.
	Series []GuessSeries
	// Skipped lists what was not turned into a series, and why.
	Skipped []Skip
}

// GuessSeries is one DATA guesstimate: the raw samples of one histogram.
type GuessSeries struct {
	MetricID string // the metric's "id"
	// Name is the hierarchical actor name of the metric's "name", without
	// Suffix.
	Name string
	// Suffix names a traffic generator's histogram: "resp" (cr−cs),
	// "serv" (ss−sr), "net" (delivery) or "rt" (round trip), split off a
	// trailing _resp, _serv, _net or _rt; "" for an actor's message
	// delivery latency.
	Suffix string
	// Samples are latencies in nanoseconds, in file order.
	Samples []int64
}

// Skip is a metric or guesstimate of a Guesstimate file that is not a
// series.
type Skip struct {
	MetricID string
	Name     string // the metric's name as written; "" when unknown
	Reason   string
}

// Reasons of Skip. A guesstimate of another type than DATA is skipped
// with the reason `guesstimate type "<type>"`.
const (
	SkipUnknownMetric   = "unknown metric id"
	SkipDuplicateMetric = "duplicate metric id"
	SkipDuplicateGuess  = "second guesstimate for the metric"
	SkipNoGuesstimate   = "no guesstimate"
	SkipNoSamples       = "no samples"
	SkipNoName          = "metric without name"
)

// guessSuffixes are the histogram suffixes of traffic generators.
var guessSuffixes = [...]string{"resp", "serv", "net", "rt"}

// SplitGuessName splits a Guesstimate metric name into the actor name and
// a trailing histogram suffix (resp, serv, net or rt, after "_"), or "".
func SplitGuessName(name string) (actor, suffix string) {
	for _, s := range guessSuffixes {
		if a, ok := strings.CutSuffix(name, "_"+s); ok && a != "" {
			return a, s
		}
	}
	return name, ""
}

// guessMetric is one entry of space.graph.metrics.
type guessMetric struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// guesstimate is one entry of space.graph.guesstimates as read.
type guesstimate struct {
	index   int
	off     int64
	metric  string
	typ     string
	samples []int64
	// The first bad sample, reported for DATA guesstimates only: its
	// index (-1 for none), byte offset and problem.
	badIndex   int
	badOff     int64
	badProblem string
}

// guessReader holds the state of ReadGuess.
type guessReader struct {
	j       *jsonReader
	g       *Guess
	metrics []guessMetric
	guesses []guesstimate
	space   bool
}

// ReadGuess reads a spigo Guesstimate file. It streams the file, reading
// samples token by token; the caller bounds its size. Keys may come in any
// order (metrics after guesstimates too) and unknown keys are ignored.
// Every DATA guesstimate with samples becomes a series; other types
// (POINT, LOGNORMAL, FUNCTION, …), guesstimates of an unknown metric id or
// of a metric without name, second guesstimates of a metric, metrics
// without a guesstimate and empty DATA are listed in Skipped. Samples must
// be JSON numbers within int64 nanoseconds (a fraction is rounded to the
// nearest nanosecond); anything else in a DATA guesstimate is an error
// naming the guesstimate, its metric, the sample index and its byte
// offset. Errors wrap ingest.ErrInvalid unless reading r failed.
func ReadGuess(r io.Reader) (*Guess, error) {
	gr := &guessReader{j: newJSONReader(r, "spigo guesstimate"), g: &Guess{}}
	if err := gr.read(); err != nil {
		return nil, err
	}
	if err := gr.resolve(); err != nil {
		return nil, err
	}
	return gr.g, nil
}

// object reads an object, calling f for each key with the reader
// positioned at its value; f must consume the value.
func (gr *guessReader) object(ctx string, nullOK bool, f func(key string, off int64) error) error {
	j := gr.j
	ok, err := j.open('{', ctx, nullOK)
	if err != nil || !ok {
		return err
	}
	for j.dec.More() {
		key, off, err := j.key(ctx + " key")
		if err != nil {
			return err
		}
		if err := f(key, off); err != nil {
			return err
		}
	}
	return j.close("end of " + ctx)
}

// array reads an array, calling f for each element.
func (gr *guessReader) array(ctx string, f func(i int) error) error {
	j := gr.j
	ok, err := j.open('[', ctx, true)
	if err != nil || !ok {
		return err
	}
	for i := 0; j.dec.More(); i++ {
		if err := f(i); err != nil {
			return err
		}
	}
	return j.close("end of " + ctx)
}

func (gr *guessReader) skip(key string, off int64) error {
	return gr.j.skip(fmt.Sprintf("value of key %q (byte %d)", clip(key), off))
}

func (gr *guessReader) read() error {
	j := gr.j
	err := gr.object("guesstimate file", false, func(key string, off int64) error {
		if key != "space" {
			return gr.skip(key, off)
		}
		gr.space = true
		return gr.object(`"space"`, true, func(key string, off int64) error {
			var err error
			switch key {
			case "name":
				gr.g.Name, err = j.str(`"space.name"`)
			case "description":
				gr.g.Description, err = j.str(`"space.description"`)
			case "graph":
				err = gr.object(`"space.graph"`, true, gr.graphKey)
			default:
				err = gr.skip(key, off)
			}
			return err
		})
	})
	if err != nil {
		return err
	}
	if !gr.space {
		return j.failf(j.offset(), `no "space" object`)
	}
	return j.end()
}

// graphKey reads one key of space.graph.
func (gr *guessReader) graphKey(key string, off int64) error {
	j := gr.j
	switch key {
	case "metrics":
		return gr.array(`"metrics"`, func(int) error {
			var m guessMetric
			if err := j.decode(&m, fmt.Sprintf("metric %d", len(gr.metrics))); err != nil {
				return err
			}
			gr.metrics = append(gr.metrics, m)
			return nil
		})
	case "guesstimates":
		return gr.array(`"guesstimates"`, func(int) error { return gr.readGuesstimate() })
	}
	return gr.skip(key, off)
}

// readGuesstimate reads one guesstimate object.
func (gr *guessReader) readGuesstimate() error {
	j := gr.j
	g := guesstimate{index: len(gr.guesses), off: j.nextOffset(), badIndex: -1}
	ctx := fmt.Sprintf("guesstimate %d", g.index)
	err := gr.object(ctx, false, func(key string, off int64) error {
		var err error
		switch key {
		case "metric":
			g.metric, err = j.str(ctx + ` "metric"`)
		case "guesstimateType":
			g.typ, err = j.str(ctx + ` "guesstimateType"`)
		case "data":
			err = gr.readSamples(ctx, &g)
		default:
			err = gr.skip(key, off)
		}
		return err
	})
	if err != nil {
		return err
	}
	gr.guesses = append(gr.guesses, g)
	return nil
}

// readSamples reads a data array into q. A value that is not a usable
// sample is noted in q (the first one only) and reading goes on, since only
// DATA guesstimates need their data.
func (gr *guessReader) readSamples(ctx string, q *guesstimate) error {
	j := gr.j
	q.samples, q.badIndex = nil, -1
	ok, err := j.open('[', ctx+` "data"`, true)
	if err != nil || !ok {
		return err
	}
	for i := 0; j.dec.More(); i++ {
		off := j.nextOffset()
		t, err := j.token(fmt.Sprintf("%s sample %d", ctx, i))
		if err != nil {
			return err
		}
		v, problem := sampleValue(t)
		if problem == "" {
			q.samples = append(q.samples, v)
			continue
		}
		if q.badIndex < 0 {
			q.badIndex, q.badOff, q.badProblem = i, off, problem
		}
		if err := j.skipRest(t, ctx+` "data"`); err != nil {
			return err
		}
	}
	return j.close(ctx + ` end of "data"`)
}

// sampleValue converts a data token to nanoseconds, or says why it cannot.
func sampleValue(t json.Token) (int64, string) {
	n, ok := t.(json.Number)
	if !ok {
		return 0, describe(t) + ", not a number"
	}
	if v, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return v, ""
	}
	f, err := strconv.ParseFloat(string(n), 64)
	f = math.Round(f)
	if err != nil || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, "number " + clip(string(n)) + ", out of the int64 range"
	}
	return int64(f), ""
}

// resolve turns the guesstimates into series and skips.
func (gr *guessReader) resolve() error {
	g := gr.g
	names := make(map[string]string, len(gr.metrics))
	for _, m := range gr.metrics {
		if _, dup := names[m.ID]; dup {
			g.Skipped = append(g.Skipped, Skip{m.ID, m.Name, SkipDuplicateMetric})
			continue
		}
		names[m.ID] = m.Name
	}
	done := make(map[string]bool, len(gr.guesses))
	for _, q := range gr.guesses {
		if q.typ == GuessDataType && q.badIndex >= 0 {
			return gr.j.failf(q.badOff, "guesstimate %d (metric %q): sample %d is %s", q.index, clip(q.metric), q.badIndex, q.badProblem)
		}
		name, known := names[q.metric]
		skip := func(reason string) { g.Skipped = append(g.Skipped, Skip{q.metric, name, reason}) }
		switch {
		case !known:
			skip(SkipUnknownMetric)
		case name == "":
			done[q.metric] = true
			skip(SkipNoName)
		case done[q.metric]:
			skip(SkipDuplicateGuess)
		case q.typ != GuessDataType:
			done[q.metric] = true
			skip(fmt.Sprintf("guesstimate type %q", clip(q.typ)))
		case len(q.samples) == 0:
			done[q.metric] = true
			skip(SkipNoSamples)
		default:
			done[q.metric] = true
			actor, suffix := SplitGuessName(name)
			g.Series = append(g.Series, GuessSeries{MetricID: q.metric, Name: actor, Suffix: suffix, Samples: q.samples})
		}
	}
	for _, m := range gr.metrics {
		if !done[m.ID] && names[m.ID] == m.Name {
			done[m.ID] = true
			g.Skipped = append(g.Skipped, Skip{m.ID, m.Name, SkipNoGuesstimate})
		}
	}
	return nil
}

// guessDescription is the description of MetricLatency.
const guessDescription = "Latency samples spigo kept for Guesstimate (json_metrics/<arch>.guess), in nanoseconds: " +
	"the delivery latency of the messages an actor received, or for a traffic generator (spigo.histogram) " +
	"its response (resp, cr−cs), service (serv, ss−sr), network (net) or round-trip (rt) time"

// GuessMetrics converts the series of g into a protobuf-encoded OTLP
// ExportMetricsServiceRequest. Each series becomes one exponential
// histogram point of the DELTA metric MetricLatency (unit ns) at at (start
// and end time), with count, sum, min, max, zero count and buckets at the
// finest scale in [0, 8] at which the sample range needs at most 4096
// buckets (scale 6 or finer for samples within 64 octaves), so quantiles read from the buckets are within about
// 2^(2^-scale)-1 of the samples. The resource is ResourceAttrs(series
// name); a series with a suffix carries it as AttrHistogram. Series of the
// same name and suffix are merged into one point. Points of one resource
// share one ResourceMetrics, in the order of first appearance.
func GuessMetrics(g *Guess, at time.Time) ([]byte, error) {
	ts, err := unixNano(at)
	if err != nil {
		return nil, fmt.Errorf("spigo guesstimate metrics: %w", err)
	}
	type group struct {
		suffixes []string
		samples  map[string][]int64
	}
	var names []string
	groups := make(map[string]*group)
	for _, s := range g.Series {
		if len(s.Samples) == 0 {
			continue
		}
		gp := groups[s.Name]
		if gp == nil {
			gp = &group{samples: make(map[string][]int64)}
			groups[s.Name] = gp
			names = append(names, s.Name)
		}
		if _, ok := gp.samples[s.Suffix]; !ok {
			gp.suffixes = append(gp.suffixes, s.Suffix)
		}
		gp.samples[s.Suffix] = append(gp.samples[s.Suffix], s.Samples...)
	}
	req := &colmetricspb.ExportMetricsServiceRequest{}
	for _, name := range names {
		gp := groups[name]
		hist := &metricspb.ExponentialHistogram{AggregationTemporality: metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA}
		for _, suffix := range gp.suffixes {
			p := expHistogram(gp.samples[suffix])
			p.StartTimeUnixNano, p.TimeUnixNano = ts, ts
			if suffix != "" {
				p.Attributes = []*commonpb.KeyValue{strKV(AttrHistogram, suffix)}
			}
			hist.DataPoints = append(hist.DataPoints, p)
		}
		req.ResourceMetrics = append(req.ResourceMetrics, &metricspb.ResourceMetrics{
			Resource: resourceOf(name),
			ScopeMetrics: []*metricspb.ScopeMetrics{{
				Scope: scope(),
				Metrics: []*metricspb.Metric{{
					Name:        MetricLatency,
					Description: guessDescription,
					Unit:        "ns",
					Data:        &metricspb.Metric_ExponentialHistogram{ExponentialHistogram: hist},
				}},
			}},
		})
	}
	return proto.Marshal(req)
}
