package main

import (
	"fmt"
	"slices"
	"time"
)

// ackBucket is the width of the buckets AckStats counts acknowledgements in.
const ackBucket = 100 * time.Millisecond

// ackGapTarget is the acceptance bound on the longest acknowledgement gap
// (issue 10, item 7).
const ackGapTarget = 100 * time.Millisecond

// topAckGaps is the number of longest gaps listed, to attribute them.
const topAckGaps = 5

// AckStats describes how evenly acknowledgements arrived in the measured
// window, over all clients together: a stall of the commit path shows as a
// long gap with no acknowledgement at all, which throughput and latency
// percentiles average away.
type AckStats struct {
	Acks int `json:"acks"` // export calls acknowledged (OK) inside the window
	// LongestGapMs is the longest interval inside the window in which no
	// client received an acknowledgement. The window edges count as
	// bounds, so a stall at the start or the end of the window counts too.
	LongestGapMs float64 `json:"longest_gap_ms"`
	// Gaps lists the longest gaps, longest first (at most topAckGaps,
	// never overlapping), with their start as an offset from the window
	// start and as wall-clock time, to match them with collector logs.
	Gaps []AckGap `json:"gaps"`
	// Buckets is the number of whole ackBucket-wide buckets in the window;
	// ZeroBuckets of them saw no acknowledgement (ZeroBucketFraction of
	// them). BucketP1 and BucketP50 are the 1st and 50th percentile of the
	// per-bucket acknowledgement counts: BucketP1 > 0 means fewer than 1 %
	// of the buckets were empty.
	Buckets            int     `json:"buckets"`
	ZeroBuckets        int     `json:"zero_buckets"`
	ZeroBucketFraction float64 `json:"zero_bucket_fraction"`
	BucketP1           int     `json:"bucket_p1"`
	BucketP50          int     `json:"bucket_p50"`
	WithinTarget       bool    `json:"within_target"` // LongestGapMs ≤ 100
}

// AckGap is one interval without acknowledgements.
type AckGap struct {
	AtSeconds float64 `json:"at_s"`  // start, seconds after the window start
	Start     string  `json:"start"` // start, RFC 3339 wall clock with nanoseconds
	Ms        float64 `json:"ms"`    // length
}

// ackStats computes AckStats from the acknowledgement times of all
// clients (in any order; acks is sorted in place) over [winStart, winEnd].
// The window edges bound the first and the last gap; acknowledgements
// outside the window are ignored. Of equal gaps the earliest is listed first.
func ackStats(acks []time.Time, winStart, winEnd time.Time) AckStats {
	var st AckStats
	if !winEnd.After(winStart) {
		return st
	}
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	// Gaps between consecutive points, the window edges included, clipped
	// to the window.
	var gaps []AckGap
	prev := winStart
	add := func(t time.Time) {
		if d := t.Sub(prev); d > 0 {
			gaps = append(gaps, AckGap{AtSeconds: prev.Sub(winStart).Seconds(), Start: prev.Format(time.RFC3339Nano), Ms: ms(d)})
		}
		prev = t
	}
	for _, t := range acks {
		if t.Before(winStart) {
			continue
		}
		if t.After(winEnd) {
			break
		}
		st.Acks++
		add(t)
	}
	add(winEnd)
	slices.SortStableFunc(gaps, func(a, b AckGap) int {
		switch {
		case a.Ms > b.Ms:
			return -1
		case a.Ms < b.Ms:
			return 1
		}
		return 0
	})
	if len(gaps) > 0 {
		st.LongestGapMs = gaps[0].Ms
	}
	st.Gaps = gaps[:min(len(gaps), topAckGaps)]
	st.WithinTarget = st.LongestGapMs <= ms(ackGapTarget)

	// Per-bucket counts over the whole buckets of the window.
	st.Buckets = int(winEnd.Sub(winStart) / ackBucket)
	if st.Buckets == 0 {
		return st
	}
	counts := make([]int, st.Buckets)
	for _, t := range acks {
		if t.Before(winStart) {
			continue
		}
		i := int(t.Sub(winStart) / ackBucket)
		if i >= st.Buckets {
			break
		}
		counts[i]++
	}
	for _, n := range counts {
		if n == 0 {
			st.ZeroBuckets++
		}
	}
	st.ZeroBucketFraction = float64(st.ZeroBuckets) / float64(st.Buckets)
	slices.Sort(counts)
	st.BucketP1 = counts[int(0.01*float64(len(counts)))]
	st.BucketP50 = counts[len(counts)/2]
	return st
}

// rows prints the acknowledgement figures as table rows.
func (st *AckStats) rows(row func(k, v string)) {
	if st == nil {
		row("longest ack gap", "unknown")
		return
	}
	verdict := "above target"
	if st.WithinTarget {
		verdict = "within target"
	}
	row("longest ack gap", fmt.Sprintf("%.1f ms (%s ≤ %.0f ms; %d acks)", st.LongestGapMs, verdict, ms(ackGapTarget), st.Acks))
	g := ""
	for i, x := range st.Gaps {
		if i > 0 {
			g += ", "
		}
		g += fmt.Sprintf("%.0f ms at %.1f s", x.Ms, x.AtSeconds)
	}
	row("longest ack gaps", g)
	row("100 ms buckets without acks", fmt.Sprintf("%d of %d (%.2f %%); acks per bucket p1 %d, p50 %d",
		st.ZeroBuckets, st.Buckets, 100*st.ZeroBucketFraction, st.BucketP1, st.BucketP50))
}
