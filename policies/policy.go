package policies

import (
	"github.com/flowscope/flowscope/aggregate"
)

// Set is a parsed, validated policies file (or directory). A Set is not
// changed after Parse or Load return it, so it may be shared between
// goroutines.
type Set struct {
	// Policies are in the order of the files, then of each file.
	Policies []Policy
	// Lint holds the lint settings by rule name (LintRules); a rule
	// absent from the map has its defaults.
	Lint map[string]LintSetting
	// Files are the files read, in the order read.
	Files []string

	order []int // indexes of Policies sorted by name (Check's order)
}

// Kind is the kind of a policy: the key that defines it.
type Kind string

// Kinds of policies.
const (
	// KindDeny: an edge from a node matching From to a node matching To
	// violates.
	KindDeny Kind = "deny"
	// KindAllowOnly: an edge into a node matching To from a node matching
	// none of From violates.
	KindAllowOnly Kind = "allow_only"
	// KindDenyUndeclared: an edge that architecture Arch does not declare
	// violates.
	KindDenyUndeclared Kind = "deny_undeclared"
)

// Policy is one flow policy.
type Policy struct {
	// Name is unique in the Set: [A-Za-z0-9_.:-]+, at most MaxNameLen
	// bytes.
	Name string
	Kind Kind
	// From and To are the globs as written (deny, allow_only); an empty
	// list matches every node (deny only).
	From, To []string
	// Arch is the architecture of a deny_undeclared policy.
	Arch string
	// Level is the flow-graph level whose edges the policy checks.
	Level aggregate.Level
	// File and Line locate the policy (its list item) in its file.
	File string
	Line int

	from, to globs // compiled From and To
}

// LintSetting holds the settings of one lint rule; a nil field keeps the
// rule's default.
type LintSetting struct {
	// Threshold is the value above which the rule reports (≥ 0).
	Threshold *float64
	// Severity is "info", "warning" or "critical"; "" keeps the default.
	Severity string
	// Enabled turns the rule off (false) or on.
	Enabled *bool
}

// LintRules are the names of the lint rules (package lint), in the order
// they are documented.
var LintRules = []string{
	"chain_depth", "fan_out", "fan_in", "cycle", "single_point",
	"availability", "timeout_budget", "retry_storm",
}

// Severities are the severities of lint findings, from the least severe.
var Severities = []string{"info", "warning", "critical"}
