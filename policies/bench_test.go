package policies

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// BenchmarkCheck checks 5,000 edges between 500 services against 50
// policies (deny and allow_only with prefix, literal, suffix, contains and
// class globs, and deny_undeclared against an architecture that declares
// 99% of the edges), the load of one background evaluation of a large
// graph, and reports the time per edge (all 50 policies). Compare runs with
//
//	go test -run '^$' -bench BenchmarkCheck -count 10 ./policies > new.txt
//	benchstat old.txt new.txt
func BenchmarkCheck(b *testing.B) {
	const (
		nodes    = 500
		nEdges   = 5000
		policies = 50
	)
	name := func(i int) string { return fmt.Sprintf("svc-%03d", i%nodes) }
	// 5,000 distinct edges sorted by (source, target), as a flow graph
	// serves them; the architecture declares all but every 100th.
	arch := store.Architecture{Name: "shop"}
	for i := range nodes {
		arch.Nodes = append(arch.Nodes, store.ArchNode{ID: name(i), Service: name(i), Namespace: "shop"})
	}
	edges := make([]Edge, 0, nEdges)
	for i := range nEdges {
		src, dst := i/(nEdges/nodes), (i*37+11)%nodes
		edges = append(edges, Edge{Source: "shop/" + name(src), Target: "shop/" + name(dst), Calls: int64(i)})
		if i%100 != 0 {
			arch.Edges = append(arch.Edges, store.ArchEdge{Source: name(src), Target: name(dst)})
		}
	}
	slices.SortFunc(edges, func(a, b Edge) int {
		return cmp.Or(cmp.Compare(a.Source, b.Source), cmp.Compare(a.Target, b.Target))
	})
	decl := DeclaredEdges(arch, aggregate.LevelService)
	declared := func(string, aggregate.Level) (map[string]bool, bool) { return decl, true }

	var text strings.Builder
	text.WriteString("policies:\n")
	for i := range policies {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&text, "  - {name: p%d, deny: {from: 'svc-0%d*', to: 'svc-4[0-4]?'}}\n", i, i%5)
		case 1:
			fmt.Fprintf(&text, "  - {name: p%d, deny: {from: [svc-%03d, svc-%03d], to: '*-%03d'}}\n", i, i, i+1, i+2)
		case 2:
			fmt.Fprintf(&text, "  - {name: p%d, allow_only: {to: 'svc-%03d', from: ['svc-00?', 'shop/svc-1*']}}\n", i, i*9)
		case 3:
			fmt.Fprintf(&text, "  - {name: p%d, deny: {to: '*-%d99*'}}\n", i, i)
		case 4:
			fmt.Fprintf(&text, "  - {name: p%d, deny_undeclared: shop}\n", i)
		}
	}
	set := mustParse(b, text.String())
	var matches int
	b.ReportAllocs()
	for b.Loop() {
		matches = len(set.Check(aggregate.LevelService, edges, declared))
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/nEdges, "ns/edge")
	b.ReportMetric(float64(matches), "matches")
}
