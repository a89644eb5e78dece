package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowscope/flowscope/internal/config"
)

// nodeZipkinFixture is the directory of the zipkin-js fixture:
// package.json and package-lock.json pinning zipkin, zipkin-transport-http
// and node-fetch, and frontback.js.
const nodeZipkinFixture = "testdata/node-zipkin"

// TestNodeZipkinV1Halves runs the real zipkin-js library under Node.js:
// a frontend and a backend HTTP service in one process, each with its own
// Tracer and HttpLogger reporting Zipkin v1 JSON (zipkin-js's default) to
// the collector's /api/v1/spans, the frontend calling the backend with B3
// headers, so that each side reports its own half of the shared span, in
// requests of its own. After 20 requests every trace must hold three
// spans — frontend SERVER (root) → frontend CLIENT → backend SERVER — and
// the flow graph exactly 20 calls frontend → backend. It runs three times,
// each with a fresh collector, and requires the same answer each time.
//
// The packages are installed with npm ci from the committed lock file into
// a temporary directory, with a temporary npm cache, so the test needs the
// npm registry (or a mirror configured for npm). Without node or npm, or
// when the install fails, the test is skipped, except with CI=true where it
// fails.
func TestNodeZipkinV1Halves(t *testing.T) {
	node, npm := lookNode(t)
	dir := npmFixture(t, npm, nodeZipkinFixture, "frontback.js")

	const requests = 20
	var answers []string
	for run := range 3 {
		answer := nodeZipkinRun(t, node, dir, requests)
		t.Logf("run %d: %s", run+1, answer)
		answers = append(answers, answer)
	}
	tree := []string{ // sorted, as nodeZipkinRun renders trees
		`CLIENT frontend "get" <- SERVER frontend "get"`,
		`SERVER backend "get" <- CLIENT frontend "get"`,
		`SERVER frontend "get" <- -`,
	}
	want := fmt.Sprintf("%d traces of [%s]; edges map[frontend → backend:%d]", requests, strings.Join(tree, "; "), requests)
	for i, a := range answers {
		if a != want {
			t.Errorf("run %d: %s\nwant %s", i+1, a, want)
		}
	}
}

// nodeZipkinRun starts a collector, runs frontback.js against it and
// returns what it stored: the distinct trace trees and the edges.
func nodeZipkinRun(t *testing.T, node, dir string, requests int) string {
	t.Helper()
	s := startServer(t, "", func(c *config.Config) { c.Aggregation.EdgeWait = time.Second })
	defer s.stop(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, node, "frontback.js")
	run.Dir = dir
	run.Env = append(os.Environ(),
		"FLOWSCOPE_ZIPKIN_URL=http://"+s.addrs.Zipkin+"/api/v1/spans",
		fmt.Sprintf("FLOWSCOPE_REQUESTS=%d", requests))
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("node frontback.js: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	var res struct{ TraceIDs []string }
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("node frontback.js printed %q (%v)", stdout.Bytes(), err)
	}
	trees := map[string]int{}
	for _, id := range res.TraceIDs {
		if len(id) == 16 {
			id = strings.Repeat("0", 16) + id
		}
		tree := readTree(t, s, id, 3)
		slices.Sort(tree)
		trees["["+strings.Join(tree, "; ")+"]"]++
	}
	var parts []string
	for tree, n := range trees {
		parts = append(parts, fmt.Sprintf("%d traces of %s", n, tree))
	}
	slices.Sort(parts)
	edges := waitEdges(t, s, map[string]float64{"frontend → backend": float64(requests)})
	return strings.Join(parts, ", ") + "; edges " + fmt.Sprint(edges)
}
