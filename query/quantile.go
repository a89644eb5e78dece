package query

import (
	"math"
)

// Quantile estimation for OTLP histogram points.
//
// Both histogram kinds follow Prometheus' histogram_quantile: the rank
// q·count is located in the cumulative bucket counts and the value is
// interpolated linearly inside the bucket that holds it, as if the bucket's
// observations were spread evenly over it. For explicit-bucket histograms the
// rules at the edges are Prometheus' too: the first bucket (-Inf, b0] is taken
// to start at 0 when b0 > 0 (and answers b0 when b0 <= 0), and a rank in the
// overflow bucket (bN, +Inf) answers bN. The estimate is finally clamped to
// the point's recorded min and max, when it has them, because no observation
// lies outside them.

// bucket is one histogram bucket with finite bounds: count observations in
// (lower, upper].
type bucket struct {
	lower, upper float64
	count        uint64
}

// explicitQuantile estimates quantile q (in [0, 1]) of an explicit-bucket
// histogram: counts[i] observations in (bounds[i-1], bounds[i]], with
// bounds[-1] = -Inf and bounds[len(bounds)] = +Inf. It reports false when
// the histogram is empty, has no bounds, or is malformed.
func explicitQuantile(q float64, bounds []float64, counts []uint64) (float64, bool) {
	if len(bounds) == 0 || len(counts) != len(bounds)+1 {
		return 0, false
	}
	var total uint64
	for _, c := range counts {
		total += c
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var cum uint64
	for i, c := range counts {
		prev := cum
		cum += c
		if c == 0 || float64(cum) < rank {
			continue
		}
		if i == len(counts)-1 {
			return bounds[len(bounds)-1], true
		}
		upper := bounds[i]
		lower := 0.0
		if i == 0 {
			if upper <= 0 {
				return upper, true
			}
		} else {
			lower = bounds[i-1]
		}
		return interpolate(lower, upper, rank-float64(prev), c), true
	}
	return 0, false // unreachable: rank <= total, the final cumulative count
}

// exponentialBuckets lists the buckets of an exponential histogram in
// ascending order, empty ones included: negative buckets (index i covers
// [-base^(i+1), -base^i)), the zero bucket [-threshold, threshold], then the
// positive buckets (index i covers (base^i, base^(i+1)]), base being
// 2^(2^-scale). The zero bucket is narrowed to the side that has
// observations: [0, threshold] without negative buckets, [-threshold, 0]
// without positive ones.
func exponentialBuckets(scale int32, zeroCount uint64, zeroThreshold float64,
	posOffset int32, pos []uint64, negOffset int32, neg []uint64,
) []bucket {
	out := make([]bucket, 0, len(neg)+1+len(pos))
	var negTotal, posTotal uint64
	for _, c := range neg {
		negTotal += c
	}
	for _, c := range pos {
		posTotal += c
	}
	for i := len(neg) - 1; i >= 0; i-- {
		idx := int64(negOffset) + int64(i)
		out = append(out, bucket{
			lower: -exponentialBound(scale, idx+1),
			upper: -exponentialBound(scale, idx),
			count: neg[i],
		})
	}
	zero := bucket{lower: -zeroThreshold, upper: zeroThreshold, count: zeroCount}
	switch {
	case negTotal == 0:
		zero.lower = 0
	case posTotal == 0:
		zero.upper = 0
	}
	out = append(out, zero)
	for i, c := range pos {
		idx := int64(posOffset) + int64(i)
		out = append(out, bucket{
			lower: exponentialBound(scale, idx),
			upper: exponentialBound(scale, idx+1),
			count: c,
		})
	}
	return out
}

// exponentialBound returns base^idx for base = 2^(2^-scale), that is
// 2^(idx·2^-scale), exactly when the exponent is an integer.
func exponentialBound(scale int32, idx int64) float64 {
	if scale <= 0 {
		exp := idx << uint(-scale)
		if exp > 1100 {
			return math.Inf(1)
		}
		if exp < -1100 {
			return 0
		}
		return math.Ldexp(1, int(exp))
	}
	div := int64(1) << uint(scale)
	if idx%div == 0 {
		return exponentialBound(0, idx/div)
	}
	return math.Exp2(float64(idx) / float64(div))
}

// bucketQuantile estimates quantile q (in [0, 1]) over ascending buckets
// with finite bounds, interpolating linearly inside the first non-empty
// bucket whose cumulative count reaches q·total. It reports false when all
// buckets are empty.
func bucketQuantile(q float64, buckets []bucket) (float64, bool) {
	var total uint64
	for _, b := range buckets {
		total += b.count
	}
	if total == 0 {
		return 0, false
	}
	rank := q * float64(total)
	var cum uint64
	last := -1
	for i, b := range buckets {
		prev := cum
		cum += b.count
		if b.count == 0 {
			continue
		}
		last = i
		if float64(cum) >= rank {
			return interpolate(b.lower, b.upper, rank-float64(prev), b.count), true
		}
	}
	return buckets[last].upper, true
}

// interpolate returns the value at rank r (0 < r <= count) inside a bucket
// from lower to upper holding count observations spread evenly.
func interpolate(lower, upper, r float64, count uint64) float64 {
	return lower + (upper-lower)*(r/float64(count))
}

// clamp limits v to [lo, hi] for the bounds that are set.
func clamp(v float64, lo, hi *float64) float64 {
	if lo != nil && v < *lo {
		v = *lo
	}
	if hi != nil && v > *hi {
		v = *hi
	}
	return v
}
