// Package checks reads and validates Flowscope's synthetic checks: YAML
// files in the shape of DESIGN.md, section "Synthetic checks (contract)". A
// check set is validated whole before use; every error names the file, the
// line and the key that is wrong.
package checks

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/flowscope/flowscope/yamlfile"
)

// Limits of a check.
const (
	// MaxSteps is the most steps a check may have.
	MaxSteps = 10
	// MinEvery is the shortest schedule.
	MinEvery = time.Second
	// DefaultTimeout is a check's timeout when it sets none (capped at its
	// schedule).
	DefaultTimeout = 10 * time.Second
	// MaxRetries is the most retries a check may have.
	MaxRetries = 5
)

// Check is one validated synthetic check.
type Check struct {
	// Name is the check's `name:`, unique in the set; it names the flow
	// graph node synthetic:<name>.
	Name string
	// File and Line locate the check's definition.
	File string
	Line int
	// Every is the schedule; Timeout bounds a whole run (at most Every).
	Every, Timeout time.Duration
	// Retries is how many more attempts a failed run gets at once.
	Retries int
	// Labels are copied to the run's alerts and listings.
	Labels map[string]string
	// Steps run in order; at least one, at most MaxSteps.
	Steps []Step
}

// Step is one HTTP request of a check.
type Step struct {
	Name string
	Line int
	// Request is what is sent, with ${…} variables.
	Request Request
	// Timeout bounds the step (0: the run's remaining time).
	Timeout time.Duration
	// Extract sets variables for the later steps from the response.
	Extract []Extract
	// Assert is checked in order against the response.
	Assert []Assertion
	// ContinueOnFailure keeps the run going when the step fails.
	ContinueOnFailure bool
}

// Request is a step's HTTP request.
type Request struct {
	// Method is upper case (GET when the file sets none).
	Method string
	URL    Template
	// Headers keep the file's order; names are canonical
	// (http.CanonicalHeaderKey).
	Headers []Header
	Body    Template
}

// Header is one request header.
type Header struct {
	Name  string
	Value Template
}

// ExtractKind is where an extract takes its value from.
type ExtractKind int

// Extract kinds.
const (
	// ExtractJSONPath takes the first match of JSONPath in the JSON body
	// (strings as they are, other values as compact JSON).
	ExtractJSONPath ExtractKind = iota + 1
	// ExtractHeader takes the response header Header.
	ExtractHeader
	// ExtractRegex takes the first submatch of Regex in the body (the
	// whole match without a group).
	ExtractRegex
)

// Extract sets the variable Name from a response.
type Extract struct {
	Name     string
	Kind     ExtractKind
	JSONPath *JSONPath
	Header   string
	Regex    *regexp.Regexp
}

// AssertKind is what an assertion checks.
type AssertKind int

// Assertion kinds; String gives the names stored with results.
const (
	AssertStatus AssertKind = iota + 1
	AssertStatusIn
	AssertLatencyBelow
	AssertBodyContains
	AssertJSONPathEquals
	AssertJSONPathExists
	AssertHeader
)

// String returns the kind's stored name ("status", "status_in", …).
func (k AssertKind) String() string {
	switch k {
	case AssertStatus:
		return "status"
	case AssertStatusIn:
		return "status_in"
	case AssertLatencyBelow:
		return "latency_below"
	case AssertBodyContains:
		return "body_contains"
	case AssertJSONPathEquals:
		return "jsonpath_equals"
	case AssertJSONPathExists:
		return "jsonpath_exists"
	case AssertHeader:
		return "header"
	}
	return fmt.Sprintf("AssertKind(%d)", int(k))
}

// HeaderOp is how a header assertion compares.
type HeaderOp int

// Header assertion operators.
const (
	// HeaderExists: the header is present (Exists true) or absent (false).
	HeaderExists HeaderOp = iota + 1
	// HeaderEquals: some value of the header equals Value.
	HeaderEquals
	// HeaderContains: some value of the header contains Value.
	HeaderContains
	// HeaderMatches: some value of the header matches Regex.
	HeaderMatches
)

// Assertion is one check on a step's response.
type Assertion struct {
	Kind AssertKind
	// Status for AssertStatus; StatusIn for AssertStatusIn.
	Status   int
	StatusIn []int
	// LatencyBelow for AssertLatencyBelow (total time of the request).
	LatencyBelow time.Duration
	// Text for AssertBodyContains, and the value of HeaderEquals and
	// HeaderContains.
	Text Template
	// JSONPath for the jsonpath kinds. Equals is the expected value of
	// AssertJSONPathEquals as JSON would decode it (nil, bool, float64,
	// string, []any, map[string]any); Exists for AssertJSONPathExists
	// (true: must match something; false: must match nothing).
	JSONPath *JSONPath
	Equals   any
	Exists   bool
	// Header, Op and Regex for AssertHeader (Exists as above for
	// HeaderExists).
	Header string
	Op     HeaderOp
	Regex  *regexp.Regexp
}

// VarKind is the kind of a ${…} variable.
type VarKind int

// Variable kinds.
const (
	// VarExtract is ${NAME}: a value extracted by an earlier step.
	VarExtract VarKind = iota + 1
	// VarUUID is ${uuid}: a random UUID, new at each use.
	VarUUID
	// VarTimestamp is ${timestamp}: Unix seconds at the use.
	VarTimestamp
	// VarCorrelationID is ${correlation_id}: the run's correlation ID.
	VarCorrelationID
	// VarEnv is ${env:NAME}: the collector's environment variable NAME,
	// read at each run; a secret, masked in stored results.
	VarEnv
)

// Part is one piece of a Template: literal text (Kind 0) or a variable.
type Part struct {
	Kind VarKind // 0 for literal text
	// Text is the literal text, or the variable's NAME for VarExtract
	// and VarEnv.
	Text string
}

// Template is a string with ${…} variables, parsed. "$$" stands for a
// literal "$".
type Template struct {
	// Raw is the text as written in the file.
	Raw   string
	Parts []Part
}

// IsZero reports whether the template is empty.
func (t Template) IsZero() bool { return t.Raw == "" }

// HasVars reports whether the template has variables.
func (t Template) HasVars() bool {
	for _, p := range t.Parts {
		if p.Kind != 0 {
			return true
		}
	}
	return false
}

// Expand returns the template with each variable replaced by lookup's
// value for it; lookup's second result is false when a variable has no
// value, and Expand then fails naming it.
func (t Template) Expand(lookup func(Part) (string, bool)) (string, error) {
	if len(t.Parts) == 1 && t.Parts[0].Kind == 0 {
		return t.Parts[0].Text, nil
	}
	var b strings.Builder
	for _, p := range t.Parts {
		if p.Kind == 0 {
			b.WriteString(p.Text)
			continue
		}
		v, ok := lookup(p)
		if !ok {
			return "", fmt.Errorf("variable %s has no value", p)
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// String returns the variable as written: "${NAME}", "${uuid}",
// "${env:NAME}"; literal text as it is.
func (p Part) String() string {
	switch p.Kind {
	case VarExtract:
		return "${" + p.Text + "}"
	case VarUUID:
		return "${uuid}"
	case VarTimestamp:
		return "${timestamp}"
	case VarCorrelationID:
		return "${correlation_id}"
	case VarEnv:
		return "${env:" + p.Text + "}"
	}
	return p.Text
}

// ParseTemplate parses s's ${…} variables. Variable names are letters,
// digits and underscores, not starting with a digit, at most 128 bytes;
// env names likewise. A "$" not followed by "{" or "$" is literal.
// It does not check that extract variables are defined (the check's parser
// does, in step order).
func ParseTemplate(s string) (Template, error) {
	t := Template{Raw: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			t.Parts = append(t.Parts, Part{Text: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i += 2
			continue
		}
		if i+1 >= len(s) || s[i+1] != '{' {
			lit.WriteByte('$')
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return Template{}, fmt.Errorf("unclosed variable %q (write $$ for a literal $)", yamlfile.Clip(s[i:], 40))
		}
		name := s[i+2 : i+2+end]
		p, err := parseVar(name)
		if err != nil {
			return Template{}, err
		}
		flush()
		t.Parts = append(t.Parts, p)
		i += 2 + end + 1
	}
	flush()
	if len(t.Parts) == 0 {
		t.Parts = []Part{{Text: ""}}
	}
	return t, nil
}

func parseVar(name string) (Part, error) {
	switch name {
	case "uuid":
		return Part{Kind: VarUUID}, nil
	case "timestamp":
		return Part{Kind: VarTimestamp}, nil
	case "correlation_id":
		return Part{Kind: VarCorrelationID}, nil
	}
	if env, ok := strings.CutPrefix(name, "env:"); ok {
		if !identifier(env) {
			return Part{}, fmt.Errorf("bad environment variable name %q in ${%s}: use letters, digits and _ (at most 128)", yamlfile.Clip(env, 40), yamlfile.Clip(name, 40))
		}
		return Part{Kind: VarEnv, Text: env}, nil
	}
	if !identifier(name) {
		return Part{}, fmt.Errorf("bad variable ${%s}: a name is letters, digits and _ (not starting with a digit, at most 128), or one of uuid, timestamp, correlation_id, env:NAME", yamlfile.Clip(name, 40))
	}
	return Part{Kind: VarExtract, Text: name}, nil
}

// identifier reports whether s is a variable name.
func identifier(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case '0' <= c && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// Error is a problem with a checks file, located by file, line and key
// ("checks[2].steps[0].assert[1]"): "FILE:LINE: KEY: MSG".
type Error = yamlfile.Error
