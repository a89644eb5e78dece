package query

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/querypb"
)

// Latency distributions (GetLatency).
//
// The store returns the merged HDR histogram (a PackedHistogram) of the
// selected spans. Quantiles and buckets are read from a dense copy of it
// (PackedHistogram.MergeInto a Histogram of the same geometry): a quantile's
// value is hdrhistogram's ValueAtQuantile — the highest value equivalent to
// the bucket holding the rank — and its error bound is the width of that
// bucket, the exact value lying in [from, to]. The rank is the nearest rank,
// ceil(q·n) (see nearestRankPercentile). Buckets are the histogram's
// non-empty equivalent-value ranges, as Histogram.Distribution reports them.
//
// Spans of unknown duration (aggregate.Rollup.RecordUntimed) count in Count
// but not in the histogram. Every value — quantiles, min, max, mean, step
// quantiles — is computed from the timed spans only, and is left unset (JSON
// null) when there is none, rather than reported as 0, which would read as
// the fastest; timed_count says how many spans the values stand for.
//
// A series has one step per step of the range, empty ones included (see
// fillSteps), so that a chart of it shows gaps as gaps.

// ExemplarQuantile is the smallest quantile exemplars are shown for: a
// response lists the exemplars at or above the smallest requested quantile
// that is at least ExemplarQuantile (all of them when none is).
const ExemplarQuantile = 0.9

// Fallback histogram geometry for the HdrHistogram log when the store
// returns no histogram at all: 1 ns to 1 h, 2 significant digits.
const (
	fallbackLowest  = 1
	fallbackHighest = int64(time.Hour)
	fallbackDigits  = 2
)

// hdrLogContentType is the Content-Type of format=hdrlog answers.
const hdrLogContentType = "text/plain; charset=utf-8"

// GetLatency implements querypb.QueryServiceServer. With format=hdrlog the
// response carries only hdr_log (see hdrLog), with format=guesstimate only
// guesstimate (see Service.guesstimate).
func (s *Service) GetLatency(ctx context.Context, req *querypb.GetLatencyRequest) (*querypb.GetLatencyResponse, error) {
	p, err := latencyRequest(req, s.now())
	if err != nil {
		return nil, err
	}
	lat, err := s.st.Latency(ctx, p.start, p.end, p.q)
	if err != nil {
		return nil, s.storeError(ctx, "latency", err)
	}
	if lat == nil {
		lat = &aggregate.Latency{}
	}
	slices.SortStableFunc(lat.Series, func(a, b aggregate.LatencyStep) int { return cmp.Compare(a.Start, b.Start) })
	if p.step > 0 {
		lat.Series = fillSteps(lat.Series, p.start, p.end, p.step)
	}
	if p.format == FormatHDRLog {
		text, err := hdrLog(lat, p)
		if err != nil {
			return nil, s.storeError(ctx, "encode hdr log", err)
		}
		return &querypb.GetLatencyResponse{HdrLog: &text}, nil
	}
	if p.format == FormatGuesstimate {
		doc, err := s.guesstimate(ctx, lat, p)
		if err != nil {
			return nil, err
		}
		return &querypb.GetLatencyResponse{Guesstimate: &doc}, nil
	}
	return latencyResponse(lat, p.quantiles), nil
}

// distribution is a dense view of a rollup's histogram: its non-empty
// buckets in ascending order.
type distribution struct {
	h    *hdr.Histogram // nil when there is no data
	bars []hdr.Bar      // non-empty buckets, ascending
}

// newDistribution merges p into a dense histogram of the same geometry. A
// nil or empty p gives a distribution without data.
func newDistribution(p *hdr.PackedHistogram) distribution {
	if p == nil || p.TotalCount() == 0 {
		return distribution{}
	}
	h := hdr.New(p.LowestTrackableValue(), p.HighestTrackableValue(), int(p.SignificantFigures()))
	p.MergeInto(h) // same geometry: nothing is dropped
	var bars []hdr.Bar
	for _, b := range h.Distribution() {
		if b.Count > 0 {
			bars = append(bars, b)
		}
	}
	return distribution{h: h, bars: bars}
}

// bucket returns the non-empty bucket holding value v, which must be a
// value the histogram returned (a quantile's value).
func (d distribution) bucket(v int64) (hdr.Bar, bool) {
	i := sort.Search(len(d.bars), func(i int) bool { return d.bars[i].To >= v })
	if i == len(d.bars) || d.bars[i].From > v {
		return hdr.Bar{}, false
	}
	return d.bars[i], true
}

// quantile returns quantile q (a fraction) of d with its bucket; only the
// quantile, its value and bucket unset, without data.
func (d distribution) quantile(q float64) *querypb.LatencyQuantile {
	lq := &querypb.LatencyQuantile{Quantile: q}
	if d.h == nil {
		return lq
	}
	v := d.h.ValueAtPercentile(nearestRankPercentile(q, d.h.TotalCount()))
	lq.Value = wrapperspb.Double(float64(v))
	if b, ok := d.bucket(v); ok {
		lq.From, lq.To = wrapperspb.Double(float64(b.From)), wrapperspb.Double(float64(b.To))
		lq.ErrorBound = wrapperspb.Double(float64(b.To - b.From + 1))
	}
	return lq
}

// timedCount is the number of values in h, the spans with a known
// duration; 0 for nil.
func timedCount(h *hdr.PackedHistogram) int64 {
	if h == nil {
		return 0
	}
	return h.TotalCount()
}

// latencyResponse converts a latency distribution into the JSON form of
// GetLatency, reporting quantiles qs (fractions, in the order requested).
func latencyResponse(lat *aggregate.Latency, qs []float64) *querypb.GetLatencyResponse {
	tot := &lat.Total
	resp := &querypb.GetLatencyResponse{
		Count:     float64(tot.Count),
		Errors:    float64(tot.Errors),
		Quantiles: make([]*querypb.LatencyQuantile, 0, len(qs)),
		Buckets:   []*querypb.LatencyBucket{},
		Series:    make([]*querypb.LatencyStep, 0, len(lat.Series)),
		Exemplars: []*querypb.LatencyExemplar{},
	}
	d := newDistribution(tot.Hist)
	if d.h != nil {
		total := float64(d.h.TotalCount())
		resp.TimedCount = total
		resp.Min = wrapperspb.Double(float64(d.h.Min()))
		resp.Max = wrapperspb.Double(float64(d.h.Max()))
		resp.Mean = wrapperspb.Double(d.h.Mean())
		resp.Buckets = make([]*querypb.LatencyBucket, 0, len(d.bars))
		for _, b := range d.bars {
			resp.Buckets = append(resp.Buckets, &querypb.LatencyBucket{
				From:        float64(b.From),
				To:          float64(b.To),
				Count:       float64(b.Count),
				Probability: float64(b.Count) / total,
			})
		}
	}
	for _, q := range qs {
		resp.Quantiles = append(resp.Quantiles, d.quantile(q))
	}
	percentiles := make([]float64, len(qs))
	for i := range lat.Series {
		st := &lat.Series[i]
		timed := timedCount(st.Rollup.Hist)
		step := &querypb.LatencyStep{
			Start:      formatTime(time.Unix(st.Start, 0)),
			Count:      float64(st.Rollup.Count),
			Errors:     float64(st.Rollup.Errors),
			TimedCount: float64(timed),
			Quantiles:  make([]*querypb.LatencyStepQuantile, 0, len(qs)),
		}
		var values []int64
		if timed > 0 {
			for j, q := range qs {
				percentiles[j] = nearestRankPercentile(q, timed)
			}
			values = st.Rollup.Hist.ValueAtPercentilesSlice(percentiles)
		}
		for j, q := range qs {
			sq := &querypb.LatencyStepQuantile{Quantile: q}
			if values != nil {
				sq.Value = wrapperspb.Double(float64(values[j]))
			}
			step.Quantiles = append(step.Quantiles, sq)
		}
		resp.Series = append(resp.Series, step)
	}
	resp.Exemplars = exemplars(tot.Exemplars, resp.Quantiles)
	resp.Modes = make([]*querypb.LatencyMode, 0, 4)
	for _, m := range findModes(d.bars) {
		lm := &querypb.LatencyMode{
			Peak: m.peak, From: float64(m.from), To: float64(m.to),
			Count: float64(m.count), Share: float64(m.count) / resp.TimedCount,
		}
		if e := modeExemplar(&m, tot.Spread, tot.Exemplars, tot.ErrorExemplars); e != nil {
			lm.Exemplar = latencyExemplar(e, resp.Quantiles)
		}
		resp.Modes = append(resp.Modes, lm)
	}
	resp.ErrorExemplars = make([]*querypb.LatencyExemplar, 0, len(tot.ErrorExemplars))
	for i := range tot.ErrorExemplars {
		resp.ErrorExemplars = append(resp.ErrorExemplars, latencyExemplar(&tot.ErrorExemplars[i], resp.Quantiles))
	}
	return resp
}

// exemplars selects and labels exemplars (slowest first, as the rollup keeps
// them). An exemplar is at or above quantile q when its value is at least
// the lower bound of the bucket holding q's value: it cannot be told apart
// from the value at q at the histogram's precision. The exemplars kept are
// those at or above the smallest quantile >= ExemplarQuantile among qs, or
// all of them when no quantile is that high; each is labelled with the
// highest quantile it is at or above (0 for none).
func exemplars(exs []aggregate.Exemplar, qs []*querypb.LatencyQuantile) []*querypb.LatencyExemplar {
	threshold := -1.0 // lower bound an exemplar must reach; < 0 keeps all
	minQ := 2.0
	for _, lq := range qs {
		if lq.Quantile >= ExemplarQuantile && lq.Quantile < minQ {
			minQ, threshold = lq.Quantile, lq.GetFrom().GetValue()
		}
	}
	out := make([]*querypb.LatencyExemplar, 0, len(exs))
	for i := range exs {
		if float64(exs[i].Value) < threshold {
			continue
		}
		out = append(out, latencyExemplar(&exs[i], qs))
	}
	return out
}

// latencyExemplar converts an exemplar, labelled with the highest quantile
// of qs it is at or above (0 for none).
func latencyExemplar(e *aggregate.Exemplar, qs []*querypb.LatencyQuantile) *querypb.LatencyExemplar {
	v := float64(e.Value)
	var at float64
	for _, lq := range qs {
		if lq.GetFrom() != nil && v >= lq.GetFrom().GetValue() && lq.Quantile > at {
			at = lq.Quantile
		}
	}
	return &querypb.LatencyExemplar{
		TraceId:  hex.EncodeToString(e.TraceID[:]),
		SpanId:   hex.EncodeToString(e.SpanID[:]),
		Value:    v,
		Time:     formatTime(time.Unix(0, e.Time)),
		Quantile: at,
		Error:    e.Error,
	}
}

// fillSteps returns series (sorted by start) with an empty step added for
// every step of [start, end) that it lacks, so that there is one step per
// step of the range: from the step holding start to the last one starting
// before end (the step holding start when end equals start), widened to any
// step of series outside that (the store may begin a long range on the
// hour). Step starts are multiples of step since the Unix epoch, as the
// store aligns them; step is a positive multiple of a second. The
// parameters allow at most MaxSteps steps in [start, end].
func fillSteps(series []aggregate.LatencyStep, start, end time.Time, step time.Duration) []aggregate.LatencyStep {
	w := int64(step / time.Second)
	floor := func(t int64) int64 { return t - ((t%w)+w)%w } // also for t < 0
	first := floor(start.Unix())
	last := first
	if end.After(start) {
		// The last second before end: a step starting at end is not in
		// [start, end).
		last = floor(end.Add(-time.Nanosecond).Unix())
	}
	if n := len(series); n > 0 {
		first, last = min(first, series[0].Start), max(last, series[n-1].Start)
	}
	out := make([]aggregate.LatencyStep, 0, (last-first)/w+1)
	i := 0
	for s := first; s <= last; s += w {
		for i < len(series) && series[i].Start < s {
			out = append(out, series[i]) // off the grid: kept as it is
			i++
		}
		if i < len(series) && series[i].Start == s {
			out = append(out, series[i])
			i++
			continue
		}
		out = append(out, aggregate.LatencyStep{Start: s})
	}
	return append(out, series[i:]...)
}

// formatTime formats t as RFC 3339 in UTC, with as many fractional digits
// as needed.
func formatTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// hdrLog writes lat in the HdrHistogram interval log format, version 1.3,
// as hdrhistogram-go's HistogramLogWriter does: a format version comment,
// #[StartTime] and #[BaseTime] lines (the range start, or the first step's
// start when earlier, truncated to the second), the legend, then one
// interval line per step (start and length relative to the base time, in
// seconds; max in milliseconds; the V2-encoded histogram in base64), or one
// line for the whole range without a step. Histogram values are in
// nanoseconds. hdrhistogram-go's HistogramLogReader, and the Java and C
// HdrHistogram log readers, read it back.
func hdrLog(lat *aggregate.Latency, p latencyParams) (string, error) {
	baseMs := p.start.UnixMilli()
	if p.step > 0 && len(lat.Series) > 0 {
		baseMs = min(baseMs, lat.Series[0].Start*1000)
	}
	baseMs -= baseMs % 1000
	if baseMs < 0 {
		baseMs = 0 // the reader takes no negative times
	}

	var buf bytes.Buffer
	w := hdr.NewHistogramLogWriter(&buf)
	w.SetBaseTime(baseMs)
	for _, err := range []error{w.OutputLogFormatVersion(), w.OutputStartTime(baseMs), w.OutputBaseTime(baseMs), w.OutputLegend()} {
		if err != nil {
			return "", fmt.Errorf("write log header: %w", err)
		}
	}

	geometry := lat.Total.Hist
	interval := func(h *hdr.PackedHistogram, startMs, endMs int64) error {
		if h == nil {
			h = emptyLike(geometry)
		} else {
			h = h.Clone() // the timestamps are set on a copy
		}
		h.SetTag("")
		h.SetStartTimeMs(max(startMs, baseMs))
		h.SetEndTimeMs(max(endMs, baseMs))
		return w.OutputIntervalPackedHistogram(h)
	}
	if p.step == 0 {
		if err := interval(lat.Total.Hist, p.start.UnixMilli(), p.end.UnixMilli()); err != nil {
			return "", fmt.Errorf("write interval: %w", err)
		}
		return buf.String(), nil
	}
	stepMs := p.step.Milliseconds()
	for _, st := range lat.Series {
		if err := interval(st.Rollup.Hist, st.Start*1000, st.Start*1000+stepMs); err != nil {
			return "", fmt.Errorf("write interval at %d: %w", st.Start, err)
		}
	}
	return buf.String(), nil
}

// emptyLike returns an empty histogram with the geometry of like, or the
// fallback geometry when like is nil.
func emptyLike(like *hdr.PackedHistogram) *hdr.PackedHistogram {
	if like == nil {
		return hdr.NewPacked(fallbackLowest, fallbackHighest, fallbackDigits)
	}
	h := like.Clone()
	h.Reset()
	return h
}

// nearestRankPercentile is aggregate.NearestRankPercentile: the percentile
// that makes hdrhistogram-go answer the nearest-rank quantile q of n values.
func nearestRankPercentile(q float64, n int64) float64 {
	return aggregate.NearestRankPercentile(q, n)
}
