package lint

import "fmt"

// fanOut reports nodes with more distinct callees (other than
// themselves; virtual nodes and asynchronous edges count) than the
// threshold.
func (x *index) fanOut(s Setting) []Finding {
	var out []Finding
	for v := range x.ids {
		var nodes []string
		var edges [][2]string
		exemplar := ""
		for _, e := range x.out[v] {
			if e.dst == v {
				continue
			}
			nodes = append(nodes, x.ids[e.dst])
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
			Message: fmt.Sprintf("%s calls %s, more than %s: %s.",
				x.ids[v], plural(len(nodes), "distinct callee"), fmtNum(s.Threshold), fmtList(nodes, 5)),
		})
	}
	return out
}

// fanIn reports nodes with more distinct callers (other than themselves)
// than the threshold.
func (x *index) fanIn(s Setting) []Finding {
	var out []Finding
	for v := range x.ids {
		var nodes []string
		var edges [][2]string
		exemplar := ""
		for _, e := range x.in[v] {
			if e.src == v {
				continue
			}
			nodes = append(nodes, x.ids[e.src])
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
			Message: fmt.Sprintf("%s has %s, more than %s: %s.",
				x.ids[v], plural(len(nodes), "distinct caller"), fmtNum(s.Threshold), fmtList(nodes, 5)),
		})
	}
	return out
}
