package policies

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/yamlfile"
	"github.com/flowscope/flowscope/yamlfile/yamlfiletest"
)

// parsePolicies adapts Parse to yamlfiletest.Parse.
func parsePolicies(file string, data []byte) ([]Policy, error) {
	s, err := Parse(file, data)
	if s == nil {
		return nil, err
	}
	return s.Policies, err
}

func parseFile(t *testing.T, path string) (*Set, error) {
	t.Helper()
	return yamlfiletest.ParseFile(t, path, Parse)
}

func ptr[T any](v T) *T { return &v }

func TestParseFull(t *testing.T) {
	const file = "testdata/valid/full.yml"
	s, err := parseFile(t, file)
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		Name     string
		Kind     Kind
		From, To []string
		Arch     string
		Level    aggregate.Level
		Line     int
	}
	want := []view{
		{"no-direct-db", KindDeny, []string{"web*"}, []string{"mysql*"}, "", aggregate.LevelService, 4},
		{"payments-callers", KindAllowOnly, []string{"checkout", "refunds"}, []string{"payments"}, "", aggregate.LevelService, 6},
		{"as-designed", KindDenyUndeclared, nil, nil, "lamp", aggregate.LevelService, 8},
		{"zones.as-designed", KindDenyUndeclared, nil, nil, "lamp", aggregate.LevelZone, 11},
		{"no:outbound_from-shop", KindDeny, []string{"shop/*"}, nil, "", aggregate.LevelInstance, 14},
		{"nothing-into-legacy", KindDeny, nil, []string{"legacy-[a-c]?", `old\*`}, "", aggregate.LevelRegion, 18},
	}
	var got []view
	for _, p := range s.Policies {
		if p.File != file {
			t.Errorf("policy %s: file %q", p.Name, p.File)
		}
		if len(p.from) != len(p.From) || len(p.to) != len(p.To) {
			t.Errorf("policy %s: %d/%d compiled globs for %q/%q", p.Name, len(p.from), len(p.to), p.From, p.To)
		}
		got = append(got, view{p.Name, p.Kind, p.From, p.To, p.Arch, p.Level, p.Line})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("policies\n%+v\nwant\n%+v", got, want)
	}
	wantLint := map[string]LintSetting{
		"chain_depth": {Threshold: ptr(5.0), Severity: "warning"},
		"fan_out":     {Threshold: ptr(10.0)},
		"retry_storm": {Threshold: ptr(0.1), Severity: "critical"},
		"cycle":       {Enabled: ptr(false)},
	}
	if !reflect.DeepEqual(s.Lint, wantLint) {
		t.Errorf("lint %s, want %s", lintString(s.Lint), lintString(wantLint))
	}
	if !reflect.DeepEqual(s.Files, []string{file}) {
		t.Errorf("files %q", s.Files)
	}
	if l := s.Levels(); !reflect.DeepEqual(l, []aggregate.Level{aggregate.LevelService, aggregate.LevelInstance, aggregate.LevelZone, aggregate.LevelRegion}) {
		t.Errorf("levels %v", l)
	}
}

func lintString(m map[string]LintSetting) string {
	var b strings.Builder
	for _, r := range LintRules {
		s, ok := m[r]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "%s{", r)
		if s.Threshold != nil {
			fmt.Fprintf(&b, "threshold %v ", *s.Threshold)
		}
		if s.Severity != "" {
			fmt.Fprintf(&b, "severity %s ", s.Severity)
		}
		if s.Enabled != nil {
			fmt.Fprintf(&b, "enabled %v", *s.Enabled)
		}
		b.WriteString("} ")
	}
	return b.String()
}

func TestParseOtherValid(t *testing.T) {
	s, err := parseFile(t, "testdata/valid/lintonly.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Policies) != 0 || !reflect.DeepEqual(s.Lint, map[string]LintSetting{"fan_in": {Threshold: ptr(20.0), Severity: "info", Enabled: ptr(true)}}) {
		t.Errorf("lintonly: %+v %s", s.Policies, lintString(s.Lint))
	}
	s, err = parseFile(t, "testdata/valid/emptylist.yml")
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Policies) != 0 || len(s.Lint) != 0 || len(s.Levels()) != 0 {
		t.Errorf("emptylist: %+v", s)
	}
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
		{"syntax.yml", []want{{3, "", "YAML syntax error: did not find expected ',' or ']'"}}},
		{"empty.yml", []want{{0, "", "empty file: want `policies:` or `lint:`"}}},
		{"twodocs.yml", []want{{2, "", "a second YAML document"}}},
		{"notlist.yml", []want{{2, "policies", "must be a list of policies, not a mapping"}}},
		{"top.yml", []want{
			{1, "polices", `unknown key: did you mean "policies"?`},
			{4, "rules", "alert rules go in their own file"},
		}},
		{"keys.yml", []want{
			{3, "policies[0].deny.form", `unknown key: did you mean "from"?`},
			{4, "policies[1]", "missing: want one of deny:, allow_only: or deny_undeclared:"},
			{5, "policies[1].dney", `unknown key: did you mean "deny"?`},
			{7, "policies[2].from", "from and to go inside deny: or allow_only:"},
			{9, "policies[3]", `a policy must be a mapping (name:, and deny:, allow_only: or deny_undeclared:), not "just-a-string"`},
		}},
		{"globs.yml", []want{
			{3, "policies[0].deny.from", `glob "web[": unterminated character class (missing ])`},
			{5, "policies[1].deny.from", `glob "[z-a]*": bad range z-a`},
			{7, "policies[2].deny.to", `glob "db[]": empty character class`},
			{9, "policies[3].deny.to", `ends with an unfinished escape`},
			{11, "policies[4].deny.to", "empty glob"},
			{13, "policies[5].deny.to", "empty list; want at least one glob"},
			{15, "policies[6].allow_only.from[1]", `glob "bad[": unterminated character class`},
			{15, "policies[6].allow_only.from[2]", "want a glob such as \"web*\" or a list of globs, not a mapping"},
		}},
		{"endpoints.yml", []want{
			{3, "policies[0].deny", "deny needs from:, to: or both (a missing one means any node)"},
			{5, "policies[1].allow_only.from", "missing: allow_only needs from:"},
			{7, "policies[2].allow_only.to", "missing: allow_only needs to:"},
			{10, "policies[3].deny_undeclared", "both deny: (line 9) and deny_undeclared: given"},
			{11, "policies[4]", "missing: want one of deny:, allow_only: or deny_undeclared:"},
			{14, "policies[5].deny", `want a mapping such as {from: "web*", to: "mysql*"}, not "web"`},
			{16, "policies[6].deny_undeclared", "want a name, not a list"},
			{18, "policies[7].deny.to", "has no value"},
		}},
		{"names.yml", []want{
			{4, "policies[1].name", `duplicate policy name "same" (first defined at testdata/invalid/names.yml:2)`},
			{6, "policies[2].name", "missing: every policy needs a name"},
			{7, "policies[3].name", `name "has space" is not valid: want letters, digits, _ . : and - only`},
			{9, "policies[4].name", "empty name"},
			{11, "policies[5].name", "want a name, not a list"},
		}},
		{"levels.yml", []want{
			{4, "policies[0].level", `unknown level "zones": did you mean "zone"?`},
			{7, "policies[1].level", `unknown level "planet"; want service, instance, zone, region or namespace`},
			{10, "policies[2].level", "empty; leave the key out for the default, service"},
		}},
		{"lint.yml", []want{
			{3, "lint.fanout", `unknown lint rule: did you mean "fan_out"?`},
			{4, "lint.chain_depth.threshold", "-1 is negative; thresholds are >= 0"},
			{5, "lint.fan_in.severity", `unknown severity "fatal"; want info, warning or critical`},
			{6, "lint.cycle.enabled", `want true or false, not "no"`},
			{7, "lint.retry_storm.threshold", `want a number ≥ 0, not "10%"`},
			{8, "lint.availability", "want a mapping such as {threshold: 5, severity: warning, enabled: true}, not the number 5"},
			{9, "lint.single_point", "has no value"},
			{10, "lint.timeout_budget.treshold", `unknown key: did you mean "threshold"?`},
			{11, "lint.fan_out.threshold", ".inf is not a finite number"},
		}},
		{"lintnotmap.yml", []want{{1, "lint", "want a mapping of lint rules to their settings"}}},
		{"types.yml", []want{
			{3, "policies[0].deny.to", "not the boolean true"},
			{5, "policies[1].deny.to[1]", "not an empty value"},
			{6, "policies[1].level", `unknown level "3"`},
		}},
	}
	files, _ := filepath.Glob("testdata/invalid/*.yml")
	if len(files) != len(cases) {
		t.Errorf("%d files in testdata/invalid, %d cases", len(files), len(cases))
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := "testdata/invalid/" + c.file
			s, err := parseFile(t, path)
			if err == nil || s != nil {
				t.Fatalf("no error (set %+v)", s)
			}
			errs := yamlfiletest.Errors(t, err)
			if len(errs) != len(c.want) {
				t.Fatalf("%d errors, want %d:\n%v", len(errs), len(c.want), err)
			}
			for i, w := range c.want {
				e := errs[i]
				if e.File != path || e.Line != w.line || e.Key != w.key || !strings.Contains(e.Msg, w.msg) {
					t.Errorf("error %d: %v\nwant %s:%d: %s: …%s…", i, e, path, w.line, w.key, w.msg)
				}
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Run("dir", func(t *testing.T) {
		s, err := Load("testdata/dir")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range s.Policies {
			names = append(names, p.Name+"@"+filepath.Base(p.File))
		}
		if !reflect.DeepEqual(names, []string{"a@a.yml", "b@b.yaml"}) {
			t.Errorf("policies %q", names)
		}
		if !reflect.DeepEqual(s.Files, []string{filepath.Join("testdata/dir", "a.yml"), filepath.Join("testdata/dir", "b.yaml")}) {
			t.Errorf("files %q (notes.txt and sub/ are not read)", s.Files)
		}
		if !reflect.DeepEqual(s.Lint, map[string]LintSetting{"fan_out": {Threshold: ptr(12.0)}}) {
			t.Errorf("lint %s", lintString(s.Lint))
		}
	})
	t.Run("file", func(t *testing.T) {
		s, err := Load("testdata/valid/full.yml")
		if err != nil || len(s.Policies) != 6 {
			t.Fatalf("%v %+v", err, s)
		}
	})
	empty := t.TempDir()
	bad := []struct {
		name, path string
		want       yamlfile.Error
	}{
		{"duplicate name", "testdata/dupdir", yamlfile.Error{File: "testdata/dupdir/b.yml", Line: 4, Key: "policies[1].name",
			Msg: `duplicate policy name "a" (also defined at testdata/dupdir/a.yml:2); names must be unique across the policies files`}},
		{"lint rule twice", "testdata/lintdupdir", yamlfile.Error{File: "testdata/lintdupdir/b.yml", Line: 2, Key: "lint.fan_out",
			Msg: "lint rule fan_out is also set at testdata/lintdupdir/a.yml:2; set each rule in one file"}},
		{"missing", "testdata/nope", yamlfile.Error{File: "testdata/nope", Msg: "no such file or directory"}},
		{"no files", empty, yamlfile.Error{File: empty, Msg: "no policies files (*.yml or *.yaml) in this directory"}},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			s, err := Load(c.path)
			if err == nil || s != nil {
				t.Fatalf("no error: %+v", s)
			}
			errs := yamlfiletest.Errors(t, err)
			if len(errs) != 1 || *errs[0] != c.want {
				t.Fatalf("errors %v, want %v", err, &c.want)
			}
		})
	}
	t.Run("one bad file refuses all", func(t *testing.T) {
		dir := t.TempDir()
		yamlfiletest.WriteFile(t, dir, "a.yml", "policies:\n  - {name: a, deny: {to: db}}\n")
		yamlfiletest.WriteFile(t, dir, "b.yml", "policies:\n  - {name: b, deny: {to: 'db['}}\n")
		s, err := Load(dir)
		if s != nil || err == nil || !strings.Contains(err.Error(), "b.yml:2: policies[0].deny.to: glob") {
			t.Fatalf("%+v %v", s, err)
		}
	})
}

func TestParseLimits(t *testing.T) {
	big := make([]byte, MaxFileSize+1)
	for i := range big {
		big[i] = '#'
	}
	_, err := Parse("big.yml", big)
	if err == nil || !strings.Contains(err.Error(), "big.yml: file larger than 4194304 bytes (4 MiB)") {
		t.Errorf("big file: %v", err)
	}
	var b strings.Builder
	b.WriteString("policies:\n")
	for i := range MaxPolicies + 1 {
		fmt.Fprintf(&b, "  - {name: p%d, deny: {to: x}}\n", i)
	}
	_, err = Parse("many.yml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "many.yml:2: policies: 1001 policies; a policy set holds at most 1000") {
		t.Errorf("many policies: %v", err)
	}
	// Across files.
	dir := t.TempDir()
	for f := range 2 {
		b.Reset()
		b.WriteString("policies:\n")
		for i := range MaxPolicies/2 + 1 {
			fmt.Fprintf(&b, "  - {name: f%dp%d, deny: {to: x}}\n", f, i)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.yml", f)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err = Load(dir)
	if err == nil || !strings.Contains(err.Error(), "1002 policies in all; a policy set holds at most 1000") {
		t.Errorf("many policies in a directory: %v", err)
	}
	// Aliases that multiply the work are bounded.
	b.Reset()
	b.WriteString("x-a: &a [")
	for i := range 1000 {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "g%d", i)
	}
	b.WriteString("]\npolicies:\n")
	for i := range 600 {
		fmt.Fprintf(&b, "  - {name: p%d, deny: {to: *a}}\n", i)
	}
	_, err = Parse("alias.yml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "too many YAML values") {
		t.Errorf("alias bomb: %v", err)
	}
}

// TestParseSameTwice checks, with the helper of every yamlfile parser,
// that the errors name the file and that parsing is deterministic.
func TestParseSameTwice(t *testing.T) {
	files, _ := filepath.Glob("testdata/*/*.y*ml")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		yamlfiletest.Parse(t, parsePolicies, f, data)
	}
}
