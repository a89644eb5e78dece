package policies

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlobMatch(t *testing.T) {
	f := func(pattern, name string, want bool) {
		t.Helper()
		g, err := compileGlob(pattern)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", pattern, err)
		}
		if got := g.match(name); got != want {
			t.Errorf("%q matches %q: %v, want %v", pattern, name, got, want)
		}
		// The general matcher agrees with the fast paths.
		if got := matchTokens(mustTokens(t, pattern), name); got != want {
			t.Errorf("%q matches %q with the token matcher: %v, want %v", pattern, name, got, want)
		}
	}
	// Literals.
	f("payments", "payments", true)
	f("payments", "payments2", false)
	f("payments", "shop/payments", false)
	// Stars, "/" included.
	f("*", "", true)
	f("*", "shop/web", true)
	f("web*", "web", true)
	f("web*", "webserver-elb", true)
	f("web*", "www", false)
	f("*sql", "rds-mysql", true)
	f("*sql", "mysql00", false)
	f("*sql*", "mysql00", true)
	f("shop/*", "shop/web", true)
	f("shop/*", "shopping/web", false)
	f("*/web", "shop/web", true)
	f("w*b*r", "webserver", true)
	f("w*b*r", "webserve", false)
	f("a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false)
	f("**x", "abx", true)
	// ?
	f("web?", "web1", true)
	f("web?", "web", false)
	f("web?", "web12", false)
	f("a?c", "a/c", true)
	f("a?c", "aéc", true) // one character, two bytes
	// Classes.
	f("db[abc]", "dbb", true)
	f("db[abc]", "dbd", false)
	f("web[0-9][0-9]", "web07", true)
	f("web[0-9][0-9]", "web7", false)
	f("[!a-c]x", "dx", true)
	f("[!a-c]x", "bx", false)
	f("[^a-c]x", "bx", false)
	f("[a-]", "-", true)
	f("[-a]", "-", true)
	f("[é-ë]", "ê", true)
	f(`[\]]`, "]", true)
	f(`[a\-z]`, "b", false)
	f(`[a\-z]`, "-", true)
	// Escapes.
	f(`old\*`, "old*", true)
	f(`old\*`, "older", false)
	f(`a\?`, "a?", true)
	f(`a\?`, "ab", false)
	f(`a\[b`, "a[b", true)
	f(`a\\b`, `a\b`, true)
	f(`\w`, "w", true)
}

func mustTokens(t *testing.T, pattern string) []token {
	t.Helper()
	g, err := compileGlob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	if g.kind == globGeneral {
		return g.toks
	}
	// Rebuild the tokens of a fast-path glob.
	var toks []token
	lit := func() {
		for _, r := range g.lit {
			toks = append(toks, token{kind: tokLit, r: r})
		}
	}
	star := token{kind: tokStar}
	switch g.kind {
	case globLiteral:
		lit()
	case globAny:
		toks = append(toks, star)
	case globPrefix:
		lit()
		toks = append(toks, star)
	case globSuffix:
		toks = append(toks, star)
		lit()
	case globContains:
		toks = append(toks, star)
		lit()
		toks = append(toks, star)
	}
	return toks
}

func TestGlobErrors(t *testing.T) {
	cases := []struct{ pattern, msg string }{
		{"", "empty glob"},
		{"web[", `glob "web[": unterminated character class (missing ])`},
		{"web[a-", "unterminated character class"},
		{`web[\`, "unterminated character class"},
		{"[]", "empty character class []"},
		{"[!]", "empty character class []"},
		{"[z-a]", "bad range z-a in a character class (z comes after a)"},
		{`web\`, `ends with an unfinished escape (\)`},
		{"\xff", "not valid UTF-8"},
		{strings.Repeat("a", maxGlobLen+1), "glob of 1025 bytes; at most 1024"},
	}
	for _, c := range cases {
		_, err := compileGlob(c.pattern)
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("compileGlob(%q): %v, want …%s…", c.pattern, err, c.msg)
		}
	}
}

func TestMatchNode(t *testing.T) {
	gs := func(patterns ...string) globs {
		var out globs
		for _, p := range patterns {
			g, err := compileGlob(p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, g)
		}
		return out
	}
	cases := []struct {
		globs      globs
		id         string
		namespaced bool
		want       bool
	}{
		{gs("web*"), "shop/web1", true, true},           // plain name
		{gs("web*"), "shop/web1", false, false},         // zone level: IDs are names
		{gs("shop/*"), "shop/web1", true, true},         // namespaced ID
		{gs("shop/web1"), "shop/web1", true, true},      // the ID itself
		{gs("shop*"), "shop/web1", true, true},          // * crosses "/"
		{gs("web1"), "other/web1", true, true},          // every namespace's web1
		{gs("other/web1"), "shop/web1", true, false},    // not that namespace
		{gs("a", "b", "web?"), "shop/web1", true, true}, // any of a list
		{gs("a", "b"), "shop/web1", true, false},
		{gs("mysql"), "mysql", true, true}, // a virtual node: no namespace
		{gs("web1"), "web1", true, true},   // a node without a namespace
	}
	for _, c := range cases {
		plain := ""
		if c.namespaced {
			plain = plainName(c.id)
		}
		if got := c.globs.matchNode(c.id, plain); got != c.want {
			t.Errorf("globs %v match node %q (namespaced %v): %v, want %v", c.globs, c.id, c.namespaced, got, c.want)
		}
	}
}

// globRegexp translates a compiled glob into an equivalent regexp, the
// reference of FuzzGlob.
func globRegexp(t *testing.T, pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for _, tk := range mustTokens(t, pattern) {
		switch tk.kind {
		case tokLit:
			b.WriteString(regexp.QuoteMeta(string(tk.r)))
		case tokOne:
			b.WriteString(".")
		case tokStar:
			b.WriteString(".*")
		case tokClass:
			b.WriteString("[")
			if tk.neg {
				b.WriteString("^")
			}
			for _, r := range tk.rs {
				b.WriteString(`\x{` + hex(r.lo) + `}-\x{` + hex(r.hi) + `}`)
			}
			b.WriteString("]")
		}
	}
	b.WriteString(`)$`)
	return regexp.MustCompile(b.String())
}

func hex(r rune) string {
	const digits = "0123456789abcdef"
	if r == 0 {
		return "0"
	}
	var out []byte
	for ; r > 0; r >>= 4 {
		out = append([]byte{digits[r&15]}, out...)
	}
	return string(out)
}

// FuzzGlob checks that compiling never panics, and that a glob matches
// exactly what its translation into a regexp matches. Run it with
//
//	go test -run '^$' -fuzz FuzzGlob -fuzztime 30s ./policies
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"web*", "webserver"}, {"*sql", "rds-mysql"}, {"*a*", "banana"}, {"shop/*", "shop/web"},
		{"web[0-9]?", "web1x"}, {"[!a-c]*", "dog"}, {`old\*`, "old*"}, {"a*b*c", "aXbYc"},
		{"[é-ë]?", "êx"}, {"[", "["}, {"??", "ab"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		g, err := compileGlob(pattern)
		if err != nil {
			return
		}
		if !utf8.ValidString(name) {
			return // the regexp reads bad bytes as U+FFFD, the glob too but one byte at a time
		}
		re := globRegexp(t, pattern)
		if got, want := g.match(name), re.MatchString(name); got != want {
			t.Fatalf("glob %q matches %q: %v; regexp %s: %v", pattern, name, got, re, want)
		}
	})
}
