package yamlfile

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// item is what testFormat's files list: {name: NAME, n: NUMBER}.
type item struct {
	Name, File string
	Line       int
}

var testFormat = &Format[item]{
	Key:       "items",
	File:      "item file",
	Set:       "item set",
	NameKey:   "name",
	Name:      "item name",
	MaxSize:   1 << 10,
	MaxItems:  3,
	MaxErrors: 5,
	Unknown:   func(k string) string { return "unknown key" + DidYouMean(Nearest(k, []string{"items"})) },
	Item: func(c *Collector, i int, n *yaml.Node) (item, string, int, bool) {
		path := fmt.Sprintf("items[%d]", i)
		start := c.Count()
		n = Resolve(n)
		if n.Kind != yaml.MappingNode {
			c.Add(n.Line, path, "want a mapping, not %s", Describe(n))
			return item{}, "", n.Line, false
		}
		it := item{File: c.File, Line: n.Line}
		nameLine := n.Line
		for _, kv := range c.Pairs(n, path) {
			switch kv.Name {
			case "name":
				if s, ok := c.Scalar(kv, JoinKey(path, kv.Name), "a name"); ok {
					it.Name, nameLine = s, kv.V.Line
				}
			case "n":
				c.Scalar(kv, JoinKey(path, kv.Name), "a number")
			default:
				c.Add(kv.K.Line, JoinKey(path, kv.Name), "unknown key")
			}
		}
		return it, it.Name, nameLine, c.Count() == start
	},
}

func TestFormatParse(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // items as NAME:LINE
		errs       []string
	}{
		{"items", "items:\n  - {name: a}\n  - name: b\n", []string{"a:2", "b:3"}, nil},
		{"empty list", "items: []\n", nil, nil},
		{"null list", "items:\n", nil, nil},
		{"anchors in x- keys", "x-base: &b {n: 1}\nitems: [{<<: *b, name: a}]\n", []string{"a:2"}, nil},
		{"alias document", "x: &x {items: []}\n", nil, []string{`f.yml:1: x: unknown key`, "f.yml:1: items: missing: want `items:` with a list of items"}},
		{"empty file", "", nil, []string{"f.yml: empty file: want a `items:` list"}},
		{"only comments", "# none\n", nil, []string{"f.yml: empty file: want a `items:` list"}},
		{"two documents", "items: []\n---\nitems: []\n", nil, []string{"f.yml:2: a second YAML document; a item file holds one"}},
		{"not a mapping", "- a\n", nil, []string{"f.yml:1: want a mapping with a `items:` list, not a list"}},
		{"missing list", "x-a: 1\n", nil, []string{"f.yml:1: items: missing: want `items:` with a list of items"}},
		{"not a list", "items: {a: 1}\n", nil, []string{"f.yml:1: items: must be a list of items, not a mapping"}},
		{"too many", "items: [{name: a}, {name: b}, {name: c}, {name: d}]\n", nil, []string{"f.yml:1: items: 4 items; a item set holds at most 3"}},
		{"unknown key", "items: []\nitem: []\n", nil, []string{`f.yml:2: item: unknown key: did you mean "items"?`}},
		{"duplicate names", "items:\n  - name: a\n  - name: a\n", nil, []string{`f.yml:3: items[1].name: duplicate item name "a" (first defined at f.yml:2)`}},
		{"syntax error", "items:\n\t- a\n", nil, []string{"f.yml:2: YAML syntax error: found character that cannot start any token"}},
		{"errors by line", "items:\n  - {name: a, x: 1}\n  - 5\nitemz: 1\n", nil, []string{
			`f.yml:2: items[0].x: unknown key`,
			`f.yml:3: items[1]: want a mapping, not the number 5`,
			`f.yml:4: itemz: unknown key: did you mean "items"?`,
		}},
		{"at most MaxErrors", "items: [1, 2, 3]\na: 1\nb: 2\nc: 3\nd: 4\n", nil, []string{
			// The unknown keys come first, then the items; sorted by line.
			"f.yml:1: items[0]: want a mapping, not the number 1",
			"f.yml:2: a: unknown key",
			"f.yml:3: b: unknown key",
			"f.yml:4: c: unknown key",
			"f.yml:5: d: unknown key",
			"f.yml: 2 more errors not shown",
		}},
		{"too large", "items: []\n" + strings.Repeat("#", 1<<10), nil, []string{"f.yml: file larger than 1024 bytes (1 KiB)"}},
	}
	for _, c := range cases {
		items, err := testFormat.Parse("f.yml", []byte(c.yaml))
		var got []string
		for _, it := range items {
			got = append(got, fmt.Sprintf("%s:%d", it.Name, it.Line))
		}
		if !slices.Equal(got, c.want) || (err != nil && items != nil) {
			t.Errorf("%s: items %q, want %q", c.name, got, c.want)
		}
		if errs := errorStrings(err); !slices.Equal(errs, c.errs) {
			t.Errorf("%s:\n errors %q\n  want %q", c.name, errs, c.errs)
		}
	}
}

func TestFormatDefaultsAndHooks(t *testing.T) {
	f := *testFormat
	f.Unknown = nil
	f.Describe = func(n *yaml.Node) string { return "<" + n.Value + ">" }
	_, err := f.Parse("f.yml", []byte("items: 5\nfoo: 1\n"))
	want := []string{"f.yml:1: items: must be a list of items, not <5>", "f.yml:2: foo: unknown key"}
	if got := errorStrings(err); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFormatLoad(t *testing.T) {
	write := func(dir string, files map[string]string) string {
		for name, text := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	empty := t.TempDir()
	missing := filepath.Join(t.TempDir(), "nope")
	others := write(t.TempDir(), map[string]string{"README.md": "items: []\n", ".hidden.yml": "items: []\n"})
	if err := os.Mkdir(filepath.Join(others, "sub.yml"), 0o755); err != nil {
		t.Fatal(err)
	}
	dup := write(t.TempDir(), map[string]string{"a.yml": "items: [{name: a}]\n", "b.yml": "items:\n  - name: c\n  - name: a\n"})
	many := write(t.TempDir(), map[string]string{"a.yml": "items: [{name: a}, {name: b}]\n", "b.yml": "items: [{name: c}, {name: d}]\n"})
	bad := write(t.TempDir(), map[string]string{"a.yml": "items: [1]\n", "b.yml": "items: {}\n", "c.yml": "items: []\n" + strings.Repeat("#", 1<<10)})

	cases := []struct {
		name, path string
		want, errs []string
	}{
		{"directory", "testdata/dir", []string{"testdata/dir/a.yml:2 a1", "testdata/dir/a.yml:3 a2", "testdata/dir/b.yaml:3 b1"}, nil},
		{"file", "testdata/dir/notes.txt", []string{"testdata/dir/notes.txt:2 notes"}, nil},
		{"missing", missing, nil, []string{missing + ": no such file or directory"}},
		{"empty directory", empty, nil, []string{empty + ": no item files (*.yml or *.yaml) in this directory"}},
		{"no YAML files", others, nil, []string{others + ": no item files (*.yml or *.yaml) in this directory"}},
		{"names across files", dup, nil, []string{filepath.Join(dup, "b.yml") + `:3: items[1].name: duplicate item name "a" (also defined at ` + filepath.Join(dup, "a.yml") + `:1); names must be unique across the item files`}},
		{"too many in all", many, nil, []string{many + ": 4 items in all; a item set holds at most 3"}},
		{"errors of every file", bad, nil, []string{
			filepath.Join(bad, "a.yml") + ":1: items[0]: want a mapping, not the number 1",
			filepath.Join(bad, "b.yml") + ":1: items: must be a list of items, not a mapping",
			filepath.Join(bad, "c.yml") + ": file larger than 1024 bytes (1 KiB)",
		}},
	}
	for _, c := range cases {
		items, err := testFormat.Load(c.path)
		var got []string
		for _, it := range items {
			got = append(got, fmt.Sprintf("%s:%d %s", it.File, it.Line, it.Name))
		}
		if !slices.Equal(got, c.want) || (err != nil && items != nil) {
			t.Errorf("%s: items %q, want %q", c.name, got, c.want)
		}
		if errs := errorStrings(err); !slices.Equal(errs, c.errs) {
			t.Errorf("%s:\n errors %q\n  want %q", c.name, errs, c.errs)
		}
	}
}
