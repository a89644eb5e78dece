package spigo

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowscope/flowscope/ingest"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/protobuf/proto"
)

// maxFuzzInput caps fuzz inputs; larger ones explore nothing new.
const maxFuzzInput = 64 << 10

// addSeeds adds the files matching the patterns and the given strings.
func addSeeds(f *testing.F, patterns []string, extra ...string) {
	for _, p := range patterns {
		files, err := filepath.Glob(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(files) == 0 {
			f.Fatalf("no seed files match %s", p)
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, s := range append(extra, ``, `{}`, `null`, `[]`, `{"`, `{}}`) {
		f.Add([]byte(s))
	}
}

// checkInvalid fails unless err (from an in-memory input) wraps
// ingest.ErrInvalid.
func checkInvalid(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ingest.ErrInvalid) {
		t.Fatalf("error %v does not wrap ingest.ErrInvalid", err)
	}
}

func FuzzReadGraph(f *testing.F) {
	addSeeds(f, []string{filepath.Join(sampleDir, "json", "*.json"), filepath.Join("testdata", "graph_*.json")},
		`{"graph":[{"forget":"e1"},{"done":"x"},{"edge":"e1","source":"a.b.c.d1","target":"a.b.c.d1"},{"node":"a.b.c.d1"}]}`,
		`{"graph":[{"node":"a.b.c.d.e","service":"s","timestamp":"2016-06-23T13:14:02.1-07:00"}]}`,
	)
	levels := []string{LevelService, LevelInstance, LevelZone, LevelRegion, LevelNamespace, "", "x"}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		g, err := ReadGraph(bytes.NewReader(data))
		if err != nil {
			checkInvalid(t, err)
			return
		}
		names := map[string]bool{}
		for _, n := range g.Nodes {
			names[n.Name] = true
		}
		for _, e := range g.Edges {
			if !names[e.Source] || !names[e.Target] {
				t.Fatalf("edge %+v has an undeclared endpoint", e)
			}
		}
		for _, l := range levels {
			d := g.Declared(l)
			if !slices.IsSortedFunc(d, compareDeclared) || len(slices.CompactFunc(slices.Clone(d), func(a, b DeclaredEdge) bool { return a == b })) != len(d) {
				t.Fatalf("Declared(%q) = %v: not sorted and distinct", l, d)
			}
			ids := g.NodeIDs(l)
			for _, e := range d {
				if _, ok := slices.BinarySearch(ids, e.Source); !ok {
					t.Fatalf("Declared(%q) edge %v: source not in NodeIDs %v", l, e, ids)
				}
			}
		}
	})
}

func FuzzReadArch(f *testing.F) {
	addSeeds(f, []string{filepath.Join(sampleDir, "json_arch", "*.json"), filepath.Join("testdata", "arch_*.json")},
		`{"services":[{"name":"a","dependencies":["eureka","a"]},{"name":"b","dependencies":null}]}`,
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		a, err := ReadArch(bytes.NewReader(data))
		if err != nil {
			checkInvalid(t, err)
			return
		}
		names := map[string]bool{}
		for _, s := range a.Services {
			names[s.Name] = true
		}
		for _, e := range a.Declared() {
			if !names[e.Source] || !names[e.Target] {
				t.Fatalf("declared edge %v names an unknown service", e)
			}
		}
	})
}

func FuzzReadGuess(f *testing.F) {
	addSeeds(f, []string{filepath.Join(sampleDir, "json_metrics", "*.guess"), filepath.Join("testdata", "*.guess")},
		`{"space":{"graph":{"metrics":[{"id":"A","name":"x_rt"}],"guesstimates":[{"metric":"A","guesstimateType":"DATA","data":[-9223372036854775808,0,9223372036854775807,1.5]}]}}}`,
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		g, err := ReadGuess(bytes.NewReader(data))
		if err != nil {
			checkInvalid(t, err)
			return
		}
		b, err := GuessMetrics(g, testTime)
		if err != nil {
			t.Fatal(err)
		}
		var req colmetricspb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
		var want, got uint64
		for _, s := range g.Series {
			want += uint64(len(s.Samples))
		}
		for _, rm := range req.ResourceMetrics {
			for _, p := range rm.ScopeMetrics[0].Metrics[0].GetExponentialHistogram().DataPoints {
				n := p.ZeroCount
				for _, c := range p.GetPositive().GetBucketCounts() {
					n += c
				}
				for _, c := range p.GetNegative().GetBucketCounts() {
					n += c
				}
				if n != p.Count || len(p.GetPositive().GetBucketCounts()) > expMaxBuckets || len(p.GetNegative().GetBucketCounts()) > expMaxBuckets {
					t.Fatalf("point %v: buckets hold %d of %d", p, n, p.Count)
				}
				got += p.Count
			}
		}
		if got != want {
			t.Fatalf("points count %d samples, series have %d", got, want)
		}
	})
}

func FuzzReadMetrics(f *testing.F) {
	addSeeds(f, []string{filepath.Join(sampleDir, "json_metrics", "*_metrics.json"), filepath.Join("testdata", "metrics_*.json")},
		"{\"counters\":{\"a\":1}\n\"gauges\":{\"a.P50\":2}}",
		"{\"counters\":{}\"gauges\"}",
	)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxFuzzInput {
			t.Skip()
		}
		m, warnings, err := ReadMetrics(bytes.NewReader(data), maxFuzzInput)
		if err != nil {
			checkInvalid(t, err)
			return
		}
		if len(warnings) > 1 {
			t.Fatalf("warnings %q", warnings)
		}
		b, err := MetricsRequest(m, testTime)
		if err != nil {
			t.Fatal(err)
		}
		var req colmetricspb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(b, &req); err != nil {
			t.Fatal(err)
		}
	})
}
