package main

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// graphJSON is a flow graph answer as GET /api/v1/flowgraph gives it.
const graphJSON = `{"nodes":[{"id":"checkout","virtual":false,"requestRate":12.5,"spanCount":2250},
 {"id":"frontend","virtual":false,"requestRate":3,"spanCount":10},{"id":"orders","virtual":true,"requestRate":6.6}],
 "edges":[{"source":"frontend","target":"checkout","virtual":false,"calls":750,"errors":3,"rate":12.5,"latency":{"p50":13041663,"timedCalls":750}},
 {"source":"checkout","target":"orders","virtual":true,"calls":400,"errors":0,"rate":6.6,"latency":{"p50":null,"timedCalls":0}}]}`

// TestDiffFlowGraphs compares flow graphs as the restart does: nodes,
// edges, calls and errors count; rates and latencies do not.
func TestDiffFlowGraphs(t *testing.T) {
	want, err := parseFlowGraph([]byte(graphJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Nodes) != 3 || len(want.Edges) != 2 || want.calls() != 1150 || want.Edges["frontend → checkout"] != (edgeCount{750, 3}) {
		t.Fatalf("parsed %+v", want)
	}
	for _, tc := range []struct {
		name string
		got  string // graphJSON with these replacements: old, new, …
		edit []string
		want []string // substrings of the differences; nil: equal
	}{
		{name: "identical", edit: nil},
		{name: "other rates and latencies", edit: []string{`"rate":12.5`, `"rate":99`, `"p50":13041663`, `"p50":1`, `"requestRate":3`, `"requestRate":0`}},
		{name: "calls as strings", edit: []string{`"calls":750`, `"calls":"750"`}},
		{name: "fewer calls", edit: []string{`"calls":400`, `"calls":399`},
			want: []string{"edge checkout → orders: 399 calls, 0 errors; want 400, 0"}},
		{name: "other errors", edit: []string{`"errors":3`, `"errors":2`},
			want: []string{"edge frontend → checkout: 750 calls, 2 errors; want 750, 3"}},
		{name: "edge missing", edit: []string{`"target":"orders"`, `"target":"orders-db"`},
			want: []string{"edge checkout → orders missing (400 calls before)", "edge checkout → orders-db not there before"}},
		{name: "node missing", edit: []string{`{"id":"frontend","virtual":false,"requestRate":3,"spanCount":10},`, ``},
			want: []string{"2 nodes and 2 edges, want 3 and 2", "node frontend missing"}},
		{name: "empty graph", got: `{"nodes":[],"edges":[]}`,
			want: []string{"0 nodes and 0 edges, want 3 and 2", "node checkout missing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.got
			if body == "" {
				body = strings.NewReplacer(tc.edit...).Replace(graphJSON)
			}
			got, err := parseFlowGraph([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			checkDiffs(t, diffFlowGraphs(want, got), tc.want)
		})
	}
}

// traceJSON is a trace answer as GET /api/v1/traces/{id} gives it.
const traceJSON = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"frontend"}}]},
 "scopeSpans":[{"scope":{"name":"otelhttp"},"spans":[{"traceId":"5b8efaf16e7d4c90a1b2c3d4e5f60718","spanId":"0102030405060708",
 "name":"GET /cart","kind":2,"startTimeUnixNano":"1714564770000000000","endTimeUnixNano":"1714564770042000000",
 "attributes":[{"key":"http.route","value":{"stringValue":"/cart"}}],"status":{}},
 {"traceId":"5b8efaf16e7d4c90a1b2c3d4e5f60718","spanId":"1112131415161718","parentSpanId":"0102030405060708",
 "name":"GET cart","kind":3,"startTimeUnixNano":"1714564770001000000","endTimeUnixNano":"1714564770040000000","status":{}}]}]},
 {"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"cart"}}]},
 "scopeSpans":[{"scope":{"name":"otelhttp"},"spans":[{"traceId":"5b8efaf16e7d4c90a1b2c3d4e5f60718","spanId":"2122232425262728",
 "parentSpanId":"1112131415161718","name":"GET /cart/{id}","kind":2,"startTimeUnixNano":"1714564770002000000",
 "endTimeUnixNano":"1714564770039000000","status":{}}]}]}]}`

// TestDiffTraces compares traces as the restart does: the same spans with
// the same parent, service, name, times and number of attributes.
func TestDiffTraces(t *testing.T) {
	want, err := parseTrace([]byte(traceJSON))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 3 || want["2122232425262728"].Service != "cart" || want["0102030405060708"].Attrs != 1 ||
		want["1112131415161718"].Parent != "0102030405060708" || want["0102030405060708"].Start != "1714564770000000000" {
		t.Fatalf("parsed %+v", want)
	}
	for _, tc := range []struct {
		name string
		edit []string
		want []string
	}{
		{name: "identical"},
		{name: "span order and scope do not matter", edit: []string{`"name":"otelhttp"`, `"name":"other"`}},
		{name: "span missing", edit: []string{`"spanId":"2122232425262728"`, `"spanId":"2122232425262729"`},
			want: []string{"span 2122232425262728 (cart GET /cart/{id}) missing", "span 2122232425262729 (cart GET /cart/{id}) not there before"}},
		{name: "parent lost", edit: []string{`"parentSpanId":"1112131415161718",`, ``},
			want: []string{"span 2122232425262728:"}},
		{name: "times differ", edit: []string{`"endTimeUnixNano":"1714564770040000000"`, `"endTimeUnixNano":"1714564770041000000"`},
			want: []string{"span 1112131415161718:"}},
		{name: "attribute lost", edit: []string{`"attributes":[{"key":"http.route","value":{"stringValue":"/cart"}}],`, ``},
			want: []string{"span 0102030405060708:"}},
		{name: "another service", edit: []string{`"stringValue":"cart"`, `"stringValue":"basket"`},
			want: []string{"span 2122232425262728:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTrace([]byte(strings.NewReplacer(tc.edit...).Replace(traceJSON)))
			if err != nil {
				t.Fatal(err)
			}
			checkDiffs(t, diffTraces(want, got), tc.want)
		})
	}
	empty, _ := parseTrace([]byte(`{"resourceSpans":[]}`))
	checkDiffs(t, diffTraces(want, empty), []string{"0 spans, want 3", "span 0102030405060708 (frontend GET /cart) missing"})
}

// checkDiffs asserts that diffs is empty when want is, and otherwise holds
// each of want as a substring of one of its lines, in order.
func checkDiffs(t *testing.T, diffs, want []string) {
	t.Helper()
	if len(want) == 0 {
		if len(diffs) != 0 {
			t.Errorf("differences %q, want none", diffs)
		}
		return
	}
	i := 0
	for _, d := range diffs {
		if i < len(want) && strings.Contains(d, want[i]) {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("differences %q, want %q", diffs, want)
	}
}

// TestRestartClassify checks how an answer after the restart counts: 503
// is warming up (allowed), a 200 that differs and a missing trace are
// wrong, anything else is an error.
func TestRestartClassify(t *testing.T) {
	wantGraph, _ := parseFlowGraph([]byte(graphJSON))
	graph := restartQuery{name: flowGraphQuery, check: func(b []byte) ([]string, error) {
		got, err := parseFlowGraph(b)
		if err != nil {
			return nil, err
		}
		return diffFlowGraphs(wantGraph, got), nil
	}}
	wantTrace, _ := parseTrace([]byte(traceJSON))
	trace := restartQuery{name: "trace x", missing: true, check: func(b []byte) ([]string, error) {
		got, err := parseTrace(b)
		if err != nil {
			return nil, err
		}
		return diffTraces(wantTrace, got), nil
	}}
	spans := restartQuery{name: "span count", check: func(b []byte) ([]string, error) {
		n, err := parseServiceSpans(b)
		if err != nil || n == 3050 {
			return nil, err
		}
		return []string{"other count"}, nil
	}}
	fewer := strings.Replace(graphJSON, `"calls":750`, `"calls":700`, 1)
	for _, tc := range []struct {
		name   string
		q      restartQuery
		status int
		body   string
		err    error
		want   answerKind
	}{
		{"graph equal", graph, http.StatusOK, graphJSON, nil, answerCorrect},
		{"graph with fewer calls", graph, http.StatusOK, fewer, nil, answerWrong},
		{"graph warming up", graph, http.StatusServiceUnavailable, `{"code":503,"message":"warming up"}`, nil, answerWarmingUp},
		{"graph 404 is an error, not missing", graph, http.StatusNotFound, `{}`, nil, answerError},
		{"graph 500", graph, http.StatusInternalServerError, `{"code":500}`, nil, answerError},
		{"graph not JSON", graph, http.StatusOK, `<html>`, nil, answerError},
		{"connection refused", graph, 0, ``, errors.New("connection refused"), answerError},
		{"trace equal", trace, http.StatusOK, traceJSON, nil, answerCorrect},
		{"trace missing", trace, http.StatusNotFound, `{"code":404,"message":"trace not found"}`, nil, answerWrong},
		{"trace with a span less", trace, http.StatusOK, strings.Replace(traceJSON, `"spanId":"2122232425262728"`, `"spanId":"x"`, 1), nil, answerWrong},
		{"trace warming up", trace, http.StatusServiceUnavailable, `{"code":503}`, nil, answerWarmingUp},
		{"span count equal (strings)", spans, http.StatusOK, `{"services":[{"name":"a","spanCount":"3000"},{"name":"b","spanCount":"50"}]}`, nil, answerCorrect},
		{"span count lower", spans, http.StatusOK, `{"services":[{"name":"a","spanCount":"3000"}]}`, nil, answerWrong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, what := tc.q.classify(tc.status, []byte(tc.body), tc.err)
			if got != tc.want {
				t.Errorf("kind %d (%s), want %d", got, what, tc.want)
			}
			if got != answerCorrect && what == "" {
				t.Errorf("no description")
			}
		})
	}
}

// TestRestartTraceIDs checks the choice of traces: the first of the first
// clients, then their last, without repeats.
func TestRestartTraceIDs(t *testing.T) {
	cls := []*client{{firstTrace: "a1", lastTrace: "a9"}, {firstTrace: "b1", lastTrace: "b1"}, {},
		{firstTrace: "c1", lastTrace: "c9"}, {firstTrace: "d1", lastTrace: "d9"}}
	got := restartTraceIDs(cls)
	if want := []string{"a1", "b1", "c1", "a9", "c9", "d9"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestShortRestart runs -restart briefly against a freshly built collector:
// every answer must be correct again after the restart.
func TestShortRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and drives the collector; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := run(ctx, config{
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, Clients: 2, Shape: shapeRealistic,
		Pool: 4, MaxRequests: 100_000, Timeout: 30 * time.Second, Aggregation: true, Restart: true,
		ReportEvery: time.Second, Blocks: -1,
	}, t.Logf)
	if res != nil {
		var b bytes.Buffer
		res.printTable(&b)
		t.Logf("result:\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	rr := res.Restart
	if rr == nil || !rr.Correct || rr.WrongAnswers != 0 || rr.ReadySeconds == nil || rr.PortSeconds == nil ||
		rr.TracesSeconds == nil || rr.FlowGraphSeconds == nil || rr.StoreSpansSeconds == nil || len(rr.Traces) == 0 ||
		rr.StoreSpans < rr.AckedSpans || rr.FlowGraphEdges == 0 || rr.PeakRSSBytes == nil || *rr.RestartedExitCode != 0 {
		t.Errorf("restart incomplete: %+v", rr)
	}
	if len(res.Intervals) != 2 || res.Blocks == nil || len(res.Blocks.Blocks) != defaultBlocks {
		t.Errorf("%d interval rows, blocks %+v; want 2 and %d blocks", len(res.Intervals), res.Blocks, defaultBlocks)
	}
}
