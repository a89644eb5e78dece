package yamlfile

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxMergeDepth bounds nested merge keys (<<): Pairs follows the merge
// keys of merged mappings this deep.
const MaxMergeDepth = 8

// Pair is one entry of a mapping.
type Pair struct {
	// K and V are the key and the value, aliases followed.
	K, V *yaml.Node
	// Name is the key's text.
	Name string
}

// Pairs returns the entries of the mapping m, reporting keys that are not
// strings and duplicate keys under path. Merge keys (<<) are expanded:
// explicit keys override merged ones, earlier merged mappings override
// later ones. Once the work budget is spent (see Charge) it returns nil.
func (c *Collector) Pairs(m *yaml.Node, path string) []Pair {
	return c.pairs(m, path, 0)
}

func (c *Collector) pairs(m *yaml.Node, path string, depth int) []Pair {
	if !c.Charge(len(m.Content)/2, m.Line) {
		return nil
	}
	var out, merged []Pair
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := Resolve(m.Content[i]), Resolve(m.Content[i+1])
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			if depth >= MaxMergeDepth {
				c.Add(k.Line, path, "merge keys (<<) nested too deep")
				continue
			}
			srcs := []*yaml.Node{v}
			if v.Kind == yaml.SequenceNode {
				srcs = v.Content
			}
			for _, s := range srcs {
				s = Resolve(s)
				if s.Kind != yaml.MappingNode {
					c.Add(k.Line, path, "a merge key (<<) takes a mapping or a list of mappings, not %s", c.describe(s))
					continue
				}
				merged = append(merged, c.pairs(s, path, depth+1)...)
			}
			continue
		}
		if k.Kind != yaml.ScalarNode || IsNull(k) {
			c.Add(k.Line, path, "keys must be strings, not %s", c.describe(k))
			continue
		}
		if l, dup := seen[k.Value]; dup {
			c.Add(k.Line, JoinKey(path, k.Value), "duplicate key (first at line %d)", l)
			continue
		}
		seen[k.Value] = k.Line
		out = append(out, Pair{k, v, k.Value})
	}
	for _, kv := range merged {
		if _, ok := seen[kv.Name]; !ok {
			seen[kv.Name] = kv.K.Line
			out = append(out, kv)
		}
	}
	return out
}

// Items returns the entries of the list n; nil once the work budget is
// spent (see Charge).
func (c *Collector) Items(n *yaml.Node) []*yaml.Node {
	if !c.Charge(len(n.Content), n.Line) {
		return nil
	}
	return n.Content
}

// Scalar returns the text of kv's value, a scalar; a mapping, a list or
// no value is an error at key wanting what ("a name").
func (c *Collector) Scalar(kv Pair, key, what string) (string, bool) {
	v := kv.V
	switch {
	case v.Kind != yaml.ScalarNode:
		c.Add(v.Line, key, "want %s, not %s", what, c.describe(v))
		return "", false
	case IsNull(v):
		c.Add(kv.K.Line, key, "has no value; want %s", what)
		return "", false
	case !c.Charge(len(v.Value)>>6, v.Line):
		return "", false
	}
	return v.Value, true
}

// Name returns kv's value as a name: a scalar in which check (such as
// CheckName with a length) finds no fault; check returns the fault, ""
// when there is none.
func (c *Collector) Name(kv Pair, key string, check func(string) string) (string, bool) {
	s, ok := c.Scalar(kv, key, "a name")
	if !ok {
		return "", false
	}
	if msg := check(s); msg != "" {
		c.Add(kv.V.Line, key, "%s", msg)
		return "", false
	}
	return s, true
}

// IsNull reports whether n is YAML's null (an empty value, ~ or null).
func IsNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.Tag == "!!null" }

// Resolve follows aliases.
func Resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// Describe names a node's value for messages: "a mapping", "a list", "an
// empty value", "the number 5", "the boolean true", a string quoted (at
// most 64 bytes of it, as numbers).
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!null":
			return "an empty value"
		case "!!int", "!!float":
			return "the number " + Clip(n.Value, 64)
		case "!!bool":
			return "the boolean " + n.Value
		}
		return strconv.Quote(Clip(n.Value, 64))
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "nothing"
}

// JoinKey appends key, shortened to 64 bytes, to the dotted path.
func JoinKey(path, key string) string {
	if path == "" {
		return Clip(key, 64)
	}
	return path + "." + Clip(key, 64)
}

// OrList writes "a, b or c".
func OrList(l []string) string {
	if len(l) < 2 {
		return strings.Join(l, "")
	}
	return strings.Join(l[:len(l)-1], ", ") + " or " + l[len(l)-1]
}
