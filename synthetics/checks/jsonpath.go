package checks

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/flowscope/flowscope/yamlfile"
)

// JSONPath is a compiled JSONPath expression, in the subset checks use:
// the root $, child members .name and ['name'] (or "name"), array indexes
// [N] (negative from the end), wildcards .* and [*], and recursive descent
// ..name and ..*. Filters, slices and unions are not supported and are
// rejected by CompileJSONPath.
type JSONPath struct {
	raw   string
	steps []pathStep
}

type pathStepKind uint8

const (
	stepMember pathStepKind = iota + 1
	stepIndex
	stepWildcard
)

type pathStep struct {
	kind      pathStepKind
	recursive bool // reached by ..
	name      string
	index     int
}

// maxJSONPathSteps bounds an expression's length in steps.
const maxJSONPathSteps = 64

// CompileJSONPath compiles expr, which must start with "$". Its error
// says what is wrong and where.
func CompileJSONPath(expr string) (*JSONPath, error) {
	if expr == "" {
		return nil, fmt.Errorf("empty JSONPath")
	}
	if expr[0] != '$' {
		return nil, fmt.Errorf("JSONPath %q must start with $", yamlfile.Clip(expr, 60))
	}
	p := &JSONPath{raw: expr}
	s := expr[1:]
	pos := 1
	fail := func(format string, args ...any) (*JSONPath, error) {
		return nil, fmt.Errorf("JSONPath %q at offset %d: %s", yamlfile.Clip(expr, 60), pos, fmt.Sprintf(format, args...))
	}
	for len(s) > 0 {
		if len(p.steps) >= maxJSONPathSteps {
			return fail("more than %d steps", maxJSONPathSteps)
		}
		switch s[0] {
		case '.':
			recursive := strings.HasPrefix(s, "..")
			n := 1
			if recursive {
				n = 2
			}
			rest := s[n:]
			if strings.HasPrefix(rest, "[") && recursive {
				// $..[0] or $..['a']: the bracket step below, recursive.
				s, pos = rest, pos+n
				st, used, err := bracket(s)
				if err != nil {
					return fail("%v", err)
				}
				st.recursive = true
				p.steps = append(p.steps, st)
				s, pos = s[used:], pos+used
				continue
			}
			if strings.HasPrefix(rest, "*") {
				p.steps = append(p.steps, pathStep{kind: stepWildcard, recursive: recursive})
				s, pos = rest[1:], pos+n+1
				continue
			}
			end := 0
			for end < len(rest) && memberChar(rest[end]) {
				end++
			}
			if end == 0 {
				if rest == "" {
					return fail("a member name must follow %q", s[:n])
				}
				return fail("unexpected %q after %q (a member name is letters, digits, _ and -; use ['…'] for others)", rest[:1], s[:n])
			}
			p.steps = append(p.steps, pathStep{kind: stepMember, recursive: recursive, name: rest[:end]})
			s, pos = rest[end:], pos+n+end
		case '[':
			st, used, err := bracket(s)
			if err != nil {
				return fail("%v", err)
			}
			p.steps = append(p.steps, st)
			s, pos = s[used:], pos+used
		default:
			return fail("unexpected %q (expected . or [)", s[:1])
		}
	}
	return p, nil
}

func memberChar(c byte) bool {
	return c == '_' || c == '-' || c == '$' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

// bracket parses a [..] step at the start of s and returns it with the
// bytes it used.
func bracket(s string) (pathStep, int, error) {
	end := -1
	if len(s) > 1 && (s[1] == '\'' || s[1] == '"') {
		q := s[1]
		i := 2
		var name strings.Builder
		for ; i < len(s) && s[i] != q; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			name.WriteByte(s[i])
		}
		if i >= len(s) {
			return pathStep{}, 0, fmt.Errorf("unclosed quote in [%c…]", q)
		}
		if i+1 >= len(s) || s[i+1] != ']' {
			return pathStep{}, 0, fmt.Errorf("expected ] after the quoted name")
		}
		return pathStep{kind: stepMember, name: name.String()}, i + 2, nil
	}
	end = strings.IndexByte(s, ']')
	if end < 0 {
		return pathStep{}, 0, fmt.Errorf("unclosed [")
	}
	inner := strings.TrimSpace(s[1:end])
	if inner == "*" {
		return pathStep{kind: stepWildcard}, end + 1, nil
	}
	if strings.ContainsAny(inner, "?:,()@") {
		return pathStep{}, 0, fmt.Errorf("[%s]: filters, slices and unions are not supported (use a member, an index or *)", yamlfile.Clip(inner, 40))
	}
	n, err := strconv.Atoi(inner)
	if err != nil || len(inner) > 9 {
		return pathStep{}, 0, fmt.Errorf("[%s]: expected an array index, '*' or a quoted member name", yamlfile.Clip(inner, 40))
	}
	return pathStep{kind: stepIndex, index: n}, end + 1, nil
}

// String returns the expression as written.
func (p *JSONPath) String() string { return p.raw }

// maxJSONPathResults bounds how many values Eval returns.
const maxJSONPathResults = 1000

// Eval returns the values doc (as encoding/json decodes into an any)
// has at the path, in document order (members of an object in sorted key
// order), at most 1,000. None: nil.
func (p *JSONPath) Eval(doc any) []any {
	cur := []any{doc}
	for _, st := range p.steps {
		var next []any
		for _, v := range cur {
			if st.recursive {
				next = descend(v, st, next)
			} else {
				next = apply(v, st, next)
			}
			if len(next) >= maxJSONPathResults {
				next = next[:maxJSONPathResults]
				break
			}
		}
		cur = next
		if len(cur) == 0 {
			return nil
		}
	}
	return cur
}

// apply appends what step st selects in v.
func apply(v any, st pathStep, out []any) []any {
	switch st.kind {
	case stepMember:
		if m, ok := v.(map[string]any); ok {
			if x, ok := m[st.name]; ok {
				out = append(out, x)
			}
		}
	case stepIndex:
		if a, ok := v.([]any); ok {
			i := st.index
			if i < 0 {
				i += len(a)
			}
			if i >= 0 && i < len(a) {
				out = append(out, a[i])
			}
		}
	case stepWildcard:
		switch x := v.(type) {
		case []any:
			out = append(out, x...)
		case map[string]any:
			for _, k := range sortedKeys(x) {
				out = append(out, x[k])
			}
		}
	}
	return out
}

// descend appends what st selects in v and in everything below it.
func descend(v any, st pathStep, out []any) []any {
	if len(out) >= maxJSONPathResults {
		return out
	}
	out = apply(v, st, out)
	switch x := v.(type) {
	case []any:
		for _, e := range x {
			if len(out) >= maxJSONPathResults {
				break
			}
			out = descend(e, st, out)
		}
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if len(out) >= maxJSONPathResults {
				break
			}
			out = descend(x[k], st, out)
		}
	}
	return out
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
