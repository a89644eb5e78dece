package policies

import (
	"testing"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/yamlfile/yamlfiletest"
)

// FuzzParse checks that Parse never panics, that its errors are
// *yamlfile.Error values naming the file, that parsing is deterministic,
// and that every set it accepts holds the invariants Check relies on. Run
// it with
//
//	go test -run '^$' -fuzz FuzzParse -fuzztime 30s ./policies
func FuzzParse(f *testing.F) {
	yamlfiletest.AddFiles(f, "testdata/*/*.y*ml")
	for _, s := range []string{
		"",
		"policies: []",
		"lint: {}",
		"policies:\n  - {name: a, deny: {from: 'web*', to: ['db[0-9]', 'x\\*']}}\n",
		"policies:\n  - {name: b, allow_only: {to: pay, from: [a, '?b']}, level: zone}\n",
		"policies:\n  - {name: c, deny_undeclared: lamp, level: namespace}\n",
		"x-a: &a {to: db}\npolicies: [{name: d, deny: *a}, {<<: {level: region}, name: e, deny: *a}]\n",
		"lint: {fan_out: {threshold: 1.5, severity: info, enabled: true}, cycle: {enabled: false}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ps := yamlfiletest.Parse(t, parsePolicies, "f.yml", data)
		names := map[string]bool{}
		for _, p := range ps {
			if p.Name == "" || names[p.Name] || !nameRE.MatchString(p.Name) {
				t.Fatalf("bad or repeated name %q", p.Name)
			}
			names[p.Name] = true
			if p.File != "f.yml" || p.Line < 1 || p.Level < aggregate.LevelService || p.Level > aggregate.LevelNamespace {
				t.Fatalf("bad policy %+v", p)
			}
			if len(p.from) != len(p.From) || len(p.to) != len(p.To) {
				t.Fatalf("policy %s: globs not all compiled", p.Name)
			}
			switch p.Kind {
			case KindDeny:
				if len(p.From)+len(p.To) == 0 || p.Arch != "" {
					t.Fatalf("bad deny %+v", p)
				}
			case KindAllowOnly:
				if len(p.From) == 0 || len(p.To) == 0 || p.Arch != "" {
					t.Fatalf("bad allow_only %+v", p)
				}
			case KindDenyUndeclared:
				if p.Arch == "" || len(p.From)+len(p.To) != 0 {
					t.Fatalf("bad deny_undeclared %+v", p)
				}
			default:
				t.Fatalf("kind %q", p.Kind)
			}
		}
		s, err := Parse("f.yml", data)
		if err != nil {
			return
		}
		for rule, l := range s.Lint {
			if l.Threshold != nil && !(*l.Threshold >= 0) {
				t.Fatalf("lint %s: threshold %v", rule, *l.Threshold)
			}
		}
		// Check runs on any accepted set.
		edges := []Edge{{Source: "ns/web", Target: "db"}, {Source: "a", Target: "a"}}
		for _, l := range s.Levels() {
			s.Check(l, edges, declaredOf(shop, plain))
		}
	})
}
