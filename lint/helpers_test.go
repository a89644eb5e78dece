package lint

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseGraph builds a Graph from a compact description: tokens separated
// by white space, each a node or an edge, with optional attributes in
// brackets.
//
//	a  +a  ~db            a node; + marks an entry, ~ a virtual node
//	+a[req=100,err=2]     a node with Requests and Errors
//	a>b  a>>b             a synchronous / asynchronous edge
//	a>b[calls=100,err=5,p99=10ms,retried=30,att=3,to=100ms,ex=ab12]
//
// Edge endpoints not declared as nodes are added as plain nodes, in order
// of appearance. P99 is NaN unless given.
func parseGraph(tb testing.TB, s string) Graph {
	tb.Helper()
	var g Graph
	seen := map[string]bool{}
	addNode := func(n Node) {
		if !seen[n.ID] {
			seen[n.ID] = true
			g.Nodes = append(g.Nodes, n)
		}
	}
	var edgeNodes []string
	for _, tok := range strings.Fields(s) {
		body, attrs := tok, map[string]string{}
		if i := strings.IndexByte(tok, '['); i >= 0 {
			if !strings.HasSuffix(tok, "]") {
				tb.Fatalf("token %q: no closing ]", tok)
			}
			body = tok[:i]
			for _, kv := range strings.Split(tok[i+1:len(tok)-1], ",") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					tb.Fatalf("token %q: attribute %q without =", tok, kv)
				}
				attrs[k] = v
			}
		}
		num := func(k string) float64 {
			v, ok := attrs[k]
			if !ok {
				return 0
			}
			delete(attrs, k)
			if d, err := time.ParseDuration(v); err == nil && strings.ContainsAny(v, "smhnuµ") {
				return float64(d)
			}
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("token %q: %s=%q: %v", tok, k, v, err)
			}
			return f
		}
		if src, dst, ok := strings.Cut(body, ">"); ok {
			e := Edge{Source: src, Target: dst, P99: math.NaN()}
			if strings.HasPrefix(dst, ">") {
				e.Target, e.Async = dst[1:], true
			}
			if _, ok := attrs["p99"]; ok {
				e.P99 = num("p99")
			}
			e.Calls = int64(num("calls"))
			e.Errors = int64(num("err"))
			e.Retried = int64(num("retried"))
			e.Attempts = num("att")
			e.TimeoutNs = int64(num("to"))
			e.Exemplar = attrs["ex"]
			delete(attrs, "ex")
			if len(attrs) > 0 {
				tb.Fatalf("token %q: unknown attributes %v", tok, attrs)
			}
			g.Edges = append(g.Edges, e)
			edgeNodes = append(edgeNodes, e.Source, e.Target)
			continue
		}
		n := Node{ID: body}
		switch {
		case strings.HasPrefix(body, "+"):
			n.ID, n.Entry = body[1:], true
		case strings.HasPrefix(body, "~"):
			n.ID, n.Virtual = body[1:], true
		}
		n.Requests = int64(num("req"))
		n.Errors = int64(num("err"))
		if len(attrs) > 0 {
			tb.Fatalf("token %q: unknown attributes %v", tok, attrs)
		}
		addNode(n)
	}
	for _, id := range edgeNodes {
		addNode(Node{ID: id})
	}
	return g
}

// chain returns "n0>n1 n1>n2 …" over names prefix0..prefixN with attrs
// on every edge.
func chain(prefix string, hops int, attrs string) string {
	var b strings.Builder
	for i := range hops {
		fmt.Fprintf(&b, "%s%d>%s%d%s ", prefix, i, prefix, i+1, attrs)
	}
	return b.String()
}

// summary renders a finding's rule, severity, nodes, value and threshold:
// "fan_out warning [a b c] 2/1".
func summary(f Finding) string {
	return fmt.Sprintf("%s %s %v %g/%g", f.Rule, f.Severity, f.Nodes, f.Value, f.Threshold)
}

func summaries(fs []Finding) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = summary(f)
	}
	return out
}

// only returns the settings with every rule disabled but rules.
func only(rules ...Rule) map[Rule]Setting {
	s := Defaults()
	for r, v := range s {
		v.Enabled = false
		s[r] = v
	}
	for _, r := range rules {
		v := s[r]
		v.Enabled = true
		s[r] = v
	}
	return s
}
