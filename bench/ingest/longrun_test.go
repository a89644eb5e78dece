package main

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// seq returns n buckets of spans: f(i) for bucket i.
func seq(n int, f func(i int) int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

// TestIntervalSpans checks an interval's total and its slowest whole
// second, with intervals on and off second boundaries.
func TestIntervalSpans(t *testing.T) {
	steady := seq(100, func(int) int64 { return 10 })                    // 100 spans/s for 10 s
	stall := seq(100, func(i int) int64 { return int64(10 * (i / 50)) }) // nothing for 5 s, then 100/s
	dip := seq(100, func(i int) int64 {                                  // second 3 has 4 buckets of 0
		if i >= 32 && i < 36 {
			return 0
		}
		return 10
	})
	for _, tc := range []struct {
		name      string
		spans     []int64
		from, to  int
		wantTotal int64
		wantMin   int64
		wantOK    bool
	}{
		{"whole window", steady, 0, 100, 1000, 100, true},
		{"one interval of 2 s", steady, 20, 40, 200, 100, true},
		{"stall then steady", stall, 0, 100, 500, 0, true},
		{"the steady half", stall, 50, 100, 500, 100, true},
		{"a dip inside a second", dip, 30, 50, 160, 60, true},
		{"off second boundaries: only whole seconds count", dip, 25, 45, 160, 60, true},
		{"no whole second", steady, 12, 18, 60, 0, false},
		{"to past the end is clipped", steady, 90, 120, 100, 100, true},
		{"empty", nil, 0, 10, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total, m, ok := intervalSpans(tc.spans, tc.from, tc.to)
			if total != tc.wantTotal || m != tc.wantMin || ok != tc.wantOK {
				t.Errorf("intervalSpans(%d, %d) = %d, %d, %v; want %d, %d, %v", tc.from, tc.to, total, m, ok, tc.wantTotal, tc.wantMin, tc.wantOK)
			}
		})
	}
}

// TestSplitBlocks checks the blocks' edges (the remainder goes to the
// last), their rates and the last/first ratio.
func TestSplitBlocks(t *testing.T) {
	ramp := seq(60, func(i int) int64 { return int64(10 + i/10) }) // 6 s, each second faster
	for _, tc := range []struct {
		name      string
		spans     []int64
		whole, n  int
		wantEnds  []float64 // each block's end, s
		wantRates []float64
		wantRatio float64 // 0: null
	}{
		{"6 blocks of 1 s", ramp, 60, 6, []float64{1, 2, 3, 4, 5, 6}, []float64{100, 110, 120, 130, 140, 150}, 1.5},
		{"3 blocks of 2 s", ramp, 60, 3, []float64{2, 4, 6}, []float64{105, 125, 145}, 145.0 / 105},
		{"remainder to the last block", ramp, 60, 4, []float64{1.5, 3, 4.5, 6}, []float64{
			float64(10*10+5*11) / 1.5, float64(5*11+10*12) / 1.5, float64(10*13+5*14) / 1.5, float64(5*14+10*15) / 1.5,
		}, (float64(5*14+10*15) / 1.5) / (float64(10*10+5*11) / 1.5)},
		{"7 blocks of 0.8 s, 0.4 s left over", seq(60, func(int) int64 { return 1 }), 60, 7,
			[]float64{0.8, 1.6, 2.4, 3.2, 4.0, 4.8, 6.0}, []float64{10, 10, 10, 10, 10, 10, 10}, 1},
		{"a shorter window than the buckets kept", ramp, 30, 3, []float64{1, 2, 3}, []float64{100, 110, 120}, 1.2},
		{"idle first block: no ratio", seq(20, func(i int) int64 { return int64(i / 10) }), 20, 2, []float64{1, 2}, []float64{0, 10}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := splitBlocks(tc.spans, tc.whole, tc.n)
			if b == nil || len(b.Blocks) != tc.n {
				t.Fatalf("got %+v, want %d blocks", b, tc.n)
			}
			var sum, want int64
			for i, r := range b.Blocks {
				if math.Abs(r.EndSeconds-tc.wantEnds[i]) > 1e-9 || math.Abs(r.SpansPerSecond-tc.wantRates[i]) > 1e-9 {
					t.Errorf("block %d: ends %v s at %v spans/s; want %v s, %v", i+1, r.EndSeconds, r.SpansPerSecond, tc.wantEnds[i], tc.wantRates[i])
				}
				if i > 0 && r.StartSeconds != b.Blocks[i-1].EndSeconds {
					t.Errorf("block %d starts at %v, the previous ends at %v", i+1, r.StartSeconds, b.Blocks[i-1].EndSeconds)
				}
				sum += r.AckedSpans
			}
			for _, x := range tc.spans[:tc.whole] {
				want += x
			}
			if sum != want {
				t.Errorf("blocks hold %d spans, the window %d", sum, want)
			}
			switch {
			case tc.wantRatio == 0 && b.LastFirstRatio != nil:
				t.Errorf("ratio %v, want null", *b.LastFirstRatio)
			case tc.wantRatio != 0 && (b.LastFirstRatio == nil || math.Abs(*b.LastFirstRatio-tc.wantRatio) > 1e-9):
				t.Errorf("ratio %v, want %v", b.LastFirstRatio, tc.wantRatio)
			}
		})
	}
	if b := splitBlocks(ramp, 5, 6); b != nil {
		t.Errorf("6 blocks of 5 buckets: %+v, want nil", b)
	}
}

// TestIntervalEnds checks the ends of the -report-every intervals.
func TestIntervalEnds(t *testing.T) {
	s := time.Second
	for _, tc := range []struct {
		d, every time.Duration
		want     []time.Duration
	}{
		{60 * s, 10 * s, []time.Duration{10 * s, 20 * s, 30 * s, 40 * s, 50 * s, 60 * s}},
		{25 * s, 10 * s, []time.Duration{10 * s, 20 * s, 25 * s}},
		{5 * s, 10 * s, []time.Duration{5 * s}},
		{60 * time.Minute, time.Minute, nil}, // 60 rows, checked below
		{10 * s, 0, nil},
	} {
		got := intervalEnds(tc.d, tc.every)
		if tc.d == 60*time.Minute {
			if len(got) != 60 || got[59] != tc.d {
				t.Errorf("60 min every minute: %d rows, last %v", len(got), got[len(got)-1])
			}
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("intervalEnds(%v, %v) = %v, want %v", tc.d, tc.every, got, tc.want)
		}
	}
}

// TestAckRecorderLatency checks that the latency percentiles from the
// histogram stay within 0.1 % of the exact ones (nearest rank) and the
// maximum is exact.
func TestAckRecorderLatency(t *testing.T) {
	for _, tc := range []struct {
		name string
		draw func(r *rand.Rand) time.Duration
	}{
		{"log-normal around 20 ms", func(r *rand.Rand) time.Duration {
			return time.Duration(20e6 * math.Exp(0.8*r.NormFloat64()))
		}},
		{"uniform 1–500 ms", func(r *rand.Rand) time.Duration {
			return time.Millisecond + time.Duration(r.Int64N(int64(499*time.Millisecond)))
		}},
		{"mostly fast, 2 % slow", func(r *rand.Rand) time.Duration {
			if r.IntN(50) == 0 {
				return 2*time.Second + time.Duration(r.Int64N(int64(time.Second)))
			}
			return 3*time.Millisecond + time.Duration(r.Int64N(int64(time.Millisecond)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			now := time.Now()
			rec := newAckRecorder(now, now.Add(time.Hour))
			var all []time.Duration
			for range 200_000 {
				d := tc.draw(r)
				all = append(all, d)
				rec.addLatency(d)
			}
			slices.Sort(all)
			exact := func(p float64) float64 {
				rank := int(math.Ceil(p * float64(len(all))))
				return ms(all[max(rank, 1)-1])
			}
			p50, p99, mx := rec.latency()
			for _, c := range []struct{ got, want float64 }{{p50, exact(0.50)}, {p99, exact(0.99)}} {
				// The histogram counts whole µs: allow 0.1 % and the µs.
				if math.Abs(c.got-c.want) > c.want*0.001+0.001 {
					t.Errorf("percentile %.4f ms, exact %.4f ms", c.got, c.want)
				}
			}
			if mx != ms(all[len(all)-1]) {
				t.Errorf("max %v ms, want %v", mx, ms(all[len(all)-1]))
			}
		})
	}
}

// TestAckRecorderBounded checks that the recorder's memory depends on the
// window's length only: a million acknowledgements keep the same buckets,
// and the spans per bucket add up.
func TestAckRecorderBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := newAckRecorder(t0, t0.Add(time.Hour))
	n0 := len(rec.spans)
	for i := range 1_000_000 {
		rec.add(t0.Add(time.Duration(i)*3*time.Millisecond), 1000) // 3,000 s of acks
	}
	if len(rec.spans) != n0 || n0 != int(time.Hour/ackBucket)+1 || len(rec.top) > topAckGaps {
		t.Errorf("%d buckets (had %d), %d gaps kept", len(rec.spans), n0, len(rec.top))
	}
	var sum int64
	for _, s := range rec.spansPerBucket() {
		sum += s
	}
	if sum != 1_000_000_000 {
		t.Errorf("%d spans in the buckets, want 1e9", sum)
	}
	st := rec.stats(t0.Add(time.Hour))
	if st.Acks != 1_000_000 || st.LongestGapMs != ms(time.Hour-2_999_997*time.Millisecond) || st.Gaps[0].AtSeconds < 2999 {
		t.Errorf("stats %+v", st)
	}
}
