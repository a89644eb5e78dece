package yamlfile

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"
)

// errorStrings returns the messages of the errors joined in err.
func errorStrings(err error) []string {
	if err == nil {
		return nil
	}
	var out []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		out = append(out, e.(*Error).Error())
	}
	return out
}

func TestErrorFormat(t *testing.T) {
	cases := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.yml", Line: 3, Key: "rules[0].window", Msg: "m"}, "f.yml:3: rules[0].window: m"},
		{Error{File: "f.yml", Line: 3, Msg: "m"}, "f.yml:3: m"},
		{Error{File: "f.yml", Key: "checks", Msg: "m"}, "f.yml: checks: m"},
		{Error{File: "f.yml", Msg: "m"}, "f.yml: m"},
	}
	for _, c := range cases {
		if got := c.e.Error(); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

func TestClip(t *testing.T) {
	cases := []struct {
		s    string
		n    int
		want string
	}{
		{"", 3, ""},
		{"abc", 3, "abc"},
		{"abcd", 3, "abc…"},
		{"éé", 3, "é…"}, // not in the middle of the second é
		{"éé", 4, "éé"},
		{"é", 0, "…"},
	}
	for _, c := range cases {
		if got := Clip(c.s, c.n); got != c.want {
			t.Errorf("Clip(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}

func TestCollector(t *testing.T) {
	long := strings.Repeat("x", 2000)
	cases := []struct {
		name string
		max  int
		add  func(c *Collector)
		want []string
	}{
		{"none", 0, func(*Collector) {}, nil},
		{"located", 0, func(c *Collector) {
			c.Add(3, "a.b", "bad %s: %d", "value", 5)
			c.Add(0, "", "whole file")
		}, []string{"f.yml:3: a.b: bad value: 5", "f.yml: whole file"}},
		{"long arguments and keys are shortened", 0, func(c *Collector) {
			c.Add(1, long, "%s %v", long, errors.New(long[:1100]))
		}, []string{"f.yml:1: " + long[:256] + "…: " + long[:1024] + "… " + long[:1100]}},
		{"file errors", 0, func(c *Collector) {
			c.FileErr("g.yml", &fs.PathError{Op: "open", Path: "g.yml", Err: fs.ErrNotExist})
			c.FileErr("h.yml", errors.New("odd"))
			c.Add(0, "", "back to f")
		}, []string{"g.yml: file does not exist", "h.yml: odd", "f.yml: back to f"}},
		{"at most Max", 2, func(c *Collector) {
			for i := range 5 {
				c.Add(i+1, "", "e%d", i)
			}
			c.File = "last.yml"
		}, []string{"f.yml:1: e0", "f.yml:2: e1", "last.yml: 3 more errors not shown"}},
		{"exactly Max", 2, func(c *Collector) {
			c.Add(1, "", "e0")
			c.Add(2, "", "e1")
		}, []string{"f.yml:1: e0", "f.yml:2: e1"}},
	}
	for _, c := range cases {
		col := &Collector{File: "f.yml", Max: c.max}
		c.add(col)
		err := col.Err()
		if got := errorStrings(err); !slices.Equal(got, c.want) {
			t.Errorf("%s:\n got %q\nwant %q", c.name, got, c.want)
		}
		if n := col.Count(); n < len(c.want) {
			t.Errorf("%s: Count %d", c.name, n)
		}
		var ye *Error
		if (err != nil) != errors.As(err, &ye) {
			t.Errorf("%s: errors.As: %v", c.name, err)
		}
	}
}

func TestSortFrom(t *testing.T) {
	c := &Collector{File: "f.yml"}
	c.Add(9, "", "before")
	mark := len(c.errs)
	for _, l := range []int{5, 0, 3, 5, 1} {
		c.Add(l, "", "at %d", l)
	}
	c.errs[mark+3].(*Error).Msg = "at 5, second"
	c.sortFrom(mark)
	want := []string{"f.yml:9: before", "f.yml: at 0", "f.yml:1: at 1", "f.yml:3: at 3", "f.yml:5: at 5", "f.yml:5: at 5, second"}
	if got := errorStrings(c.Err()); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestBudget(t *testing.T) {
	c := &Collector{File: "f.yml"}
	if !c.Charge(1<<40, 1) {
		t.Error("no budget: Charge failed")
	}
	c.SetBudget(10)
	steps := []struct {
		n    int
		want bool
	}{{4, true}, {6, true}, {1, false}, {1, false}}
	for i, s := range steps {
		if got := c.Charge(s.n, i+1); got != s.want {
			t.Errorf("step %d: Charge(%d) = %v", i, s.n, got)
		}
	}
	c.Add(7, "", "muted")
	c.SetBudget(10)
	c.Add(8, "", "recorded")
	want := []string{
		"f.yml:3: too many YAML values (more than 10, counting again those that aliases and merge keys repeat)",
		"f.yml:8: recorded",
	}
	if got := errorStrings(c.Err()); !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSyntaxErr(t *testing.T) {
	cases := []struct{ err, want string }{
		// yaml.v3's parser counts lines from 0, its scanner from 1.
		{"yaml: line 3: did not find expected key", "f.yml:4: YAML syntax error: did not find expected key"},
		{"yaml: line 3: found character that cannot start any token", "f.yml:3: YAML syntax error: found character that cannot start any token"},
		{"yaml: unknown anchor 'a' referenced", "f.yml: YAML syntax error: unknown anchor 'a' referenced"},
	}
	for _, tc := range cases {
		c := &Collector{File: "f.yml"}
		c.syntaxErr(errors.New(tc.err))
		if got := c.Err().Error(); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Example shows the errors of a parser on a Collector.
func ExampleCollector() {
	c := &Collector{File: "app.yml", Max: 2}
	c.Add(3, "server.port", "want a number, not %q", "eighty")
	c.Add(0, "", "something about the whole file")
	c.Add(9, "x", "one too many")
	fmt.Println(c.Err())
	// Output:
	// app.yml:3: server.port: want a number, not "eighty"
	// app.yml: something about the whole file
	// app.yml: 1 more errors not shown
}
