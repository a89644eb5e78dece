// Command alerting measures how fast Flowscope detects a latency breach
// (issue 12): from the acknowledgement of the first breaching span to the
// alert shown as firing by GET /api/v1/alerts, and to the webhook
// notification, under a background OTLP/gRPC ingest of at least 50,000
// spans/s. Run from the repository root:
//
//	go run ./bench/alerting
//	go run ./bench/alerting -json
//
// It builds the collector (or uses -collector), starts it on a temporary
// data directory with every listener on 127.0.0.1, a generated rules file
// and a webhook receiver of its own, sends the background load at -rate,
// and breaches -breaches times: a batch of 400 ms calls on an edge
// frontend-NN → checkout-NN whose rule is "p99 above 200ms over 10s, for 0".
// See README.md for what is measured and how to read the output.
package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
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

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/bench/internal/benchproc"

	// The standard protobuf codec encodes the small requests and decodes
	// the responses.
	_ "google.golang.org/grpc/encoding/proto"
)

// The acceptance targets of issue 12.
const (
	apiTarget      = 2 * time.Second
	webhookTarget  = 3 * time.Second
	minBreaches    = 30
	defaultMinRate = 50_000
)

// The breach scenario.
const (
	breachThreshold = "200ms"
	breachWindow    = "10s"
	breachMinCount  = 20
	slowCall        = 400 * time.Millisecond
	slowCalls       = 10                     // slow calls per breach: ≥ 5 % of the window's calls
	feedEvery       = 100 * time.Millisecond // one fast call per breach edge
	feedFirstCalls  = 30                     // fast calls per edge sent at the start
	pollEvery       = 20 * time.Millisecond
	resolveWaitMax  = 60 * time.Second // bound on waiting for a reused edge's alert to resolve
)

// config holds the command-line settings.
type config struct {
	Breaches        int
	Edges           int
	Rate            float64
	MinRate         float64
	Clients         int
	Conns           int
	SpansPerRequest int
	Pool            int
	BgEdges         int
	ExtraRules      int
	Interval        time.Duration
	Warmup          time.Duration
	Duration        time.Duration
	Timeout         time.Duration
	Collector       string
	CollectorArgs   string
	KeepData        bool
	JSON            bool
	Seed            uint64
}

func main() {
	var c config
	fs := flag.NewFlagSet("alerting", flag.ExitOnError)
	fs.IntVar(&c.Breaches, "breaches", minBreaches, "breaches to measure (the acceptance needs at least 30)")
	fs.IntVar(&c.Edges, "edges", minBreaches, "breach edges frontend-NN → checkout-NN, each with its rule, used in rotation (an edge is reused only after its alert resolved)")
	fs.Float64Var(&c.Rate, "rate", 60_000, "background load in spans/s (0: as fast as the collector acknowledges)")
	fs.Float64Var(&c.MinRate, "min-rate", defaultMinRate, "the run fails if the background load acknowledged less than this many spans/s while breaching")
	fs.IntVar(&c.Clients, "clients", 8, "background senders, one call in flight each")
	fs.IntVar(&c.Conns, "conns", 0, "gRPC connections of the background senders (0: one per 4 clients)")
	fs.IntVar(&c.SpansPerRequest, "spans-per-request", 512, "spans per background request")
	fs.IntVar(&c.Pool, "pool", 64, "distinct pre-encoded background requests")
	fs.IntVar(&c.BgEdges, "bg-edges", 450, "service-level edges of the background load (services bg-NNN)")
	fs.IntVar(&c.ExtraRules, "extra-rules", 970, "other rules loaded, with `each: edge` and thresholds nothing breaches (evaluated on every edge every cycle)")
	fs.DurationVar(&c.Interval, "interval", time.Second, "the collector's --alerting-interval")
	fs.DurationVar(&c.Warmup, "warmup", 5*time.Second, "background load before the first breach")
	fs.DurationVar(&c.Duration, "duration", 150*time.Second, "bound on the breach phase; the run fails if the breaches do not fit")
	fs.DurationVar(&c.Timeout, "timeout", 15*time.Second, "a breach not seen firing (API, webhook) within this is counted missed")
	fs.StringVar(&c.Collector, "collector", "", "collector binary (default: go build ./cmd/collector into a temp dir)")
	fs.StringVar(&c.CollectorArgs, "collector-args", "", "extra space-separated flags for collector serve")
	fs.BoolVar(&c.KeepData, "keep-data", false, "keep the temporary directory (data, rules file) and print its path")
	fs.BoolVar(&c.JSON, "json", false, "print the result as JSON")
	fs.Uint64Var(&c.Seed, "seed", 0, "seed of the generated IDs and jitter (0: random)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./bench/alerting [flags]\n\nMeasures acknowledged breaching span → alert firing in /api/v1/alerts and\n→ webhook received, under background OTLP/gRPC ingest.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "alerting: unexpected argument %q\n", fs.Arg(0))
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "alerting: "+format+"\n", args...) }
	res, err := run(ctx, c, logf)
	if res != nil {
		if c.JSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			enc.Encode(res)
		} else {
			res.printTable(os.Stdout)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "alerting: %v\n", err)
		stop()
		os.Exit(1)
	}
}

// Stats summarises delays, in milliseconds (nearest rank: with 30 samples
// p99 is the largest).
type Stats struct {
	Count int     `json:"count"`
	P50Ms float64 `json:"p50_ms"`
	P90Ms float64 `json:"p90_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	MinMs float64 `json:"min_ms"`
}

func summarise(ds []time.Duration) Stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	st := Stats{Count: len(s)}
	if len(s) == 0 {
		return st
	}
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	st.P50Ms, st.P90Ms, st.P99Ms, st.MaxMs, st.MinMs = q(0.5), q(0.9), q(0.99), ms(s[len(s)-1]), ms(s[0])
	return st
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Breach is one measured breach.
type Breach struct {
	Rule  string    `json:"rule"`
	Acked time.Time `json:"acked"` // the export carrying the slow calls returned OK
	// APIMs: acknowledged → the first /api/v1/alerts answer showing it
	// firing; WebhookMs: → the webhook's firing message arrived; EngineMs:
	// → the firedAt the API reports (the start of the evaluation cycle
	// that fired it, so it may be slightly negative). null: not seen
	// within -timeout.
	APIMs     *float64 `json:"api_ms"`
	WebhookMs *float64 `json:"webhook_ms"`
	EngineMs  *float64 `json:"engine_ms"`
	Polls     int      `json:"polls"`
	Retries   int      `json:"export_retries"` // the breach export was refused and resent
}

// Result is what a run measured.
type Result struct {
	Collector        string           `json:"collector"`
	Breaches         int              `json:"breaches"`
	BreachEdges      int              `json:"breach_edges"`
	RulesLoaded      int              `json:"rules_loaded"`
	RulesInError     int              `json:"rules_in_error"`
	RuleError        string           `json:"rule_error,omitempty"`
	IntervalSeconds  float64          `json:"alerting_interval_seconds"`
	BreachPhaseS     float64          `json:"breach_phase_seconds"`
	API              Stats            `json:"api"`     // acknowledged → firing in GET /api/v1/alerts
	Webhook          Stats            `json:"webhook"` // acknowledged → webhook firing message received
	Engine           Stats            `json:"engine"`  // acknowledged → firedAt (cycle start)
	APIMissed        int              `json:"api_missed"`
	WebhookMissed    int              `json:"webhook_missed"`
	APITargetMs      float64          `json:"api_target_p99_ms"`
	WebhookTargetMs  float64          `json:"webhook_target_p99_ms"`
	APIWithin        bool             `json:"api_within_target"`
	WebhookWithin    bool             `json:"webhook_within_target"`
	WebhookMessages  int              `json:"webhook_messages"`  // POSTs received
	UnexpectedFiring []string         `json:"unexpected_firing"` // alerts firing that no breach caused
	Background       BackgroundResult `json:"background"`
	Cycles           CycleResult      `json:"evaluation_cycles"`
	ServerCores      *float64         `json:"server_cores"` // collector CPU while breaching
	ClientCores      float64          `json:"client_cores"` // this harness
	OtherCores       *float64         `json:"other_cores"`  // the rest of the machine
	MachineCPUs      int              `json:"machine_cpus"`
	ExitCode         *int             `json:"exit_code"`
	ErrorLogs        *int             `json:"error_logs"`
	DataDir          string           `json:"data_dir,omitempty"`
	Samples          []Breach         `json:"samples"`
	Errors           []string         `json:"errors,omitempty"`
}

// BackgroundResult is the background load.
type BackgroundResult struct {
	TargetRate     float64 `json:"target_spans_per_second"` // -rate (0: unlimited)
	MinRate        float64 `json:"min_spans_per_second"`    // -min-rate
	SpansPerSecond float64 `json:"spans_per_second"`        // acknowledged while breaching
	WholeRunRate   float64 `json:"whole_run_spans_per_second"`
	Edges          int     `json:"edges"`
	RequestsOK     int64   `json:"requests_ok"`
	Refused        int64   `json:"requests_refused"`
	Failed         int64   `json:"requests_failed"`
	FirstError     string  `json:"first_error,omitempty"`
	FeedRequests   int64   `json:"breach_edge_feed_requests"` // fast-traffic requests acknowledged
}

// CycleResult is flowscope_alert_evaluation_duration_seconds over the run.
type CycleResult struct {
	Count    int64   `json:"count"`
	MeanMs   float64 `json:"mean_ms"`
	Over100  int64   `json:"over_100ms"`
	Over250  int64   `json:"over_250ms"`
	Over1s   int64   `json:"over_1s"`
	Reported bool    `json:"reported"`
}

func (r *Result) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	stat := func(s Stats, missed int, target time.Duration, within bool) string {
		verdict := "within"
		if !within {
			verdict = "MISSES"
		}
		return fmt.Sprintf("p50 %.0f / p90 %.0f / p99 %.0f / max %.0f ms over %d, %d missed (%s target p99 ≤ %s)",
			s.P50Ms, s.P90Ms, s.P99Ms, s.MaxMs, s.Count, missed, verdict, target)
	}
	opt := func(p *float64, f string) string {
		if p == nil {
			return "unknown"
		}
		return fmt.Sprintf(f, *p)
	}
	row("collector", r.Collector)
	row("rules loaded / in error", fmt.Sprintf("%d / %d (%d breach edges; alerting interval %.1f s)", r.RulesLoaded, r.RulesInError, r.BreachEdges, r.IntervalSeconds))
	if r.RuleError != "" {
		row("first rule error", r.RuleError)
	}
	row("breaches", fmt.Sprintf("%d in %.1f s", r.Breaches, r.BreachPhaseS))
	row("ack → firing in /api/v1/alerts", stat(r.API, r.APIMissed, apiTarget, r.APIWithin))
	row("ack → webhook received", stat(r.Webhook, r.WebhookMissed, webhookTarget, r.WebhookWithin))
	row("ack → firedAt (cycle start)", fmt.Sprintf("p50 %.0f / p90 %.0f / p99 %.0f / max %.0f ms", r.Engine.P50Ms, r.Engine.P90Ms, r.Engine.P99Ms, r.Engine.MaxMs))
	bg := r.Background
	target := "unlimited"
	if bg.TargetRate > 0 {
		target = fmt.Sprintf("%.0f", bg.TargetRate)
	}
	row("background spans/s acked while breaching", fmt.Sprintf("%.0f (target %s, minimum %.0f); whole run %.0f", bg.SpansPerSecond, target, bg.MinRate, bg.WholeRunRate))
	row("background requests ok / refused / failed", fmt.Sprintf("%d / %d / %d over %d edges", bg.RequestsOK, bg.Refused, bg.Failed, bg.Edges))
	if bg.FirstError != "" {
		row("background first error", bg.FirstError)
	}
	cy := r.Cycles
	row("evaluation cycles / mean / >100 ms / >250 ms / >1 s", fmt.Sprintf("%d / %.1f ms / %d / %d / %d", cy.Count, cy.MeanMs, cy.Over100, cy.Over250, cy.Over1s))
	row("webhook messages / unexpected firing", fmt.Sprintf("%d / %d", r.WebhookMessages, len(r.UnexpectedFiring)))
	row("collector / harness / other cores", fmt.Sprintf("%s / %.2f / %s (of %d CPUs)", opt(r.ServerCores, "%.2f"), r.ClientCores, opt(r.OtherCores, "%.2f"), r.MachineCPUs))
	ec, el := "unknown", "unknown"
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
	for _, e := range r.Errors {
		row("error", e)
	}
	tw.Flush()
}

func ruleName(i int) string        { return fmt.Sprintf("breach-%02d", i) }
func frontendService(i int) string { return fmt.Sprintf("frontend-%02d", i) }
func checkoutService(i int) string { return fmt.Sprintf("checkout-%02d", i) }

// rulesYAML is the rules file: one rule per breach edge, then extra rules
// with `each: edge` that nothing breaches (every tenth narrowed to one
// background service of the bgEdges topology).
func rulesYAML(edges, extra, bgEdgesN int) string {
	var b strings.Builder
	b.WriteString("# Generated by bench/alerting.\nrules:\n")
	for i := range edges {
		fmt.Fprintf(&b, "  - alert: %s\n    select: {source: %s, target: %s}\n    signal: p99\n    above: %s\n    window: %s\n    min_count: %d\n    labels: {severity: page}\n    annotations: {summary: \"p99 of {{ .Target }} is {{ .Value }}\"}\n",
			ruleName(i), frontendService(i), checkoutService(i), breachThreshold, breachWindow, breachMinCount)
	}
	lat := []string{"5s", "3s", "2s"}
	for i := range extra {
		var signal, above string
		switch i % 5 {
		case 0, 1, 2:
			signal, above = [...]string{"p99", "p95", "p50"}[i%5], lat[(i/5)%len(lat)]
		case 3:
			signal, above = "error_rate", "0.5"
		case 4:
			signal, above = "rate", "1000000/s"
		}
		window := [...]string{"1m", "5m"}[i%2]
		fmt.Fprintf(&b, "  - alert: extra-%04d\n    each: edge\n    signal: %s\n    above: %s\n    window: %s\n    min_count: 10\n    labels: {severity: ticket}\n", i, signal, above, window)
		if i%10 == 9 {
			fmt.Fprintf(&b, "    select: {service: %s}\n", bgService(i, max((bgEdgesN+2)/3, 4)))
		}
	}
	return b.String()
}

// run performs the benchmark.
func run(ctx context.Context, c config, logf func(string, ...any)) (*Result, error) {
	if c.Breaches < 1 || c.Edges < 1 || c.Clients < 1 || c.Pool < 1 || c.BgEdges < 1 || c.Rate < 0 || c.Timeout <= 0 || c.Duration <= 0 {
		return nil, errors.New("need -breaches, -edges, -clients, -pool, -bg-edges ≥ 1, -rate ≥ 0, -timeout and -duration > 0")
	}
	if c.Conns <= 0 {
		c.Conns = (c.Clients + 3) / 4
	}
	if c.Seed == 0 {
		c.Seed = rand.Uint64()
	}
	rnd := rand.New(rand.NewPCG(c.Seed, 0xa1e7))
	res := &Result{BreachEdges: c.Edges, IntervalSeconds: c.Interval.Seconds(), APITargetMs: ms(apiTarget), WebhookTargetMs: ms(webhookTarget),
		Background: BackgroundResult{TargetRate: c.Rate, MinRate: c.MinRate, Edges: c.BgEdges}, MachineCPUs: runtime.NumCPU(), UnexpectedFiring: []string{}}
	fail := func(err error) (*Result, error) {
		res.Errors = append(res.Errors, err.Error())
		return res, err
	}

	tmp, err := os.MkdirTemp("", "flowscope-bench-alerting-")
	if err != nil {
		return nil, err
	}
	if c.KeepData {
		res.DataDir = tmp
	} else {
		defer os.RemoveAll(tmp)
	}
	bin := c.Collector
	if bin == "" {
		logf("building the collector")
		if bin, err = benchproc.BuildCollector(ctx, tmp); err != nil {
			return nil, err
		}
	}
	res.Collector = bin
	rulesPath := filepath.Join(tmp, "rules.yml")
	if err := os.WriteFile(rulesPath, []byte(rulesYAML(c.Edges, c.ExtraRules, c.BgEdges)), 0o644); err != nil {
		return nil, err
	}

	// The webhook receiver.
	hooks := newHookReceiver()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hsrv := &http.Server{Handler: hooks, ReadHeaderTimeout: 10 * time.Second}
	go hsrv.Serve(ln)
	defer hsrv.Close()
	hookURL := "http://" + ln.Addr().String() + "/hook"

	args := []string{"--rules", rulesPath, "--alerting-interval", c.Interval.String(), "--webhook-url", hookURL}
	args = append(args, strings.Fields(c.CollectorArgs)...)
	proc, err := benchproc.StartCollector(ctx, bin, filepath.Join(tmp, "data"), args)
	if err != nil {
		return nil, err
	}
	defer proc.Kill()
	pid := proc.PID()
	logf("collector pid %d: otlp_grpc %s, http %s; webhook %s; %d rules", pid, proc.GRPCAddr(), proc.HTTPAddr(), hookURL, c.Edges+c.ExtraRules)
	api := &apiClient{base: "http://" + proc.HTTPAddr(), hc: &http.Client{Timeout: 5 * time.Second}}

	// Connections: the background load's, and one for the breach edges
	// (fast feed and breaches), so a breach never queues behind the load.
	conns := make([]*grpc.ClientConn, c.Conns)
	for i := range conns {
		cc, err := grpc.NewClient(proc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(rawCodec{proto: encoding.GetCodecV2("proto")})),
			grpc.WithInitialWindowSize(1<<20), grpc.WithInitialConnWindowSize(4<<20))
		if err != nil {
			return nil, err
		}
		defer cc.Close()
		conns[i] = cc
	}
	edgeConn, err := grpc.NewClient(proc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer edgeConn.Close()
	exporter := coltracepb.NewTraceServiceClient(edgeConn)

	logf("encoding %d background requests of %d spans over %d edges", c.Pool, c.SpansPerRequest, c.BgEdges)
	templates, err := buildTemplates(c.Pool, c.SpansPerRequest, bgEdges(c.BgEdges), c.Seed)
	if err != nil {
		return nil, err
	}

	// The breach edges' fast traffic: a first batch, then one call per
	// edge every feedEvery.
	feed := &feeder{exp: exporter, edges: c.Edges, rnd: rand.New(rand.NewPCG(c.Seed, 0xfeed))}
	if err := feed.send(ctx, feedFirstCalls); err != nil {
		return fail(fmt.Errorf("first fast calls on the breach edges: %w", err))
	}
	feedCtx, stopFeed := context.WithCancel(ctx)
	feedDone := make(chan struct{})
	go func() { defer close(feedDone); feed.loop(feedCtx) }()
	defer func() { stopFeed(); <-feedDone }()

	bg := &background{templates: templates, conns: conns, rate: c.Rate, seqBase: c.Seed}
	logf("background load: %d clients, target %.0f spans/s; warm-up %s", c.Clients, c.Rate, c.Warmup)
	bg.run(ctx, c.Clients)
	bgStopped := false
	stopBG := func() {
		if !bgStopped {
			bgStopped = true
			bg.halt()
		}
	}
	defer stopBG()
	sleepCtx(ctx, c.Warmup)
	if ctx.Err() != nil {
		return fail(errors.New("interrupted"))
	}
	if firing, err := api.firing(ctx, ""); err != nil {
		return fail(fmt.Errorf("GET /api/v1/alerts: %w", err))
	} else if len(firing) > 0 {
		return fail(fmt.Errorf("alerts firing before any breach: %v", firing))
	}

	// The breaches.
	srv0, srvErr := benchproc.ProcCPUSeconds(pid)
	cli0 := benchproc.SelfCPUSeconds()
	mach0, machErr := benchproc.MachineBusySeconds()
	phaseStart := time.Now()
	deadline := phaseStart.Add(c.Duration)
	lastFired := map[int]bool{}
	for k := 0; k < c.Breaches; k++ {
		if ctx.Err() != nil {
			break
		}
		edge := k % c.Edges
		if lastFired[edge] {
			// Reused edge: wait for its alert to resolve (API and webhook).
			if err := waitResolved(ctx, api, hooks, ruleName(edge), min(time.Until(deadline), resolveWaitMax)); err != nil {
				res.Errors = append(res.Errors, err.Error())
				break
			}
		}
		// De-phase from the evaluation ticker.
		sleepCtx(ctx, 200*time.Millisecond+time.Duration(rnd.Int64N(int64(c.Interval))))
		if time.Now().After(deadline) {
			res.Errors = append(res.Errors, fmt.Sprintf("only %d of %d breaches fit in -duration %s", k, c.Breaches, c.Duration))
			break
		}
		b := measureBreach(ctx, api, hooks, feed, edge, c.Timeout)
		lastFired[edge] = b.APIMs != nil || b.WebhookMs != nil
		res.Samples = append(res.Samples, b)
		logf("breach %d/%d on %s: api %s, webhook %s, engine %s", k+1, c.Breaches, b.Rule, fmtMs(b.APIMs), fmtMs(b.WebhookMs), fmtMs(b.EngineMs))
	}
	phaseEnd := time.Now()
	srv1, srvErr1 := benchproc.ProcCPUSeconds(pid)
	cli1 := benchproc.SelfCPUSeconds()
	mach1, machErr1 := benchproc.MachineBusySeconds()
	phase := phaseEnd.Sub(phaseStart)
	res.BreachPhaseS = phase.Seconds()
	res.ClientCores = (cli1 - cli0) / phase.Seconds()
	if srvErr == nil && srvErr1 == nil {
		s := (srv1 - srv0) / phase.Seconds()
		res.ServerCores = &s
		if machErr == nil && machErr1 == nil {
			o := max(mach1-mach0-(srv1-srv0)-(cli1-cli0), 0) / phase.Seconds()
			res.OtherCores = &o
		}
	}
	stopBG()
	stopFeed()
	<-feedDone
	res.Background.SpansPerSecond = bg.rateIn(phaseStart, phaseEnd)
	res.Background.WholeRunRate = bg.rateIn(bg.start, phaseEnd)
	res.Background.RequestsOK, res.Background.Refused, res.Background.Failed = bg.ok.Load(), bg.refused.Load(), bg.failed.Load()
	res.Background.FirstError = bg.firstErr
	res.Background.FeedRequests = feed.ok.Load()

	// Summaries.
	var apiD, hookD, engD []time.Duration
	for _, b := range res.Samples {
		if b.APIMs != nil {
			apiD = append(apiD, time.Duration(*b.APIMs*float64(time.Millisecond)))
		} else {
			res.APIMissed++
		}
		if b.WebhookMs != nil {
			hookD = append(hookD, time.Duration(*b.WebhookMs*float64(time.Millisecond)))
		} else {
			res.WebhookMissed++
		}
		if b.EngineMs != nil {
			engD = append(engD, time.Duration(*b.EngineMs*float64(time.Millisecond)))
		}
	}
	res.Breaches = len(res.Samples)
	res.API, res.Webhook, res.Engine = summarise(apiD), summarise(hookD), summarise(engD)
	res.APIWithin = res.APIMissed == 0 && res.API.Count > 0 && res.API.P99Ms <= ms(apiTarget)
	res.WebhookWithin = res.WebhookMissed == 0 && res.Webhook.Count > 0 && res.Webhook.P99Ms <= ms(webhookTarget)
	res.WebhookMessages = hooks.messages()

	// The collector's view: rules, unexpected alerts, cycle durations.
	if rs, err := api.rules(ctx); err != nil {
		res.Errors = append(res.Errors, "GET /api/v1/rules: "+err.Error())
	} else {
		res.RulesLoaded = len(rs)
		for _, r := range rs {
			if r.Health == "error" {
				res.RulesInError++
				if res.RuleError == "" {
					res.RuleError = r.Name + ": " + r.LastError
				}
			}
		}
	}
	if firing, err := api.firing(ctx, ""); err == nil {
		for _, f := range firing {
			if !strings.HasPrefix(f, "breach-") {
				res.UnexpectedFiring = append(res.UnexpectedFiring, f)
			}
		}
	}
	res.Cycles = readCycles(api)

	code, logs, err := proc.Stop(time.Minute)
	res.ExitCode, res.ErrorLogs = &code, &logs
	if err != nil {
		res.Errors = append(res.Errors, err.Error())
	} else if code != 0 || logs > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("collector exited %d with %d error logs; last lines:\n%s", code, logs, proc.Tail()))
	}

	// Verdict: broken runs fail; missed targets are reported.
	switch {
	case ctx.Err() != nil:
		res.Errors = append(res.Errors, "interrupted")
	case res.Background.SpansPerSecond < c.MinRate:
		res.Errors = append(res.Errors, fmt.Sprintf("BACKGROUND LOAD TOO LOW: %.0f spans/s acknowledged while breaching, below the %.0f required (refused %d, failed %d, first error %q)",
			res.Background.SpansPerSecond, c.MinRate, res.Background.Refused, res.Background.Failed, res.Background.FirstError))
	}
	if res.Background.Failed > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("%d background export calls failed; first: %s", res.Background.Failed, res.Background.FirstError))
	}
	if res.Breaches < c.Breaches {
		res.Errors = append(res.Errors, fmt.Sprintf("%d of %d breaches done", res.Breaches, c.Breaches))
	}
	if res.APIMissed > 0 || res.WebhookMissed > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("breaches never seen firing within %s: %d in the API, %d by the webhook", c.Timeout, res.APIMissed, res.WebhookMissed))
	}
	if res.RulesLoaded != c.Edges+c.ExtraRules || res.RulesInError > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("rules: %d loaded (want %d), %d in error: %s", res.RulesLoaded, c.Edges+c.ExtraRules, res.RulesInError, res.RuleError))
	}
	if len(res.UnexpectedFiring) > 0 {
		res.Errors = append(res.Errors, fmt.Sprintf("alerts firing that no breach caused: %v", res.UnexpectedFiring))
	}
	if len(res.Errors) > 0 {
		return res, errors.New(strings.Join(res.Errors, "; "))
	}
	return res, nil
}

func fmtMs(p *float64) string {
	if p == nil {
		return "missed"
	}
	return fmt.Sprintf("%.0f ms", *p)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// measureBreach sends the slow calls on edge and waits, up to timeout,
// until the API shows its rule firing and the webhook received it.
func measureBreach(ctx context.Context, api *apiClient, hooks *hookReceiver, feed *feeder, edge int, timeout time.Duration) Breach {
	rule := ruleName(edge)
	b := Breach{Rule: rule}
	hookCh := hooks.expect(rule)
	defer hooks.forget(rule)
	for {
		err := feed.breach(ctx, edge)
		if err == nil {
			break
		}
		b.Retries++
		if ctx.Err() != nil || b.Retries > 50 {
			return b
		}
		time.Sleep(100 * time.Millisecond)
	}
	acked := time.Now()
	b.Acked = acked
	end := acked.Add(timeout)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // the API poller
		defer wg.Done()
		for time.Now().Before(end) && ctx.Err() == nil {
			t0 := time.Now()
			b.Polls++
			in, err := api.alert(ctx, rule)
			if err == nil && in != nil && in.State == "firing" {
				d := ms(time.Since(acked))
				b.APIMs = &d
				if ft, err := time.Parse(time.RFC3339Nano, in.FiredAt); err == nil {
					e := ms(ft.Sub(acked))
					b.EngineMs = &e
				}
				return
			}
			sleepCtx(ctx, pollEvery-time.Since(t0))
		}
	}()
	go func() { // the webhook
		defer wg.Done()
		select {
		case t := <-hookCh:
			d := ms(t.Sub(acked))
			b.WebhookMs = &d
		case <-time.After(time.Until(end)):
		case <-ctx.Done():
		}
	}()
	wg.Wait()
	return b
}

// waitResolved waits until rule has no active instance in the API and its
// webhook received a resolved message.
func waitResolved(ctx context.Context, api *apiClient, hooks *hookReceiver, rule string, limit time.Duration) error {
	end := time.Now().Add(limit)
	for time.Now().Before(end) && ctx.Err() == nil {
		in, err := api.alert(ctx, rule)
		if err == nil && in == nil && hooks.resolved(rule) {
			return nil
		}
		sleepCtx(ctx, 200*time.Millisecond)
	}
	return fmt.Errorf("%s did not resolve within %s before its edge was reused (use -edges ≥ -breaches)", rule, limit)
}

// feeder sends the breach edges' calls: fast ones all along, slow ones for
// a breach.
type feeder struct {
	exp   coltracepb.TraceServiceClient
	edges int
	mu    sync.Mutex
	rnd   *rand.Rand
	ok    atomic.Int64
}

func (f *feeder) loop(ctx context.Context) {
	t := time.NewTicker(feedEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.send(ctx, 1) // a refused feed request is no matter: the next comes soon
	}
}

// send exports calls fast calls (5–20 ms) on every breach edge, ending now.
func (f *feeder) send(ctx context.Context, calls int) error {
	now := time.Now()
	req := &coltracepb.ExportTraceServiceRequest{}
	f.mu.Lock()
	for e := range f.edges {
		var client, server []*tracepb.Span
		for k := range calls {
			d := time.Duration(5+f.rnd.IntN(16)) * time.Millisecond
			c, s := f.call(now.Add(-time.Duration(calls-1-k)*feedEvery), d)
			client, server = append(client, c), append(server, s)
		}
		req.ResourceSpans = append(req.ResourceSpans, resourceSpans(frontendService(e), client), resourceSpans(checkoutService(e), server))
	}
	f.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := f.exp.Export(cctx, req); err != nil {
		return err
	}
	f.ok.Add(1)
	return nil
}

// breach exports slowCalls calls of slowCall on edge, ending now.
func (f *feeder) breach(ctx context.Context, edge int) error {
	now := time.Now()
	var client, server []*tracepb.Span
	f.mu.Lock()
	for range slowCalls {
		c, s := f.call(now, slowCall)
		client, server = append(client, c), append(server, s)
	}
	f.mu.Unlock()
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		resourceSpans(frontendService(edge), client), resourceSpans(checkoutService(edge), server)}}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := f.exp.Export(cctx, req)
	return err
}

// call returns a CLIENT span and its SERVER child of duration d ending at
// end. Called with f.mu held.
func (f *feeder) call(end time.Time, d time.Duration) (*tracepb.Span, *tracepb.Span) {
	id := func(n int) []byte {
		b := make([]byte, n)
		for i := 0; i < n; i += 8 {
			binary.LittleEndian.PutUint64(b[i:], f.rnd.Uint64()|1)
		}
		return b
	}
	tid, cid := id(16), id(8)
	st, en := uint64(end.Add(-d).UnixNano()), uint64(end.UnixNano())
	return &tracepb.Span{TraceId: tid, SpanId: cid, Name: "POST /checkout", Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: st, EndTimeUnixNano: en, Status: &tracepb.Status{}},
		&tracepb.Span{TraceId: tid, SpanId: id(8), ParentSpanId: cid, Name: "POST /checkout", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: st + 1000, EndTimeUnixNano: en - 1000, Status: &tracepb.Status{}}
}

func resourceSpans(service string, spans []*tracepb.Span) *tracepb.ResourceSpans {
	return &tracepb.ResourceSpans{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", service)}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "bench-alerting"}, Spans: spans}},
	}
}

// hookReceiver is the webhook: it records when each rule's firing and
// resolved messages arrive.
type hookReceiver struct {
	mu       sync.Mutex
	waiters  map[string]chan time.Time
	resolves map[string]bool
	n        int
}

func newHookReceiver() *hookReceiver {
	return &hookReceiver{waiters: map[string]chan time.Time{}, resolves: map[string]bool{}}
}

// expect registers interest in rule's next firing message.
func (h *hookReceiver) expect(rule string) <-chan time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan time.Time, 1)
	h.waiters[rule] = ch
	h.resolves[rule] = false
	return ch
}

func (h *hookReceiver) forget(rule string) {
	h.mu.Lock()
	delete(h.waiters, rule)
	h.mu.Unlock()
}

func (h *hookReceiver) resolved(rule string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resolves[rule]
}

func (h *hookReceiver) messages() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	var msg struct {
		Status string `json:"status"`
		Alerts []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	h.n++
	for _, a := range msg.Alerts {
		rule := a.Labels["alertname"]
		switch a.Status {
		case "firing":
			if ch := h.waiters[rule]; ch != nil {
				select {
				case ch <- at:
				default:
				}
			}
		case "resolved":
			h.resolves[rule] = true
		}
	}
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// apiClient queries the collector's REST API.
type apiClient struct {
	base string
	hc   *http.Client
}

type apiAlert struct {
	Rule    string `json:"rule"`
	Key     string `json:"key"`
	State   string `json:"state"`
	FiredAt string `json:"firedAt"`
}

func (a *apiClient) get(ctx context.Context, path string, q url.Values, v any) error {
	u := a.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// alert returns rule's active instance, nil when it has none.
func (a *apiClient) alert(ctx context.Context, rule string) (*apiAlert, error) {
	var body struct {
		Alerts []apiAlert `json:"alerts"`
	}
	if err := a.get(ctx, "/api/v1/alerts", url.Values{"rule": {rule}}, &body); err != nil {
		return nil, err
	}
	for i := range body.Alerts {
		if body.Alerts[i].Rule == rule {
			return &body.Alerts[i], nil
		}
	}
	return nil, nil
}

// firing lists "rule key" of every firing instance (of rule, if not "").
func (a *apiClient) firing(ctx context.Context, rule string) ([]string, error) {
	var body struct {
		Alerts []apiAlert `json:"alerts"`
	}
	q := url.Values{"state": {"firing"}}
	if rule != "" {
		q.Set("rule", rule)
	}
	if err := a.get(ctx, "/api/v1/alerts", q, &body); err != nil {
		return nil, err
	}
	var out []string
	for _, x := range body.Alerts {
		out = append(out, x.Rule+" "+x.Key)
	}
	return out, nil
}

type apiRule struct {
	Name      string `json:"name"`
	Health    string `json:"health"`
	LastError string `json:"lastError"`
}

func (a *apiClient) rules(ctx context.Context) ([]apiRule, error) {
	var body struct {
		Rules []apiRule `json:"rules"`
	}
	err := a.get(ctx, "/api/v1/rules", nil, &body)
	return body.Rules, err
}

// readCycles reads flowscope_alert_evaluation_duration_seconds from
// /metrics.
func readCycles(a *apiClient) CycleResult {
	var cr CycleResult
	resp, err := a.hc.Get(a.base + "/metrics")
	if err != nil {
		return cr
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return cr
	}
	const name = "flowscope_alert_evaluation_duration_seconds"
	var sum float64
	buckets := map[float64]int64{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(line, name+"_sum"):
			sum = v
		case strings.HasPrefix(line, name+"_count"):
			cr.Count, cr.Reported = int64(v), true
		case strings.HasPrefix(line, name+"_bucket{"):
			i := strings.Index(line, `le="`)
			if i < 0 {
				continue
			}
			le := line[i+4:]
			le = le[:strings.IndexByte(le, '"')]
			if x, err := strconv.ParseFloat(le, 64); err == nil {
				buckets[x] = int64(v)
			}
		}
	}
	if cr.Count > 0 {
		cr.MeanMs = sum / float64(cr.Count) * 1000
		cr.Over100 = cr.Count - buckets[0.1]
		cr.Over250 = cr.Count - buckets[0.25]
		cr.Over1s = cr.Count - buckets[1]
	}
	return cr
}
