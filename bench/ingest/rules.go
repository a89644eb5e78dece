package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Alert rules under load (-rules, -compare-rules; issue 12): the collector
// runs with a rules file, by default 1,000 generated rules with `each: edge`,
// and a topology sender gives the flow graph -edges service-level edges (250
// services each calling the next two for 500), so that every rule has every
// edge to evaluate every second. -compare-rules interleaves runs without and
// with the rules; the acceptance target is a throughput ratio ≥ 0.9.
const (
	rulesCompareTarget = 0.9
	defaultGenRules    = 1000
	defaultRuleEdges   = 500
	// topologyEvery is the period of the topology sender: one request
	// holding one call (a CLIENT and a SERVER span) per edge.
	topologyEvery = time.Second
	// topologyFirstCalls is the calls per edge of the first request, so
	// that rules with min_count have data from the start.
	topologyFirstCalls = 20
)

// topologyService names service i of the topology (of n services).
func topologyService(i, n int) string { return fmt.Sprintf("topo-%03d", (i%n+n)%n) }

// topoEdge is one edge of the topology: its services, how long its calls
// take and whether one call in five fails.
type topoEdge struct {
	source, target string
	dur            time.Duration
	failing        bool
}

// topology returns edges edges: edges/2 services (rounded up), each calling
// the next two. Most calls take 5 ms, every third edge's 80 ms, one edge in
// ten's 300 ms and one in a hundred's 1.2 s; one edge in fifty fails a call
// in five. So some rules of the generated set fire, most do not.
func topology(edges int) []topoEdge {
	services := max((edges+1)/2, 3)
	out := make([]topoEdge, 0, edges)
	for i := 0; len(out) < edges; i++ {
		k := 1 + len(out)%2
		j := len(out)
		e := topoEdge{source: topologyService(i/2, services), target: topologyService(i/2+k, services), dur: 5 * time.Millisecond}
		switch {
		case j%100 == 0:
			e.dur = 1200 * time.Millisecond
		case j%10 == 5:
			e.dur = 300 * time.Millisecond
		case j%3 == 0:
			e.dur = 80 * time.Millisecond
		}
		e.failing = j%50 == 7
		out = append(out, e)
	}
	return out
}

// topologyRequest holds calls calls per edge, ending at now, with IDs from
// r; n numbers the request (of a failing edge, the first call of every fifth
// request fails, and every fifth call of a request of several).
func topologyRequest(edges []topoEdge, r *rand.Rand, now time.Time, n uint64, calls int) *coltracepb.ExportTraceServiceRequest {
	byService := map[string]*tracepb.ScopeSpans{}
	var order []string
	scope := func(s string) *tracepb.ScopeSpans {
		if byService[s] == nil {
			byService[s] = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "bench-topology"}}
			order = append(order, s)
		}
		return byService[s]
	}
	id := func(k int) []byte {
		b := make([]byte, k)
		for i := 0; i < k; i += 8 {
			binary.LittleEndian.PutUint64(b[i:], r.Uint64()|1)
		}
		return b
	}
	for k := range calls {
		for _, e := range edges {
			addCall(e, n+uint64(k), now.Add(-time.Duration(calls-1-k)*10*time.Millisecond), id, scope)
		}
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, s := range order {
		req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
			Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{str("service.name", s)}},
			ScopeSpans: []*tracepb.ScopeSpans{byService[s]},
		})
	}
	return req
}

// addCall adds one call of e ending at end.
func addCall(e topoEdge, n uint64, now time.Time, id func(int) []byte, scope func(string) *tracepb.ScopeSpans) {
	{
		tid, cid := id(16), id(8)
		st, en := uint64(now.Add(-e.dur).UnixNano()), uint64(now.UnixNano())
		status := &tracepb.Status{}
		if e.failing && n%5 == 0 {
			status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "bench"}
		}
		scope(e.source).Spans = append(scope(e.source).Spans, &tracepb.Span{
			TraceId: tid, SpanId: cid, Name: "call " + e.target, Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: st, EndTimeUnixNano: en, Status: status,
		})
		scope(e.target).Spans = append(scope(e.target).Spans, &tracepb.Span{
			TraceId: tid, SpanId: id(8), ParentSpanId: cid, Name: "handle", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: st, EndTimeUnixNano: en, Status: status,
		})
	}
}

// topologySender exports a topology request every topologyEvery on a gRPC
// connection of its own. Its spans are not counted in spans/s.
type topologySender struct {
	edges []topoEdge
	cc    *grpc.ClientConn
	rnd   *rand.Rand
	calls atomic.Int64 // requests acknowledged
	fails atomic.Int64
	mu    sync.Mutex
	err   string
	wg    sync.WaitGroup
}

// startTopology sends the first request synchronously (so that the graph
// has every edge before the load begins), then one every topologyEvery until
// until.
func startTopology(ctx context.Context, grpcAddr string, edges int, seed uint64, until time.Time) (*topologySender, error) {
	cc, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial %s for the topology: %w", grpcAddr, err)
	}
	t := &topologySender{edges: topology(edges), cc: cc, rnd: rand.New(rand.NewPCG(seed, 0x70706f)), err: ""}
	if err := t.send(ctx, 0, topologyFirstCalls); err != nil {
		cc.Close()
		return nil, fmt.Errorf("topology request: %w", err)
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		defer cc.Close()
		tk := time.NewTicker(topologyEvery)
		defer tk.Stop()
		for n := uint64(1); ctx.Err() == nil && time.Now().Before(until); n++ {
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
			if err := t.send(ctx, n*topologyFirstCalls, 1); err != nil {
				t.mu.Lock()
				if t.err == "" {
					t.err = err.Error()
				}
				t.mu.Unlock()
			}
		}
	}()
	return t, nil
}

func (t *topologySender) send(ctx context.Context, n uint64, calls int) error {
	req := topologyRequest(t.edges, t.rnd, time.Now(), n, calls)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := coltracepb.NewTraceServiceClient(t.cc).Export(cctx, req); err != nil {
		t.fails.Add(1)
		return err
	}
	t.calls.Add(1)
	return nil
}

func (t *topologySender) wait() { t.wg.Wait() }

// genRules writes n generated rules with `each: edge` over the topology of
// edges edges into dir and returns the file's path. The signals cycle over
// p99, p95, p50/p90, error_rate and rate, the windows over 1m and 5m; every
// tenth rule selects one service (its 4 edges), every seventh needs more
// calls than a 1-minute window holds before it decides. About 2,000 (rule,
// edge) instances fire once the windows hold data, the rest do not.
func genRules(dir string, n, edges int) (string, error) {
	services := max((edges+1)/2, 3)
	var b strings.Builder
	b.WriteString("# Generated by bench/ingest (-compare-rules): every rule is evaluated on every edge.\nrules:\n")
	lat := []string{"2s", "1s", "500ms"}
	errs := []string{"0.5", "0.1", "0.01"}
	for i := range n {
		var signal, above string
		switch i % 5 {
		case 0, 1, 2:
			signal = [...]string{"p99", "p95", "p50"}[i%5]
			if i%5 == 2 && (i/5)%2 == 1 {
				signal = "p90"
			}
			above = lat[(i/5)%len(lat)]
		case 3:
			signal, above = "error_rate", errs[(i/5)%len(errs)]
		case 4:
			signal, above = "rate", "100000/s"
		}
		window := "1m"
		if i%2 == 1 {
			window = "5m"
		}
		minCount := 10
		if i%7 == 0 {
			minCount = 1000
		}
		fmt.Fprintf(&b, "  - alert: bench-%04d\n    each: edge\n    signal: %s\n    above: %s\n    window: %s\n    min_count: %d\n",
			i, signal, above, window, minCount)
		if i%10 == 9 {
			fmt.Fprintf(&b, "    select: {service: %s}\n", topologyService(i*7, services))
		}
		fmt.Fprintf(&b, "    labels: {severity: %s}\n", [...]string{"page", "ticket"}[i%2])
		if i%3 == 0 {
			b.WriteString("    annotations: {summary: \"{{ .Target }}: {{ .Value }} over {{ .Threshold }}\"}\n")
		}
	}
	path := filepath.Join(dir, "rules.yml")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// RulesResult is what the collector said about its alert rules after the
// load: GET /api/v1/rules and the evaluation-cycle histogram of /metrics.
type RulesResult struct {
	File    string `json:"file"`
	Loaded  int    `json:"loaded"`  // rules in GET /api/v1/rules
	Errors  int    `json:"errors"`  // rules whose health is "error"
	Firing  int    `json:"firing"`  // firing instances, all rules
	Pending int    `json:"pending"` // pending instances, all rules
	// Cycles and MeanCycleMs come from
	// flowscope_alert_evaluation_duration_seconds (whole run);
	// CyclesOver100ms counts the cycles longer than 100 ms (the target).
	Cycles          int64   `json:"cycles"`
	MeanCycleMs     float64 `json:"mean_cycle_ms"`
	CyclesOver100ms int64   `json:"cycles_over_100ms"`
	// UptimeSeconds is how long the collector had run when the rules were
	// read: with the default 1 s interval, far fewer cycles than seconds
	// means a cycle stalled (the histogram counts finished cycles only).
	UptimeSeconds float64 `json:"uptime_seconds"`
	FirstError    string  `json:"first_error,omitempty"`
}

// readRules fills r from the collector's API and metrics.
func (r *RulesResult) read(httpAddr string) error {
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Get("http://" + httpAddr + "/api/v1/rules")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /api/v1/rules: status %d", resp.StatusCode)
	}
	var body struct {
		Rules []struct {
			Name      string  `json:"name"`
			Health    string  `json:"health"`
			LastError string  `json:"lastError"`
			Firing    jsonNum `json:"firing"`
			Pending   jsonNum `json:"pending"`
		} `json:"rules"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return fmt.Errorf("GET /api/v1/rules: %w", err)
	}
	r.Loaded = len(body.Rules)
	for _, ru := range body.Rules {
		if ru.Health == "error" {
			r.Errors++
			if r.FirstError == "" {
				r.FirstError = ru.Name + ": " + ru.LastError
			}
		}
		r.Firing += int(ru.Firing)
		r.Pending += int(ru.Pending)
	}
	samples, err := scrapeMetrics(httpAddr)
	if err != nil {
		return err
	}
	var sum float64
	var le100 int64
	for _, s := range samples {
		switch s.name {
		case "flowscope_alert_evaluation_duration_seconds_sum":
			sum = s.value
		case "flowscope_alert_evaluation_duration_seconds_count":
			r.Cycles = int64(s.value)
		case "flowscope_alert_evaluation_duration_seconds_bucket":
			if le, err := strconv.ParseFloat(s.labels["le"], 64); err == nil && le == 0.1 {
				le100 = int64(s.value)
			}
		}
	}
	if r.Cycles > 0 {
		r.MeanCycleMs = sum / float64(r.Cycles) * 1000
		r.CyclesOver100ms = r.Cycles - le100
	}
	return nil
}

func (r *RulesResult) rows(row func(k, v string)) {
	if r == nil {
		return
	}
	row("alert rules (file)", fmt.Sprintf("%d loaded, %d in error (%s)", r.Loaded, r.Errors, r.File))
	if r.FirstError != "" {
		row("first rule error", r.FirstError)
	}
	row("alert instances firing / pending", fmt.Sprintf("%d / %d", r.Firing, r.Pending))
	row("evaluation cycles / mean / over 100 ms", fmt.Sprintf("%d in %.0f s of uptime / %.1f ms / %d", r.Cycles, r.UptimeSeconds, r.MeanCycleMs, r.CyclesOver100ms))
}

// prepareRules checks the rules flags, resolves -edges and, for -gen-rules
// (or -compare-rules without -rules), writes the generated rules file; the
// returned cleanup removes it.
func prepareRules(c *config, logf func(string, ...any)) (func(), error) {
	nop := func() {}
	if c.Compare && c.CompareRules {
		return nop, errors.New("-compare and -compare-rules cannot be combined")
	}
	if c.RulesFile != "" && c.GenRules > 0 {
		return nop, errors.New("-rules and -gen-rules exclude each other")
	}
	if c.CompareRules && c.RulesFile == "" && c.GenRules <= 0 {
		c.GenRules = defaultGenRules
	}
	uses := c.RulesFile != "" || c.GenRules > 0
	if uses && c.Addr != "" {
		return nop, errors.New("-rules, -gen-rules and -compare-rules start their own collector: they cannot be used with -addr")
	}
	if uses && !c.Aggregation {
		return nop, errors.New("alert rules are evaluated on the aggregates: they need -aggregation=true")
	}
	if c.Edges < 0 {
		c.Edges = 0
		if uses {
			c.Edges = defaultRuleEdges
		}
	}
	if c.GenRules > 0 {
		dir, err := os.MkdirTemp("", "flowscope-bench-rules-")
		if err != nil {
			return nop, err
		}
		if c.RulesFile, err = genRules(dir, c.GenRules, max(c.Edges, 2)); err != nil {
			os.RemoveAll(dir)
			return nop, err
		}
		logf("generated %d alert rules with each: edge in %s", c.GenRules, c.RulesFile)
		return func() { os.RemoveAll(dir) }, nil
	}
	if c.RulesFile != "" {
		abs, err := filepath.Abs(c.RulesFile)
		if err != nil {
			return nop, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nop, fmt.Errorf("-rules: %w", err)
		}
		c.RulesFile = abs
	}
	return nop, nil
}
