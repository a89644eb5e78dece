package policies

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/importer"
	"github.com/flowscope/flowscope/otlpwire"
	"github.com/flowscope/flowscope/store"
)

// spigoDir holds the spigo samples of the project workspace
// (testdata/spigo at the repository root, README there).
const spigoDir = "../testdata/spigo/"

// captureSink keeps what the importer sends: the architectures, and the
// trace requests applied to an aggregator.
type captureSink struct {
	mu    sync.Mutex
	archs []store.Architecture
	agg   *aggregate.Aggregator
	seq   uint64
	err   error
}

func (s *captureSink) ConsumeTraces(_ context.Context, req []byte) (ingest.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := &otlpwire.Traces{}
	if err := otlpwire.Parse(t, req); err != nil {
		s.err = err
		return ingest.Result{}, err
	}
	s.seq++
	s.agg.Apply(s.seq, int64(s.seq)*int64(time.Millisecond), t)
	return ingest.Result{}, nil
}

func (s *captureSink) ConsumeMetrics(context.Context, []byte) (ingest.Result, error) {
	return ingest.Result{}, nil
}

func (s *captureSink) PutArchitecture(_ context.Context, a store.Architecture) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archs = append(s.archs, a)
	return nil
}

// importSpigo imports a spigo file with the project's importer into a
// fresh sink.
func importSpigo(t *testing.T, path string) *captureSink {
	t.Helper()
	s := &captureSink{agg: aggregate.New(aggregate.DefaultOptions())}
	in, err := importer.FileInput(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := importer.Import(context.Background(), in, s, importer.Options{}); err != nil {
		t.Fatalf("import %s: %v", path, err)
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	return s
}

// architecture imports a spigo architecture (definition or graph) file.
func architecture(t *testing.T, path string) store.Architecture {
	t.Helper()
	s := importSpigo(t, path)
	if len(s.archs) != 1 {
		t.Fatalf("%s: %d architectures imported, want 1", path, len(s.archs))
	}
	return s.archs[0]
}

// flowEdges imports a spigo flow file and returns the observed edges of
// its flow graph at each level, as the store would serve them.
func flowEdges(t *testing.T, path string) map[aggregate.Level][]Edge {
	t.Helper()
	s := importSpigo(t, path)
	s.agg.Expire(int64(s.seq+1)*int64(time.Millisecond) + int64(time.Hour))
	cp := s.agg.Flush()
	out := map[aggregate.Level][]Edge{}
	for _, l := range []aggregate.Level{aggregate.LevelService, aggregate.LevelInstance, aggregate.LevelZone, aggregate.LevelRegion, aggregate.LevelNamespace} {
		ga := aggregate.NewGraphAccumulator(aggregate.GraphQuery{Level: l}, s.agg.Geometry())
		for _, w := range cp.Windows {
			ga.Add(w)
		}
		for _, e := range ga.Result().Edges {
			out[l] = append(out[l], Edge{Source: e.Source, Target: e.Target, Virtual: e.Virtual, Calls: e.Calls.Count})
		}
	}
	return out
}

// lampEdges are the service edges of the reference answers of the lamp
// sample (reference/lamp_sample.reference.json, flow.edges): caller,
// callee and calls.
func lampEdges(t *testing.T) []Edge {
	t.Helper()
	data, err := os.ReadFile(spigoDir + "reference/lamp_sample.reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Flow struct {
			Edges []struct {
				Caller, Callee string
				Calls          int64
			}
		}
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		t.Fatal(err)
	}
	var out []Edge
	for _, e := range ref.Flow.Edges {
		// The spans' service.namespace is the architecture, lamp.
		out = append(out, Edge{Source: "lamp/" + e.Caller, Target: "lamp/" + e.Callee, Calls: e.Calls})
	}
	if len(out) != 4 {
		t.Fatalf("reference has %d lamp edges, want 4", len(out))
	}
	return out
}

// declaredOf serves the architectures given, by name.
func declaredOf(archs ...store.Architecture) Declared {
	return func(name string, l aggregate.Level) (map[string]bool, bool) {
		for _, a := range archs {
			if a.Name == name {
				return DeclaredEdges(a, l), true
			}
		}
		return nil, false
	}
}

var allLevels = []aggregate.Level{aggregate.LevelService, aggregate.LevelInstance, aggregate.LevelZone, aggregate.LevelRegion, aggregate.LevelNamespace}

// undeclaredSet is one deny_undeclared policy of arch at every level.
func undeclaredSet(t *testing.T, arch string) *Set {
	t.Helper()
	text := "policies:\n"
	for _, l := range allLevels {
		text += "  - {name: " + l.String() + ", deny_undeclared: " + arch + ", level: " + l.String() + "}\n"
	}
	s, err := Parse("lamp.yml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLampArchitecture imports the spigo lamp architecture definition
// (json_arch/lamp_arch.json) with the project's importer, and lamp's
// traces (json_metrics/lamp_flow.json) through the importer and the
// aggregator into flow graphs: the observed service edges are the
// reference answers, none violates deny_undeclared lamp, and one rogue
// edge gives exactly that violation.
func TestLampArchitecture(t *testing.T) {
	arch := architecture(t, spigoDir+"json_arch/lamp_arch.json")
	if arch.Name != "lamp" {
		t.Fatalf("architecture %q, want lamp", arch.Name)
	}
	decl := declaredOf(arch)
	set := undeclaredSet(t, "lamp")
	observed := flowEdges(t, spigoDir+"json_metrics/lamp_flow.json")

	svc := observed[aggregate.LevelService]
	if want := lampEdges(t); !slices.Equal(svc, want) {
		t.Fatalf("observed service edges\n%+v\nwant the reference's\n%+v", svc, want)
	}
	if m := set.Check(aggregate.LevelService, svc, decl); len(m) != 0 {
		t.Fatalf("lamp's own flows violate deny_undeclared lamp: %+v", m)
	}
	rogue := append(slices.Clone(svc), Edge{Source: "lamp/www", Target: "lamp/rds-mysql", Calls: 3})
	want := []Match{{Policy: "service", Kind: KindDenyUndeclared, Level: aggregate.LevelService, Source: "lamp/www", Target: "lamp/rds-mysql", Calls: 3}}
	if m := set.Check(aggregate.LevelService, rogue, decl); !slices.Equal(m, want) {
		t.Fatalf("with a rogue edge: %+v, want %+v", m, want)
	}

	// At the namespace level lamp declares lamp → lamp, a self-call.
	if m := set.Check(aggregate.LevelNamespace, observed[aggregate.LevelNamespace], decl); len(m) != 0 {
		t.Fatalf("namespace level: %+v", m)
	}
	// The definition names services only: at the finer and the place
	// levels every observed edge but zone self-calls is undeclared, and
	// Problems says so.
	inst := set.Check(aggregate.LevelInstance, observed[aggregate.LevelInstance], decl)
	if len(inst) != len(observed[aggregate.LevelInstance]) || len(inst) == 0 {
		t.Fatalf("instance level: %d violations for %d edges", len(inst), len(observed[aggregate.LevelInstance]))
	}
	probs := set.Problems(decl)
	wantProbs := []string{
		`policy instance (lamp.yml:3): architecture "lamp" declares no calls at the instance level`,
		`policy zone (lamp.yml:4): architecture "lamp" declares no calls at the zone level`,
		`policy region (lamp.yml:5): architecture "lamp" declares no calls at the region level`,
	}
	if len(probs) != len(wantProbs) {
		t.Fatalf("problems %q", probs)
	}
	for i, p := range probs {
		if !strings.HasPrefix(p, wantProbs[i]) {
			t.Errorf("problem %d: %q, want %q…", i, p, wantProbs[i])
		}
	}
}

// TestLampGraph does the same with the architecture of lamp's graph file
// (json/lamp.json, another run of lamp), which names instances, zones and
// regions: lamp's traces violate nothing at any level, and a rogue edge
// at each level is exactly one violation.
func TestLampGraph(t *testing.T) {
	arch := architecture(t, spigoDir+"json/lamp.json")
	decl := declaredOf(arch)
	set := undeclaredSet(t, "lamp")
	observed := flowEdges(t, spigoDir+"json_metrics/lamp_flow.json")
	if p := set.Problems(decl); len(p) != 0 {
		t.Fatalf("problems: %q", p)
	}
	rogues := map[aggregate.Level]Edge{
		aggregate.LevelService:   {Source: "lamp/webserver", Target: "lamp/www", Calls: 1},
		aggregate.LevelInstance:  {Source: "lamp/www00", Target: "lamp/rds-mysql00", Calls: 2},
		aggregate.LevelZone:      {Source: "zoneA", Target: "*", Calls: 3},
		aggregate.LevelRegion:    {Source: "us-east-1", Target: "*", Calls: 4},
		aggregate.LevelNamespace: {Source: "lamp", Target: "mysql", Virtual: true, Calls: 5},
	}
	for _, l := range allLevels {
		edges := observed[l]
		if len(edges) == 0 {
			t.Fatalf("%s: no observed edges", l)
		}
		if m := set.Check(l, edges, decl); len(m) != 0 {
			t.Errorf("%s: lamp's own flows violate deny_undeclared lamp: %+v", l, m)
		}
		r := rogues[l]
		want := []Match{{Policy: l.String(), Kind: KindDenyUndeclared, Level: l, Source: r.Source, Target: r.Target, Calls: r.Calls}}
		if m := set.Check(l, append(slices.Clone(edges), r), decl); !slices.Equal(m, want) {
			t.Errorf("%s with a rogue edge: %+v, want %+v", l, m, want)
		}
	}
}
