package aggregate

import (
	"testing"
	"time"
)

// namespaceWindows holds two spigo architectures that share service and
// instance names (issue 11, item 6): lamp and netflix each have www and
// rds-mysql, lamp also a node without a namespace of the same name (an
// OpenTelemetry service without service.namespace), and a call from lamp
// to netflix and one into a virtual node.
func namespaceWindows() []*Window {
	lampWWW := Node{Service: "www", Instance: "www00", Zone: "*", Region: "*", Namespace: "lamp"}
	lampDB := Node{Service: "rds-mysql", Instance: "rds-mysql00", Zone: "zoneA", Region: "us-east-1", Namespace: "lamp"}
	nfWWW := Node{Service: "www", Instance: "www00", Zone: "*", Region: "*", Namespace: "netflix"}
	nfDB := Node{Service: "rds-mysql", Instance: "rds-mysql00", Zone: "zoneA", Region: "us-east-1", Namespace: "netflix"}
	plain := Node{Service: "www", Instance: "www00"}
	cache := Node{Service: "memcache", Virtual: true}

	w := NewWindow(100, 10)
	for _, n := range []Node{lampDB, nfDB, plain} {
		w.Series[SeriesKey{Node: n, Operation: "get", Kind: kindServer}] = rollupOf(2, 0, time.Millisecond)
	}
	w.Series[SeriesKey{Node: nfDB, Operation: "put", Kind: kindServer}] = rollupOf(1, 0, time.Millisecond)
	w.Edges[EdgeKey{Source: lampWWW, Target: lampDB, Operation: "get"}] = rollupOf(2, 0, time.Millisecond)
	w.Edges[EdgeKey{Source: nfWWW, Target: nfDB, Operation: "get"}] = rollupOf(3, 0, time.Millisecond)
	w.Edges[EdgeKey{Source: lampDB, Target: nfDB, Operation: "put"}] = rollupOf(1, 0, time.Millisecond)
	w.Edges[EdgeKey{Source: nfWWW, Target: cache, Operation: "get"}] = rollupOf(4, 0, time.Millisecond)
	w.Edges[EdgeKey{Source: plain, Target: lampDB, Operation: "get"}] = rollupOf(5, 0, time.Millisecond)
	return []*Window{w}
}

// TestNodeIdentityNamespace checks that nodes of the same name in
// different namespaces stay apart at the service and instance levels, as
// namespace/name, that nodes without a namespace keep their plain name,
// and that a namespace-scoped query keeps the namespace's nodes and the
// edges touching them (Add and AddEncoded alike).
func TestNodeIdentityNamespace(t *testing.T) {
	cases := []struct {
		name string
		q    GraphQuery
		want []string
	}{
		{name: "service level", q: GraphQuery{}, want: []string{
			`node lamp/rds-mysql virtual=false region="us-east-1" requests=2/0 spans=2/0`,
			`node lamp/www virtual=false region="*" requests=0/0 spans=0/0`,
			`node memcache virtual=true region="" requests=4/0 spans=0/0`,
			`node netflix/rds-mysql virtual=false region="us-east-1" requests=3/0 spans=3/0`,
			`node netflix/www virtual=false region="*" requests=0/0 spans=0/0`,
			`node www virtual=false region="" requests=2/0 spans=2/0`,
			`edge lamp/rds-mysql->netflix/rds-mysql virtual=false calls=1/0 hist=1`,
			`edge lamp/www->lamp/rds-mysql virtual=false calls=2/0 hist=2`,
			`edge netflix/www->memcache virtual=true calls=4/0 hist=4`,
			`edge netflix/www->netflix/rds-mysql virtual=false calls=3/0 hist=3`,
			`edge www->lamp/rds-mysql virtual=false calls=5/0 hist=5`,
		}},
		{name: "instance level", q: GraphQuery{Level: LevelInstance}, want: []string{
			`node lamp/rds-mysql00 virtual=false region="us-east-1" requests=2/0 spans=2/0 service=lamp/rds-mysql`,
			`node lamp/www00 virtual=false region="*" requests=0/0 spans=0/0 service=lamp/www`,
			`node memcache virtual=true region="" requests=4/0 spans=0/0`,
			`node netflix/rds-mysql00 virtual=false region="us-east-1" requests=3/0 spans=3/0 service=netflix/rds-mysql`,
			`node netflix/www00 virtual=false region="*" requests=0/0 spans=0/0 service=netflix/www`,
			`node www00 virtual=false region="" requests=2/0 spans=2/0 service=www`,
			`edge lamp/rds-mysql00->netflix/rds-mysql00 virtual=false calls=1/0 hist=1`,
			`edge lamp/www00->lamp/rds-mysql00 virtual=false calls=2/0 hist=2`,
			`edge netflix/www00->memcache virtual=true calls=4/0 hist=4`,
			`edge netflix/www00->netflix/rds-mysql00 virtual=false calls=3/0 hist=3`,
			`edge www00->lamp/rds-mysql00 virtual=false calls=5/0 hist=5`,
		}},
		{name: "zones are shared", q: GraphQuery{Level: LevelZone}, want: []string{
			`node * virtual=false region="*" requests=0/0 spans=0/0`,
			`node memcache virtual=true region="" requests=4/0 spans=0/0`,
			`node unknown virtual=false region="" requests=2/0 spans=2/0`,
			`node zoneA virtual=false region="us-east-1" requests=5/0 spans=5/0`,
			`edge *->memcache virtual=true calls=4/0 hist=4`,
			`edge *->zoneA virtual=false calls=5/0 hist=5`,
			`edge unknown->zoneA virtual=false calls=5/0 hist=5`,
			`edge zoneA->zoneA virtual=false calls=1/0 hist=1`,
		}},
		{name: "scoped to netflix", q: GraphQuery{Namespace: "netflix"}, want: []string{
			`node lamp/rds-mysql virtual=false region="us-east-1" requests=0/0 spans=0/0`,
			`node memcache virtual=true region="" requests=4/0 spans=0/0`,
			`node netflix/rds-mysql virtual=false region="us-east-1" requests=3/0 spans=3/0`,
			`node netflix/www virtual=false region="*" requests=0/0 spans=0/0`,
			`edge lamp/rds-mysql->netflix/rds-mysql virtual=false calls=1/0 hist=1`,
			`edge netflix/www->memcache virtual=true calls=4/0 hist=4`,
			`edge netflix/www->netflix/rds-mysql virtual=false calls=3/0 hist=3`,
		}},
		{name: "scoped to lamp, zone level", q: GraphQuery{Level: LevelZone, Namespace: "lamp"}, want: []string{
			`node * virtual=false region="*" requests=0/0 spans=0/0`,
			`node unknown virtual=false region="" requests=0/0 spans=0/0`,
			`node zoneA virtual=false region="us-east-1" requests=2/0 spans=2/0`,
			`edge *->zoneA virtual=false calls=2/0 hist=2`,
			`edge unknown->zoneA virtual=false calls=5/0 hist=5`,
			`edge zoneA->zoneA virtual=false calls=1/0 hist=1`,
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, b := NewGraphAccumulator(c.q, DefaultGeometry()), NewGraphAccumulator(c.q, DefaultGeometry())
			for _, w := range namespaceWindows() {
				a.Add(w)
				if err := b.AddEncoded(AppendWindow(nil, w)); err != nil {
					t.Fatal(err)
				}
			}
			diffLines(t, "graph (Add)", graphLines(a.Result()), c.want)
			diffLines(t, "graph (AddEncoded)", graphLines(b.Result()), c.want)
		})
	}
}

// TestLatencyNamespace checks latency selection by node ID
// (namespace/name) and by plain name (every namespace).
func TestLatencyNamespace(t *testing.T) {
	cases := []struct {
		q     LatencyQuery
		count int64
	}{
		{LatencyQuery{Service: "netflix/rds-mysql"}, 3},
		{LatencyQuery{Service: "lamp/rds-mysql"}, 2},
		{LatencyQuery{Service: "rds-mysql"}, 5},
		{LatencyQuery{Service: "www"}, 2},
		{LatencyQuery{Service: "lamp/www"}, 0},
		{LatencyQuery{Service: "netflix/"}, 0},
		{LatencyQuery{Source: "lamp/www", Target: "lamp/rds-mysql"}, 2},
		{LatencyQuery{Source: "www", Target: "lamp/rds-mysql"}, 7},
		{LatencyQuery{Source: "www", Target: "rds-mysql"}, 10},
		{LatencyQuery{Source: "netflix/www", Target: "memcache"}, 4},
		{LatencyQuery{Source: "lamp/www00", Target: "lamp/rds-mysql00", Level: LevelInstance}, 2},
		{LatencyQuery{Target: "netflix/rds-mysql00", Level: LevelInstance}, 4},
	}
	for _, c := range cases {
		a, b := NewLatencyAccumulator(c.q, DefaultGeometry()), NewLatencyAccumulator(c.q, DefaultGeometry())
		for _, w := range namespaceWindows() {
			a.Add(w)
			if err := b.AddEncoded(AppendWindow(nil, w)); err != nil {
				t.Fatal(err)
			}
		}
		if got, enc := a.Result().Total.Count, b.Result().Total.Count; got != c.count || enc != c.count {
			t.Errorf("%+v: count %d (encoded %d), want %d", c.q, got, enc, c.count)
		}
	}
	if id := (Node{Service: "www", Namespace: "lamp"}).ID(LevelService); id != "lamp/www" {
		t.Errorf("ID = %q", id)
	}
	if id := (Node{Service: "db", Namespace: "lamp", Virtual: true}).ID(LevelService); id != "db" {
		t.Errorf("virtual ID = %q", id)
	}
	if id := (Node{Service: "www", Zone: "zoneA", Namespace: "lamp"}).ID(LevelZone); id != "zoneA" {
		t.Errorf("zone ID = %q", id)
	}
}
