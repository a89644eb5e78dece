package e2e

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
)

// spigoImportable lists every shared spigo sample that collector import
// reads (the csv_metrics histograms are not an import format).
var spigoImportable = []string{
	"json_metrics/lamp_flow.json",
	"json_metrics/storage_flow.json",
	"json/lamp.json",
	"json_arch/lamp_arch.json",
	"json_metrics/lamp.guess",
	"json_metrics/storage.guess",
	"json_metrics/storage_metrics.json",
}

// TestSpigoSamplesInOneStore imports all shared spigo samples into one
// store (issue 11, items 4 and 6). spigo numbers traces and spans from 1 in
// every run, so the two flow files share trace and span IDs, and lamp and
// storage both have a memcache: the import must keep their traces apart
// and the flow graph their services. Checked: every reference answer still
// holds exactly in its file's time range; over both files' range, the flow
// graph has no edge that is not in one of the references, with their exact
// calls; spigo's trace numbers stay searchable (attr.spigo.trace_id); and
// comparing with the lamp architecture leaves storage's calls out.
func TestSpigoSamplesInOneStore(t *testing.T) {
	s := startServer(t, "")
	args := []string{"--json", "--to", "http://" + s.addrs.HTTP}
	for _, f := range spigoImportable {
		args = append(args, spigoDir+f)
	}
	// lamp_arch.json replaces the architecture lamp of lamp.json: import
	// the graph again, to compare at every level.
	code, out, errOut := runImport(t, args...)
	if code != 0 {
		t.Fatalf("import: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, errOut := runImport(t, "--to", "http://"+s.addrs.HTTP, spigoDir+"json/lamp.json"); code != 0 {
		t.Fatalf("import lamp.json: exit %d\n%s\n%s", code, out, errOut)
	}

	union := map[string]float64{}
	for _, sample := range spigoSamples {
		ref := loadSpigoReference(t, sample.ref)
		t.Run(sample.flow, func(t *testing.T) { checkSpigoReference(t, s, ref, sample.arch, 0) })
		maps.Copy(union, referenceEdges(ref, sample.arch))
	}

	rng := "start=2016-01-01T00:00:00Z&end=2017-01-01T00:00:00Z"
	for _, level := range []string{"service", "instance"} {
		g := getFlowGraph(t, s, "level="+level+"&"+rng)
		if level == "service" {
			got := map[string]float64{}
			for _, e := range g.Edges {
				got[e.Source+" -> "+e.Target] = e.Calls
			}
			if fmt.Sprint(got) != fmt.Sprint(union) {
				t.Errorf("edges of both files:\n got %v\nwant %v (the references' union)", got, union)
			}
			continue
		}
		// Instances: every edge stays within one architecture.
		for _, e := range g.Edges {
			sa, _, _ := strings.Cut(e.Source, "/")
			ta, _, _ := strings.Cut(e.Target, "/")
			if sa != ta || (sa != "lamp" && sa != "storage") {
				t.Errorf("instance edge %s -> %s crosses architectures", e.Source, e.Target)
			}
		}
	}

	// spigo's trace number 7 is a trace of each flow file (their only
	// common number).
	var found struct{ Traces []struct{ Services []string } }
	s.getJSON(t, "/api/v1/traces?attr.spigo.trace_id=7&limit=100&"+rng, &found)
	var roots []string
	for _, tr := range found.Traces {
		roots = append(roots, strings.Join(tr.Services, ","))
	}
	slices.Sort(roots)
	// lamp's trace 7 is a request; storage's a setup message (Hello, no
	// service name).
	if want := []string{"rds-mysql,webserver,webserver-elb,www", "unknown_service"}; !slices.Equal(roots, want) {
		t.Errorf("traces with spigo.trace_id 7: services %q, want %q", roots, want)
	}

	// The lamp architecture is compared with lamp's calls only.
	for _, level := range []string{"service", "zone"} {
		var g cmpGraph
		s.getJSON(t, "/api/v1/flowgraph?compare=lamp&level="+level+"&"+rng, &g)
		c := g.Comparison
		if c.Namespace != "lamp" || c.ObservedOnly != 0 || len(c.ObservedOnlyEdges) != 0 || c.Both == 0 {
			t.Errorf("%s level: comparison %+v, want lamp's edges only, none observed only", level, c)
		}
		for _, e := range g.Edges {
			if strings.HasPrefix(e.Source, "storage/") || strings.HasPrefix(e.Target, "storage/") {
				t.Errorf("%s level: storage edge %s -> %s in the lamp comparison", level, e.Source, e.Target)
			}
		}
	}
}
