package otlpgrpc

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/internal/otlptest"
	"github.com/flowscope/flowscope/otlpwire"
)

// rawMessage is a request sent as the bytes given, which the standard
// client codec would refuse to encode (invalid UTF-8).
type rawMessage []byte

// rawClientCodec sends rawMessage bytes as they are and decodes responses
// with the protobuf library.
type rawClientCodec struct{}

func (rawClientCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(rawMessage))}, nil
}

func (rawClientCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func (rawClientCodec) Name() string { return "proto" }

// pb builds protobuf bytes field by field.
type pb []byte

func (w pb) str(num protowire.Number, s string) pb {
	return protowire.AppendBytes(protowire.AppendTag(w, num, protowire.BytesType), []byte(s))
}
func (w pb) msg(num protowire.Number, inner pb) pb {
	return protowire.AppendBytes(protowire.AppendTag(w, num, protowire.BytesType), inner)
}
func (w pb) fixed64(num protowire.Number, v uint64) pb {
	return protowire.AppendFixed64(protowire.AppendTag(w, num, protowire.Fixed64Type), v)
}

// validSpan holds the fields of a valid span; tests append one bad field.
func validSpan() pb {
	return pb{}.str(1, string(otlptest.TraceID(1))).str(2, string(otlptest.SpanID(1))).str(5, "op").
		fixed64(7, 1_700_000_000_000_000_000).fixed64(8, 1_700_000_000_000_000_100)
}

// traceRequest wraps span fields in an ExportTraceServiceRequest.
func traceRequest(span pb) []byte {
	return pb{}.msg(1, pb{}.msg(2, pb{}.msg(2, span)))
}

// deepValue is an AnyValue of k kvlists nested in each other around a
// string, 1 + 3k messages deep.
func deepValue(k int) pb {
	leaf := pb{}.str(1, "leaf") // string_value
	// Sizes bottom-up, then the headers top-down: linear, unlike wrapping
	// k times.
	anyLen, listLen, kvLen := make([]int, k+1), make([]int, k+1), make([]int, k+1)
	anyLen[0] = len(leaf)
	for i := 1; i <= k; i++ {
		kvLen[i] = 3 + 1 + protowire.SizeBytes(anyLen[i-1]) // key "k", then the value
		listLen[i] = 1 + protowire.SizeBytes(kvLen[i])
		anyLen[i] = 1 + protowire.SizeBytes(listLen[i])
	}
	v := make(pb, 0, anyLen[k])
	for i := k; i >= 1; i-- {
		v = protowire.AppendVarint(protowire.AppendTag(v, 6, protowire.BytesType), uint64(listLen[i]))  // AnyValue.kvlist_value
		v = protowire.AppendVarint(protowire.AppendTag(v, 1, protowire.BytesType), uint64(kvLen[i]))    // KeyValueList.values
		v = v.str(1, "k")                                                                               // KeyValue.key
		v = protowire.AppendVarint(protowire.AppendTag(v, 2, protowire.BytesType), uint64(anyLen[i-1])) // KeyValue.value
	}
	return append(v, leaf...)
}

// gaugeRequest is an ExportMetricsServiceRequest with one gauge point of the
// given extra fields, in a metric of the given name.
func gaugeRequest(name string, point pb) []byte {
	point = point.fixed64(3, 1_700_000_000_000_000_000).fixed64(4, 0x3ff0000000000000) // time, as_double 1
	metric := pb{}.str(1, name).msg(5, pb{}.msg(1, point))                             // name, gauge.data_points
	return pb{}.msg(1, pb{}.msg(2, pb{}.msg(2, metric)))
}

// TestExportRefusesUndecodable sends, over real gRPC, requests that
// proto.Unmarshal would refuse or that nest too deep: each must be answered
// INVALID_ARGUMENT naming the problem, counted as invalid, and never reach
// the consumer. The same requests made valid reach it.
func TestExportRefusesUndecodable(t *testing.T) {
	const (
		tracesMethod  = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
		metricsMethod = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
	)
	attr := func(key string, value pb) pb { return pb{}.str(1, key).msg(2, value) }
	cases := []struct {
		name    string
		method  string
		body    []byte
		problem string // substring of the status message; "" = valid
	}{
		{"valid span", tracesMethod, traceRequest(validSpan()), ""},
		{"span name invalid UTF-8", tracesMethod, traceRequest(validSpan().str(5, "GET \xff/")),
			"opentelemetry.proto.trace.v1.Span.name: string field contains invalid UTF-8"},
		{"attribute value invalid UTF-8", tracesMethod, traceRequest(validSpan().msg(9, attr("k", pb{}.str(1, "\xc3")))),
			"opentelemetry.proto.common.v1.AnyValue.string_value: string field contains invalid UTF-8"},
		{"attribute key invalid UTF-8", tracesMethod, traceRequest(validSpan().msg(9, attr("\xe2\x82", pb{}.str(1, "v")))),
			"KeyValue.key: string field contains invalid UTF-8"},
		{"18 nested kvlists", tracesMethod, traceRequest(validSpan().msg(9, attr("k", deepValue(18)))), ""},
		{"10,000 nested kvlists", tracesMethod, traceRequest(validSpan().msg(9, attr("k", deepValue(10_000)))),
			"messages nested more than 64 deep"},
		{"truncated", tracesMethod, traceRequest(validSpan())[:20], "decode OTLP/protobuf traces"},
		{"valid point", metricsMethod, gaugeRequest("queue.depth", nil), ""},
		{"metric name invalid UTF-8", metricsMethod, gaugeRequest("queue\xff", nil),
			"opentelemetry.proto.metrics.v1.Metric.name: string field contains invalid UTF-8"},
		{"point with 10,000 nested kvlists", metricsMethod, gaugeRequest("queue.depth", pb{}.msg(7, attr("k", deepValue(10_000)))),
			"nested more than 64 deep"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &fakeConsumer{}
			reg := prometheus.NewRegistry()
			conn := serveWith(t, c, ingest.NewRequestMetrics(reg))
			var resp proto.Message = &coltracepb.ExportTraceServiceResponse{}
			signal := "traces"
			if tc.method == metricsMethod {
				resp, signal = &colmetricspb.ExportMetricsServiceResponse{}, "metrics"
			}
			err := conn.Invoke(context.Background(), tc.method, rawMessage(tc.body), resp, grpc.ForceCodecV2(rawClientCodec{}))
			if tc.problem == "" {
				if err != nil || c.got == nil {
					t.Fatalf("valid request: %v, consumer called: %v", err, c.got != nil)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), tc.problem) {
				t.Fatalf("answer %v, want INVALID_ARGUMENT naming %q", err, tc.problem)
			}
			if c.got != nil {
				t.Fatal("the consumer was called")
			}
			if n := requestCount(t, reg, signal, ingest.OutcomeInvalid); n != 1 {
				t.Fatalf("%v invalid %s requests counted, want 1", n, signal)
			}
		})
	}
	// The same limit as the validator's, so a request of the deepest
	// accepted nesting decodes in the store's readers too.
	if otlpwire.MaxDepth != 64 {
		t.Fatalf("MaxDepth is %d: update the cases", otlpwire.MaxDepth)
	}
}

// serveWith is serve with the given request counter.
func serveWith(t *testing.T, c *fakeConsumer, counts *ingest.RequestMetrics) *grpc.ClientConn {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.ForceServerCodecV2(Codec()))
	Register(s, c, c, counts)
	go s.Serve(l)
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// requestCount returns the otlp_grpc request counter of signal and outcome.
func requestCount(t *testing.T, reg *prometheus.Registry, signal, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "flowscope_receiver_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["receiver"] == "otlp_grpc" && labels["signal"] == signal && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
