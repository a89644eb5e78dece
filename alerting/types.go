package alerting

import (
	"time"

	"github.com/flowscope/flowscope/alerting/rules"
)

// RulesStatus describes the loaded rule set and its evaluation.
type RulesStatus struct {
	// Path is the rules file or directory (--rules); "" when none.
	Path string
	// LoadedAt is when the rules in use were loaded.
	LoadedAt time.Time
	// LastReloadAt is when a reload was last attempted, LastReloadError
	// why it failed ("" when it succeeded): a failed reload keeps the
	// rules in use.
	LastReloadAt    time.Time
	LastReloadError string
	Rules           []RuleStatus
}

// RuleStatus is one rule with the outcome of its last evaluation.
type RuleStatus struct {
	Rule rules.Rule
	// Health is "ok", "error" (LastError says why) or "unknown" (not
	// evaluated yet).
	Health             string
	LastError          string
	LastEvaluation     time.Time
	EvaluationDuration time.Duration
	// Pending and Firing count the rule's active instances.
	Pending, Firing int
}

// Instance is an active (pending or firing) alert instance.
type Instance struct {
	Rule string
	// Key identifies the instance within its rule.
	Key string
	// Signal and Unit describe Value and Threshold.
	Signal string
	Unit   rules.Unit
	// Labels: alertname, the rule's labels and the selection (service,
	// operation, source, target, check). Annotations are the rule's,
	// expanded, plus "exemplar" (a UI link to the slowest or a failed
	// trace) when there is one.
	Labels      map[string]string
	Annotations map[string]string
	// Target is the selected node, or "source → target" for an edge.
	Target string
	// State is store.AlertPending or store.AlertFiring.
	State     string
	Value     float64
	Threshold float64
	ActiveAt  time.Time
	FiredAt   time.Time // zero while pending
	// Exemplars are up to 5 trace IDs (hex) from the window.
	Exemplars []string
	// Samples are the instance's recent values, oldest first, at most
	// MaxSamples, for the value-over-time chart.
	Samples []Sample
	// GeneratorURL links to the alert in the UI.
	GeneratorURL string
}

// Sample is one evaluated value of an instance.
type Sample struct {
	Time  time.Time
	Value float64
}

// MaxSamples is how many recent values an active instance keeps.
const MaxSamples = 300
