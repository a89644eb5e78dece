package lint

import "slices"

// sccs returns the strongly connected components of the graph of the
// edges keep accepts (all edges when keep is nil), by Tarjan's algorithm
// run with an explicit stack, so that its depth is not limited by the
// goroutine stack. Components come in reverse topological order: every
// component comes after all components it has an edge to. comp maps each
// node to the number of its component (its position in the result). Each
// component's nodes are sorted.
func (x *index) sccs(keep func(*edge) bool) (comps [][]int, comp []int) {
	n := len(x.ids)
	const unvisited = -1
	num := make([]int, n) // visit order, unvisited before
	low := make([]int, n)
	onStack := make([]bool, n)
	comp = make([]int, n)
	for i := range num {
		num[i] = unvisited
	}
	var stack []int // Tarjan's stack of visited nodes
	type frame struct{ v, next int }
	var call []frame // the DFS path, with the next out-edge to look at
	counter := 0
	for root := 0; root < n; root++ {
		if num[root] != unvisited {
			continue
		}
		call = append(call, frame{root, 0})
		num[root], low[root] = counter, counter
		counter++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			v := f.v
			if f.next < len(x.out[v]) {
				e := x.out[v][f.next]
				f.next++
				if keep != nil && !keep(e) {
					continue
				}
				w := e.dst
				switch {
				case num[w] == unvisited:
					num[w], low[w] = counter, counter
					counter++
					stack = append(stack, w)
					onStack[w] = true
					call = append(call, frame{w, 0})
				case onStack[w]:
					low[v] = min(low[v], num[w])
				}
				continue
			}
			// v is done.
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].v
				low[p] = min(low[p], low[v])
			}
			if low[v] == num[v] {
				var c []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					comp[w] = len(comps)
					c = append(c, w)
					if w == v {
						break
					}
				}
				slices.Sort(c)
				comps = append(comps, c)
			}
		}
	}
	return comps, comp
}

// isSync reports whether e is a synchronous call.
func isSync(e *edge) bool { return !e.Async }
