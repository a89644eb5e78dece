package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TestMain lets the test binary serve as the discard server that
// -vs-discard starts (a re-exec of os.Executable with serveDiscardArg).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == serveDiscardArg {
		os.Exit(serveDiscardMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestRender checks that rendered requests decode, keep the telemetrygen
// shape and parent links, and never repeat a span or trace ID.
func TestRender(t *testing.T) {
	tps, err := buildTemplates(4, 512, 42)
	if err != nil {
		t.Fatal(err)
	}
	seenSpans := map[string]bool{}
	seenTraces := map[string]bool{}
	now := time.Now().Add(time.Minute)
	var buf []byte
	for seq := uint64(1); seq <= 16; seq++ {
		tp := tps[seq%uint64(len(tps))]
		buf = tp.render(buf, seq, now)
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(buf, &req); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
		if n := len(req.ResourceSpans); n != 1 {
			t.Fatalf("seq %d: %d resource spans", seq, n)
		}
		rs := req.ResourceSpans[0]
		if got := rs.GetResource().GetAttributes()[0].GetValue().GetStringValue(); got != "telemetrygen" {
			t.Fatalf("service.name %q", got)
		}
		spans := rs.ScopeSpans[0].Spans
		if len(spans) != 512 || tp.spans != 512 {
			t.Fatalf("seq %d: %d spans (template says %d)", seq, len(spans), tp.spans)
		}
		traces := map[string]bool{}
		for i := 0; i < len(spans); i += 2 {
			parent, child := spans[i], spans[i+1]
			if parent.Kind != tracepb.Span_SPAN_KIND_CLIENT || child.Kind != tracepb.Span_SPAN_KIND_SERVER ||
				parent.Name != "lets-go" || !bytes.HasPrefix([]byte(child.Name), []byte("okey-dokey-")) {
				t.Fatalf("seq %d span %d: not a telemetrygen pair: %v / %v", seq, i, parent, child)
			}
			if !bytes.Equal(child.ParentSpanId, parent.SpanId) || !bytes.Equal(child.TraceId, parent.TraceId) || len(parent.ParentSpanId) != 0 {
				t.Fatalf("seq %d span %d: parent link broken", seq, i)
			}
			if d := time.Duration(parent.EndTimeUnixNano - parent.StartTimeUnixNano); d != spanDuration {
				t.Fatalf("duration %s", d)
			}
			if end := time.Unix(0, int64(parent.EndTimeUnixNano)); end.Before(now.Add(-time.Second)) || end.After(now.Add(time.Second)) {
				t.Fatalf("seq %d: end %s not shifted to about %s", seq, end, now)
			}
			traces[string(parent.TraceId)] = true
		}
		for tid := range traces {
			if seenTraces[tid] {
				t.Fatalf("seq %d: trace ID repeated", seq)
			}
			seenTraces[tid] = true
		}
		for _, s := range spans {
			if seenSpans[string(s.SpanId)] {
				t.Fatalf("seq %d: span ID %x repeated", seq, s.SpanId)
			}
			seenSpans[string(s.SpanId)] = true
		}
	}
}

// TestShortRun runs the whole harness briefly, freshness markers included,
// against a freshly built collector with aggregation so that it cannot rot.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and drives the collector; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, config{
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, Clients: 4,
		SpansPerRequest: 512, Pool: 16, MaxRequests: 100_000, Timeout: 30 * time.Second,
		Aggregation: true, // and so -freshness by default
	}, t.Logf)
	if res != nil {
		var b bytes.Buffer
		res.printTable(&b)
		t.Logf("result:\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.SpansPerSecond <= 0 || res.AckedSpans <= 0 || res.AckedSpansTotal < res.AckedSpans || res.RequestsOK <= 0 {
		t.Errorf("nothing acknowledged: %+v", res)
	}
	if res.LatencyP50Ms <= 0 || res.LatencyP99Ms < res.LatencyP50Ms || res.MeasuredSeconds < 1.9 {
		t.Errorf("latency or duration missing: p50 %v p99 %v measured %v", res.LatencyP50Ms, res.LatencyP99Ms, res.MeasuredSeconds)
	}
	// Every number the report promises is known when the harness started
	// the collector itself.
	js, _ := json.Marshal(res)
	var m map[string]any
	json.Unmarshal(js, &m)
	for _, k := range []string{"db_file_bytes", "data_dir_bytes", "bytes_per_span", "peak_rss_bytes",
		"max_sampled_rss_bytes", "server_cpu_seconds", "server_accepted_spans", "server_cores", "read_back", "shutdown_seconds", "exit_code", "error_logs",
		"freshness", "rollup", "other_cores", "acks", "max_sampled_rss_anon_bytes", "max_sampled_rss_file_bytes"} {
		if m[k] == nil {
			t.Errorf("%s not reported", k)
		}
	}
	if t.Failed() {
		return
	}
	if *res.DBFileBytes <= 0 || *res.BytesPerSpan <= 0 || *res.PeakRSSBytes <= 0 || *res.MaxSampledRSSBytes <= 0 {
		t.Errorf("disk or memory figures are zero: %s", js)
	}
	if *res.ExitCode != 0 || *res.ErrorLogs != 0 || !*res.ReadBack {
		t.Errorf("collector exit %d, %d error logs, read back %v", *res.ExitCode, *res.ErrorLogs, *res.ReadBack)
	}

	checkFreshness(t, res.Freshness, 2*time.Second)
	checkRollup(t, res.Rollup)
}

// checkFreshness asserts that markers were sent through a window of about
// d, all acknowledged ones became visible in both APIs, and the delays are
// reported.
func checkFreshness(t *testing.T, f *FreshnessResult, d time.Duration) {
	t.Helper()
	if f == nil {
		t.Error("freshness not measured")
		return
	}
	if want := int(d / markerInterval); f.Markers < want-2 || f.Markers > want+1 {
		t.Errorf("%d markers sent in %s, want about %d", f.Markers, d, want)
	}
	if f.Acked < f.Markers/2 || f.Acked+f.NotAcked != f.Markers {
		t.Errorf("markers: %d sent, %d acknowledged, %d not (first error %q)", f.Markers, f.Acked, f.NotAcked, f.ExportErr)
	}
	if f.VirtualMarkers != f.Markers || f.VirtualAcked < f.VirtualMarkers/2 || f.VirtualAcked+f.VirtualNotAcked != f.VirtualMarkers {
		t.Errorf("virtual markers: %d sent, %d acknowledged, %d not (%d paired markers sent)", f.VirtualMarkers, f.VirtualAcked, f.VirtualNotAcked, f.Markers)
	}
	for name, v := range map[string]VisibilityStats{"flowgraph": f.FlowGraph, "latency": f.Latency,
		"virtual flowgraph": f.VirtualFlowGraph, "virtual latency": f.VirtualLatency} {
		acked := f.Acked
		if strings.HasPrefix(name, "virtual") {
			acked = f.VirtualAcked
		}
		if v.Invisible != 0 || v.Count != acked {
			t.Errorf("%s: %d of %d acknowledged markers visible, %d never (first poll error %q)", name, v.Count, acked, v.Invisible, v.FirstErr)
		}
		if v.P50Ms <= 0 || v.P99Ms < v.P50Ms || v.MaxMs < v.P99Ms || v.MaxMs > ms(markerVisibleMax) || v.Polls < int64(v.Count) {
			t.Errorf("%s: p50 %v p99 %v max %v ms, %d polls", name, v.P50Ms, v.P99Ms, v.MaxMs, v.Polls)
		}
	}
}

// checkRollup asserts that the run wrote 10-second rollup records and that
// their size is reported.
func checkRollup(t *testing.T, r *RollupResult) {
	t.Helper()
	if r == nil || !r.Reported || len(r.Tiers) < 3 || r.Tiers[0].Tier != "10s" {
		t.Errorf("rollup sizes not reported: %+v", r)
		return
	}
	if r.Tiers[0].Records <= 0 || r.Tiers[0].BytesPerRecord == nil || *r.Tiers[0].BytesPerRecord <= 0 || r.Total.BytesPerRecord == nil {
		t.Errorf("no 10s rollup records written: %+v", r.Tiers[0])
	}
}

// TestShortCompare runs -compare once, briefly: an aggregation-off and an
// aggregation-on run with their summary.
func TestShortCompare(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and drives the collector; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cr, err := runCompare(ctx, config{
		Duration: time.Second, Warmup: 500 * time.Millisecond, Clients: 2,
		SpansPerRequest: 512, Pool: 8, MaxRequests: 100_000, Timeout: 30 * time.Second,
		Aggregation: true, Compare: true, Repeat: 1,
	}, t.Logf)
	if cr != nil {
		var b bytes.Buffer
		cr.printTable(&b)
		t.Logf("result:\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(cr.Runs) != 2 || cr.Runs[0].Aggregation || !cr.Runs[1].Aggregation || cr.Runs[0].Freshness != nil {
		t.Fatalf("want an aggregation-off run without markers, then an aggregation-on run")
	}
	if cr.Off.Runs != 1 || cr.On.Runs != 1 || cr.Off.MedianSpansPerSecond <= 0 || cr.On.MedianSpansPerSecond <= 0 ||
		cr.Ratio <= 0 || len(cr.PairRatios) != 1 || cr.Off.MedianPeakRSSBytes == nil || cr.On.MedianPeakRSSBytes == nil {
		t.Errorf("summary incomplete: %+v", cr)
	}
	if r := cr.Runs[0].Rollup; r == nil || r.Total.Records != 0 {
		t.Errorf("rollup records written with aggregation off: %+v", r)
	}
	checkFreshness(t, cr.Freshness, time.Second)
	checkRollup(t, cr.Rollup)
}
