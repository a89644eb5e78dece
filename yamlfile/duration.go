package yamlfile

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// ParseDuration parses a duration as configuration files write them: Go's
// syntax (time.ParseDuration: "250ms", "1.5s", "1h30m", "800us" or
// "800µs") plus Prometheus' units d (24h) and w (7d), alone or combined
// with the others ("1d", "1w", "1d12h"). "0" is zero. As in Go a leading
// "-" gives a negative duration: callers that need a non-negative one
// check the sign.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	bad := func(format string, args ...any) error {
		return fmt.Errorf("invalid duration %q: %s", Clip(orig, 64), fmt.Sprintf(format, args...))
	}
	neg := false
	if s != "" && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if s == "0" {
		return 0, nil
	}
	if s == "" {
		return 0, bad("empty; want a number and a unit, e.g. 30s, 5m, 1h30m or 1d")
	}
	var total int64
	for s != "" {
		i := 0
		digits := 0
		for i < len(s) && (s[i] == '.' || '0' <= s[i] && s[i] <= '9') {
			if s[i] != '.' {
				digits++
			}
			i++
		}
		num := s[:i]
		if digits == 0 || strings.Count(num, ".") > 1 {
			return 0, bad("want a number and a unit, e.g. 30s, 5m, 1h30m or 1d")
		}
		s = s[i:]
		j := 0
		for j < len(s) && s[j] != '.' && (s[j] < '0' || s[j] > '9') {
			j++
		}
		unit := s[:j]
		s = s[j:]
		var mul int64 = 1
		switch unit {
		case "":
			return 0, bad("missing unit; write e.g. %s", Clip(num, 16)+"s")
		case "ns", "us", "µs", "μs", "ms", "s", "m", "h":
		case "d":
			unit, mul = "h", 24
		case "w":
			unit, mul = "h", 24*7
		default:
			return 0, bad("unknown unit %q; want ns, us, ms, s, m, h, d or w, e.g. 5m or 1h30m", Clip(unit, 16))
		}
		d, err := time.ParseDuration(num + unit)
		if err != nil || d > math.MaxInt64/time.Duration(mul) {
			return 0, bad("too large")
		}
		d *= time.Duration(mul)
		if total > math.MaxInt64-int64(d) {
			return 0, bad("too large")
		}
		total += int64(d)
	}
	if neg {
		total = -total
	}
	return time.Duration(total), nil
}

// Duration parses kv's value as a duration of 0 or more (ParseDuration);
// what says what is wanted in messages ("a duration such as 30s or 5m").
func (c *Collector) Duration(kv Pair, key, what string) (time.Duration, bool) {
	return c.duration(kv, key, what, false)
}

// PositiveDuration parses kv's value as a duration of more than 0, as
// Duration does.
func (c *Collector) PositiveDuration(kv Pair, key, what string) (time.Duration, bool) {
	return c.duration(kv, key, what, true)
}

func (c *Collector) duration(kv Pair, key, what string, positive bool) (time.Duration, bool) {
	s, ok := c.Scalar(kv, key, what)
	if !ok {
		return 0, false
	}
	d, err := ParseDuration(s)
	switch {
	case err != nil:
		c.Add(kv.V.Line, key, "%v", err)
		return 0, false
	case positive && d <= 0:
		c.Add(kv.V.Line, key, "%q is not more than 0", s)
		return 0, false
	case d < 0:
		c.Add(kv.V.Line, key, "%q is negative", s)
		return 0, false
	}
	return d, true
}

// FormatDuration formats d as configuration files write it: like
// time.Duration.String without the zero trailing units, "168h" and "2m"
// rather than "168h0m0s" and "2m0s".
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
