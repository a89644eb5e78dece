package query

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

// observedGraph builds a graph from nodes ("name", or "~name" for a virtual
// node) and edges ("src>dst"; the edge is virtual when dst is a virtual
// node).
func observedGraph(nodes []string, edges []string) *aggregate.Graph {
	g := &aggregate.Graph{Seconds: 60}
	virtual := map[string]bool{}
	for _, n := range nodes {
		id, v := strings.CutPrefix(n, "~")
		virtual[id] = v
		g.Nodes = append(g.Nodes, aggregate.GraphNode{ID: id, Virtual: v})
	}
	for _, e := range edges {
		src, dst, _ := strings.Cut(e, ">")
		g.Edges = append(g.Edges, aggregate.GraphEdge{Source: src, Target: dst, Virtual: virtual[dst],
			Calls: rollup(0, 5*ms, 10)})
	}
	sortGraph(g)
	return g
}

// declaredArch builds an architecture from nodes "id:service/instance/zone/region/namespace"
// (fields may be empty) and edges "id>id".
func declaredArch(nodes []string, edges []string) *store.Architecture {
	a := &store.Architecture{Name: "test"}
	for _, n := range nodes {
		id, attrs, _ := strings.Cut(n, ":")
		f := strings.Split(attrs, "/")
		for len(f) < 5 {
			f = append(f, "")
		}
		a.Nodes = append(a.Nodes, store.ArchNode{ID: id, Service: f[0], Instance: f[1], Zone: f[2], Region: f[3], Namespace: f[4]})
	}
	for _, e := range edges {
		src, dst, _ := strings.Cut(e, ">")
		a.Edges = append(a.Edges, store.ArchEdge{Source: src, Target: dst})
	}
	return a
}

// TestCompareArchitecture classifies observed × declared edges at each level.
func TestCompareArchitecture(t *testing.T) {
	// Two zones of one region; web calls db and cache.
	shop := []string{
		"web0:web/web-0/zoneA/us/shop",
		"web1:web/web-1/zoneB/us/shop",
		"db0:db/db-0/zoneA/us/shop",
		"cache0:cache/cache-0/zoneB/us/infra",
		"lonely:lonely/lonely-0/zoneC/eu/shop",
		"nozone:batch/batch-0///shop", // no zone, no region
	}
	shopEdges := []string{"web0>db0", "web1>db0", "web0>cache0", "web1>cache0", "nozone>db0"}

	for _, tt := range []struct {
		name     string
		level    aggregate.Level
		observed []string // nodes
		oedges   []string
		declared []string
		dedges   []string
		// want: edge "src>dst" → class (observed and added edges).
		want      map[string]string
		wantNodes []string // declared-only nodes
	}{
		{
			// Declared nodes are named namespace/name, like observed ones.
			name:  "service level",
			level: aggregate.LevelService, observed: []string{"shop/web", "shop/db", "infra/cache", "~redis"},
			oedges:   []string{"shop/web>shop/db", "shop/web>redis", "shop/db>shop/db"},
			declared: shop, dedges: shopEdges,
			want: map[string]string{
				"shop/web>shop/db": DeclaredBoth, "shop/web>redis": ObservedOnly, "shop/db>shop/db": ObservedOnly,
				"shop/web>infra/cache": DeclaredOnly, "shop/batch>shop/db": DeclaredOnly,
			},
			wantNodes: []string{"shop/batch", "shop/lonely"},
		},
		{
			name:  "virtual callee declared under its name",
			level: aggregate.LevelService, observed: []string{"web", "~db"},
			oedges:   []string{"web>db"},
			declared: []string{"web:web", "db:db", "cache:cache"}, dedges: []string{"web>db", "web>cache"},
			want: map[string]string{
				"web>db": DeclaredBoth, "web>cache": DeclaredOnly,
			},
			wantNodes: []string{"cache"},
		},
		{
			name:  "instance level uses instance IDs",
			level: aggregate.LevelInstance, observed: []string{"shop/web-0", "shop/db-0", "shop/web"},
			oedges:   []string{"shop/web-0>shop/db-0", "shop/web>shop/db-0"},
			declared: shop, dedges: shopEdges,
			want: map[string]string{
				"shop/web-0>shop/db-0": DeclaredBoth, "shop/web>shop/db-0": ObservedOnly,
				"shop/web-1>shop/db-0": DeclaredOnly, "shop/web-0>infra/cache-0": DeclaredOnly,
				"shop/web-1>infra/cache-0": DeclaredOnly, "shop/batch-0>shop/db-0": DeclaredOnly,
			},
			wantNodes: []string{"infra/cache-0", "shop/batch-0", "shop/lonely-0", "shop/web-1"},
		},
		{
			name:  "zone level: self pairs, nodes without a zone left out",
			level: aggregate.LevelZone, observed: []string{"zoneA", "zoneB", "unknown"},
			oedges:   []string{"zoneA>zoneA", "zoneB>zoneA", "unknown>zoneA"},
			declared: shop, dedges: shopEdges,
			want: map[string]string{
				"zoneA>zoneA": DeclaredBoth, "zoneB>zoneA": DeclaredBoth, "unknown>zoneA": ObservedOnly,
				"zoneA>zoneB": DeclaredOnly, "zoneB>zoneB": DeclaredOnly,
			},
			wantNodes: []string{"zoneC"},
		},
		{
			name:  "region level collapses to one self pair",
			level: aggregate.LevelRegion, observed: []string{"us"},
			declared: shop, dedges: shopEdges,
			want:      map[string]string{"us>us": DeclaredOnly},
			wantNodes: []string{"eu"},
		},
		{
			name:  "namespace level",
			level: aggregate.LevelNamespace, observed: []string{"shop", "infra"},
			oedges:   []string{"shop>shop", "shop>infra", "infra>shop"},
			declared: shop, dedges: shopEdges,
			want: map[string]string{"shop>shop": DeclaredBoth, "shop>infra": DeclaredBoth, "infra>shop": ObservedOnly},
		},
		{
			name:  "empty architecture: everything observed only",
			level: aggregate.LevelService, observed: []string{"a", "b"},
			oedges: []string{"a>b", "b>a"},
			want:   map[string]string{"a>b": ObservedOnly, "b>a": ObservedOnly},
		},
		{
			name:     "nothing observed: everything declared only",
			level:    aggregate.LevelService,
			declared: []string{"x:a", "y:b", "z:c"}, dedges: []string{"x>y", "y>z", "z>z"},
			want:      map[string]string{"a>b": DeclaredOnly, "b>c": DeclaredOnly, "c>c": DeclaredOnly},
			wantNodes: []string{"a", "b", "c"},
		},
		{
			name:  "an observed edge endpoint missing from the nodes is still observed",
			level: aggregate.LevelService, observed: []string{"a"},
			oedges:   []string{"a>b"},
			declared: []string{"x:a", "y:b"}, dedges: []string{"x>y"},
			want: map[string]string{"a>b": DeclaredBoth},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := observedGraph(tt.observed, tt.oedges)
			a := declaredArch(tt.declared, tt.dedges)
			c := compareArchitecture(g, a, tt.level)

			got := map[string]string{}
			for i, e := range g.Edges {
				got[e.Source+">"+e.Target] = c.Observed[i]
			}
			for _, p := range c.DeclaredOnlyEdges {
				k := p.Source + ">" + p.Target
				if _, dup := got[k]; dup {
					t.Errorf("%s both observed and declared only", k)
				}
				got[k] = DeclaredOnly
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("classes\n got %v\nwant %v", got, tt.want)
			}
			if !slices.Equal(c.DeclaredOnlyNodes, tt.wantNodes) {
				t.Errorf("declared-only nodes %v, want %v", c.DeclaredOnlyNodes, tt.wantNodes)
			}
			var both, dOnly, oOnly int
			for _, cls := range tt.want {
				switch cls {
				case DeclaredBoth:
					both++
				case DeclaredOnly:
					dOnly++
				case ObservedOnly:
					oOnly++
				}
			}
			if c.Both != both || c.DeclaredOnly != dOnly || c.ObservedOnly != oOnly {
				t.Errorf("counts both %d, declared only %d, observed only %d; want %d, %d, %d",
					c.Both, c.DeclaredOnly, c.ObservedOnly, both, dOnly, oOnly)
			}
			if !slices.IsSortedFunc(c.DeclaredOnlyEdges, func(x, y edgePair) int {
				return strings.Compare(x.Source+"\x00"+x.Target, y.Source+"\x00"+y.Target)
			}) {
				t.Errorf("declared-only edges not sorted: %v", c.DeclaredOnlyEdges)
			}
		})
	}
}

// TestFlowGraphCompareResponse checks the merged response: sorting, zero
// values of the added nodes and edges, the virtual flag of a declared-only
// edge into a virtual node, and that no comparison leaves declared empty.
func TestFlowGraphCompareResponse(t *testing.T) {
	st := newFakeStore()
	shop := fixtureArch()
	shop.Nodes = append(shop.Nodes, store.ArchNode{ID: "pg", Service: "postgres"})
	shop.Edges = append(shop.Edges, store.ArchEdge{Source: shop.Nodes[0].ID, Target: "pg"}) // frontend > postgres
	st.archs["shop"] = shop
	svc := newTestService(st)

	resp, err := svc.GetFlowGraph(t.Context(), &querypb.GetFlowGraphRequest{Compare: "shop", Operation: "GET /cart"})
	if err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	q := st.lastGraph
	st.mu.Unlock()
	if q != (aggregate.GraphQuery{Level: aggregate.LevelService, Operation: "GET /cart"}) {
		t.Errorf("store query %+v: compare must keep the operation filter", q)
	}
	var edges []string
	for _, e := range resp.Edges {
		edges = append(edges, fmt.Sprintf("%s>%s:%s", e.Source, e.Target, e.Declared))
		if e.Declared == DeclaredOnly {
			if e.Calls != 0 || e.Rate != 0 || !equalSummary(e.Latency, &querypb.LatencySummary{}) || e.Latency == nil {
				t.Errorf("declared-only edge %s > %s has data: %v", e.Source, e.Target, e)
			}
			if want := e.Target == "postgres"; e.Virtual != want {
				t.Errorf("declared-only edge %s > %s: virtual %v, want %v", e.Source, e.Target, e.Virtual, want)
			}
		}
	}
	wantEdges := []string{
		"cart>inventory:declared_only", "checkout>checkout:observed_only", "checkout>inventory:declared_only",
		"checkout>payments:both", "checkout>postgres:observed_only", "frontend>cart:both",
		"frontend>checkout:both", "frontend>postgres:declared_only",
	}
	if !slices.Equal(edges, wantEdges) {
		t.Errorf("edges\n got %v\nwant %v", edges, wantEdges)
	}
	var nodes []string
	for _, n := range resp.Nodes {
		nodes = append(nodes, fmt.Sprintf("%s:%v", n.Id, n.DeclaredOnly))
		if n.DeclaredOnly && (n.RequestRate != 0 || n.SpanCount != 0 || n.Latency == nil) {
			t.Errorf("declared-only node %s has data: %v", n.Id, n)
		}
	}
	wantNodes := []string{"cart:false", "checkout:false", "frontend:false", "inventory:true",
		"payments:false", "postgres:false", "reports:false"}
	if !slices.Equal(nodes, wantNodes) {
		t.Errorf("nodes\n got %v\nwant %v", nodes, wantNodes)
	}
	c := resp.GetComparison()
	if c.GetArchitecture() != "shop" || c.GetBoth() != 3 || c.GetDeclaredOnly() != 3 || c.GetObservedOnly() != 2 || c.GetNamespace() != "" {
		t.Errorf("comparison %v", c)
	}
	// The comparison lists the edges that differ (issue 11, item 6).
	list := func(es []*querypb.ComparedEdge) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Source+">"+e.Target)
		}
		return out
	}
	if got, want := list(c.GetDeclaredOnlyEdges()), []string{"cart>inventory", "checkout>inventory", "frontend>postgres"}; !slices.Equal(got, want) {
		t.Errorf("declared-only edges %v, want %v", got, want)
	}
	if got, want := list(c.GetObservedOnlyEdges()), []string{"checkout>checkout", "checkout>postgres"}; !slices.Equal(got, want) {
		t.Errorf("observed-only edges %v, want %v", got, want)
	}

	// Without compare: no classes, no summary, nothing added.
	plain, err := svc.GetFlowGraph(t.Context(), &querypb.GetFlowGraphRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range plain.Edges {
		if e.Declared != "" {
			t.Errorf("edge %s > %s: declared %q without compare", e.Source, e.Target, e.Declared)
		}
	}
	if plain.Comparison != nil || len(plain.Nodes) != len(fixtureGraph().Nodes) {
		t.Errorf("without compare: comparison %v, %d nodes", plain.Comparison, len(plain.Nodes))
	}
}

// TestFlowGraphCompareNamespace checks that comparing with an architecture
// of one namespace asks the store for that namespace's graph only, and
// reports the scope; an architecture of several namespaces, or without one,
// is compared with the whole graph (issue 11, item 6).
func TestFlowGraphCompareNamespace(t *testing.T) {
	for _, tt := range []struct {
		name       string
		namespaces []string
		want       string
	}{
		{"one namespace", []string{"lamp", "lamp"}, "lamp"},
		{"two namespaces", []string{"lamp", "netflix"}, ""},
		{"a node without namespace", []string{"lamp", ""}, ""},
		{"no namespace", []string{"", ""}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := newFakeStore()
			a := store.Architecture{Name: "a"}
			for i, ns := range tt.namespaces {
				a.Nodes = append(a.Nodes, store.ArchNode{ID: fmt.Sprint(i), Service: "www", Namespace: ns})
			}
			st.archs["a"] = a
			resp, err := newTestService(st).GetFlowGraph(t.Context(), &querypb.GetFlowGraphRequest{Compare: "a", Level: "zone"})
			if err != nil {
				t.Fatal(err)
			}
			st.mu.Lock()
			q := st.lastGraph
			st.mu.Unlock()
			if q.Namespace != tt.want || resp.GetComparison().GetNamespace() != tt.want {
				t.Errorf("store asked for namespace %q, comparison scoped to %q; want %q", q.Namespace, resp.GetComparison().GetNamespace(), tt.want)
			}
		})
	}
}

// TestFlowGraphCompareErrors checks the gRPC codes of a bad compare.
func TestFlowGraphCompareErrors(t *testing.T) {
	svc := newTestService(newFakeStore())
	for _, tt := range []struct {
		req  *querypb.GetFlowGraphRequest
		code codes.Code
		msg  string
	}{
		{&querypb.GetFlowGraphRequest{Compare: "nope"}, codes.NotFound, `architecture "nope" not found`},
		{&querypb.GetFlowGraphRequest{Compare: "shop", Format: "vizceral"}, codes.InvalidArgument, "invalid compare"},
		{&querypb.GetFlowGraphRequest{Compare: "broken"}, codes.Internal, "read architecture"},
	} {
		_, err := svc.GetFlowGraph(t.Context(), tt.req)
		if st, _ := status.FromError(err); st.Code() != tt.code || !strings.Contains(st.Message(), tt.msg) {
			t.Errorf("GetFlowGraph(%v) = %v, want %v containing %q", tt.req, err, tt.code, tt.msg)
		}
	}
	// Cancelled while reading the architecture: the context's status.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	st := &ctxStore{fakeStore: newFakeStore()}
	if _, err := newTestService(st).GetFlowGraph(ctx, &querypb.GetFlowGraphRequest{Compare: "shop"}); status.Code(err) != codes.Canceled {
		t.Errorf("cancelled: %v, want Canceled", err)
	}
}

// ctxStore is a fakeStore whose Architecture honours the context.
type ctxStore struct{ *fakeStore }

func (s *ctxStore) Architecture(ctx context.Context, name string) (store.Architecture, error) {
	if err := ctx.Err(); err != nil {
		return store.Architecture{}, err
	}
	return s.fakeStore.Architecture(ctx, name)
}

// TestListArchitectures checks sorting and the zero import time.
func TestListArchitectures(t *testing.T) {
	st := newFakeStore()
	st.archs["aaa"] = store.Architecture{Name: "aaa", Nodes: []store.ArchNode{{ID: "x"}}}
	resp, err := newTestService(st).ListArchitectures(t.Context(), &querypb.ListArchitecturesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range resp.Architectures {
		got = append(got, fmt.Sprintf("%s:%s:%d:%d", a.Name, a.Imported, a.Nodes, a.Edges))
	}
	want := []string{"aaa::1:0", "empty:2024-05-01T11:59:00Z:0:0", "shop:2024-04-30T08:15:00Z:7:6"}
	if !slices.Equal(got, want) {
		t.Errorf("architectures %v, want %v", got, want)
	}
}
