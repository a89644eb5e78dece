package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

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

// TestShortRun runs the whole harness briefly against a freshly built
// collector so that it cannot rot.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and drives the collector; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, config{
		Duration: 2 * time.Second, Warmup: 500 * time.Millisecond, Clients: 4,
		SpansPerRequest: 512, Pool: 16, MaxRequests: 100_000, Timeout: 30 * time.Second,
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
		"max_sampled_rss_bytes", "server_cpu_seconds", "server_accepted_spans", "server_cores", "read_back", "shutdown_seconds", "exit_code", "error_logs"} {
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
}
