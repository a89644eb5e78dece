package checks

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseTemplate(t *testing.T) {
	lit := func(s string) Part { return Part{Text: s} }
	cases := []struct {
		in   string
		want []Part
	}{
		{"", []Part{lit("")}},
		{"abc", []Part{lit("abc")}},
		{"a$$b", []Part{lit("a$b")}},
		{"$", []Part{lit("$")}},
		{"a$b $ {", []Part{lit("a$b $ {")}},
		{"$$$", []Part{lit("$$")}},
		{"$${TOKEN}", []Part{lit("${TOKEN}")}},
		{"${uuid}", []Part{{Kind: VarUUID}}},
		{"x${timestamp}y${correlation_id}", []Part{lit("x"), {Kind: VarTimestamp}, lit("y"), {Kind: VarCorrelationID}}},
		{"${env:API_KEY}", []Part{{Kind: VarEnv, Text: "API_KEY"}}},
		{"Bearer ${TOKEN}", []Part{lit("Bearer "), {Kind: VarExtract, Text: "TOKEN"}}},
		{"${A}${_b2}", []Part{{Kind: VarExtract, Text: "A"}, {Kind: VarExtract, Text: "_b2"}}},
		{"${UUID}", []Part{{Kind: VarExtract, Text: "UUID"}}}, // names are case-sensitive
		{"${env}", []Part{{Kind: VarExtract, Text: "env"}}},
		{"é${X}$$é", []Part{lit("é"), {Kind: VarExtract, Text: "X"}, lit("$é")}},
	}
	for _, c := range cases {
		got, err := ParseTemplate(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if got.Raw != c.in || !reflect.DeepEqual(got.Parts, c.want) {
			t.Errorf("%q: got %q %#v, want %#v", c.in, got.Raw, got.Parts, c.want)
		}
		vars := false
		for _, p := range c.want {
			vars = vars || p.Kind != 0
		}
		if got.HasVars() != vars || got.IsZero() != (c.in == "") {
			t.Errorf("%q: HasVars %v IsZero %v", c.in, got.HasVars(), got.IsZero())
		}
	}

	const badName = ": a name is letters, digits and _ (not starting with a digit, at most 128), or one of uuid, timestamp, correlation_id, env:NAME"
	errs := []struct{ in, err string }{
		{"${", `unclosed variable "${" (write $$ for a literal $)`},
		{"a ${TOKEN", `unclosed variable "${TOKEN" (write $$ for a literal $)`},
		{"${A} ${" + strings.Repeat("x", 50), `unclosed variable "${` + strings.Repeat("x", 38) + `…" (write $$ for a literal $)`},
		{"${}", "bad variable ${}" + badName},
		{"${1A}", "bad variable ${1A}" + badName},
		{"${a-b}", "bad variable ${a-b}" + badName},
		{"${ uuid }", "bad variable ${ uuid }" + badName},
		{"${" + strings.Repeat("a", 129) + "}", "bad variable ${" + strings.Repeat("a", 40) + "…}" + badName},
		{"${env:}", `bad environment variable name "" in ${env:}: use letters, digits and _ (at most 128)`},
		{"${env:A-B}", `bad environment variable name "A-B" in ${env:A-B}: use letters, digits and _ (at most 128)`},
		{"${ENV:A}", "bad variable ${ENV:A}" + badName},
	}
	for _, c := range errs {
		got, err := ParseTemplate(c.in)
		if err == nil {
			t.Errorf("%q: parsed as %#v", c.in, got.Parts)
			continue
		}
		if err.Error() != c.err {
			t.Errorf("%q:\n got %s\nwant %s", c.in, err, c.err)
		}
	}
}

func TestTemplateExpand(t *testing.T) {
	values := func(p Part) (string, bool) {
		switch p.Kind {
		case VarExtract:
			v, ok := map[string]string{"TOKEN": "t0k", "EMPTY": ""}[p.Text]
			return v, ok
		case VarEnv:
			return "env-" + p.Text, true
		case VarUUID:
			return "8c4b8a3e-uuid", true
		case VarTimestamp:
			return "1700000000", true
		case VarCorrelationID:
			return "corr-1", true
		}
		t.Fatalf("lookup of a literal %q", p.Text)
		return "", false
	}
	cases := []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"a$$b$", "a$b$"},
		{"Bearer ${TOKEN}", "Bearer t0k"},
		{"[${EMPTY}]", "[]"},
		{"${env:KEY}/${uuid}/${timestamp}/${correlation_id}", "env-KEY/8c4b8a3e-uuid/1700000000/corr-1"},
		{"$${TOKEN}=${TOKEN}", "${TOKEN}=t0k"},
	}
	for _, c := range cases {
		got, err := mustTemplate(c.in).Expand(values)
		if err != nil || got != c.want {
			t.Errorf("%q: got %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	// The zero Template (no body) expands to nothing.
	if got, err := (Template{}).Expand(values); got != "" || err != nil {
		t.Errorf("zero template: %q, %v", got, err)
	}
	// A variable without a value fails, naming it.
	for in, want := range map[string]string{
		"a ${MISSING} b": "variable ${MISSING} has no value",
		"${env:NOPE}":    "variable ${env:NOPE} has no value",
	} {
		got, err := mustTemplate(in).Expand(func(p Part) (string, bool) {
			if p.Kind == VarEnv {
				return "", false
			}
			return values(p)
		})
		if err == nil || err.Error() != want || got != "" {
			t.Errorf("%q: got %q, %v; want the error %q", in, got, err, want)
		}
	}
}

func TestPartString(t *testing.T) {
	for _, c := range []struct {
		p    Part
		want string
	}{
		{Part{Text: "lit"}, "lit"},
		{Part{Kind: VarExtract, Text: "TOKEN"}, "${TOKEN}"},
		{Part{Kind: VarUUID}, "${uuid}"},
		{Part{Kind: VarTimestamp}, "${timestamp}"},
		{Part{Kind: VarCorrelationID}, "${correlation_id}"},
		{Part{Kind: VarEnv, Text: "KEY"}, "${env:KEY}"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%#v: %q, want %q", c.p, got, c.want)
		}
	}
	for k, want := range map[AssertKind]string{
		AssertStatus: "status", AssertStatusIn: "status_in", AssertLatencyBelow: "latency_below",
		AssertBodyContains: "body_contains", AssertJSONPathEquals: "jsonpath_equals",
		AssertJSONPathExists: "jsonpath_exists", AssertHeader: "header", 0: "AssertKind(0)",
	} {
		if got := k.String(); got != want {
			t.Errorf("AssertKind %d: %q, want %q", int(k), got, want)
		}
	}
}
