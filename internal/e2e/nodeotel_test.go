package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// nodeFixture is the directory of the Node.js fixture: package.json and
// package-lock.json pinning the OpenTelemetry JS packages, and headers.js.
const nodeFixture = "testdata/node-otel"

// TestNodeOTelHeaderCorrelation runs the real OpenTelemetry JS SDK under
// Node.js: an HTTP server instrumented by @opentelemetry/instrumentation-http
// with headersToSpanAttributes capturing baggage and x-request-id (recorded
// as http.request.header.<name> string arrays) is called with those headers
// and exports over OTLP/HTTP protobuf. The trace must then be found by both
// correlation IDs and by attribute search on an array element.
//
// The packages are installed with npm ci from the committed lock file into
// a temporary directory, with a temporary npm cache, so the test needs the
// npm registry (or a mirror configured for npm). Without node or npm, or
// when the install fails, the test is skipped, except with CI=true where it
// fails.
func TestNodeOTelHeaderCorrelation(t *testing.T) {
	node, npm := lookNode(t)
	dir := npmFixture(t, npm, nodeFixture, "headers.js")

	s := startServer(t, "")
	runCtx, cancelRun := context.WithTimeout(context.Background(), time.Minute)
	defer cancelRun()
	run := exec.CommandContext(runCtx, node, "headers.js")
	run.Dir = dir
	run.Env = append(os.Environ(),
		"FLOWSCOPE_OTLP_TRACES_URL=http://"+s.addrs.OTLPHTTP+"/v1/traces",
		"FLOWSCOPE_X_REQUEST_ID="+headerRequestID,
		"FLOWSCOPE_BAGGAGE="+headerBaggage,
	)
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("node headers.js: %v\nstdout: %s\nstderr: %s", err, stdout.Bytes(), stderr.Bytes())
	}
	var res struct{ TraceID string }
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res.TraceID) != 32 {
		t.Fatalf("node headers.js printed %q (%v)", stdout.Bytes(), err)
	}
	// The client and the server span.
	checkHeaderCorrelation(t, s, res.TraceID, 2)
}

// lookNode returns the paths of node and npm, skipping the test when either
// is missing (failing instead when CI=true).
func lookNode(t *testing.T) (node, npm string) {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		skipUnlessCI(t, "node or npm not found: install Node.js 18.19 or later with npm (Debian/Ubuntu: apt-get install -y nodejs npm)")
	}
	return node, npm
}

// skipUnlessCI skips the test with msg, or fails it when CI=true.
func skipUnlessCI(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: the test must run)")
	}
	t.Skip(msg)
}

// npmFixture copies the files of fixture (a testdata directory with a
// package.json and package-lock.json) to a temporary directory and runs
// npm ci there, with a temporary npm cache, and returns the directory.
// A failed install skips the test, except with CI=true where it fails.
func npmFixture(t *testing.T, npm, fixture string, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range append([]string{"package.json", "package-lock.json"}, files...) {
		b, err := os.ReadFile(filepath.Join(fixture, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts",
		"--loglevel=error", "--cache", filepath.Join(t.TempDir(), "npm-cache"))
	install.Dir = dir
	install.Env = append(os.Environ(), "npm_config_update_notifier=false")
	began := time.Now()
	if out, err := install.CombinedOutput(); err != nil {
		skipUnlessCI(t, "npm ci of "+fixture+" failed (is the npm registry reachable?): "+err.Error()+"\n"+string(out))
	}
	t.Logf("npm ci of %s took %v", fixture, time.Since(began).Round(time.Millisecond))
	return dir
}
