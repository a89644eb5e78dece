package lint

import (
	"cmp"
	"math"
	"slices"
	"strings"
)

// Graph is what Run checks: the nodes and edges of a flow graph at one
// level, and optionally the synchronous call paths observed in traces.
// Run does not modify it.
type Graph struct {
	Nodes []Node
	Edges []Edge
	Paths []Path // optional: synchronous call paths observed in traces
}

// Node is a node of the graph. A node named only by an edge is added by
// Run as a plain node (not virtual, not an entry). Nodes with the same ID
// are merged: flags or-ed, counts summed.
type Node struct {
	ID       string
	Virtual  bool  // an uninstrumented callee named by its callers
	Entry    bool  // where requests come in (see the package documentation, "Entry nodes")
	Requests int64 // server-side requests of the node
	Errors   int64 // failed server-side requests
}

// Edge is a call edge Source → Target, summed over operations. Edges with
// an empty Source or Target are ignored; edges with the same Source and
// Target are merged (see the package documentation, "Input").
type Edge struct {
	Source, Target string
	Calls, Errors  int64
	P99            float64 // ns; NaN when unknown
	Async          bool    // a one-way/producer call: not part of synchronous chains or availability
	Retried        int64   // calls that were retries
	Attempts       float64 // calls on this edge per request into Source (≥ 1 when known; 0 unknown)
	TimeoutNs      int64   // inferred timeout of the failed calls (0: none)
	Exemplar       string  // a trace ID with this call, hex; may be empty
}

// Path is a synchronous call path observed in traces: Nodes[0] called
// Nodes[1], which called Nodes[2], and so on, within one request. Count is
// how many requests took it; Exemplar is one of their trace IDs.
type Path struct {
	Nodes    []string
	Count    int64
	Exemplar string
}

// Rule names a check.
type Rule string

// The rules, in the order of Rules (see the package documentation for how
// each is computed).
const (
	ChainDepth    Rule = "chain_depth"
	FanOut        Rule = "fan_out"
	FanIn         Rule = "fan_in"
	Cycle         Rule = "cycle"
	SinglePoint   Rule = "single_point"
	Availability  Rule = "availability"
	TimeoutBudget Rule = "timeout_budget"
	RetryStorm    Rule = "retry_storm"
)

// Rules lists every rule, in the order Run sorts findings by.
var Rules = []Rule{ChainDepth, FanOut, FanIn, Cycle, SinglePoint, Availability, TimeoutBudget, RetryStorm}

// Severities of findings, most severe first (the order Run sorts by;
// other strings sort after them, alphabetically).
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// Setting configures one rule. What Threshold means depends on the rule
// (see Defaults and the package documentation).
type Setting struct {
	Threshold float64
	// Severity of the rule's findings; "" takes the default severity.
	Severity string
	Enabled  bool
}

// Defaults returns every rule's default setting:
//
//	rule            threshold  flags when                       severity
//	chain_depth     5          hops > 5                         warning
//	fan_out         10         distinct callees > 10            warning
//	fan_in          10         distinct callers > 10            info
//	cycle           0          nodes in the cycle > 0           warning
//	single_point    0          nodes cut off > 0                warning
//	availability    0.99       estimated success rate < 0.99    critical
//	timeout_budget  1          timeout ≤ 1 × callee's budget    critical
//	retry_storm     0.10       retried / calls > 0.10           warning
//
// The returned map is a new one; the caller may modify it.
func Defaults() map[Rule]Setting {
	return map[Rule]Setting{
		ChainDepth:    {Threshold: 5, Severity: SeverityWarning, Enabled: true},
		FanOut:        {Threshold: 10, Severity: SeverityWarning, Enabled: true},
		FanIn:         {Threshold: 10, Severity: SeverityInfo, Enabled: true},
		Cycle:         {Threshold: 0, Severity: SeverityWarning, Enabled: true},
		SinglePoint:   {Threshold: 0, Severity: SeverityWarning, Enabled: true},
		Availability:  {Threshold: 0.99, Severity: SeverityCritical, Enabled: true},
		TimeoutBudget: {Threshold: 1, Severity: SeverityCritical, Enabled: true},
		RetryStorm:    {Threshold: 0.10, Severity: SeverityWarning, Enabled: true},
	}
}

// Finding is one problem found by a rule. It holds no NaN nor infinity.
type Finding struct {
	Rule     Rule        `json:"rule"`
	Severity string      `json:"severity"`
	Nodes    []string    `json:"nodes"` // evidence: the path, the cycle, the node...
	Edges    [][2]string `json:"edges"` // evidence edges (source, target)
	// Value is the measured quantity the rule compares with Threshold.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Amplification is, for retry_storm only, the calls on the edge per
	// request into its source (Edge.Attempts; 0 when unknown).
	Amplification float64 `json:"amplification,omitempty"`
	// LatencyNs is, for chain_depth only, the sum of the p99s of the
	// path's hops whose p99 is known (ns).
	LatencyNs float64 `json:"latency_ns,omitempty"`
	Exemplar  string  `json:"exemplar,omitempty"` // a trace ID showing it, when the inputs have one
	Message   string  `json:"message"`            // one sentence, names and numbers (no markup)
}

// Run checks g with settings (missing rules: Defaults) and returns the
// findings sorted by rule (Rules order), then severity, then nodes. A
// setting given for a rule replaces its default whole, except that an
// empty Severity takes the default severity; a rule whose threshold is
// NaN or infinite is not run. The output depends only on
// the content of g, not on the order of its nodes, edges or paths. Run
// never returns nil slices in findings' Nodes and Edges.
func Run(g Graph, settings map[Rule]Setting) []Finding {
	eff := Defaults()
	for r, s := range settings {
		d, ok := eff[r]
		if !ok {
			continue // unknown rule: nothing to configure
		}
		if s.Severity == "" {
			s.Severity = d.Severity
		}
		eff[r] = s
	}
	x := newIndex(g)
	var out []Finding
	for _, r := range Rules {
		s := eff[r]
		if !s.Enabled || math.IsNaN(s.Threshold) || math.IsInf(s.Threshold, 0) {
			continue
		}
		var fs []Finding
		switch r {
		case ChainDepth:
			fs = x.chainDepth(g.Paths, s)
		case FanOut:
			fs = x.fanOut(s)
		case FanIn:
			fs = x.fanIn(s)
		case Cycle:
			fs = x.cycles(s)
		case SinglePoint:
			fs = x.singlePoints(s)
		case Availability:
			fs = x.availability(s)
		case TimeoutBudget:
			fs = x.timeoutBudget(s)
		case RetryStorm:
			fs = x.retryStorm(s)
		}
		for i := range fs {
			fs[i].Rule = r
			fs[i].Severity = s.Severity
			if fs[i].Nodes == nil {
				fs[i].Nodes = []string{}
			}
			if fs[i].Edges == nil {
				fs[i].Edges = [][2]string{}
			}
		}
		out = append(out, fs...)
	}
	slices.SortStableFunc(out, compareFindings)
	return out
}

// compareFindings orders findings by rule (Rules order), severity, nodes,
// edges, then message, so that the order is total for distinct findings.
func compareFindings(a, b Finding) int {
	return cmp.Or(
		cmp.Compare(ruleRank(a.Rule), ruleRank(b.Rule)),
		compareSeverity(a.Severity, b.Severity),
		slices.Compare(a.Nodes, b.Nodes),
		slices.CompareFunc(a.Edges, b.Edges, func(x, y [2]string) int {
			return cmp.Or(strings.Compare(x[0], y[0]), strings.Compare(x[1], y[1]))
		}),
		strings.Compare(a.Message, b.Message),
	)
}

func ruleRank(r Rule) int {
	if i := slices.Index(Rules, r); i >= 0 {
		return i
	}
	return len(Rules)
}

func compareSeverity(a, b string) int {
	rank := func(s string) int {
		switch s {
		case SeverityCritical:
			return 0
		case SeverityWarning:
			return 1
		case SeverityInfo:
			return 2
		}
		return 3
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), strings.Compare(a, b))
}
