package otlpgrpc

import (
	"context"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/membudget"
)

// serveBudget serves the receiver with budget b and OverloadTap on
// 127.0.0.1 and returns a client connection.
func serveBudget(t *testing.T, c *fakeConsumer, b *membudget.Budget, counts *ingest.RequestMetrics) *grpc.ClientConn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.ForceServerCodecV2(Codec()), grpc.InTapHandle(OverloadTap(b)))
	RegisterOptions(s, Options{Traces: c, Metrics: c, RequestMetrics: counts, Budget: b})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// retryDelay returns the RetryInfo delay of err's status, or -1.
func retryDelay(err error) float64 {
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			return r.RetryDelay.AsDuration().Seconds()
		}
	}
	return -1
}

// TestBudget exports requests to a receiver with a small memory budget: a
// request whose copy does not fit, or any request while the budget is
// full (refused by OverloadTap before its message is read), gets
// RESOURCE_EXHAUSTED with a RetryInfo, never reaches the consumer, and
// every reservation is given back once it is answered.
func TestBudget(t *testing.T) {
	small := otlptest.TelemetrygenRequest(randSource(), 10, nowish())
	big := otlptest.TelemetrygenRequest(randSource(), 4000, nowish())
	bigSize := int64(proto.Size(big))
	if bigSize < 512<<10 {
		t.Fatalf("big request is only %d bytes", bigSize)
	}
	tests := []struct {
		name     string
		limit    int64
		inUse    int64
		req      *coltracepb.ExportTraceServiceRequest
		metrics  bool // export an (empty) metrics request instead
		wantCode codes.Code
	}{
		{name: "fits", limit: 1 << 20, req: small, wantCode: codes.OK},
		{name: "large fits", limit: 2 * bigSize, req: big, wantCode: codes.OK},
		{name: "copy does not fit", limit: bigSize / 2, req: big, wantCode: codes.ResourceExhausted},
		{name: "budget full: refused before reading", limit: 1 << 20, inUse: 1<<20 - 1000, req: small, wantCode: codes.ResourceExhausted},
		{name: "metrics, budget full", limit: 1 << 20, inUse: 1<<20 - 1000, metrics: true, wantCode: codes.ResourceExhausted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := membudget.New(tt.limit)
			b.Acquire(tt.inUse)
			c := &fakeConsumer{}
			reg := prometheus.NewRegistry()
			counts := ingest.NewRequestMetrics(reg)
			conn := serveBudget(t, c, b, counts)
			var err error
			signal := "traces"
			if tt.metrics {
				signal = "metrics"
				_, err = colmetricspb.NewMetricsServiceClient(conn).Export(context.Background(), &colmetricspb.ExportMetricsServiceRequest{})
			} else {
				_, err = coltracepb.NewTraceServiceClient(conn).Export(context.Background(), tt.req)
			}
			if status.Code(err) != tt.wantCode {
				t.Fatalf("code %v, want %v (%v)", status.Code(err), tt.wantCode, err)
			}
			if b.Used() != tt.inUse {
				t.Errorf("budget holds %d after the answer, want %d", b.Used(), tt.inUse)
			}
			if b.Peak() > max(tt.limit, tt.inUse) {
				t.Errorf("budget peak %d over its limit %d", b.Peak(), tt.limit)
			}
			if tt.wantCode == codes.OK {
				if c.got == nil {
					t.Error("consumer not called")
				}
				return
			}
			if c.got != nil {
				t.Error("consumer called for a refused request")
			}
			if d := retryDelay(err); d != ingest.RetryAfter.Seconds() {
				t.Errorf("RetryInfo delay %vs, want %v (details %v)", d, ingest.RetryAfter, status.Convert(err).Details())
			}
			if b.Refused() == 0 {
				t.Error("budget counted no refusal")
			}
			// A refusal by the tap happens before the receiver sees the
			// stream, so only the codec's is counted as a request.
			wantCounted := 1.0
			if tt.inUse > 0 {
				wantCounted = 0
			}
			if got := overloadedCount(t, reg, signal); got != wantCounted {
				t.Errorf("counted %v overloaded requests, want %v", got, wantCounted)
			}
		})
	}
}

// overloadedCount reads the otlp_grpc requests of signal counted as
// overloaded in reg.
func overloadedCount(t *testing.T, reg *prometheus.Registry, signal string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if mf.GetName() == "flowscope_receiver_requests_total" && labels["receiver"] == "otlp_grpc" &&
				labels["signal"] == signal && labels["outcome"] == ingest.OutcomeOverloaded {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// TestOverloadTapMethods checks that OverloadTap refuses only the OTLP
// export methods while the budget is full.
func TestOverloadTapMethods(t *testing.T) {
	full := membudget.New(1 << 20)
	full.Acquire(1 << 20)
	tests := []struct {
		name   string
		budget *membudget.Budget
		method string
		refuse bool
	}{
		{"traces, full", full, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", true},
		{"metrics, full", full, "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", true},
		{"query, full", full, "/flowscope.query.v1.QueryService/GetTrace", false},
		{"traces, room", membudget.New(1 << 20), "/opentelemetry.proto.collector.trace.v1.TraceService/Export", false},
		{"traces, unlimited", nil, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			used := tt.budget.Used()
			_, err := OverloadTap(tt.budget)(context.Background(), &tap.Info{FullMethodName: tt.method})
			if (err != nil) != tt.refuse {
				t.Fatalf("tap error %v, want refusal %v", err, tt.refuse)
			}
			if err != nil && (status.Code(err) != codes.ResourceExhausted || retryDelay(err) <= 0) {
				t.Errorf("refusal %v without RESOURCE_EXHAUSTED and RetryInfo", err)
			}
			if tt.budget.Used() != used {
				t.Errorf("tap left %d bytes reserved", tt.budget.Used()-used)
			}
		})
	}
}
