package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Freshness measures how long an acknowledged span takes to show up in the
// live aggregates: every markerInterval during the measured window a marker
// trace (a CLIENT span of service marker-client calling a SERVER span of a
// service marker-N seen nowhere else) and a virtual marker (a CLIENT span of
// marker-client naming an uninstrumented callee marker-db-N, with no server
// half) are exported on their own connection, and once an export is
// acknowledged the flow graph and the latency API are polled, concurrently,
// until each shows it.
const (
	markerInterval   = 200 * time.Millisecond
	markerPollEvery  = 10 * time.Millisecond
	markerVisibleMax = 5 * time.Second // a marker not visible by then is counted as never visible
	markerDuration   = 5 * time.Millisecond
	markerClient     = "marker-client"
	markerDBSystem   = "postgresql"
)

// FreshnessResult is what the markers measured.
type FreshnessResult struct {
	Markers   int    `json:"markers"`           // marker exports attempted in the measured window
	Acked     int    `json:"markers_acked"`     // of those, acknowledged (export OK); only these are polled
	NotAcked  int    `json:"markers_not_acked"` // export refused or failed (under back-pressure)
	ExportErr string `json:"first_export_error,omitempty"`
	// FlowGraph: acknowledged → edge marker-client → marker-N with calls ≥ 1
	// in GET /api/v1/flowgraph?level=service.
	FlowGraph VisibilityStats `json:"flowgraph"`
	// Latency: acknowledged → count ≥ 1 in GET
	// /api/v1/latency?service=marker-N&kind=server.
	Latency VisibilityStats `json:"latency"`

	// Virtual markers: exports attempted, acknowledged, and not.
	VirtualMarkers  int `json:"virtual_markers"`
	VirtualAcked    int `json:"virtual_markers_acked"`
	VirtualNotAcked int `json:"virtual_markers_not_acked"`
	// VirtualFlowGraph: acknowledged → edge marker-client → marker-db-N
	// (a virtual node) with calls ≥ 1 in GET /api/v1/flowgraph?level=service.
	VirtualFlowGraph VisibilityStats `json:"virtual_flowgraph"`
	// VirtualLatency: acknowledged → count ≥ 1 in GET
	// /api/v1/latency?source=marker-client&target=marker-db-N.
	VirtualLatency VisibilityStats `json:"virtual_latency"`
}

// visibility returns the four visibility summaries, paired ones first.
func (f *FreshnessResult) visibility() []*VisibilityStats {
	return []*VisibilityStats{&f.FlowGraph, &f.Latency, &f.VirtualFlowGraph, &f.VirtualLatency}
}

// VisibilityStats summarises the acknowledged → visible delays of one API.
type VisibilityStats struct {
	Count     int     `json:"count"`  // markers that became visible within 5 s
	P50Ms     float64 `json:"p50_ms"` // delay quantiles over those
	P99Ms     float64 `json:"p99_ms"`
	MaxMs     float64 `json:"max_ms"`
	Invisible int     `json:"invisible"` // acknowledged markers not visible within 5 s (must be 0)
	Polls     int64   `json:"polls"`     // GET requests made
	// FirstPoll counts the markers the first poll found: their delay is
	// that one query's response time, not staleness of the aggregates.
	FirstPoll int    `json:"visible_at_first_poll"`
	FirstErr  string `json:"first_error,omitempty"`

	delays []time.Duration
}

func (v *VisibilityStats) finish() {
	slices.Sort(v.delays)
	v.Count = len(v.delays)
	if n := len(v.delays); n > 0 {
		q := func(p float64) float64 { return ms(v.delays[min(n-1, int(p*float64(n)))]) }
		v.P50Ms, v.P99Ms, v.MaxMs = q(0.50), q(0.99), ms(v.delays[n-1])
	}
}

// mergeFreshness pools the markers of several runs.
func mergeFreshness(rs []*FreshnessResult) *FreshnessResult {
	if len(rs) == 0 {
		return nil
	}
	out := &FreshnessResult{}
	for _, r := range rs {
		out.Markers += r.Markers
		out.Acked += r.Acked
		out.NotAcked += r.NotAcked
		out.VirtualMarkers += r.VirtualMarkers
		out.VirtualAcked += r.VirtualAcked
		out.VirtualNotAcked += r.VirtualNotAcked
		if out.ExportErr == "" {
			out.ExportErr = r.ExportErr
		}
		rv := r.visibility()
		for i, o := range out.visibility() {
			o.delays = append(o.delays, rv[i].delays...)
			o.Invisible += rv[i].Invisible
			o.Polls += rv[i].Polls
			o.FirstPoll += rv[i].FirstPoll
			if o.FirstErr == "" {
				o.FirstErr = rv[i].FirstErr
			}
		}
	}
	for _, v := range out.visibility() {
		v.finish()
	}
	return out
}

// freshness runs the markers. Call start, then wait after the window.
type freshness struct {
	grpcAddr, httpAddr string
	winStart, winEnd   time.Time
	rnd                *rand.Rand
	hc                 *http.Client

	mu  sync.Mutex
	res FreshnessResult

	wg   sync.WaitGroup // the sender and every poller
	done chan struct{}
}

func newFreshness(grpcAddr, httpAddr string, winStart, winEnd time.Time, seed uint64) *freshness {
	return &freshness{
		grpcAddr: grpcAddr, httpAddr: httpAddr, winStart: winStart, winEnd: winEnd,
		rnd: rand.New(rand.NewPCG(seed, 0x6d61726b)),
		hc: &http.Client{Timeout: markerVisibleMax, Transport: &http.Transport{
			MaxIdleConns: 64, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
		}},
		done: make(chan struct{}),
	}
}

// start begins sending markers at the start of the window, on its own gRPC
// connection.
func (f *freshness) start(ctx context.Context) error {
	cc, err := grpc.NewClient(f.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("dial %s for markers: %w", f.grpcAddr, err)
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer cc.Close()
		sleepUntil(ctx, f.winStart)
		t := time.NewTicker(markerInterval)
		defer t.Stop()
		var sends sync.WaitGroup // Export calls in flight, so cc outlives them
		for n := 1; ctx.Err() == nil && time.Now().Before(f.winEnd); n++ {
			sends.Add(2)
			go func(n int) { defer sends.Done(); f.mark(ctx, cc, n, false) }(n)
			go func(n int) { defer sends.Done(); f.mark(ctx, cc, n, true) }(n)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		}
		sends.Wait()
	}()
	return nil
}

// wait waits for the sender and for every poll (each bounded to 5 s) and
// returns the summary.
func (f *freshness) wait() *FreshnessResult {
	f.wg.Wait()
	f.hc.CloseIdleConnections()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.res.visibility() {
		v.finish()
	}
	r := f.res
	return &r
}

// mark exports marker n (the virtual marker n if virtual) and, once
// acknowledged, polls both APIs for it.
func (f *freshness) mark(ctx context.Context, cc *grpc.ClientConn, n int, virtual bool) {
	markers, acked, notAcked := &f.res.Markers, &f.res.Acked, &f.res.NotAcked
	graph, lat := &f.res.FlowGraph, &f.res.Latency
	svc := markerService(n)
	latencyVisible := func(ctx context.Context, now time.Time) (bool, error) { return f.latencyVisible(ctx, now, svc) }
	build := markerRequest
	if virtual {
		markers, acked, notAcked = &f.res.VirtualMarkers, &f.res.VirtualAcked, &f.res.VirtualNotAcked
		graph, lat = &f.res.VirtualFlowGraph, &f.res.VirtualLatency
		svc = virtualMarkerService(n)
		latencyVisible = func(ctx context.Context, now time.Time) (bool, error) { return f.edgeLatencyVisible(ctx, now, svc) }
		build = virtualMarkerRequest
	}
	f.mu.Lock()
	*markers++
	req := build(f.rnd, n, time.Now())
	f.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, markerVisibleMax)
	_, err := coltracepb.NewTraceServiceClient(cc).Export(cctx, req)
	cancel()
	ackedAt := time.Now()
	if err != nil {
		f.mu.Lock()
		*notAcked++
		if f.res.ExportErr == "" {
			f.res.ExportErr = err.Error()
		}
		f.mu.Unlock()
		return
	}
	f.mu.Lock()
	*acked++
	f.mu.Unlock()
	f.wg.Add(2)
	go func() {
		defer f.wg.Done()
		f.poll(ctx, ackedAt, graph, func(ctx context.Context, now time.Time) (bool, error) { return f.edgeVisible(ctx, now, svc) })
	}()
	go func() {
		defer f.wg.Done()
		f.poll(ctx, ackedAt, lat, latencyVisible)
	}()
}

// poll calls check every 10 ms until it reports the marker visible or 5 s
// have passed since acked, and records the delay (or the miss) in st. A
// query may take until that deadline: a slow answer that shows the marker
// counts, at the time it arrived.
func (f *freshness) poll(ctx context.Context, acked time.Time, st *VisibilityStats, check func(context.Context, time.Time) (bool, error)) {
	deadline := acked.Add(markerVisibleMax)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	var polls int64
	var firstErr error
	visible := false
	var delay time.Duration
	for ctx.Err() == nil {
		now := time.Now()
		ok, err := check(ctx, now)
		polls++
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if ok {
			visible, delay = true, time.Since(acked)
			break
		}
		next := now.Add(markerPollEvery)
		if !next.Before(deadline) {
			break
		}
		sleepUntil(ctx, next)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	st.Polls += polls
	if firstErr != nil && st.FirstErr == "" {
		st.FirstErr = firstErr.Error()
	}
	if visible {
		st.delays = append(st.delays, delay)
		if polls == 1 {
			st.FirstPoll++
		}
	} else {
		st.Invisible++
	}
}

func markerService(n int) string { return "marker-" + strconv.Itoa(n) }

// virtualMarkerService names the uninstrumented callee of virtual marker n.
func virtualMarkerService(n int) string { return "marker-db-" + strconv.Itoa(n) }

// markerRange is the query range of the polls: the last minute and a little
// of the future (the collector may run a clock slightly behind the span).
func markerRange(now time.Time) (string, string) {
	return strconv.FormatInt(now.Add(-60*time.Second).UnixMilli(), 10), strconv.FormatInt(now.Add(10*time.Second).UnixMilli(), 10)
}

// getJSON fetches path?q from the REST API and decodes the JSON answer.
func (f *freshness) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+f.httpAddr+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := f.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %.200s", path, resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %v: %.200s", path, err, body)
	}
	return nil
}

// edgeVisible reports whether the flow graph has the edge marker-client →
// svc with at least one call.
func (f *freshness) edgeVisible(ctx context.Context, now time.Time, svc string) (bool, error) {
	start, end := markerRange(now)
	var g struct {
		Edges []struct {
			Source string  `json:"source"`
			Target string  `json:"target"`
			Calls  jsonNum `json:"calls"`
		} `json:"edges"`
	}
	if err := f.getJSON(ctx, "/api/v1/flowgraph", url.Values{"level": {"service"}, "start": {start}, "end": {end}}, &g); err != nil {
		return false, err
	}
	for _, e := range g.Edges {
		if e.Source == markerClient && e.Target == svc && e.Calls >= 1 {
			return true, nil
		}
	}
	return false, nil
}

// latencyVisible reports whether the latency API counts at least one server
// span of svc.
func (f *freshness) latencyVisible(ctx context.Context, now time.Time, svc string) (bool, error) {
	start, end := markerRange(now)
	var l struct {
		Count jsonNum `json:"count"`
	}
	if err := f.getJSON(ctx, "/api/v1/latency", url.Values{"service": {svc}, "kind": {"server"}, "start": {start}, "end": {end}}, &l); err != nil {
		return false, err
	}
	return l.Count >= 1, nil
}

// edgeLatencyVisible reports whether the latency API counts at least one
// call on the edge marker-client → target.
func (f *freshness) edgeLatencyVisible(ctx context.Context, now time.Time, target string) (bool, error) {
	start, end := markerRange(now)
	var l struct {
		Count jsonNum `json:"count"`
	}
	q := url.Values{"source": {markerClient}, "target": {target}, "start": {start}, "end": {end}}
	if err := f.getJSON(ctx, "/api/v1/latency", q, &l); err != nil {
		return false, err
	}
	return l.Count >= 1, nil
}

// jsonNum accepts a JSON number or a string holding one (the proto3 JSON
// mapping writes 64-bit integers as strings); absent or null is 0.
type jsonNum float64

func (n *jsonNum) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		return nil
	}
	if len(b) >= 2 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(s)
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not a number: %.40q", b)
	}
	*n = jsonNum(v)
	return nil
}

// markerRequest builds marker n: a trace of a 5 ms CLIENT span in service
// marker-client ending at now and its SERVER child in service marker-n,
// each service in its own resource, as two instrumented services would send.
func markerRequest(r *rand.Rand, n int, now time.Time) *coltracepb.ExportTraceServiceRequest {
	svc := markerService(n)
	tid, cid, sid := randID(r, 16), randID(r, 8), randID(r, 8)
	cStart := now.Add(-markerDuration)
	sStart := cStart.Add(500 * time.Microsecond)
	sEnd := now.Add(-500 * time.Microsecond)
	rs := func(service string, span *tracepb.Span) *tracepb.ResourceSpans {
		return &tracepb.ResourceSpans{
			Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
				str("service.name", service), str("telemetry.sdk.language", "go")}},
			ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "flowscope-bench-marker"},
				Spans: []*tracepb.Span{span}}},
		}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{
		rs(markerClient, &tracepb.Span{
			TraceId: tid, SpanId: cid, Name: "GET /mark", Kind: tracepb.Span_SPAN_KIND_CLIENT,
			StartTimeUnixNano: uint64(cStart.UnixNano()), EndTimeUnixNano: uint64(now.UnixNano()),
			Attributes: []*commonpb.KeyValue{str("http.request.method", "GET"), str("server.address", svc), str("peer.service", svc)},
			Status:     &tracepb.Status{},
		}),
		rs(svc, &tracepb.Span{
			TraceId: tid, SpanId: sid, ParentSpanId: cid, Name: "GET /mark", Kind: tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: uint64(sStart.UnixNano()), EndTimeUnixNano: uint64(sEnd.UnixNano()),
			Attributes: []*commonpb.KeyValue{str("http.request.method", "GET"), str("http.route", "/mark")},
			Status:     &tracepb.Status{},
		}),
	}}
}

// virtualMarkerRequest builds virtual marker n: a trace of one 5 ms CLIENT
// span in service marker-client ending at now, naming its uninstrumented
// callee marker-db-n (peer.service, db.system), as a service calling a
// database sends it. Nothing else ever names that callee, so its edge is
// new.
func virtualMarkerRequest(r *rand.Rand, n int, now time.Time) *coltracepb.ExportTraceServiceRequest {
	start := now.Add(-markerDuration)
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{
			str("service.name", markerClient), str("telemetry.sdk.language", "go")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "flowscope-bench-marker"},
			Spans: []*tracepb.Span{{
				TraceId: randID(r, 16), SpanId: randID(r, 8), Name: "SELECT marker", Kind: tracepb.Span_SPAN_KIND_CLIENT,
				StartTimeUnixNano: uint64(start.UnixNano()), EndTimeUnixNano: uint64(now.UnixNano()),
				Attributes: []*commonpb.KeyValue{str("peer.service", virtualMarkerService(n)), str("db.system", markerDBSystem),
					str("db.operation.name", "SELECT")},
				Status: &tracepb.Status{},
			}}}},
	}}}
}

// rows adds the freshness rows to a result table (nothing when not
// measured).
func (f *FreshnessResult) rows(row func(k, v string)) {
	if f == nil {
		row("freshness markers", "not measured")
		return
	}
	row("freshness markers sent / acked / not acked", fmt.Sprintf("%d / %d / %d", f.Markers, f.Acked, f.NotAcked))
	row("virtual markers sent / acked / not acked", fmt.Sprintf("%d / %d / %d", f.VirtualMarkers, f.VirtualAcked, f.VirtualNotAcked))
	if f.ExportErr != "" {
		row("first marker export error", f.ExportErr)
	}
	for _, v := range []struct {
		name string
		st   *VisibilityStats
	}{{"flow graph", &f.FlowGraph}, {"latency API", &f.Latency},
		{"flow graph, virtual edge", &f.VirtualFlowGraph}, {"latency API, virtual edge", &f.VirtualLatency}} {
		row("ack → visible, "+v.name+": p50 / p99 / max", fmt.Sprintf("%.1f / %.1f / %.1f ms over %d markers (target p99 ≤ 1000 ms)",
			v.st.P50Ms, v.st.P99Ms, v.st.MaxMs, v.st.Count))
		row("  never visible within 5 s / polls / visible at first poll", fmt.Sprintf("%d / %d / %d", v.st.Invisible, v.st.Polls, v.st.FirstPoll))
		if v.st.FirstErr != "" {
			row("  first poll error", v.st.FirstErr)
		}
	}
}
