package promexport

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/flowscope/flowscope/aggregate"
)

// TestGeometryWidth checks geometry.width against hdrhistogram-go's own
// bucket ranges (Histogram.Distribution) for every precision and a few
// lowest discernible values, and that PackedHistogram.ForEachBucket gives
// the buckets' lowest values.
func TestGeometryWidth(t *testing.T) {
	for digits := 1; digits <= 5; digits++ {
		for _, lowest := range []int64{1, 3, 1000} {
			highest := int64(1e9)
			if digits >= 4 {
				highest = 5e6 // keeps Distribution's bar list small
			}
			h := hdr.New(lowest, highest, digits)
			if err := h.RecordValue(highest); err != nil {
				t.Fatal(err)
			}
			g := newGeometry(lowest, digits)
			bars := h.Distribution()
			for _, b := range bars {
				if w := g.width(b.From); w != b.To-b.From+1 {
					t.Fatalf("digits %d lowest %d: width(%d) = %d, want %d (bucket %d..%d)", digits, lowest, b.From, w, b.To-b.From+1, b.From, b.To)
				}
			}
			// The packed histogram's bucket values are the bars' From.
			p := hdr.NewPacked(lowest, highest, digits)
			rng := rand.New(rand.NewPCG(uint64(digits), uint64(lowest)))
			for range 500 {
				if err := p.RecordValue(lowest + rng.Int64N(highest-lowest)); err != nil {
					t.Fatal(err)
				}
			}
			if geometryOf(p) != g {
				t.Fatalf("digits %d lowest %d: geometryOf = %+v, want %+v", digits, lowest, geometryOf(p), g)
			}
			froms := make([]int64, len(bars))
			for i, b := range bars {
				froms[i] = b.From
			}
			p.ForEachBucket(func(v, _ int64) bool {
				if _, ok := slices.BinarySearch(froms, v); !ok {
					t.Fatalf("digits %d lowest %d: ForEachBucket value %d is no bucket's lowest value", digits, lowest, v)
				}
				return true
			})
		}
	}
}

// TestAccAdd checks the classic buckets and the sum of rollups against the
// HDR library's bucket ranges.
func TestAccAdd(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name   string
		durs   []time.Duration
		bounds []time.Duration
		untime int64 // spans of unknown duration
	}{
		{name: "empty", bounds: []time.Duration{ms}},
		{name: "below, on and above a bound", durs: []time.Duration{4 * ms, 5 * ms, 5*ms + time.Microsecond, 4980 * time.Microsecond, 6 * ms},
			bounds: []time.Duration{5 * ms, 10 * ms}},
		{name: "above every bound", durs: []time.Duration{2 * time.Second, time.Hour}, bounds: []time.Duration{ms, time.Second}},
		{name: "zero and tiny", durs: []time.Duration{0, 1, 255, 256, 257}, bounds: []time.Duration{256, 300}},
		{name: "untimed spans", durs: []time.Duration{3 * ms}, bounds: []time.Duration{ms, 5 * ms}, untime: 4},
		{name: "many", durs: manyDurations(10000), bounds: DefaultOptions().Buckets},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := aggregate.DefaultGeometry().NewRollup()
			var sum float64
			for _, d := range tt.durs {
				if err := r.Hist.RecordValue(int64(d)); err != nil {
					t.Fatal(err)
				}
				sum += float64(d)
			}
			r.Count = int64(len(tt.durs)) + tt.untime
			r.Errors = 1
			bounds := make([]int64, len(tt.bounds))
			for i, b := range tt.bounds {
				bounds[i] = int64(b)
			}
			a := newAcc(len(bounds))
			a.add(r, bounds)
			s := a.cumulative()
			want := oracleBuckets(tt.durs, tt.bounds)
			got := make([]uint64, len(s.le))
			for i, n := range s.le {
				got[i] = uint64(n)
			}
			if !slices.Equal(got, want) {
				t.Errorf("buckets %v, want %v", got, want)
			}
			if s.timed != int64(len(tt.durs)) || s.requests != r.Count || s.errors != 1 {
				t.Errorf("timed %d requests %d errors %d", s.timed, s.requests, s.errors)
			}
			if math.Abs(s.sum-sum) > sum/256+1 {
				t.Errorf("sum %v, want %v within 1/256", s.sum, sum)
			}
			// Adding twice doubles everything.
			a.add(r, bounds)
			if d := a.cumulative(); d.timed != 2*s.timed || d.requests != 2*s.requests || (len(d.le) > 0 && d.le[0] != 2*s.le[0]) {
				t.Errorf("added twice: %+v, once %+v", d, s)
			}
		})
	}
}

// manyDurations returns n durations of a three-mode distribution.
func manyDurations(n int) []time.Duration {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]time.Duration, n)
	for i := range out {
		base := []float64{3e6, 45e6, 750e6}[rng.IntN(3)]
		out[i] = time.Duration(base * math.Exp(rng.NormFloat64()*0.3))
	}
	return out
}

// TestHold checks that what was exposed is never taken back, and that the
// maximum of two consistent samples is consistent.
func TestHold(t *testing.T) {
	f := func(prev, cur, want sample) {
		t.Helper()
		got := cur
		got.le = slices.Clone(cur.le)
		var p *sample
		if prev.le != nil {
			p = &prev
		}
		got.hold(p)
		if got.requests != want.requests || got.errors != want.errors || got.timed != want.timed || got.sum != want.sum || !slices.Equal(got.le, want.le) {
			t.Errorf("hold(%+v, %+v) = %+v, want %+v", prev, cur, got, want)
		}
		for j := 1; j < len(got.le); j++ {
			if got.le[j] < got.le[j-1] || got.timed < got.le[j] {
				t.Errorf("hold gives inconsistent buckets %+v", got)
			}
		}
	}
	s := func(req, errs, timed int64, sum float64, le ...int64) sample {
		return sample{requests: req, errors: errs, le: le, timed: timed, sum: sum}
	}
	f(sample{}, s(5, 1, 5, 10, 2, 4), s(5, 1, 5, 10, 2, 4))                           // nothing before
	f(s(3, 1, 3, 6, 1, 2), s(5, 1, 5, 10, 2, 4), s(5, 1, 5, 10, 2, 4))                // grown
	f(s(5, 2, 5, 10, 2, 4), s(4, 1, 4, 7, 1, 3), s(5, 2, 5, 10, 2, 4))                // a call moved away
	f(s(5, 2, 5, 10, 2, 4), s(6, 1, 6, 11, 1, 5), s(6, 2, 6, 11, 2, 5))               // moved away and new ones
	f(s(5, 0, 5, 10, 5, 5), s(5, 0, 5, 10.000001, 0, 5), s(5, 0, 5, 10.000001, 5, 5)) // sum rounding
}

// TestQuantiles checks the quantiles against the latency API's rule.
func TestQuantiles(t *testing.T) {
	r := aggregate.DefaultGeometry().NewRollup()
	for i := 1; i <= 10; i++ {
		r.Hist.RecordValue(int64(i) * int64(time.Millisecond))
	}
	got := quantiles(r, []float64{0.1, 0.5, 0.9, 0.99})
	for i, q := range []float64{0.1, 0.5, 0.9, 0.99} {
		want := float64(r.Hist.ValueAtPercentile(aggregate.NearestRankPercentile(q, 10))) / 1e9
		if got[i] != want {
			t.Errorf("q%v = %v, want %v", q, got[i], want)
		}
	}
	// p90 of 10 values is the 9th (nearest rank), within HDR resolution.
	if got[2] < 0.009 || got[2] > 0.009*(1+1.0/128) {
		t.Errorf("p90 = %v, want ~0.009", got[2])
	}
	for _, v := range quantiles(aggregate.DefaultGeometry().NewRollup(), []float64{0.5}) {
		if !math.IsNaN(v) {
			t.Errorf("quantile without data = %v, want NaN", v)
		}
	}
}
