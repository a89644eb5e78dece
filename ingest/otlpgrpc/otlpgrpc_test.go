package otlpgrpc

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// fakeConsumer returns a fixed answer and records the bytes it received.
type fakeConsumer struct {
	res ingest.Result
	err error
	got []byte
}

func (f *fakeConsumer) ConsumeTraces(_ context.Context, req []byte) (ingest.Result, error) {
	f.got = append([]byte(nil), req...)
	return f.res, f.err
}

func (f *fakeConsumer) ConsumeMetrics(_ context.Context, req []byte) (ingest.Result, error) {
	f.got = append([]byte(nil), req...)
	return f.res, f.err
}

func serve(t *testing.T, c *fakeConsumer) *grpc.ClientConn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.ForceServerCodecV2(Codec()))
	Register(s, c, c, ingest.NewRequestMetrics(nil))
	go s.Serve(l)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func TestExportAnswers(t *testing.T) {
	req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{TraceId: otlptest.TraceID(1), SpanId: otlptest.SpanID(1), Name: "x"}}}},
	}}}
	want, _ := proto.Marshal(req)
	cases := []struct {
		name      string
		res       ingest.Result
		err       error
		code      codes.Code
		retryInfo bool
		rejected  int64
	}{
		{"ok", ingest.Result{}, nil, codes.OK, false, 0},
		{"partial", ingest.Result{Rejected: 2, Message: "span \"x\": trace ID is all zero"}, nil, codes.OK, false, 2},
		{"invalid", ingest.Result{}, fmt.Errorf("%w: bad tag", ingest.ErrInvalid), codes.InvalidArgument, false, 0},
		{"overloaded", ingest.Result{}, fmt.Errorf("%w: queue full", ingest.ErrOverloaded), codes.ResourceExhausted, true, 0},
		{"unavailable", ingest.Result{}, fmt.Errorf("%w: closing", ingest.ErrUnavailable), codes.Unavailable, true, 0},
		{"internal", ingest.Result{}, errors.New("disk on fire"), codes.Internal, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeConsumer{res: tc.res, err: tc.err}
			conn := serve(t, c)
			resp, err := coltracepb.NewTraceServiceClient(conn).Export(context.Background(), req)
			if status.Code(err) != tc.code {
				t.Fatalf("code %v, want %v (%v)", status.Code(err), tc.code, err)
			}
			if string(c.got) != string(want) {
				t.Fatalf("consumer got other bytes than sent")
			}
			if tc.retryInfo {
				var ri *errdetails.RetryInfo
				for _, d := range status.Convert(err).Details() {
					if r, ok := d.(*errdetails.RetryInfo); ok {
						ri = r
					}
				}
				if ri == nil || ri.RetryDelay.AsDuration() != ingest.RetryAfter {
					t.Fatalf("RetryInfo missing: %v", status.Convert(err).Details())
				}
			}
			if err == nil && resp.GetPartialSuccess().GetRejectedSpans() != tc.rejected {
				t.Fatalf("partial success %v", resp.GetPartialSuccess())
			}
			if tc.rejected > 0 && resp.GetPartialSuccess().GetErrorMessage() != tc.res.Message {
				t.Fatalf("error message %q", resp.GetPartialSuccess().GetErrorMessage())
			}
		})
	}
	t.Run("metrics partial", func(t *testing.T) {
		c := &fakeConsumer{res: ingest.Result{Rejected: 3, Message: "m"}}
		resp, err := colmetricspb.NewMetricsServiceClient(serve(t, c)).Export(context.Background(), &colmetricspb.ExportMetricsServiceRequest{})
		if err != nil || resp.GetPartialSuccess().GetRejectedDataPoints() != 3 {
			t.Fatalf("%v %v", resp, err)
		}
	})
}

// BenchmarkExport measures the receiver's overhead per request (gRPC on
// loopback, raw codec, no-op consumer) for 512-span requests.
func BenchmarkExport(b *testing.B) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	s := grpc.NewServer(grpc.ForceServerCodecV2(Codec()))
	Register(s, noopConsumer{}, noopConsumer{}, nil)
	go s.Serve(l)
	defer s.Stop()
	conn, _ := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer conn.Close()
	req := otlptest.TelemetrygenRequest(randSource(), 512, nowish())
	client := coltracepb.NewTraceServiceClient(conn)
	b.ReportAllocs()
	b.SetParallelism(4)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Export(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N*512)/b.Elapsed().Seconds(), "spans/s")
}

type noopConsumer struct{}

func (noopConsumer) ConsumeTraces(context.Context, []byte) (ingest.Result, error) {
	return ingest.Result{}, nil
}
func (noopConsumer) ConsumeMetrics(context.Context, []byte) (ingest.Result, error) {
	return ingest.Result{}, nil
}

func randSource() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }
func nowish() time.Time      { return time.Unix(1_700_000_000, 0) }
