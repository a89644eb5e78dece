package checks

import (
	"cmp"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/flowscope/flowscope/yamlfile"
)

// Limits of a check set.
const (
	// MaxFileSize is the largest checks file Parse and Load accept, in
	// bytes.
	MaxFileSize = 4 << 20
	// MaxChecks is the most checks a set (a file, or all the files of a
	// directory) may hold.
	MaxChecks = 1000
	// MaxNameLen is the longest check or step name, in bytes.
	MaxNameLen = 128
	// maxErrors is how many errors one Parse or Load reports in full; the
	// rest are counted in a last error.
	maxErrors = 1000
	// maxValueDepth bounds the nesting of an equals: value.
	maxValueDepth = 32
	// maxWork bounds the work (and memory) of parsing one file: each
	// entry of a mapping or a list costs 1, each scalar read 1 per 64
	// bytes, counting again what aliases and merge keys repeat. It is
	// about what MaxFileSize holds without aliases.
	maxWork = 1 << 19
)

// The keys of each mapping, in the order they are documented.
var (
	topKeys     = []string{"checks"}
	checkKeys   = []string{"name", "every", "timeout", "retries", "labels", "steps"}
	stepKeys    = []string{"name", "request", "timeout", "extract", "assert", "continue_on_failure"}
	requestKeys = []string{"method", "url", "headers", "body"}
	extractKeys = []string{"name", "jsonpath", "header", "regex"}
	// extractSources are the keys of which an extract has exactly one.
	extractSources = []string{"jsonpath", "header", "regex"}
	// assertKeys are the main keys of the assertions; an assertion has
	// exactly one.
	assertKeys = []string{"status", "latency_below", "body_contains", "jsonpath", "header"}
	// assertOps are the keys that go with a main key, exactly one of them.
	assertOps = map[string][]string{
		"jsonpath": {"equals", "exists"},
		"header":   {"equals", "contains", "matches", "exists"},
	}
	allAssertOps = []string{"equals", "exists", "contains", "matches"}
)

// assertForms lists the assertions for messages.
const assertForms = "{status: CODE}, {status: {in: [CODE, …]}}, {latency_below: DURATION}, {body_contains: TEXT}, " +
	"{jsonpath: PATH, equals: VALUE}, {jsonpath: PATH, exists: true|false}, " +
	"{header: NAME, equals|contains|matches: TEXT} or {header: NAME, exists: true|false}"

// builtinVars are the variables every template may use besides the
// extracted ones and ${env:NAME}.
var builtinVars = []string{"uuid", "timestamp", "correlation_id"}

// Hints for unknown keys that edit distance does not explain.
var (
	topHints = map[string]string{
		"synthetics": ": the file holds `checks:` directly (synthetics.checks in the configuration is the path of this file)",
	}
	checkHints = map[string]string{
		"interval":  `: did you mean "every"?`,
		"schedule":  `: did you mean "every"?`,
		"period":    `: did you mean "every"?`,
		"frequency": `: did you mean "every"?`,
		"retry":     `: did you mean "retries"?`,
		"request":   ": requests belong to steps (steps: [{name: …, request: {url: …}}])",
		"url":       ": requests belong to steps (steps: [{name: …, request: {url: …}}])",
		"assert":    ": assertions belong to steps (steps: [{name: …, request: {…}, assert: […]}])",
	}
	stepHints = map[string]string{
		"url":        ": it belongs in request: (request: {url: …})",
		"method":     ": it belongs in request: (request: {method: …, url: …})",
		"headers":    ": it belongs in request: (request: {url: …, headers: {…}})",
		"body":       ": it belongs in request: (request: {url: …, body: …})",
		"assertions": `: did you mean "assert"?`,
		"expect":     `: did you mean "assert"?`,
		"checks":     `: did you mean "assert"?`,
	}
)

var labelNameRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Parse reads one checks file: a YAML document with a `checks:` list (see
// DESIGN.md, "Synthetic checks (contract)"). file names the file in errors
// and in each Check's File. The whole file is validated: on failure Parse
// returns no checks and an error joining (errors.Join) one *Error per
// problem, each "FILE:LINE: KEY: MESSAGE" with KEY like
// "checks[0].steps[2].assert[1].status" (lists are numbered from 0).
// `checks: []`, and `checks:` with no list, give no checks and no error;
// an empty file is an error. Other top-level keys are errors, except those
// beginning with "x-", which are ignored (a place for YAML anchors); merge
// keys (<<) work in every mapping.
//
// Defaults: a request's method is GET, a check's timeout
// min(DefaultTimeout, Every). Labels is never nil; the other maps and
// lists are nil when the file has none. ${env:NAME} variables must be set
// in the environment when Parse runs.
func Parse(file string, data []byte) ([]Check, error) {
	return checkFormat.Parse(file, data)
}

// Load reads the checks at path: one file, or every *.yml and *.yaml file
// of a directory (not its subdirectories; names starting with "." are
// skipped, symbolic links are followed), in name order. Check names must be
// unique across the files. A missing path, a directory without checks
// files, a file over MaxFileSize and a set of more than MaxChecks checks
// are errors. Like Parse, Load validates everything and returns no checks
// and all the errors (each an *Error, joined) when anything is wrong.
func Load(path string) ([]Check, error) {
	return checkFormat.Load(path)
}

// checkFormat is the shape of checks files.
var checkFormat = &yamlfile.Format[Check]{
	Key: "checks", File: "checks file", Set: "check set", NameKey: "name", Name: "check name",
	MaxSize: MaxFileSize, MaxItems: MaxChecks, MaxErrors: maxErrors, Budget: maxWork,
	Unknown: func(k string) string {
		return "unknown key" + hint(k, topKeys, topHints, "the file holds `checks:`, and x-… keys for anchors")
	},
	Item: func(c *yamlfile.Collector, i int, n *yaml.Node) (Check, string, int, bool) {
		ch, nameLine, ok := (&parser{c}).check(i, n)
		return ch, ch.Name, nameLine, ok
	},
}

// parser reads the checks of a file, reporting their problems to its
// Collector, within the file's work budget (maxWork).
type parser struct{ *yamlfile.Collector }

// durationWant is what a duration value should be, for messages.
const durationWant = "a duration such as 500ms, 30s or 1m"

// fields returns the entries of mapping n by key, reporting the keys that
// are not in keys (explained by hints, see hint). want says what n should
// be when it is not a mapping.
func (p *parser) fields(n *yaml.Node, path, want string, keys []string, hints map[string]string) (map[string]yamlfile.Pair, bool) {
	if n.Kind != yaml.MappingNode {
		p.Add(n.Line, path, "want %s, not %s", want, yamlfile.Describe(n))
		return nil, false
	}
	f := map[string]yamlfile.Pair{}
	for _, kv := range p.Pairs(n, path) {
		if !slices.Contains(keys, kv.Name) {
			p.Add(kv.K.Line, yamlfile.JoinKey(path, kv.Name), "unknown key%s", hint(kv.Name, keys, hints, "want "+yamlfile.OrList(keys)))
			continue
		}
		f[kv.Name] = kv
	}
	return f, true
}

// list returns the entries of the list kv.V; an empty value is an empty
// list. what names the entries for messages.
func (p *parser) list(kv yamlfile.Pair, key, what string) ([]*yaml.Node, bool) {
	switch {
	case yamlfile.IsNull(kv.V):
		return nil, true
	case kv.V.Kind != yaml.SequenceNode:
		p.Add(kv.V.Line, key, "want a list of %s, not %s", what, yamlfile.Describe(kv.V))
		return nil, false
	}
	return p.Items(kv.V), true
}

// check validates checks[i]; nameLine is the line of its name.
func (p *parser) check(i int, n *yaml.Node) (c Check, nameLine int, ok bool) {
	start := p.Count()
	path := fmt.Sprintf("checks[%d]", i)
	n = yamlfile.Resolve(n)
	c.File, c.Line, nameLine = p.File, n.Line, n.Line
	f, ok := p.fields(n, path, "a check: a mapping with name:, every: and steps:", checkKeys, checkHints)
	if !ok {
		return c, nameLine, false
	}
	key := func(k string) string { return path + "." + k }

	if kv, ok := f["name"]; !ok {
		p.Add(n.Line, key("name"), "missing: every check needs a name")
	} else if name, ok := p.Name(kv, key("name"), checkName); ok {
		c.Name, nameLine = name, kv.V.Line
	}

	everyOK := false
	if kv, ok := f["every"]; !ok {
		p.Add(n.Line, key("every"), "missing: want the schedule, at least %s (e.g. every: 30s)", yamlfile.FormatDuration(MinEvery))
	} else if d, ok := p.PositiveDuration(kv, key("every"), durationWant); ok {
		if d < MinEvery {
			p.Add(kv.V.Line, key("every"), "%s is shorter than the minimum %s", kv.V.Value, yamlfile.FormatDuration(MinEvery))
		} else {
			c.Every, everyOK = d, true
		}
	}

	// timeoutOK tells that c.Timeout bounds the steps' timeouts.
	timeoutOK := everyOK
	if kv, ok := f["timeout"]; ok {
		d, ok := p.PositiveDuration(kv, key("timeout"), durationWant)
		timeoutOK = ok
		if ok && everyOK && d > c.Every {
			p.Add(kv.V.Line, key("timeout"), "%s is longer than every: %s; a run must end before the next one is due", kv.V.Value, yamlfile.FormatDuration(c.Every))
		}
		c.Timeout = d
	} else if everyOK {
		c.Timeout = min(DefaultTimeout, c.Every)
	}

	if kv, ok := f["retries"]; ok {
		c.Retries, _ = p.integer(kv, key("retries"), 0, MaxRetries)
	}

	c.Labels = map[string]string{}
	if kv, ok := f["labels"]; ok {
		p.scalarMap(kv, key("labels"), func(e yamlfile.Pair, k string) {
			switch {
			case !labelNameRE.MatchString(e.Name):
				p.Add(e.K.Line, k, "label name %q is not valid: want [a-zA-Z_][a-zA-Z0-9_]*", e.Name)
			case strings.HasPrefix(e.Name, "__"):
				p.Add(e.K.Line, k, "label names beginning with __ are reserved")
			default:
				c.Labels[e.Name] = e.V.Value
			}
		})
	}

	if kv, ok := f["steps"]; !ok {
		p.Add(n.Line, key("steps"), "missing: want a list of 1 to %d steps", MaxSteps)
	} else if items, ok := p.list(kv, key("steps"), "steps"); ok {
		switch {
		case len(items) == 0:
			p.Add(kv.K.Line, key("steps"), "empty: want 1 to %d steps", MaxSteps)
		case len(items) > MaxSteps:
			p.Add(kv.K.Line, key("steps"), "%d steps; a check has at most %d", len(items), MaxSteps)
		}
		c.Steps = p.steps(items, key("steps"), c.Timeout, timeoutOK)
	}
	return c, nameLine, p.Count() == start
}

// checkName returns why s is not a valid check name, "" when it is.
func checkName(s string) string {
	switch {
	case s == "":
		return "empty name"
	case len(s) > MaxNameLen:
		return fmt.Sprintf("name is %d bytes long; at most %d", len(s), MaxNameLen)
	case s == "." || s == "..":
		return fmt.Sprintf("name %q is not allowed: the name is a segment of URL paths", s)
	}
	for _, r := range s {
		if !(r == '.' || r == '_' || r == '-' || r == ':' || '0' <= r && r <= '9' || 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') {
			return fmt.Sprintf("name %q has the character %q: a check name is letters, digits, '.', '_', '-' and ':' (it names the flow-graph node synthetic:NAME and is a segment of URL paths)", s, r)
		}
	}
	return ""
}

// checkStepName returns why s is not a valid step name, "" when it is.
func checkStepName(s string) string { return yamlfile.CheckName(s, MaxNameLen) }

// scope is what a check's steps define and use: the variables each step
// extracts, and where templates use extracted variables.
type scope struct {
	cur   int        // the step being parsed
	names []string   // names[j] is step j's name
	defs  [][]string // defs[j] are the variables step j extracts
	uses  []varUse
}

// varUse is a template's use of ${name} in step step.
type varUse struct {
	step, line int
	key, name  string
}

// steps validates a check's steps. timeout is the check's, which bounds
// theirs when timeoutOK.
func (p *parser) steps(items []*yaml.Node, path string, timeout time.Duration, timeoutOK bool) []Step {
	sc := &scope{names: make([]string, len(items)), defs: make([][]string, len(items))}
	var out []Step
	first := map[string]int{}
	for j, item := range items {
		sc.cur = j
		key := fmt.Sprintf("%s[%d]", path, j)
		st, nameLine := p.step(item, key, sc, timeout, timeoutOK)
		if st.Name != "" {
			if l, dup := first[st.Name]; dup {
				p.Add(nameLine, key+".name", "duplicate step name %q (first at line %d); step names are unique in a check", st.Name, l)
			} else {
				first[st.Name] = nameLine
			}
		}
		sc.names[j] = st.Name
		out = append(out, st)
	}
	for _, u := range sc.uses {
		defined := slices.ContainsFunc(sc.defs[:u.step], func(d []string) bool { return slices.Contains(d, u.name) })
		if !defined {
			p.Add(u.line, u.key, "undefined variable ${%s}%s", u.name, sc.explain(u))
		}
	}
	return out
}

// explain says why u's variable is undefined and what might be meant.
func (sc *scope) explain(u varUse) string {
	for j := u.step; j < len(sc.defs); j++ {
		if !slices.Contains(sc.defs[j], u.name) {
			continue
		}
		if j == u.step {
			return ": this step extracts it, for the steps after it; a step uses the variables of the earlier steps"
		}
		return fmt.Sprintf(": step %q (steps[%d]) extracts it, after this step; a step uses the variables of the earlier steps", sc.names[j], j)
	}
	var earlier []string
	for _, d := range sc.defs[:u.step] {
		for _, v := range d {
			if !slices.Contains(earlier, v) {
				earlier = append(earlier, v)
			}
		}
	}
	if near := nearest(u.name, append(earlier[:len(earlier):len(earlier)], builtinVars...)); near != "" {
		return fmt.Sprintf(": did you mean ${%s}?", near)
	}
	if _, ok := os.LookupEnv(u.name); ok {
		return fmt.Sprintf(": for the environment variable write ${env:%s}", u.name)
	}
	if len(earlier) == 0 {
		return ": no earlier step extracts variables (extract:); the built-in variables are ${uuid}, ${timestamp}, ${correlation_id} and ${env:NAME}"
	}
	for i, v := range earlier {
		earlier[i] = "${" + v + "}"
	}
	return "; the earlier steps extract " + yamlfile.OrList(earlier)
}

// step validates one step of a check; nameLine is the line of its name.
func (p *parser) step(n *yaml.Node, path string, sc *scope, timeout time.Duration, timeoutOK bool) (st Step, nameLine int) {
	n = yamlfile.Resolve(n)
	st.Line, nameLine = n.Line, n.Line
	f, ok := p.fields(n, path, "a step: a mapping with name: and request:", stepKeys, stepHints)
	if !ok {
		return st, nameLine
	}
	key := func(k string) string { return path + "." + k }

	if kv, ok := f["name"]; !ok {
		p.Add(n.Line, key("name"), "missing: every step needs a name")
	} else if name, ok := p.Name(kv, key("name"), checkStepName); ok {
		st.Name, nameLine = name, kv.V.Line
	}

	if kv, ok := f["request"]; !ok {
		p.Add(n.Line, key("request"), "missing: want the request, e.g. request: {method: GET, url: \"https://HOST/PATH\"}")
	} else {
		st.Request = p.request(kv, key("request"), sc)
	}

	if kv, ok := f["timeout"]; ok {
		if d, ok := p.PositiveDuration(kv, key("timeout"), durationWant); ok {
			if timeoutOK && d > timeout {
				p.Add(kv.V.Line, key("timeout"), "%s is longer than the check's timeout %s", kv.V.Value, yamlfile.FormatDuration(timeout))
			}
			st.Timeout = d
		}
	}

	if kv, ok := f["extract"]; ok {
		items, _ := p.list(kv, key("extract"), "extracts such as {name: VAR, jsonpath: $.field}")
		first := map[string]int{}
		for i, item := range items {
			k := fmt.Sprintf("%s[%d]", key("extract"), i)
			ex, nameLine, ok := p.extract(item, k)
			if ex.Name == "" {
				continue
			}
			if l, dup := first[ex.Name]; dup {
				p.Add(nameLine, k+".name", "duplicate variable %s (first at line %d)", ex.Name, l)
				continue
			}
			first[ex.Name] = nameLine
			sc.defs[sc.cur] = append(sc.defs[sc.cur], ex.Name)
			if ok {
				st.Extract = append(st.Extract, ex)
			}
		}
	}

	if kv, ok := f["assert"]; ok {
		items, _ := p.list(kv, key("assert"), "assertions such as {status: 200}")
		for i, item := range items {
			if a, ok := p.assertion(item, fmt.Sprintf("%s[%d]", key("assert"), i), sc); ok {
				st.Assert = append(st.Assert, a)
			}
		}
	}

	if kv, ok := f["continue_on_failure"]; ok {
		st.ContinueOnFailure, _ = p.boolean(kv, key("continue_on_failure"))
	}
	return st, nameLine
}

// request validates a step's request.
func (p *parser) request(req yamlfile.Pair, path string, sc *scope) Request {
	r := Request{Method: http.MethodGet}
	f, ok := p.fields(req.V, path, "a request: a mapping such as {method: GET, url: \"https://HOST/PATH\"}", requestKeys, nil)
	if !ok {
		return r
	}
	key := func(k string) string { return path + "." + k }

	if kv, ok := f["method"]; ok {
		if s, ok := p.Scalar(kv, key("method"), "an HTTP method"); ok {
			if isToken(s) {
				r.Method = strings.ToUpper(s)
			} else {
				p.Add(kv.V.Line, key("method"), "%q is not an HTTP method (a token such as GET or POST)", s)
			}
		}
	}

	if kv, ok := f["url"]; !ok {
		p.Add(req.V.Line, key("url"), "missing: want the URL to request, e.g. url: \"https://HOST/PATH\"")
	} else if t, ok := p.template(kv, key("url"), sc); ok {
		if msg := checkURL(t); msg != "" {
			p.Add(kv.V.Line, key("url"), "%s", msg)
		} else {
			r.URL = t
		}
	}

	if kv, ok := f["headers"]; ok {
		first := map[string]int{}
		p.scalarMap(kv, key("headers"), func(e yamlfile.Pair, k string) {
			name, ok := p.headerName(e.Name, e.K.Line, k)
			if !ok {
				return
			}
			if l, dup := first[name]; dup {
				p.Add(e.K.Line, k, "header %s given twice (first at line %d)", name, l)
				return
			}
			first[name] = e.K.Line
			if strings.ContainsAny(e.V.Value, "\r\n\x00") {
				p.Add(e.V.Line, k, "a header value cannot contain a line break or NUL")
				return
			}
			if t, ok := p.template(e, k, sc); ok {
				r.Headers = append(r.Headers, Header{Name: name, Value: t})
			}
		})
	}

	if kv, ok := f["body"]; ok {
		if kv.V.Kind == yaml.MappingNode || kv.V.Kind == yaml.SequenceNode {
			p.Add(kv.V.Line, key("body"), "want the body as a string, not %s; quote JSON: body: '{\"user\": \"synthetic\"}'", yamlfile.Describe(kv.V))
		} else {
			r.Body, _ = p.template(kv, key("body"), sc)
		}
	}
	return r
}

// checkURL returns why t is not an absolute http or https URL with a
// host; "" when it is. ${env:NAME} variables take their value now (a base
// URL may come from the environment); the others are replaced by "x".
func checkURL(t Template) string {
	secret := false
	s, _ := t.Expand(func(p Part) (string, bool) {
		if p.Kind == VarEnv {
			secret = true
			return os.Getenv(p.Text), true
		}
		return "x", true
	})
	u, err := url.Parse(s)
	if ue, ok := err.(*url.Error); ok {
		err = ue.Err // without the URL with its variables replaced
	}
	vars := ""
	if t.HasVars() {
		vars = ` (checked with the environment's values for ${env:…} and "x" for the other variables: write the scheme and the host out, or take them from the environment)`
	}
	switch {
	case err != nil && secret:
		// The parser's message may quote part of a secret.
		return fmt.Sprintf("bad URL %q: not a URL with the environment's values", t.Raw)
	case err != nil:
		return fmt.Sprintf("bad URL %q: %v", t.Raw, err)
	case u.Scheme == "":
		return fmt.Sprintf("URL %q is not absolute: want http://HOST/… or https://HOST/…%s", t.Raw, vars)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("URL scheme %q is not supported: want http or https", u.Scheme)
	case u.Hostname() == "":
		return fmt.Sprintf("URL %q has no host%s", t.Raw, vars)
	}
	return ""
}

// extract validates one extract; nameLine is the line of its name. Name
// is set when it is valid, even if the rest is not.
func (p *parser) extract(n *yaml.Node, path string) (ex Extract, nameLine int, ok bool) {
	start := p.Count()
	n = yamlfile.Resolve(n)
	nameLine = n.Line
	f, ok := p.fields(n, path, "an extract: {name: VAR, jsonpath: PATH}, {name: VAR, header: NAME} or {name: VAR, regex: RE}", extractKeys, nil)
	if !ok {
		return ex, nameLine, false
	}
	key := func(k string) string { return path + "." + k }
	if kv, ok := f["name"]; !ok {
		p.Add(n.Line, key("name"), "missing: want the variable to set, e.g. name: TOKEN")
	} else if s, ok := p.Scalar(kv, key("name"), "a variable name"); ok {
		nameLine = kv.V.Line
		switch {
		case !identifier(s):
			p.Add(kv.V.Line, key("name"), "bad variable name %q: use letters, digits and _, not starting with a digit", s)
		case slices.Contains(builtinVars, s):
			p.Add(kv.V.Line, key("name"), "%s is a built-in variable; choose another name", s)
		default:
			ex.Name = s
		}
	}
	src, found := p.oneOf(f, extractSources, path)
	switch {
	case found == 0:
		p.Add(n.Line, path, "missing source: want one of jsonpath:, header: or regex:")
	case found > 1:
	case src.Name == "jsonpath":
		ex.Kind = ExtractJSONPath
		ex.JSONPath, _ = p.jsonPath(src, key("jsonpath"))
	case src.Name == "header":
		ex.Kind = ExtractHeader
		if s, ok := p.Scalar(src, key("header"), "a header name"); ok {
			ex.Header, _ = p.headerName(s, src.V.Line, key("header"))
		}
	case src.Name == "regex":
		ex.Kind = ExtractRegex
		ex.Regex, _ = p.regex(src, key("regex"))
	}
	return ex, nameLine, p.Count() == start
}

// oneOf returns the one of names that f holds and how many it holds,
// reporting all but the first when there are several.
func (p *parser) oneOf(f map[string]yamlfile.Pair, names []string, path string) (yamlfile.Pair, int) {
	var got []yamlfile.Pair
	for _, name := range names {
		if kv, ok := f[name]; ok {
			got = append(got, kv)
		}
	}
	if len(got) == 0 {
		return yamlfile.Pair{}, 0
	}
	sort.SliceStable(got, func(a, b int) bool { return got[a].K.Line < got[b].K.Line })
	for _, kv := range got[1:] {
		p.Add(kv.K.Line, yamlfile.JoinKey(path, kv.Name), "both %s: (line %d) and %s: given; want only one", got[0].Name, got[0].K.Line, kv.Name)
	}
	return got[0], len(got)
}

// assertion validates one assertion.
func (p *parser) assertion(n *yaml.Node, path string, sc *scope) (a Assertion, ok bool) {
	start := p.Count()
	n = yamlfile.Resolve(n)
	if n.Kind != yaml.MappingNode {
		p.Add(n.Line, path, "an assertion is a mapping such as {status: 200}, not %s", yamlfile.Describe(n))
		return a, false
	}
	var main *yamlfile.Pair
	var rest []yamlfile.Pair
	for _, kv := range p.Pairs(n, path) {
		switch {
		case !slices.Contains(assertKeys, kv.Name):
			rest = append(rest, kv)
		case main != nil:
			p.Add(kv.K.Line, yamlfile.JoinKey(path, kv.Name), "%s: and %s: in one assertion; write each as its own list item", main.Name, kv.Name)
		default:
			main = &kv
		}
	}
	if main == nil {
		for _, kv := range rest {
			if !slices.Contains(allAssertOps, kv.Name) {
				p.Add(kv.K.Line, yamlfile.JoinKey(path, kv.Name), "unknown assertion%s (want %s)", hint(kv.Name, assertKeys, nil, ""), assertForms)
				return a, false
			}
		}
		if len(rest) == 0 {
			p.Add(n.Line, path, "empty assertion (want %s)", assertForms)
		} else {
			p.Add(n.Line, path, "%s: needs jsonpath: or header: (want %s)", rest[0].Name, assertForms)
		}
		return a, false
	}
	ops := assertOps[main.Name]
	f := map[string]yamlfile.Pair{}
	for _, kv := range rest {
		k := yamlfile.JoinKey(path, kv.Name)
		switch {
		case slices.Contains(ops, kv.Name):
			f[kv.Name] = kv
		case slices.Contains(allAssertOps, kv.Name):
			p.Add(kv.K.Line, k, "%s: does not go with %s: (want %s)", kv.Name, main.Name, assertForms)
		default:
			p.Add(kv.K.Line, k, "unknown key in a %s assertion%s", main.Name, hint(kv.Name, append(ops[:len(ops):len(ops)], assertKeys...), nil, "want "+assertForms))
		}
	}
	key := yamlfile.JoinKey(path, main.Name)
	switch main.Name {
	case "status":
		a.Kind, a.Status, a.StatusIn = p.status(*main, key)
	case "latency_below":
		a.Kind = AssertLatencyBelow
		a.LatencyBelow, _ = p.PositiveDuration(*main, key, durationWant)
	case "body_contains":
		a.Kind = AssertBodyContains
		if t, ok := p.template(*main, key, sc); ok {
			if t.Raw == "" {
				p.Add(main.V.Line, key, "empty: want the text the body must contain")
			}
			a.Text = t
		}
	case "jsonpath":
		a.JSONPath, _ = p.jsonPath(*main, key)
		op, found := p.oneOf(f, ops, path)
		opKey := yamlfile.JoinKey(path, op.Name)
		switch {
		case found == 0:
			p.Add(main.K.Line, path, "a jsonpath assertion needs equals: VALUE or exists: true|false")
		case found > 1:
		case op.Name == "equals":
			a.Kind = AssertJSONPathEquals
			a.Equals, _ = p.jsonValue(op.V, opKey, 0)
		case op.Name == "exists":
			a.Kind = AssertJSONPathExists
			a.Exists, _ = p.boolean(op, opKey)
		}
	case "header":
		a.Kind = AssertHeader
		if s, ok := p.Scalar(*main, key, "a header name"); ok {
			a.Header, _ = p.headerName(s, main.V.Line, key)
		}
		op, found := p.oneOf(f, ops, path)
		opKey := yamlfile.JoinKey(path, op.Name)
		switch {
		case found == 0:
			p.Add(main.K.Line, path, "a header assertion needs equals:, contains:, matches: or exists:")
		case found > 1:
		case op.Name == "equals", op.Name == "contains":
			a.Op = HeaderEquals
			if op.Name == "contains" {
				a.Op = HeaderContains
			}
			if t, ok := p.template(op, opKey, sc); ok {
				if t.Raw == "" && a.Op == HeaderContains {
					p.Add(op.V.Line, opKey, "empty: want the text the header must contain")
				}
				a.Text = t
			}
		case op.Name == "matches":
			a.Op = HeaderMatches
			a.Regex, _ = p.regex(op, opKey)
		case op.Name == "exists":
			a.Op = HeaderExists
			a.Exists, _ = p.boolean(op, opKey)
		}
	}
	return a, p.Count() == start
}

// status parses a status assertion's value: a code, or {in: [codes]}.
func (p *parser) status(kv yamlfile.Pair, key string) (kind AssertKind, code int, in []int) {
	switch kv.V.Kind {
	case yaml.SequenceNode:
		p.Add(kv.V.Line, key, "want a status code, or {in: [CODE, …]} for several")
		return AssertStatus, 0, nil
	case yaml.MappingNode:
		f, _ := p.fields(kv.V, key, "", []string{"in"}, nil)
		list, ok := f["in"]
		if !ok {
			p.Add(kv.V.Line, key, "want {in: [CODE, …]}")
			return AssertStatusIn, 0, nil
		}
		items, ok := p.list(list, key+".in", "status codes")
		if ok && len(items) == 0 {
			p.Add(list.K.Line, key+".in", "empty: want at least one status code")
		}
		for i, item := range items {
			if c, ok := p.integer(yamlfile.Pair{K: item, V: yamlfile.Resolve(item)}, fmt.Sprintf("%s.in[%d]", key, i), 100, 599); ok {
				in = append(in, c)
			}
		}
		return AssertStatusIn, 0, in
	}
	code, _ = p.integer(kv, key, 100, 599)
	return AssertStatus, code, nil
}

// integer parses a whole number from lo to hi.
func (p *parser) integer(kv yamlfile.Pair, key string, lo, hi int) (int, bool) {
	want := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	if lo == 100 && hi == 599 {
		want = "an HTTP status code (100 to 599)"
	}
	s, ok := p.Scalar(kv, key, want)
	if !ok {
		return 0, false
	}
	n, ok := scalarInt(kv.V)
	if !ok {
		p.Add(kv.V.Line, key, "want %s, not %s", want, yamlfile.Describe(kv.V))
		return 0, false
	}
	if n < int64(lo) || n > int64(hi) {
		p.Add(kv.V.Line, key, "%s is out of range: want %s", s, want)
		return 0, false
	}
	return int(n), true
}

// boolean parses true or false.
func (p *parser) boolean(kv yamlfile.Pair, key string) (bool, bool) {
	if _, ok := p.Scalar(kv, key, "true or false"); !ok {
		return false, false
	}
	b, ok := scalarBool(kv.V)
	if !ok {
		p.Add(kv.V.Line, key, "want true or false, not %s", yamlfile.Describe(kv.V))
		return false, false
	}
	return b, true
}

// scalarInt returns the value of an !!int scalar.
func scalarInt(n *yaml.Node) (int64, bool) {
	if n.Tag != "!!int" {
		return 0, false
	}
	if !leadingZero(n.Value) {
		if i, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			return i, true
		}
	}
	var i int64
	return i, n.Decode(&i) == nil // 0x10, 0o17, 1_000
}

// scalarFloat returns the value of an !!int or !!float scalar.
func scalarFloat(n *yaml.Node) (float64, bool) {
	if n.Tag != "!!int" && n.Tag != "!!float" {
		return 0, false
	}
	if !leadingZero(n.Value) {
		if f, err := strconv.ParseFloat(n.Value, 64); err == nil {
			return f, true
		}
	}
	var f float64
	return f, n.Decode(&f) == nil // 0x10, 1_000, .inf
}

// scalarBool returns the value of a !!bool scalar.
func scalarBool(n *yaml.Node) (bool, bool) {
	if n.Tag != "!!bool" {
		return false, false
	}
	if b, err := strconv.ParseBool(n.Value); err == nil {
		return b, true
	}
	var b bool
	return b, n.Decode(&b) == nil
}

// leadingZero reports whether s is a number with a leading zero, such as
// 017, which yaml.v3 reads as octal and strconv as decimal. (The fast
// paths of scalarInt and scalarFloat use strconv, which is much cheaper
// than a yaml.v3 Decode, for the other numbers.)
func leadingZero(s string) bool {
	s = strings.TrimLeft(s, "+-")
	return len(s) > 1 && s[0] == '0' && '0' <= s[1] && s[1] <= '9'
}

// template parses a template value. Its ${env:NAME} variables must be
// set; its uses of extracted variables are recorded in sc, to be checked
// once all the steps are known.
func (p *parser) template(kv yamlfile.Pair, key string, sc *scope) (Template, bool) {
	s, ok := p.Scalar(kv, key, "a string")
	if !ok {
		return Template{}, false
	}
	t, err := ParseTemplate(s)
	if err != nil {
		p.Add(kv.V.Line, key, "%v", err)
		return Template{}, false
	}
	ok = true
	var seen []string
	for _, part := range t.Parts {
		switch part.Kind {
		case VarEnv:
			if _, set := os.LookupEnv(part.Text); !set {
				p.Add(kv.V.Line, key, "environment variable %s is not set (%s is read when the checks are loaded, and at each run)", part.Text, part)
				ok = false
			}
		case VarExtract:
			if !slices.Contains(seen, part.Text) {
				seen = append(seen, part.Text)
				sc.uses = append(sc.uses, varUse{step: sc.cur, line: kv.V.Line, key: key, name: part.Text})
			}
		}
	}
	return t, ok
}

// jsonPath compiles a JSONPath value.
func (p *parser) jsonPath(kv yamlfile.Pair, key string) (*JSONPath, bool) {
	s, ok := p.Scalar(kv, key, "a JSONPath such as $.field")
	if !ok {
		return nil, false
	}
	jp, err := CompileJSONPath(s)
	if err != nil {
		p.Add(kv.V.Line, key, "%v", err)
		return nil, false
	}
	return jp, true
}

// regex compiles a regular expression value (Go's syntax).
func (p *parser) regex(kv yamlfile.Pair, key string) (*regexp.Regexp, bool) {
	s, ok := p.Scalar(kv, key, "a regular expression")
	if !ok {
		return nil, false
	}
	if s == "" {
		p.Add(kv.V.Line, key, "empty regular expression")
		return nil, false
	}
	re, err := regexp.Compile(s)
	if err != nil {
		p.Add(kv.V.Line, key, "bad regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return nil, false
	}
	return re, true
}

// headerName checks an HTTP header name and returns it canonical.
func (p *parser) headerName(s string, line int, key string) (string, bool) {
	if !isToken(s) {
		p.Add(line, key, "%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)", s)
		return "", false
	}
	return http.CanonicalHeaderKey(s), true
}

// isToken reports whether s is an HTTP token (RFC 9110), as methods and
// header names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// scalarMap calls fn with each entry of the mapping kv.V and its key,
// after checking that the value is a scalar. An empty value has no
// entries.
func (p *parser) scalarMap(kv yamlfile.Pair, path string, fn func(e yamlfile.Pair, key string)) {
	switch {
	case yamlfile.IsNull(kv.V):
		return
	case kv.V.Kind != yaml.MappingNode:
		p.Add(kv.V.Line, path, "want a mapping of names to strings, not %s", yamlfile.Describe(kv.V))
		return
	}
	for _, e := range p.Pairs(kv.V, path) {
		key := yamlfile.JoinKey(path, e.Name)
		if _, ok := p.Scalar(e, key, "a string"); ok {
			fn(e, key)
		}
	}
}

// jsonValue converts a YAML value to what encoding/json decodes the same
// JSON into: nil, bool, float64, string, []any or map[string]any. Errors
// name key, the equals: key, and the line of the value at fault.
func (p *parser) jsonValue(n *yaml.Node, key string, depth int) (any, bool) {
	n = yamlfile.Resolve(n)
	if depth > maxValueDepth {
		p.Add(n.Line, key, "value nested more than %d deep", maxValueDepth)
		return nil, false
	}
	switch n.Kind {
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return nil, true
		case "!!bool":
			if b, ok := scalarBool(n); ok {
				return b, true
			}
		case "!!int", "!!float":
			if f, ok := scalarFloat(n); ok && !math.IsNaN(f) && !math.IsInf(f, 0) {
				return f, true
			}
			p.Add(n.Line, key, "%s is not a JSON number", n.Value)
			return nil, false
		}
		if !p.Charge(len(n.Value)>>6, n.Line) {
			return nil, false
		}
		return n.Value, true
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, item := range p.Items(n) {
			v, ok := p.jsonValue(item, key, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case yaml.MappingNode:
		out := map[string]any{}
		for _, e := range p.Pairs(n, key) {
			v, ok := p.jsonValue(e.V, key, depth+1)
			if !ok {
				return nil, false
			}
			out[e.Name] = v
		}
		return out, true
	}
	p.Add(n.Line, key, "want a value, not %s", yamlfile.Describe(n))
	return nil, false
}

// nearest returns the one of valid closest to k, ignoring case: within an
// edit distance of 2, or else sharing its first word (status_code and
// status, body_matches and body_contains); "" when none is.
func nearest(k string, valid []string) string {
	return cmp.Or(yamlfile.Nearest(k, valid), yamlfile.SameWord(k, valid))
}

// hint explains an unknown key k: the hint written for it, else
// `: did you mean "x"?` for the nearest of valid, else "; " + want (or ""
// when want is empty).
func hint(k string, valid []string, hints map[string]string, want string) string {
	if h, ok := hints[strings.ToLower(k)]; ok {
		return h
	}
	if near := nearest(k, valid); near != "" {
		return fmt.Sprintf(": did you mean %q?", near)
	}
	if want == "" {
		return ""
	}
	return " (" + want + ")"
}
