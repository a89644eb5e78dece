package spigo

import (
	"math"
	"math/big"
	"math/bits"
	"sort"
	"sync"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// Exponential histogram geometry used for Guesstimate samples.
const (
	expMaxScale   = 8    // finest scale tried: relative bucket width 2^(2^-8)-1 ≈ 0.27%
	expMaxBuckets = 4096 // most buckets per range: enough for scale 6 (≤ 1% error) over 64 octaves
)

// expBounds returns, for j in [1, 256), the smallest float64 strictly
// greater than 2^(j/256): the exact lower limit of the mantissas m in
// [1, 2) that lie above the j-th scale-8 bucket boundary. 2^(j/256) is
// irrational, so "m > boundary" is "m >= expBounds()[j]", exactly. The
// bounds of scale s are those of scale 8 at j·2^(8-s).
var expBounds = sync.OnceValue(func() *[1 << expMaxScale]float64 {
	var t [1 << expMaxScale]float64
	for j := 1; j < len(t); j++ {
		x := math.Exp2(float64(j) / (1 << expMaxScale))
		for !aboveBoundary(x, j) {
			x = math.Nextafter(x, 2)
		}
		for {
			p := math.Nextafter(x, 1)
			if !aboveBoundary(p, j) {
				break
			}
			x = p
		}
		t[j] = x
	}
	return &t
})

// aboveBoundary reports whether x (in [1, 2)) is greater than
// 2^(j/256), exactly: x^256 > 2^j, computed on x's integer mantissa.
func aboveBoundary(x float64, j int) bool {
	mant := new(big.Int).SetUint64(uint64(math.Ldexp(x, 52))) // x = mant·2^-52, exact
	mant.Exp(mant, big.NewInt(1<<expMaxScale), nil)
	limit := new(big.Int).Lsh(big.NewInt(1), uint(j+52<<expMaxScale))
	return mant.Cmp(limit) > 0
}

// expIndex returns the OTLP exponential-histogram bucket index of the
// magnitude u > 0 at scale s in [0, 8]: the i with base^i < u <= base^(i+1),
// base = 2^(2^-s), i.e. ceil(log2(u)·2^s) - 1, computed exactly (exact
// powers of two fall in the bucket they close). Values up to 2^53 use the
// float64 mantissa from math.Frexp and the exact boundary table; larger
// ones (not exactly representable) compare u^(2^s) with powers of two.
func expIndex(u uint64, s int) int {
	if u > 1<<53 {
		return expIndexBig(u, s)
	}
	frac, exp := math.Frexp(float64(u)) // u = frac·2^exp, frac in [0.5, 1)
	m, e := 2*frac, exp-1               // u = m·2^e, m in [1, 2)
	if m == 1 {
		return e<<s - 1
	}
	t, step := expBounds(), 1<<(expMaxScale-s)
	// k = number of boundaries 2^(j/2^s), j in [1, 2^s), below m.
	k := sort.Search(1<<s-1, func(i int) bool { return t[(i+1)*step] > m })
	return e<<s + k
}

// expIndexBig is expIndex by big-integer arithmetic: with X = u^(2^s),
// the index is ceil(log2 X) - 1.
func expIndexBig(u uint64, s int) int {
	x := new(big.Int).SetUint64(u)
	x.Exp(x, big.NewInt(1<<s), nil)
	if u&(u-1) == 0 {
		return x.BitLen() - 2 // X is a power of two: log2 X = BitLen-1
	}
	return x.BitLen() - 1
}

// magnitude returns |v| as a uint64 (exact for math.MinInt64 too).
func magnitude(v int64) uint64 {
	if v < 0 {
		return -uint64(v)
	}
	return uint64(v)
}

// expHistogram builds an exponential histogram data point (without times
// and attributes) from samples: count, sum (omitted when a sample is
// negative, as the OTLP data model asks), min, max, zero count and
// positive and negative buckets at the finest scale in [0, 8] at which
// each range needs at most expMaxBuckets (4096) buckets. samples must not be empty.
func expHistogram(samples []int64) *metricspb.ExponentialHistogramDataPoint {
	var (
		zero                     uint64
		posLo, posHi             uint64 = math.MaxUint64, 0
		negLo, negHi             uint64 = math.MaxUint64, 0
		minV, maxV               int64  = math.MaxInt64, math.MinInt64
		sumI                     int64
		sumF                     float64
		overflow, neg, havePosit bool
	)
	for _, v := range samples {
		minV, maxV = min(minV, v), max(maxV, v)
		if !overflow {
			s, o := addInt64(sumI, v)
			if o {
				overflow, sumF = true, float64(sumI)+float64(v)
			} else {
				sumI = s
			}
		} else {
			sumF += float64(v)
		}
		switch u := magnitude(v); {
		case v == 0:
			zero++
		case v > 0:
			havePosit = true
			posLo, posHi = min(posLo, u), max(posHi, u)
		default:
			neg = true
			negLo, negHi = min(negLo, u), max(negHi, u)
		}
	}
	fits := func(lo, hi uint64, s int) bool {
		return expIndex(hi, s)-expIndex(lo, s)+1 <= expMaxBuckets
	}
	scale := expMaxScale
	for ; scale > 0; scale-- {
		if (!havePosit || fits(posLo, posHi, scale)) && (!neg || fits(negLo, negHi, scale)) {
			break
		}
	}
	p := &metricspb.ExponentialHistogramDataPoint{
		Count:     uint64(len(samples)),
		Scale:     int32(scale),
		ZeroCount: zero,
		Min:       ptr(float64(minV)),
		Max:       ptr(float64(maxV)),
	}
	if !neg {
		if overflow {
			p.Sum = ptr(sumF)
		} else {
			p.Sum = ptr(float64(sumI))
		}
	}
	if havePosit {
		p.Positive = newBuckets(posLo, posHi, scale)
	}
	if neg {
		p.Negative = newBuckets(negLo, negHi, scale)
	}
	for _, v := range samples {
		var b *metricspb.ExponentialHistogramDataPoint_Buckets
		switch {
		case v > 0:
			b = p.Positive
		case v < 0:
			b = p.Negative
		default:
			continue
		}
		b.BucketCounts[expIndex(magnitude(v), scale)-int(b.Offset)]++
	}
	return p
}

// newBuckets returns empty buckets covering magnitudes lo..hi at scale s.
func newBuckets(lo, hi uint64, s int) *metricspb.ExponentialHistogramDataPoint_Buckets {
	first := expIndex(lo, s)
	return &metricspb.ExponentialHistogramDataPoint_Buckets{
		Offset:       int32(first),
		BucketCounts: make([]uint64, expIndex(hi, s)-first+1),
	}
}

// addInt64 returns a+b and whether it overflowed.
func addInt64(a, b int64) (int64, bool) {
	s, _ := bits.Add64(uint64(a), uint64(b), 0)
	r := int64(s)
	return r, (a >= 0) == (b >= 0) && (r >= 0) != (a >= 0)
}

func ptr[T any](v T) *T { return &v }
