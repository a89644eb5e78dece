package rules

import (
	"strings"
	"testing"

	"github.com/flowscope/flowscope/yamlfile/yamlfiletest"
)

// FuzzParse checks that Parse never panics, that its errors are *Error
// values naming the file, and that every rule it accepts satisfies the
// invariants the engine relies on (checkInvariants). Run it with
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 30s ./alerting/rules
func FuzzParse(f *testing.F) {
	yamlfiletest.AddFiles(f, "testdata/*/*.y*ml")
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
		// yamlfiletest.Parse checks the errors, and that parsing is
		// deterministic.
		rs := yamlfiletest.Parse(t, Parse, "f.yml", data)
		checkInvariants(t, "f.yml", rs)
		// Thresholds print as numbers in their unit.
		for _, r := range rs {
			if s := FormatThreshold(r.Threshold, r.Signal.Unit()); s == "" || strings.ContainsAny(s, "eE+") && !strings.Contains(s, "Inf") {
				t.Fatalf("FormatThreshold(%v) = %q", r.Threshold, s)
			}
		}
	})
}
