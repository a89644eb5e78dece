package otlpgrpc

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	// Register the gzip compressor: OTel exporters may compress requests.
	_ "google.golang.org/grpc/encoding/gzip"
	// Register the standard protobuf codec used for everything but raw requests.
	_ "google.golang.org/grpc/encoding/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/internal/otlpwire"
)

// rawRequest receives the undecoded bytes of an export request.
type rawRequest struct {
	buf []byte
}

var rawPool = sync.Pool{New: func() any { return &rawRequest{buf: make([]byte, 0, 64<<10)} }}

// maxPooledBytes keeps huge one-off requests from pinning memory in the pool.
const maxPooledBytes = 4 << 20

func putRaw(r *rawRequest) {
	if cap(r.buf) > maxPooledBytes {
		return
	}
	r.buf = r.buf[:0]
	rawPool.Put(r)
}

// codec is a server CodecV2 that copies export requests into pooled raw
// buffers and delegates every other message to the protobuf codec.
type codec struct {
	proto encoding.CodecV2
}

// Codec returns the server codec to install with grpc.ForceServerCodecV2.
func Codec() encoding.CodecV2 {
	return codec{proto: encoding.GetCodecV2("proto")}
}

func (c codec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawRequest); ok {
		for _, b := range data {
			r.buf = append(r.buf, b.ReadOnlyData()...)
		}
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

func (c codec) Name() string { return "proto" }

// Receiver serves the OTLP Export methods.
type Receiver struct {
	traces  ingest.TracesConsumer
	metrics ingest.MetricsConsumer
	counts  *ingest.RequestMetrics
}

// handler is the HandlerType of the service descriptors.
type handler interface {
	exportTraces(ctx context.Context, raw []byte) (*coltracepb.ExportTraceServiceResponse, error)
}

// Register adds the TraceService and MetricsService to s. The server must
// have been created with grpc.ForceServerCodecV2(Codec()). counts may be nil.
func Register(s *grpc.Server, traces ingest.TracesConsumer, metrics ingest.MetricsConsumer, counts *ingest.RequestMetrics) *Receiver {
	r := &Receiver{traces: traces, metrics: metrics, counts: counts}
	s.RegisterService(&traceServiceDesc, r)
	s.RegisterService(&metricsServiceDesc, r)
	return r
}

var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*handler)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler:    unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export", (*Receiver).exportTracesAny),
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

var metricsServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.metrics.v1.MetricsService",
	HandlerType: (*handler)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler:    unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", (*Receiver).exportMetricsAny),
	}},
	Metadata: "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
}

// unary adapts an export function to a grpc method handler, honouring
// server interceptors.
func unary(method string, fn func(*Receiver, context.Context, []byte) (any, error)) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		raw := rawPool.Get().(*rawRequest)
		defer putRaw(raw)
		if err := dec(raw); err != nil {
			return nil, err
		}
		r := srv.(*Receiver)
		if interceptor == nil {
			return fn(r, ctx, raw.buf)
		}
		info := &grpc.UnaryServerInfo{Server: srv, FullMethod: method}
		return interceptor(ctx, raw, info, func(ctx context.Context, req any) (any, error) {
			return fn(r, ctx, req.(*rawRequest).buf)
		})
	}
}

func (r *Receiver) exportTraces(ctx context.Context, raw []byte) (*coltracepb.ExportTraceServiceResponse, error) {
	if err := otlpwire.ValidateTraces(raw); err != nil {
		return nil, r.invalid("traces", err)
	}
	res, err := r.traces.ConsumeTraces(ctx, raw)
	r.counts.Inc("otlp_grpc", "traces", ingest.Outcome(res, err))
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &coltracepb.ExportTraceServiceResponse{}
	if res.Rejected > 0 {
		resp.PartialSuccess = &coltracepb.ExportTracePartialSuccess{RejectedSpans: res.Rejected, ErrorMessage: res.Message}
	}
	return resp, nil
}

func (r *Receiver) exportTracesAny(ctx context.Context, raw []byte) (any, error) {
	return r.exportTraces(ctx, raw)
}

func (r *Receiver) exportMetricsAny(ctx context.Context, raw []byte) (any, error) {
	if err := otlpwire.ValidateMetrics(raw); err != nil {
		return nil, r.invalid("metrics", err)
	}
	res, err := r.metrics.ConsumeMetrics(ctx, raw)
	r.counts.Inc("otlp_grpc", "metrics", ingest.Outcome(res, err))
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &colmetricspb.ExportMetricsServiceResponse{}
	if res.Rejected > 0 {
		resp.PartialSuccess = &colmetricspb.ExportMetricsPartialSuccess{RejectedDataPoints: res.Rejected, ErrorMessage: res.Message}
	}
	return resp, nil
}

// invalid counts a request of signal whose body does not decode and
// returns its INVALID_ARGUMENT status, worded like the OTLP/HTTP receiver's.
func (r *Receiver) invalid(signal string, err error) error {
	err = fmt.Errorf("%w: decode OTLP/protobuf %s: %w", ingest.ErrInvalid, signal, err)
	r.counts.Inc("otlp_grpc", signal, ingest.Outcome(ingest.Result{}, err))
	return toStatus(err)
}

// toStatus maps a consumer error to the gRPC status the OTLP spec asks for.
func toStatus(err error) error {
	retry := func(c codes.Code) error {
		st := status.New(c, err.Error())
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(ingest.RetryAfter)}); derr == nil {
			st = d
		}
		return st.Err()
	}
	switch {
	case errors.Is(err, ingest.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ingest.ErrOverloaded):
		return retry(codes.ResourceExhausted)
	case errors.Is(err, ingest.ErrUnavailable):
		return retry(codes.Unavailable)
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		return status.Error(codes.Internal, err.Error())
	}
}
