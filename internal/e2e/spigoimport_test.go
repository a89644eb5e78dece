package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	collectorBinOnce sync.Once
	collectorBin     string
	collectorBinErr  error
)

// sharedCollectorBin builds the collector binary once per test run.
func sharedCollectorBin(t *testing.T) string {
	t.Helper()
	collectorBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowscope-e2e-bin-")
		if err != nil {
			collectorBinErr = err
			return
		}
		collectorBin = filepath.Join(dir, "collector")
		collectorBinErr = goBuildCollector(procGoTool(t), collectorBin)
	})
	if collectorBinErr != nil {
		t.Fatal(collectorBinErr)
	}
	return collectorBin
}

// runImport runs `collector import ARGS...` and returns its exit code,
// stdout and stderr.
func runImport(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(sharedCollectorBin(t), append([]string{"import"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// importSummary is the part of the import summary (--json) checked here.
type importSummary struct {
	Format   string
	Spans    int
	Traces   int
	Services []string
	Shift    time.Duration
	End      time.Time
	Rejected int
}

func decodeSummaries(t *testing.T, out string) []importSummary {
	t.Helper()
	var sums []importSummary
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var s importSummary
		if err := dec.Decode(&s); err != nil {
			t.Fatalf("summary %q: %v", out, err)
		}
		sums = append(sums, s)
	}
	return sums
}

// TestSpigoSamplesThroughImportCLI imports each spigo flow file with the
// collector import command — uploaded to a running collector, and written
// into a store directory that a collector then serves — and checks the
// printed summary and what the collector serves against the reference
// answers; the upload also with --rebase=now.
func TestSpigoSamplesThroughImportCLI(t *testing.T) {
	for _, sample := range spigoSamples {
		ref := loadSpigoReference(t, sample.ref)
		file := spigoDir + sample.flow
		checkSummary := func(t *testing.T, out string) importSummary {
			t.Helper()
			sums := decodeSummaries(t, out)
			if len(sums) != 1 {
				t.Fatalf("%d summaries in %q", len(sums), out)
			}
			s := sums[0]
			if s.Format != "zipkin-v1" || s.Spans != ref.Flow.Spans || s.Traces != ref.Flow.Traces || s.Rejected != 0 ||
				strings.Join(s.Services, ",") != strings.Join(ref.Flow.Services, ",") {
				t.Errorf("summary %+v, want zipkin-v1, %d spans, %d traces, services %v", s, ref.Flow.Spans, ref.Flow.Traces, ref.Flow.Services)
			}
			return s
		}
		t.Run(sample.flow+"/upload", func(t *testing.T) {
			s := startServer(t, "")
			code, out, errOut := runImport(t, "--json", "--to", "http://"+s.addrs.HTTP, file)
			if code != 0 {
				t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
			}
			checkSummary(t, out)
			checkSpigoReference(t, s, ref, sample.arch, 0)
		})
		t.Run(sample.flow+"/upload-rebase", func(t *testing.T) {
			s := startServer(t, "")
			before := time.Now()
			code, out, errOut := runImport(t, "--json", "--rebase=now", "--to", "http://"+s.addrs.HTTP, file)
			if code != 0 {
				t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
			}
			sum := checkSummary(t, out)
			if sum.End.Before(before) || sum.End.After(time.Now()) {
				t.Errorf("rebased end %v not between %v and now", sum.End, before)
			}
			checkSpigoReference(t, s, ref, sample.arch, sum.Shift)
		})
		t.Run(sample.flow+"/data-dir", func(t *testing.T) {
			dir := t.TempDir()
			code, out, errOut := runImport(t, "--json", "--progress=lines", "--data-dir", dir, file)
			if code != 0 {
				t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
			}
			checkSummary(t, out)
			if !strings.Contains(errOut, "import "+file) {
				t.Errorf("no progress lines on stderr: %q", errOut)
			}
			s := startServer(t, dir)
			checkSpigoReference(t, s, ref, sample.arch, 0)
		})
	}
}

// TestImportWhileServing checks that --data-dir refuses a store a running
// collector holds, naming the problem, and changes nothing.
func TestImportWhileServing(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	code, _, errOut := runImport(t, "--data-dir", dir, spigoDir+"json_metrics/lamp_flow.json")
	if code != 1 || !strings.Contains(errOut, "is a collector running") {
		t.Errorf("exit %d, stderr %q; want 1 and a message about the running collector", code, errOut)
	}
	var svcs struct{ Services []struct{ Name string } }
	s.getJSON(t, "/api/v1/services?start=2016-01-01T00:00:00Z", &svcs)
	if len(svcs.Services) != 0 {
		t.Errorf("services after a refused import: %+v", svcs.Services)
	}
}

// TestLampDeclaredVersusObserved imports the lamp graph JSON (the declared
// architecture) and the lamp flow (a different run) and checks the
// comparison. Expected values come from the files (testdata/spigo/README.md
// §7 and reference/lamp_sample.reference.json "trace_vs_graph"): the 4
// service edges are declared and observed; at instance level the 15
// observed instance edges are all among the 73 declared ones.
func TestLampDeclaredVersusObserved(t *testing.T) {
	s := startServer(t, "")
	code, out, errOut := runImport(t, "--to", "http://"+s.addrs.HTTP,
		spigoDir+"json/lamp.json", spigoDir+"json_metrics/lamp_flow.json")
	if code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "architecture: lamp (23 nodes, 73 edges)") {
		t.Errorf("summary does not report the architecture:\n%s", out)
	}
	var archs struct {
		Architectures []struct {
			Name         string
			Nodes, Edges float64
		}
	}
	s.getJSON(t, "/api/v1/architectures", &archs)
	if len(archs.Architectures) != 1 || archs.Architectures[0].Name != "lamp" {
		t.Fatalf("architectures: %+v", archs)
	}
	rng := "&start=2016-05-18T16:00:00Z&end=2016-05-18T17:00:00Z"
	var g cmpGraph
	s.getJSON(t, "/api/v1/flowgraph?level=service&compare=lamp"+rng, &g)
	want := map[string]string{
		"lamp/www -> lamp/webserver-elb":       "both",
		"lamp/webserver-elb -> lamp/webserver": "both",
		"lamp/webserver -> lamp/rds-mysql":     "both",
		"lamp/webserver -> lamp/memcache":      "both",
	}
	got := map[string]string{}
	for _, e := range g.Edges {
		got[e.Source+" -> "+e.Target] = e.Declared
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("service level:\n got %v\nwant %v", got, want)
	}
	if c := g.Comparison; c.Architecture != "lamp" || c.Namespace != "lamp" || c.Both != 4 || c.DeclaredOnly != 0 || c.ObservedOnly != 0 {
		t.Errorf("service comparison %+v, want 4 both in namespace lamp", c)
	}
	s.getJSON(t, "/api/v1/flowgraph?level=instance&compare=lamp"+rng, &g)
	if c := g.Comparison; c.Both != 15 || c.DeclaredOnly != 73-15 || c.ObservedOnly != 0 ||
		len(c.DeclaredOnlyEdges) != 73-15 || len(c.ObservedOnlyEdges) != 0 {
		t.Errorf("instance comparison %+v, want 15 both, 58 declared only (listed), 0 observed only", c)
	}
}

// cmpGraph is the part of a flow graph with compare checked here.
type cmpGraph struct {
	Edges []struct {
		Source, Target, Declared string
		Calls                    float64
	}
	Comparison struct {
		Architecture, Namespace              string
		Both, DeclaredOnly, ObservedOnly     float64
		DeclaredOnlyEdges, ObservedOnlyEdges []struct{ Source, Target string }
	}
}
