package yamlfile

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// mapping decodes a YAML document and returns its top node.
func mapping(t *testing.T, text string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatal(err)
	}
	return Resolve(doc.Content[0])
}

// nested returns a document whose mapping m has merge keys nested depth
// deep, the last one merging {k: v}.
func nested(depth int) string {
	var b strings.Builder
	b.WriteString("x0: &a0 {k: v}\n")
	for i := 1; i < depth; i++ {
		fmt.Fprintf(&b, "x%d: &a%d {<<: *a%d}\n", i, i, i-1)
	}
	fmt.Fprintf(&b, "m: {<<: *a%d}\n", depth-1)
	return b.String()
}

func TestPairs(t *testing.T) {
	cases := []struct {
		name, yaml string
		want, errs []string
	}{
		{"plain", "m: {a: 1, b: x}", []string{"a=1", "b=x"}, nil},
		{"empty", "m: {}", nil, nil},
		{"alias values", "x: &v 5\nm: {a: *v}", []string{"a=5"}, nil},
		{"alias keys", "x: &k a\nm: {*k : 1}", []string{"a=1"}, nil},
		{"duplicate key", "m:\n  a: 1\n  a: 2\n", []string{"a=1"}, []string{"f.yml:3: m.a: duplicate key (first at line 2)"}},
		{"non-string keys", "m:\n  ? [a]\n  : 1\n  ~: 2\n  3: 4\n", []string{"3=4"}, []string{
			"f.yml:2: m: keys must be strings, not a list",
			"f.yml:4: m: keys must be strings, not an empty value",
		}},
		{"merge", "x: &x {a: 1, b: 2}\nm: {<<: *x, b: 3, c: 4}", []string{"b=3", "c=4", "a=1"}, nil},
		{"merge list: earlier wins", "x: &x {a: 1}\ny: &y {a: 2, b: 2}\nm: {<<: [*x, *y]}", []string{"a=1", "b=2"}, nil},
		{"merge inline mapping", "m: {<<: {a: 1}, b: 2}", []string{"b=2", "a=1"}, nil},
		{"merge not a mapping", "m:\n  <<: 5\n  a: 1\n", []string{"a=1"}, []string{
			"f.yml:2: m: a merge key (<<) takes a mapping or a list of mappings, not the number 5",
		}},
		{"merge list of scalars", "m: {<<: [a, {b: 1}]}", []string{"b=1"}, []string{
			`f.yml:1: m: a merge key (<<) takes a mapping or a list of mappings, not "a"`,
		}},
		{"merges at the limit", nested(MaxMergeDepth), []string{"k=v"}, nil},
		{"merges too deep", nested(MaxMergeDepth + 1), nil, []string{
			// at the merge key of x1, the innermost one followed
			"f.yml:2: m: merge keys (<<) nested too deep",
		}},
	}
	for _, c := range cases {
		col := &Collector{File: "f.yml"}
		root := mapping(t, c.yaml)
		var m *yaml.Node
		for _, kv := range col.Pairs(root, "") {
			if kv.Name == "m" {
				m = kv.V
			}
		}
		var got []string
		for _, kv := range col.Pairs(m, "m") {
			got = append(got, kv.Name+"="+kv.V.Value)
			if kv.K.Value != kv.Name {
				t.Errorf("%s: key %q, name %q", c.name, kv.K.Value, kv.Name)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
		if errs := errorStrings(col.Err()); !slices.Equal(errs, c.errs) {
			t.Errorf("%s:\n errors %q\n  want %q", c.name, errs, c.errs)
		}
	}
}

func TestPairsBudget(t *testing.T) {
	// The top mapping has 3 entries, m 1 (<<), which merges 10 copies of
	// y with 1 entry each (<<), which merge 10 copies of x with 10: 1014
	// entries in all.
	text := "x: &a {a0: 0, a1: 1, a2: 2, a3: 3, a4: 4, a5: 5, a6: 6, a7: 7, a8: 8, a9: 9}\n" +
		"y: &b {<<: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]}\n" +
		"m: {<<: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]}\n"
	for _, c := range []struct {
		budget int
		ok     bool
	}{{0, true}, {1014, true}, {1013, false}} {
		col := &Collector{File: "f.yml"}
		col.SetBudget(c.budget)
		root := mapping(t, text)
		got := col.Pairs(col.Pairs(root, "")[2].V, "m")
		if ok := len(got) == 10 && col.Err() == nil; ok != c.ok {
			t.Errorf("budget %d: %d pairs, %v", c.budget, len(got), col.Err())
		}
	}
}

func TestScalarName(t *testing.T) {
	scalar := func(c *Collector, kv Pair) (string, bool) { return c.Scalar(kv, "k", "a name") }
	name := func(c *Collector, kv Pair) (string, bool) {
		return c.Name(kv, "k", func(s string) string { return CheckName(s, 5) })
	}
	cases := []struct {
		yaml string
		read func(*Collector, Pair) (string, bool)
		want string
		err  string
	}{
		{"v: abc", scalar, "abc", ""},
		{"v: 5", scalar, "5", ""},
		{"v: ''", scalar, "", ""},
		{"v:", scalar, "", "f.yml:1: k: has no value; want a name"},
		{"v: [a]", scalar, "", "f.yml:1: k: want a name, not a list"},
		{"v: {a: 1}", scalar, "", "f.yml:1: k: want a name, not a mapping"},
		{"v: 42", name, "42", ""},
		{"v: abcdef", name, "", "f.yml:1: k: name is 6 bytes long; at most 5"},
		{"v: ' a'", name, "", `f.yml:1: k: name " a" begins or ends with white space`},
		{"v: ''", name, "", "f.yml:1: k: empty name"},
		{"v:", name, "", "f.yml:1: k: has no value; want a name"},
	}
	for _, c := range cases {
		col := &Collector{File: "f.yml"}
		got, ok := c.read(col, col.Pairs(mapping(t, c.yaml), "")[0])
		var err string
		if e := col.Err(); e != nil {
			err = e.Error()
		}
		if got != c.want || ok != (c.err == "") || err != c.err {
			t.Errorf("%s: %q, %v, %q; want %q, %q", c.yaml, got, ok, err, c.want, c.err)
		}
	}
}

func TestItems(t *testing.T) {
	list := mapping(t, "[a, b, c]")
	col := &Collector{File: "f.yml"}
	col.SetBudget(3)
	if got := col.Items(list); len(got) != 3 {
		t.Errorf("within the budget: %d items", len(got))
	}
	if got := col.Items(list); got != nil || col.Err() == nil {
		t.Errorf("over the budget: %d items, %v", len(got), col.Err())
	}
}

func TestDescribe(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"{a: 1}", "a mapping"},
		{"[1]", "a list"},
		{"~", "an empty value"},
		{"5", "the number 5"},
		{"-1.5e3", "the number -1.5e3"},
		{strings.Repeat("1", 70), "the number " + strings.Repeat("1", 64) + "…"},
		{"true", "the boolean true"},
		{"abc", `"abc"`},
		{`"5"`, `"5"`},
		{strings.Repeat("é", 40), `"` + strings.Repeat("é", 32) + `…"`},
	}
	for _, c := range cases {
		if got := Describe(mapping(t, c.yaml)); got != c.want {
			t.Errorf("%s: got %q, want %q", c.yaml, got, c.want)
		}
	}
	for n, want := range map[*yaml.Node]string{
		{Kind: yaml.AliasNode}:    "an alias",
		{Kind: yaml.DocumentNode}: "a document",
		{}:                        "nothing",
	} {
		if got := Describe(n); got != want {
			t.Errorf("%v: got %q, want %q", n.Kind, got, want)
		}
	}
}

func TestIsNullResolve(t *testing.T) {
	root := mapping(t, "a: &a ~\nb: *a\nc: null\nd: ''\ne: 'null'\n")
	want := map[string]bool{"a": true, "b": true, "c": true, "d": false, "e": false}
	col := &Collector{File: "f.yml"}
	for _, kv := range col.Pairs(root, "") {
		if got := IsNull(kv.V); got != want[kv.Name] {
			t.Errorf("%s: IsNull %v", kv.Name, got)
		}
	}
	loop := &yaml.Node{Kind: yaml.AliasNode}
	loop.Alias = loop
	if Resolve(loop) != loop {
		t.Error("Resolve of an alias of itself")
	}
}

func TestJoinKeyOrList(t *testing.T) {
	long := strings.Repeat("k", 100)
	for _, c := range []struct{ path, key, want string }{
		{"", "a", "a"},
		{"rules[0]", "window", "rules[0].window"},
		{"", long, long[:64] + "…"},
		{"p", long, "p." + long[:64] + "…"},
	} {
		if got := JoinKey(c.path, c.key); got != c.want {
			t.Errorf("JoinKey(%q, %q) = %q, want %q", c.path, c.key, got, c.want)
		}
	}
	for _, c := range []struct {
		l    []string
		want string
	}{
		{nil, ""},
		{[]string{"a"}, "a"},
		{[]string{"a", "b"}, "a or b"},
		{[]string{"a", "b", "c"}, "a, b or c"},
	} {
		if got := OrList(c.l); got != c.want {
			t.Errorf("OrList(%q) = %q, want %q", c.l, got, c.want)
		}
	}
}
