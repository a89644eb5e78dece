package yamlfile

import (
	"strings"
	"testing"
)

func TestSuggestions(t *testing.T) {
	valid := []string{"status", "latency_below", "body_contains", "jsonpath", "header"}
	cases := []struct {
		k, nearest, sameWord string
	}{
		{"status", "status", "status"},
		{"Status", "status", "status"},
		{"staus", "status", ""},
		{"jsonpth", "jsonpath", ""},
		{"HEADERS", "header", ""},
		{"status_code", "", "status"},
		{"body_matches", "", "body_contains"},
		{"latency", "", "latency_below"},
		{"bo_x", "", ""}, // a first word of 3 letters at least
		{"expect", "", ""},
		{"", "", ""},
	}
	for _, c := range cases {
		if got := Nearest(c.k, valid); got != c.nearest {
			t.Errorf("Nearest(%q) = %q, want %q", c.k, got, c.nearest)
		}
		if got := SameWord(c.k, valid); got != c.sameWord {
			t.Errorf("SameWord(%q) = %q, want %q", c.k, got, c.sameWord)
		}
	}
	// The nearest wins; the first of equals.
	if got := Nearest("ab", []string{"xy", "abc", "abd", "a"}); got != "abc" {
		t.Errorf("Nearest(ab) = %q", got)
	}
	if got, want := DidYouMean("rules"), `: did you mean "rules"?`; got != want {
		t.Errorf("DidYouMean = %q, want %q", got, want)
	}
	if got := DidYouMean(""); got != "" {
		t.Errorf("DidYouMean(\"\") = %q", got)
	}
}

func TestEditDistance(t *testing.T) {
	long := strings.Repeat("a", 65)
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "abc", 0},
		{"kitten", "sitting", 3},
		{"window", "widnow", 2},
		{"recover", "recover_below", 6},
		{long, long, 1 << 30},
	}
	for _, c := range cases {
		if got := EditDistance(c.a, c.b); got != c.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := EditDistance(c.b, c.a); got != c.want {
			t.Errorf("EditDistance(%q, %q) = %d, want %d", c.b, c.a, got, c.want)
		}
	}
}

func TestCheckName(t *testing.T) {
	cases := []struct{ s, want string }{
		{"Checkout → slow (p99)", ""},
		{"12345", ""},
		{"", "empty name"},
		{"123456", "name is 6 bytes long; at most 5"},
		{"\xff", "name is not valid UTF-8"},
		{"a\nb", `name "a\nb" contains a control character`},
		{" a", `name " a" begins or ends with white space`},
		{"a\u00a0", `name "a\u00a0" begins or ends with white space`},
	}
	for _, c := range cases {
		max := 5
		if c.want == "" {
			max = len(c.s)
		}
		if got := CheckName(c.s, max); got != c.want {
			t.Errorf("CheckName(%q) = %q, want %q", c.s, got, c.want)
		}
	}
}
