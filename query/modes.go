package query

import (
	"cmp"
	"math"
	"slices"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/flowscope/flowscope/aggregate"
)

// Mode detection. Latency distributions of services are often
// multi-modal (cache hits and misses, retries, timeouts), and on a log
// scale each mode is a peak. findModes bins the HDR buckets on a log
// scale, smooths the bins, and keeps the peaks that stand out from the
// valleys around them.
const (
	// modeBinsPerDecade is the resolution of mode detection: 20 bins per
	// decade, each a factor of 1.12, so that modes a factor of 2 apart
	// stay apart after smoothing.
	modeBinsPerDecade = 20
	// modeMinProminence is how far a peak must rise above the higher of
	// the valleys that separate it from higher peaks (or the ends), as a
	// fraction of its height.
	modeMinProminence = 0.4
	// modeMinShare is the smallest fraction of the spans a mode may hold.
	modeMinShare = 0.02
	// maxModes caps the modes reported (the highest peaks are kept).
	maxModes = 6
)

// mode is one detected mode: bins [lo, hi] around peak bin p.
type mode struct {
	p, lo, hi int
	peak      float64 // duration at the peak (ns)
	from, to  int64   // range (ns), inclusive
	count     int64
}

// findModes returns the modes of the distribution whose non-empty HDR
// buckets are bars (ascending), fastest first; nil without data.
func findModes(bars []hdr.Bar) []mode {
	if len(bars) == 0 {
		return nil
	}
	lo10 := math.Log10(float64(max(bars[0].From, 1)))
	hi10 := math.Log10(float64(max(bars[len(bars)-1].To, 1)))
	nb := int(math.Floor((hi10-lo10)*modeBinsPerDecade)) + 1
	binOf := func(v int64) int {
		i := int(math.Floor((math.Log10(float64(max(v, 1))) - lo10) * modeBinsPerDecade))
		return min(max(i, 0), nb-1)
	}
	bins := make([]float64, nb)
	var total int64
	for _, b := range bars {
		bins[binOf(midpoint(b))] += float64(b.Count)
		total += b.Count
	}
	// Smooth with a [1 2 1] kernel, so that HDR buckets that fall unevenly
	// into bins make no false peaks.
	sm := make([]float64, nb)
	for i := range bins {
		sum, w := 2*bins[i], 2.0
		if i > 0 {
			sum, w = sum+bins[i-1], w+1
		}
		if i < nb-1 {
			sum, w = sum+bins[i+1], w+1
		}
		sm[i] = sum / w
	}
	// Peaks: local maxima (the first bin of a plateau).
	var peaks []int
	for i := range sm {
		if sm[i] > 0 && (i == 0 || sm[i] > sm[i-1]) {
			j := i
			for j+1 < nb && sm[j+1] == sm[i] {
				j++
			}
			if j == nb-1 || sm[j+1] < sm[i] {
				peaks = append(peaks, i)
			}
		}
	}
	// Keep the prominent ones: the valley to the nearest higher peak on
	// each side (or to the end) must be well below the peak.
	var kept []int
	for _, p := range peaks {
		h := sm[p]
		// valley is the lowest bin between p and the nearest higher bin in
		// direction dir, or 0 when there is none (beyond the ends the
		// distribution is empty).
		valley := func(dir int) float64 {
			v := h
			for i := p + dir; ; i += dir {
				if i < 0 || i >= nb {
					return 0
				}
				if sm[i] > h {
					return v
				}
				v = min(v, sm[i])
			}
		}
		if h-max(valley(-1), valley(1)) >= modeMinProminence*h {
			kept = append(kept, p)
		}
	}
	if len(kept) > maxModes {
		slices.SortFunc(kept, func(a, b int) int { return cmp.Compare(sm[b], sm[a]) })
		kept = kept[:maxModes]
		slices.Sort(kept)
	}
	// Each mode reaches down to the lowest bin between it and the next.
	modes := make([]mode, 0, len(kept))
	for k, p := range kept {
		m := mode{p: p, lo: 0, hi: nb - 1}
		if k > 0 {
			m.lo = modes[k-1].hi + 1
		}
		if k < len(kept)-1 {
			v := p
			for i := p; i <= kept[k+1]; i++ {
				if sm[i] < sm[v] {
					v = i
				}
			}
			m.hi = v
			if v == kept[k+1] { // no valley below the next peak: split at the middle
				m.hi = (p + v) / 2
			}
		}
		modes = append(modes, m)
	}
	// Ranges and counts from the buckets themselves; the peak is the
	// fullest bucket around the peak bin.
	for k := range modes {
		m := &modes[k]
		m.from, m.to = math.MaxInt64, 0
		var top int64
		for _, b := range bars {
			i := binOf(midpoint(b))
			if i >= m.lo && i <= m.hi {
				m.from, m.to = min(m.from, b.From), max(m.to, b.To)
				m.count += b.Count
			}
			if i >= m.p-1 && i <= m.p+1 && b.Count > top {
				top, m.peak = b.Count, float64(midpoint(b))
			}
		}
	}
	// Drop the modes too small to matter, merging their range into the
	// neighbour below (or above).
	out := modes[:0]
	for k := range modes {
		m := modes[k]
		if m.count == 0 {
			continue
		}
		if float64(m.count) < modeMinShare*float64(total) && len(modes) > 1 {
			if len(out) > 0 {
				prev := &out[len(out)-1]
				prev.to, prev.hi, prev.count = m.to, m.hi, prev.count+m.count
			} else if k+1 < len(modes) {
				next := &modes[k+1]
				next.from, next.lo, next.count = m.from, m.lo, next.count+m.count
			}
			continue
		}
		out = append(out, m)
	}
	return out
}

// midpoint is the geometric middle of a bucket.
func midpoint(b hdr.Bar) int64 {
	return int64(math.Sqrt(float64(max(b.From, 1)) * float64(max(b.To, 1))))
}

// modeExemplar picks, among the kept exemplars of every kind, a span of
// mode m: in its range, nearest its peak on a log scale, a successful one
// before a failing one, then the newest; nil when none is in the range.
func modeExemplar(m *mode, lists ...[]aggregate.Exemplar) *aggregate.Exemplar {
	var best *aggregate.Exemplar
	var bestDist float64
	for _, exs := range lists {
		for i := range exs {
			e := &exs[i]
			if e.Value < m.from || e.Value > m.to {
				continue
			}
			dist := math.Abs(math.Log(float64(max(e.Value, 1))) - math.Log(m.peak))
			if best == nil || better(e, dist, best, bestDist) {
				best, bestDist = e, dist
			}
		}
	}
	return best
}

// better reports whether exemplar a at distance da from a mode's peak is
// a better example of the mode than b at db.
func better(a *aggregate.Exemplar, da float64, b *aggregate.Exemplar, db float64) bool {
	if a.Error != b.Error {
		return !a.Error
	}
	if da != db {
		return da < db
	}
	return a.Time > b.Time
}
