package checks

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/yamlfile/yamlfiletest"
)

// FuzzParse checks that Parse never panics, that its errors are *Error
// values naming the file, that it is deterministic, and that every check
// it accepts satisfies the invariants the prober relies on
// (checkInvariants: 1 to MaxSteps steps, Every >= MinEvery,
// 0 < Timeout <= Every, unique names, every variable extracted by an
// earlier step, …). Run it with
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 30s ./synthetics/checks
func FuzzParse(f *testing.F) {
	f.Setenv("SHOP_API_KEY", "secret")
	f.Setenv("FLOWSCOPE_TEST_BASE", "http://base.local")
	yamlfiletest.AddFiles(f, "testdata/*/*.yml", "testdata/*/*.yaml")
	for _, s := range []string{
		"",
		"checks: []",
		check(`{name: s, request: {url: "http://a/${uuid}"}, extract: [{name: T, jsonpath: $.t}], assert: [{status: 200}]}`,
			`{name: t, timeout: 1s, request: {method: post, url: "https://a:1/${T}", headers: {x: "${T}"}, body: "$${T}"}, assert: [{header: x, matches: a+}]}`),
		"x-a: &a {name: s, request: {url: 'http://a'}}\nchecks: [{name: c, every: 2s, timeout: 1s, retries: 5, steps: [*a, {<<: *a, name: t}]}]\n",
		check(`{name: s, request: {url: "http://a"}, assert: [{jsonpath: "$..a[-1]", equals: {b: [1, x, null]}}, {status: {in: [301]}}, {latency_below: 1d}]}`),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cs := yamlfiletest.Parse(t, Parse, "f.yml", data)
		checkInvariants(t, "f.yml", cs)
	})
}

// fuzzDocs are the documents FuzzJSONPath evaluates compiled paths on.
var fuzzDocs = []string{
	testDoc,
	`null`, `1`, `"s"`, `[]`, `{}`,
	`[[[[[[[[[[1]]]]]]]]]]`,
	`{"a": {"a": {"a": {"a": [1, {"a": 2}, [3, {"a": [4]}]]}}}, "b": [{"a": 5}, {"-": 6, "": 7}]}`,
}

// FuzzJSONPath checks that CompileJSONPath never panics, that compiled
// paths print as written and compile again the same, and that Eval never
// panics and returns at most 1,000 values. Run it with
//
//	go test -run '^$' -fuzz FuzzJSONPath -fuzztime 30s ./synthetics/checks
func FuzzJSONPath(f *testing.F) {
	for _, s := range []string{
		"$", "$.a", "$['a b']", `$["a\"b"]`, "$[0]", "$[-1]", "$[*]", "$.*", "$..a", "$..*", "$..[0]",
		"$..['a']", "$.a[0].b[*]..c", "$[?(@.a)]", "$[0:1]", "$.", "$..", "$[", "$['", "a", "",
	} {
		f.Add(s)
	}
	// A wide document: wildcards and descent reach the cap.
	wide := make([]any, 300)
	for i := range wide {
		wide[i] = map[string]any{"a": []any{1.0, 2.0, 3.0, map[string]any{"a": 4.0}}}
	}
	docs := []any{wide}
	for _, d := range fuzzDocs {
		var v any
		if err := json.Unmarshal([]byte(d), &v); err != nil {
			f.Fatal(err)
		}
		docs = append(docs, v)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		p, err := CompileJSONPath(expr)
		if err != nil {
			if p != nil || err.Error() == "" {
				t.Fatalf("%q: %v and %v", expr, p, err)
			}
			return
		}
		if p.String() != expr || !strings.HasPrefix(expr, "$") || len(p.steps) > maxJSONPathSteps {
			t.Fatalf("%q: String %q, %d steps", expr, p.String(), len(p.steps))
		}
		if again, err := CompileJSONPath(p.String()); err != nil || !reflect.DeepEqual(again, p) {
			t.Fatalf("%q compiles again as %v, %v", expr, again, err)
		}
		for _, d := range docs {
			if n := len(p.Eval(d)); n > maxJSONPathResults {
				t.Fatalf("%q: %d values", expr, n)
			}
		}
	})
}

// FuzzTemplate checks that ParseTemplate never panics, that its parts
// are well formed, and that a template without variables expands to its
// text with $$ read as $. Run it with
//
//	go test -run '^$' -fuzz FuzzTemplate -fuzztime 30s ./synthetics/checks
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{
		"", "a", "$", "$$", "$$$", "${", "${}", "${A}", "a${B}c", "${env:K}", "${env:}", "${uuid}${timestamp}${correlation_id}",
		"$${A}", "${1}", "é$é${é}", "${a${b}}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTemplate(s)
		if err != nil {
			if tm.Raw != "" || tm.Parts != nil || err.Error() == "" {
				t.Fatalf("%q: %#v and %v", s, tm, err)
			}
			return
		}
		if tm.Raw != s || len(tm.Parts) == 0 {
			t.Fatalf("%q: %#v", s, tm)
		}
		for i, p := range tm.Parts {
			switch p.Kind {
			case 0:
				if (p.Text == "" && s != "") || (i > 0 && tm.Parts[i-1].Kind == 0) {
					t.Fatalf("%q: empty or adjacent literal parts %#v", s, tm.Parts)
				}
			case VarExtract, VarEnv:
				if !identifier(p.Text) {
					t.Fatalf("%q: variable name %q", s, p.Text)
				}
			case VarUUID, VarTimestamp, VarCorrelationID:
				if p.Text != "" {
					t.Fatalf("%q: %#v", s, p)
				}
			default:
				t.Fatalf("%q: kind %d", s, p.Kind)
			}
		}
		got, err := tm.Expand(func(p Part) (string, bool) { return "<" + p.String() + ">", true })
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if !tm.HasVars() {
			if want := strings.ReplaceAll(s, "$$", "$"); got != want {
				t.Fatalf("%q expands to %q, want %q", s, got, want)
			}
			return
		}
		// Each variable is replaced, and the text around it kept.
		if _, err := tm.Expand(func(Part) (string, bool) { return "", false }); err == nil {
			t.Fatalf("%q: Expand without values succeeds", s)
		}
		var want strings.Builder
		for _, p := range tm.Parts {
			if p.Kind == 0 {
				want.WriteString(p.Text)
			} else {
				want.WriteString("<" + p.String() + ">")
			}
		}
		if got != want.String() {
			t.Fatalf("%q expands to %q, want %q", s, got, want.String())
		}
	})
}
