package main

import (
	"testing"
	"time"
)

// TestAckStats checks the longest acknowledgement gap and the per-bucket
// counts, window edges and out-of-window acknowledgements included.
func TestAckStats(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(msec ...int) []time.Time {
		var out []time.Time
		for _, m := range msec {
			out = append(out, t0.Add(time.Duration(m)*time.Millisecond))
		}
		return out
	}
	// Ties list the earliest gap first.
	// every returns an ack every step ms in [from, to).
	every := func(from, to, step int) []int {
		var out []int
		for m := from; m < to; m += step {
			out = append(out, m)
		}
		return out
	}
	cat := func(xs ...[]int) []int {
		var out []int
		for _, x := range xs {
			out = append(out, x...)
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		acks       []int // ms after t0, in any order
		winMs      int   // window [t0, t0+winMs]
		wantGap    float64
		wantAt     float64 // start of the longest gap, s after t0
		wantAcks   int
		wantZero   int
		wantP1     int
		wantP50    int
		wantWithin bool
	}{
		{name: "steady", acks: every(0, 1000, 10), winMs: 1000, wantGap: 10, wantAt: 0, wantAcks: 100,
			wantZero: 0, wantP1: 10, wantP50: 10, wantWithin: true},
		{name: "stall in the middle", acks: cat(every(0, 300, 10), every(800, 1000, 10)), winMs: 1000,
			wantGap: 510, wantAt: 0.29, wantAcks: 50, wantZero: 5, wantP1: 0, wantP50: 10},
		{name: "unsorted", acks: []int{900, 100, 500, 300}, winMs: 1000, wantGap: 400, wantAt: 0.5, wantAcks: 4,
			wantZero: 6, wantP1: 0, wantP50: 0},
		{name: "stall at the start counts from the window start", acks: every(400, 1000, 10), winMs: 1000,
			wantGap: 400, wantAt: 0, wantAcks: 60, wantZero: 4, wantP1: 0, wantP50: 10},
		{name: "stall at the end counts to the window end", acks: every(0, 700, 10), winMs: 1000,
			wantGap: 310, wantAt: 0.69, wantAcks: 70, wantZero: 3, wantP1: 0, wantP50: 10},
		{name: "acks outside the window are not counted", acks: cat([]int{-50, -10}, every(0, 1000, 20), []int{1010, 1300}), winMs: 1000,
			wantGap: 20, wantAt: 0, wantAcks: 50, wantZero: 0, wantP1: 5, wantP50: 5, wantWithin: true},
		{name: "no acks", acks: nil, winMs: 500, wantGap: 500, wantAt: 0, wantAcks: 0, wantZero: 5},
		{name: "exactly the target", acks: []int{0, 100, 200}, winMs: 200, wantGap: 100, wantAt: 0, wantAcks: 3,
			wantZero: 0, wantP1: 1, wantP50: 1, wantWithin: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := ackStats(at(tc.acks...), t0, t0.Add(time.Duration(tc.winMs)*time.Millisecond))
			if st.LongestGapMs != tc.wantGap || st.Acks != tc.wantAcks || st.WithinTarget != tc.wantWithin {
				t.Errorf("gap %v ms, %d acks, within %v; want %v ms, %d, %v", st.LongestGapMs, st.Acks, st.WithinTarget, tc.wantGap, tc.wantAcks, tc.wantWithin)
			}
			if len(st.Gaps) == 0 || st.Gaps[0].Ms != st.LongestGapMs || abs(st.Gaps[0].AtSeconds-tc.wantAt) > 1e-9 {
				t.Errorf("gaps %+v: want the longest first, at %v s", st.Gaps, tc.wantAt)
			}
			for i := 1; i < len(st.Gaps); i++ {
				if st.Gaps[i].Ms > st.Gaps[i-1].Ms {
					t.Errorf("gaps not longest first: %+v", st.Gaps)
				}
			}
			if len(st.Gaps) > topAckGaps {
				t.Errorf("%d gaps listed", len(st.Gaps))
			}
			wantBuckets := tc.winMs / 100
			if st.Buckets != wantBuckets || st.ZeroBuckets != tc.wantZero || st.BucketP1 != tc.wantP1 || st.BucketP50 != tc.wantP50 {
				t.Errorf("buckets %d, zero %d, p1 %d, p50 %d; want %d, %d, %d, %d",
					st.Buckets, st.ZeroBuckets, st.BucketP1, st.BucketP50, wantBuckets, tc.wantZero, tc.wantP1, tc.wantP50)
			}
			if want := float64(tc.wantZero) / float64(wantBuckets); st.ZeroBucketFraction != want {
				t.Errorf("zero fraction %v, want %v", st.ZeroBucketFraction, want)
			}
		})
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
