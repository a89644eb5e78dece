package policies

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/yamlfile"
)

// Limits of a policy set.
const (
	// MaxFileSize is the largest policies file Parse and Load accept, in
	// bytes.
	MaxFileSize = 4 << 20
	// MaxPolicies is the most policies a set (a file, or all the files of
	// a directory) may hold: each is checked against every edge of the
	// flow graph every few seconds.
	MaxPolicies = 1000
	// MaxNameLen is the longest policy name, in bytes.
	MaxNameLen = 200
	// maxErrors is how many errors one Parse or Load reports in full; the
	// rest are counted in a last error.
	maxErrors = 1000
	// maxWork bounds the work (and memory) of parsing one file
	// (yamlfile.Collector.SetBudget): about what MaxFileSize holds
	// without aliases.
	maxWork = 1 << 19
)

// The keys of each mapping, in the order they are documented.
var (
	topKeys      = []string{"policies", "lint"}
	policyKeys   = []string{"name", "deny", "allow_only", "deny_undeclared", "level"}
	kindKeys     = []string{string(KindDeny), string(KindAllowOnly), string(KindDenyUndeclared)}
	endpointKeys = []string{"from", "to"}
	lintKeys     = []string{"threshold", "severity", "enabled"}
	levelNames   = []string{"service", "instance", "zone", "region", "namespace"}
)

// nameRE is what a policy name is made of.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// Parse reads one policies file: a YAML document with a `policies:` list
// and a `lint:` mapping, either optional but not both (DESIGN.md
// "Architecture rules (contract)"; docs/architecture-rules.md). name names
// the file in errors, in each Policy's File and in Set.Files. The whole
// file is validated: on failure Parse returns a nil Set and an error
// joining (errors.Join) one *yamlfile.Error per problem, each
// "FILE:LINE: KEY: MESSAGE" with KEY like "policies[2].deny.from" (lists
// are numbered from 0). Other top-level keys are errors, except those
// beginning with "x-", which are ignored (a place for YAML anchors); merge
// keys (<<) work in every mapping. An empty file is an error.
func Parse(name string, data []byte) (*Set, error) {
	l := newLoader(name)
	l.file(name, data)
	return l.result()
}

// Load reads the policies at path: one file, or every *.yml and *.yaml
// file of a directory (not its subdirectories; names starting with "."
// are skipped, symbolic links are followed), in name order, as one set.
// Policy names must be unique across the files, and each lint rule may be
// set in one file only. A missing path, a directory without policies
// files, a file over MaxFileSize and a set of more than MaxPolicies
// policies are errors. Like Parse, Load validates everything and returns
// a nil Set and all the errors (each a *yamlfile.Error, joined) when
// anything is wrong in any file: the caller keeps the set it had.
func Load(path string) (*Set, error) {
	l := newLoader(path)
	files := l.top.Files(path)
	if len(files) == 0 {
		if l.top.Count() == 0 {
			l.top.Add(0, "", "no policies files (*.yml or *.yaml) in this directory")
		}
		return l.result()
	}
	for _, file := range files {
		data, err := yamlfile.ReadFile(file, MaxFileSize)
		if err != nil {
			l.top.FileErr(file, err)
			continue
		}
		l.file(file, data)
	}
	if n := len(l.set.Policies); n > MaxPolicies && len(files) > 1 {
		l.top.Add(0, "", "%d policies in all; a policy set holds at most %d", n, MaxPolicies)
	}
	return l.result()
}

// origin is where a name was defined.
type origin struct {
	file string
	line int
}

// loader reads the files of a set.
type loader struct {
	// top collects the errors of the set rather than of one file's
	// content (file system, limits).
	top   *yamlfile.Collector
	errs  []error // of the files, each sorted by line
	set   Set
	names map[string]origin // policy name → where defined
	lint  map[string]origin // lint rule → where set
}

func newLoader(path string) *loader {
	return &loader{
		top:   &yamlfile.Collector{File: path, Describe: describe},
		set:   Set{Lint: map[string]LintSetting{}},
		names: map[string]origin{},
		lint:  map[string]origin{},
	}
}

// file parses one file and adds what it defines to the set, or its
// errors to l.errs.
func (l *loader) file(file string, data []byte) {
	l.set.Files = append(l.set.Files, file)
	p := &parser{Collector: &yamlfile.Collector{File: file, Describe: describe}}
	p.SetBudget(maxWork)
	f := p.parse(data)
	if p.Count() == 0 {
		// Names and lint rules defined by another file.
		for i, pol := range f.policies {
			if o, dup := l.names[pol.Name]; dup {
				p.Add(f.nameLines[i], fmt.Sprintf("policies[%d].name", f.index[i]),
					"duplicate policy name %q (also defined at %s:%d); names must be unique across the policies files", pol.Name, o.file, o.line)
			}
		}
		for _, rule := range LintRules {
			line, ok := f.lintLines[rule]
			if !ok {
				continue
			}
			if o, dup := l.lint[rule]; dup {
				p.Add(line, "lint."+rule, "lint rule %s is also set at %s:%d; set each rule in one file", rule, o.file, o.line)
			}
		}
	}
	if err := p.Err(); err != nil {
		errs := err.(interface{ Unwrap() []error }).Unwrap()
		slices.SortStableFunc(errs, func(a, b error) int {
			return cmp.Compare(lineOf(a), lineOf(b))
		})
		l.errs = append(l.errs, errs...)
		return
	}
	for i, pol := range f.policies {
		l.names[pol.Name] = origin{file, f.nameLines[i]}
		l.set.Policies = append(l.set.Policies, pol)
	}
	for rule, s := range f.lint {
		l.lint[rule] = origin{file, f.lintLines[rule]}
		l.set.Lint[rule] = s
	}
}

func lineOf(err error) int {
	var e *yamlfile.Error
	if errors.As(err, &e) {
		return e.Line
	}
	return 0
}

// result returns the set, or the errors: at most maxErrors of them, and
// the count of the others.
func (l *loader) result() (*Set, error) {
	errs := l.errs
	if err := l.top.Err(); err != nil {
		errs = append(err.(interface{ Unwrap() []error }).Unwrap(), errs...)
	}
	if len(errs) == 0 {
		set := l.set
		set.order = policyOrder(set.Policies)
		return &set, nil
	}
	if len(errs) > maxErrors {
		more := len(errs) - maxErrors
		errs = append(errs[:maxErrors:maxErrors], &yamlfile.Error{File: l.top.File, Msg: fmt.Sprintf("%d more errors not shown", more)})
	}
	return nil, errors.Join(errs...)
}

// parsedFile is what one file defines.
type parsedFile struct {
	policies  []Policy
	nameLines []int // nameLines[i]: the line of policies[i]'s name
	index     []int // index[i]: the index of policies[i] in the file's list
	lint      map[string]LintSetting
	lintLines map[string]int // lint rule → the line of its key
}

// parser reads a policies file, reporting its problems to its Collector.
type parser struct{ *yamlfile.Collector }

// parse parses data.
func (p *parser) parse(data []byte) parsedFile {
	var f parsedFile
	if int64(len(data)) > MaxFileSize {
		p.Add(0, "", "%v", &yamlfile.TooLargeError{Limit: MaxFileSize})
		return f
	}
	root := p.root(data)
	if root == nil {
		return f
	}
	var list, lint *yaml.Node
	for _, kv := range p.Pairs(root, "") {
		switch {
		case kv.Name == "policies":
			list = kv.V
		case kv.Name == "lint":
			lint = kv.V
		case strings.HasPrefix(kv.Name, "x-"):
			// An extension: anchors for the policies to reuse.
		case kv.Name == "rules":
			p.Add(kv.K.Line, kv.Name, "unknown key: alert rules go in their own file (--rules); this file holds `policies:` and `lint:`")
		default:
			p.Add(kv.K.Line, kv.Name, "unknown key%s (the file holds `policies:`, `lint:`, and x-… keys for anchors)", suggest(kv.Name, topKeys))
		}
	}
	if list == nil && lint == nil && p.Count() == 0 {
		p.Add(root.Line, "", "want `policies:` (a list of policies), `lint:` (settings of the lint rules) or both")
	}
	if list != nil {
		p.policies(list, &f)
	}
	if lint != nil {
		f.lint, f.lintLines = p.lint(lint)
	}
	return f
}

// root decodes data, one YAML document, and returns the mapping at its
// top; nil, with the problem reported, when there is none.
func (p *parser) root(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.Add(0, "", "empty file: want `policies:` or `lint:`")
		} else {
			p.syntaxErr(data, err)
		}
		return nil
	}
	var extra yaml.Node
	if err := decode(dec, &extra); err == nil {
		p.Add(extra.Line, "", "a second YAML document; a policies file holds one")
	} else if !errors.Is(err, io.EOF) {
		p.syntaxErr(data, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			p.Add(0, "", "empty file: want `policies:` or `lint:`")
			return nil
		}
		root = root.Content[0]
	}
	root = yamlfile.Resolve(root)
	if root.Kind != yaml.MappingNode {
		p.Add(root.Line, "", "want a mapping with `policies:` and `lint:`, not %s", describe(root))
		return nil
	}
	return root
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

// syntaxFormat reads YAML syntax errors the way every Flowscope file does:
// yamlfile reports them (with the line numbers of yaml.v3's parser
// corrected) only through Format, so syntaxErr has it parse the file and
// keeps its syntax errors.
var syntaxFormat = &yamlfile.Format[struct{}]{
	Key: "policies", File: "policies file", Set: "policy set", NameKey: "name", Name: "policy name",
	MaxSize: MaxFileSize, MaxItems: math.MaxInt, MaxErrors: maxErrors, Budget: maxWork,
	Item: func(*yamlfile.Collector, int, *yaml.Node) (struct{}, string, int, bool) {
		return struct{}{}, "", 0, true
	},
}

// syntaxErrPrefix begins the messages of yamlfile's syntax errors.
const syntaxErrPrefix = "YAML syntax error: "

// syntaxErr reports err, an error of the YAML decoder on data.
func (p *parser) syntaxErr(data []byte, err error) {
	_, ferr := syntaxFormat.Parse(p.File, data)
	found := false
	if j, ok := ferr.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if ye, ok := e.(*yamlfile.Error); ok && strings.HasPrefix(ye.Msg, syntaxErrPrefix) {
				p.Add(ye.Line, ye.Key, "%s", ye.Msg)
				found = true
			}
		}
	}
	if !found {
		p.Add(0, "", "%s%s", syntaxErrPrefix, strings.TrimPrefix(err.Error(), "yaml: "))
	}
}

// policies parses the `policies:` list into f.
func (p *parser) policies(list *yaml.Node, f *parsedFile) {
	switch {
	case yamlfile.IsNull(list):
		return
	case list.Kind != yaml.SequenceNode:
		p.Add(list.Line, "policies", "must be a list of policies, not %s", describe(list))
		return
	case len(list.Content) > MaxPolicies:
		p.Add(list.Line, "policies", "%d policies; a policy set holds at most %d", len(list.Content), MaxPolicies)
		return
	}
	first := map[string]int{}
	for i, n := range p.Items(list) {
		pol, nameLine, ok := p.policy(i, n)
		if pol.Name != "" {
			if l, dup := first[pol.Name]; dup {
				p.Add(nameLine, fmt.Sprintf("policies[%d].name", i), "duplicate policy name %q (first defined at %s:%d)", pol.Name, p.File, l)
				ok = false
			} else {
				first[pol.Name] = nameLine
			}
		}
		if ok {
			f.policies = append(f.policies, pol)
			f.nameLines = append(f.nameLines, nameLine)
			f.index = append(f.index, i)
		}
	}
}

// policy validates policies[i]; nameLine is the line of its name.
func (p *parser) policy(i int, n *yaml.Node) (pol Policy, nameLine int, ok bool) {
	start := p.Count()
	path := fmt.Sprintf("policies[%d]", i)
	key := func(name string) string { return path + "." + name }
	n = yamlfile.Resolve(n)
	if n.Kind != yaml.MappingNode {
		p.Add(n.Line, path, "a policy must be a mapping (name:, and deny:, allow_only: or deny_undeclared:), not %s", describe(n))
		return pol, n.Line, false
	}
	pol.File, pol.Line = p.File, n.Line
	f := map[string]yamlfile.Pair{}
	var kinds []yamlfile.Pair
	for _, kv := range p.Pairs(n, path) {
		if !slices.Contains(policyKeys, kv.Name) {
			p.Add(kv.K.Line, key(kv.Name), "unknown key%s", suggestPolicyKey(kv.Name))
			continue
		}
		f[kv.Name] = kv
		if slices.Contains(kindKeys, kv.Name) {
			kinds = append(kinds, kv)
		}
	}

	// name
	nameLine = n.Line
	if kv, ok := f["name"]; !ok {
		p.Add(n.Line, key("name"), "missing: every policy needs a name")
	} else {
		nameLine = kv.V.Line
		pol.Name, _ = p.Name(kv, key("name"), checkName)
	}

	// level
	if kv, ok := f["level"]; ok {
		if s, ok := p.Scalar(kv, key("level"), "a level (service, instance, zone, region or namespace)"); ok {
			l, err := aggregate.ParseLevel(s)
			switch {
			case s == "":
				p.Add(kv.V.Line, key("level"), "empty; leave the key out for the default, service")
			case err != nil:
				p.Add(kv.V.Line, key("level"), "unknown level %q%s; want service, instance, zone, region or namespace", s, suggest(s, levelNames))
			default:
				pol.Level = l
			}
		}
	}

	// deny, allow_only, deny_undeclared
	switch len(kinds) {
	case 0:
		p.Add(n.Line, path, "missing: want one of deny:, allow_only: or deny_undeclared:")
	case 1:
		kv := kinds[0]
		pol.Kind = Kind(kv.Name)
		switch pol.Kind {
		case KindDeny, KindAllowOnly:
			p.endpoints(kv, key(kv.Name), &pol)
		case KindDenyUndeclared:
			pol.Arch, _ = p.Name(kv, key(kv.Name), checkArch)
		}
	default:
		for _, kv := range kinds[1:] {
			p.Add(kv.K.Line, key(kv.Name), "both %s: (line %d) and %s: given; a policy has exactly one of deny:, allow_only: and deny_undeclared:",
				kinds[0].Name, kinds[0].K.Line, kv.Name)
		}
	}
	return pol, nameLine, p.Count() == start
}

// checkName returns why s is not a valid policy name, "" when it is.
func checkName(s string) string {
	if msg := yamlfile.CheckName(s, MaxNameLen); msg != "" {
		return msg
	}
	if !nameRE.MatchString(s) {
		return fmt.Sprintf("name %q is not valid: want letters, digits, _ . : and - only", s)
	}
	return ""
}

// checkArch returns why s is not a valid architecture name, "" when it is.
func checkArch(s string) string {
	if msg := yamlfile.CheckName(s, store.MaxArchitectureNameLen); msg != "" {
		return "architecture " + msg
	}
	return ""
}

// endpoints parses the {from:, to:} of a deny or allow_only policy into
// pol.
func (p *parser) endpoints(kv yamlfile.Pair, path string, pol *Policy) {
	if kv.V.Kind != yaml.MappingNode {
		p.Add(kv.V.Line, path, "want a mapping such as {from: \"web*\", to: \"mysql*\"}, not %s", describe(kv.V))
		return
	}
	var from, to *yamlfile.Pair
	for _, e := range p.Pairs(kv.V, path) {
		switch e.Name {
		case "from":
			from = &e
		case "to":
			to = &e
		default:
			p.Add(e.K.Line, yamlfile.JoinKey(path, e.Name), "unknown key%s; want from or to", suggest(e.Name, endpointKeys))
		}
	}
	switch {
	case pol.Kind == KindDeny && from == nil && to == nil:
		p.Add(kv.K.Line, path, "deny needs from:, to: or both (a missing one means any node)")
	case pol.Kind == KindAllowOnly && to == nil:
		p.Add(kv.K.Line, path+".to", "missing: allow_only needs to: (the nodes it protects) and from: (the only callers allowed)")
	case pol.Kind == KindAllowOnly && from == nil:
		p.Add(kv.K.Line, path+".from", "missing: allow_only needs from: (the only callers allowed to call to:)")
	}
	if from != nil {
		pol.From, pol.from = p.globList(*from, path+".from")
	}
	if to != nil {
		pol.To, pol.to = p.globList(*to, path+".to")
	}
}

// globWant is what a from or to should be, for messages.
const globWant = `a glob such as "web*" or a list of globs`

// globList parses a glob or a list of globs.
func (p *parser) globList(kv yamlfile.Pair, path string) ([]string, globs) {
	var items []*yaml.Node
	switch v := kv.V; {
	case yamlfile.IsNull(v):
		p.Add(kv.K.Line, path, "has no value; want %s", globWant)
		return nil, nil
	case v.Kind == yaml.SequenceNode:
		items = p.Items(v)
		if len(v.Content) == 0 {
			p.Add(v.Line, path, "empty list; want at least one glob")
			return nil, nil
		}
	default:
		items = []*yaml.Node{v}
	}
	var pats []string
	var gs globs
	for j, n := range items {
		key := path
		if kv.V.Kind == yaml.SequenceNode {
			key = fmt.Sprintf("%s[%d]", path, j)
		}
		n = yamlfile.Resolve(n)
		if n.Kind != yaml.ScalarNode || yamlfile.IsNull(n) || n.Tag == "!!bool" {
			p.Add(n.Line, key, "want %s, not %s", globWant, describe(n))
			continue
		}
		if !p.Charge(len(n.Value)>>6, n.Line) {
			return nil, nil
		}
		g, err := compileGlob(n.Value)
		if err != nil {
			p.Add(n.Line, key, "%v", err)
			continue
		}
		pats = append(pats, n.Value)
		gs = append(gs, g)
	}
	return pats, gs
}

// lint parses the `lint:` mapping.
func (p *parser) lint(n *yaml.Node) (map[string]LintSetting, map[string]int) {
	out, lines := map[string]LintSetting{}, map[string]int{}
	switch {
	case yamlfile.IsNull(n):
		return out, lines
	case n.Kind != yaml.MappingNode:
		p.Add(n.Line, "lint", "want a mapping of lint rules to their settings, such as {fan_out: {threshold: 10}}, not %s", describe(n))
		return out, lines
	}
	for _, kv := range p.Pairs(n, "lint") {
		key := yamlfile.JoinKey("lint", kv.Name)
		if !slices.Contains(LintRules, kv.Name) {
			p.Add(kv.K.Line, key, "unknown lint rule%s; want %s", suggest(kv.Name, LintRules), yamlfile.OrList(LintRules))
			continue
		}
		if kv.V.Kind != yaml.MappingNode {
			if yamlfile.IsNull(kv.V) {
				p.Add(kv.K.Line, key, "has no value; want a mapping such as {threshold: 5, severity: warning, enabled: true}")
			} else {
				p.Add(kv.V.Line, key, "want a mapping such as {threshold: 5, severity: warning, enabled: true}, not %s", describe(kv.V))
			}
			continue
		}
		if s, ok := p.lintSetting(kv.V, key); ok {
			out[kv.Name] = s
			lines[kv.Name] = kv.K.Line
		}
	}
	return out, lines
}

// lintSetting parses the settings of one lint rule.
func (p *parser) lintSetting(n *yaml.Node, path string) (LintSetting, bool) {
	start := p.Count()
	var s LintSetting
	for _, kv := range p.Pairs(n, path) {
		key := yamlfile.JoinKey(path, kv.Name)
		switch kv.Name {
		case "threshold":
			if v, ok := p.threshold(kv, key); ok {
				s.Threshold = &v
			}
		case "severity":
			v, ok := p.Scalar(kv, key, "info, warning or critical")
			switch {
			case !ok:
			case !slices.Contains(Severities, v):
				p.Add(kv.V.Line, key, "unknown severity %q%s; want info, warning or critical", v, suggest(v, Severities))
			default:
				s.Severity = v
			}
		case "enabled":
			var b bool
			if kv.V.Kind != yaml.ScalarNode || kv.V.Tag != "!!bool" || kv.V.Decode(&b) != nil {
				p.Add(kv.V.Line, key, "want true or false, not %s", describe(kv.V))
				continue
			}
			s.Enabled = &b
		default:
			p.Add(kv.K.Line, key, "unknown key%s; want threshold, severity or enabled", suggest(kv.Name, lintKeys))
		}
	}
	return s, p.Count() == start
}

// threshold parses a lint threshold: a number ≥ 0.
func (p *parser) threshold(kv yamlfile.Pair, key string) (float64, bool) {
	v := kv.V
	if _, ok := p.Scalar(kv, key, "a number ≥ 0"); !ok {
		return 0, false
	}
	var f float64
	if (v.Tag != "!!int" && v.Tag != "!!float") || v.Decode(&f) != nil {
		p.Add(v.Line, key, "want a number ≥ 0, not %s", describe(v))
		return 0, false
	}
	switch {
	case math.IsNaN(f) || math.IsInf(f, 0):
		p.Add(v.Line, key, "%s is not a finite number", v.Value)
		return 0, false
	case f < 0:
		p.Add(v.Line, key, "%s is negative; thresholds are >= 0", v.Value)
		return 0, false
	}
	return f + 0, true // + 0 turns -0 into 0
}

// describe names a node's value for messages, as yamlfile.Describe does
// but quoting numbers in full.
func describe(n *yaml.Node) string {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		return "the number " + yamlfile.Clip(n.Value, 1024)
	}
	return yamlfile.Describe(n)
}

// suggest returns `: did you mean "x"?` for the one of valid nearest to
// k, or "".
func suggest(k string, valid []string) string {
	return yamlfile.DidYouMean(yamlfile.Nearest(k, valid))
}

// suggestPolicyKey explains an unknown policy key.
func suggestPolicyKey(k string) string {
	switch k {
	case "from", "to":
		return ": from and to go inside deny: or allow_only:, such as deny: {from: a, to: b}"
	case "allow", "only", "allow_from":
		return `: did you mean "allow_only"?`
	case "arch", "architecture", "undeclared":
		return `: did you mean "deny_undeclared"? (deny_undeclared: ARCHITECTURE)`
	case "alert", "policy", "id":
		return `: did you mean "name"?`
	}
	if s := suggest(k, policyKeys); s != "" {
		return s
	}
	if s := yamlfile.SameWord(k, policyKeys); s != "" {
		return yamlfile.DidYouMean(s)
	}
	return "; want " + yamlfile.OrList(policyKeys)
}
