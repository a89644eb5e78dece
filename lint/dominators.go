package lint

import (
	"container/heap"
	"fmt"
	"slices"
)

// span is the part of one entry's dominator-tree preorder that a node
// dominates, itself excluded.
type span struct {
	entry  int
	nodes  []int
	lo, hi int
}

// singlePoints reports nodes whose loss cuts an entry node off from
// nodes it reaches (over all edges), with the number of nodes cut off
// above the threshold. The nodes a node d cuts off from entry s are the
// nodes d dominates in the graph seen from s, d excluded; the count is
// the size of their union over all entries. An entry is never a single
// point of its own reach. The finding lists at most maxEvidence of the
// nodes cut off.
func (x *index) singlePoints(s Setting) []Finding {
	n := len(x.ids)
	if n == 0 {
		return nil
	}
	entries := x.entries()
	w := newDomWork(n)
	contrib := make([][]span, n)
	for _, ent := range entries {
		order, pre, size := w.dominators(x, ent)
		for _, v := range order {
			if v != ent && size[v] > 1 {
				contrib[v] = append(contrib[v], span{ent, order, pre[v] + 1, pre[v] + size[v]})
			}
		}
	}
	var out []Finding
	mark := make([]int, n)
	for d := range n {
		if len(contrib[d]) == 0 {
			continue
		}
		var cut, from []int
		if len(contrib[d]) == 1 {
			sp := contrib[d][0]
			from, cut = []int{sp.entry}, sp.nodes[sp.lo:sp.hi]
		} else {
			for _, sp := range contrib[d] {
				from = append(from, sp.entry)
				for _, v := range sp.nodes[sp.lo:sp.hi] {
					if mark[v] != d+1 {
						mark[v] = d + 1
						cut = append(cut, v)
					}
				}
			}
		}
		if !(float64(len(cut)) > s.Threshold) {
			continue
		}
		listed := smallest(cut, maxEvidence)
		var edges [][2]string
		exemplar := ""
		for _, e := range x.out[d] {
			if _, ok := slices.BinarySearch(listed, e.dst); ok && e.dst != d {
				edges = append(edges, x.pair(e))
				if exemplar == "" {
					exemplar = e.Exemplar
				}
			}
		}
		cutNames := x.names(listed)
		what := "entry"
		if len(from) > 1 {
			what = "entries"
		}
		out = append(out, Finding{
			Nodes:     append([]string{x.ids[d]}, cutNames...),
			Edges:     edges,
			Value:     float64(len(cut)),
			Threshold: s.Threshold,
			Exemplar:  exemplar,
			Message: fmt.Sprintf("Losing %s cuts %s %s off from %s reached only through it: %s.",
				x.ids[d], what, fmtList(x.names(from), 5), plural(len(cut), "node"), fmtListN(cutNames, len(cut), 5)),
		})
	}
	return out
}

// maxEvidence is the most nodes a single_point finding lists as cut off
// (the ones with the least IDs); Value counts them all.
const maxEvidence = 100

// smallest returns the k least of the distinct values vs, sorted, in
// O(len(vs) log k). It does not modify vs.
func smallest(vs []int, k int) []int {
	if len(vs) <= k {
		out := slices.Clone(vs)
		slices.Sort(out)
		return out
	}
	h := intMaxHeap(slices.Clone(vs[:k]))
	heap.Init(&h)
	for _, v := range vs[k:] {
		if v < h[0] {
			h[0] = v
			heap.Fix(&h, 0)
		}
	}
	slices.Sort(h)
	return h
}

type intMaxHeap []int

func (h intMaxHeap) Len() int           { return len(h) }
func (h intMaxHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h intMaxHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *intMaxHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *intMaxHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// domWork is scratch space for dominators, reused across entries.
type domWork struct {
	seen  []int // stamp: reached in the current walk when == stamp
	stamp int
	po    []int // postorder number
	idom  []int
	next  []int // DFS: next out-edge to look at
	kids  [][]int
}

func newDomWork(n int) *domWork {
	return &domWork{
		seen: make([]int, n), po: make([]int, n), idom: make([]int, n),
		next: make([]int, n), kids: make([][]int, n),
	}
}

// dominators computes the dominator tree of the nodes reachable from
// entry over all edges, by the iterative algorithm of Cooper, Harvey and
// Kennedy ("A Simple, Fast Dominance Algorithm", 2001). It returns the
// tree's preorder and, indexed by node, each reached node's position in
// it and the size of its subtree. pre and size are valid only for the
// reached nodes and only until the next call.
func (w *domWork) dominators(x *index, entry int) (order []int, pre, size []int) {
	w.stamp++
	st := w.stamp
	// Iterative DFS for the postorder.
	var post []int
	stack := []int{entry}
	w.seen[entry] = st
	w.next[entry] = 0
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		if w.next[v] < len(x.out[v]) {
			u := x.out[v][w.next[v]].dst
			w.next[v]++
			if w.seen[u] != st {
				w.seen[u] = st
				w.next[u] = 0
				stack = append(stack, u)
			}
			continue
		}
		stack = stack[:len(stack)-1]
		w.po[v] = len(post)
		post = append(post, v)
	}
	rpo := make([]int, len(post))
	for i, v := range post {
		rpo[len(post)-1-i] = v
		w.idom[v] = -1
	}
	w.idom[entry] = entry
	for changed := true; changed; {
		changed = false
		for _, v := range rpo[1:] {
			nd := -1
			for _, e := range x.in[v] {
				p := e.src
				if p == v || w.seen[p] != st || w.idom[p] < 0 {
					continue
				}
				if nd < 0 {
					nd = p
				} else {
					nd = w.intersect(p, nd)
				}
			}
			if nd != w.idom[v] {
				w.idom[v] = nd
				changed = true
			}
		}
	}
	// The tree's preorder and subtree sizes.
	for _, v := range rpo {
		w.kids[v] = w.kids[v][:0]
	}
	for _, v := range rpo[1:] {
		w.kids[w.idom[v]] = append(w.kids[w.idom[v]], v)
	}
	pre, size = w.next, w.po // reuse: the walk above is done with them
	order = make([]int, 0, len(rpo))
	stack = append(stack[:0], entry)
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		pre[v] = len(order)
		order = append(order, v)
		for i := len(w.kids[v]) - 1; i >= 0; i-- {
			stack = append(stack, w.kids[v][i])
		}
	}
	for _, v := range order {
		size[v] = 1
	}
	for i := len(order) - 1; i > 0; i-- {
		v := order[i]
		size[w.idom[v]] += size[v]
	}
	return order, pre, size
}

// intersect returns the nearest common dominator of a and b.
func (w *domWork) intersect(a, b int) int {
	for a != b {
		for w.po[a] < w.po[b] {
			a = w.idom[a]
		}
		for w.po[b] < w.po[a] {
			b = w.idom[b]
		}
	}
	return a
}
