package jsondiff

import (
	"strings"
	"testing"
)

func TestDiff(t *testing.T) {
	tests := []struct {
		a, b string
		want []string // substrings, in order; none for equal documents
	}{
		{`{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, nil},
		{`{"a":1}`, `{"a":2}`, []string{".a: 1 vs 2"}},
		{`{"a":[1,2]}`, `{"a":[1]}`, []string{".a: 2 elements vs 1 elements"}},
		{`{"a":{"b":"x"}}`, `{"a":{"c":"x"}}`, []string{".a.b: x vs absent", ".a.c: absent vs x"}},
		{`[{"x":true}]`, `[{"x":false}]`, []string{"[0].x: true vs false"}},
		{`{`, `{}`, []string{"first document"}},
	}
	for _, tt := range tests {
		got := Diff([]byte(tt.a), []byte(tt.b), 10)
		if len(tt.want) == 0 {
			if got != "" {
				t.Errorf("Diff(%s, %s) = %q, want equal", tt.a, tt.b, got)
			}
			continue
		}
		rest := got
		for _, w := range tt.want {
			i := strings.Index(rest, w)
			if i < 0 {
				t.Errorf("Diff(%s, %s) = %q, want %q in it", tt.a, tt.b, got, w)
				break
			}
			rest = rest[i+len(w):]
		}
	}
	if got := Diff([]byte(`[1,2,3]`), []byte(`[4,5,6]`), 2); !strings.Contains(got, "... and 1 more") {
		t.Errorf("Diff over max = %q, want the rest counted", got)
	}
}
