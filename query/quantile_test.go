package query

import (
	"math"
	"testing"
)

func approx(a, b float64) bool {
	return a == b || math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b))
}

// TestExplicitQuantile checks estimates computed by hand with Prometheus'
// histogram_quantile rules.
func TestExplicitQuantile(t *testing.T) {
	// 10 observations: 2 in (-Inf,10], 3 in (10,20], 4 in (20,50], 1 in (50,100].
	bounds := []float64{10, 20, 50, 100}
	counts := []uint64{2, 3, 4, 1, 0}
	f := func(q float64, bounds []float64, counts []uint64, want float64) {
		t.Helper()
		got, ok := explicitQuantile(q, bounds, counts)
		if !ok || !approx(got, want) {
			t.Errorf("explicitQuantile(%v, %v, %v) = %v, %v; want %v", q, bounds, counts, got, ok, want)
		}
	}
	f(0.5, bounds, counts, 20)           // rank 5: end of (10,20]
	f(0.25, bounds, counts, 10+10*0.5/3) // rank 2.5: 0.5 of 3 into (10,20]
	f(0.1, bounds, counts, 5)            // rank 1: first bucket starts at 0 as its bound is > 0
	f(0.9, bounds, counts, 50)           // rank 9: end of (20,50]
	f(0.99, bounds, counts, 95)          // rank 9.9: 0.9 into (50,100]
	f(0.999, bounds, counts, 99.5)       // rank 9.99
	f(1, bounds, counts, 100)            // last non-empty bucket's end
	f(0, bounds, counts, 0)              // first non-empty bucket's start
	// A rank in the overflow bucket answers the highest finite bound.
	f(0.99, bounds, []uint64{0, 0, 0, 1, 1}, 100)
	// A first bucket with a bound <= 0 answers that bound.
	f(0.5, []float64{-5, 0, 5}, []uint64{2, 0, 0, 0}, -5)
	// Negative bounds elsewhere interpolate normally: rank 3 is 1 of 2 into (-5,0].
	f(0.75, []float64{-5, 0, 5}, []uint64{2, 2, 0, 0}, -2.5)
	// Empty buckets before the rank are skipped.
	f(0.5, bounds, []uint64{0, 0, 4, 0, 0}, 35)

	for _, tt := range []struct {
		name   string
		bounds []float64
		counts []uint64
	}{
		{"empty", bounds, []uint64{0, 0, 0, 0, 0}},
		{"no bounds", nil, []uint64{7}},
		{"malformed", bounds, []uint64{1, 2}},
	} {
		if got, ok := explicitQuantile(0.5, tt.bounds, tt.counts); ok {
			t.Errorf("%s: got %v, want no estimate", tt.name, got)
		}
	}
}

// TestExponentialQuantile checks estimates over exponential buckets computed
// by hand: bucket i covers (base^i, base^(i+1)], base = 2^(2^-scale).
func TestExponentialQuantile(t *testing.T) {
	f := func(name string, q float64, buckets []bucket, want float64) {
		t.Helper()
		got, ok := bucketQuantile(q, buckets)
		if !ok || !approx(got, want) {
			t.Errorf("%s: q=%v: got %v, %v; want %v", name, q, got, ok, want)
		}
	}

	// Scale 0 (base 2): 1 zero, 1 in (1,2], 2 in (2,4], 1 in (4,8].
	b0 := exponentialBuckets(0, 1, 0, 0, []uint64{1, 2, 1}, 0, nil)
	wantBuckets(t, b0, []bucket{{0, 0, 1}, {1, 2, 1}, {2, 4, 2}, {4, 8, 1}})
	f("scale 0", 0.1, b0, 0)   // rank 0.5: zero bucket
	f("scale 0", 0.3, b0, 1.5) // rank 1.5: 0.5 of 1 into (1,2]
	f("scale 0", 0.5, b0, 2.5) // rank 2.5: 0.5 of 2 into (2,4]
	f("scale 0", 0.9, b0, 6)   // rank 4.5: 0.5 of 1 into (4,8]
	f("scale 0", 1, b0, 8)

	// Scale 1 (base √2): 4 in bucket -2 = (2^-1, 2^-0.5].
	b1 := exponentialBuckets(1, 0, 0, -2, []uint64{4}, 0, nil)
	wantBuckets(t, b1, []bucket{{0, 0, 0}, {0.5, math.Sqrt2 / 2, 4}})
	f("scale 1", 0.5, b1, 0.5+(math.Sqrt2/2-0.5)/2)

	// Scale -1 (base 4): 3 in bucket 1 = (4,16].
	bm1 := exponentialBuckets(-1, 0, 0, 1, []uint64{3}, 0, nil)
	wantBuckets(t, bm1, []bucket{{0, 0, 0}, {4, 16, 3}})
	f("scale -1", 1.0/3, bm1, 8)

	// Negative buckets, scale 0: 2 in [-4,-2) (negative index 1), an empty
	// zero bucket of threshold 0.5, 2 in (1,2].
	bn := exponentialBuckets(0, 0, 0.5, 0, []uint64{2}, 1, []uint64{2})
	wantBuckets(t, bn, []bucket{{-4, -2, 2}, {-0.5, 0.5, 0}, {1, 2, 2}})
	f("negative", 0.25, bn, -3)  // rank 1: 1 of 2 into [-4,-2)
	f("negative", 0.75, bn, 1.5) // rank 3: 1 of 2 into (1,2]

	// A zero bucket with a threshold and no negative observations spans
	// [0, threshold]: rank 1 of 2 is its middle.
	bz := exponentialBuckets(0, 2, 0.001, 0, []uint64{2}, 0, nil)
	f("zero threshold", 0.25, bz, 0.0005)

	if got, ok := bucketQuantile(0.5, exponentialBuckets(0, 0, 0, 0, []uint64{0, 0}, 0, nil)); ok {
		t.Errorf("empty histogram: got %v, want no estimate", got)
	}
}

func wantBuckets(t *testing.T, got, want []bucket) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("buckets = %v, want %v", got, want)
	}
	for i := range got {
		if !approx(got[i].lower, want[i].lower) || !approx(got[i].upper, want[i].upper) || got[i].count != want[i].count {
			t.Fatalf("buckets = %v, want %v", got, want)
		}
	}
}

func TestExponentialBound(t *testing.T) {
	f := func(scale int32, idx int64, want float64) {
		t.Helper()
		if got := exponentialBound(scale, idx); got != want {
			t.Errorf("exponentialBound(%d, %d) = %v, want %v", scale, idx, got, want)
		}
	}
	f(0, 0, 1)
	f(0, 3, 8)
	f(0, -2, 0.25)
	f(2, 8, 4) // 2^(8/4), exact
	f(-2, 1, 16)
	f(3, 1, math.Exp2(0.125))
	f(0, 2000, math.Inf(1))
}

func TestClamp(t *testing.T) {
	lo, hi := 3.0, 90.0
	for _, c := range []struct{ v, want float64 }{{1, 3}, {50, 50}, {95, 90}} {
		if got := clamp(c.v, &lo, &hi); got != c.want {
			t.Errorf("clamp(%v) = %v, want %v", c.v, got, c.want)
		}
	}
	if got := clamp(95, nil, nil); got != 95 {
		t.Errorf("clamp without bounds = %v", got)
	}
}
