// Command ingest benchmarks Flowscope's durable OTLP/gRPC ingest.
//
// It builds the collector (or uses -collector, or targets a running one with
// -addr), starts it on a temporary data directory, drives it with many
// concurrent clients sending pre-encoded export requests (telemetrygen-shaped
// spans, or with -shape realistic call trees over 20 services), counts only
// the spans the collector acknowledged, shuts it down cleanly and reports
// spans/s, export latency, bytes on disk per span, peak RSS and CPU use.
// With aggregation (the default) it also measures how long an acknowledged
// span takes to show in the flow graph and latency API (-freshness) and the
// size of the rollup records; -compare runs the load with aggregation off
// and on. -report-every prints a row per interval of a long run and -blocks
// compares its parts; -vs-discard compares the collector with a server that
// only decodes and discards; -restart measures a restart on the run's data.
// Run from the repository root:
//
//	go run ./bench/ingest -duration 30s -clients 16
//	go run ./bench/ingest -duration 30s -clients 16 -compare -repeat 2
//	go run ./bench/ingest -shape realistic -duration 60m -report-every 1m
//	go run ./bench/ingest -shape realistic -duration 30s -vs-discard -repeat 3
//	go run ./bench/ingest -shape realistic -duration 4m -restart
//
// See bench/README.md for the flags and how to read the output.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	// The standard protobuf codec decodes the (small) responses.
	_ "google.golang.org/grpc/encoding/proto"
)

// config holds the command-line settings.
type config struct {
	Duration        time.Duration
	Warmup          time.Duration
	Clients         int
	Conns           int
	SpansPerRequest int
	Pool            int
	MaxRequests     int64
	Timeout         time.Duration
	Collector       string
	CollectorArgs   string
	Addr            string
	HTTPAddr        string
	DataDir         string
	PID             int
	KeepData        bool
	JSON            bool
	Seed            uint64
	Aggregation     bool  // --aggregation=… for the collector
	Freshness       *bool // markers; nil: on when Aggregation is and the REST port is known
	Compare         bool  // aggregation off then on, Repeat times
	Repeat          int
	// RulesFile is passed to the collector as --rules ("" none); GenRules,
	// when RulesFile is "", generates that many rules with `each: edge`
	// instead. Edges is how many edges the topology sender gives the flow
	// graph (-1: defaultRuleEdges with rules, 0 without). CompareRules
	// runs without and with the rules, Repeat times each.
	RulesFile    string
	GenRules     int
	Edges        int
	CompareRules bool
	// Shape is the span shape, shapeSmall or shapeRealistic.
	Shape string
	// Cardinality is the realistic shape's value sets: cardinalityLow or
	// cardinalityHigh.
	Cardinality string
	// ReportEvery > 0 records (and prints as it goes) a row every
	// ReportEvery of the window; Blocks > 0 cuts the window into that
	// many blocks (-1: defaultBlocks with ReportEvery, else 0).
	ReportEvery time.Duration
	Blocks      int
	// VsDiscard runs the load against the discard server and the
	// collector, alternately, Repeat times each.
	VsDiscard bool
	// Restart restarts the collector on its data after the load and
	// measures the restart; RestartKill stops it with SIGKILL first.
	Restart, RestartKill bool
	// discard targets the decode-and-discard server instead of the
	// collector (the discard runs of -vs-discard).
	discard bool
}

// optBool is a boolean flag that remembers whether it was given.
type optBool struct{ p **bool }

func (o optBool) String() string {
	if o.p == nil || *o.p == nil {
		return "auto"
	}
	return strconv.FormatBool(**o.p)
}

func (o optBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	*o.p = &b
	return nil
}

func (o optBool) IsBoolFlag() bool { return true }

func main() {
	if len(os.Args) > 1 && (os.Args[1] == serveDiscardArg || os.Args[1] == "-"+serveDiscardArg) {
		os.Exit(serveDiscardMain(os.Args[2:]))
	}
	var c config
	fs := flag.NewFlagSet("ingest", flag.ExitOnError)
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured sending time (after the warm-up)")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "sending time before measuring starts (not counted in spans/s)")
	fs.IntVar(&c.Clients, "clients", 16, "concurrent sending goroutines (each has one request in flight)")
	fs.IntVar(&c.Conns, "conns", 0, "gRPC connections shared by the clients (0: one per 4 clients)")
	fs.StringVar(&c.Shape, "shape", shapeSmall, "span shape: small (telemetrygen: CLIENT/SERVER pairs, 2 attributes) or realistic (call trees over 20 services, 7 resource and 10 span attributes, about 424 bytes/span)")
	fs.StringVar(&c.Cardinality, "cardinality", cardinalityLow, "realistic shape's attribute values: low (small value sets, app.request_id one per trace of the pre-encoded pool, as a pre-encoded load generator sends) or high (url.path ids from 10,000, enduser.id from 100,000, app.request_id unique per span and send)")
	fs.IntVar(&c.SpansPerRequest, "spans-per-request", 0, "spans in each export request (default 512 with -shape small: even, parent+child per trace; 1000 with -shape realistic)")
	fs.IntVar(&c.Pool, "pool", 256, "distinct pre-encoded requests; IDs are rewritten on every send")
	fs.Int64Var(&c.MaxRequests, "max-requests", 10_000_000, "stop after this many export calls in total (a safety bound)")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "deadline of one export call")
	fs.StringVar(&c.Collector, "collector", "", "collector binary to start (default: go build ./cmd/collector into a temp dir)")
	fs.StringVar(&c.CollectorArgs, "collector-args", "", "extra space-separated flags for collector serve (e.g. \"--store-queue-bytes 67108864\")")
	fs.StringVar(&c.Addr, "addr", "", "OTLP/gRPC host:port of an already running collector (nothing is started or stopped)")
	fs.StringVar(&c.HTTPAddr, "http-addr", "", "with -addr: the collector's REST/metrics host:port, for the read-back check, /metrics and freshness markers")
	fs.StringVar(&c.DataDir, "data-dir", "", "with -addr: the collector's data dir, to report bytes on disk (read while running)")
	fs.IntVar(&c.PID, "pid", 0, "with -addr: the collector's process ID, to report RSS and CPU")
	fs.BoolVar(&c.KeepData, "keep-data", false, "keep the temporary data directory and print its path")
	fs.BoolVar(&c.JSON, "json", false, "print the result as JSON instead of a table")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed for the generated IDs (0: random)")
	fs.BoolVar(&c.Aggregation, "aggregation", true, "run the collector with --aggregation=true|false (live latency rollups and flow graph)")
	fs.Var(optBool{&c.Freshness}, "freshness", "measure acknowledged → visible delay in /api/v1/flowgraph and /api/v1/latency with a marker trace every 200ms (default: on when aggregation is)")
	fs.BoolVar(&c.Compare, "compare", false, "run the same load with aggregation off, then on, each on a fresh collector and data dir, and compare throughput and RSS")
	fs.IntVar(&c.Repeat, "repeat", 1, "with -compare, -compare-rules or -vs-discard: number of pairs, run alternately; medians are reported")
	fs.StringVar(&c.RulesFile, "rules", "", "alert rules file or directory given to the collector as --rules (needs aggregation)")
	fs.IntVar(&c.GenRules, "gen-rules", 0, "without -rules: generate this many alert rules with `each: edge` over the topology (default 1000 with -compare-rules)")
	fs.IntVar(&c.Edges, "edges", -1, "service-level edges of the topology sender, one call each per second (-1: 500 with rules, else 0)")
	fs.DurationVar(&c.ReportEvery, "report-every", 0, "long runs: every this long (whole seconds) print and record a row: spans/s, slowest second, collector CPU and RSS, data dir size (0: off)")
	fs.IntVar(&c.Blocks, "blocks", -1, "cut the measured window into this many equal blocks and compare their spans/s, last/first (default 6 with -report-every, else off)")
	fs.BoolVar(&c.VsDiscard, "vs-discard", false, "run the same load against a decode-and-discard gRPC server and the collector, alternately, -repeat times each (fresh process each), and compare throughput, CPU and RSS")
	fs.BoolVar(&c.Restart, "restart", false, "after the load, restart the collector on its data (same flags) and measure the time to ports, /readyz and correct answers")
	fs.BoolVar(&c.RestartKill, "restart-kill", false, "with -restart (implied): stop the collector with SIGKILL instead of SIGTERM")
	fs.BoolVar(&c.CompareRules, "compare-rules", false, "run the same load without and with the alert rules (-rules, or 1000 generated), aggregation on, each on a fresh collector, and compare throughput")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./bench/ingest [flags]\n\nDrives durable OTLP/gRPC ingest into a Flowscope collector and reports\nacknowledged spans/s, export latency, bytes on disk per span and peak RSS;\nwith aggregation, freshness in the flow graph and latency API and rollup\nsizes. -compare measures aggregation off against on.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ingest: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	if err := setCardinality(c.Cardinality); err != nil {
		fmt.Fprintf(os.Stderr, "ingest: -cardinality: %v\n", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "ingest: "+format+"\n", args...) }
	cleanup, err := prepareRules(&c, logf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ingest: %v\n", err)
		os.Exit(2)
	}
	code := mainRun(ctx, c, logf)
	cleanup()
	if code != 0 {
		os.Exit(code)
	}
}

// mainRun runs the benchmark or the comparison, prints the result and
// returns the exit code.
func mainRun(ctx context.Context, c config, logf func(string, ...any)) int {
	print := func(v interface{ printTable(io.Writer) }) {
		if c.JSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			enc.Encode(v)
		} else {
			v.printTable(os.Stdout)
		}
	}
	if (c.Compare || c.CompareRules) && (c.Restart || c.RestartKill) {
		fmt.Fprintln(os.Stderr, "ingest: -restart cannot be combined with -compare or -compare-rules")
		return 2
	}
	if c.VsDiscard {
		vr, err := runVsDiscard(ctx, c, logf)
		if vr != nil {
			print(vr)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "ingest: %v\n", err)
			return 1
		}
		return 0
	}
	if c.Compare || c.CompareRules {
		cr, err := runCompare(ctx, c, logf)
		if cr != nil {
			print(cr)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "ingest: %v\n", err)
			return 1
		}
		return 0
	}
	res, err := run(ctx, c, logf)
	if res != nil {
		print(res)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ingest: %v\n", err)
		return 1
	}
	return 0
}
