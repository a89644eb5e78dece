package rules

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/flowscope/flowscope/yamlfile/yamlfiletest"
)

func parseFile(t *testing.T, path string) ([]Rule, error) {
	t.Helper()
	return yamlfiletest.ParseFile(t, path, Parse)
}

// ruleErrors returns the *Error values joined in err.
var ruleErrors = yamlfiletest.Errors

var writeFile = yamlfiletest.WriteFile

func TestParseFull(t *testing.T) {
	const file = "testdata/valid/full.yml"
	rs, err := parseFile(t, file)
	if err != nil {
		t.Fatal(err)
	}
	noLabels := map[string]string{}
	noAnn := map[string]string{}
	page := map[string]string{"severity": "page"}
	want := []Rule{
		{
			Name: "CheckoutSlow", File: file, Line: 6,
			Select: Selector{Service: "checkout"}, Each: EachEdge,
			Signal:    Signal{Kind: SignalQuantile, Quantile: 0.99, Name: "p99"},
			Threshold: 250e6, Recover: 200e6, HasRecover: true,
			Window: time.Minute, MinCount: 20, For: 30 * time.Second, KeepFiringFor: time.Minute,
			Labels: map[string]string{"severity": "page", "team": "shop"},
			Annotations: map[string]string{
				"summary": "p99 of {{ .Target }} is {{ .Value }}",
				"runbook": "https://runbooks.local/checkout",
			},
		},
		{
			Name: "Checkout errors from the frontend", File: file, Line: 19,
			Select: Selector{Source: "frontend", Target: "checkout"},
			Signal: Signal{Kind: SignalErrorRate, Name: "error_rate"},
			// "2%" is exactly the float64 nearest to 0.02.
			Threshold: 0.05, Recover: 0.02, HasRecover: true,
			Window: 5 * time.Minute, Labels: noLabels, Annotations: noAnn,
		},
		{
			Name: "TrafficDrop", File: file, Line: 26, Each: EachService,
			Signal: Signal{Kind: SignalRate, Name: "rate"},
			Below:  true, Threshold: 100, Recover: 120, HasRecover: true,
			Window: 90 * time.Minute, Labels: noLabels, Annotations: noAnn,
		},
		{
			Name: "NoSpans", File: file, Line: 34,
			Select: Selector{Service: "batch", Operation: "nightly", Kind: "all"},
			Signal: Signal{Kind: SignalCount, Name: "count"},
			Below:  true, Threshold: 1,
			Window: 24 * time.Hour, Labels: noLabels, Annotations: noAnn,
		},
		{
			Name: "SlowClientCalls", File: file, Line: 40,
			Select:    Selector{Service: "checkout", Kind: "client"},
			Signal:    Signal{Kind: SignalQuantile, Quantile: 0.999, Name: "p99.9"},
			Threshold: 800e3,
			Window:    10 * time.Second, Labels: noLabels, Annotations: noAnn,
		},
		{
			Name: "ShopJourneyFailing", File: file, Line: 46,
			Select:    Selector{Synthetic: "checkout-journey"},
			Signal:    Signal{Kind: SignalSyntheticFailureRate, Name: "synthetic_failure_rate"},
			Threshold: 0.123,
			Window:    7 * 24 * time.Hour, Labels: noLabels, Annotations: noAnn,
		},
		{
			Name: "ShopJourneySlow", File: file, Line: 52,
			Select:    Selector{Synthetic: "checkout-journey"},
			Signal:    Signal{Kind: SignalSyntheticP99, Name: "synthetic_p99"},
			Threshold: 1.5e9,
			Window:    2 * time.Minute, Labels: noLabels, Annotations: noAnn,
		},
		{
			Name: "PolicyViolated", File: file, Line: 58,
			Signal:    Signal{Kind: SignalPolicyViolations, Name: "policy_violations"},
			Threshold: 0,
			Window:    30 * time.Second, Labels: page, Annotations: noAnn,
		},
		{
			Name: "OperationP75", File: file, Line: 64,
			Select: Selector{Service: "checkout"}, Each: EachOperation,
			Signal:    Signal{Kind: SignalQuantile, Quantile: 0.755, Name: "p75.5"},
			Threshold: 120e9,
			Window:    10 * time.Minute, Labels: noLabels,
			Annotations: map[string]string{"description": "{{ with .Labels }}{{ .severity }}{{ end }} {{ range $k, $v := .Labels }}{{ $k }}={{ $v }} {{ $.Target }}{{ end }}\n" +
				"{{ if gt .Value.V 1e9 }}over a second: {{ .Threshold }}{{ end }}\n"},
		},
		{
			Name: "EdgesIntoCheckout", File: file, Line: 76, // the anchor's line
			Select: Selector{Target: "checkout"}, Each: EachEdge,
			Signal:    Signal{Kind: SignalQuantile, Quantile: 0.999, Name: "p999"},
			Threshold: 1e9,
			Window:    time.Minute, For: time.Hour, Labels: noLabels, Annotations: noAnn,
		},
		{
			Name: "EdgesIntoCart", File: file, Line: 85,
			Select: Selector{Target: "cart"}, Each: EachEdge,
			Signal:    Signal{Kind: SignalQuantile, Quantile: 0.999, Name: "p999"},
			Threshold: 1e9,
			Window:    time.Minute, For: time.Hour,
			Labels: map[string]string{"severity": "page", "team": "cart"}, Annotations: noAnn,
		},
	}
	if len(rs) != len(want) {
		t.Fatalf("got %d rules, want %d", len(rs), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(rs[i], want[i]) {
			t.Errorf("rule %d:\n got %+v\nwant %+v", i, rs[i], want[i])
		}
	}
	checkInvariants(t, file, rs)
}

func TestParseInvalid(t *testing.T) {
	type want struct {
		line int
		key  string
		msg  string // a part of the message
	}
	cases := []struct {
		file string
		want []want
	}{
		{"syntax.yml", []want{{4, "", "YAML syntax error: did not find expected ',' or ']'"}}},
		{"empty.yml", []want{{0, "", "empty file"}}},
		{"twodocs.yml", []want{{2, "", "a second YAML document"}}},
		{"notlist.yml", []want{{2, "rules", "must be a list of rules, not a mapping"}}},
		{"prometheus.yml", []want{
			{1, "groups", "not a Prometheus rule file"},
			{1, "rules", "missing"},
		}},
		{"keys.yml", []want{
			{6, "rules[0].treshold", "unknown key: the threshold is written as above: or below:"},
			{8, "rules[0].windows", `unknown key: did you mean "window"?`},
			{9, "rules[0].window", "duplicate key (first at line 7)"},
			{11, "rules[1].select.servce", `unknown select key: did you mean "service"?`},
			{15, "rules[2]", "a rule must be a mapping"},
		}},
		{"dupkey.yml", []want{
			{3, "rules[0].select.service", "duplicate key"},
			{8, "rules[0].labels", "duplicate key (first at line 7)"},
		}},
		{"signals.yml", []want{
			{4, "rules[0].signal", `unknown signal "latency"`},
			{9, "rules[1].signal", `bad percentile "p100"`},
			{14, "rules[2].signal", "lower case (p99)"},
			{17, "rules[3].signal", "missing"},
		}},
		{"comparison.yml", []want{
			{6, "rules[0].below", "both above: (line 5) and below: given"},
			{8, "rules[1]", "missing threshold: want above: or below:"},
			{16, "rules[2].recover_below", "a below: rule recovers with recover_above:"},
			{22, "rules[3].recover_above", "an above: rule recovers with recover_below:"},
			{28, "rules[4].recover_below", "recover_below 300ms is above the threshold 250ms"},
			{34, "rules[5].recover_above", "recover_above 5/s is below the threshold 10/s"},
		}},
		{"durations.yml", []want{
			{2, "rules[0].window", "missing"},
			{10, "rules[1].window", "5s is shorter than the minimum 10s"},
			{15, "rules[2].window", `invalid duration "5 minutes"`},
			{16, "rules[2].for", `"-1m" is negative`},
			{17, "rules[2].keep_firing_for", "missing unit; write e.g. 90s"},
			{22, "rules[3].window", "missing unit; write e.g. 60s"},
			{23, "rules[3].for", "has no value"},
		}},
		{"names.yml", []want{
			{7, "rules[1].alert", "missing: every rule needs a name"},
			{11, "rules[2].alert", "empty name"},
			{16, "rules[3].alert", "control character"},
			{21, "rules[4].alert", `duplicate alert name "Same" (first defined at testdata/invalid/names.yml:2)`},
			{26, "rules[5].alert", "want a name, not a list"},
		}},
		{"longname.yml", []want{{2, "rules[0].alert", "201 bytes long; at most 200"}}},
		{"selection.yml", []want{
			{4, "rules[0].each", `unknown each "node"`},
			{9, "rules[1].select", "signal synthetic_p99 needs select: {synthetic: CHECK}"},
			{15, "rules[2].each", "takes no each"},
			{20, "rules[3].select.synthetic", "only the signals synthetic_failure_rate and synthetic_p99"},
			{25, "rules[4].select.operation", "operation needs service"},
			{30, "rules[5].select.kind", "kind needs service"},
			{35, "rules[6].select.target", "either a service or an edge"},
			{39, "rules[7].select", "without each, select must name a service, or source and target"},
			{44, "rules[8].select.source", "source alone selects no edge"},
			{49, "rules[9].select.source", "each: operation watches operations"},
			{55, "rules[10].select.operation", "each: service watches whole services"},
			{61, "rules[11].select.kind", `unknown kind "producer"`},
			{66, "rules[12].select.kind", "each: edge measures calls"},
			{72, "rules[13].select.service", "cannot be combined with service"},
			{77, "rules[14].select.service", "empty"},
		}},
		{"thresholds.yml", []want{
			{5, "rules[0].above", `"250" has no unit: write a duration such as "250ms"`},
			{10, "rules[1].above", "150% is more than 100%"},
			{15, "rules[2].above", `5 is more than 1: a rate is a fraction; write 0.05 or "5%"`},
			{20, "rules[3].above", `unknown per-time unit "day"`},
			{25, "rules[4].below", "negative"},
			{30, "rules[5].above", "not a finite number"},
			{35, "rules[6].above", "negative"},
			{40, "rules[7].above", "not a number"},
			{47, "rules[8].min_count", "-1 is negative"},
			{53, "rules[9].min_count", "not a whole number"},
		}},
		{"labels.yml", []want{
			{9, "rules[0].labels.bad-name", "not valid"},
			{10, "rules[0].labels.alertname", "reserved"},
			{11, "rules[0].labels.service", "reserved"},
			{12, "rules[0].labels.__meta", "reserved"},
			{13, "rules[0].labels.nested", "want a string, not a mapping"},
			{16, "rules[0].annotations.broken", "bad template: template line 1: unclosed action"},
			{17, "rules[0].annotations.field", "unknown field .Foo"},
			{18, "rules[0].annotations.root_in_range", "unknown field .Bar"},
			{19, "rules[0].annotations.func", `function "humanize" not defined`},
			{20, "rules[0].annotations.exemplar", "reserved"},
		}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("testdata", "invalid", c.file)
			rs, err := parseFile(t, path)
			if err == nil {
				t.Fatalf("no error; rules %+v", rs)
			}
			if rs != nil {
				t.Errorf("rules returned with an error: %+v", rs)
			}
			got := ruleErrors(t, err)
			for i := 0; i < max(len(got), len(c.want)); i++ {
				switch {
				case i >= len(got):
					t.Errorf("missing error %d: %s:%d: %s: …%s…", i, path, c.want[i].line, c.want[i].key, c.want[i].msg)
					continue
				case i >= len(c.want):
					t.Errorf("unexpected error %d: %v", i, got[i])
					continue
				}
				g, w := got[i], c.want[i]
				if g.File != path || g.Line != w.line || g.Key != w.key || !strings.Contains(g.Msg, w.msg) {
					t.Errorf("error %d:\n got %v\nwant %s:%d: %s: …%s…", i, g, path, w.line, w.key, w.msg)
				}
				prefix := fmt.Sprintf("%s:%d: %s: ", path, w.line, w.key)
				switch {
				case w.line == 0 && w.key == "":
					prefix = path + ": "
				case w.key == "":
					prefix = fmt.Sprintf("%s:%d: ", path, w.line)
				}
				if !strings.HasPrefix(g.Error(), prefix) {
					t.Errorf("error %d is %q, want the prefix %q", i, g.Error(), prefix)
				}
			}
			if !strings.Contains(err.Error(), "\n") && len(c.want) > 1 {
				t.Errorf("errors not one per line: %q", err)
			}
		})
	}
}

// rule is a valid rule for the signal and threshold given; the other keys
// are enough to make it valid.
func rule(signal, cmp, threshold string) string {
	sel := "{service: checkout}"
	if strings.HasPrefix(signal, "synthetic_") {
		sel = "{synthetic: journey}"
	}
	return fmt.Sprintf("rules:\n  - alert: R\n    select: %s\n    signal: %s\n    %s: %s\n    window: 1m\n", sel, signal, cmp, threshold)
}

func TestThresholds(t *testing.T) {
	cases := []struct {
		signal, value string
		want          float64
		err           string
	}{
		{"p99", "250ms", 250e6, ""},
		{"p99", "1.5s", 1.5e9, ""},
		{"p99", "800us", 800e3, ""},
		{"p99", "800µs", 800e3, ""},
		{"p99", "800μs", 800e3, ""},
		{"p99", "2m", 120e9, ""},
		{"p99", "1h30m", 5400e9, ""},
		{"p99", "0s", 0, ""},
		{"p99", "0", 0, ""},
		{"p99", "0.0", 0, ""},
		{"p99", "250", 0, `"250" has no unit: write a duration such as "250ms"`},
		{"p99", "0.25", 0, "has no unit"},
		{"p99", `"250"`, 0, "has no unit"},
		{"p99", "250 ms", 0, "unknown unit"},
		{"p99", "-1ms", 0, "negative"},
		{"synthetic_p99", "2s", 2e9, ""},
		{"error_rate", "0.05", 0.05, ""},
		{"error_rate", "5%", 0.05, ""},
		{"error_rate", "0.5%", 0.005, ""},
		{"error_rate", "12.3%", 0.123, ""},
		{"error_rate", "100%", 1, ""},
		{"error_rate", "1", 1, ""},
		{"error_rate", "0", 0, ""},
		{"error_rate", `"0.05"`, 0.05, ""},
		{"error_rate", "5", 0, "more than 1"},
		{"error_rate", "101%", 0, "more than 100%"},
		{"error_rate", "1000", 0, "more than 100%"},
		{"error_rate", "-0.1", 0, "negative"},
		{"error_rate", "-1%", 0, "negative"},
		{"error_rate", "x%", 0, "not a number"},
		{"error_rate", ".nan", 0, "not a finite number"},
		{"synthetic_failure_rate", "50%", 0.5, ""},
		{"rate", "100", 100, ""},
		{"rate", "2.5", 2.5, ""},
		{"rate", "100/s", 100, ""},
		{"rate", "100/sec", 100, ""},
		{"rate", "6000/m", 100, ""},
		{"rate", "10/min", 10.0 / 60, ""},
		{"rate", "7200/h", 2, ""},
		{"rate", "1e3", 1000, ""},
		{"rate", "0x10", 16, ""},
		{"rate", "10/d", 0, "unknown per-time unit"},
		{"rate", "ten/s", 0, "not a number"},
		{"rate", "inf/s", 0, "not a finite number"},
		{"rate", "-5/s", 0, "negative"},
		{"rate", ".inf", 0, "not a finite number"},
		{"rate", "100ms", 0, "not a number"},
		{"count", "20", 20, ""},
		{"count", "0", 0, ""},
		{"count", "-0", 0, ""},
		{"count", "-1", 0, "negative"},
		{"count", "5%", 0, "not a number"},
		{"count", "[1]", 0, "want a threshold, not a list"},
		{"count", "", 0, "has no value"},
		{"policy_violations", "3", 3, ""},
	}
	for _, c := range cases {
		for _, cmp := range []string{"above", "below"} {
			name := c.signal + " " + cmp + " " + c.value
			rs, err := Parse("t.yml", []byte(rule(c.signal, cmp, c.value)))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "t.yml:5: rules[0]."+cmp+": ") {
					t.Errorf("%s: error %v, want t.yml:5: rules[0].%s: …%s…", name, err, cmp, c.err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			r := rs[0]
			if r.Threshold != c.want || math.Signbit(r.Threshold) || r.Below != (cmp == "below") {
				t.Errorf("%s: threshold %v below %v, want %v", name, r.Threshold, r.Below, c.want)
			}
		}
	}
}

func TestSignals(t *testing.T) {
	cases := []struct {
		name string
		kind SignalKind
		q    float64
		unit Unit
	}{
		{"p50", SignalQuantile, 0.5, UnitNanoseconds},
		{"p90", SignalQuantile, 0.9, UnitNanoseconds},
		{"p99", SignalQuantile, 0.99, UnitNanoseconds},
		{"p999", SignalQuantile, 0.999, UnitNanoseconds},
		{"p9999", SignalQuantile, 0.9999, UnitNanoseconds},
		{"p99.9", SignalQuantile, 0.999, UnitNanoseconds},
		{"p99.99", SignalQuantile, 0.9999, UnitNanoseconds},
		{"p95", SignalQuantile, 0.95, UnitNanoseconds},
		{"p75.5", SignalQuantile, 0.755, UnitNanoseconds},
		{"p5", SignalQuantile, 0.05, UnitNanoseconds},
		{"p0.1", SignalQuantile, 0.001, UnitNanoseconds},
		{"error_rate", SignalErrorRate, 0, UnitFraction},
		{"rate", SignalRate, 0, UnitPerSecond},
		{"count", SignalCount, 0, UnitCount},
		{"synthetic_failure_rate", SignalSyntheticFailureRate, 0, UnitFraction},
		{"synthetic_p99", SignalSyntheticP99, 0, UnitNanoseconds},
		{"policy_violations", SignalPolicyViolations, 0, UnitCount},
	}
	for _, c := range cases {
		s, err := ParseSignal(c.name)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if s.Kind != c.kind || s.Quantile != c.q || s.Name != c.name || s.String() != c.name || s.Unit() != c.unit {
			t.Errorf("%s: got %+v unit %v, want kind %v quantile %v unit %v", c.name, s, s.Unit(), c.kind, c.q, c.unit)
		}
	}
	for _, bad := range []string{"", "p", "p0", "p00", "p100", "p100.0", "p99.", "p.9", "p995", "p-1", "p1e2", "pp99", "P99", "p99x", "latency", "Rate", "p99.9999999", "p 99"} {
		if s, err := ParseSignal(bad); err == nil {
			t.Errorf("%q: accepted as %+v", bad, s)
		}
	}
}

func TestFormatThreshold(t *testing.T) {
	cases := []struct {
		v    float64
		u    Unit
		want string
	}{
		{250e6, UnitNanoseconds, "250ms"},
		{1.5e9, UnitNanoseconds, "1.5s"},
		{800e3, UnitNanoseconds, "800µs"},
		{312.4567e6, UnitNanoseconds, "312.5ms"},
		{1234567, UnitNanoseconds, "1.235ms"},
		{5, UnitNanoseconds, "5ns"},
		{0, UnitNanoseconds, "0s"},
		{120e9, UnitNanoseconds, "2m"},
		{90e9, UnitNanoseconds, "1m30s"},
		{5400e9, UnitNanoseconds, "1h30m"},
		{3600e9 + 5e9, UnitNanoseconds, "1h5s"},
		{0.05, UnitFraction, "5%"},
		{0.123, UnitFraction, "12.3%"},
		{0.00001, UnitFraction, "0.001%"},
		{1, UnitFraction, "100%"},
		{0, UnitFraction, "0%"},
		{100, UnitPerSecond, "100/s"},
		{10.0 / 60, UnitPerSecond, "0.1667/s"},
		{123456.7, UnitPerSecond, "123457/s"},
		{20, UnitCount, "20"},
		{2.5, UnitCount, "2.5"},
		{1e21, UnitCount, "1000000000000000000000"},
		{math.Inf(1), UnitCount, "+Inf"},
		{math.NaN(), UnitNanoseconds, "NaN"},
	}
	for _, c := range cases {
		if got := FormatThreshold(c.v, c.u); got != c.want {
			t.Errorf("FormatThreshold(%v, %v) = %q, want %q", c.v, c.u, got, c.want)
		}
		if q := (Quantity{c.v, c.u}).String(); q != c.want {
			t.Errorf("Quantity{%v, %v} = %q, want %q", c.v, c.u, q, c.want)
		}
	}
	// What FormatThreshold writes parses back as a threshold of its unit.
	for _, c := range []struct {
		signal string
		v      float64
	}{{"p99", 250e6}, {"p99", 90e9}, {"p99", 800e3}, {"error_rate", 0.05}, {"rate", 100}, {"count", 20}} {
		s, _ := ParseSignal(c.signal)
		text := FormatThreshold(c.v, s.Unit())
		rs, err := Parse("t.yml", []byte(rule(c.signal, "above", fmt.Sprintf("%q", text))))
		if err != nil || rs[0].Threshold != c.v {
			t.Errorf("%s %q: parsed back as %v, %v; want %v", c.signal, text, rs, err, c.v)
		}
	}
}

func TestParseEdgeCases(t *testing.T) {
	ok := []struct {
		name, yaml string
		n          int
	}{
		{"empty list", "rules: []\n", 0},
		{"null list", "rules:\n# - alert: commented out\n", 0},
		{"extension key", "x-common: &c {severity: page}\nrules: []\n", 0},
		{"comments", "# nothing yet\nrules: [] # none\n", 0},
		{"each without select", "rules:\n  - alert: A\n    each: edge\n    signal: rate\n    above: 1\n    window: 10s\n", 1},
		{"each edge narrowed", "rules:\n  - alert: A\n    each: edge\n    select: {source: web}\n    signal: error_rate\n    above: 1%\n    window: 10s\n", 1},
		{"each operation kind", "rules:\n  - alert: A\n    each: operation\n    select: {service: web, kind: server}\n    signal: p50\n    above: 1s\n    window: 10s\n", 1},
		{"policy with select", "rules:\n  - alert: A\n    select: {service: web}\n    signal: policy_violations\n    above: 0\n    window: 10s\n", 1},
		{"null select each labels annotations", "rules:\n  - alert: A\n    select:\n    each:\n    signal: policy_violations\n    above: 0\n    window: 10s\n    labels:\n    annotations:\n", 1},
		{"unicode name", "rules:\n  - alert: \"Checkout → slow (p99)\"\n    select: {service: checkout}\n    signal: p99\n    above: 1s\n    window: 10s\n", 1},
		{"number name", "rules:\n  - alert: 42\n    select: {service: checkout}\n    signal: p99\n    above: 1s\n    window: 10s\n", 1},
		{"equal recover", "rules:\n  - alert: A\n    select: {service: checkout}\n    signal: p99\n    above: 1s\n    recover_below: 1000ms\n    window: 10s\n", 1},
		{"label values", "rules:\n  - alert: A\n    select: {service: checkout}\n    signal: p99\n    above: 1s\n    window: 10s\n    labels: {priority: 1, empty: \"\"}\n", 1},
	}
	for _, c := range ok {
		rs, err := Parse("t.yml", []byte(c.yaml))
		if err != nil || len(rs) != c.n {
			t.Errorf("%s: %d rules, %v; want %d", c.name, len(rs), err, c.n)
		}
		checkInvariants(t, "t.yml", rs)
	}

	bad := []struct {
		name, yaml, want string
	}{
		{"scalar document", "just text\n", `t.yml:1: want a mapping with a ` + "`rules:`" + ` list, not "just text"`},
		{"list document", "- alert: A\n", "t.yml:1: want a mapping"},
		{"only comments", "# nothing\n", "t.yml: empty file"},
		{"unknown top key", "rules: []\nrule: []\n", `t.yml:2: rule: unknown key: did you mean "rules"?`},
		{"rules scalar", "rules: 5\n", "t.yml:1: rules: must be a list of rules, not the number 5"},
		{"select list", "rules:\n  - alert: A\n    select: [checkout]\n    signal: p99\n    above: 1s\n    window: 10s\n", "t.yml:3: rules[0].select: want a mapping"},
		{"labels list", "rules:\n  - alert: A\n    select: {service: a}\n    signal: p99\n    above: 1s\n    window: 10s\n    labels: [a]\n", "t.yml:7: rules[0].labels: want a mapping"},
		{"both recovers", "rules:\n  - alert: A\n    select: {service: a}\n    signal: p99\n    above: 1s\n    recover_below: 1ms\n    recover_above: 2s\n    window: 10s\n", "t.yml:7: rules[0].recover_above: both recover_below: (line 6) and recover_above: given"},
		{"bad merge", "rules:\n  - <<: 5\n    alert: A\n", "t.yml:2: rules[0]: a merge key (<<) takes a mapping"},
		{"list key", "rules:\n  - ? [a]\n    : 1\n", "t.yml:2: rules[0]: keys must be strings"},
		{"unknown anchor", "rules: *nope\n", "t.yml: YAML syntax error: unknown anchor 'nope' referenced"},
		{"tab indentation", "rules:\n\t- alert: A\n", "t.yml:2: YAML syntax error: found character that cannot start any token"},
		// yaml.v3 names the line where the list began.
		{"bad indentation", "rules:\n  - alert: A\n    signal: p99\n   window: 1m\n", "t.yml:2: YAML syntax error: did not find expected '-' indicator"},
		{"expr", "rules:\n  - alert: A\n    expr: up == 0\n", "t.yml:3: rules[0].expr: unknown key: a rule is select:, signal: and above: or below:, not a PromQL expression"},
		{"name", "rules:\n  - name: A\n", `t.yml:2: rules[0].name: unknown key: did you mean "alert"?`},
		{"recover", "rules:\n  - alert: A\n    recover: 1s\n", `rules[0].recover: unknown key: did you mean "recover_below" (for above:)`},
		{"leading space", "rules:\n  - alert: \" A\"\n", "t.yml:2: rules[0].alert: name \" A\" begins or ends with white space"},
		{"min_count string", "rules:\n  - alert: A\n    min_count: \"20\"\n", `t.yml:3: rules[0].min_count: "20" is not a whole number`},
		{"min_count huge", "rules:\n  - alert: A\n    min_count: 99999999999999999999\n", "t.yml:3: rules[0].min_count: \"99999999999999999999\" is not a whole number"},
		{"annotation name", "rules:\n  - alert: A\n    annotations: {\"run book\": x}\n", `t.yml:3: rules[0].annotations.run book: annotation name "run book" is not valid`},
		{"window bool", "rules:\n  - alert: A\n    window: true\n", `t.yml:3: rules[0].window: invalid duration "true"`},
		{"select control", "rules:\n  - alert: A\n    select: {service: \"a\\nb\"}\n", `t.yml:3: rules[0].select.service: "a\nb" contains a control character`},
	}
	for _, c := range bad {
		_, err := Parse("t.yml", []byte(c.yaml))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want …%s…", c.name, err, c.want)
			continue
		}
		ruleErrors(t, err)
	}
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	if _, err := Parse("big.yml", big); err == nil || !strings.Contains(err.Error(), "big.yml: file larger than 4194304 bytes") {
		t.Errorf("big file: %v", err)
	}
	if rs, err := Parse("many.yml", manyRules("r", MaxRules)); err != nil || len(rs) != MaxRules {
		t.Errorf("%d rules: %d rules, %v", MaxRules, len(rs), err)
	}
	if _, err := Parse("many.yml", manyRules("r", MaxRules+1)); err == nil || !strings.Contains(err.Error(), "many.yml:2: rules: 10001 rules; a rule set holds at most 10000") {
		t.Errorf("%d rules: %v", MaxRules+1, err)
	}
	// Messages quote long values shortened.
	long := strings.Repeat("é", 5000)
	_, err := Parse("long.yml", []byte("rules:\n  - alert: A\n    signal: "+long+"\n    each: "+long+"\n    "+long+": 1\n    window: "+long+"\n"))
	for _, e := range ruleErrors(t, err) {
		if len(e.Error()) > 400 || !utf8.ValidString(e.Error()) {
			t.Errorf("%d bytes: %.100q…", len(e.Error()), e)
		}
	}
	// Errors stop being listed at maxErrors, and the rest are counted.
	var b strings.Builder
	b.WriteString("rules:\n")
	for range 2000 {
		b.WriteString("  - 1\n")
	}
	_, err = Parse("bad.yml", []byte(b.String()))
	errs := ruleErrors(t, err)
	if len(errs) != maxErrors+1 || errs[maxErrors].Msg != "1000 more errors not shown" {
		t.Errorf("%d errors, last %v", len(errs), errs[len(errs)-1])
	}
}

// manyRules returns a rule file with n rules named prefix0, prefix1, ….
func manyRules(prefix string, n int) []byte {
	var b strings.Builder
	b.WriteString("rules:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {alert: %s%d, select: {service: s}, signal: rate, above: 1, window: 1m}\n", prefix, i)
	}
	return []byte(b.String())
}

func TestLoadDirectory(t *testing.T) {
	rs, err := Load("testdata/dir")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%s %s:%d", r.Name, r.File, r.Line))
	}
	want := []string{
		"A1 testdata/dir/a.yml:2",
		"A2 testdata/dir/a.yml:7",
		"B1 testdata/dir/b.yaml:3",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	checkInvariants(t, "", rs)

	// One file.
	rs, err = Load("testdata/dir/b.yaml")
	if err != nil || len(rs) != 1 || rs[0].Name != "B1" {
		t.Errorf("one file: %v, %v", rs, err)
	}
	// Any name when the path is a file.
	dir := t.TempDir()
	writeFile(t, dir, "rules.conf", "rules: []\n")
	if rs, err := Load(filepath.Join(dir, "rules.conf")); err != nil || len(rs) != 0 {
		t.Errorf("rules.conf: %v, %v", rs, err)
	}
}

func TestLoadDuplicateAcrossFiles(t *testing.T) {
	_, err := Load("testdata/dupdir")
	errs := ruleErrors(t, err)
	if len(errs) != 1 {
		t.Fatalf("errors: %v", err)
	}
	want := `testdata/dupdir/b.yml:5: rules[1].alert: duplicate alert name "Shared" (also defined at testdata/dupdir/a.yml:2)`
	if !strings.HasPrefix(errs[0].Error(), want) {
		t.Errorf("got %q, want %q…", errs[0], want)
	}
}

func TestLoadErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	if _, err := Load(missing); err == nil || err.Error() != missing+": no such file or directory" {
		t.Errorf("missing path: %v", err)
	}

	empty := t.TempDir()
	if _, err := Load(empty); err == nil || err.Error() != empty+": no rule files (*.yml or *.yaml) in this directory" {
		t.Errorf("empty directory: %v", err)
	}

	emptyRules := t.TempDir()
	writeFile(t, emptyRules, "none.yml", "rules: []\n")
	if rs, err := Load(emptyRules); err != nil || len(rs) != 0 {
		t.Errorf("rules: []: %v, %v", rs, err)
	}

	// Errors of every file are reported, each naming its file.
	bad := t.TempDir()
	writeFile(t, bad, "a.yml", "rules:\n  - alert: A\n")
	writeFile(t, bad, "b.yaml", "rules: {}\n")
	writeFile(t, bad, "c.yml", string(manyRules("c", 1)))
	_, err := Load(bad)
	errs := ruleErrors(t, err)
	var files []string
	for _, e := range errs {
		files = append(files, filepath.Base(e.File))
	}
	if want := []string{"a.yml", "a.yml", "a.yml", "b.yaml"}; !reflect.DeepEqual(files, want) {
		t.Errorf("errors in %v, want %v:\n%v", files, want, err)
	}

	large := t.TempDir()
	writeFile(t, large, "big.yml", "rules: []\n"+strings.Repeat("#", MaxFileSize))
	if _, err := Load(large); err == nil || err.Error() != filepath.Join(large, "big.yml")+": file larger than 4194304 bytes (4 MiB)" {
		t.Errorf("large file: %v", err)
	}

	// MaxRules counts the whole set.
	many := t.TempDir()
	writeFile(t, many, "a.yml", string(manyRules("a", MaxRules/2)))
	writeFile(t, many, "b.yml", string(manyRules("b", MaxRules/2+1)))
	if _, err := Load(many); err == nil || err.Error() != many+": 10001 rules in all; a rule set holds at most 10000" {
		t.Errorf("too many rules: %v", err)
	}
}

func TestErrorsAs(t *testing.T) {
	// errors.As finds the first problem in a joined error.
	_, err := Parse("f.yml", []byte("rules:\n  - alert: A\n"))
	var re *Error
	if !errors.As(err, &re) || re.File != "f.yml" || re.Line != 2 {
		t.Errorf("errors.As: %v", err)
	}
}

func TestExpandAnnotations(t *testing.T) {
	rs, err := parseFile(t, "testdata/valid/full.yml")
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	got, err := r.ExpandAnnotations(TemplateData{
		Value:     Quantity{312e6, r.Signal.Unit()},
		Threshold: Quantity{r.Threshold, r.Signal.Unit()},
		Labels:    map[string]string{"severity": "page"},
		Target:    "frontend → checkout",
	})
	want := map[string]string{
		"summary": "p99 of frontend → checkout is 312ms",
		"runbook": "https://runbooks.local/checkout",
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, %v; want %q", got, err, want)
	}

	r = rs[8] // OperationP75: with, range, $ and a comparison of .Value.V
	got, err = r.ExpandAnnotations(TemplateData{
		Value:     Quantity{3e9, UnitNanoseconds},
		Threshold: Quantity{r.Threshold, UnitNanoseconds},
		Labels:    map[string]string{"severity": "page"},
		Target:    "checkout GET /",
	})
	if want := "page severity=page checkout GET /\nover a second: 2m\n"; err != nil || got["description"] != want {
		t.Errorf("got %q, %v; want %q", got["description"], err, want)
	}

	// A missing label is empty; an expansion over the limit fails.
	r = Rule{Name: "R", Annotations: map[string]string{"a": "[{{ .Labels.nope }}]", "b": "{{ .Labels.big }}{{ .Labels.big }}"}}
	got, err = r.ExpandAnnotations(TemplateData{Labels: map[string]string{"big": strings.Repeat("x", 40<<10)}})
	if got["a"] != "[]" || !strings.HasPrefix(got["b"], "<error expanding template: ") || err == nil || !strings.Contains(err.Error(), "rule R: annotation b:") {
		t.Errorf("got a=%q b=%.60q…, %v", got["a"], got["b"], err)
	}
}

// checkInvariants checks what every accepted rule satisfies.
func checkInvariants(t *testing.T, file string, rs []Rule) {
	t.Helper()
	names := map[string]bool{}
	for i, r := range rs {
		fail := func(format string, args ...any) {
			t.Helper()
			t.Errorf("rule %d %q: %s", i, r.Name, fmt.Sprintf(format, args...))
		}
		if names[r.Name] {
			fail("duplicate name")
		}
		names[r.Name] = true
		if checkName(r.Name) != "" {
			fail("bad name: %s", checkName(r.Name))
		}
		if (file != "" && r.File != file) || r.Line < 1 {
			fail("location %s:%d", r.File, r.Line)
		}
		if r.Window < MinWindow || r.For < 0 || r.KeepFiringFor < 0 || r.MinCount < 0 {
			fail("window %v for %v keep_firing_for %v min_count %d", r.Window, r.For, r.KeepFiringFor, r.MinCount)
		}
		sig, err := ParseSignal(r.Signal.Name)
		if err != nil || sig != r.Signal {
			fail("signal %+v does not parse back: %+v, %v", r.Signal, sig, err)
		}
		if (r.Signal.Kind == SignalQuantile) != (r.Signal.Quantile > 0 && r.Signal.Quantile < 1) {
			fail("quantile %v of %v", r.Signal.Quantile, r.Signal.Kind)
		}
		u := r.Signal.Unit()
		for _, v := range []float64{r.Threshold, r.Recover} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || math.Signbit(v) || (u == UnitFraction && v > 1) {
				fail("threshold or recover %v", v)
			}
		}
		if !r.HasRecover && r.Recover != 0 {
			fail("recover %v without HasRecover", r.Recover)
		}
		if r.HasRecover && ((r.Below && r.Recover < r.Threshold) || (!r.Below && r.Recover > r.Threshold)) {
			fail("recover %v on the wrong side of %v (below %v)", r.Recover, r.Threshold, r.Below)
		}
		// Exactly one comparison: a value past both thresholds breaches.
		if r.Breaches(r.Threshold) {
			fail("breaches at its threshold")
		}
		switch r.Each {
		case EachNone, EachEdge, EachService, EachOperation:
		default:
			fail("each %q", r.Each)
		}
		s := r.Select
		synthetic := r.Signal.Kind == SignalSyntheticFailureRate || r.Signal.Kind == SignalSyntheticP99
		if synthetic != (s.Synthetic != "") || (synthetic && (s != Selector{Synthetic: s.Synthetic} || r.Each != EachNone)) {
			fail("synthetic selection %+v each %q", s, r.Each)
		}
		if !synthetic {
			if (s.Operation != "" || s.Kind != "") && s.Service == "" {
				fail("operation or kind without service: %+v", s)
			}
			if s.Service != "" && (s.Source != "" || s.Target != "") {
				fail("service and edge: %+v", s)
			}
			if r.Each == EachNone && r.Signal.Kind != SignalPolicyViolations && s.Service == "" && (s.Source == "" || s.Target == "") {
				fail("nothing selected: %+v", s)
			}
		}
		switch s.Kind {
		case "", "server", "client", "internal", "all":
		default:
			fail("kind %q", s.Kind)
		}
		if r.Labels == nil || r.Annotations == nil {
			fail("nil labels or annotations")
		}
		for k := range r.Labels {
			if !labelNameRE.MatchString(k) || reservedLabels[k] != "" || strings.HasPrefix(k, "__") {
				fail("label %q", k)
			}
		}
		for k, v := range r.Annotations {
			if err := checkTemplate(k, v); err != nil || !labelNameRE.MatchString(k) {
				fail("annotation %q: %v", k, err)
			}
		}
	}
}
