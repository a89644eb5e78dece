package checks

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// testDoc is the document the JSONPath tests evaluate. Eval visits an
// object's members in sorted key order: "$x", "a b", "a-b", "arr", "empty",
// "n", "store", "with'quote", "é".
const testDoc = `{
	"store": {
		"book": [
			{"title": "A", "price": 8.95, "author": "x"},
			{"title": "B", "price": 12.99},
			{"title": "C", "price": 8.99, "isbn": "1"}
		],
		"bicycle": {"color": "red", "price": 19.95}
	},
	"a-b": 1, "a b": 2, "with'quote": 3, "$x": 4, "é": 5,
	"n": null, "empty": {}, "arr": [[1, 2], [3]]
}`

func decodeJSON(t testing.TB, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestJSONPathEval(t *testing.T) {
	doc := decodeJSON(t, testDoc)
	store := doc.(map[string]any)["store"].(map[string]any)
	books := store["book"].([]any)
	cases := []struct {
		expr string
		want string // the values as a JSON array; "null" for none
	}{
		{"$", "[" + testDoc + "]"},
		{"$.store.bicycle.color", `["red"]`},
		{"$['store']['bicycle']['color']", `["red"]`},
		{`$["store"].bicycle.color`, `["red"]`},
		{"$.a-b", "[1]"},
		{"$['a b']", "[2]"},
		{`$['with\'quote']`, "[3]"},
		{`$["with'quote"]`, "[3]"},
		{"$.$x", "[4]"},
		{"$.é", "[5]"},
		{"$.n", "[null]"}, // present, null: one value
		{"$.store.book[0].title", `["A"]`},
		{"$.store.book[-1].title", `["C"]`},
		{"$.store.book[ 1 ].title", `["B"]`},
		{"$.arr[0][1]", "[2]"},
		{"$.store.book[*].title", `["A", "B", "C"]`},
		{"$.store.book.*.title", `["A", "B", "C"]`},
		{"$.store.*.color", `["red"]`},
		{"$..price", "[19.95, 8.95, 12.99, 8.99]"},
		{"$..book[1].title", `["B"]`},
		{"$..['title']", `["A", "B", "C"]`},
		{"$..[0]", `[[1, 2], 1, 3, {"title": "A", "price": 8.95, "author": "x"}]`},
		{"$..[*].isbn", `["1"]`},
		{"$.empty.*", "null"},
		{"$.missing", "null"},
		{"$.store.book.title", "null"}, // a member of a list
		{"$.store.book[3]", "null"},
		{"$.store.book[-4]", "null"},
		{"$[0]", "null"}, // an index of an object
		{"$.n.x", "null"},
		{"$..nothing", "null"},
	}
	for _, c := range cases {
		p, err := CompileJSONPath(c.expr)
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if p.String() != c.expr {
			t.Errorf("%s: String() = %q", c.expr, p.String())
		}
		got := p.Eval(doc)
		var want []any
		if c.want != "null" {
			want = decodeJSON(t, c.want).([]any)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", c.expr, got, want)
		}
	}
	// Values are the document's, not copies.
	if got := mustPath("$.store.book[*]").Eval(doc); len(got) != 3 || !reflect.DeepEqual(got[1], books[1]) {
		t.Errorf("books: %v", got)
	}
	if got := mustPath("$.store.*").Eval(doc); len(got) != 2 || !reflect.DeepEqual(got[0], store["bicycle"]) {
		t.Errorf("store members not in key order: %v", got)
	}
}

func TestJSONPathLimits(t *testing.T) {
	// Eval returns at most 1,000 values.
	big := make([]any, 5000)
	for i := range big {
		big[i] = []any{float64(i), map[string]any{"a": float64(i)}}
	}
	for _, expr := range []string{"$[*]", "$..*", "$..a", "$[*][*]", "$..[*]..*"} {
		got := mustPath(expr).Eval(big)
		if len(got) != maxJSONPathResults {
			t.Errorf("%s: %d values, want %d", expr, len(got), maxJSONPathResults)
		}
	}
	if got := mustPath("$..a").Eval(big); got[999] != 999.0 {
		t.Errorf("$..a: the last value is %v, want 999 (document order)", got[999])
	}
	// 64 steps compile; 65 do not.
	if _, err := CompileJSONPath("$" + strings.Repeat(".a", 64)); err != nil {
		t.Error(err)
	}
}

func TestCompileJSONPathErrors(t *testing.T) {
	const unsupported = ": filters, slices and unions are not supported (use a member, an index or *)"
	const notIndex = ": expected an array index, '*' or a quoted member name"
	cases := []struct{ expr, err string }{
		{"", "empty JSONPath"},
		{"store", `JSONPath "store" must start with $`},
		{"$.", `JSONPath "$." at offset 1: a member name must follow "."`},
		{"$..", `JSONPath "$.." at offset 1: a member name must follow ".."`},
		{"$.a..", `JSONPath "$.a.." at offset 3: a member name must follow ".."`},
		{"$a", `JSONPath "$a" at offset 1: unexpected "a" (expected . or [)`},
		{"$.a b", `JSONPath "$.a b" at offset 3: unexpected " " (expected . or [)`},
		{"$.*x", `JSONPath "$.*x" at offset 3: unexpected "x" (expected . or [)`},
		{"$.[0]", `JSONPath "$.[0]" at offset 1: unexpected "[" after "." (a member name is letters, digits, _ and -; use ['…'] for others)`},
		{"$[", `JSONPath "$[" at offset 1: unclosed [`},
		{"$..[", `JSONPath "$..[" at offset 3: unclosed [`},
		{"$['a", `JSONPath "$['a" at offset 1: unclosed quote in ['…]`},
		{`$["a\"]`, `JSONPath "$[\"a\\\"]" at offset 1: unclosed quote in ["…]`},
		{"$['a'x]", `JSONPath "$['a'x]" at offset 1: expected ] after the quoted name`},
		{"$[?(@.a)]", `JSONPath "$[?(@.a)]" at offset 1: [?(@.a)]` + unsupported},
		{"$[0:2]", `JSONPath "$[0:2]" at offset 1: [0:2]` + unsupported},
		{"$[0,1]", `JSONPath "$[0,1]" at offset 1: [0,1]` + unsupported},
		{"$.a[abc]", `JSONPath "$.a[abc]" at offset 3: [abc]` + notIndex},
		{"$[]", `JSONPath "$[]" at offset 1: []` + notIndex},
		{"$[-]", `JSONPath "$[-]" at offset 1: [-]` + notIndex},
		{"$[1234567890]", `JSONPath "$[1234567890]" at offset 1: [1234567890]` + notIndex},
		{"$" + strings.Repeat(".a", 65), `JSONPath "$.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.…" at offset 129: more than 64 steps`},
		// Quoted expressions are cut at a character boundary.
		{"$.x" + strings.Repeat("é", 41) + " x", `JSONPath "$.x` + strings.Repeat("é", 28) + `…" at offset 85: unexpected " " (expected . or [)`},
	}
	for _, c := range cases {
		p, err := CompileJSONPath(c.expr)
		if err == nil {
			t.Errorf("%q: compiled as %v", c.expr, p.steps)
			continue
		}
		if err.Error() != c.err {
			t.Errorf("%q:\n got %s\nwant %s", c.expr, err, c.err)
		}
	}
}
