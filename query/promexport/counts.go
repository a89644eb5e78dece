package promexport

import (
	"math"
	"math/bits"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/flowscope/flowscope/aggregate"
)

// Counts and classic buckets from HDR rollups.
//
// A rollup's histogram holds durations in HDR buckets: ranges of
// equivalent values [lo, hi] that it cannot tell apart, whose width is at
// most 1/2^(halfMag) of their value (1/128 at 2 significant digits).
// ForEachBucket gives each populated bucket's lowest value lo; the
// bucket's highest value hi follows from the histogram's geometry (width).
// A classic bucket le=b counts the HDR buckets with hi ≤ b: the values
// that Flowscope itself reports as at most b (a quantile of /api/v1/latency
// is the hi of the HDR bucket holding its rank).

// acc accumulates rollups: requests, errors, and the timed spans by
// classic bucket (not cumulative) with the sum of their durations.
type acc struct {
	requests, errors int64
	// bins[j] counts the timed spans in classic bucket j: of highest
	// equivalent value in (bounds[j-1], bounds[j]]; bins[len(bounds)]
	// those above the highest bound.
	bins []int64
	// sum is the sum of the timed spans' durations, each taken as the
	// median equivalent value of its HDR bucket, in nanoseconds.
	sum float64
}

func newAcc(nbounds int) *acc { return &acc{bins: make([]int64, nbounds+1)} }

// empty reports whether no span was added.
func (a *acc) empty() bool {
	if a.requests != 0 || a.errors != 0 {
		return false
	}
	for _, n := range a.bins {
		if n != 0 {
			return false
		}
	}
	return true
}

// merge adds o.
func (a *acc) merge(o *acc) {
	a.requests += o.requests
	a.errors += o.errors
	for j, n := range o.bins {
		a.bins[j] += n
	}
	a.sum += o.sum
}

// clone returns a copy of a.
func (a *acc) clone() *acc {
	c := *a
	c.bins = append([]int64(nil), a.bins...)
	return &c
}

// add adds the rollup r; bounds are the classic bucket bounds in ns,
// ascending.
func (a *acc) add(r *aggregate.Rollup, bounds []int64) {
	a.requests += r.Count
	a.errors += r.Errors
	if r.Hist == nil || r.Hist.TotalCount() == 0 {
		return
	}
	g := geometryOf(r.Hist)
	j := 0
	r.Hist.ForEachBucket(func(lo, n int64) bool {
		w := g.width(lo)
		hi := lo + (w - 1)
		if hi < lo { // the top bucket of a histogram up to MaxInt64
			hi = math.MaxInt64
		}
		for j < len(bounds) && hi > bounds[j] {
			j++
		}
		a.bins[j] += n
		a.sum += float64(n) * float64(lo+w/2)
		return true
	})
}

// geometry is the part of an HDR histogram's bucket layout that gives the
// width of a bucket from its lowest value, computed as hdrhistogram-go
// computes it (newGeometry, getBucketIndex, sizeOfEquivalentValueRange);
// TestGeometryWidth checks it against the library's own bucket ranges.
type geometry struct {
	unitMag, halfMag int
	mask             uint64 // the sub-bucket mask
}

// geometryOf returns the geometry of h.
func geometryOf(h *hdr.PackedHistogram) geometry {
	return newGeometry(h.LowestTrackableValue(), int(h.SignificantFigures()))
}

// newGeometry returns the geometry of the histograms of the given lowest
// discernible value and significant digits (clamped as hdr.New does).
func newGeometry(lowest int64, digits int) geometry {
	lowest = max(lowest, 1)
	digits = min(max(digits, 1), 5)
	countMag := int(math.Ceil(math.Log2(2 * math.Pow10(digits))))
	halfMag := max(countMag, 1) - 1
	unitMag := max(int(math.Floor(math.Log2(float64(lowest)))), 0)
	subBuckets := uint64(1) << (halfMag + 1)
	return geometry{unitMag: unitMag, halfMag: halfMag, mask: (subBuckets - 1) << unitMag}
}

// width returns the number of equivalent values of the bucket whose lowest
// value is lo.
func (g geometry) width(lo int64) int64 {
	bucket := bits.Len64(uint64(lo)|g.mask) - g.unitMag - g.halfMag - 1
	return int64(1) << (g.unitMag + max(bucket, 0))
}

// sample is what is exposed of one service, edge or operation: cumulative
// counts since the origin.
type sample struct {
	requests, errors int64
	// le[j] counts the timed spans in classic buckets 0..j (le=bounds[j]).
	le []int64
	// timed counts every timed span (le=+Inf, _count).
	timed int64
	sum   float64 // ns
}

// cumulative returns the sample of a.
func (a *acc) cumulative() *sample {
	s := &sample{requests: a.requests, errors: a.errors, le: make([]int64, len(a.bins)-1), sum: a.sum}
	var c int64
	for j, n := range a.bins {
		c += n
		if j < len(s.le) {
			s.le[j] = c
		}
	}
	s.timed = c
	return s
}

// hold makes s at least prev in every value (prev may be nil): what a
// counter exposed once it never takes back. The values of s and of prev
// are each consistent (errors ≤ requests, le non-decreasing, timed ≥ every
// le), and so are their maxima.
func (s *sample) hold(prev *sample) {
	if prev == nil {
		return
	}
	s.requests = max(s.requests, prev.requests)
	s.errors = max(s.errors, prev.errors)
	for j := range s.le {
		s.le[j] = max(s.le[j], prev.le[j])
	}
	s.timed = max(s.timed, prev.timed)
	s.sum = max(s.sum, prev.sum)
}

// quantiles returns the quantiles qs (fractions) of the timed spans of r
// in seconds, as the latency API computes them (nearest rank, the highest
// equivalent value of the HDR bucket holding it); NaN without timed spans.
func quantiles(r *aggregate.Rollup, qs []float64) []float64 {
	out := make([]float64, len(qs))
	var n int64
	if r != nil && r.Hist != nil {
		n = r.Hist.TotalCount()
	}
	if n == 0 {
		for i := range out {
			out[i] = math.NaN()
		}
		return out
	}
	ps := make([]float64, len(qs))
	for i, q := range qs {
		ps[i] = aggregate.NearestRankPercentile(q, n)
	}
	for i, v := range r.Hist.ValueAtPercentilesSlice(ps) {
		out[i] = float64(v) / 1e9
	}
	return out
}
