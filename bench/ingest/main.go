// Command ingest benchmarks Flowscope's durable OTLP/gRPC ingest.
//
// It builds the collector (or uses -collector, or targets a running one with
// -addr), starts it on a temporary data directory, drives it with many
// concurrent clients sending pre-encoded telemetrygen-shaped export requests,
// counts only the spans the collector acknowledged, shuts it down cleanly
// and reports spans/s, export latency, bytes on disk per span, peak RSS and
// CPU use. With aggregation (the default) it also measures how long an
// acknowledged span takes to show in the flow graph and latency API
// (-freshness) and the size of the rollup records; -compare runs the load
// with aggregation off and on. Run from the repository root:
//
//	go run ./bench/ingest -duration 30s -clients 16
//	go run ./bench/ingest -duration 30s -clients 16 -compare -repeat 2
//
// See bench/README.md for the flags and how to read the output.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

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
	var c config
	fs := flag.NewFlagSet("ingest", flag.ExitOnError)
	fs.DurationVar(&c.Duration, "duration", 30*time.Second, "measured sending time (after the warm-up)")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "sending time before measuring starts (not counted in spans/s)")
	fs.IntVar(&c.Clients, "clients", 16, "concurrent sending goroutines (each has one request in flight)")
	fs.IntVar(&c.Conns, "conns", 0, "gRPC connections shared by the clients (0: one per 4 clients)")
	fs.IntVar(&c.SpansPerRequest, "spans-per-request", 512, "spans in each export request (even: parent+child per trace)")
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
	fs.IntVar(&c.Repeat, "repeat", 1, "with -compare or -compare-rules: number of off/on pairs, run alternately; medians are reported")
	fs.StringVar(&c.RulesFile, "rules", "", "alert rules file or directory given to the collector as --rules (needs aggregation)")
	fs.IntVar(&c.GenRules, "gen-rules", 0, "without -rules: generate this many alert rules with `each: edge` over the topology (default 1000 with -compare-rules)")
	fs.IntVar(&c.Edges, "edges", -1, "service-level edges of the topology sender, one call each per second (-1: 500 with rules, else 0)")
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

// Result is what one run measured. Pointer fields are null when unknown
// (for example disk and RSS when targeting a collector started elsewhere).
type Result struct {
	Target          string  `json:"target"`      // "subprocess" or the -addr
	Collector       string  `json:"collector"`   // binary path, when started here
	Aggregation     bool    `json:"aggregation"` // --aggregation given to the collector (as told by -aggregation with -addr)
	Clients         int     `json:"clients"`     // concurrent senders
	Conns           int     `json:"conns"`       // gRPC connections
	SpansPerRequest int     `json:"spans_per_request"`
	RequestBytes    int     `json:"request_bytes"`    // encoded size of one request
	WarmupSeconds   float64 `json:"warmup_seconds"`   // sending time not measured
	MeasuredSeconds float64 `json:"measured_seconds"` // the window spans/s is computed over

	AckedSpans      int64   `json:"acked_spans"`       // spans acknowledged (export OK) inside the window
	SpansPerSecond  float64 `json:"spans_per_second"`  // AckedSpans / MeasuredSeconds
	AckedSpansTotal int64   `json:"acked_spans_total"` // including warm-up and the drain after the window
	RequestsOK      int64   `json:"requests_ok"`       // export calls that returned OK (whole run)
	RequestsRefused int64   `json:"requests_refused"`  // RESOURCE_EXHAUSTED or UNAVAILABLE (whole run)
	RequestsFailed  int64   `json:"requests_failed"`   // any other error (whole run)
	SpansRejected   int64   `json:"spans_rejected"`    // partial_success.rejected_spans (whole run)
	FirstError      string  `json:"first_error,omitempty"`
	LatencyP50Ms    float64 `json:"latency_p50_ms"` // export latency of OK calls in the window
	LatencyP99Ms    float64 `json:"latency_p99_ms"`
	LatencyMaxMs    float64 `json:"latency_max_ms"`
	// Acks tells how evenly acknowledgements arrived in the window: the
	// longest gap without any, and the 100 ms buckets without any.
	Acks *AckStats `json:"acks"`

	DBFileBytes  *int64   `json:"db_file_bytes"`  // size of flowscope.db after shutdown
	DataDirBytes *int64   `json:"data_dir_bytes"` // every file in the data directory
	BytesPerSpan *float64 `json:"bytes_per_span"` // DBFileBytes / AckedSpansTotal

	PeakRSSBytes       *int64   `json:"peak_rss_bytes"`             // VmHWM of the collector, read before it stops
	MaxSampledRSSBytes *int64   `json:"max_sampled_rss_bytes"`      // largest VmRSS seen while sampling
	MaxSampledAnon     *int64   `json:"max_sampled_rss_anon_bytes"` // largest RssAnon seen while sampling
	MaxSampledFile     *int64   `json:"max_sampled_rss_file_bytes"` // largest RssFile seen while sampling
	RSSAnonBytes       *int64   `json:"rss_anon_bytes"`             // RssAnon (heap, stacks) at the end of the load
	RSSFileBytes       *int64   `json:"rss_file_bytes"`             // RssFile (mapped files: the bbolt mmap, the binary) at the end
	ServerCPUSeconds   *float64 `json:"server_cpu_seconds"`         // collector user+system CPU in the window
	ClientCPUSeconds   float64  `json:"client_cpu_seconds"`         // this process's user+system CPU in the window
	ServerCores        *float64 `json:"server_cores"`               // ServerCPUSeconds / MeasuredSeconds
	ClientCores        float64  `json:"client_cores"`
	// OtherCores is the CPU the rest of the machine used in the window:
	// busy time of all CPUs (/proc/stat) less the collector's and the
	// harness's, per second. With -addr and no -pid it includes the
	// collector. Anything well above 0 means the run competed for the cores.
	OtherCores  *float64 `json:"other_cores"`
	MachineCPUs int      `json:"machine_cpus"` // CPUs online

	LoadAvgBefore string `json:"loadavg_before"` // /proc/loadavg before the load: other work on the machine skews results
	LoadAvgAfter  string `json:"loadavg_after"`

	ServerAcceptedSpans *int64 `json:"server_accepted_spans"` // the collector's flowscope_store_items_total{signal="traces",outcome="accepted"}

	Freshness *FreshnessResult `json:"freshness"` // markers: acknowledged → visible; null when not measured
	Rollup    *RollupResult    `json:"rollup"`    // rollup records written, from /metrics before shutdown; null when unknown
	// Rules is the alert rules' status after the load; null when the
	// collector ran without rules (-rules, -gen-rules, -compare-rules).
	Rules *RulesResult `json:"rules"`
	// TopologyEdges is how many edges the topology sender (-edges) gave
	// the flow graph, with one call each per second (not in spans/s);
	// TopologyRequests of its requests were acknowledged.
	TopologyEdges    int    `json:"topology_edges"`
	TopologyRequests int64  `json:"topology_requests"`
	TopologyError    string `json:"topology_error,omitempty"`

	ReadBack        *bool    `json:"read_back"`        // an acknowledged trace was found by ID after the run
	ShutdownSeconds *float64 `json:"shutdown_seconds"` // SIGTERM to exit
	ExitCode        *int     `json:"exit_code"`        // collector exit status
	ErrorLogs       *int     `json:"error_logs"`       // collector log lines at level ERROR
	DataDir         string   `json:"data_dir,omitempty"`
}

func (r *Result) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	unknown := "unknown"
	i64 := func(p *int64, f func(int64) string) string {
		if p == nil {
			return unknown
		}
		return f(*p)
	}
	f64 := func(p *float64, f string) string {
		if p == nil {
			return unknown
		}
		return fmt.Sprintf(f, *p)
	}
	row("target", r.Target+" "+r.Collector)
	row("aggregation", strconv.FormatBool(r.Aggregation))
	row("clients / conns", fmt.Sprintf("%d / %d", r.Clients, r.Conns))
	row("spans per request", fmt.Sprintf("%d (%d bytes encoded)", r.SpansPerRequest, r.RequestBytes))
	row("warm-up / measured", fmt.Sprintf("%.1f s / %.1f s", r.WarmupSeconds, r.MeasuredSeconds))
	row("acknowledged spans", fmt.Sprintf("%d in window, %d in total", r.AckedSpans, r.AckedSpansTotal))
	row("spans/s (acknowledged)", fmt.Sprintf("%.0f", r.SpansPerSecond))
	row("requests ok / refused / failed", fmt.Sprintf("%d / %d / %d", r.RequestsOK, r.RequestsRefused, r.RequestsFailed))
	if r.SpansRejected > 0 {
		row("spans rejected (partial)", strconv.FormatInt(r.SpansRejected, 10))
	}
	if r.FirstError != "" {
		row("first error", r.FirstError)
	}
	row("export latency p50 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f ms", r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs))
	r.Acks.rows(row)
	row("flowscope.db size", i64(r.DBFileBytes, mib))
	row("data dir size", i64(r.DataDirBytes, mib))
	row("bytes on disk per span", f64(r.BytesPerSpan, "%.1f"))
	row("peak RSS (VmHWM)", i64(r.PeakRSSBytes, mib))
	row("max sampled RSS", i64(r.MaxSampledRSSBytes, mib))
	row("max sampled RSS anon / file", i64(r.MaxSampledAnon, mib)+" / "+i64(r.MaxSampledFile, mib))
	row("RSS anon / file at the end", i64(r.RSSAnonBytes, mib)+" / "+i64(r.RSSFileBytes, mib))
	row("server CPU in window", f64(r.ServerCPUSeconds, "%.1f s")+" ("+f64(r.ServerCores, "%.2f cores")+")")
	row("client CPU in window", fmt.Sprintf("%.1f s (%.2f cores)", r.ClientCPUSeconds, r.ClientCores))
	row("other processes' CPU in window", f64(r.OtherCores, "%.2f cores")+fmt.Sprintf(" (of %d CPUs)", r.MachineCPUs))
	rb := unknown
	if r.ReadBack != nil {
		rb = strconv.FormatBool(*r.ReadBack)
	}
	row("spans accepted by the store (self-metric)", i64(r.ServerAcceptedSpans, func(n int64) string { return strconv.FormatInt(n, 10) }))
	row("load average before / after", r.LoadAvgBefore+" / "+r.LoadAvgAfter)
	r.Freshness.rows(row)
	r.Rollup.rows(row)
	if r.TopologyEdges > 0 {
		row("topology edges / requests acked", fmt.Sprintf("%d / %d", r.TopologyEdges, r.TopologyRequests))
	}
	if r.TopologyError != "" {
		row("topology first error", r.TopologyError)
	}
	r.Rules.rows(row)
	row("acked trace read back", rb)
	row("shutdown", f64(r.ShutdownSeconds, "%.2f s"))
	ec, el := unknown, unknown
	if r.ExitCode != nil {
		ec = strconv.Itoa(*r.ExitCode)
	}
	if r.ErrorLogs != nil {
		el = strconv.Itoa(*r.ErrorLogs)
	}
	row("collector exit code / error logs", ec+" / "+el)
	if r.DataDir != "" {
		row("data dir (kept)", r.DataDir)
	}
	tw.Flush()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB (%d bytes)", float64(n)/(1<<20), n) }

// run performs one benchmark run. It returns a partial result with an error
// when the run could not complete cleanly.
func run(ctx context.Context, c config, logf func(string, ...any)) (*Result, error) {
	if c.Clients < 1 || c.Duration <= 0 || c.Warmup < 0 || c.Pool < 1 || c.MaxRequests < 1 {
		return nil, errors.New("need -clients >= 1, -duration > 0, -warmup >= 0, -pool >= 1, -max-requests >= 1")
	}
	if c.Conns <= 0 {
		c.Conns = (c.Clients + 3) / 4
	}
	if c.Conns > c.Clients {
		c.Conns = c.Clients
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	fresh := c.Aggregation && (c.Addr == "" || c.HTTPAddr != "")
	if c.Freshness != nil {
		fresh = *c.Freshness
		if fresh && !c.Aggregation {
			return nil, errors.New("-freshness needs aggregation: the flow graph and latency API are empty with -aggregation=false")
		}
		if fresh && c.Addr != "" && c.HTTPAddr == "" {
			return nil, errors.New("-freshness with -addr needs -http-addr")
		}
	}
	res := &Result{Clients: c.Clients, Conns: c.Conns, SpansPerRequest: c.SpansPerRequest, Aggregation: c.Aggregation}

	// The collector: started here, or already running.
	var proc *collectorProc
	var procStarted time.Time
	grpcAddr, httpAddr, dataDir, pid := c.Addr, c.HTTPAddr, c.DataDir, c.PID
	if c.Addr == "" {
		bin := c.Collector
		tmp, err := os.MkdirTemp("", "flowscope-bench-")
		if err != nil {
			return nil, err
		}
		if !c.KeepData {
			defer os.RemoveAll(tmp)
		} else {
			res.DataDir = filepath.Join(tmp, "data")
		}
		if bin == "" {
			logf("building the collector")
			if bin, err = buildCollector(ctx, tmp); err != nil {
				return nil, err
			}
		}
		res.Target, res.Collector = "subprocess", bin
		dataDir = filepath.Join(tmp, "data")
		args := []string{"--aggregation=" + strconv.FormatBool(c.Aggregation)}
		if c.RulesFile != "" {
			args = append(args, "--rules", c.RulesFile)
		}
		args = append(args, strings.Fields(c.CollectorArgs)...)
		proc, err = startCollector(ctx, bin, dataDir, args)
		if err != nil {
			return nil, err
		}
		defer proc.kill()
		procStarted = time.Now()
		grpcAddr, httpAddr, pid = proc.grpcAddr, proc.httpAddr, proc.cmd.Process.Pid
		logf("collector pid %d: otlp_grpc %s, http %s, data %s", pid, grpcAddr, httpAddr, dataDir)
	} else {
		res.Target = c.Addr
	}

	logf("encoding %d requests of %d spans", c.Pool, c.SpansPerRequest)
	templates, err := buildTemplates(c.Pool, c.SpansPerRequest, c.Seed)
	if err != nil {
		return nil, err
	}
	res.SpansPerRequest = templates[0].spans
	res.RequestBytes = len(templates[0].raw)

	conns := make([]*grpc.ClientConn, c.Conns)
	for i := range conns {
		cc, err := grpc.NewClient(grpcAddr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{proto: encoding.GetCodecV2("proto")})),
			grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(4<<20))
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", grpcAddr, err)
		}
		defer cc.Close()
		conns[i] = cc
	}

	// RSS sampling while the load runs.
	var rssMax, anonMax, fileMax atomic.Int64
	sampleDone := make(chan struct{})
	var sampler sync.WaitGroup
	if pid > 0 {
		sampler.Add(1)
		go func() {
			defer sampler.Done()
			t := time.NewTicker(rssSampleEvery)
			defer t.Stop()
			for {
				if st, err := readProcStatus(pid); err == nil {
					for _, m := range []struct {
						key string
						max *atomic.Int64
					}{{"VmRSS", &rssMax}, {"RssAnon", &anonMax}, {"RssFile", &fileMax}} {
						if st[m.key] > m.max.Load() {
							m.max.Store(st[m.key])
						}
					}
				}
				select {
				case <-sampleDone:
					return
				case <-t.C:
				}
			}
		}()
	}

	// The load.
	res.LoadAvgBefore = loadAvg()
	start := time.Now()
	winStart := start.Add(c.Warmup)
	winEnd := winStart.Add(c.Duration)
	ld := &load{templates: templates, winStart: winStart, winEnd: winEnd, maxRequests: c.MaxRequests, timeout: c.Timeout, seqBase: c.Seed}
	logf("sending with %d clients over %d connections: %s warm-up, %s measured (aggregation %v, freshness markers %v)",
		c.Clients, c.Conns, c.Warmup, c.Duration, c.Aggregation, fresh)
	var topo *topologySender
	if c.Edges > 0 {
		if topo, err = startTopology(ctx, grpcAddr, c.Edges, c.Seed, winEnd); err != nil {
			close(sampleDone)
			sampler.Wait()
			return nil, err
		}
		res.TopologyEdges = c.Edges
	}
	var fr *freshness
	if fresh {
		fr = newFreshness(grpcAddr, httpAddr, winStart, winEnd, c.Seed)
		if err := fr.start(ctx); err != nil {
			close(sampleDone)
			sampler.Wait()
			return nil, err
		}
	}
	var wg sync.WaitGroup
	clients := make([]*client, c.Clients)
	for i := range clients {
		clients[i] = &client{ld: ld, cc: conns[i%len(conns)], lat: make([]time.Duration, 0, 4096)}
		wg.Add(1)
		go func(cl *client) { defer wg.Done(); cl.loop(ctx) }(clients[i])
	}

	// CPU at the window's edges.
	var srvCPU0, srvCPU1 float64
	var cliCPU0, cliCPU1 float64
	srvOK := pid > 0
	sleepUntil(ctx, winStart)
	if srvOK {
		srvCPU0, err = procCPUSeconds(pid)
		srvOK = err == nil
	}
	cliCPU0 = selfCPUSeconds()
	mach0, machErr := machineBusySeconds()
	sleepUntil(ctx, winEnd)
	if srvOK {
		srvCPU1, err = procCPUSeconds(pid)
		srvOK = err == nil
	}
	cliCPU1 = selfCPUSeconds()
	mach1, machErr1 := machineBusySeconds()
	measured := time.Since(winStart)
	if now := time.Now(); now.Before(winEnd) { // interrupted
		measured = now.Sub(winStart)
	}
	res.LoadAvgAfter = loadAvg()
	wg.Wait() // the clients stop at winEnd and let their last call finish
	if topo != nil {
		topo.wait()
		res.TopologyRequests = topo.calls.Load()
		res.TopologyError = topo.err
	}
	if fr != nil {
		logf("waiting for the last markers to become visible")
		res.Freshness = fr.wait() // the last polls end at most 5 s after the window
	}
	logf("load done; collecting results")

	// Aggregate.
	var lat []time.Duration
	var acks []time.Time
	for _, cl := range clients {
		acks = append(acks, cl.acks...)
		res.AckedSpans += cl.ackedWin
		res.AckedSpansTotal += cl.acked
		res.RequestsOK += cl.ok
		res.RequestsRefused += cl.refused
		res.RequestsFailed += cl.failed
		res.SpansRejected += cl.rejected
		if res.FirstError == "" {
			res.FirstError = cl.firstErr
		}
		lat = append(lat, cl.lat...)
	}
	res.WarmupSeconds = c.Warmup.Seconds()
	res.MeasuredSeconds = measured.Seconds()
	if measured > 0 {
		res.SpansPerSecond = float64(res.AckedSpans) / measured.Seconds()
	}
	ackSt := ackStats(acks, winStart, winStart.Add(measured))
	res.Acks = &ackSt
	slices.Sort(lat)
	if len(lat) > 0 {
		q := func(p float64) float64 { return ms(lat[min(len(lat)-1, int(p*float64(len(lat))))]) }
		res.LatencyP50Ms, res.LatencyP99Ms, res.LatencyMaxMs = q(0.50), q(0.99), ms(lat[len(lat)-1])
	}
	res.ClientCPUSeconds = cliCPU1 - cliCPU0
	res.MachineCPUs = runtime.NumCPU()
	if machErr == nil && machErr1 == nil && measured > 0 {
		other := mach1 - mach0 - res.ClientCPUSeconds
		if srvOK {
			other -= srvCPU1 - srvCPU0
		}
		other = max(other, 0) / measured.Seconds()
		res.OtherCores = &other
	}
	if measured > 0 {
		res.ClientCores = res.ClientCPUSeconds / measured.Seconds()
	}
	if srvOK {
		s := srvCPU1 - srvCPU0
		res.ServerCPUSeconds = &s
		if measured > 0 {
			cores := s / measured.Seconds()
			res.ServerCores = &cores
		}
	}

	// Read acknowledged traces back by ID (each client's first and last),
	// and compare with the store's own count.
	if httpAddr != "" {
		found, checked := true, 0
		for _, cl := range clients {
			for _, id := range []string{cl.firstTrace, cl.lastTrace} {
				if id == "" {
					continue
				}
				checked++
				ok, err := traceFound(httpAddr, id)
				if err != nil {
					logf("read back %s: %v", id, err)
				}
				found = found && ok
			}
		}
		if checked > 0 {
			res.ReadBack = &found
		}
		if samples, err := scrapeMetrics(httpAddr); err != nil {
			logf("self-metrics: %v", err)
		} else {
			if n, err := acceptedSpans(samples); err == nil {
				res.ServerAcceptedSpans = &n
			} else {
				logf("self-metrics: %v", err)
			}
			res.Rollup = rollupSizes(samples)
		}
		if c.RulesFile != "" {
			res.Rules = &RulesResult{File: c.RulesFile, UptimeSeconds: time.Since(procStarted).Seconds()}
			if err := res.Rules.read(httpAddr); err != nil {
				logf("alert rules: %v", err)
				res.Rules.FirstError = err.Error()
			}
		}
	}

	// Memory, before the collector stops.
	close(sampleDone)
	sampler.Wait()
	if pid > 0 {
		if st, err := readProcStatus(pid); err == nil {
			hwm, anon, file := st["VmHWM"], st["RssAnon"], st["RssFile"]
			res.PeakRSSBytes, res.RSSAnonBytes, res.RSSFileBytes = &hwm, &anon, &file
		}
		m, a, f := rssMax.Load(), anonMax.Load(), fileMax.Load()
		res.MaxSampledRSSBytes, res.MaxSampledAnon, res.MaxSampledFile = &m, &a, &f
	}

	var runErr error
	if proc != nil {
		t0 := time.Now()
		code, logs, err := proc.stop(2 * time.Minute)
		d := time.Since(t0).Seconds()
		res.ShutdownSeconds, res.ExitCode, res.ErrorLogs = &d, &code, &logs
		if err != nil {
			runErr = err
		} else if code != 0 {
			runErr = fmt.Errorf("collector exited with status %d; last log lines:\n%s", code, proc.tail())
		} else if logs > 0 {
			runErr = fmt.Errorf("collector logged %d errors; last log lines:\n%s", logs, proc.tail())
		}
	}
	if dataDir != "" {
		if fi, err := os.Stat(filepath.Join(dataDir, "flowscope.db")); err == nil {
			n := fi.Size()
			res.DBFileBytes = &n
			if res.AckedSpansTotal > 0 {
				b := float64(n) / float64(res.AckedSpansTotal)
				res.BytesPerSpan = &b
			}
		}
		var total int64
		filepath.WalkDir(dataDir, func(_ string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					total += fi.Size()
				}
			}
			return nil
		})
		res.DataDirBytes = &total
	}
	if runErr == nil && ctx.Err() != nil {
		runErr = errors.New("interrupted")
	}
	if runErr == nil && res.RequestsFailed > 0 {
		runErr = fmt.Errorf("%d export calls failed; first: %s", res.RequestsFailed, res.FirstError)
	}
	if r := res.Rules; runErr == nil && r != nil && (r.Loaded == 0 || r.Errors > 0 || r.Cycles == 0) {
		runErr = fmt.Errorf("alert rules: %d loaded, %d in error, %d evaluation cycles (first error: %s)", r.Loaded, r.Errors, r.Cycles, orNone(r.FirstError))
	}
	if runErr == nil && res.ReadBack != nil && !*res.ReadBack {
		runErr = errors.New("an acknowledged trace was not found by ID")
	}
	if runErr == nil && proc != nil && res.ServerAcceptedSpans != nil && *res.ServerAcceptedSpans < res.AckedSpansTotal {
		runErr = fmt.Errorf("the store counts %d accepted spans but %d were acknowledged", *res.ServerAcceptedSpans, res.AckedSpansTotal)
	}
	if f := res.Freshness; runErr == nil && f != nil {
		switch {
		case f.FlowGraph.Invisible > 0 || f.Latency.Invisible > 0:
			runErr = fmt.Errorf("acknowledged markers not visible within %s: %d of %d in the flow graph (first error: %s), %d in the latency API (first error: %s)",
				markerVisibleMax, f.FlowGraph.Invisible, f.Acked, orNone(f.FlowGraph.FirstErr), f.Latency.Invisible, orNone(f.Latency.FirstErr))
		case f.VirtualFlowGraph.Invisible > 0 || f.VirtualLatency.Invisible > 0:
			runErr = fmt.Errorf("acknowledged virtual markers not visible within %s: %d of %d in the flow graph (first error: %s), %d in the latency API (first error: %s)",
				markerVisibleMax, f.VirtualFlowGraph.Invisible, f.VirtualAcked, orNone(f.VirtualFlowGraph.FirstErr),
				f.VirtualLatency.Invisible, orNone(f.VirtualLatency.FirstErr))
		case f.Acked == 0 && f.Markers > 0:
			runErr = fmt.Errorf("none of the %d markers was acknowledged; first error: %s", f.Markers, orNone(f.ExportErr))
		case f.VirtualAcked == 0 && f.VirtualMarkers > 0:
			runErr = fmt.Errorf("none of the %d virtual markers was acknowledged; first error: %s", f.VirtualMarkers, orNone(f.ExportErr))
		}
	}
	return res, runErr
}

// rssSampleEvery is the period of the RSS sampling.
const rssSampleEvery = 100 * time.Millisecond

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func sleepUntil(ctx context.Context, t time.Time) {
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(t)):
	}
}

// load is shared by the clients.
type load struct {
	templates        []*template
	winStart, winEnd time.Time
	maxRequests      int64
	timeout          time.Duration
	seqBase          uint64
	seq              atomic.Uint64
	sent             atomic.Int64
}

// client is one sending goroutine; its counters are read after it ends.
type client struct {
	ld  *load
	cc  *grpc.ClientConn
	buf []byte

	ok, refused, failed, rejected int64
	acked, ackedWin               int64
	lat                           []time.Duration
	acks                          []time.Time // when each OK answer arrived
	firstErr                      string
	firstTrace, lastTrace         string
}

const exportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

func (cl *client) loop(ctx context.Context) {
	ld := cl.ld
	msg := &rawMsg{}
	for ctx.Err() == nil && time.Now().Before(ld.winEnd) && ld.sent.Add(1) <= ld.maxRequests {
		seq := ld.seq.Add(1)
		tp := ld.templates[seq%uint64(len(ld.templates))]
		t0 := time.Now()
		cl.buf = tp.render(cl.buf, ld.seqBase+seq, t0)
		msg.b = cl.buf
		var resp coltracepb.ExportTraceServiceResponse
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ld.timeout)
		err := cl.cc.Invoke(cctx, exportMethod, msg, &resp)
		cancel()
		t1 := time.Now()
		if err == nil {
			n := int64(tp.spans)
			if ps := resp.GetPartialSuccess(); ps != nil {
				n -= ps.GetRejectedSpans()
				cl.rejected += ps.GetRejectedSpans()
			}
			cl.ok++
			cl.acked += n
			cl.acks = append(cl.acks, t1)
			if !t1.Before(ld.winStart) && !t1.After(ld.winEnd) {
				cl.ackedWin += n
				cl.lat = append(cl.lat, t1.Sub(t0))
			}
			if n == int64(tp.spans) {
				cl.lastTrace = hex.EncodeToString(cl.buf[tp.traceIDs[0] : tp.traceIDs[0]+16])
				if cl.firstTrace == "" {
					cl.firstTrace = cl.lastTrace
				}
			}
			continue
		}
		st := status.Convert(err)
		switch st.Code() {
		case codes.ResourceExhausted, codes.Unavailable:
			cl.refused++
			delay := time.Second
			for _, d := range st.Details() {
				if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
					delay = ri.GetRetryDelay().AsDuration()
				}
			}
			// Jitter, and never past the end of the window.
			delay = delay/2 + rand.N(delay/2+1)
			if rest := time.Until(ld.winEnd); delay > rest {
				delay = rest
			}
			select {
			case <-ctx.Done():
			case <-time.After(delay):
			}
		default:
			cl.failed++
			if cl.firstErr == "" {
				cl.firstErr = err.Error()
			}
			if cl.failed > 100 { // something is badly wrong; stop hammering
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// rawMsg is a pre-encoded request, sent as is by rawCodec.
type rawMsg struct{ b []byte }

// rawCodec sends rawMsg bytes without copying or encoding and uses the
// protobuf codec for everything else (the responses).
type rawCodec struct{ proto encoding.CodecV2 }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*rawMsg); ok {
		return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
	}
	return c.proto.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c rawCodec) Name() string { return "proto" }

// traceFound asks the REST API for a trace by ID.
func traceFound(httpAddr, traceID string) (bool, error) {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + httpAddr + "/api/v1/traces/" + traceID)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d: %.200s", resp.StatusCode, body)
	}
	return bytes.Contains(body, []byte(traceID)), nil
}

// buildCollector builds ./cmd/collector of the module that contains the
// working directory into dir.
func buildCollector(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w (use -collector PATH)", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the flowscope module: run from the repository or pass -collector PATH")
	}
	bin := filepath.Join(dir, "collector")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/collector")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/collector: %v\n%s", err, out)
	}
	return bin, nil
}

// collectorProc is a collector running as a subprocess.
type collectorProc struct {
	cmd                *exec.Cmd
	grpcAddr, httpAddr string
	logDone            chan struct{}

	mu        sync.Mutex
	lines     []string // the last log lines
	errorLogs int
	exited    bool
}

// startCollector starts `bin serve` on dataDir with every listener on a
// free loopback port and waits for its "collector started" log line.
func startCollector(ctx context.Context, bin, dataDir string, extra []string) (*collectorProc, error) {
	args := append([]string{"serve", "--data-dir", dataDir,
		"--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
		"--http-addr", "127.0.0.1:0", "--zipkin-addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
	cmd := exec.Command(bin, args...)
	for _, kv := range os.Environ() { // a reproducible configuration (a CPU profile may be asked for)
		if !strings.HasPrefix(kv, "FLOWSCOPE_") || strings.HasPrefix(kv, "FLOWSCOPE_CPUPROFILE=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &collectorProc{cmd: cmd, logDone: make(chan struct{})}
	started := make(chan [2]string, 1)
	go func() {
		defer close(p.logDone)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var rec map[string]any
			_ = json.Unmarshal([]byte(line), &rec)
			p.mu.Lock()
			p.lines = append(p.lines, line)
			if len(p.lines) > 40 {
				p.lines = p.lines[1:]
			}
			if rec["level"] == "ERROR" {
				p.errorLogs++
			}
			p.mu.Unlock()
			if rec["msg"] == "collector started" {
				g, _ := rec["otlp_grpc"].(string)
				h, _ := rec["http"].(string)
				select {
				case started <- [2]string{g, h}:
				default:
				}
			}
		}
	}()
	select {
	case a := <-started:
		p.grpcAddr, p.httpAddr = a[0], a[1]
		if p.grpcAddr == "" || p.httpAddr == "" {
			p.kill()
			return nil, fmt.Errorf("collector started without addresses:\n%s", p.tail())
		}
		return p, nil
	case <-p.logDone:
		cmd.Wait()
		return nil, fmt.Errorf("collector exited before starting (%v):\n%s", cmd.ProcessState, p.tail())
	case <-time.After(60 * time.Second):
		p.kill()
		return nil, fmt.Errorf("collector did not start within 60s:\n%s", p.tail())
	case <-ctx.Done():
		p.kill()
		return nil, ctx.Err()
	}
}

func (p *collectorProc) tail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// stop sends SIGTERM and waits up to timeout for the exit; it returns the
// exit code and the number of error log lines.
func (p *collectorProc) stop(timeout time.Duration) (int, int, error) {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return -1, 0, err
	}
	done := make(chan error, 1)
	go func() { <-p.logDone; done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		p.kill()
		return -1, 0, fmt.Errorf("collector did not exit within %s of SIGTERM", timeout)
	}
	p.mu.Lock()
	p.exited = true
	n := p.errorLogs
	p.mu.Unlock()
	return p.cmd.ProcessState.ExitCode(), n, nil
}

// kill ends the subprocess if it is still running.
func (p *collectorProc) kill() {
	p.mu.Lock()
	exited := p.exited
	p.exited = true
	p.mu.Unlock()
	if !exited {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
}

// readProcStatus returns the kB fields of /proc/PID/status in bytes.
func readProcStatus(pid int) (map[string]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	m := map[string]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 2 && f[1] == "kB" {
			if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				m[k] = n << 10
			}
		}
	}
	if _, ok := m["VmRSS"]; !ok {
		return nil, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return m, nil
}

// loadAvg returns the 1, 5 and 15 minute load averages of the machine.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times; it is 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// procCPUSeconds returns the user+system CPU time of process pid.
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields after it are plain.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 { // f[0] is field 3 (state); utime is field 14, stime 15
		return 0, errors.New("short /proc stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("bad /proc stat times")
	}
	return float64(ut+st) / clockTicks, nil
}

// machineBusySeconds returns the CPU time all CPUs spent busy (user, nice,
// system, irq, softirq, steal; not idle or iowait) from /proc/stat.
func machineBusySeconds() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("bad /proc/stat")
	}
	var busy int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} { // user nice system [idle iowait] irq softirq steal
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, errors.New("bad /proc/stat")
		}
		busy += n
	}
	return float64(busy) / clockTicks, nil
}

// selfCPUSeconds returns this process's user+system CPU time.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
