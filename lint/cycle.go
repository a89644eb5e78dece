package lint

import (
	"fmt"
	"strings"
)

// cycles reports every strongly connected component of more than one node
// (over all edges, asynchronous ones included) and every self-call, when
// its node count is above the threshold.
func (x *index) cycles(s Setting) []Finding {
	var out []Finding
	comps, comp := x.sccs(nil)
	for _, c := range comps {
		if len(c) < 2 || !(float64(len(c)) > s.Threshold) {
			continue
		}
		var edges [][2]string
		exemplar := ""
		async := 0
		for _, v := range c {
			for _, e := range x.out[v] {
				if e.dst == v || comp[e.dst] != comp[v] {
					continue
				}
				edges = append(edges, x.pair(e))
				if e.Async {
					async++
				}
				if exemplar == "" {
					exemplar = e.Exemplar
				}
			}
		}
		names := x.names(c)
		note := ""
		if async > 0 {
			note = fmt.Sprintf(" (%s asynchronous)", plural(async, "edge"))
		}
		out = append(out, Finding{
			Nodes:     names,
			Edges:     edges,
			Value:     float64(len(c)),
			Threshold: s.Threshold,
			Exemplar:  exemplar,
			Message: fmt.Sprintf("%s call each other in a cycle of %s%s: %s.",
				plural(len(c), "node"), plural(len(edges), "edge"), note, fmtList(names, 8)),
		})
	}
	for v := range x.ids {
		e := x.find(v, v)
		if e == nil || !(1 > s.Threshold) {
			continue
		}
		kind := "itself"
		if e.Async {
			kind = "itself asynchronously"
		}
		out = append(out, Finding{
			Nodes:     []string{x.ids[v]},
			Edges:     [][2]string{x.pair(e)},
			Value:     1,
			Threshold: s.Threshold,
			Exemplar:  e.Exemplar,
			Message:   strings.TrimSpace(fmt.Sprintf("%s calls %s.", x.ids[v], kind)),
		})
	}
	return out
}
