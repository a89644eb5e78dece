package aggregate

import "math"

// NearestRankPercentile returns the percentile to give hdrhistogram-go so
// that it answers the nearest-rank quantile q of n values: the value of
// rank ceil(q·n), at least 1 — the usual definition (HdrHistogram in Java,
// spigo's reference answers), which hdrhistogram-go replaces with the
// rounded rank q·n + ½, a rank lower for small n (p90 of 9 values: the 8th
// instead of the 9th). hdrhistogram-go takes rank int(p/100·n + ½), so the
// percentile of rank r is 100·(r − ¼)/n. The latency API and the alert
// rules both read quantiles this way.
func NearestRankPercentile(q float64, n int64) float64 {
	if n <= 0 || q <= 0 {
		return q * 100 // quantile 0: hdrhistogram-go's lowest value
	}
	// The epsilon keeps 0.29·100 = 28.999999999999996 from becoming 29
	// and q·n just above an integer from taking the next rank.
	r := math.Ceil(q*float64(n) - 1e-9)
	switch {
	case r < 1:
		r = 1
	case r >= float64(n):
		return 100
	}
	return 100 * (r - 0.25) / float64(n)
}
