// Package rules reads and validates Flowscope's alert rules: YAML files in
// the shape of DESIGN.md, section "Alerts (contract)". A rule set is
// validated whole before use; every error names the file, the line and the
// key that is wrong.
package rules

import (
	"time"

	"github.com/flowscope/flowscope/yamlfile"
)

// SignalKind is what a rule measures.
type SignalKind int

// Signal kinds. The synthetic and policy kinds are parsed and validated here
// but have no data source yet: the engine reports them as unsupported until
// the features that produce them exist (synthetic checks, architecture
// rules).
const (
	// SignalQuantile is a latency quantile (p50, p99, p99.9, pNN.N), in
	// nanoseconds.
	SignalQuantile SignalKind = iota + 1
	// SignalErrorRate is failed spans / spans, a fraction in [0, 1].
	SignalErrorRate
	// SignalRate is spans per second.
	SignalRate
	// SignalCount is spans in the window.
	SignalCount
	// SignalSyntheticFailureRate is failed runs / runs of a synthetic check.
	SignalSyntheticFailureRate
	// SignalSyntheticP99 is the p99 duration of a synthetic check's runs, ns.
	SignalSyntheticP99
	// SignalPolicyViolations is the number of architecture-rule violations.
	SignalPolicyViolations
)

// Signal is a rule's measured quantity.
type Signal struct {
	Kind SignalKind
	// Quantile is the fraction of a SignalQuantile (0.99 for p99, 0.999
	// for p999 and p99.9); 0 otherwise.
	Quantile float64
	// Name is the signal as written in the rule ("p99", "error_rate").
	Name string
}

// Unit is the unit of a signal's values and thresholds.
type Unit int

// Units.
const (
	UnitNanoseconds Unit = iota + 1 // latency signals
	UnitFraction                    // error and failure rates
	UnitPerSecond                   // rate
	UnitCount                       // count, policy violations
)

// Unit returns the unit of the signal's values.
func (s Signal) Unit() Unit {
	switch s.Kind {
	case SignalQuantile, SignalSyntheticP99:
		return UnitNanoseconds
	case SignalErrorRate, SignalSyntheticFailureRate:
		return UnitFraction
	case SignalRate:
		return UnitPerSecond
	default:
		return UnitCount
	}
}

// String returns the signal's name.
func (s Signal) String() string { return s.Name }

// Each says how many alert instances a rule has.
type Each string

// Each values. EachNone gives one instance: the selection.
const (
	EachNone      Each = ""
	EachEdge      Each = "edge"
	EachService   Each = "service"
	EachOperation Each = "operation"
)

// Selector is a rule's `select`: a service (with an optional operation and
// span kind), an edge (source and target; with `each: edge` either alone
// narrows the edges), or a synthetic check. Names are flow-graph node IDs at
// the service level (namespace/name when service.namespace is set).
type Selector struct {
	Service   string
	Operation string
	// Kind is "", "server", "client", "internal" or "all", as the latency
	// API's kind parameter; "" means server.
	Kind      string
	Source    string
	Target    string
	Synthetic string
}

// IsZero reports whether nothing is selected.
func (s Selector) IsZero() bool { return s == Selector{} }

// Rule is one validated alert rule.
type Rule struct {
	// Name is the rule's `alert:`, unique in the rule set.
	Name string
	// File and Line locate the rule's definition.
	File string
	Line int

	Select Selector
	Each   Each
	Signal Signal
	// Below is true for `below:` rules (breach when the value is under
	// Threshold); false for `above:` (breach when over it).
	Below bool
	// Threshold is the `above:`/`below:` value in the signal's unit.
	Threshold float64
	// Recover is the hysteresis threshold (`recover_below:` for above
	// rules, `recover_above:` for below rules) when HasRecover; without it
	// an instance recovers as soon as it no longer breaches Threshold.
	Recover    float64
	HasRecover bool

	// Window is how much data, ending now, the signal is computed over
	// (at least MinWindow).
	Window time.Duration
	// MinCount is the fewest spans (or runs) in the window for a decision;
	// with fewer the state is left unchanged.
	MinCount int64
	// For is how long an instance is pending before it fires.
	For time.Duration
	// KeepFiringFor is how long a firing instance stays firing after it
	// recovered.
	KeepFiringFor time.Duration

	Labels      map[string]string
	Annotations map[string]string
}

// MinWindow is the shortest window a rule may have: the width of the
// finest rollup tier.
const MinWindow = 10 * time.Second

// Breaches reports whether value breaches the rule's threshold.
func (r *Rule) Breaches(value float64) bool {
	if r.Below {
		return value < r.Threshold
	}
	return value > r.Threshold
}

// Recovered reports whether value counts as recovered for an instance that
// is pending or firing: past the hysteresis threshold when the rule has
// one, not breaching otherwise.
func (r *Rule) Recovered(value float64) bool {
	if !r.HasRecover {
		return !r.Breaches(value)
	}
	if r.Below {
		return value > r.Recover
	}
	return value < r.Recover
}

// Error is a problem with a rule file, located by file, line and key
// ("rules[2].window"): "FILE:LINE: KEY: MSG".
type Error = yamlfile.Error
