package aggregate

import (
	"bytes"
	"fmt"
	"math"
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
		ex.Value = durNs
		r.addExemplar(ex)
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
// most r's cap, which a zero r takes from o). o is not modified or retained.
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
	for _, ex := range o.Exemplars {
		r.addExemplar(ex)
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
	return &c
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
