package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flowscope/flowscope/bench/internal/benchproc"
)

// The restart benchmark (-restart, -restart-kill): after the load, the
// answers to a few trace-by-ID queries, the flow graph and the span count
// over the whole run are recorded; the collector is stopped (SIGTERM, or
// SIGKILL with -restart-kill) and started again on the same data directory
// with the same flags and ports, and the harness measures how long it takes
// until the ports accept, /readyz answers 200 and the same queries give the
// same answers again.
const (
	// restartTracesEach is how many traces of the start and of the end of
	// the run are compared (each client's first and last, of the first clients).
	restartTracesEach = 3
	// restartStartWait bounds the restarted process's start (ports,
	// readiness); restartAnswerWait the time after readiness until the
	// answers are correct.
	restartStartWait  = 5 * time.Minute
	restartAnswerWait = 10 * time.Minute
	// restartQueryTimeout bounds one query before the stop (a flow graph
	// over tens of millions of spans takes a while).
	restartQueryTimeout = 5 * time.Minute
	// restartRSSWindow is the start of the restarted process whose peak
	// RSS is reported.
	restartRSSWindow = 10 * time.Second
	// restartSettleWait bounds the wait, before the stop, until two
	// consecutive flow graphs and span counts agree (the aggregator may
	// still be catching up with the load).
	restartSettleWait = 2 * time.Minute
	// restartRangeMargin widens the queried range around the run.
	restartRangeMargin = 5 * time.Minute
	// restartPollEvery is the pause between two rounds of queries after
	// readiness; the port and /readyz are polled every restartPortEvery.
	restartPollEvery = 20 * time.Millisecond
	restartPortEvery = 5 * time.Millisecond
)

// RestartResult is what -restart measured. Times are seconds from the start
// of the restarted process; pointers are null when the event did not
// happen (in time).
type RestartResult struct {
	Stop        string  `json:"stop"`         // SIGTERM (clean stop) or SIGKILL (-restart-kill)
	StopSeconds float64 `json:"stop_seconds"` // signal to exit
	RangeStart  string  `json:"range_start"`  // the range of the flow graph and span count queries (RFC 3339)
	RangeEnd    string  `json:"range_end"`
	// SettleSeconds is how long, after the load, the flow graph and span
	// count took to give the same answer twice in a row (the answers
	// compared are those); Settled is false if they never did within 2 min.
	SettleSeconds float64 `json:"settle_seconds"`
	Settled       bool    `json:"settled"`
	// StopError is what the stop before the restart reported (error log
	// lines, exit status); the restart is measured anyway, the run fails.
	StopError string `json:"stop_error,omitempty"`

	// What was compared, as answered before the stop.
	Traces         []string `json:"traces"`      // trace IDs: each client's first acknowledged, then last acknowledged
	TraceSpans     []int    `json:"trace_spans"` // their spans
	FlowGraphNodes int      `json:"flowgraph_nodes"`
	FlowGraphEdges int      `json:"flowgraph_edges"`
	FlowGraphCalls int64    `json:"flowgraph_calls"` // calls over all edges
	// StoreSpans is the sum of spanCount of GET /api/v1/services over the
	// range (spans in the store, markers included); AckedSpans the spans
	// the harness had acknowledged, its lower bound.
	StoreSpans        int64  `json:"store_spans"`
	AckedSpans        int64  `json:"acked_spans"`
	DataDirBytes      *int64 `json:"data_dir_bytes"`       // after the stop: file sizes
	DataDirAllocBytes *int64 `json:"data_dir_alloc_bytes"` // after the stop: allocated blocks

	PortSeconds       *float64 `json:"otlp_grpc_accepting_s"` // a TCP connect to the OTLP/gRPC port succeeds
	StartedLogSeconds *float64 `json:"started_log_s"`         // the "collector started" log line
	ReadySeconds      *float64 `json:"ready_s"`               // GET /readyz answers 200
	TracesSeconds     *float64 `json:"traces_correct_s"`      // every trace answered as before the stop
	FlowGraphSeconds  *float64 `json:"flowgraph_correct_s"`   // the flow graph's nodes, edges, calls and errors as before
	// FlowGraphAgainS is the duration of the same flow-graph query asked
	// once more after every answer was correct: the query's own cost,
	// apart from the wait for the aggregator's replay.
	FlowGraphAgainS *float64 `json:"flowgraph_again_s,omitempty"`
	// ReplaySeconds is the restarted collector's
	// flowscope_store_aggregator_replay_seconds.
	ReplaySeconds *float64 `json:"aggregator_replay_s,omitempty"`
	// ReindexSeconds is the restarted collector's
	// flowscope_store_reindex_seconds: the re-index of the chunks
	// committed after the last checkpoint, in the background.
	ReindexSeconds    *float64 `json:"reindex_s,omitempty"`
	StoreSpansSeconds *float64 `json:"store_spans_correct_s"` // the span count as before
	// Queries details each compared query: its answers and when the first
	// and the first correct one arrived.
	Queries            []RestartQueryTimes `json:"queries"`
	WarmingUp          int                 `json:"warming_up_answers"` // 503 answers after readiness (allowed)
	WrongAnswers       int                 `json:"wrong_answers"`      // answers that differ from before the stop (must be 0)
	FirstWrong         string              `json:"first_wrong,omitempty"`
	ErrorAnswers       int                 `json:"error_answers"` // other failures (status, transport)
	FirstError         string              `json:"first_error,omitempty"`
	PeakRSSBytes       *int64              `json:"peak_rss_first_10s_bytes"` // VmHWM of the restarted process 10 s after its start
	MaxSampledAnon     *int64              `json:"max_sampled_rss_anon_first_10s_bytes"`
	MaxSampledFile     *int64              `json:"max_sampled_rss_file_first_10s_bytes"`
	RestartedShutdown  *float64            `json:"restarted_shutdown_seconds"` // the restarted process's clean stop
	RestartedExitCode  *int                `json:"restarted_exit_code"`
	RestartedErrorLogs *int                `json:"restarted_error_logs"`
	Correct            bool                `json:"correct"` // every answer became correct in time and none was wrong
}

// RestartQueryTimes is one compared query after the restart. Times are
// seconds from the start of the restarted process; a query's time includes
// its response time (a slow first answer that is correct counts when it
// arrives).
type RestartQueryTimes struct {
	Name         string   `json:"name"`
	Answers      int      `json:"answers"`        // queries made
	FirstAnswerS *float64 `json:"first_answer_s"` // any answer (status)
	CorrectS     *float64 `json:"correct_s"`      // the first answer equal to the one before the stop
}

// restartAnswers are the answers compared across the restart.
type restartAnswers struct {
	traces []traceSnapshot
	graph  flowSnapshot
	spans  int64
}

// flowSnapshot is what the restart compares of a flow graph: its node IDs
// and, per edge, its calls and errors.
type flowSnapshot struct {
	Nodes []string             // sorted
	Edges map[string]edgeCount // "source → target"
}

// edgeCount is one edge's calls and errors.
type edgeCount struct{ Calls, Errors int64 }

// calls sums the calls over all edges.
func (f flowSnapshot) calls() int64 {
	var n int64
	for _, e := range f.Edges {
		n += e.Calls
	}
	return n
}

// parseFlowGraph reads a GET /api/v1/flowgraph answer.
func parseFlowGraph(body []byte) (flowSnapshot, error) {
	var g struct {
		Nodes []struct {
			ID string `json:"id"`
		} `json:"nodes"`
		Edges []struct {
			Source string  `json:"source"`
			Target string  `json:"target"`
			Calls  jsonNum `json:"calls"`
			Errors jsonNum `json:"errors"`
		} `json:"edges"`
	}
	if err := json.Unmarshal(body, &g); err != nil {
		return flowSnapshot{}, fmt.Errorf("flow graph: %w", err)
	}
	f := flowSnapshot{Edges: map[string]edgeCount{}}
	for _, n := range g.Nodes {
		f.Nodes = append(f.Nodes, n.ID)
	}
	slices.Sort(f.Nodes)
	for _, e := range g.Edges {
		k := e.Source + " → " + e.Target
		c := f.Edges[k]
		c.Calls += int64(e.Calls)
		c.Errors += int64(e.Errors)
		f.Edges[k] = c
	}
	return f, nil
}

// maxDiffs is how many differences a comparison lists.
const maxDiffs = 5

// diffFlowGraphs lists how got differs from want (nil: equal): nodes
// missing or new, edges missing or new, and edges with other call or error
// counts.
func diffFlowGraphs(want, got flowSnapshot) []string {
	var d []string
	add := func(format string, args ...any) {
		if len(d) < maxDiffs {
			d = append(d, fmt.Sprintf(format, args...))
		} else if len(d) == maxDiffs {
			d = append(d, "…")
		}
	}
	if len(want.Nodes) != len(got.Nodes) || len(want.Edges) != len(got.Edges) {
		add("%d nodes and %d edges, want %d and %d", len(got.Nodes), len(got.Edges), len(want.Nodes), len(want.Edges))
	}
	for _, n := range want.Nodes {
		if _, ok := slices.BinarySearch(got.Nodes, n); !ok {
			add("node %s missing", n)
		}
	}
	for _, n := range got.Nodes {
		if _, ok := slices.BinarySearch(want.Nodes, n); !ok {
			add("node %s not there before", n)
		}
	}
	for _, k := range sortedKeys(want.Edges) {
		w := want.Edges[k]
		g, ok := got.Edges[k]
		switch {
		case !ok:
			add("edge %s missing (%d calls before)", k, w.Calls)
		case g != w:
			add("edge %s: %d calls, %d errors; want %d, %d", k, g.Calls, g.Errors, w.Calls, w.Errors)
		}
	}
	for _, k := range sortedKeys(got.Edges) {
		if _, ok := want.Edges[k]; !ok {
			add("edge %s not there before (%d calls)", k, got.Edges[k].Calls)
		}
	}
	return d
}

// sortedKeys returns the keys of m in order.
func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// traceSnapshot is what the restart compares of a trace: per span ID its
// parent, service, name, times and number of attributes.
type traceSnapshot map[string]spanSummary

// spanSummary describes one span of a trace.
type spanSummary struct {
	Parent, Service, Name string
	Start, End            string // Unix ns, as the API writes them
	Attrs                 int
}

// parseTrace reads a GET /api/v1/traces/{id} answer (OTLP/JSON).
func parseTrace(body []byte) (traceSnapshot, error) {
	type kv struct {
		Key   string `json:"key"`
		Value struct {
			StringValue string `json:"stringValue"`
		} `json:"value"`
	}
	var t struct {
		ResourceSpans []struct {
			Resource struct {
				Attributes []kv `json:"attributes"`
			} `json:"resource"`
			ScopeSpans []struct {
				Spans []struct {
					SpanID     string          `json:"spanId"`
					Parent     string          `json:"parentSpanId"`
					Name       string          `json:"name"`
					Start      json.RawMessage `json:"startTimeUnixNano"`
					End        json.RawMessage `json:"endTimeUnixNano"`
					Attributes []kv            `json:"attributes"`
				} `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return nil, fmt.Errorf("trace: %w", err)
	}
	out := traceSnapshot{}
	for _, rs := range t.ResourceSpans {
		svc := ""
		for _, a := range rs.Resource.Attributes {
			if a.Key == "service.name" {
				svc = a.Value.StringValue
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out[s.SpanID] = spanSummary{Parent: s.Parent, Service: svc, Name: s.Name,
					Start: strings.Trim(string(s.Start), `"`), End: strings.Trim(string(s.End), `"`), Attrs: len(s.Attributes)}
			}
		}
	}
	return out, nil
}

// diffTraces lists how got differs from want (nil: equal).
func diffTraces(want, got traceSnapshot) []string {
	var d []string
	add := func(format string, args ...any) {
		if len(d) < maxDiffs {
			d = append(d, fmt.Sprintf(format, args...))
		} else if len(d) == maxDiffs {
			d = append(d, "…")
		}
	}
	if len(got) != len(want) {
		add("%d spans, want %d", len(got), len(want))
	}
	for _, id := range sortedKeys(want) {
		g, ok := got[id]
		switch {
		case !ok:
			add("span %s (%s %s) missing", id, want[id].Service, want[id].Name)
		case g != want[id]:
			add("span %s: %+v, want %+v", id, g, want[id])
		}
	}
	for _, id := range sortedKeys(got) {
		if _, ok := want[id]; !ok {
			add("span %s (%s %s) not there before", id, got[id].Service, got[id].Name)
		}
	}
	return d
}

// parseServiceSpans sums spanCount over a GET /api/v1/services answer.
func parseServiceSpans(body []byte) (int64, error) {
	var s struct {
		Services []struct {
			SpanCount jsonNum `json:"spanCount"`
		} `json:"services"`
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return 0, fmt.Errorf("services: %w", err)
	}
	var n int64
	for _, x := range s.Services {
		n += int64(x.SpanCount)
	}
	return n, nil
}

// flowGraphQuery names the flow graph query.
const flowGraphQuery = "flow graph"

// answerKind classifies one answer after the restart.
type answerKind int

// The kinds of answers.
const (
	answerCorrect   answerKind = iota // equal to the answer before the stop
	answerWarmingUp                   // 503: not yet, allowed
	answerWrong                       // a 200 that differs, or a missing trace (404)
	answerError                       // another status, an undecodable body, or no answer
)

// restartQuery is one of the compared queries.
type restartQuery struct {
	name  string
	path  string
	query url.Values
	// check compares a 200 answer's body with the answer before the stop
	// (nil: equal).
	check func(body []byte) ([]string, error)
	// missing is true when a 404 means a wrong answer (a missing trace).
	missing bool
}

// classify turns a status and body into an answerKind and a description.
func (q restartQuery) classify(status int, body []byte, err error) (answerKind, string) {
	switch {
	case err != nil:
		return answerError, fmt.Sprintf("%s: %v", q.name, err)
	case status == http.StatusServiceUnavailable:
		return answerWarmingUp, fmt.Sprintf("%s: 503 %.200s", q.name, body)
	case status == http.StatusNotFound && q.missing:
		return answerWrong, fmt.Sprintf("%s: 404 (missing) %.200s", q.name, body)
	case status != http.StatusOK:
		return answerError, fmt.Sprintf("%s: status %d %.200s", q.name, status, body)
	}
	diffs, perr := q.check(body)
	switch {
	case perr != nil:
		return answerError, fmt.Sprintf("%s: %v", q.name, perr)
	case len(diffs) > 0:
		return answerWrong, fmt.Sprintf("%s: %s", q.name, strings.Join(diffs, "; "))
	}
	return answerCorrect, ""
}

// get fetches path?q from the REST API at httpAddr.
func get(ctx context.Context, hc *http.Client, httpAddr, path string, q url.Values) (int, []byte, error) {
	u := "http://" + httpAddr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	return resp.StatusCode, body, err
}

// restartTraceIDs picks the traces to compare: the first acknowledged trace
// of the first clients (the start of the run), then their last.
func restartTraceIDs(clients []*client) []string {
	var first, last []string
	for _, cl := range clients {
		if cl.firstTrace != "" && len(first) < restartTracesEach {
			first = append(first, cl.firstTrace)
		}
		if cl.lastTrace != "" && cl.lastTrace != cl.firstTrace && len(last) < restartTracesEach {
			last = append(last, cl.lastTrace)
		}
	}
	return append(first, last...)
}

// collectorArgv is the command line of `collector serve` as
// benchproc.StartCollector builds it, but with the OTLP/gRPC and HTTP ports
// fixed, so that they can be polled from the process's start.
func collectorArgv(bin, dataDir, grpcAddr, httpAddr string, extra []string) []string {
	return append([]string{bin, "serve", "--data-dir", dataDir,
		"--otlp-grpc-addr", grpcAddr, "--otlp-http-addr", "127.0.0.1:0",
		"--http-addr", httpAddr, "--zipkin-addr", "127.0.0.1:0", "--log-format", "json"}, extra...)
}

// restartBench records the answers, stops the collector, restarts it and
// measures the restart into res.Restart. It replaces the collector's stop at
// the end of the run: the restarted process is stopped (cleanly) before it
// returns.
func restartBench(ctx context.Context, c config, tg *target, clients []*client, res *Result, logf func(string, ...any)) error {
	rr := &RestartResult{Stop: "SIGTERM", AckedSpans: res.AckedSpansTotal}
	if c.RestartKill {
		rr.Stop = "SIGKILL"
	}
	res.Restart = rr
	hc := &http.Client{Timeout: restartQueryTimeout}
	from, to := tg.started.Add(-restartRangeMargin), time.Now().Add(restartRangeMargin)
	rr.RangeStart, rr.RangeEnd = from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339)
	rng := url.Values{"start": {strconv.FormatInt(from.UnixMilli(), 10)}, "end": {strconv.FormatInt(to.UnixMilli(), 10)}}

	// The answers before the stop.
	logf("restart: recording the answers before the stop")
	var want restartAnswers
	var queries []restartQuery
	for _, id := range restartTraceIDs(clients) {
		q := restartQuery{name: "trace " + id, path: "/api/v1/traces/" + id, missing: true}
		status, body, err := get(ctx, hc, tg.httpAddr, q.path, nil)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("restart: trace %s before the stop: status %d, %v: %.200s", id, status, err, body)
		}
		t, err := parseTrace(body)
		if err != nil {
			return fmt.Errorf("restart: trace %s before the stop: %w", id, err)
		}
		want.traces = append(want.traces, t)
		rr.Traces, rr.TraceSpans = append(rr.Traces, id), append(rr.TraceSpans, len(t))
		q.check = func(body []byte) ([]string, error) {
			got, err := parseTrace(body)
			if err != nil {
				return nil, err
			}
			return diffTraces(t, got), nil
		}
		queries = append(queries, q)
	}
	fq := url.Values{"level": {"service"}, "start": rng["start"], "end": rng["end"]}
	if err := want.settle(ctx, hc, tg.httpAddr, fq, rng, rr); err != nil {
		return err
	}
	rr.FlowGraphNodes, rr.FlowGraphEdges, rr.FlowGraphCalls = len(want.graph.Nodes), len(want.graph.Edges), want.graph.calls()
	rr.StoreSpans = want.spans
	queries = append(queries, restartQuery{name: flowGraphQuery, path: "/api/v1/flowgraph", query: fq, check: func(body []byte) ([]string, error) {
		got, err := parseFlowGraph(body)
		if err != nil {
			return nil, err
		}
		return diffFlowGraphs(want.graph, got), nil
	}})
	queries = append(queries, restartQuery{name: "span count", path: "/api/v1/services", query: rng, check: func(body []byte) ([]string, error) {
		n, err := parseServiceSpans(body)
		if err != nil || n == want.spans {
			return nil, err
		}
		return []string{fmt.Sprintf("%d spans, want %d", n, want.spans)}, nil
	}})
	logf("restart: %d traces, flow graph of %d nodes, %d edges, %d calls, %d spans in the store (%d acknowledged); settled after %.1f s",
		len(rr.Traces), rr.FlowGraphNodes, rr.FlowGraphEdges, rr.FlowGraphCalls, rr.StoreSpans, rr.AckedSpans, rr.SettleSeconds)

	// Stop. A clean stop that logged errors or exited non-zero still left
	// its data: the restart is measured, and the run fails.
	t0 := time.Now()
	var stopErr error
	if c.RestartKill {
		tg.proc.Kill()
	} else if err := tg.stopCollector(res); err != nil {
		rr.StopSeconds = time.Since(t0).Seconds()
		if res.ExitCode == nil || *res.ExitCode < 0 {
			return fmt.Errorf("restart: the clean stop: %w", err)
		}
		stopErr = fmt.Errorf("restart: the clean stop before the restart: %w", err)
		rr.StopError, _, _ = strings.Cut(err.Error(), "\n")
		logf("restart: the clean stop reported: %s (measuring the restart anyway)", rr.StopError)
	}
	rr.StopSeconds = time.Since(t0).Seconds()
	if size, alloc, err := dirSize(tg.dataDir); err == nil {
		rr.DataDirBytes, rr.DataDirAllocBytes = &size, &alloc
	}
	logf("restart: stopped with %s in %.2f s; starting again on %s", rr.Stop, rr.StopSeconds, tg.dataDir)

	// Start again, polling the port and /readyz from the start.
	err := rr.measure(ctx, collectorArgv(tg.bin, tg.dataDir, tg.grpcAddr, tg.httpAddr, tg.args), tg, queries, logf)
	return errors.Join(stopErr, err)
}

// settle reads the flow graph (query fq) and the span count (query rng)
// until two consecutive rounds agree, at most restartSettleWait, and keeps
// the last answers in a.
func (a *restartAnswers) settle(ctx context.Context, hc *http.Client, httpAddr string, fq, rng url.Values, rr *RestartResult) error {
	t0 := time.Now()
	for first := true; ; first = false {
		status, body, err := get(ctx, hc, httpAddr, "/api/v1/flowgraph", fq)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("restart: flow graph before the stop: status %d, %v: %.200s", status, err, body)
		}
		g, err := parseFlowGraph(body)
		if err != nil {
			return fmt.Errorf("restart: before the stop: %w", err)
		}
		status, body, err = get(ctx, hc, httpAddr, "/api/v1/services", rng)
		if err != nil || status != http.StatusOK {
			return fmt.Errorf("restart: services before the stop: status %d, %v: %.200s", status, err, body)
		}
		n, err := parseServiceSpans(body)
		if err != nil {
			return fmt.Errorf("restart: before the stop: %w", err)
		}
		same := !first && n == a.spans && len(diffFlowGraphs(a.graph, g)) == 0
		a.graph, a.spans = g, n
		rr.SettleSeconds = time.Since(t0).Seconds()
		if same {
			rr.Settled = true
			return nil
		}
		if time.Since(t0) > restartSettleWait || ctx.Err() != nil {
			return nil // compared as they are; Settled tells
		}
		sleepUntil(ctx, time.Now().Add(500*time.Millisecond))
	}
}

// measure starts the collector of argv and fills the times, the answers'
// outcome and the restarted process's memory and stop.
func (rr *RestartResult) measure(ctx context.Context, argv []string, tg *target, queries []restartQuery, logf func(string, ...any)) error {
	t0 := time.Now()
	since := func() *float64 { s := time.Since(t0).Seconds(); return &s }
	type started struct {
		p   *benchproc.Proc
		err error
	}
	startc := make(chan started, 1)
	go func() {
		p, err := benchproc.Start(ctx, argv, benchproc.StartedMsg)
		startc <- started{p, err}
	}()
	pctx, cancel := context.WithDeadline(ctx, t0.Add(restartStartWait))
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if pollUntil(pctx, restartPortEvery, func() bool {
			conn, err := net.DialTimeout("tcp", tg.grpcAddr, 200*time.Millisecond)
			if err == nil {
				conn.Close()
			}
			return err == nil
		}) {
			rr.PortSeconds = since()
		}
	}()
	var readyAt time.Time
	go func() {
		defer wg.Done()
		hc := &http.Client{Timeout: time.Second}
		if pollUntil(pctx, 2*restartPortEvery, func() bool {
			status, _, err := get(pctx, hc, tg.httpAddr, "/readyz", nil)
			return err == nil && status == http.StatusOK
		}) {
			readyAt = time.Now()
			rr.ReadySeconds = since()
		}
	}()
	st := <-startc
	if st.err != nil {
		cancel()
		wg.Wait()
		return fmt.Errorf("restart: %w", st.err)
	}
	rr.StartedLogSeconds = since()
	tg.proc, tg.pid = st.p, st.p.PID() // the run's cleanup kills it if anything below fails
	logf("restart: collector pid %d logged its start after %.2f s", tg.pid, *rr.StartedLogSeconds)

	// Memory of the first 10 s: VmHWM at 10 s is the peak since the start;
	// the sampler adds the RssAnon and RssFile maxima from the started line on.
	rss := startRSSSampler(tg.pid)
	rssDone := make(chan struct{})
	go func() {
		defer close(rssDone)
		sleepUntil(ctx, t0.Add(restartRSSWindow))
		if s, err := benchproc.ReadProcStatus(tg.pid); err == nil {
			h := s["VmHWM"]
			rr.PeakRSSBytes = &h
		}
		rss.stop()
		a, f := rss.anon.Load(), rss.file.Load()
		rr.MaxSampledAnon, rr.MaxSampledFile = &a, &f
	}()
	wg.Wait()
	if rr.ReadySeconds == nil {
		<-rssDone
		return fmt.Errorf("restart: /readyz did not answer 200 within %s", restartStartWait)
	}
	logf("restart: OTLP/gRPC port accepting after %s s, ready after %.3f s; polling the answers", fmtOpt(rr.PortSeconds), *rr.ReadySeconds)

	// The answers, polled from readiness on until all are correct; a query
	// may take until the deadline.
	hc := &http.Client{}
	actx, acancel := context.WithDeadline(ctx, readyAt.Add(restartAnswerWait))
	defer acancel()
	done := make([]bool, len(queries))
	left, tracesLeft := len(queries), 0
	for _, q := range queries {
		if q.missing {
			tracesLeft++
		}
	}
	rr.Queries = make([]RestartQueryTimes, len(queries))
	for i, q := range queries {
		rr.Queries[i].Name = q.name
	}
	for left > 0 && actx.Err() == nil {
		for i, q := range queries {
			if done[i] {
				continue
			}
			status, body, err := get(actx, hc, tg.httpAddr, q.path, q.query)
			if actx.Err() != nil {
				break // the deadline, not an answer
			}
			kind, what := q.classify(status, body, err)
			qt := &rr.Queries[i]
			qt.Answers++
			if qt.FirstAnswerS == nil && err == nil {
				qt.FirstAnswerS = since()
			}
			switch kind {
			case answerCorrect:
				done[i] = true
				left--
				qt.CorrectS = since()
				switch {
				case q.missing:
					if tracesLeft--; tracesLeft == 0 {
						rr.TracesSeconds = since()
					}
				case q.name == flowGraphQuery:
					rr.FlowGraphSeconds = since()
				default:
					rr.StoreSpansSeconds = since()
				}
			case answerWarmingUp:
				rr.WarmingUp++
			case answerWrong:
				rr.WrongAnswers++
				if rr.FirstWrong == "" {
					rr.FirstWrong = fmt.Sprintf("%.3f s: %s", time.Since(t0).Seconds(), what)
					logf("restart: WRONG ANSWER: %s", rr.FirstWrong)
				}
			case answerError:
				rr.ErrorAnswers++
				if rr.FirstError == "" {
					rr.FirstError = fmt.Sprintf("%.3f s: %s", time.Since(t0).Seconds(), what)
				}
			}
		}
		if left > 0 {
			sleepUntil(actx, time.Now().Add(restartPollEvery))
		}
	}
	<-rssDone
	rr.Correct = left == 0 && rr.WrongAnswers == 0
	if rr.Correct {
		for _, q := range queries {
			if q.name != flowGraphQuery {
				continue
			}
			t := time.Now()
			if status, _, err := get(ctx, hc, tg.httpAddr, q.path, q.query); err == nil && status == http.StatusOK {
				d := time.Since(t).Seconds()
				rr.FlowGraphAgainS = &d
			}
		}
	}
	if ms, err := scrapeMetrics(tg.httpAddr); err == nil {
		for _, m := range ms {
			v := m.value
			switch m.name {
			case "flowscope_store_aggregator_replay_seconds":
				rr.ReplaySeconds = &v
			case "flowscope_store_reindex_seconds":
				rr.ReindexSeconds = &v
			}
		}
	}

	// Stop the restarted process cleanly.
	t1 := time.Now()
	code, logs, err := tg.proc.Stop(2 * time.Minute)
	d := time.Since(t1).Seconds()
	rr.RestartedShutdown, rr.RestartedExitCode, rr.RestartedErrorLogs = &d, &code, &logs
	switch {
	case err != nil:
		return fmt.Errorf("restart: stopping the restarted collector: %w", err)
	case rr.WrongAnswers > 0:
		return fmt.Errorf("restart: %d wrong answers after the restart; first: %s", rr.WrongAnswers, rr.FirstWrong)
	case left > 0:
		return fmt.Errorf("restart: %d of %d answers not correct within %s of readiness (first error: %s)", left, len(queries), restartAnswerWait, orNone(rr.FirstError))
	case code != 0:
		return fmt.Errorf("restart: the restarted collector exited with status %d; last log lines:\n%s", code, tg.proc.Tail())
	case logs > 0:
		return fmt.Errorf("restart: the restarted collector logged %d errors; last log lines:\n%s", logs, tg.proc.Tail())
	}
	return nil
}

// pollUntil calls ok every period until it returns true (then pollUntil
// does) or ctx ends (false).
func pollUntil(ctx context.Context, period time.Duration, ok func() bool) bool {
	for ctx.Err() == nil {
		if ok() {
			return true
		}
		sleepUntil(ctx, time.Now().Add(period))
	}
	return false
}

// fmtOpt formats an optional number of seconds.
func fmtOpt(p *float64) string {
	if p == nil {
		return "never"
	}
	return strconv.FormatFloat(*p, 'f', 3, 64)
}

// rows adds the restart's rows to a result table.
func (rr *RestartResult) rows(row func(k, v string)) {
	if rr == nil {
		return
	}
	s := func(p *float64) string {
		if p == nil {
			return "never"
		}
		return fmt.Sprintf("%.3f s", *p)
	}
	i64 := func(p *int64) string {
		if p == nil {
			return "unknown"
		}
		return mib(*p)
	}
	settled := fmt.Sprintf("settled (the same twice) %.1f s after the load", rr.SettleSeconds)
	if !rr.Settled {
		settled = fmt.Sprintf("NOT settled within %s: compared as last read", restartSettleWait)
	}
	row("restart: answers before the stop", settled)
	row("restart: stop", fmt.Sprintf("%s, exit after %.2f s", rr.Stop, rr.StopSeconds))
	if rr.StopError != "" {
		row("restart: stop reported", rr.StopError)
	}
	row("restart: store before the stop", fmt.Sprintf("%d spans in the store (services spanCount; %d acknowledged); data dir %s, allocated %s",
		rr.StoreSpans, rr.AckedSpans, i64(rr.DataDirBytes), i64(rr.DataDirAllocBytes)))
	row("restart: compared", fmt.Sprintf("%d traces (%v spans), flow graph of %d nodes / %d edges / %d calls, span count; range %s … %s",
		len(rr.Traces), rr.TraceSpans, rr.FlowGraphNodes, rr.FlowGraphEdges, rr.FlowGraphCalls, rr.RangeStart, rr.RangeEnd))
	row("restart: OTLP/gRPC port accepting", s(rr.PortSeconds))
	row("restart: \"collector started\" logged", s(rr.StartedLogSeconds))
	row("restart: /readyz 200", s(rr.ReadySeconds))
	row("restart: traces by ID correct", s(rr.TracesSeconds))
	row("restart: flow graph correct", s(rr.FlowGraphSeconds))
	row("restart: span count correct", s(rr.StoreSpansSeconds))
	for _, q := range rr.Queries {
		row("  "+q.Name, fmt.Sprintf("%d answers, first after %s, correct after %s", q.Answers, s(q.FirstAnswerS), s(q.CorrectS)))
	}
	row("restart: re-index (self-metric)", s(rr.ReindexSeconds))
	row("restart: aggregator replay (self-metric)", s(rr.ReplaySeconds))
	row("restart: flow graph asked again, answered in", s(rr.FlowGraphAgainS))
	row("restart: answers 503 (warming up) / wrong / error", fmt.Sprintf("%d / %d / %d", rr.WarmingUp, rr.WrongAnswers, rr.ErrorAnswers))
	if rr.FirstWrong != "" {
		row("restart: first wrong answer", rr.FirstWrong)
	}
	if rr.FirstError != "" {
		row("restart: first error answer", rr.FirstError)
	}
	row("restart: peak RSS in the first 10 s (VmHWM)", i64(rr.PeakRSSBytes))
	row("restart: max sampled RSS anon / file, first 10 s", i64(rr.MaxSampledAnon)+" / "+i64(rr.MaxSampledFile))
	ec, el := "unknown", "unknown"
	if rr.RestartedExitCode != nil {
		ec = strconv.Itoa(*rr.RestartedExitCode)
	}
	if rr.RestartedErrorLogs != nil {
		el = strconv.Itoa(*rr.RestartedErrorLogs)
	}
	row("restart: restarted collector shutdown / exit / error logs", s(rr.RestartedShutdown)+" / "+ec+" / "+el)
	row("restart: verdict", map[bool]string{true: "correct", false: "NOT CORRECT"}[rr.Correct])
}

// errRestartWithAddr is returned for -restart with -addr.
var errRestartWithAddr = errors.New("-restart starts and restarts its own collector: it cannot be used with -addr")
