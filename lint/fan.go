package lint

import "fmt"

// fanOut reports nodes with more distinct callees (other than
// themselves; virtual nodes and asynchronous edges count) than the
// threshold.
func (x *index) fanOut(s Setting) []Finding {
	return x.fan(s, x.out, func(e *edge) int { return e.dst }, "%s calls %s, more than %s: %s.", "distinct callee")
}

// fanIn reports nodes with more distinct callers (other than themselves)
// than the threshold.
func (x *index) fanIn(s Setting) []Finding {
	return x.fan(s, x.in, func(e *edge) int { return e.src }, "%s has %s, more than %s: %s.", "distinct caller")
}

// fan reports the nodes v whose edges adj[v] reach more distinct other
// nodes (other(e), v itself left out) than the threshold; format names
// the node, the count of noun, the threshold and the list.
func (x *index) fan(s Setting, adj [][]*edge, other func(*edge) int, format, noun string) []Finding {
	var out []Finding
	for v := range x.ids {
		var nodes []string
		var edges [][2]string
		exemplar := ""
		for _, e := range adj[v] {
			if other(e) == v {
				continue
			}
			nodes = append(nodes, x.ids[other(e)])
			edges = append(edges, x.pair(e))
			if exemplar == "" {
				exemplar = e.Exemplar
			}
		}
		if !(float64(len(nodes)) > s.Threshold) {
			continue
		}
		out = append(out, Finding{
			Nodes:     append([]string{x.ids[v]}, nodes...),
			Edges:     edges,
			Value:     float64(len(nodes)),
			Threshold: s.Threshold,
			Exemplar:  exemplar,
			Message:   fmt.Sprintf(format, x.ids[v], plural(len(nodes), noun), fmtNum(s.Threshold), fmtList(nodes, 5)),
		})
	}
	return out
}
