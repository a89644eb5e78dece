package rules

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/flowscope/flowscope/yamlfile"
)

// Limits of a rule set.
const (
	// MaxFileSize is the largest rule file Parse and Load accept, in bytes.
	MaxFileSize = 4 << 20
	// MaxRules is the most rules a rule set (a file, or all the files of
	// a directory) may hold.
	MaxRules = 10000
	// MaxNameLen is the longest alert name, in bytes.
	MaxNameLen = 200
	// maxErrors is how many errors one Parse or Load reports in full; the
	// rest are counted in a last error.
	maxErrors = 1000
	// maxNumberLen bounds the text of a threshold's number.
	maxNumberLen = 64
)

// ruleKeys are the keys a rule may have, in the order they are documented.
var ruleKeys = []string{
	"alert", "select", "each", "signal", "above", "below", "recover_below", "recover_above",
	"window", "min_count", "for", "keep_firing_for", "labels", "annotations",
}

// selectKeys are the keys of a rule's select, in Selector's order.
var selectKeys = []string{"service", "operation", "kind", "source", "target", "synthetic"}

// reservedLabels are set by the engine on every alert instance.
var reservedLabels = map[string]string{
	"alertname": "it is the rule's alert name",
	"service":   "the engine sets it from the selection",
	"operation": "the engine sets it from the selection",
	"source":    "the engine sets it from the selection",
	"target":    "the engine sets it from the selection",
	"check":     "the engine sets it from the selection",
}

// reservedAnnotations are set by the engine.
var reservedAnnotations = map[string]string{
	"exemplar": "the engine sets it to a link to an exemplar trace",
}

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Parse reads one rule file: a YAML document with a `rules:` list (see
// DESIGN.md, "Alerts (contract)"). file names the file in errors and in
// each Rule's File. The whole file is validated: on failure Parse returns
// no rules and an error joining (errors.Join) one *Error per problem, each
// "FILE:LINE: KEY: MESSAGE" with KEY like "rules[2].window" (rules are
// numbered from 0). `rules: []`, and `rules:` with no list, give no rules
// and no error; an empty file is an error. Other top-level keys are errors,
// except those beginning with "x-", which are ignored (a place for YAML
// anchors); merge keys (<<) work in rules, selects, labels and annotations.
func Parse(file string, data []byte) ([]Rule, error) {
	return ruleFormat.Parse(file, data)
}

// Load reads the rules at path: one file, or every *.yml and *.yaml file
// of a directory (not its subdirectories; names starting with "." are
// skipped, symbolic links are followed), in name order. Alert names must
// be unique across the files. A missing path, a directory without rule
// files, a file over MaxFileSize and a set of more than MaxRules rules are
// errors. Like Parse, Load validates everything and returns no rules and
// all the errors (each an *Error, joined) when anything is wrong.
func Load(path string) ([]Rule, error) {
	return ruleFormat.Load(path)
}

// ruleFormat is the shape of rule files.
var ruleFormat = &yamlfile.Format[Rule]{
	Key: "rules", File: "rule file", Set: "rule set", NameKey: "alert", Name: "alert name",
	MaxSize: MaxFileSize, MaxItems: MaxRules, MaxErrors: maxErrors,
	Describe: describe,
	Unknown: func(k string) string {
		if k == "groups" {
			return "unknown key: this is not a Prometheus rule file; Flowscope's rules are one `rules:` list"
		}
		return "unknown key" + suggest(k, []string{"rules"}) + " (the file holds `rules:`, and x-… keys for anchors)"
	},
	Item: func(c *yamlfile.Collector, i int, n *yaml.Node) (Rule, string, int, bool) {
		r, nameLine, ok := (&parser{c}).rule(i, n)
		return r, r.Name, nameLine, ok
	},
}

// parser reads the rules of a file, reporting their problems to its
// Collector.
type parser struct{ *yamlfile.Collector }

// durationWant is what a duration value should be, for messages.
const durationWant = "a duration such as 30s, 5m or 1h"

// rule validates rules[i]; nameLine is the line of its alert name.
func (p *parser) rule(i int, n *yaml.Node) (r Rule, nameLine int, ok bool) {
	start := p.Count()
	path := fmt.Sprintf("rules[%d]", i)
	n = yamlfile.Resolve(n)
	if n.Kind != yaml.MappingNode {
		p.Add(n.Line, path, "a rule must be a mapping (alert:, select:, signal:, above:, window: …), not %s", describe(n))
		return r, n.Line, false
	}
	r.File, r.Line = p.File, n.Line
	f := map[string]yamlfile.Pair{}
	for _, kv := range p.Pairs(n, path) {
		if !contains(ruleKeys, kv.Name) {
			p.Add(kv.K.Line, yamlfile.JoinKey(path, kv.Name), "unknown key%s", suggestRuleKey(kv.Name))
			continue
		}
		f[kv.Name] = kv
	}
	key := func(name string) string { return path + "." + name }

	// alert
	nameLine = n.Line
	if kv, ok := f["alert"]; !ok {
		p.Add(n.Line, key("alert"), "missing: every rule needs a name")
	} else {
		nameLine = kv.V.Line
		r.Name, _ = p.Name(kv, key("alert"), checkName)
	}

	// signal
	sigOK := false
	if kv, ok := f["signal"]; !ok {
		p.Add(n.Line, key("signal"), "missing: want one of %s", signalList)
	} else if s, ok := p.Scalar(kv, key("signal"), "a signal name"); ok {
		if sig, msg := ParseSignal(s); msg != nil {
			p.Add(kv.V.Line, key("signal"), "%v", msg)
		} else {
			r.Signal, sigOK = sig, true
		}
	}

	// each
	eachOK := true
	eachLine := 0
	if kv, ok := f["each"]; ok && !yamlfile.IsNull(kv.V) {
		eachLine = kv.V.Line
		if s, ok := p.Scalar(kv, key("each"), "edge, service or operation"); !ok {
			eachOK = false
		} else {
			switch e := Each(s); e {
			case EachEdge, EachService, EachOperation:
				r.Each = e
			default:
				eachOK = false
				p.Add(kv.V.Line, key("each"), "unknown each %q: want edge, service or operation", s)
			}
		}
	}

	// select
	selOK := true
	selLine := n.Line
	selLines := map[string]int{}
	if kv, ok := f["select"]; ok && !yamlfile.IsNull(kv.V) {
		selLine = kv.K.Line
		before := p.Count()
		r.Select = p.selector(kv, key("select"), selLines)
		selOK = p.Count() == before
	}
	if sigOK && eachOK && selOK {
		p.checkSelection(path, selLine, selLines, eachLine, &r)
	}

	// above / below
	above, hasAbove := f["above"]
	below, hasBelow := f["below"]
	thrOK := false
	switch {
	case hasAbove && hasBelow:
		p.Add(below.K.Line, key("below"), "both above: (line %d) and below: given; a rule has exactly one", above.K.Line)
	case !hasAbove && !hasBelow:
		p.Add(n.Line, path, "missing threshold: want above: or below:")
	case sigOK:
		kv, name := above, "above"
		if hasBelow {
			kv, name, r.Below = below, "below", true
		}
		r.Threshold, thrOK = p.threshold(kv, key(name), r.Signal)
	}

	// recover_below / recover_above
	rb, hasRB := f["recover_below"]
	ra, hasRA := f["recover_above"]
	switch {
	case hasRB && hasRA:
		p.Add(ra.K.Line, key("recover_above"), "both recover_below: (line %d) and recover_above: given; a rule has at most one", rb.K.Line)
	case hasRB && hasBelow && !hasAbove:
		p.Add(rb.K.Line, key("recover_below"), "recover_below goes with above:; a below: rule recovers with recover_above:")
	case hasRA && hasAbove && !hasBelow:
		p.Add(ra.K.Line, key("recover_above"), "recover_above goes with below:; an above: rule recovers with recover_below:")
	case (hasRB || hasRA) && sigOK:
		kv, name := rb, "recover_below"
		if hasRA {
			kv, name = ra, "recover_above"
		}
		v, ok := p.threshold(kv, key(name), r.Signal)
		switch {
		case !ok:
		case thrOK && !r.Below && v > r.Threshold:
			p.Add(kv.V.Line, key(name), "recover_below %s is above the threshold %s: an instance would recover while still breaching; want a value <= above:",
				FormatThreshold(v, r.Signal.Unit()), FormatThreshold(r.Threshold, r.Signal.Unit()))
		case thrOK && r.Below && v < r.Threshold:
			p.Add(kv.V.Line, key(name), "recover_above %s is below the threshold %s: an instance would recover while still breaching; want a value >= below:",
				FormatThreshold(v, r.Signal.Unit()), FormatThreshold(r.Threshold, r.Signal.Unit()))
		default:
			r.Recover, r.HasRecover = v, true
		}
	}

	// window, for, keep_firing_for
	if kv, ok := f["window"]; !ok {
		p.Add(n.Line, key("window"), "missing: want how much data the signal is computed over, at least %s (e.g. window: 1m)", MinWindow)
	} else if d, ok := p.Duration(kv, key("window"), durationWant); ok {
		if d < MinWindow {
			p.Add(kv.V.Line, key("window"), "%s is shorter than the minimum %s", kv.V.Value, MinWindow)
		} else {
			r.Window = d
		}
	}
	if kv, ok := f["for"]; ok {
		r.For, _ = p.Duration(kv, key("for"), durationWant)
	}
	if kv, ok := f["keep_firing_for"]; ok {
		r.KeepFiringFor, _ = p.Duration(kv, key("keep_firing_for"), durationWant)
	}

	// min_count
	if kv, ok := f["min_count"]; ok {
		if s, ok := p.Scalar(kv, key("min_count"), "a whole number"); ok {
			var c int64
			if kv.V.Tag != "!!int" || kv.V.Decode(&c) != nil {
				p.Add(kv.V.Line, key("min_count"), "%q is not a whole number", s)
			} else if c < 0 {
				p.Add(kv.V.Line, key("min_count"), "%d is negative; want 0 or more", c)
			} else {
				r.MinCount = c
			}
		}
	}

	r.Labels = p.stringMap(f, "labels", key("labels"), checkLabel)
	r.Annotations = p.stringMap(f, "annotations", key("annotations"), checkAnnotation)

	return r, nameLine, p.Count() == start
}

// checkName returns why s is not a valid alert name, "" when it is.
func checkName(s string) string { return yamlfile.CheckName(s, MaxNameLen) }

// selector parses a rule's select.
func (p *parser) selector(kv yamlfile.Pair, path string, lines map[string]int) Selector {
	var s Selector
	if kv.V.Kind != yaml.MappingNode {
		p.Add(kv.V.Line, path, "want a mapping such as {service: checkout}, not %s", describe(kv.V))
		return s
	}
	for _, e := range p.Pairs(kv.V, path) {
		key := yamlfile.JoinKey(path, e.Name)
		if !contains(selectKeys, e.Name) {
			p.Add(e.K.Line, key, "unknown select key%s; want %s", suggest(e.Name, selectKeys), yamlfile.OrList(selectKeys))
			continue
		}
		v, ok := p.Scalar(e, key, "a name")
		if !ok {
			continue
		}
		switch {
		case v == "":
			p.Add(e.V.Line, key, "empty; leave the key out instead")
			continue
		case !utf8.ValidString(v) || strings.IndexFunc(v, unicode.IsControl) >= 0:
			p.Add(e.V.Line, key, "%q contains a control character", v)
			continue
		}
		lines[e.Name] = e.K.Line
		switch e.Name {
		case "service":
			s.Service = v
		case "operation":
			s.Operation = v
		case "kind":
			switch v {
			case "server", "client", "internal", "all":
				s.Kind = v
			default:
				p.Add(e.V.Line, key, "unknown kind %q: want server, client, internal or all", v)
			}
		case "source":
			s.Source = v
		case "target":
			s.Target = v
		case "synthetic":
			s.Synthetic = v
		}
	}
	return s
}

// checkSelection checks that r's select, each and signal go together.
// selLine is the line of select: (the rule's line without one); lines has
// the line of every select key given; eachLine is the line of each: (0
// without one).
func (p *parser) checkSelection(path string, selLine int, lines map[string]int, eachLine int, r *Rule) {
	s := r.Select
	at := func(k string) (int, string) {
		if l, ok := lines[k]; ok {
			return l, path + ".select." + k
		}
		return selLine, path + ".select"
	}
	bad := func(k, format string, args ...any) {
		l, key := at(k)
		p.Add(l, key, format, args...)
	}
	synthetic := r.Signal.Kind == SignalSyntheticFailureRate || r.Signal.Kind == SignalSyntheticP99
	if s.Synthetic != "" {
		for _, k := range []string{"service", "operation", "kind", "source", "target"} {
			if _, ok := lines[k]; ok {
				bad(k, "select: synthetic names a check; it cannot be combined with %s", k)
			}
		}
		if !synthetic {
			bad("synthetic", "selects a synthetic check, which only the signals synthetic_failure_rate and synthetic_p99 measure (signal is %s)", r.Signal.Name)
		}
	}
	if synthetic {
		if s.Synthetic == "" {
			bad("synthetic", "signal %s needs select: {synthetic: CHECK}", r.Signal.Name)
		}
		if r.Each != EachNone {
			p.Add(eachLine, path+".each", "signal %s watches one synthetic check; it takes no each", r.Signal.Name)
		}
		return
	}
	if s.Synthetic != "" {
		return
	}
	edge := s.Source != "" || s.Target != ""
	if s.Operation != "" && s.Service == "" {
		bad("operation", "operation needs service (select: {service: S, operation: O})")
	}
	if s.Kind != "" && s.Service == "" {
		bad("kind", "kind needs service: it chooses which of the service's spans are measured")
	}
	if s.Service != "" && edge {
		for _, k := range []string{"source", "target"} {
			if _, ok := lines[k]; ok {
				bad(k, "select either a service or an edge (source and target), not both")
			}
		}
	}
	switch r.Each {
	case EachNone:
		switch {
		case s.IsZero():
			if r.Signal.Kind != SignalPolicyViolations {
				bad("", "without each, select must name a service, or source and target (an edge); or add each: edge, service or operation")
			}
		case s.Service == "" && s.Source == "" && s.Target != "":
			bad("target", "target alone selects no edge: add source, or use each: edge for every edge into it")
		case s.Service == "" && s.Source != "" && s.Target == "":
			bad("source", "source alone selects no edge: add target, or use each: edge for every edge out of it")
		}
	case EachEdge:
		if s.Kind != "" && s.Service != "" {
			bad("kind", "kind applies to a service's own spans; each: edge measures calls with the client-side durations")
		}
	case EachOperation:
		for _, k := range []string{"source", "target"} {
			if _, ok := lines[k]; ok {
				bad(k, "each: operation watches operations of services; %s selects an edge", k)
			}
		}
	case EachService:
		for _, k := range []string{"source", "target", "operation"} {
			if _, ok := lines[k]; ok {
				bad(k, "each: service watches whole services; %s does not apply", k)
			}
		}
	}
}

// threshold parses a threshold of sig's unit.
func (p *parser) threshold(kv yamlfile.Pair, key string, sig Signal) (float64, bool) {
	if _, ok := p.Scalar(kv, key, "a threshold"); !ok {
		return 0, false
	}
	v, msg := parseThreshold(kv.V, sig.Unit())
	if msg != "" {
		p.Add(kv.V.Line, key, "%s", msg)
		return 0, false
	}
	return v, true
}

// parseThreshold parses scalar n as a threshold in unit u; it returns why
// it could not.
func parseThreshold(n *yaml.Node, u Unit) (float64, string) {
	s := strings.TrimSpace(n.Value)
	ds := yamlfile.Clip(s, 64) // for messages
	numeric := n.Tag == "!!int" || n.Tag == "!!float"
	var v float64
	switch u {
	case UnitNanoseconds:
		if f, err := strconv.ParseFloat(s, 64); numeric || err == nil {
			if err == nil && f == 0 {
				return 0, "" // 0 needs no unit
			}
			return 0, fmt.Sprintf("%q has no unit: write a duration such as %q", ds, ds+"ms")
		}
		d, err := ParseDuration(s)
		if err != nil {
			return 0, err.Error()
		}
		v = float64(d)
	case UnitFraction:
		if num, ok := strings.CutSuffix(s, "%"); ok && !numeric {
			x, msg := parseNumber(strings.TrimSpace(num), 100)
			if msg != "" {
				return 0, fmt.Sprintf("%q: %s; want a percentage such as \"5%%\"", ds, msg)
			}
			v = x
		} else {
			x, msg := number(n, s)
			if msg != "" {
				return 0, fmt.Sprintf("%q: %s; want a fraction such as 0.05 or a percentage such as \"5%%\"", ds, msg)
			}
			if x > 1 && x <= 100 {
				return 0, fmt.Sprintf("%s is more than 1: a rate is a fraction; write %s or \"%s%%\"", ds, strconv.FormatFloat(x/100, 'g', -1, 64), ds)
			}
			v = x
		}
		if v > 1 {
			return 0, fmt.Sprintf("%s is more than 100%%: want a fraction in [0, 1]", ds)
		}
	case UnitPerSecond:
		if num, per, ok := strings.Cut(s, "/"); ok && !numeric {
			div := 0.0
			switch strings.TrimSpace(per) {
			case "s", "sec", "second":
				div = 1
			case "m", "min", "minute":
				div = 60
			case "h", "hour":
				div = 3600
			default:
				return 0, fmt.Sprintf("%q: unknown per-time unit %q; want /s, /m (or /min) or /h", ds, yamlfile.Clip(strings.TrimSpace(per), 16))
			}
			x, msg := parseNumber(strings.TrimSpace(num), div)
			if msg != "" {
				return 0, fmt.Sprintf("%q: %s; want a rate such as 100/s or 6000/m", ds, msg)
			}
			v = x
		} else {
			x, msg := number(n, s)
			if msg != "" {
				return 0, fmt.Sprintf("%q: %s; want spans per second, such as 100 or \"6000/m\"", ds, msg)
			}
			v = x
		}
	default:
		x, msg := number(n, s)
		if msg != "" {
			return 0, fmt.Sprintf("%q: %s; want a count such as 20", ds, msg)
		}
		v = x
	}
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return 0, fmt.Sprintf("%q is not a finite number", ds)
	case v < 0:
		return 0, fmt.Sprintf("%q is negative; thresholds are >= 0", ds)
	}
	return v + 0, "" // + 0 turns -0 into 0
}

// number parses a scalar as a number: a YAML int or float, or a string
// holding a decimal number.
func number(n *yaml.Node, s string) (float64, string) {
	if n.Tag == "!!int" || n.Tag == "!!float" {
		var f float64
		if err := n.Decode(&f); err != nil {
			return 0, "not a number"
		}
		return f, ""
	}
	return parseNumber(s, 1)
}

// parseNumber parses a decimal number and divides it by div, rounding
// once (so "12.3%" is exactly 0.123).
func parseNumber(s string, div float64) (float64, string) {
	if len(s) > maxNumberLen {
		return 0, "number too long"
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || s == "" || strings.ContainsAny(s, "_xXpP") {
		return 0, "not a number"
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, "not a finite number"
	}
	if div == 1 {
		return f, ""
	}
	if r, ok := new(big.Rat).SetString(s); ok {
		r.Quo(r, new(big.Rat).SetFloat64(div))
		q, _ := r.Float64()
		return q, ""
	}
	return f / div, ""
}

// signalList lists the signal names for error messages.
const signalList = "p50, p90, p99, p999, pNN.N (e.g. p99.9), error_rate, rate, count, synthetic_failure_rate, synthetic_p99 or policy_violations"

// ParseSignal parses a signal name as written in a rule: p50, p90, p99,
// p999, pNN or pNN.N (a percentile, 0 < NN.N < 100; p999 and p9999 mean
// p99.9 and p99.99), error_rate, rate, count, synthetic_failure_rate,
// synthetic_p99 or policy_violations.
func ParseSignal(s string) (Signal, error) {
	sig := Signal{Name: s}
	ds := yamlfile.Clip(s, 64)
	switch s {
	case "error_rate":
		sig.Kind = SignalErrorRate
	case "rate":
		sig.Kind = SignalRate
	case "count":
		sig.Kind = SignalCount
	case "synthetic_failure_rate":
		sig.Kind = SignalSyntheticFailureRate
	case "synthetic_p99":
		sig.Kind = SignalSyntheticP99
	case "policy_violations":
		sig.Kind = SignalPolicyViolations
	default:
		if q, ok := parseQuantile(s); ok {
			sig.Kind, sig.Quantile = SignalQuantile, q
			break
		}
		if len(s) > 1 && s[0] == 'p' && s[1] >= '0' && s[1] <= '9' {
			return Signal{}, fmt.Errorf("bad percentile %q: want pNN or pNN.N with 0 < NN.N < 100, such as p95, p99.9 or p999", ds)
		}
		if strings.ToLower(s) != s {
			if _, err := ParseSignal(strings.ToLower(s)); err == nil {
				return Signal{}, fmt.Errorf("unknown signal %q: signal names are lower case (%s)", ds, strings.ToLower(s))
			}
		}
		return Signal{}, fmt.Errorf("unknown signal %q: want %s", ds, signalList)
	}
	return sig, nil
}

// parseQuantile parses "p99", "p99.9", "p999" into a fraction in (0, 1).
func parseQuantile(s string) (float64, bool) {
	if len(s) < 2 || s[0] != 'p' {
		return 0, false
	}
	ip, frac, dot := strings.Cut(s[1:], ".")
	if !allDigits(ip) || (dot && !allDigits(frac)) {
		return 0, false
	}
	if !dot && len(ip) > 2 {
		// p999 is p99.9, p9999 is p99.99.
		if strings.Trim(ip, "9") != "" || len(ip) > 8 {
			return 0, false
		}
		ip, frac = "99", ip[2:]
	}
	if len(ip) > 2 || len(frac) > 6 {
		return 0, false
	}
	if len(ip) == 1 {
		ip = "0" + ip
	}
	q, err := strconv.ParseFloat("0."+ip+frac, 64)
	if err != nil || q <= 0 || q >= 1 {
		return 0, false
	}
	return q, true
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// stringMap parses labels or annotations: a mapping of names to scalars.
// check returns why a key or value is not allowed.
func (p *parser) stringMap(f map[string]yamlfile.Pair, name, path string, check func(k, v string) (keyMsg, valMsg string)) map[string]string {
	out := map[string]string{}
	kv, ok := f[name]
	if !ok || yamlfile.IsNull(kv.V) {
		return out
	}
	if kv.V.Kind != yaml.MappingNode {
		p.Add(kv.V.Line, path, "want a mapping of names to strings, not %s", describe(kv.V))
		return out
	}
	for _, e := range p.Pairs(kv.V, path) {
		key := yamlfile.JoinKey(path, e.Name)
		if e.V.Kind != yaml.ScalarNode || yamlfile.IsNull(e.V) {
			p.Add(e.V.Line, key, "want a string, not %s", describe(e.V))
			continue
		}
		keyMsg, valMsg := check(e.Name, e.V.Value)
		if keyMsg != "" {
			p.Add(e.K.Line, key, "%s", keyMsg)
			continue
		}
		if valMsg != "" {
			p.Add(e.V.Line, key, "%s", valMsg)
			continue
		}
		out[e.Name] = e.V.Value
	}
	return out
}

// checkLabel checks a rule label.
func checkLabel(k, _ string) (string, string) {
	if !labelNameRE.MatchString(k) {
		return fmt.Sprintf("label name %q is not valid: want [a-zA-Z_][a-zA-Z0-9_]*", k), ""
	}
	if why, ok := reservedLabels[k]; ok {
		return fmt.Sprintf("label %s is reserved: %s", k, why), ""
	}
	if strings.HasPrefix(k, "__") {
		return "label names beginning with __ are reserved", ""
	}
	return "", ""
}

// checkAnnotation checks a rule annotation and its template.
func checkAnnotation(k, v string) (string, string) {
	if !labelNameRE.MatchString(k) {
		return fmt.Sprintf("annotation name %q is not valid: want [a-zA-Z_][a-zA-Z0-9_]*", k), ""
	}
	if why, ok := reservedAnnotations[k]; ok {
		return fmt.Sprintf("annotation %s is reserved: %s", k, why), ""
	}
	if err := checkTemplate(k, v); err != nil {
		return "", err.Error()
	}
	return "", ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// describe names a node's value for messages, as yamlfile.Describe does
// but quoting numbers in full.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		return "the number " + n.Value
	}
	return yamlfile.Describe(n)
}

// suggest returns `: did you mean "x"?` for the one of valid nearest to
// k, or "".
func suggest(k string, valid []string) string {
	return yamlfile.DidYouMean(yamlfile.Nearest(k, valid))
}

// suggestRuleKey explains an unknown rule key.
func suggestRuleKey(k string) string {
	switch {
	case yamlfile.EditDistance(k, "threshold") <= 2:
		return ": the threshold is written as above: or below:"
	case k == "name":
		return `: did you mean "alert"?`
	case k == "expr":
		return ": a rule is select:, signal: and above: or below:, not a PromQL expression"
	case yamlfile.EditDistance(k, "recover") <= 2:
		return `: did you mean "recover_below" (for above:) or "recover_above" (for below:)?`
	}
	if s := suggest(k, ruleKeys); s != "" {
		return s
	}
	return "; want " + yamlfile.OrList(ruleKeys)
}

// ParseDuration parses a duration as rules write them: Go's syntax
// (time.ParseDuration: "250ms", "1.5s", "1h30m", "800us" or "800µs") plus
// Prometheus' units d (24h) and w (7d), alone or combined with the others
// ("1d", "1w", "1d12h"). "0" is zero. As in Go a leading "-" gives a
// negative duration: callers that need a non-negative one check the sign.
func ParseDuration(s string) (time.Duration, error) {
	return yamlfile.ParseDuration(s)
}

// FormatThreshold formats a value or threshold of unit u for people:
// "250ms", "1.5s", "1m30s" for nanoseconds, "5%" for fractions, "100/s"
// per second, "20" for counts. Numbers keep about four significant digits;
// the strings (other than NaN and infinities) parse back as thresholds.
func FormatThreshold(v float64, u Unit) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	switch u {
	case UnitNanoseconds:
		return formatNanos(v)
	case UnitFraction:
		return formatNumber(v*100) + "%"
	case UnitPerSecond:
		return formatNumber(v) + "/s"
	}
	return formatNumber(v)
}

// formatNanos formats nanoseconds as a duration.
func formatNanos(v float64) string {
	if v < 0 {
		return "-" + formatNanos(-v)
	}
	if v >= float64(time.Minute) {
		if v >= 1<<62 {
			return formatNumber(v/float64(time.Hour)) + "h"
		}
		secs := int64(math.Round(v / 1e9))
		var b strings.Builder
		for _, u := range []struct {
			n    int64
			name string
		}{{3600, "h"}, {60, "m"}, {1, "s"}} {
			if q := secs / u.n; q > 0 {
				b.WriteString(strconv.FormatInt(q, 10))
				b.WriteString(u.name)
				secs -= q * u.n
			}
		}
		return b.String()
	}
	for _, u := range []struct {
		n    float64
		name string
	}{{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}} {
		if v >= u.n {
			return formatNumber(v/u.n) + u.name
		}
	}
	if v == 0 {
		return "0s"
	}
	return formatNumber(v) + "ns"
}

// formatNumber formats x with about four significant digits, without an
// exponent and without trailing zeros.
func formatNumber(x float64) string {
	if x == 0 {
		return "0"
	}
	dec := 3 - int(math.Floor(math.Log10(math.Abs(x))))
	dec = max(0, min(dec, 12))
	s := strconv.FormatFloat(x, 'f', dec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// TemplateData is what an annotation template is executed with (see
// Rule.ExpandAnnotations): {{ .Value }} and {{ .Threshold }} print in the
// signal's unit ("312ms", "5%", "100/s"; .Value.V is the bare number),
// {{ .Labels.severity }} is a label of the instance, and {{ .Target }} the
// selected node, "source → target" or the synthetic check.
type TemplateData struct {
	Value     Quantity
	Threshold Quantity
	Labels    map[string]string
	Target    string
}

// Quantity is a value in a signal's unit. It prints as FormatThreshold
// formats it.
type Quantity struct {
	// V is the value in the unit: nanoseconds, a fraction, per second or
	// a count.
	V float64
	// Unit is V's unit, which String uses.
	Unit Unit
}

// String returns FormatThreshold(q.V, q.Unit).
func (q Quantity) String() string { return FormatThreshold(q.V, q.Unit) }

// templateFields are the fields a template's data has.
var templateFields = func() []string {
	t := reflect.TypeFor[TemplateData]()
	var names []string
	for i := range t.NumField() {
		names = append(names, t.Field(i).Name)
	}
	return names
}()

// maxExpansion bounds the text one annotation template may produce.
const maxExpansion = 64 << 10

// newTemplate parses an annotation template the way it is executed.
func newTemplate(name, text string) (*template.Template, error) {
	return template.New(name).Option("missingkey=zero").Parse(text)
}

// ExpandAnnotations executes the rule's annotation templates with d and
// returns the expanded annotations. An annotation whose template fails
// reads "<error expanding template: …>", and the errors are returned
// (joined) along with the map. An expansion longer than 64 KiB fails.
func (r *Rule) ExpandAnnotations(d TemplateData) (map[string]string, error) {
	out := make(map[string]string, len(r.Annotations))
	var errs []error
	for k, text := range r.Annotations {
		t, err := newTemplate(k, text)
		var b strings.Builder
		if err == nil {
			err = t.Execute(&limitedWriter{w: &b, n: maxExpansion}, d)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %s: annotation %s: %w", r.Name, k, err))
			out[k] = "<error expanding template: " + err.Error() + ">"
			continue
		}
		out[k] = b.String()
	}
	return out, errors.Join(errs...)
}

// limitedWriter fails once more than n bytes were written.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(b []byte) (int, error) {
	if len(b) > l.n {
		return 0, fmt.Errorf("expansion longer than %d bytes", maxExpansion)
	}
	l.n -= len(b)
	return l.w.Write(b)
}

// checkTemplate parses an annotation template and checks that it uses only
// the fields of TemplateData.
func checkTemplate(name, text string) error {
	t, err := newTemplate(name, text)
	if err != nil {
		msg := err.Error()
		if rest, ok := strings.CutPrefix(msg, "template: "+name+":"); ok {
			msg = "template line " + rest
		}
		return fmt.Errorf("bad template: %s", msg)
	}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		main := tt.Name() == name
		if err := checkFields(tt.Tree.Root, main, main); err != nil {
			return err
		}
	}
	return nil
}

// checkFields checks the fields a template node reads from the data: dot
// tells whether "." is the data there, dollar whether "$" is.
func checkFields(n parse.Node, dot, dollar bool) error {
	field := func(name string) error {
		if contains(templateFields, name) {
			return nil
		}
		return fmt.Errorf("template uses unknown field .%s; the fields are .%s", name, strings.Join(templateFields, ", ."))
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := checkFields(c, dot, dollar); err != nil {
				return err
			}
		}
	case *parse.ActionNode:
		return checkFields(n.Pipe, dot, dollar)
	case *parse.PipeNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Cmds {
			if err := checkFields(c, dot, dollar); err != nil {
				return err
			}
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			if err := checkFields(a, dot, dollar); err != nil {
				return err
			}
		}
	case *parse.FieldNode:
		if dot && len(n.Ident) > 0 {
			return field(n.Ident[0])
		}
	case *parse.VariableNode:
		if dollar && len(n.Ident) > 1 && n.Ident[0] == "$" {
			return field(n.Ident[1])
		}
	case *parse.ChainNode:
		return checkFields(n.Node, dot, dollar)
	case *parse.IfNode:
		return checkBranch(&n.BranchNode, dot, dot, dollar)
	case *parse.RangeNode:
		return checkBranch(&n.BranchNode, dot, false, dollar)
	case *parse.WithNode:
		return checkBranch(&n.BranchNode, dot, false, dollar)
	case *parse.TemplateNode:
		return checkFields(n.Pipe, dot, dollar)
	}
	return nil
}

// checkBranch checks an if, range or with: inner tells whether "." is the
// data inside it.
func checkBranch(b *parse.BranchNode, dot, inner, dollar bool) error {
	if err := checkFields(b.Pipe, dot, dollar); err != nil {
		return err
	}
	if err := checkFields(b.List, inner, dollar); err != nil {
		return err
	}
	return checkFields(b.ElseList, dot, dollar)
}
