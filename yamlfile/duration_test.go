package yamlfile

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"0", 0, ""},
		{"10s", 10 * time.Second, ""},
		{"1.5s", 1500 * time.Millisecond, ""},
		{"250ms", 250 * time.Millisecond, ""},
		{"800us", 800 * time.Microsecond, ""},
		{"800µs", 800 * time.Microsecond, ""},
		{"5ns", 5, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"1d", 24 * time.Hour, ""},
		{"1.5d", 36 * time.Hour, ""},
		{"1w", 7 * 24 * time.Hour, ""},
		{"1w2d3h4m5s", (9*24+3)*time.Hour + 4*time.Minute + 5*time.Second, ""},
		{"-1m", -time.Minute, ""},
		{"+1m", time.Minute, ""},
		{"2562047h", 2562047 * time.Hour, ""},
		{"", 0, "empty"},
		{"-", 0, "empty"},
		{"5", 0, "missing unit"},
		{"5 minutes", 0, "unknown unit"},
		{"5min", 0, "unknown unit"},
		{"1y", 0, "unknown unit"},
		{"m", 0, "want a number"},
		{"1.2.3s", 0, "want a number"},
		{".s", 0, "want a number"},
		{"1s ", 0, "unknown unit"},
		{"100000000w", 0, "too large"},
		{"2562048h", 0, "too large"},
		{"2562047h2562047h", 0, "too large"},
		// Whole messages, quoting what is wrong shortened.
		{"", 0, `invalid duration "": empty; want a number and a unit, e.g. 30s, 5m, 1h30m or 1d`},
		{"5", 0, `invalid duration "5": missing unit; write e.g. 5s`},
		{"5min", 0, `invalid duration "5min": unknown unit "min"; want ns, us, ms, s, m, h, d or w, e.g. 5m or 1h30m`},
		{"1.2.3s", 0, `invalid duration "1.2.3s": want a number and a unit, e.g. 30s, 5m, 1h30m or 1d`},
		{strings.Repeat("1", 70) + "s", 0, `invalid duration "` + strings.Repeat("1", 64) + `…": too large`},
	}
	for _, c := range cases {
		got, err := ParseDuration(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseDuration(%q) = %v, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
}

// FuzzDuration checks ParseDuration against time.ParseDuration: they
// agree on every string Go accepts, and every duration without the d and
// w units that ParseDuration accepts is one Go accepts too.
func FuzzDuration(f *testing.F) {
	for _, s := range []string{"0", "1s", "1.5h", "-2m", "1d", "1w2d", "250ms", "800µs", ".5s", "1.s", "5", "5 minutes", "9223372036854775807ns", "2562047h47m16.854775807s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseDuration(s)
		want, goErr := time.ParseDuration(s)
		switch {
		case goErr == nil && want == math.MinInt64:
			// Go's one duration without a positive counterpart.
		case goErr == nil && (err != nil || got != want):
			t.Fatalf("ParseDuration(%q) = %v, %v; time.ParseDuration gives %v", s, got, err, want)
		case err == nil && goErr != nil && !strings.ContainsAny(s, "dw"):
			t.Fatalf("ParseDuration(%q) = %v; time.ParseDuration fails: %v", s, got, goErr)
		}
	})
}

func TestDuration(t *testing.T) {
	cases := []struct {
		yaml     string
		positive bool
		want     time.Duration
		err      string
	}{
		{"v: 1m", false, time.Minute, ""},
		{"v: 0", false, 0, ""},
		{"v: -1s", false, 0, `f.yml:1: k: "-1s" is negative`},
		{"v: 1m", true, time.Minute, ""},
		{"v: 0s", true, 0, `f.yml:1: k: "0s" is not more than 0`},
		{"v: -1s", true, 0, `f.yml:1: k: "-1s" is not more than 0`},
		{"v: 5", true, 0, `f.yml:1: k: invalid duration "5": missing unit; write e.g. 5s`},
		{"v: [1s]", false, 0, "f.yml:1: k: want a duration, not a list"},
	}
	for _, c := range cases {
		col := &Collector{File: "f.yml"}
		kv := col.Pairs(mapping(t, c.yaml), "")[0]
		parse := col.Duration
		if c.positive {
			parse = col.PositiveDuration
		}
		got, ok := parse(kv, "k", "a duration")
		var err string
		if e := col.Err(); e != nil {
			err = e.Error()
		}
		if got != c.want || ok != (c.err == "") || err != c.err {
			t.Errorf("%s (positive %v): %v, %v, %q; want %v, %q", c.yaml, c.positive, got, ok, err, c.want, c.err)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Hour: "1h", 2 * time.Minute: "2m", 90 * time.Second: "1m30s", time.Hour + time.Second: "1h0m1s",
		1500 * time.Millisecond: "1.5s", 168 * time.Hour: "168h", 61 * time.Minute: "1h1m", 0: "0s",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := ParseDuration(FormatDuration(d)); err != nil || back != d {
			t.Errorf("ParseDuration(FormatDuration(%v)) = %v, %v", d, back, err)
		}
	}
}
