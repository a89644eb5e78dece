package main

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
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
// It feeds an ackRecorder, which the clients use directly.
func ackStats(acks []time.Time, winStart, winEnd time.Time) AckStats {
	slices.SortFunc(acks, func(a, b time.Time) int { return a.Compare(b) })
	rec := newAckRecorder(winStart, winEnd)
	for _, t := range acks {
		rec.add(t, 1)
	}
	return rec.stats(winEnd)
}

// ackRecorder collects what the clients' acknowledgements tell in memory
// that does not grow with the number of requests: per ackBucket of the
// window the acknowledgements and spans, the topAckGaps longest gaps
// between consecutive acknowledgements, and the export latencies in an HDR
// histogram. It is safe for concurrent use; acknowledgements must be added
// in time order, which ack guarantees by reading the clock under its lock.
type ackRecorder struct {
	mu               sync.Mutex
	winStart, winEnd time.Time
	last             time.Time // the previous acknowledgement in the window (winStart at first)
	acks             int       // acknowledgements in the window
	top              []gap     // longest first; of equal ones the earliest first
	buckets          []int32   // acknowledgements per ackBucket of the window
	spans            []int64   // spans acknowledged per ackBucket of the window
	lat              *hdrhistogram.Histogram
	latMax           time.Duration
}

// gap is one interval without acknowledgements.
type gap struct {
	start time.Time
	d     time.Duration
}

// Latencies are recorded in microseconds, from 1 µs to latencyMax (longer
// ones count as latencyMax), to latencyDigits significant digits: every
// reported percentile is within 0.1 % of the exact one.
const (
	latencyMax    = time.Hour
	latencyDigits = 3
)

// newAckRecorder returns a recorder for the window [winStart, winEnd].
func newAckRecorder(winStart, winEnd time.Time) *ackRecorder {
	n := 0
	if winEnd.After(winStart) {
		n = int(winEnd.Sub(winStart)/ackBucket) + 1
	}
	return &ackRecorder{
		winStart: winStart, winEnd: winEnd, last: winStart,
		buckets: make([]int32, n), spans: make([]int64, n),
		lat: hdrhistogram.New(1, latencyMax.Microseconds(), latencyDigits),
	}
}

// ack records an acknowledgement of spans spans arriving now, and its
// export latency since sent when now is inside the window; it returns now
// and whether it was.
func (r *ackRecorder) ack(sent time.Time, spans int64) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	in := r.addLocked(now, spans)
	if in {
		r.addLatencyLocked(now.Sub(sent))
	}
	return now, in
}

// addLatency records one export latency.
func (r *ackRecorder) addLatency(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLatencyLocked(d)
}

func (r *ackRecorder) addLatencyLocked(d time.Duration) {
	r.latMax = max(r.latMax, d)
	r.lat.RecordValue(min(max(d.Microseconds(), 1), latencyMax.Microseconds()))
}

// add records an acknowledgement at t (not before the previous one).
func (r *ackRecorder) add(t time.Time, spans int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addLocked(t, spans)
}

func (r *ackRecorder) addLocked(t time.Time, spans int64) bool {
	if t.Before(r.winStart) || t.After(r.winEnd) {
		return false
	}
	r.acks++
	r.addGap(r.last, t)
	r.last = t
	if i := int(t.Sub(r.winStart) / ackBucket); i < len(r.buckets) {
		r.buckets[i]++
		r.spans[i] += spans
	}
	return true
}

// addGap keeps the gap [from, to) if it is among the longest.
func (r *ackRecorder) addGap(from, to time.Time) { r.top = insertGap(r.top, from, to) }

// insertGap inserts the gap [from, to) into top (longest first, of equal
// ones the earliest first, at most topAckGaps) if it belongs there.
func insertGap(top []gap, from, to time.Time) []gap {
	d := to.Sub(from)
	if d <= 0 || (len(top) == topAckGaps && d <= top[topAckGaps-1].d) {
		return top
	}
	i := 0
	for i < len(top) && top[i].d >= d {
		i++
	}
	top = slices.Insert(top, i, gap{from, d})
	if len(top) > topAckGaps {
		top = top[:topAckGaps]
	}
	return top
}

// stats summarises the window up to end (winEnd, or earlier when the run
// was cut short): the gap from the last acknowledgement to end counts.
func (r *ackRecorder) stats(end time.Time) AckStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	var st AckStats
	if !end.After(r.winStart) {
		return st
	}
	st.Acks = r.acks
	top := insertGap(slices.Clone(r.top), r.last, end) // the gap up to end counts too
	for _, g := range top {
		st.Gaps = append(st.Gaps, AckGap{AtSeconds: g.start.Sub(r.winStart).Seconds(), Start: g.start.Format(time.RFC3339Nano), Ms: ms(g.d)})
	}
	if len(st.Gaps) > 0 {
		st.LongestGapMs = st.Gaps[0].Ms
	}
	st.WithinTarget = st.LongestGapMs <= ms(ackGapTarget)

	// Per-bucket counts over the whole buckets of the window.
	st.Buckets = min(int(end.Sub(r.winStart)/ackBucket), len(r.buckets))
	if st.Buckets == 0 {
		return st
	}
	counts := make([]int, st.Buckets)
	for i := range counts {
		counts[i] = int(r.buckets[i])
		if counts[i] == 0 {
			st.ZeroBuckets++
		}
	}
	st.ZeroBucketFraction = float64(st.ZeroBuckets) / float64(st.Buckets)
	slices.Sort(counts)
	st.BucketP1 = counts[int(0.01*float64(len(counts)))]
	st.BucketP50 = counts[len(counts)/2]
	return st
}

// spansPerBucket returns a copy of the spans acknowledged per ackBucket of
// the window so far.
func (r *ackRecorder) spansPerBucket() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// latency returns the p50, p99 and maximum export latency in ms of the
// acknowledgements in the window (zeros without any).
func (r *ackRecorder) latency() (p50, p99, maxMs float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lat.TotalCount() == 0 {
		return 0, 0, 0
	}
	q := func(p float64) float64 { return float64(r.lat.ValueAtQuantile(p)) / 1e3 }
	return q(50), q(99), ms(r.latMax)
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
