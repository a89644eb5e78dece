// Command scaleout measures ingest through the OpenTelemetry Collector
// into several Flowscope nodes: the scale-out of docs/scale-out.md, in
// which the Collector's load-balancing exporter routes every span by its
// trace ID to one of N nodes. Run from the repository root:
//
//	go run ./bench/scaleout -nodes 1,3 -duration 30s
//
// For each N of -nodes it starts N nodes (`collector serve`, each on a
// loopback address of its own, 127.0.0.2, 127.0.0.3, …, with its own
// temporary data directory), then the Collector (built by
// .ci/build-otelcol) with the static resolver over the nodes' OTLP/gRPC
// addresses, sends pre-encoded shop traffic (otlptest.GenerateTopology)
// to the Collector over OTLP/gRPC from -conns streams for -duration,
// waits until the nodes have stored what was acknowledged, and reports
// throughput, spans per node, CPU per span of every process and how busy
// the machine was. See bench/README.md for how to read the output.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/flowscope/flowscope/bench/internal/benchproc"
)

// Bounds of the flags.
const (
	maxDuration = 10 * time.Minute
	maxNodes    = 32 // 127.0.0.2 … 127.0.0.33
	maxConns    = 256
)

// otelcolVersion is the release .ci/build-otelcol builds.
const otelcolVersion = "v0.161.0"

// config holds the command-line settings.
type config struct {
	Otelcol    string        // the Collector binary
	Collector  string        // the Flowscope binary ("": build ./cmd/collector)
	Nodes      []int         // cluster sizes, run in this order
	Duration   time.Duration // load per cluster size
	Conns      int           // concurrent export streams (one gRPC connection each)
	JSON       string        // file for the machine-readable result ("": none)
	Pool       int           // distinct pre-encoded requests
	PerRequest int           // traces per request
	QueueSize  int           // the Collector's per-node sending_queue size (requests)
	Consumers  int           // the Collector's per-node sending_queue consumers
}

// defaultOtelcol is where the Collector is looked for: $FLOWSCOPE_OTELCOL_BIN,
// else what .ci/build-otelcol builds under $FLOWSCOPE_TOOLS_DIR (default
// ~/.cache/flowscope).
func defaultOtelcol(getenv func(string) string) string {
	if p := getenv("FLOWSCOPE_OTELCOL_BIN"); p != "" {
		return p
	}
	tools := getenv("FLOWSCOPE_TOOLS_DIR")
	if tools == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		tools = filepath.Join(home, ".cache", "flowscope")
	}
	return filepath.Join(tools, "otelcol-"+otelcolVersion, "otelcol-flowscope")
}

// parseNodes parses -nodes: a comma-separated list of distinct cluster
// sizes from 1 to maxNodes ("1,3").
func parseNodes(s string) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("-nodes %q: %q is not a whole number", s, f)
		}
		if n < 1 || n > maxNodes {
			return nil, fmt.Errorf("-nodes %q: %d is not between 1 and %d", s, n, maxNodes)
		}
		if seen[n] {
			return nil, fmt.Errorf("-nodes %q: %d twice", s, n)
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

// parseFlags parses the command line; usage and errors of the flag
// package go to out.
func parseFlags(args []string, getenv func(string) string, out io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("scaleout", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Otelcol, "otelcol", defaultOtelcol(getenv), "the OpenTelemetry Collector built by .ci/build-otelcol ($FLOWSCOPE_OTELCOL_BIN, else under $FLOWSCOPE_TOOLS_DIR or ~/.cache/flowscope)")
	fs.StringVar(&c.Collector, "collector", "", "the Flowscope collector binary (default: build ./cmd/collector)")
	nodes := fs.String("nodes", "1,3", "comma-separated numbers of nodes, one run each")
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "load per run (at most "+maxDuration.String()+")")
	fs.IntVar(&c.Conns, "conns", 4, "concurrent OTLP/gRPC export streams to the Collector, one connection each")
	fs.StringVar(&c.JSON, "json", "", "also write the results as JSON to this file")
	fs.IntVar(&c.Pool, "pool", 400, "distinct pre-encoded export requests")
	fs.IntVar(&c.PerRequest, "per-request", 64, "traces per export request (about 7.7 spans each)")
	fs.IntVar(&c.QueueSize, "queue-size", 5000, "the Collector's per-node sending_queue size, in requests")
	fs.IntVar(&c.Consumers, "consumers", 4, "the Collector's per-node sending_queue num_consumers")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./bench/scaleout [flags]\n\nIngest through the OpenTelemetry Collector's load-balancing exporter into 1 and 3 (-nodes) Flowscope nodes.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if c.Nodes, err = parseNodes(*nodes); err != nil {
		return c, err
	}
	switch {
	case c.Duration <= 0:
		return c, fmt.Errorf("-duration %s: must be positive", c.Duration)
	case c.Duration > maxDuration:
		return c, fmt.Errorf("-duration %s: longer than %s", c.Duration, maxDuration)
	case c.Conns < 1 || c.Conns > maxConns:
		return c, fmt.Errorf("-conns %d: not between 1 and %d", c.Conns, maxConns)
	case c.Pool < 1 || c.Pool > 10_000:
		return c, fmt.Errorf("-pool %d: not between 1 and 10000", c.Pool)
	case c.PerRequest < 1 || c.PerRequest > 1000:
		return c, fmt.Errorf("-per-request %d: not between 1 and 1000", c.PerRequest)
	case c.QueueSize < 1:
		return c, fmt.Errorf("-queue-size %d: must be positive", c.QueueSize)
	case c.Consumers < 1:
		return c, fmt.Errorf("-consumers %d: must be positive", c.Consumers)
	case c.Otelcol == "":
		return c, errors.New("no -otelcol and no home directory: pass -otelcol PATH")
	}
	return c, nil
}

// checkOtelcol makes sure the Collector binary is there.
func checkOtelcol(path string) error {
	st, err := os.Stat(path)
	if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("the OpenTelemetry Collector is not at %s: build it with .ci/build-otelcol (several minutes the first time), or name it with -otelcol PATH or FLOWSCOPE_OTELCOL_BIN", path)
	}
	return nil
}

func main() { os.Exit(realMain()) }

// realMain runs the benchmark and returns the exit code: 0, 1 when a run
// failed, 2 for a bad command line.
func realMain() int {
	c, err := parseFlags(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaleout:", err)
		return 2
	}
	if err := checkOtelcol(c.Otelcol); err != nil {
		fmt.Fprintln(os.Stderr, "scaleout:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
	res, err := run(ctx, c, logf)
	if res != nil && len(res.Runs) > 0 {
		printSummary(os.Stdout, res)
		if c.JSON != "" {
			b, jerr := json.MarshalIndent(res, "", "  ")
			if jerr == nil {
				jerr = os.WriteFile(c.JSON, append(b, '\n'), 0o644)
			}
			if jerr != nil {
				fmt.Fprintln(os.Stderr, "scaleout: -json:", jerr)
				return 1
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaleout:", err)
		return 1
	}
	return 0
}

// run builds what is missing and measures every cluster size in turn.
func run(ctx context.Context, c config, logf func(string, ...any)) (*Result, error) {
	tmp, err := os.MkdirTemp("", "flowscope-scaleout-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	res := &Result{Started: time.Now().UTC(), CPUs: runtime.NumCPU(), Duration: c.Duration.String(), Conns: c.Conns,
		Pool: c.Pool, TracesPerRequest: c.PerRequest, QueueSize: c.QueueSize, Consumers: c.Consumers, Otelcol: c.Otelcol}
	if c.Collector == "" {
		logf("building the collector")
		if c.Collector, err = benchproc.BuildCollector(ctx, tmp); err != nil {
			return nil, err
		}
	}
	res.Collector = c.Collector
	for i, n := range c.Nodes {
		dir := filepath.Join(tmp, fmt.Sprintf("run-%d", i+1))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return res, err
		}
		rr, err := runCluster(ctx, c, n, uint64(i+1), dir, logf)
		os.RemoveAll(dir)
		if rr != nil && rr.Stored+rr.Acked > 0 && ctx.Err() == nil { // a run that got as far as figures
			res.Runs = append(res.Runs, *rr)
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("interrupted during the %d-node run: nothing of it is reported", n)
		}
		if err != nil {
			return res, fmt.Errorf("%d nodes: %w", n, err)
		}
	}
	return res, nil
}
