package policies

import (
	"reflect"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// mustParse parses a policies file given as text.
func mustParse(t testing.TB, text string) *Set {
	t.Helper()
	s, err := Parse("p.yml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// shop is a declared architecture of namespace shop.
var shop = store.Architecture{
	Name: "shop",
	Nodes: []store.ArchNode{
		{ID: "web", Service: "web", Instance: "web-1", Zone: "zoneA", Region: "eu", Namespace: "shop"},
		{ID: "api", Service: "api", Instance: "api-1", Zone: "zoneA", Region: "eu", Namespace: "shop"},
		{ID: "db", Service: "db", Instance: "db-1", Zone: "zoneB", Region: "eu", Namespace: "shop"},
	},
	Edges: []store.ArchEdge{{Source: "web", Target: "api"}, {Source: "api", Target: "db"}},
}

// plain is an architecture without namespaces, with a virtual callee
// declared under its name.
var plain = store.Architecture{
	Name: "plain",
	Nodes: []store.ArchNode{
		{ID: "a", Service: "a", Zone: "z1"},
		{ID: "b", Service: "b", Zone: "z2"},
		{ID: "mysql", Service: "mysql"},
	},
	Edges: []store.ArchEdge{{Source: "a", Target: "b"}, {Source: "b", Target: "mysql"}},
}

const checkPolicies = `
policies:
  - name: deny-web-db
    deny: {from: "web*", to: ["db*", "mysql"]}
  - name: deny-into-legacy
    deny: {to: "legacy*"}
  - name: deny-from-batch
    deny: {from: "batch"}
  - name: only-api-calls-db
    allow_only: {to: "db", from: [api, "admin-?"]}
  - name: shop-design
    deny_undeclared: shop
  - name: plain-design
    deny_undeclared: plain
  - name: missing-design
    deny_undeclared: nowhere
  - name: zone-shop
    deny_undeclared: shop
    level: zone
  - name: zone-plain
    deny_undeclared: plain
    level: zone
  - name: ns-shop
    deny_undeclared: shop
    level: namespace
  - name: zone-deny
    deny: {from: zoneA, to: "zone[B-Z]"}
    level: zone
  - name: instance-shop
    deny_undeclared: shop
    level: instance
`

func TestCheck(t *testing.T) {
	set := mustParse(t, checkPolicies)
	decl := declaredOf(shop, plain)
	type m = struct{ policy, source, target string }
	cases := []struct {
		name  string
		level aggregate.Level
		edges []Edge
		want  []m
	}{
		{"declared edges of shop", aggregate.LevelService, []Edge{
			{Source: "shop/web", Target: "shop/api"}, {Source: "shop/api", Target: "shop/db"},
		}, []m{
			// plain has no namespace: it checks every edge.
			{"plain-design", "shop/api", "shop/db"},
			{"plain-design", "shop/web", "shop/api"},
		}},
		{"deny matches plain names, a list and virtual targets", aggregate.LevelService, []Edge{
			{Source: "shop/web", Target: "shop/db"},
			{Source: "webapp", Target: "mysql", Virtual: true},
		}, []m{
			{"deny-web-db", "shop/web", "shop/db"},
			{"deny-web-db", "webapp", "mysql"},
			{"only-api-calls-db", "shop/web", "shop/db"},
			{"plain-design", "shop/web", "shop/db"},
			{"plain-design", "webapp", "mysql"},
			{"shop-design", "shop/web", "shop/db"},
		}},
		{"deny with a missing from or to", aggregate.LevelService, []Edge{
			{Source: "x", Target: "legacy-1"}, {Source: "batch", Target: "y"}, {Source: "y", Target: "batch"},
		}, []m{
			{"deny-from-batch", "batch", "y"},
			{"deny-into-legacy", "x", "legacy-1"},
			{"plain-design", "batch", "y"},
			{"plain-design", "x", "legacy-1"},
			{"plain-design", "y", "batch"},
		}},
		{"allow_only", aggregate.LevelService, []Edge{
			{Source: "other/api", Target: "shop/db"}, // api in any namespace
			{Source: "admin-1", Target: "db"},
			{Source: "admin-12", Target: "db"},
			{Source: "db", Target: "db"}, // a self-call
			{Source: "cron", Target: "dbx"},
		}, []m{
			{"only-api-calls-db", "admin-12", "db"},
			{"plain-design", "admin-1", "db"},
			{"plain-design", "admin-12", "db"},
			{"plain-design", "cron", "dbx"},
			{"plain-design", "db", "db"},
			{"plain-design", "other/api", "shop/db"},
			{"shop-design", "other/api", "shop/db"},
		}},
		{"plain declares the virtual mysql; scope of shop", aggregate.LevelService, []Edge{
			{Source: "a", Target: "b"},
			{Source: "b", Target: "mysql", Virtual: true},
			{Source: "other/x", Target: "other/y"},    // no end in shop: not shop's
			{Source: "shop/api", Target: "redis"},     // out of shop, virtual
			{Source: "other/x", Target: "shop/api"},   // into shop
			{Source: "shopping/x", Target: "shop2/y"}, // prefixes are not namespaces
		}, []m{
			{"plain-design", "other/x", "other/y"},
			{"plain-design", "other/x", "shop/api"},
			{"plain-design", "shop/api", "redis"},
			{"plain-design", "shopping/x", "shop2/y"},
			{"shop-design", "other/x", "shop/api"},
			{"shop-design", "shop/api", "redis"},
		}},
		{"instance level", aggregate.LevelInstance, []Edge{
			{Source: "shop/web-1", Target: "shop/api-1"},
			{Source: "shop/web-1", Target: "shop/db-1"},
			{Source: "shop/web-1", Target: "shop/web-1"}, // self-calls count at fine levels
		}, []m{
			{"instance-shop", "shop/web-1", "shop/db-1"},
			{"instance-shop", "shop/web-1", "shop/web-1"},
		}},
		{"zone level: self-calls never undeclared, no namespace scope", aggregate.LevelZone, []Edge{
			{Source: "zoneA", Target: "zoneA"},
			{Source: "zoneA", Target: "zoneB"},
			{Source: "zoneB", Target: "zoneA"},
			{Source: "z1", Target: "z2"},
			{Source: "zoneC", Target: "zoneC"},
			{Source: "zoneA", Target: "mysql", Virtual: true},
		}, []m{
			{"zone-deny", "zoneA", "zoneB"},
			{"zone-plain", "zoneA", "mysql"},
			{"zone-plain", "zoneA", "zoneB"},
			{"zone-plain", "zoneB", "zoneA"},
			{"zone-shop", "z1", "z2"},
			{"zone-shop", "zoneA", "mysql"},
			{"zone-shop", "zoneB", "zoneA"},
		}},
		{"namespace level", aggregate.LevelNamespace, []Edge{
			{Source: "shop", Target: "shop"},
			{Source: "shop", Target: "billing"},
			{Source: "billing", Target: "ledger"}, // not shop's
		}, []m{{"ns-shop", "shop", "billing"}}},
		{"region level: no policy", aggregate.LevelRegion, []Edge{{Source: "eu", Target: "us"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			calls := map[[2]string]int64{}
			for i := range c.edges {
				c.edges[i].Calls = int64(10 + i)
				calls[[2]string{c.edges[i].Source, c.edges[i].Target}] = int64(10 + i)
			}
			got := set.Check(c.level, c.edges, decl)
			var want []Match
			for _, w := range c.want {
				kind := KindDenyUndeclared
				for _, p := range set.Policies {
					if p.Name == w.policy {
						kind = p.Kind
					}
				}
				want = append(want, Match{Policy: w.policy, Kind: kind, Level: c.level, Source: w.source, Target: w.target,
					Calls: calls[[2]string{w.source, w.target}]})
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got\n%s\nwant\n%s", matchLines(got), matchLines(want))
			}
		})
	}
	// Without architectures deny_undeclared is silent, the others work.
	got := set.Check(aggregate.LevelService, []Edge{{Source: "web", Target: "db"}}, nil)
	if len(got) != 2 || got[0].Policy != "deny-web-db" || got[1].Policy != "only-api-calls-db" {
		t.Errorf("nil declared: %s", matchLines(got))
	}
}

func matchLines(ms []Match) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("  " + m.Policy + " " + string(m.Kind) + " " + m.Level.String() + " " + m.Source + " → " + m.Target + "\n")
	}
	return b.String()
}

func TestDeclaredEdges(t *testing.T) {
	keys := func(m map[string]bool) []string {
		var out []string
		for _, l := range []string{
			"shop/web\x00shop/api", "shop/api\x00shop/db", "shop/web-1\x00shop/api-1", "shop/api-1\x00shop/db-1",
			"zoneA\x00zoneA", "zoneA\x00zoneB", "eu\x00eu", "shop\x00shop", "a\x00b", "b\x00mysql", "z1\x00z2",
			scopePrefix + "shop",
		} {
			if m[l] {
				out = append(out, strings.ReplaceAll(l, "\x00", "→"))
			}
		}
		if len(out) != len(m) {
			t.Errorf("unexpected keys in %v", m)
		}
		return out
	}
	cases := []struct {
		a     store.Architecture
		level aggregate.Level
		want  []string
	}{
		{shop, aggregate.LevelService, []string{"shop/web→shop/api", "shop/api→shop/db", "→scope→shop"}},
		{shop, aggregate.LevelInstance, []string{"shop/web-1→shop/api-1", "shop/api-1→shop/db-1", "→scope→shop"}},
		{shop, aggregate.LevelZone, []string{"zoneA→zoneA", "zoneA→zoneB", "→scope→shop"}},
		{shop, aggregate.LevelRegion, []string{"eu→eu", "→scope→shop"}},
		{shop, aggregate.LevelNamespace, []string{"shop→shop", "→scope→shop"}},
		{plain, aggregate.LevelService, []string{"a→b", "b→mysql"}},
		// mysql has no zone: its calls are left out, no "unknown" zone.
		{plain, aggregate.LevelZone, []string{"z1→z2"}},
		{plain, aggregate.LevelInstance, nil},
	}
	for _, c := range cases {
		if got := keys(DeclaredEdges(c.a, c.level)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s at %s: %q, want %q", c.a.Name, c.level, got, c.want)
		}
	}
}

func TestProblems(t *testing.T) {
	set := mustParse(t, checkPolicies)
	got := set.Problems(declaredOf(shop, plain))
	want := []string{
		`policy missing-design (p.yml:15): architecture "nowhere" is not imported: deny_undeclared reports nothing until it is`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems\n%q\nwant\n%q", got, want)
	}
	set = mustParse(t, "policies:\n  - {name: i, deny_undeclared: plain, level: instance}\n  - {name: d, deny: {to: x}}\n")
	got = set.Problems(declaredOf(plain))
	want = []string{`policy i (p.yml:2): architecture "plain" declares no calls at the instance level (its nodes have no instance names): every observed edge at that level violates the policy`}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems\n%q\nwant\n%q", got, want)
	}
	if got := set.Problems(nil); len(got) != 1 || !strings.Contains(got[0], "is not imported") {
		t.Errorf("nil declared: %q", got)
	}
}

func TestLevels(t *testing.T) {
	set := mustParse(t, checkPolicies)
	want := []aggregate.Level{aggregate.LevelService, aggregate.LevelInstance, aggregate.LevelZone, aggregate.LevelNamespace}
	if got := set.Levels(); !reflect.DeepEqual(got, want) {
		t.Errorf("levels %v, want %v", got, want)
	}
}
