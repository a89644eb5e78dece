package policies

import (
	"strings"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// scopePrefix begins the key of DeclaredEdges that records the namespace
// an architecture is the design of. A call's key is "source\x00target"
// with a source that is never empty (flow-graph nodes have names), so no
// call has this key.
const scopePrefix = "\x00scope\x00"

// DeclaredEdges computes the declared calls of a stored architecture at a
// level, as "source\x00target" keys naming the nodes as the flow graph
// does at that level, and as the comparison view (GetFlowGraph with
// compare=NAME) does:
//
//   - a declared node's name at the level is its Service, Instance, Zone,
//     Region or Namespace; at the service and instance levels a node with
//     a namespace is "namespace/name", like the observed node IDs
//     (aggregate.Node.ID);
//   - a node without a name at the level (an empty field) is left out,
//     with its calls: no "unknown" fallback applies;
//   - each declared call maps to the pair of its ends' names, so coarse
//     levels get self pairs (two services of one zone calling each other
//     declare zone → same zone).
//
// When all the nodes have the same namespace, the architecture is the
// design of that namespace (a spigo architecture is the service.namespace
// of its traces): the map then also holds one key that is no call,
// "\x00scope\x00" + namespace, which Check reads to leave alone the edges
// of other namespaces. Callers that count or list the calls should skip
// keys beginning with "\x00".
func DeclaredEdges(a store.Architecture, level aggregate.Level) map[string]bool {
	names := make(map[string]string, len(a.Nodes)) // node ID → name at level
	for _, n := range a.Nodes {
		if name := n.NameAt(level); name != "" {
			names[n.ID] = name
		}
	}
	out := make(map[string]bool, len(a.Edges)+1)
	for _, e := range a.Edges {
		src, ok1 := names[e.Source]
		dst, ok2 := names[e.Target]
		if ok1 && ok2 {
			out[src+"\x00"+dst] = true
		}
	}
	if ns := a.Namespace(); ns != "" {
		out[scopePrefix+ns] = true
	}
	return out
}

// scopeOf returns the namespace DeclaredEdges recorded in decl, if any.
func scopeOf(decl map[string]bool) (string, bool) {
	for k := range decl {
		if ns, ok := strings.CutPrefix(k, scopePrefix); ok {
			return ns, true
		}
	}
	return "", false
}

// calls counts the calls of decl, the keys that are not the scope.
func calls(decl map[string]bool) int {
	n := 0
	for k := range decl {
		if !strings.HasPrefix(k, "\x00") {
			n++
		}
	}
	return n
}
