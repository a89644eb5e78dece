package policies

import (
	"fmt"
	"slices"
	"strings"

	"github.com/flowscope/flowscope/aggregate"
)

// Edge is an observed call at a policy's level: Source and Target are
// flow-graph node IDs at that level (aggregate.GraphEdge).
type Edge struct {
	Source, Target string
	// Virtual is true when the target is a virtual (uninstrumented) node;
	// such edges are checked like any other.
	Virtual bool
	// Calls is the number of calls in the range checked.
	Calls int64
}

// Declared returns the declared calls of an architecture at a level as
// "source\x00target" keys, and whether the architecture exists. It is
// usually DeclaredEdges of the stored architecture (which may add a key
// that is no call, see DeclaredEdges); it must return the same answer for
// the same arguments during one Check.
type Declared func(arch string, level aggregate.Level) (map[string]bool, bool)

// Match is one observed edge violating one policy.
type Match struct {
	Policy         string
	Kind           Kind
	Level          aggregate.Level
	Source, Target string
	// Calls is the edge's Calls.
	Calls int64
}

// Check returns every (policy, edge) violation among edges observed at
// level (only the policies of that level apply), sorted by policy, source,
// target:
//
//   - deny: the source matches from and the target matches to (a missing
//     from or to matches every node);
//   - allow_only: the target matches to and the source matches none of
//     from; a self-call (source = target) never violates;
//   - deny_undeclared: the architecture does not declare (source, target)
//     at level. Self-calls at the coarse levels (zone → same zone, region,
//     namespace) never violate: any call between two nodes of one zone is
//     one. When the architecture is the design of one namespace (see
//     DeclaredEdges), only edges with an end in it are checked at the
//     service, instance and namespace levels, as the comparison view does;
//     at the zone and region levels, whose nodes carry no namespace, every
//     edge is. An unknown architecture (declared returns false, or is nil)
//     makes no violation: Problems reports it.
//
// A glob matches a node when it matches its ID or, at the service and
// instance levels, its plain name (the ID without "namespace/"). Check
// only reads s and edges; it is safe for concurrent use.
func (s *Set) Check(level aggregate.Level, edges []Edge, declared Declared) []Match {
	namespaced := level == aggregate.LevelService || level == aggregate.LevelInstance
	coarse := level == aggregate.LevelZone || level == aggregate.LevelRegion || level == aggregate.LevelNamespace
	var out []Match
	var key []byte
	// The plain names of the edges' ends, "" where there is none, for
	// the globs of every policy.
	var plains []string
	if namespaced {
		plains = make([]string, 2*len(edges))
		for j := range edges {
			plains[2*j], plains[2*j+1] = plainName(edges[j].Source), plainName(edges[j].Target)
		}
	}
	src := func(j int) string {
		if plains == nil {
			return ""
		}
		return plains[2*j]
	}
	dst := func(j int) string {
		if plains == nil {
			return ""
		}
		return plains[2*j+1]
	}
	for _, i := range s.byName() {
		p := &s.Policies[i]
		if p.Level != level {
			continue
		}
		start := len(out)
		add := func(e *Edge) {
			out = append(out, Match{Policy: p.Name, Kind: p.Kind, Level: level, Source: e.Source, Target: e.Target, Calls: e.Calls})
		}
		switch p.Kind {
		case KindDeny:
			for j := range edges {
				e := &edges[j]
				if (len(p.from) == 0 || p.from.matchNode(e.Source, src(j))) &&
					(len(p.to) == 0 || p.to.matchNode(e.Target, dst(j))) {
					add(e)
				}
			}
		case KindAllowOnly:
			for j := range edges {
				e := &edges[j]
				if e.Source != e.Target && p.to.matchNode(e.Target, dst(j)) && !p.from.matchNode(e.Source, src(j)) {
					add(e)
				}
			}
		case KindDenyUndeclared:
			if declared == nil {
				continue
			}
			decl, ok := declared(p.Arch, level)
			if !ok {
				continue
			}
			ns, scoped := scopeOf(decl)
			for j := range edges {
				e := &edges[j]
				if coarse && e.Source == e.Target {
					continue
				}
				if scoped && !inScope(e, ns, level) {
					continue
				}
				key = append(append(append(key[:0], e.Source...), 0), e.Target...)
				if !decl[string(key)] {
					add(e)
				}
			}
		}
		// Flow graphs come sorted by (source, target): then this only
		// checks the order.
		seg := out[start:]
		if !slices.IsSortedFunc(seg, compareEdge) {
			slices.SortStableFunc(seg, compareEdge)
		}
	}
	return out
}

// compareEdge orders matches of one policy by source, then target.
func compareEdge(a, b Match) int {
	if c := strings.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	return strings.Compare(a.Target, b.Target)
}

// byName returns the indexes of the policies sorted by name (computed by
// Parse and Load; here again for a Set built otherwise).
func (s *Set) byName() []int {
	if len(s.order) == len(s.Policies) {
		return s.order
	}
	return policyOrder(s.Policies)
}

// policyOrder returns the indexes of ps sorted by name.
func policyOrder(ps []Policy) []int {
	order := make([]int, len(ps))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(ps[a].Name, ps[b].Name) })
	return order
}

// inScope reports whether e has an end in namespace ns at level: at the
// service and instance levels an ID "ns/…", at the namespace level the
// node ns; at the other levels every edge is.
func inScope(e *Edge, ns string, level aggregate.Level) bool {
	switch level {
	case aggregate.LevelService, aggregate.LevelInstance:
		return hasNamespace(e.Source, ns) || hasNamespace(e.Target, ns)
	case aggregate.LevelNamespace:
		return e.Source == ns || e.Target == ns
	}
	return true
}

// plainName returns the plain name of a namespaced node ID, the part
// after "namespace/"; "" when id has no "/".
func plainName(id string) string {
	if i := strings.IndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return ""
}

// hasNamespace reports whether id is "ns/…".
func hasNamespace(id, ns string) bool {
	return len(id) > len(ns) && id[len(ns)] == '/' && strings.HasPrefix(id, ns)
}

// Levels lists the levels the set's policies use, sorted.
func (s *Set) Levels() []aggregate.Level {
	var out []aggregate.Level
	for _, p := range s.Policies {
		if !slices.Contains(out, p.Level) {
			out = append(out, p.Level)
		}
	}
	slices.Sort(out)
	return out
}

// Problems lists what the set refers to that does not exist, as messages
// naming the policy, file and line, in the order of the policies: an
// architecture not imported (the policy then reports nothing), and one
// that declares no calls at the policy's level (its nodes have no names
// there, so every observed edge violates). A nil declared knows no
// architecture.
func (s *Set) Problems(declared Declared) []string {
	var out []string
	for _, p := range s.Policies {
		if p.Kind != KindDenyUndeclared {
			continue
		}
		var decl map[string]bool
		ok := false
		if declared != nil {
			decl, ok = declared(p.Arch, p.Level)
		}
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("policy %s (%s:%d): architecture %q is not imported: deny_undeclared reports nothing until it is", p.Name, p.File, p.Line, p.Arch))
		case calls(decl) == 0:
			out = append(out, fmt.Sprintf("policy %s (%s:%d): architecture %q declares no calls at the %s level (its nodes have no %s names): every observed edge at that level violates the policy",
				p.Name, p.File, p.Line, p.Arch, p.Level, p.Level))
		}
	}
	return out
}
