// Command frontend measures the query front end's cost against one node,
// with every node in a process of its own: the 24-hour flow graph asked of
// a single node holding a day of traffic, and of `collector query` over
// three nodes holding the same day split by trace ID (as the
// OpenTelemetry Collector's load-balancing exporter splits it), both
// through the REST API, interleaved (issue 19: the front end within 2×).
//
//	go run ./bench/frontend                     # 100 services, 300 edges, 40 queries each
//	go run ./bench/frontend -queries 100 -json out.json
//
// The day is BenchmarkFlowGraph24h's (otlptest.Mesh: one call per edge per
// minute), sent with span times over the last 24 hours; the harness waits
// until every node has flushed and compacted its rollups (the flow graph
// counts every call, on the single node and on the front end) and warms
// both, then times them. All processes share this machine's cores.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/flowscope/flowscope/bench/internal/benchproc"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// result is what one run measured (the -json output).
type result struct {
	Services, Edges, Nodes, Queries int
	Calls                           int64
	SingleP50Ms, SingleP90Ms        float64
	FrontP50Ms, FrontP90Ms          float64
	Ratio                           float64 `json:"front_over_single_p50"`
	LoadAvg                         string
}

func main() {
	services := flag.Int("services", 100, "services of the mesh")
	edges := flag.Int("edges", 300, "call edges of the mesh (one call per edge per minute)")
	queries := flag.Int("queries", 40, "timed 24-hour flow-graph queries of each (at most 1000)")
	collectorBin := flag.String("collector", "", "collector binary (default: go build ./cmd/collector)")
	jsonOut := flag.String("json", "", "also write the result as JSON to this file")
	flag.Parse()
	if *queries < 1 || *queries > 1000 || *edges < 1 || *services < 2 {
		fmt.Fprintln(os.Stderr, "frontend: -queries must be 1 to 1000, -edges at least 1, -services at least 2")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, *services, *edges, *queries, *collectorBin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "frontend:", err)
		os.Exit(1)
	}
	fmt.Printf("24 h flow graph, %d services, %d edges, %d calls; %d queries each, interleaved (load %s)\n",
		res.Services, res.Edges, res.Calls, res.Queries, res.LoadAvg)
	fmt.Printf("  one node:                     p50 %7.1f ms   p90 %7.1f ms\n", res.SingleP50Ms, res.SingleP90Ms)
	fmt.Printf("  front end over %d nodes:       p50 %7.1f ms   p90 %7.1f ms\n", res.Nodes, res.FrontP50Ms, res.FrontP90Ms)
	fmt.Printf("  front end / one node (p50):   %.2f×\n", res.Ratio)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(res, "", "  ")
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "frontend:", err)
			os.Exit(1)
		}
	}
}

// nodes is the number of nodes behind the front end.
const nodes = 3

func run(ctx context.Context, services, edges, queries int, bin string) (*result, error) {
	tmp, err := os.MkdirTemp("", "flowscope-frontend-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if bin == "" {
		if bin, err = benchproc.BuildCollector(ctx, tmp); err != nil {
			return nil, err
		}
	}
	var procs []*benchproc.Proc
	defer func() {
		for _, p := range procs {
			p.Stop(30 * time.Second)
		}
	}()
	start := func(argv []string, msg string) (*benchproc.Proc, error) {
		p, err := benchproc.Start(ctx, argv, msg)
		if err == nil {
			procs = append(procs, p)
		}
		return p, err
	}
	node := func(name string) (*benchproc.Proc, error) {
		dir, err := os.MkdirTemp(tmp, name)
		if err != nil {
			return nil, err
		}
		return start([]string{bin, "serve", "--data-dir", dir, "--node-name", name, "--edge-wait", "1s",
			"--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
			"--zipkin-addr", "127.0.0.1:0", "--log-format", "json"}, benchproc.StartedMsg)
	}
	single, err := node("single")
	if err != nil {
		return nil, err
	}
	parts := make([]*benchproc.Proc, nodes)
	var peers []string
	for i := range parts {
		if parts[i], err = node(fmt.Sprintf("node-%d", i+1)); err != nil {
			return nil, err
		}
		peers = append(peers, "http://"+parts[i].HTTPAddr())
	}
	front, err := start([]string{bin, "query", "--data-dir", tmp + "/query", "--peers", strings.Join(peers, ","),
		"--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--zipkin-addr", "127.0.0.1:0",
		"--otlp-http-addr", "127.0.0.1:0", "--log-format", "json"}, "query front end started")
	if err != nil {
		return nil, err
	}

	// A day of calls ending a minute ago.
	now := time.Now().Truncate(time.Minute)
	day := now.Add(-24*time.Hour - time.Minute)
	calls, err := sendDay(ctx, services, edges, day, single.GRPCAddr(), parts)
	if err != nil {
		return nil, err
	}
	path := fmt.Sprintf("/api/v1/flowgraph?start=%d&end=%d", day.UnixMilli(), now.UnixMilli())
	singleURL, frontURL := "http://"+single.HTTPAddr(), "http://"+front.HTTPAddr()
	// Settled: both count every call, and answer the same.
	deadline := time.Now().Add(5 * time.Minute)
	for {
		a, _, errA := flowGraph(ctx, singleURL+path)
		b, _, errB := flowGraph(ctx, frontURL+path)
		if errA == nil && errB == nil && a.calls == calls && b.calls == calls && string(a.raw) == string(b.raw) {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("not settled after 5 min: one node counts %d calls (%v), the front end %d (%v), want %d",
				a.calls, errA, b.calls, errB, calls)
		}
		if err := sleep(ctx, time.Second); err != nil {
			return nil, err
		}
	}
	for range 5 { // warm both
		flowGraph(ctx, singleURL+path)
		flowGraph(ctx, frontURL+path)
	}
	var ts, tf []time.Duration
	for range queries {
		_, d, err := flowGraph(ctx, singleURL+path)
		if err != nil {
			return nil, err
		}
		ts = append(ts, d)
		_, d, err = flowGraph(ctx, frontURL+path)
		if err != nil {
			return nil, err
		}
		tf = append(tf, d)
	}
	slices.Sort(ts)
	slices.Sort(tf)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	r := &result{Services: services, Edges: edges, Nodes: nodes, Queries: queries, Calls: calls,
		SingleP50Ms: ms(ts[len(ts)/2]), SingleP90Ms: ms(ts[len(ts)*9/10]),
		FrontP50Ms: ms(tf[len(tf)/2]), FrontP90Ms: ms(tf[len(tf)*9/10]), LoadAvg: benchproc.LoadAvg()}
	r.Ratio = r.FrontP50Ms / r.SingleP50Ms
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// sendDay sends a day of mesh traffic from day on, all of it to the
// single node and each trace to one of parts (by a hash of its ID), and
// returns the number of calls.
func sendDay(ctx context.Context, services, edges int, day time.Time, single string, parts []*benchproc.Proc) (int64, error) {
	dial := func(addr string) (coltracepb.TraceServiceClient, func() error, error) {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, nil, err
		}
		return coltracepb.NewTraceServiceClient(conn), conn.Close, nil
	}
	one, closeOne, err := dial(single)
	if err != nil {
		return 0, err
	}
	defer closeOne()
	clients := make([]coltracepb.TraceServiceClient, len(parts))
	for i, p := range parts {
		c, closeFn, err := dial(p.GRPCAddr())
		if err != nil {
			return 0, err
		}
		defer closeFn()
		clients[i] = c
	}
	mesh := otlptest.NewMesh(services, edges, day, 1)
	var calls int64
	for minute := 0; minute < 24*60; minute++ {
		all := &coltracepb.ExportTraceServiceRequest{}
		split := make([]*coltracepb.ExportTraceServiceRequest, len(parts))
		for i := range split {
			split[i] = &coltracepb.ExportTraceServiceRequest{}
		}
		for _, call := range mesh.Minute(minute) {
			all.ResourceSpans = append(all.ResourceSpans, call[0], call[1])
			h := fnv.New32a()
			h.Write(call[0].ScopeSpans[0].Spans[0].TraceId)
			s := split[h.Sum32()%uint32(len(parts))]
			s.ResourceSpans = append(s.ResourceSpans, call[0], call[1])
			calls++
		}
		if _, err := one.Export(ctx, all); err != nil {
			return 0, fmt.Errorf("export to the single node: %w", err)
		}
		for i, s := range split {
			if len(s.ResourceSpans) == 0 {
				continue
			}
			if _, err := clients[i].Export(ctx, s); err != nil {
				return 0, fmt.Errorf("export to node %d: %w", i+1, err)
			}
		}
	}
	return calls, nil
}

// graphAnswer is a flow graph answer: its bytes and its calls in all.
type graphAnswer struct {
	raw   []byte
	calls int64
}

// flowGraph GETs a flow graph and times it.
func flowGraph(ctx context.Context, url string) (graphAnswer, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return graphAnswer{}, 0, err
	}
	t := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return graphAnswer{}, 0, err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t)
	if err != nil {
		return graphAnswer{}, 0, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Flowscope-Partial") != "" {
		return graphAnswer{}, 0, fmt.Errorf("GET %s: %s %s", url, resp.Status, raw)
	}
	var doc struct {
		Edges []struct {
			Calls float64 `json:"calls"`
		} `json:"edges"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return graphAnswer{}, 0, errors.New("flow graph: " + err.Error())
	}
	var calls int64
	for _, e := range doc.Edges {
		calls += int64(e.Calls)
	}
	return graphAnswer{raw: raw, calls: calls}, d, nil
}
