package lint

import (
	"fmt"
	"slices"
)

// availability reports entry nodes whose estimated success rate is below
// the threshold. The estimate is
//
//	success(n) = Π over synchronous out-edges e = n → c of (1 − errorRate(e)) × success(c)
//
// with success = 1 for a node without synchronous callees, computed over
// the depth-first search from the entry that takes each node's edges in
// the order of their targets' IDs: an edge back to a node on the search
// path (a cycle, or a self-call) contributes 1; an edge to a node already
// finished contributes (1 − errorRate(e)) × its success, so a node reached
// along several paths counts once per path. errorRate = Errors/Calls.
func (x *index) availability(s Setting) []Finding {
	n := len(x.ids)
	const (
		white = iota
		gray
		black
	)
	color := make([]int, n)
	succ := make([]float64, n)
	next := make([]int, n)
	var out []Finding
	for _, ent := range x.entries() {
		clear(color)
		var (
			stack = []int{ent}
			tree  []*edge // synchronous edges counted (back edges are not)
		)
		color[ent] = gray
		next[ent] = 0
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			if next[v] < len(x.out[v]) {
				e := x.out[v][next[v]]
				next[v]++
				if !e.Async && color[e.dst] == white {
					color[e.dst] = gray
					next[e.dst] = 0
					stack = append(stack, e.dst)
				}
				continue
			}
			// v is done: its callees are finished, or on the path (gray).
			p := 1.0
			for _, e := range x.out[v] {
				if e.Async || color[e.dst] == gray {
					continue
				}
				p *= (1 - e.errorRate()) * succ[e.dst]
				tree = append(tree, e)
			}
			succ[v] = p
			color[v] = black
			stack = stack[:len(stack)-1]
		}
		if len(tree) == 0 || !(succ[ent] < s.Threshold) {
			continue
		}
		out = append(out, x.availabilityFinding(ent, succ[ent], tree, s))
	}
	return out
}

func (x *index) availabilityFinding(ent int, a float64, tree []*edge, s Setting) Finding {
	var (
		edges [][2]string
		worst *edge
	)
	slices.SortFunc(tree, func(a, b *edge) int {
		if a.src != b.src {
			return a.src - b.src
		}
		return a.dst - b.dst
	})
	failing := 0
	for _, e := range tree {
		if e.errorRate() == 0 {
			continue
		}
		failing++
		edges = append(edges, x.pair(e))
		if worst == nil || e.errorRate() > worst.errorRate() {
			worst = e
		}
	}
	msg := fmt.Sprintf("Entry %s has an estimated success rate of %s, below %s, from the error rates of its %s in series",
		x.ids[ent], fmtPct(a, 3), fmtPct(s.Threshold, 3), plural(len(tree), "synchronous call edge"))
	exemplar := ""
	if worst != nil {
		msg += fmt.Sprintf("; the worst is %s → %s, failing %s of %s", x.ids[worst.src], x.ids[worst.dst],
			fmtPct(worst.errorRate(), 2), plural(int(min(worst.Calls, 1<<31-1)), "call"))
		exemplar = worst.Exemplar
	}
	if nd := x.nodes[ent]; nd.Requests > 0 {
		msg += fmt.Sprintf(" (observed at the entry: %s)", fmtPct(1-min(float64(max(nd.Errors, 0))/float64(nd.Requests), 1), 3))
	}
	return Finding{
		Nodes:     []string{x.ids[ent]},
		Edges:     edges,
		Value:     a,
		Threshold: s.Threshold,
		Exemplar:  exemplar,
		Message:   msg + ".",
	}
}
