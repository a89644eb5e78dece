package aggregate

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

var levelNames = map[Level]string{
	LevelService:   "service",
	LevelInstance:  "instance",
	LevelZone:      "zone",
	LevelRegion:    "region",
	LevelNamespace: "namespace",
}

func parseLevel(s string) (Level, error) {
	if s == "" {
		return LevelService, nil
	}
	for l, name := range levelNames {
		if name == s {
			return l, nil
		}
	}
	return LevelService, fmt.Errorf("%w %q (want service, instance, zone, region or namespace)", ErrUnknownLevel, s)
}

// unknownName names a missing zone, region or namespace.
const unknownName = "unknown"

func (n Node) at(l Level) string {
	if n.Virtual {
		return n.Service
	}
	switch l {
	case LevelInstance:
		if n.Instance != "" {
			return n.Instance
		}
		return n.Service
	case LevelZone:
		return orUnknown(n.Zone)
	case LevelRegion:
		return orUnknown(n.Region)
	case LevelNamespace:
		return orUnknown(n.Namespace)
	default:
		return n.Service
	}
}

func orUnknown(s string) string {
	if s == "" {
		return unknownName
	}
	return s
}

// compareNodes orders nodes by their fields (Virtual last).
func compareNodes(a, b Node) int {
	for _, c := range [...]struct{ x, y string }{
		{a.Service, b.Service}, {a.Instance, b.Instance}, {a.Zone, b.Zone},
		{a.Region, b.Region}, {a.Namespace, b.Namespace},
	} {
		if c.x != c.y {
			if c.x < c.y {
				return -1
			}
			return 1
		}
	}
	switch {
	case a.Virtual == b.Virtual:
		return 0
	case b.Virtual:
		return -1
	default:
		return 1
	}
}

// Record adds one span of duration durNs (ns) to r. Durations above the
// histogram's highest trackable value are recorded as that value and
// counted in Clamped; negative durations are recorded as 0 (a zero
// duration is a valid HDR value, kept as 0 rather than rounded up to 1 ns).
// ex is kept if it is among the slowest MaxExemplars spans; Record sets
// ex.Value to durNs (unclamped), and ignores an exemplar whose TraceID is
// zero. A Rollup with a nil Hist gets one of DefaultGeometry.
func (r *Rollup) Record(durNs int64, isErr bool, ex Exemplar) {
	if r.Hist == nil {
		r.Hist = DefaultGeometry().NewRollup().Hist
	}
	r.Count++
	if isErr {
		r.Errors++
	}
	v := durNs
	if v < 0 {
		v = 0
	}
	if m := r.Hist.HighestTrackableValue(); v > m {
		v = m
		r.Clamped++
	}
	// Cannot fail: v is in range and a total count near MaxInt64 would
	// take centuries of spans.
	_ = r.Hist.RecordValues(v, 1)
	if ex.TraceID != ([16]byte{}) {
		ex.Value, ex.Error = durNs, isErr
		r.addExemplar(ex)
		r.addSpread(ex)
		if isErr {
			r.addErrorExemplar(ex)
		}
	}
	if isErr {
		r.addFailed(FailedBand{Band: SpreadBand(durNs), Count: 1, Min: max(durNs, 0), Max: max(durNs, 0)})
	}
}

// RecordUntimed adds one span whose duration is unknown (a Zipkin half
// without its end, see DurationUnknownAttr) to r: it counts as a call, and
// as an error if isErr, but adds nothing to the histogram or the
// exemplars, so Count may exceed the histogram's total count.
func (r *Rollup) RecordUntimed(isErr bool) {
	if r.Hist == nil {
		r.Hist = DefaultGeometry().NewRollup().Hist
	}
	r.Count++
	if isErr {
		r.Errors++
	}
}

// Merge adds o to r losslessly: counts, errors, clamped counts and every
// histogram bucket add up, and the exemplars keep the slowest of both (at
// most r's cap, which a zero r takes from o), the newest of both per
// octave and the newest failing ones. o is not modified or retained.
// r.Merge(r) doubles r.
func (r *Rollup) Merge(o *Rollup) {
	if o == nil {
		return
	}
	r.Count += o.Count
	r.Errors += o.Errors
	r.Clamped += o.Clamped
	if r.maxExemplars == 0 {
		r.maxExemplars = o.maxExemplars
	}
	if r != o {
		r.mergeEvidence(o)
	} else {
		r.Retried *= 2
		for i := range r.Failed {
			r.Failed[i].Count *= 2
		}
	}
	if o.Hist != nil {
		if r.Hist == nil {
			r.Hist = o.Hist.Clone()
		} else {
			r.Hist.Merge(o.Hist)
		}
	}
	if r == o {
		return // its exemplars are already in
	}
	r.mergeExemplars(o)
}

// mergeExemplars adds o's exemplars of every kind to r's.
func (r *Rollup) mergeExemplars(o *Rollup) {
	for _, ex := range o.Exemplars {
		r.addExemplar(ex)
	}
	for _, ex := range o.Spread {
		r.addSpread(ex)
	}
	for _, ex := range o.ErrorExemplars {
		r.addErrorExemplar(ex)
	}
}

// Clone returns a deep copy of r.
func (r *Rollup) Clone() *Rollup {
	c := *r
	if r.Hist != nil {
		c.Hist = r.Hist.Clone()
	}
	if r.Exemplars != nil {
		c.Exemplars = append(make([]Exemplar, 0, len(r.Exemplars)), r.Exemplars...)
	}
	if r.Spread != nil {
		c.Spread = append(make([]Exemplar, 0, len(r.Spread)), r.Spread...)
	}
	if r.ErrorExemplars != nil {
		c.ErrorExemplars = append(make([]Exemplar, 0, len(r.ErrorExemplars)), r.ErrorExemplars...)
	}
	if r.Failed != nil {
		c.Failed = append(make([]FailedBand, 0, len(r.Failed)), r.Failed...)
	}
	return &c
}

// mergeEvidence adds o's retried calls and failed durations to r's (r != o).
func (r *Rollup) mergeEvidence(o *Rollup) {
	r.Retried += o.Retried
	for _, f := range o.Failed {
		r.addFailed(f)
	}
}

// addFailed merges failed durations of one band into r.Failed.
func (r *Rollup) addFailed(f FailedBand) {
	i, found := slices.BinarySearchFunc(r.Failed, f.Band, func(x FailedBand, b int) int { return x.Band - b })
	if !found {
		r.Failed = slices.Insert(r.Failed, i, f)
		return
	}
	g := &r.Failed[i]
	g.Count += f.Count
	g.Min, g.Max = min(g.Min, f.Min), max(g.Max, f.Max)
}

// Timeout inference (InferTimeout).
const (
	// TimeoutMinFailures is how many failed spans with a duration a
	// timeout is inferred from, at least.
	TimeoutMinFailures = 5
	// TimeoutMinShare is the least fraction of the failed spans that must
	// end at about one duration.
	TimeoutMinShare = 0.6
	// TimeoutSpread bounds that cluster: its highest duration is at most
	// TimeoutSpread × its lowest.
	TimeoutSpread = 1.2
)

// InferTimeout returns the timeout the failed spans of r reveal: when at
// least TimeoutMinShare of them (and TimeoutMinFailures) ended within a
// factor TimeoutSpread of one another, in one octave band or two adjacent
// ones, the lowest of those durations (a timeout fires at or just after
// its setting); 0 otherwise.
func (r *Rollup) InferTimeout() int64 {
	var total int64
	for _, f := range r.Failed {
		total += f.Count
	}
	if total < TimeoutMinFailures {
		return 0
	}
	var best, bestCount int64
	consider := func(count, lo, hi int64) {
		if float64(count) >= TimeoutMinShare*float64(total) && float64(hi) <= TimeoutSpread*float64(max(lo, 1)) && count > bestCount {
			best, bestCount = lo, count
		}
	}
	for i, f := range r.Failed {
		consider(f.Count, f.Min, f.Max)
		if i+1 < len(r.Failed) && r.Failed[i+1].Band == f.Band+1 {
			g := r.Failed[i+1]
			consider(f.Count+g.Count, min(f.Min, g.Min), max(f.Max, g.Max))
		}
	}
	return best
}

// MaxErrorExemplars is how many failing spans a rollup keeps as
// ErrorExemplars.
const MaxErrorExemplars = 2

// SpreadBand is the octave band of a duration (ns) in Rollup.Spread:
// bits.Len64 of it, 0 for 0 (and negative durations).
func SpreadBand(v int64) int { return bits.Len64(uint64(max(v, 0))) }

// exemplarNewer is the order of Spread and ErrorExemplars: newest first,
// then as exemplarBefore, so that the kept set does not depend on the
// order in which spans and rollups arrive.
func exemplarNewer(a, b *Exemplar) bool {
	if a.Time != b.Time {
		return a.Time > b.Time
	}
	return exemplarBefore(a, b)
}

// addSpread keeps ex in Spread if it is the newest of its octave band.
func (r *Rollup) addSpread(ex Exemplar) {
	band := uint(SpreadBand(ex.Value)) // 0..63: durations are int64
	bit := uint64(1) << band
	i := bits.OnesCount64(r.spreadMask & (bit - 1))
	if r.spreadMask&bit != 0 {
		if exemplarNewer(&ex, &r.Spread[i]) {
			r.Spread[i] = ex
		}
		return
	}
	r.spreadMask |= bit
	r.Spread = slices.Insert(r.Spread, i, ex)
}

// addErrorExemplar keeps ex in ErrorExemplars if it is among the newest
// MaxErrorExemplars failing spans (once per trace and span ID).
func (r *Rollup) addErrorExemplar(ex Exemplar) {
	n := len(r.ErrorExemplars)
	if n >= MaxErrorExemplars && !exemplarNewer(&ex, &r.ErrorExemplars[n-1]) {
		return
	}
	for i := range r.ErrorExemplars {
		if r.ErrorExemplars[i].TraceID == ex.TraceID && r.ErrorExemplars[i].SpanID == ex.SpanID {
			return
		}
	}
	i := 0
	for i < n && !exemplarNewer(&ex, &r.ErrorExemplars[i]) {
		i++
	}
	r.ErrorExemplars = slices.Insert(r.ErrorExemplars, i, ex)
	if len(r.ErrorExemplars) > MaxErrorExemplars {
		r.ErrorExemplars = r.ErrorExemplars[:MaxErrorExemplars]
	}
}

func (r *Rollup) exemplarCap() int {
	if r.maxExemplars > 0 {
		return int(r.maxExemplars)
	}
	return DefaultMaxExemplars
}

// exemplarBefore is the total order of exemplars: slowest first, then by
// trace ID, span ID and time, so that the kept set does not depend on the
// order in which spans and rollups arrive.
func exemplarBefore(a, b *Exemplar) bool {
	if a.Value != b.Value {
		return a.Value > b.Value
	}
	if c := bytes.Compare(a.TraceID[:], b.TraceID[:]); c != 0 {
		return c < 0
	}
	if c := bytes.Compare(a.SpanID[:], b.SpanID[:]); c != 0 {
		return c < 0
	}
	return a.Time < b.Time
}

// addExemplar inserts ex in order if it is among the slowest; a span that
// is already kept (same trace and span ID) is not added twice.
func (r *Rollup) addExemplar(ex Exemplar) {
	k := r.exemplarCap()
	n := len(r.Exemplars)
	if n >= k && !exemplarBefore(&ex, &r.Exemplars[n-1]) {
		return
	}
	for i := range r.Exemplars {
		if r.Exemplars[i].TraceID == ex.TraceID && r.Exemplars[i].SpanID == ex.SpanID {
			return
		}
	}
	if r.Exemplars == nil {
		r.Exemplars = make([]Exemplar, 0, k)
	}
	i := n
	for i > 0 && exemplarBefore(&ex, &r.Exemplars[i-1]) {
		i--
	}
	if n < k {
		r.Exemplars = append(r.Exemplars, Exemplar{})
	} else {
		n-- // drop the last
	}
	copy(r.Exemplars[i+1:], r.Exemplars[i:n])
	r.Exemplars[i] = ex
	if len(r.Exemplars) > k {
		r.Exemplars = r.Exemplars[:k]
	}
}

// NewWindow returns an empty window [start, start+width) (Unix seconds).
func NewWindow(start, width int64) *Window {
	return &Window{Start: start, Width: width, Series: map[SeriesKey]*Rollup{}, Edges: map[EdgeKey]*Rollup{}}
}

// Merge adds o's rollups to w losslessly, whatever o's Start and Width (so
// that finer windows merge into a coarser one); w keeps its own. o is not
// modified or retained.
func (w *Window) Merge(o *Window) {
	if o == nil {
		return
	}
	if w.Series == nil {
		w.Series = make(map[SeriesKey]*Rollup, len(o.Series))
	}
	if w.Edges == nil {
		w.Edges = make(map[EdgeKey]*Rollup, len(o.Edges))
	}
	for k, r := range o.Series {
		if mine := w.Series[k]; mine != nil {
			mine.Merge(r)
		} else {
			w.Series[k] = r.Clone()
		}
	}
	for k, r := range o.Edges {
		if mine := w.Edges[k]; mine != nil {
			mine.Merge(r)
		} else {
			w.Edges[k] = r.Clone()
		}
	}
}

// Clone returns a deep copy of w.
func (w *Window) Clone() *Window {
	c := &Window{Start: w.Start, Width: w.Width,
		Series: make(map[SeriesKey]*Rollup, len(w.Series)), Edges: make(map[EdgeKey]*Rollup, len(w.Edges))}
	for k, r := range w.Series {
		c.Series[k] = r.Clone()
	}
	for k, r := range w.Edges {
		c.Edges[k] = r.Clone()
	}
	return c
}

// satAdd adds without overflowing int64 (for corrupt or absurd inputs).
func satAdd(a, b int64) int64 {
	if b > 0 && a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
