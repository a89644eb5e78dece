package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// fakeCollector accepts markers over OTLP/gRPC and shows them in a fake
// flow graph and latency API after a delay.
type fakeCollector struct {
	coltracepb.UnimplementedTraceServiceServer
	delay   time.Duration
	mu      sync.Mutex
	seen    map[string]time.Time // marker service → export time
	virtual map[string]bool      // the marker services that are virtual callees
	bad     []string
}

func (f *fakeCollector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rs := req.GetResourceSpans()
	svc := func(r int) string { return rs[r].GetResource().GetAttributes()[0].GetValue().GetStringValue() }
	if len(rs) == 1 { // a virtual marker
		c := rs[0].ScopeSpans[0].Spans[0]
		attrs := map[string]string{}
		for _, a := range c.Attributes {
			attrs[a.Key] = a.GetValue().GetStringValue()
		}
		callee := attrs["peer.service"]
		if svc(0) != markerClient || c.Kind != tracepb.Span_SPAN_KIND_CLIENT || len(c.ParentSpanId) != 0 ||
			!strings.HasPrefix(callee, "marker-db-") || attrs["db.system"] != markerDBSystem ||
			len(c.TraceId) != 16 || len(c.SpanId) != 8 || c.EndTimeUnixNano-c.StartTimeUnixNano != uint64(markerDuration) ||
			time.Since(time.Unix(0, int64(c.EndTimeUnixNano))).Abs() > time.Second {
			f.bad = append(f.bad, "bad virtual marker shape")
		}
		if _, dup := f.seen[callee]; dup {
			f.bad = append(f.bad, "virtual marker callee reused: "+callee)
		}
		f.seen[callee] = time.Now()
		f.virtual[callee] = true
		return &coltracepb.ExportTraceServiceResponse{}, nil
	}
	if len(rs) != 2 {
		f.bad = append(f.bad, "want 1 or 2 resources")
		return &coltracepb.ExportTraceServiceResponse{}, nil
	}
	c, s := rs[0].ScopeSpans[0].Spans[0], rs[1].ScopeSpans[0].Spans[0]
	if svc(0) != markerClient || !strings.HasPrefix(svc(1), "marker-") || c.Kind != tracepb.Span_SPAN_KIND_CLIENT ||
		s.Kind != tracepb.Span_SPAN_KIND_SERVER || string(s.ParentSpanId) != string(c.SpanId) || string(s.TraceId) != string(c.TraceId) ||
		len(c.TraceId) != 16 || len(c.SpanId) != 8 || c.EndTimeUnixNano-c.StartTimeUnixNano != uint64(markerDuration) ||
		time.Since(time.Unix(0, int64(c.EndTimeUnixNano))).Abs() > time.Second {
		f.bad = append(f.bad, "bad marker shape")
	}
	if _, dup := f.seen[svc(1)]; dup {
		f.bad = append(f.bad, "marker service reused: "+svc(1))
	}
	f.seen[svc(1)] = time.Now()
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (f *fakeCollector) visible() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for s, t := range f.seen {
		if time.Since(t) >= f.delay {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("start") == "" || q.Get("end") == "" {
		http.Error(w, "no range", 400)
		return
	}
	switch r.URL.Path {
	case "/api/v1/flowgraph":
		type edge struct {
			Source string  `json:"source"`
			Target string  `json:"target"`
			Calls  float64 `json:"calls"`
		}
		edges := []edge{{Source: "telemetrygen", Target: "telemetrygen", Calls: 100}}
		for _, s := range f.visible() {
			edges = append(edges, edge{markerClient, s, 1})
		}
		json.NewEncoder(w).Encode(map[string]any{"nodes": []any{}, "edges": edges})
	case "/api/v1/latency":
		n := "0"
		for _, s := range f.visible() {
			f.mu.Lock()
			virtual := f.virtual[s]
			f.mu.Unlock()
			if !virtual && s == q.Get("service") && q.Get("kind") == "server" ||
				virtual && q.Get("source") == markerClient && s == q.Get("target") {
				n = "1" // as a string, as the proto3 JSON mapping may write it
			}
		}
		w.Write([]byte(`{"count":"` + n + `","quantiles":[]}`))
	default:
		http.NotFound(w, r)
	}
}

// TestFreshnessFake runs the markers against a fake collector whose APIs
// show a marker 50 ms after its export.
func TestFreshnessFake(t *testing.T) {
	fc := &fakeCollector{delay: 50 * time.Millisecond, seen: map[string]time.Time{}, virtual: map[string]bool{}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(gs, fc)
	go gs.Serve(lis)
	defer gs.Stop()
	hs := httptest.NewServer(fc)
	defer hs.Close()

	now := time.Now()
	fr := newFreshness(lis.Addr().String(), strings.TrimPrefix(hs.URL, "http://"), now.Add(100*time.Millisecond), now.Add(1100*time.Millisecond), 7)
	if err := fr.start(context.Background()); err != nil {
		t.Fatal(err)
	}
	res := fr.wait()
	t.Logf("%+v", res)
	if len(fc.bad) > 0 {
		t.Errorf("bad markers: %v", fc.bad)
	}
	if res.Markers < 4 || res.Markers > 6 || res.Acked != res.Markers || res.NotAcked != 0 {
		t.Errorf("markers %d acked %d not acked %d, want about 5 all acked", res.Markers, res.Acked, res.NotAcked)
	}
	if res.VirtualMarkers != res.Markers || res.VirtualAcked != res.VirtualMarkers || res.VirtualNotAcked != 0 {
		t.Errorf("virtual markers %d acked %d not acked %d, want %d all acked", res.VirtualMarkers, res.VirtualAcked, res.VirtualNotAcked, res.Markers)
	}
	for name, v := range map[string]VisibilityStats{"flowgraph": res.FlowGraph, "latency": res.Latency,
		"virtual flowgraph": res.VirtualFlowGraph, "virtual latency": res.VirtualLatency} {
		if v.Count != res.Acked || v.Invisible != 0 || v.FirstErr != "" {
			t.Errorf("%s: %d visible, %d invisible of %d; error %q", name, v.Count, v.Invisible, res.Acked, v.FirstErr)
		}
		if v.P50Ms < 45 || v.P99Ms > 500 || v.MaxMs < v.P99Ms || v.Polls < int64(v.Count)*3 {
			t.Errorf("%s: p50 %.1f p99 %.1f max %.1f polls %d; want about 50-70 ms and several polls each", name, v.P50Ms, v.P99Ms, v.MaxMs, v.Polls)
		}
	}
}

func TestParseSample(t *testing.T) {
	for _, tc := range []struct {
		line   string
		name   string
		labels map[string]string
		v      float64
	}{
		{`flowscope_rollup_bytes_written_total{tier="10s"} 12345`, "flowscope_rollup_bytes_written_total", map[string]string{"tier": "10s"}, 12345},
		{`flowscope_store_items_total{outcome="accepted",signal="traces"} 1.2e+06`, "flowscope_store_items_total", map[string]string{"outcome": "accepted", "signal": "traces"}, 1.2e6},
		{`go_goroutines 17`, "go_goroutines", map[string]string{}, 17},
		{`x{a="q\"uo,te",b=""} 3 1700000000000`, "x", map[string]string{"a": `q"uo,te`, "b": ""}, 3},
	} {
		s, ok := parseSample(tc.line)
		if !ok || s.name != tc.name || s.value != tc.v || len(s.labels) != len(tc.labels) {
			t.Errorf("%s: %+v %v", tc.line, s, ok)
			continue
		}
		for k, v := range tc.labels {
			if s.labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", tc.line, k, s.labels[k], v)
			}
		}
	}
	r := rollupSizes([]sample{
		{name: "flowscope_rollup_bytes_written_total", labels: map[string]string{"tier": "10s"}, value: 1000},
		{name: "flowscope_rollup_records_written_total", labels: map[string]string{"tier": "10s"}, value: 4},
		{name: "flowscope_rollup_bytes_written_total", labels: map[string]string{"tier": "1m"}, value: 300},
		{name: "flowscope_rollup_records_written_total", labels: map[string]string{"tier": "1m"}, value: 1},
	})
	if !r.Reported || len(r.Tiers) != 3 || *r.Tiers[0].BytesPerRecord != 250 || *r.Tiers[1].BytesPerRecord != 300 ||
		r.Tiers[2].BytesPerRecord != nil || r.Total.Records != 5 || r.Total.Bytes != 1300 || *r.Total.BytesPerRecord != 260 {
		t.Errorf("rollupSizes: %+v", r)
	}
	var n jsonNum
	for in, want := range map[string]float64{`"12"`: 12, `3`: 3, `null`: 0, `2.5e1`: 25} {
		n = 0
		if err := json.Unmarshal([]byte(in), &n); err != nil || float64(n) != want {
			t.Errorf("jsonNum %s = %v, %v", in, n, err)
		}
	}
}
