package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// layers places every package of the module in the data path, bottom
// (0) to top: a package may import only packages of a lower layer. The
// data path runs from the receivers (ingest) through the store sink into
// the store and the aggregation, whose leaf is the OTLP parser; the query
// side reads the store and the web port serves the query side; the wiring
// (internal/collector, with its config) stands above all of it, and the
// binaries, benchmarks and end-to-end tests above that.
var layers = map[string]int{
	// Leaves: they import nothing of ours (or only a leaf).
	"otlpwire": 0, "membudget": 0, "yamlfile": 0,
	"internal/otlptest": 0, "internal/jsondiff": 0, "internal/otelcoltest": 0, "internal/logtest": 0, "dashboards": 0, "lint": 0,
	// Libraries the store and the receivers stand on.
	"aggregate": 1, "yamlfile/yamlfiletest": 1, "alerting/rules": 1, "alerting/notify": 1, "synthetics/checks": 1,
	"ingest": 1, "ingest/internal/budgetio": 1,
	"internal/netlimit": 1, "internal/security": 1,
	// The store, and the codecs the receivers share.
	"store": 2, "ingest/internal/budgetio/budgetiotest": 2, "ingest/internal/httpbody": 2, "ingest/otlpjson": 2, "ingest/spigo": 2,
	// What reads or writes the store: the receivers (through the sink),
	// the alerting, synthetics and policy engines.
	"ingest/storesink": 3, "ingest/zipkin": 3, "ingest/otlphttp": 3, "ingest/otlpgrpc": 3,
	"alerting": 3, "synthetics": 3, "policies": 3,
	"ingest/importer": 4, "policies/monitor": 4, "query/querypb": 4,
	// The query side.
	"query": 5, "query/jaegerapi": 5, "query/zipkinapi": 5, "query/promexport": 5,
	"ingest/importer/importhttp": 5,
	"web":                        6,
	// The query front end's fan-out, which answers as the query side's
	// Store.
	"query/fanout": 6,
	// Wiring.
	"internal/config":    7,
	"internal/collector": 8,
	// The benchmarks' subprocess and /proc helpers (they import nothing
	// of ours; placed just below the programs that use them).
	"bench/internal/benchproc": 8,
	// Programs and tests of the whole.
	"cmd/collector": 9, "internal/e2e": 9, "web/uitest": 9,
	"bench/ingest": 9, "bench/alerting": 9, "bench/synthetics": 9, "bench/frontend": 9, "bench/scaleout": 9,
}

// TestLayers checks the import graph of the module (go list) against
// layers: no package imports one of its own layer or above, and every
// package has a layer (a new package must be placed).
func TestLayers(t *testing.T) {
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const module = "github.com/flowscope/flowscope/"
	rel := func(p string) string { return strings.TrimPrefix(p, module) }
	var problems []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg := rel(fields[0])
		seen[pkg] = true
		layer, ok := layers[pkg]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s has no layer: add it to layers", pkg))
			continue
		}
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			dep := rel(imp)
			if l, ok := layers[dep]; ok && l >= layer {
				problems = append(problems, fmt.Sprintf("%s (layer %d) imports %s (layer %d)", pkg, layer, dep, l))
			}
		}
	}
	for pkg := range layers {
		if !seen[pkg] {
			problems = append(problems, fmt.Sprintf("layers names %s, which is not a package", pkg))
		}
	}
	slices.Sort(problems)
	if len(problems) > 0 {
		t.Errorf("the import graph breaks the layers:\n%s", strings.Join(problems, "\n"))
	}
}
