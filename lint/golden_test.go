package lint

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/ingest/spigo"
	"github.com/flowscope/flowscope/ingest/zipkin"
	"github.com/flowscope/flowscope/otlpwire"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// spigoDir holds the spigo samples copied into the repository (see its
// README.md).
const spigoDir = "../testdata/spigo"

// golden is the content of a golden file: the input graph's size and the
// findings of Run with the default settings.
type golden struct {
	Source   string    `json:"source"`
	Level    string    `json:"level"`
	Nodes    int       `json:"nodes"`
	Edges    int       `json:"edges"`
	Findings []Finding `json:"findings"`
}

// TestGoldenSpigo lints graphs built from every shared spigo sample that
// describes a graph, through the repository's parsers, and compares the
// findings with testdata/golden/*.json (go test ./lint -run Golden -update
// rewrites them).
func TestGoldenSpigo(t *testing.T) {
	if _, err := os.Stat(spigoDir); err != nil {
		t.Fatalf("spigo samples not found: %v", err)
	}
	cases := []struct {
		name, file, level string
		build             func(t *testing.T, path, level string) Graph
	}{
		{"lamp_graph_service", "json/lamp.json", spigo.LevelService, spigoGraph},
		{"lamp_graph_instance", "json/lamp.json", spigo.LevelInstance, spigoGraph},
		{"lamp_arch", "json_arch/lamp_arch.json", spigo.LevelService, spigoArch},
		{"lamp_flow_service", "json_metrics/lamp_flow.json", spigo.LevelService, spigoFlow},
		{"lamp_flow_instance", "json_metrics/lamp_flow.json", spigo.LevelInstance, spigoFlow},
		{"storage_flow_service", "json_metrics/storage_flow.json", spigo.LevelService, spigoFlow},
		{"storage_flow_instance", "json_metrics/storage_flow.json", spigo.LevelInstance, spigoFlow},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.build(t, filepath.Join(spigoDir, tc.file), tc.level)
			fs := Run(g, nil)
			checkFindings(t, fs)
			if fs == nil {
				fs = []Finding{}
			}
			got, err := json.MarshalIndent(golden{tc.file, tc.level, len(g.Nodes), len(g.Edges), fs}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "golden", tc.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the findings (run with -update to rewrite it):\n%s", path, got)
			}
		})
	}
}

// TestGoldenSpigoByHand checks findings of the lamp samples that follow
// from the sample README's reference answers, independently of the golden
// files.
func TestGoldenSpigoByHand(t *testing.T) {
	if _, err := os.Stat(spigoDir); err != nil {
		t.Fatalf("spigo samples not found: %v", err)
	}
	// lamp.json at service level: www → webserver-elb → webserver →
	// {rds-mysql, memcache}: 3 hops (no chain finding); webserver-elb
	// cuts www off from webserver, rds-mysql and memcache; webserver from
	// the two stores.
	g := spigoGraph(t, filepath.Join(spigoDir, "json/lamp.json"), spigo.LevelService)
	got := summaries(Run(g, nil))
	want := []string{
		"single_point warning [webserver memcache rds-mysql] 2/0",
		"single_point warning [webserver-elb memcache rds-mysql webserver] 3/0",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lamp.json service level:\n got %q\nwant %q", got, want)
	}
	// At instance level, webserver-elb calls all 18 webservers (fan-out
	// 18), and each store instance is called by the 18 webservers.
	g = spigoGraph(t, filepath.Join(spigoDir, "json/lamp.json"), spigo.LevelInstance)
	var fanOut, fanIn []string
	for _, f := range Run(g, only(FanOut, FanIn)) {
		s := fmt.Sprintf("%s %g", f.Nodes[0], f.Value)
		if f.Rule == FanOut {
			fanOut = append(fanOut, s)
		} else {
			fanIn = append(fanIn, s)
		}
	}
	if fmt.Sprint(fanOut) != "[webserver-elb00 18]" {
		t.Errorf("lamp.json instance fan-out: %q", fanOut)
	}
	for _, f := range fanIn {
		if !strings.HasSuffix(f, " 18") || !(strings.HasPrefix(f, "memcache") || strings.HasPrefix(f, "rds-mysql")) {
			t.Errorf("lamp.json instance fan-in: %q", f)
		}
	}
	if len(fanIn) == 0 {
		t.Error("lamp.json instance: no fan-in finding")
	}
	// lamp_flow.json at service level has the same four edges (node IDs
	// carry the namespace), with call counts 9, 7, 6 and 1 (README section
	// 7), and the client-side p99s of www and webserver-elb, 73415 µs and
	// 59373 µs, are those of their only edges (within the histograms' 1 %).
	g = spigoFlow(t, filepath.Join(spigoDir, "json_metrics/lamp_flow.json"), spigo.LevelService)
	calls := map[string]int64{}
	p99 := map[string]float64{}
	for _, e := range g.Edges {
		calls[e.Source+">"+e.Target] = e.Calls
		p99[e.Source+">"+e.Target] = e.P99
	}
	if fmt.Sprint(calls) != "map[lamp/webserver-elb>lamp/webserver:7 lamp/webserver>lamp/memcache:1 lamp/webserver>lamp/rds-mysql:6 lamp/www>lamp/webserver-elb:9]" {
		t.Errorf("lamp_flow.json edges: %v", calls)
	}
	for k, want := range map[string]float64{"lamp/www>lamp/webserver-elb": 73415e3, "lamp/webserver-elb>lamp/webserver": 59373e3} {
		if math.Abs(p99[k]-want) > want/100 {
			t.Errorf("lamp_flow.json %s p99 = %v ns, want %v within 1 %%", k, p99[k], want)
		}
	}
	// Its findings are the same single points as the graph file's.
	got = summaries(Run(g, nil))
	want = []string{
		"single_point warning [lamp/webserver lamp/memcache lamp/rds-mysql] 2/0",
		"single_point warning [lamp/webserver-elb lamp/memcache lamp/rds-mysql lamp/webserver] 3/0",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("lamp_flow.json service level:\n got %q\nwant %q", got, want)
	}
}

// spigoGraph builds a Graph from a spigo graph file (json/<arch>.json):
// its nodes and registered dependencies at level, without counts.
func spigoGraph(t *testing.T, path, level string) Graph {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sg, err := spigo.ReadGraph(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var g Graph
	for _, id := range sg.NodeIDs(level) {
		g.Nodes = append(g.Nodes, Node{ID: id})
	}
	for _, d := range sg.Declared(level) {
		g.Edges = append(g.Edges, Edge{Source: d.Source, Target: d.Target, P99: math.NaN()})
	}
	return g
}

// spigoArch builds a Graph from a spigo architecture file: its services
// and their declared dependencies.
func spigoArch(t *testing.T, path, _ string) Graph {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a, err := spigo.ReadArch(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var g Graph
	for _, s := range a.Services {
		g.Nodes = append(g.Nodes, Node{ID: s.Name})
	}
	for _, d := range a.Declared() {
		g.Edges = append(g.Edges, Edge{Source: d.Source, Target: d.Target, P99: math.NaN()})
	}
	return g
}

// spigoFlow builds a Graph from a spigo flow file (Zipkin v1 spans) the
// way the collector sees it: converted by the Zipkin decoder, rolled up
// by the aggregator and merged into a flow graph at level. An edge's P99
// is its calls' p99, its Exemplar the slowest call's trace, and its
// Attempts its calls per server request of its source (0 when the source
// has none).
func spigoFlow(t *testing.T, path, level string) Graph {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	a := aggregate.New(aggregate.DefaultOptions())
	commit := time.Date(2016, 7, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var seq uint64
	var tr otlpwire.Traces
	_, err = zipkin.Decode(f, zipkin.V1, zipkin.Options{}, func(req []byte, _ int) error {
		if err := otlpwire.Parse(&tr, req); err != nil {
			return err
		}
		seq++
		a.Apply(seq, commit, &tr)
		return nil
	})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	a.Expire(commit + int64(time.Hour))
	lvl, err := aggregate.ParseLevel(level)
	if err != nil {
		t.Fatal(err)
	}
	acc := aggregate.NewGraphAccumulator(aggregate.GraphQuery{Level: lvl}, a.Geometry())
	for _, w := range a.Flush().Windows {
		acc.Add(w)
	}
	fg := acc.Result()
	var g Graph
	requests := map[string]int64{}
	for _, n := range fg.Nodes {
		g.Nodes = append(g.Nodes, Node{ID: n.ID, Virtual: n.Virtual, Requests: n.Requests.Count, Errors: n.Requests.Errors})
		requests[n.ID] = n.Requests.Count
	}
	for _, e := range fg.Edges {
		le := Edge{Source: e.Source, Target: e.Target, Calls: e.Calls.Count, Errors: e.Calls.Errors, P99: math.NaN()}
		if h := e.Calls.Hist; h != nil && h.TotalCount() > 0 {
			le.P99 = float64(h.ValueAtPercentile(99))
		}
		if len(e.Calls.Exemplars) > 0 {
			le.Exemplar = hex.EncodeToString(e.Calls.Exemplars[0].TraceID[:])
		}
		if r := requests[e.Source]; r > 0 {
			le.Attempts = float64(e.Calls.Count) / float64(r)
		}
		g.Edges = append(g.Edges, le)
	}
	return g
}
