package main

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// TestDiscardServer starts the discard server in-process on 127.0.0.1 and
// sends it realistic requests with real gRPC clients: the harness's
// pass-through codec and the generated OTLP client with the standard
// protobuf codec. It must count every span and answer with an empty
// response.
func TestDiscardServer(t *testing.T) {
	d, err := startDiscard("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer d.stop()
	tps, err := buildRealisticTemplates(1, 1000, 3)
	if err != nil {
		t.Fatal(err)
	}
	raw := tps[0].render(nil, 1, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// The harness's sender: pre-encoded bytes.
	conns, err := dial(d.grpcAddr, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer conns[0].Close()
	var resp coltracepb.ExportTraceServiceResponse
	if err := conns[0].Invoke(ctx, exportMethod, &rawMsg{b: raw}, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.GetPartialSuccess() != nil {
		t.Errorf("partial success %v", resp.GetPartialSuccess())
	}
	if n, err := discardSpans(d.httpAddr); err != nil || n != 1000 {
		t.Fatalf("the server counted %d spans (%v), want 1000", n, err)
	}

	// A stock OTLP client.
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(d.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if _, err := coltracepb.NewTraceServiceClient(cc).Export(ctx, &req); err != nil {
		t.Fatal(err)
	}
	if n, err := discardSpans(d.httpAddr); err != nil || n != 2000 || d.srv.requests.Load() != 2 {
		t.Fatalf("the server counted %d spans in %d requests (%v), want 2000 in 2", n, d.srv.requests.Load(), err)
	}
}

// TestShortVsDiscard runs -vs-discard once, briefly: the discard server (a
// subprocess of the test binary, see TestMain) and then the collector.
func TestShortVsDiscard(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and drives the collector; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	vr, err := runVsDiscard(ctx, config{
		Duration: time.Second, Warmup: 500 * time.Millisecond, Clients: 2, Shape: shapeRealistic,
		Pool: 4, MaxRequests: 100_000, Timeout: 30 * time.Second, Aggregation: true, Repeat: 1,
	}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if len(vr.Runs) != 2 || vr.Runs[0].Server != serverDiscard || vr.Runs[1].Server != serverFlowscope {
		t.Fatalf("want a discard run, then a flowscope run: %+v", vr.Runs)
	}
	dr := vr.Runs[0]
	if dr.Freshness != nil || dr.ReadBack != nil || dr.ServerAcceptedSpans == nil || *dr.ServerAcceptedSpans != dr.AckedSpansTotal {
		t.Errorf("discard run: freshness %v, read back %v, counted %v of %d acknowledged", dr.Freshness, dr.ReadBack, dr.ServerAcceptedSpans, dr.AckedSpansTotal)
	}
	for _, m := range []ServerSummary{vr.Discard, vr.Flowscope} {
		if m.Runs != 1 || m.MedianSpansPerSecond <= 0 || m.MedianCPUMicros == nil || m.MedianPeakRSSBytes == nil {
			t.Errorf("%s summary incomplete: %+v", m.Server, m)
		}
	}
	if vr.Ratio <= 0 || len(vr.PairRatios) != 1 {
		t.Errorf("ratio %v, pairs %v", vr.Ratio, vr.PairRatios)
	}
}
