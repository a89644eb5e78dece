package yamlfile

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// How much of what a file says a message quotes: Add shortens its string
// arguments and its key to these many bytes.
const (
	maxArgLen = 1024
	maxKeyLen = 256
)

// A Collector collects the errors of parsing YAML files: Add records one,
// located in File, and Err joins them. Past Max errors it only counts the
// rest, which Err reports in one last error. It can also bound the work of
// reading a file (SetBudget, Charge), and its methods read the values of
// yaml.v3 nodes, reporting what is wrong with them.
//
// A Collector's zero value, with File set, keeps every error and has no
// work budget.
type Collector struct {
	// File names the file of the errors that Add records.
	File string
	// Max is how many errors Err reports in full; 0 means all of them.
	Max int
	// Describe names a node's value in the Collector's messages; nil
	// means the package's Describe.
	Describe func(*yaml.Node) string

	errs    []error
	dropped int
	// limit is the work budget SetBudget gave (0: none), left what is
	// left of it; spent tells that running out was reported, after which
	// errors are not recorded.
	limit, left int
	spent       bool
}

// Add records an error at line (0: none) and key ("" for the file):
// fmt.Sprintf(format, args...), with the string arguments shortened to 1
// KiB (Clip). Once the work budget is spent (see Charge), Add records
// nothing: the errors that follow are those of the parts left unread.
func (c *Collector) Add(line int, key, format string, args ...any) {
	if c.spent {
		return
	}
	if c.Max > 0 && len(c.errs) >= c.Max {
		c.dropped++
		return
	}
	for i, a := range args {
		if s, ok := a.(string); ok {
			args[i] = Clip(s, maxArgLen)
		}
	}
	c.errs = append(c.errs, &Error{File: c.File, Line: line, Key: Clip(key, maxKeyLen), Msg: fmt.Sprintf(format, args...)})
}

// Count is the number of errors so far, those past Max included.
func (c *Collector) Count() int { return len(c.errs) + c.dropped }

// FileErr records err, an error of the file system, as an error of the
// file name rather than File; of an *os.PathError it records the cause
// alone, without the operation and the path.
func (c *Collector) FileErr(name string, err error) {
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	file := c.File
	c.File = name
	c.Add(0, "", "%v", err)
	c.File = file
}

// Err joins the errors (errors.Join), each an *Error, in the order they
// were recorded; nil when there are none. When more than Max were
// recorded, a last error of File says how many more there are: "N more
// errors not shown".
func (c *Collector) Err() error {
	if c.Count() == 0 {
		return nil
	}
	errs := c.errs
	if c.dropped > 0 {
		errs = append(errs[:len(errs):len(errs)], &Error{File: c.File, Msg: fmt.Sprintf("%d more errors not shown", c.dropped)})
	}
	return errors.Join(errs...)
}

// sortFrom orders the errors from index i on by line.
func (c *Collector) sortFrom(i int) {
	slices.SortStableFunc(c.errs[i:], func(a, b error) int {
		return cmp.Compare(a.(*Error).Line, b.(*Error).Line)
	})
}

// SetBudget gives what follows a work budget of n (0: no limit), which
// Charge spends, and lets Add record errors again if a budget ran out.
func (c *Collector) SetBudget(n int) {
	c.limit, c.left, c.spent = max(n, 0), n, false
}

// Charge spends n of the work budget. Pairs, Items and Scalar charge
// what they read: each entry of a mapping or a list costs 1, a scalar 1
// per 64 bytes, again each time aliases and merge keys repeat it. Once
// the budget is spent, Charge reports it (once) at line and returns false,
// and Add records no more errors until SetBudget.
func (c *Collector) Charge(n, line int) bool {
	if c.limit == 0 {
		return true
	}
	c.left -= n
	if c.left >= 0 {
		return true
	}
	if !c.spent {
		c.Add(line, "", "too many YAML values (more than %d, counting again those that aliases and merge keys repeat)", c.limit)
		c.spent = true
	}
	return false
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserErrors are the errors of yaml.v3's parser, whose line numbers
// are one less than the line of the problem.
var yamlParserErrors = []string{
	"did not find expected <document start>",
	"did not find expected node content",
	"did not find expected '-' indicator",
	"did not find expected key",
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
}

// syntaxErr records an error of the YAML decoder.
func (c *Collector) syntaxErr(err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		// yaml.v3 numbers the lines of its parser's errors (unlike its
		// scanner's) from 0.
		if slices.Contains(yamlParserErrors, m[2]) {
			line++
		}
		c.Add(line, "", "YAML syntax error: %s", m[2])
		return
	}
	c.Add(0, "", "YAML syntax error: %s", strings.TrimPrefix(msg, "yaml: "))
}

// describe names n's value with the Collector's Describe.
func (c *Collector) describe(n *yaml.Node) string {
	if c.Describe != nil {
		return c.Describe(n)
	}
	return Describe(n)
}
