package rules

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, that its errors are *Error
// values naming the file, and that every rule it accepts satisfies the
// invariants the engine relies on (checkInvariants). Run it with
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 30s ./alerting/rules
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob("testdata/*/*.y*ml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"",
		"rules: []",
		"rules:\n  - {alert: A, select: {service: s}, signal: p99, above: 250ms, recover_below: 200ms, window: 1m}\n",
		"rules:\n  - {alert: A, select: {source: a, target: b}, signal: error_rate, below: 5%, recover_above: 0.1, window: 10s, for: 1d, keep_firing_for: 1w}\n",
		"rules:\n  - {alert: A, each: edge, signal: rate, above: 6000/m, window: 1h30m, min_count: 5}\n",
		"rules:\n  - {alert: A, select: {synthetic: c}, signal: synthetic_p99, above: 1.5s, window: 30s}\n",
		"rules:\n  - {alert: A, signal: policy_violations, above: 0, window: 10s, labels: {severity: page}, annotations: {s: '{{ .Value }} {{ .Threshold }} {{ .Target }} {{ .Labels.x }}'}}\n",
		"x-a: &a {alert: A, select: {service: s}, signal: p99.9, above: 1s, window: 1m}\nrules: [*a, {<<: *a, alert: B}]\n",
		"rules:\n  - alert: A\n    select: {service: s}\n    signal: p75.5\n    above: \"2m\"\n    window: 10m\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, err := Parse("f.yml", data)
		if err != nil {
			if rs != nil {
				t.Fatalf("rules %+v with the error %v", rs, err)
			}
			for _, e := range ruleErrors(t, err) {
				if e.File != "f.yml" || e.Line < 0 || e.Msg == "" {
					t.Fatalf("bad error %#v", e)
				}
			}
		} else {
			checkInvariants(t, "f.yml", rs)
		}
		// Parsing is deterministic.
		rs2, err2 := Parse("f.yml", data)
		if !reflect.DeepEqual(rs, rs2) || (err == nil) != (err2 == nil) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("second parse differs:\n%v\n%v", err, err2)
		}
		// Thresholds print as numbers in their unit.
		for _, r := range rs {
			if s := FormatThreshold(r.Threshold, r.Signal.Unit()); s == "" || strings.ContainsAny(s, "eE+") && !strings.Contains(s, "Inf") {
				t.Fatalf("FormatThreshold(%v) = %q", r.Threshold, s)
			}
		}
	})
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
