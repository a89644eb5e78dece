package checks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/flowscope/flowscope/alerting/rules"
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
	// maxMergeDepth bounds nested YAML merge keys (<<).
	maxMergeDepth = 8
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
	p := &parser{file: file}
	cs, _ := p.parseFile(data)
	if err := p.err(); err != nil {
		return nil, err
	}
	return cs, nil
}

// Load reads the checks at path: one file, or every *.yml and *.yaml file
// of a directory (not its subdirectories; names starting with "." are
// skipped, symbolic links are followed), in name order. Check names must be
// unique across the files. A missing path, a directory without checks
// files, a file over MaxFileSize and a set of more than MaxChecks checks
// are errors. Like Parse, Load validates everything and returns no checks
// and all the errors (each an *Error, joined) when anything is wrong.
func Load(path string) ([]Check, error) {
	p := &parser{file: path}
	st, err := os.Stat(path)
	if err != nil {
		p.fileErr(path, err)
		return nil, p.err()
	}
	var files []string
	if st.IsDir() {
		ents, err := os.ReadDir(path) // sorted by name
		if err != nil {
			p.fileErr(path, err)
			return nil, p.err()
		}
		for _, e := range ents {
			name := e.Name()
			if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yml") || strings.HasSuffix(name, ".yaml")) {
				continue
			}
			full := filepath.Join(path, name)
			fst, err := os.Stat(full) // follows symbolic links
			if err != nil {
				p.fileErr(full, err)
				continue
			}
			if fst.Mode().IsRegular() {
				files = append(files, full)
			}
		}
		if len(files) == 0 && len(p.errs) == 0 {
			p.add(0, "", "no checks files (*.yml or *.yaml) in this directory")
			return nil, p.err()
		}
	} else {
		files = []string{path}
	}

	type origin struct {
		file string
		line int
	}
	var all []Check
	seen := map[string]origin{}
	for _, f := range files {
		p.file = f
		data, err := readLimited(f)
		if err != nil {
			if errors.Is(err, errTooLarge) {
				p.add(0, "", "%v", err)
			} else {
				p.fileErr(f, err)
			}
			continue
		}
		cs, nameLines := p.parseFile(data)
		for i, c := range cs {
			if o, dup := seen[c.Name]; dup {
				p.add(nameLines[i], fmt.Sprintf("checks[%d].name", i),
					"duplicate check name %q (also defined at %s:%d); names must be unique across the checks files", c.Name, o.file, o.line)
				continue
			}
			seen[c.Name] = origin{f, nameLines[i]}
		}
		all = append(all, cs...)
	}
	if len(all) > MaxChecks && len(files) > 1 {
		p.file = path
		p.add(0, "", "%d checks in all; a check set holds at most %d", len(all), MaxChecks)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return all, nil
}

var errTooLarge = fmt.Errorf("file larger than %d bytes (4 MiB)", MaxFileSize)

// readLimited reads a file of at most MaxFileSize bytes.
func readLimited(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileSize {
		return nil, errTooLarge
	}
	return data, nil
}

// parser collects the errors of one Parse or Load.
type parser struct {
	file    string
	errs    []error
	dropped int
	// work is what is left of the file's maxWork; overWork tells that
	// running out was reported.
	work     int
	overWork bool
}

// add records an error at line (0: none) and key ("" for the file). Once
// the file's work budget is spent, the errors that follow, which parts
// left unread cause, are not recorded.
func (p *parser) add(line int, key, format string, args ...any) {
	if p.overWork {
		return
	}
	if len(p.errs) >= maxErrors {
		p.dropped++
		return
	}
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = clip(s, 1024)
		}
	}
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Key: clip(key, 256), Msg: fmt.Sprintf(format, args...)})
}

// count is the number of errors so far.
func (p *parser) count() int { return len(p.errs) + p.dropped }

// fileErr records an error of the file system about name.
func (p *parser) fileErr(name string, err error) {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	file := p.file
	p.file = name
	p.add(0, "", "%v", err)
	p.file = file
}

// sortFrom orders the errors from index i on by line.
func (p *parser) sortFrom(i int) {
	sort.SliceStable(p.errs[i:], func(a, b int) bool {
		return p.errs[i+a].(*Error).Line < p.errs[i+b].(*Error).Line
	})
}

// err joins the errors, nil when there are none.
func (p *parser) err() error {
	if p.count() == 0 {
		return nil
	}
	errs := p.errs
	if p.dropped > 0 {
		errs = append(errs[:len(errs):len(errs)], &Error{File: p.file, Msg: fmt.Sprintf("%d more errors not shown", p.dropped)})
	}
	return errors.Join(errs...)
}

// charge spends n of the file's work budget; once it is spent, charge
// reports it (once) at line and returns false.
func (p *parser) charge(n, line int) bool {
	p.work -= n
	if p.work >= 0 {
		return true
	}
	if !p.overWork {
		p.add(line, "", "too many YAML values (more than %d, counting again those that aliases and merge keys repeat)", maxWork)
		p.overWork = true
	}
	return false
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserErrors are the errors of yaml.v3's parser, whose line numbers
// are one less than the line of the problem.
var yamlParserErrors = []string{
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
}

// syntaxErr records an error of the YAML decoder.
func (p *parser) syntaxErr(err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		// yaml.v3 numbers the lines of its parser's errors (unlike its
		// scanner's) from 0.
		for _, e := range yamlParserErrors {
			if m[2] == e {
				line++
				break
			}
		}
		p.add(line, "", "YAML syntax error: %s", m[2])
		return
	}
	p.add(0, "", "YAML syntax error: %s", strings.TrimPrefix(msg, "yaml: "))
}

// decode decodes one YAML document into n, turning a panic of the decoder
// into an error.
func decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

// parseFile parses one file's checks; nameLines[i] is the line of check
// i's name. It returns the checks when the file has no error.
func (p *parser) parseFile(data []byte) (cs []Check, nameLines []int) {
	start := p.count()
	defer p.sortFrom(len(p.errs))
	p.work, p.overWork = maxWork, false
	if len(data) > MaxFileSize {
		p.add(0, "", "%v", errTooLarge)
		return nil, nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(0, "", "empty file: want a `checks:` list")
		} else {
			p.syntaxErr(err)
		}
		return nil, nil
	}
	var extra yaml.Node
	if err := decode(dec, &extra); err == nil {
		p.add(extra.Line, "", "a second YAML document; a checks file holds one")
	} else if !errors.Is(err, io.EOF) {
		p.syntaxErr(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			p.add(0, "", "empty file: want a `checks:` list")
			return nil, nil
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if root.Kind != yaml.MappingNode {
		p.add(root.Line, "", "want a mapping with a `checks:` list, not %s", describe(root))
		return nil, nil
	}
	var list *yaml.Node
	for _, kv := range p.pairs(root, "", 0) {
		switch {
		case kv.name == "checks":
			list = kv.v
		case strings.HasPrefix(kv.name, "x-"):
			// An extension: anchors for the checks to reuse.
		default:
			p.add(kv.k.Line, kv.name, "unknown key%s", hint(kv.name, topKeys, topHints, "the file holds `checks:`, and x-… keys for anchors"))
		}
	}
	switch {
	case list == nil:
		p.add(root.Line, "checks", "missing: want `checks:` with a list of checks")
		return nil, nil
	case isNull(list):
		return nil, nil
	case list.Kind != yaml.SequenceNode:
		p.add(list.Line, "checks", "must be a list of checks, not %s", describe(list))
		return nil, nil
	case len(list.Content) > MaxChecks:
		p.add(list.Line, "checks", "%d checks; a check set holds at most %d", len(list.Content), MaxChecks)
		return nil, nil
	}
	first := map[string]int{}
	for i, item := range p.items(list) {
		c, nameLine, ok := p.check(i, item)
		if c.Name != "" {
			if l, dup := first[c.Name]; dup {
				p.add(nameLine, fmt.Sprintf("checks[%d].name", i), "duplicate check name %q (first defined at %s:%d)", c.Name, p.file, l)
				ok = false
			} else {
				first[c.Name] = nameLine
			}
		}
		if ok {
			cs = append(cs, c)
			nameLines = append(nameLines, nameLine)
		}
	}
	if p.count() > start {
		return nil, nil
	}
	return cs, nameLines
}

// pair is one key and value of a mapping.
type pair struct {
	k, v *yaml.Node
	name string
}

// pairs returns the entries of mapping m, reporting keys that are not
// strings and duplicate keys under path. Merge keys (<<) are expanded:
// explicit keys override merged ones, earlier merged mappings override
// later ones.
func (p *parser) pairs(m *yaml.Node, path string, depth int) []pair {
	if !p.charge(len(m.Content)/2, m.Line) {
		return nil
	}
	var out, merged []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := resolve(m.Content[i]), resolve(m.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			if depth >= maxMergeDepth {
				p.add(k.Line, path, "merge keys (<<) nested too deep")
				continue
			}
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				s = resolve(s)
				if s.Kind != yaml.MappingNode {
					p.add(k.Line, path, "a merge key (<<) takes a mapping or a list of mappings, not %s", describe(s))
					continue
				}
				merged = append(merged, p.pairs(s, path, depth+1)...)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			p.add(k.Line, path, "keys must be strings, not %s", describe(k))
			continue
		}
		if l, dup := seen[k.Value]; dup {
			p.add(k.Line, joinKey(path, k.Value), "duplicate key (first at line %d)", l)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, pair{k, v, k.Value})
	}
	for _, kv := range merged {
		if _, ok := seen[kv.name]; !ok {
			seen[kv.name] = kv.k.Line
			out = append(out, kv)
		}
	}
	return out
}

// items returns the entries of list n.
func (p *parser) items(n *yaml.Node) []*yaml.Node {
	if !p.charge(len(n.Content), n.Line) {
		return nil
	}
	return n.Content
}

// fields returns the entries of mapping n by key, reporting the keys that
// are not in keys (explained by hints, see hint). want says what n should
// be when it is not a mapping.
func (p *parser) fields(n *yaml.Node, path, want string, keys []string, hints map[string]string) (map[string]pair, bool) {
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, "want %s, not %s", want, describe(n))
		return nil, false
	}
	f := map[string]pair{}
	for _, kv := range p.pairs(n, path, 0) {
		if !slices.Contains(keys, kv.name) {
			p.add(kv.k.Line, joinKey(path, kv.name), "unknown key%s", hint(kv.name, keys, hints, "want "+orList(keys)))
			continue
		}
		f[kv.name] = kv
	}
	return f, true
}

// list returns the entries of the list kv.v; an empty value is an empty
// list. what names the entries for messages.
func (p *parser) list(kv pair, key, what string) ([]*yaml.Node, bool) {
	switch {
	case isNull(kv.v):
		return nil, true
	case kv.v.Kind != yaml.SequenceNode:
		p.add(kv.v.Line, key, "want a list of %s, not %s", what, describe(kv.v))
		return nil, false
	}
	return p.items(kv.v), true
}

// check validates checks[i]; nameLine is the line of its name.
func (p *parser) check(i int, n *yaml.Node) (c Check, nameLine int, ok bool) {
	start := p.count()
	path := fmt.Sprintf("checks[%d]", i)
	n = resolve(n)
	c.File, c.Line, nameLine = p.file, n.Line, n.Line
	f, ok := p.fields(n, path, "a check: a mapping with name:, every: and steps:", checkKeys, checkHints)
	if !ok {
		return c, nameLine, false
	}
	key := func(k string) string { return path + "." + k }

	if kv, ok := f["name"]; !ok {
		p.add(n.Line, key("name"), "missing: every check needs a name")
	} else if s, ok := p.str(kv, key("name"), "a name"); ok {
		nameLine = kv.v.Line
		if msg := checkName(s); msg != "" {
			p.add(kv.v.Line, key("name"), "%s", msg)
		} else {
			c.Name = s
		}
	}

	everyOK := false
	if kv, ok := f["every"]; !ok {
		p.add(n.Line, key("every"), "missing: want the schedule, at least %s (e.g. every: 30s)", fmtDuration(MinEvery))
	} else if d, ok := p.duration(kv, key("every")); ok {
		if d < MinEvery {
			p.add(kv.v.Line, key("every"), "%s is shorter than the minimum %s", kv.v.Value, fmtDuration(MinEvery))
		} else {
			c.Every, everyOK = d, true
		}
	}

	// timeoutOK tells that c.Timeout bounds the steps' timeouts.
	timeoutOK := everyOK
	if kv, ok := f["timeout"]; ok {
		d, ok := p.duration(kv, key("timeout"))
		timeoutOK = ok
		if ok && everyOK && d > c.Every {
			p.add(kv.v.Line, key("timeout"), "%s is longer than every: %s; a run must end before the next one is due", kv.v.Value, fmtDuration(c.Every))
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
		p.scalarMap(kv, key("labels"), func(e pair, k string) {
			switch {
			case !labelNameRE.MatchString(e.name):
				p.add(e.k.Line, k, "label name %q is not valid: want [a-zA-Z_][a-zA-Z0-9_]*", e.name)
			case strings.HasPrefix(e.name, "__"):
				p.add(e.k.Line, k, "label names beginning with __ are reserved")
			default:
				c.Labels[e.name] = e.v.Value
			}
		})
	}

	if kv, ok := f["steps"]; !ok {
		p.add(n.Line, key("steps"), "missing: want a list of 1 to %d steps", MaxSteps)
	} else if items, ok := p.list(kv, key("steps"), "steps"); ok {
		switch {
		case len(items) == 0:
			p.add(kv.k.Line, key("steps"), "empty: want 1 to %d steps", MaxSteps)
		case len(items) > MaxSteps:
			p.add(kv.k.Line, key("steps"), "%d steps; a check has at most %d", len(items), MaxSteps)
		}
		c.Steps = p.steps(items, key("steps"), c.Timeout, timeoutOK)
	}
	return c, nameLine, p.count() == start
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
func checkStepName(s string) string {
	switch {
	case s == "":
		return "empty name"
	case len(s) > MaxNameLen:
		return fmt.Sprintf("name is %d bytes long; at most %d", len(s), MaxNameLen)
	case !utf8.ValidString(s):
		return "name is not valid UTF-8"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return fmt.Sprintf("name %q contains a control character", s)
	case strings.TrimSpace(s) != s:
		return fmt.Sprintf("name %q begins or ends with white space", s)
	}
	return ""
}

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
				p.add(nameLine, key+".name", "duplicate step name %q (first at line %d); step names are unique in a check", st.Name, l)
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
			p.add(u.line, u.key, "undefined variable ${%s}%s", u.name, sc.explain(u))
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
	return "; the earlier steps extract " + orList(earlier)
}

// step validates one step of a check; nameLine is the line of its name.
func (p *parser) step(n *yaml.Node, path string, sc *scope, timeout time.Duration, timeoutOK bool) (st Step, nameLine int) {
	n = resolve(n)
	st.Line, nameLine = n.Line, n.Line
	f, ok := p.fields(n, path, "a step: a mapping with name: and request:", stepKeys, stepHints)
	if !ok {
		return st, nameLine
	}
	key := func(k string) string { return path + "." + k }

	if kv, ok := f["name"]; !ok {
		p.add(n.Line, key("name"), "missing: every step needs a name")
	} else if s, ok := p.str(kv, key("name"), "a name"); ok {
		nameLine = kv.v.Line
		if msg := checkStepName(s); msg != "" {
			p.add(kv.v.Line, key("name"), "%s", msg)
		} else {
			st.Name = s
		}
	}

	if kv, ok := f["request"]; !ok {
		p.add(n.Line, key("request"), "missing: want the request, e.g. request: {method: GET, url: \"https://HOST/PATH\"}")
	} else {
		st.Request = p.request(kv, key("request"), sc)
	}

	if kv, ok := f["timeout"]; ok {
		if d, ok := p.duration(kv, key("timeout")); ok {
			if timeoutOK && d > timeout {
				p.add(kv.v.Line, key("timeout"), "%s is longer than the check's timeout %s", kv.v.Value, fmtDuration(timeout))
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
				p.add(nameLine, k+".name", "duplicate variable %s (first at line %d)", ex.Name, l)
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
func (p *parser) request(req pair, path string, sc *scope) Request {
	r := Request{Method: http.MethodGet}
	f, ok := p.fields(req.v, path, "a request: a mapping such as {method: GET, url: \"https://HOST/PATH\"}", requestKeys, nil)
	if !ok {
		return r
	}
	key := func(k string) string { return path + "." + k }

	if kv, ok := f["method"]; ok {
		if s, ok := p.str(kv, key("method"), "an HTTP method"); ok {
			if isToken(s) {
				r.Method = strings.ToUpper(s)
			} else {
				p.add(kv.v.Line, key("method"), "%q is not an HTTP method (a token such as GET or POST)", s)
			}
		}
	}

	if kv, ok := f["url"]; !ok {
		p.add(req.v.Line, key("url"), "missing: want the URL to request, e.g. url: \"https://HOST/PATH\"")
	} else if t, ok := p.template(kv, key("url"), sc); ok {
		if msg := checkURL(t); msg != "" {
			p.add(kv.v.Line, key("url"), "%s", msg)
		} else {
			r.URL = t
		}
	}

	if kv, ok := f["headers"]; ok {
		first := map[string]int{}
		p.scalarMap(kv, key("headers"), func(e pair, k string) {
			name, ok := p.headerName(e.name, e.k.Line, k)
			if !ok {
				return
			}
			if l, dup := first[name]; dup {
				p.add(e.k.Line, k, "header %s given twice (first at line %d)", name, l)
				return
			}
			first[name] = e.k.Line
			if strings.ContainsAny(e.v.Value, "\r\n\x00") {
				p.add(e.v.Line, k, "a header value cannot contain a line break or NUL")
				return
			}
			if t, ok := p.template(e, k, sc); ok {
				r.Headers = append(r.Headers, Header{Name: name, Value: t})
			}
		})
	}

	if kv, ok := f["body"]; ok {
		if kv.v.Kind == yaml.MappingNode || kv.v.Kind == yaml.SequenceNode {
			p.add(kv.v.Line, key("body"), "want the body as a string, not %s; quote JSON: body: '{\"user\": \"synthetic\"}'", describe(kv.v))
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
	start := p.count()
	n = resolve(n)
	nameLine = n.Line
	f, ok := p.fields(n, path, "an extract: {name: VAR, jsonpath: PATH}, {name: VAR, header: NAME} or {name: VAR, regex: RE}", extractKeys, nil)
	if !ok {
		return ex, nameLine, false
	}
	key := func(k string) string { return path + "." + k }
	if kv, ok := f["name"]; !ok {
		p.add(n.Line, key("name"), "missing: want the variable to set, e.g. name: TOKEN")
	} else if s, ok := p.str(kv, key("name"), "a variable name"); ok {
		nameLine = kv.v.Line
		switch {
		case !identifier(s):
			p.add(kv.v.Line, key("name"), "bad variable name %q: use letters, digits and _, not starting with a digit", s)
		case slices.Contains(builtinVars, s):
			p.add(kv.v.Line, key("name"), "%s is a built-in variable; choose another name", s)
		default:
			ex.Name = s
		}
	}
	src, found := p.oneOf(f, extractSources, path)
	switch {
	case found == 0:
		p.add(n.Line, path, "missing source: want one of jsonpath:, header: or regex:")
	case found > 1:
	case src.name == "jsonpath":
		ex.Kind = ExtractJSONPath
		ex.JSONPath, _ = p.jsonPath(src, key("jsonpath"))
	case src.name == "header":
		ex.Kind = ExtractHeader
		if s, ok := p.str(src, key("header"), "a header name"); ok {
			ex.Header, _ = p.headerName(s, src.v.Line, key("header"))
		}
	case src.name == "regex":
		ex.Kind = ExtractRegex
		ex.Regex, _ = p.regex(src, key("regex"))
	}
	return ex, nameLine, p.count() == start
}

// oneOf returns the one of names that f holds and how many it holds,
// reporting all but the first when there are several.
func (p *parser) oneOf(f map[string]pair, names []string, path string) (pair, int) {
	var got []pair
	for _, name := range names {
		if kv, ok := f[name]; ok {
			got = append(got, kv)
		}
	}
	if len(got) == 0 {
		return pair{}, 0
	}
	sort.SliceStable(got, func(a, b int) bool { return got[a].k.Line < got[b].k.Line })
	for _, kv := range got[1:] {
		p.add(kv.k.Line, joinKey(path, kv.name), "both %s: (line %d) and %s: given; want only one", got[0].name, got[0].k.Line, kv.name)
	}
	return got[0], len(got)
}

// assertion validates one assertion.
func (p *parser) assertion(n *yaml.Node, path string, sc *scope) (a Assertion, ok bool) {
	start := p.count()
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, "an assertion is a mapping such as {status: 200}, not %s", describe(n))
		return a, false
	}
	var main *pair
	var rest []pair
	for _, kv := range p.pairs(n, path, 0) {
		switch {
		case !slices.Contains(assertKeys, kv.name):
			rest = append(rest, kv)
		case main != nil:
			p.add(kv.k.Line, joinKey(path, kv.name), "%s: and %s: in one assertion; write each as its own list item", main.name, kv.name)
		default:
			main = &kv
		}
	}
	if main == nil {
		for _, kv := range rest {
			if !slices.Contains(allAssertOps, kv.name) {
				p.add(kv.k.Line, joinKey(path, kv.name), "unknown assertion%s (want %s)", hint(kv.name, assertKeys, nil, ""), assertForms)
				return a, false
			}
		}
		if len(rest) == 0 {
			p.add(n.Line, path, "empty assertion (want %s)", assertForms)
		} else {
			p.add(n.Line, path, "%s: needs jsonpath: or header: (want %s)", rest[0].name, assertForms)
		}
		return a, false
	}
	ops := assertOps[main.name]
	f := map[string]pair{}
	for _, kv := range rest {
		k := joinKey(path, kv.name)
		switch {
		case slices.Contains(ops, kv.name):
			f[kv.name] = kv
		case slices.Contains(allAssertOps, kv.name):
			p.add(kv.k.Line, k, "%s: does not go with %s: (want %s)", kv.name, main.name, assertForms)
		default:
			p.add(kv.k.Line, k, "unknown key in a %s assertion%s", main.name, hint(kv.name, append(ops[:len(ops):len(ops)], assertKeys...), nil, "want "+assertForms))
		}
	}
	key := joinKey(path, main.name)
	switch main.name {
	case "status":
		a.Kind, a.Status, a.StatusIn = p.status(*main, key)
	case "latency_below":
		a.Kind = AssertLatencyBelow
		a.LatencyBelow, _ = p.duration(*main, key)
	case "body_contains":
		a.Kind = AssertBodyContains
		if t, ok := p.template(*main, key, sc); ok {
			if t.Raw == "" {
				p.add(main.v.Line, key, "empty: want the text the body must contain")
			}
			a.Text = t
		}
	case "jsonpath":
		a.JSONPath, _ = p.jsonPath(*main, key)
		op, found := p.oneOf(f, ops, path)
		opKey := joinKey(path, op.name)
		switch {
		case found == 0:
			p.add(main.k.Line, path, "a jsonpath assertion needs equals: VALUE or exists: true|false")
		case found > 1:
		case op.name == "equals":
			a.Kind = AssertJSONPathEquals
			a.Equals, _ = p.jsonValue(op.v, opKey, 0)
		case op.name == "exists":
			a.Kind = AssertJSONPathExists
			a.Exists, _ = p.boolean(op, opKey)
		}
	case "header":
		a.Kind = AssertHeader
		if s, ok := p.str(*main, key, "a header name"); ok {
			a.Header, _ = p.headerName(s, main.v.Line, key)
		}
		op, found := p.oneOf(f, ops, path)
		opKey := joinKey(path, op.name)
		switch {
		case found == 0:
			p.add(main.k.Line, path, "a header assertion needs equals:, contains:, matches: or exists:")
		case found > 1:
		case op.name == "equals", op.name == "contains":
			a.Op = HeaderEquals
			if op.name == "contains" {
				a.Op = HeaderContains
			}
			if t, ok := p.template(op, opKey, sc); ok {
				if t.Raw == "" && a.Op == HeaderContains {
					p.add(op.v.Line, opKey, "empty: want the text the header must contain")
				}
				a.Text = t
			}
		case op.name == "matches":
			a.Op = HeaderMatches
			a.Regex, _ = p.regex(op, opKey)
		case op.name == "exists":
			a.Op = HeaderExists
			a.Exists, _ = p.boolean(op, opKey)
		}
	}
	return a, p.count() == start
}

// status parses a status assertion's value: a code, or {in: [codes]}.
func (p *parser) status(kv pair, key string) (kind AssertKind, code int, in []int) {
	switch kv.v.Kind {
	case yaml.SequenceNode:
		p.add(kv.v.Line, key, "want a status code, or {in: [CODE, …]} for several")
		return AssertStatus, 0, nil
	case yaml.MappingNode:
		f, _ := p.fields(kv.v, key, "", []string{"in"}, nil)
		list, ok := f["in"]
		if !ok {
			p.add(kv.v.Line, key, "want {in: [CODE, …]}")
			return AssertStatusIn, 0, nil
		}
		items, ok := p.list(list, key+".in", "status codes")
		if ok && len(items) == 0 {
			p.add(list.k.Line, key+".in", "empty: want at least one status code")
		}
		for i, item := range items {
			if c, ok := p.integer(pair{item, resolve(item), ""}, fmt.Sprintf("%s.in[%d]", key, i), 100, 599); ok {
				in = append(in, c)
			}
		}
		return AssertStatusIn, 0, in
	}
	code, _ = p.integer(kv, key, 100, 599)
	return AssertStatus, code, nil
}

// str returns the text of a scalar value; a mapping, a list or no value
// is an error wanting what.
func (p *parser) str(kv pair, key, what string) (string, bool) {
	v := kv.v
	switch {
	case v.Kind != yaml.ScalarNode:
		p.add(v.Line, key, "want %s, not %s", what, describe(v))
		return "", false
	case isNull(v):
		p.add(kv.k.Line, key, "has no value; want %s", what)
		return "", false
	case !p.charge(len(v.Value)>>6, v.Line):
		return "", false
	}
	return v.Value, true
}

// duration parses a duration of more than 0, such as 500ms, 30s or 1m30s.
func (p *parser) duration(kv pair, key string) (time.Duration, bool) {
	s, ok := p.str(kv, key, "a duration such as 500ms, 30s or 1m")
	if !ok {
		return 0, false
	}
	d, err := rules.ParseDuration(s)
	switch {
	case err != nil:
		p.add(kv.v.Line, key, "%v", err)
		return 0, false
	case d <= 0:
		p.add(kv.v.Line, key, "%q is not more than 0", s)
		return 0, false
	}
	return d, true
}

// integer parses a whole number from lo to hi.
func (p *parser) integer(kv pair, key string, lo, hi int) (int, bool) {
	want := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	if lo == 100 && hi == 599 {
		want = "an HTTP status code (100 to 599)"
	}
	s, ok := p.str(kv, key, want)
	if !ok {
		return 0, false
	}
	n, ok := scalarInt(kv.v)
	if !ok {
		p.add(kv.v.Line, key, "want %s, not %s", want, describe(kv.v))
		return 0, false
	}
	if n < int64(lo) || n > int64(hi) {
		p.add(kv.v.Line, key, "%s is out of range: want %s", s, want)
		return 0, false
	}
	return int(n), true
}

// boolean parses true or false.
func (p *parser) boolean(kv pair, key string) (bool, bool) {
	if _, ok := p.str(kv, key, "true or false"); !ok {
		return false, false
	}
	b, ok := scalarBool(kv.v)
	if !ok {
		p.add(kv.v.Line, key, "want true or false, not %s", describe(kv.v))
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
func (p *parser) template(kv pair, key string, sc *scope) (Template, bool) {
	s, ok := p.str(kv, key, "a string")
	if !ok {
		return Template{}, false
	}
	t, err := ParseTemplate(s)
	if err != nil {
		p.add(kv.v.Line, key, "%v", err)
		return Template{}, false
	}
	ok = true
	var seen []string
	for _, part := range t.Parts {
		switch part.Kind {
		case VarEnv:
			if _, set := os.LookupEnv(part.Text); !set {
				p.add(kv.v.Line, key, "environment variable %s is not set (%s is read when the checks are loaded, and at each run)", part.Text, part)
				ok = false
			}
		case VarExtract:
			if !slices.Contains(seen, part.Text) {
				seen = append(seen, part.Text)
				sc.uses = append(sc.uses, varUse{step: sc.cur, line: kv.v.Line, key: key, name: part.Text})
			}
		}
	}
	return t, ok
}

// jsonPath compiles a JSONPath value.
func (p *parser) jsonPath(kv pair, key string) (*JSONPath, bool) {
	s, ok := p.str(kv, key, "a JSONPath such as $.field")
	if !ok {
		return nil, false
	}
	jp, err := CompileJSONPath(s)
	if err != nil {
		p.add(kv.v.Line, key, "%v", err)
		return nil, false
	}
	return jp, true
}

// regex compiles a regular expression value (Go's syntax).
func (p *parser) regex(kv pair, key string) (*regexp.Regexp, bool) {
	s, ok := p.str(kv, key, "a regular expression")
	if !ok {
		return nil, false
	}
	if s == "" {
		p.add(kv.v.Line, key, "empty regular expression")
		return nil, false
	}
	re, err := regexp.Compile(s)
	if err != nil {
		p.add(kv.v.Line, key, "bad regular expression: %s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		return nil, false
	}
	return re, true
}

// headerName checks an HTTP header name and returns it canonical.
func (p *parser) headerName(s string, line int, key string) (string, bool) {
	if !isToken(s) {
		p.add(line, key, "%q is not a valid header name (letters, digits and !#$%%&'*+-.^_`|~)", s)
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

// scalarMap calls fn with each entry of the mapping kv.v and its key,
// after checking that the value is a scalar. An empty value has no
// entries.
func (p *parser) scalarMap(kv pair, path string, fn func(e pair, key string)) {
	switch {
	case isNull(kv.v):
		return
	case kv.v.Kind != yaml.MappingNode:
		p.add(kv.v.Line, path, "want a mapping of names to strings, not %s", describe(kv.v))
		return
	}
	for _, e := range p.pairs(kv.v, path, 0) {
		key := joinKey(path, e.name)
		if _, ok := p.str(e, key, "a string"); ok {
			fn(e, key)
		}
	}
}

// jsonValue converts a YAML value to what encoding/json decodes the same
// JSON into: nil, bool, float64, string, []any or map[string]any. Errors
// name key, the equals: key, and the line of the value at fault.
func (p *parser) jsonValue(n *yaml.Node, key string, depth int) (any, bool) {
	n = resolve(n)
	if depth > maxValueDepth {
		p.add(n.Line, key, "value nested more than %d deep", maxValueDepth)
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
			p.add(n.Line, key, "%s is not a JSON number", n.Value)
			return nil, false
		}
		if !p.charge(len(n.Value)>>6, n.Line) {
			return nil, false
		}
		return n.Value, true
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, item := range p.items(n) {
			v, ok := p.jsonValue(item, key, depth+1)
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	case yaml.MappingNode:
		out := map[string]any{}
		for _, e := range p.pairs(n, key, 0) {
			v, ok := p.jsonValue(e.v, key, depth+1)
			if !ok {
				return nil, false
			}
			out[e.name] = v
		}
		return out, true
	}
	p.add(n.Line, key, "want a value, not %s", describe(n))
	return nil, false
}

// fmtDuration formats d without Go's trailing zero units ("1m", not
// "1m0s").
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// isNull reports whether n is YAML's null (an empty value, ~ or null).
func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// describe names a node's kind for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "an empty value"
		case "!!int", "!!float":
			return "the number " + clip(n.Value, 64)
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(clip(n.Value, 64))
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "nothing"
}

// joinKey appends key to the dotted path.
func joinKey(path, key string) string {
	if path == "" {
		return clip(key, 64)
	}
	return path + "." + clip(key, 64)
}

// orList writes "a, b or c".
func orList(l []string) string {
	if len(l) < 2 {
		return strings.Join(l, "")
	}
	return strings.Join(l[:len(l)-1], ", ") + " or " + l[len(l)-1]
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

// nearest returns the one of valid closest to k, ignoring case: within an
// edit distance of 2, or else sharing its first word (status_code and
// status, body_matches and body_contains); "" when none is.
func nearest(k string, valid []string) string {
	lk := strings.ToLower(k)
	best, bd := "", 3
	for _, v := range valid {
		if d := editDistance(lk, strings.ToLower(v)); d < bd {
			best, bd = v, d
		}
	}
	if best != "" {
		return best
	}
	word, _, _ := strings.Cut(lk, "_")
	for _, v := range valid {
		if w, _, _ := strings.Cut(strings.ToLower(v), "_"); len(word) >= 3 && w == word {
			return v
		}
	}
	return ""
}

// editDistance is the Levenshtein distance of short strings (large when
// either is long).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
