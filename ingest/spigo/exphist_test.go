package spigo

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestExpIndexKnown(t *testing.T) {
	tests := []struct {
		u    uint64
		s    int
		want int
	}{
		// Scale 0: buckets (2^i, 2^(i+1)].
		{1, 0, -1}, {2, 0, 0}, {3, 0, 1}, {4, 0, 1}, {5, 0, 2}, {1024, 0, 9}, {1025, 0, 10},
		// Scale 1: boundaries at powers of √2.
		{1, 1, -1}, {2, 1, 1}, {3, 1, 3}, {4, 1, 3}, {5, 1, 4}, {6, 1, 5},
		// Exact powers of two close their bucket at every scale.
		{1 << 10, 8, 10<<8 - 1}, {1 << 53, 8, 53<<8 - 1}, {1 << 63, 8, 63<<8 - 1}, {1 << 63, 0, 62},
		// One past a power of two opens the next bucket.
		{1<<10 + 1, 8, 10 << 8}, {1<<53 + 1, 8, 53 << 8}, {math.MaxUint64, 0, 63},
	}
	for _, tt := range tests {
		if got := expIndex(tt.u, tt.s); got != tt.want {
			t.Errorf("expIndex(%d, %d) = %d, want %d", tt.u, tt.s, got, tt.want)
		}
		if got := expIndexBig(tt.u, tt.s); got != tt.want {
			t.Errorf("expIndexBig(%d, %d) = %d, want %d", tt.u, tt.s, got, tt.want)
		}
	}
}

// TestExpIndexBoundaries checks the values closest to every bucket
// boundary, where a floating-point logarithm can go wrong: for each
// scale-8 boundary 2^(j/256) the integers around it scaled by 2^52 (the
// bound table's own float64 values and their neighbours) and by 2^20.
func TestExpIndexBoundaries(t *testing.T) {
	tab := expBounds()
	for j := 1; j < len(tab); j++ {
		for _, e := range []int{20, 40, 52} {
			c := uint64(math.Ldexp(tab[j], e)) // ≥ the boundary ·2^e
			for _, u := range []uint64{c - 2, c - 1, c, c + 1, c + 2} {
				for s := 0; s <= expMaxScale; s++ {
					if got, want := expIndex(u, s), expIndexBig(u, s); got != want {
						t.Fatalf("expIndex(%d, %d) = %d, want %d (boundary %d/256·2^%d)", u, s, got, want, j, e)
					}
				}
			}
		}
	}
}

func TestExpIndexRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		u := rng.Uint64() >> rng.IntN(64)
		if u == 0 {
			continue
		}
		s := rng.IntN(expMaxScale + 1)
		if got, want := expIndex(u, s), expIndexBig(u, s); got != want {
			t.Fatalf("expIndex(%d, %d) = %d, want %d", u, s, got, want)
		}
	}
	for u := uint64(1); u <= 2000; u++ {
		for s := 0; s <= expMaxScale; s++ {
			if got, want := expIndex(u, s), expIndexBig(u, s); got != want {
				t.Fatalf("expIndex(%d, %d) = %d, want %d", u, s, got, want)
			}
		}
	}
}

// TestExpIndexMatchesLog compares with the floating-point formula of the
// OTLP specification away from boundaries.
func TestExpIndexMatchesLog(t *testing.T) {
	for _, u := range []uint64{3, 1000, 12345, 987654321, 1 << 40 / 3} {
		for s := 0; s <= expMaxScale; s++ {
			f := math.Log2(float64(u)) * math.Exp2(float64(s))
			if math.Abs(f-math.Round(f)) < 1e-6 {
				continue
			}
			if got, want := expIndex(u, s), int(math.Ceil(f))-1; got != want {
				t.Errorf("expIndex(%d, %d) = %d, log formula %d", u, s, got, want)
			}
		}
	}
}

func TestExpHistogramScale(t *testing.T) {
	tests := []struct {
		samples []int64
		scale   int32
	}{
		{[]int64{1000}, 8},
		{[]int64{1000, 1500}, 8},                  // 0.58 octaves: 150 buckets
		{[]int64{1000, 2000}, 8},                  // one octave: 257 buckets at scale 8
		{[]int64{1000, 1 << 40}, 7},               // 30 octaves: 7,680 buckets at scale 8
		{[]int64{1, math.MaxInt64}, 6},            // 63 octaves: 4,033 buckets at scale 6
		{[]int64{0, 0}, 8},                        // zeros only
		{[]int64{-1000, -1500, 0, 1000, 1500}, 8}, // both signs fit
		{[]int64{-1000, -1 << 40, 1000, 1500}, 7}, // the negative range decides
	}
	for _, tt := range tests {
		p := expHistogram(tt.samples)
		if p.Scale != tt.scale {
			t.Errorf("%v: scale %d, want %d", tt.samples, p.Scale, tt.scale)
		}
		for _, b := range []interface{ GetBucketCounts() []uint64 }{p.GetPositive(), p.GetNegative()} {
			if n := len(b.GetBucketCounts()); n > expMaxBuckets {
				t.Errorf("%v: %d buckets", tt.samples, n)
			}
		}
	}
}

func TestAddInt64(t *testing.T) {
	tests := []struct {
		a, b, sum int64
		over      bool
	}{
		{1, 2, 3, false}, {math.MaxInt64, 1, math.MinInt64, true}, {math.MinInt64, -1, math.MaxInt64, true},
		{math.MaxInt64, math.MinInt64, -1, false}, {-5, 3, -2, false},
	}
	for _, tt := range tests {
		if s, o := addInt64(tt.a, tt.b); s != tt.sum || o != tt.over {
			t.Errorf("addInt64(%d, %d) = %d, %t", tt.a, tt.b, s, o)
		}
	}
}

// FuzzExpIndex compares the table computation with big-integer arithmetic.
func FuzzExpIndex(f *testing.F) {
	f.Add(uint64(1), uint8(0))
	f.Add(uint64(1<<53), uint8(8))
	f.Add(uint64(3037000499), uint8(5))
	f.Fuzz(func(t *testing.T, u uint64, s uint8) {
		if u == 0 {
			return
		}
		sc := int(s % (expMaxScale + 1))
		if got, want := expIndex(u, sc), expIndexBig(u, sc); got != want {
			t.Fatalf("expIndex(%d, %d) = %d, want %d", u, sc, got, want)
		}
	})
}
