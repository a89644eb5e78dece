package lint

import (
	"math"
	"strconv"
	"strings"
)

// fmtDur renders a duration in ns with 3 significant digits and a unit:
// "850 ns", "12.3 µs", "350 ms", "2.5 s".
func fmtDur(ns float64) string {
	units := []struct {
		scale float64
		name  string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}, {1, "ns"}}
	for _, u := range units {
		if math.Abs(ns) >= u.scale || u.scale == 1 {
			return fmtNum(ns/u.scale) + " " + u.name
		}
	}
	return fmtNum(ns) + " ns" // unreachable
}

// fmtNum renders v with 3 significant digits (more for large integers
// parts), without trailing zeros.
func fmtNum(v float64) string {
	var s string
	switch a := math.Abs(v); {
	case a >= 100:
		s = strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		s = strconv.FormatFloat(v, 'f', 1, 64)
	default:
		s = strconv.FormatFloat(v, 'f', 2, 64)
	}
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// fmtPct renders a fraction as a percentage with up to prec decimals.
func fmtPct(f float64, prec int) string {
	s := strconv.FormatFloat(f*100, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s + " %"
}

// fmtList renders names as "a, b and c", listing at most max of them and
// counting the rest ("a, b and 3 more").
func fmtList(names []string, max int) string {
	switch {
	case len(names) == 0:
		return ""
	case len(names) > max:
		return strings.Join(names[:max], ", ") + " and " + strconv.Itoa(len(names)-max) + " more"
	case len(names) == 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

// plural returns n and word, with an "s" unless n is 1.
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// fmtListN is fmtList for the first of total names: names holds the
// listed ones (at most max are shown), total counts them all.
func fmtListN(names []string, total, max int) string {
	if total <= len(names) {
		return fmtList(names, max)
	}
	shown := names[:min(max, len(names))]
	return strings.Join(shown, ", ") + " and " + strconv.Itoa(total-len(shown)) + " more"
}
