package otlpgrpc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"

	// Register the gzip compressor: OTel exporters may compress requests.
	_ "google.golang.org/grpc/encoding/gzip"
	// Register the standard protobuf codec used for everything but raw requests.
	_ "google.golang.org/grpc/encoding/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/internal/budgetio"
	"github.com/flowscope/flowscope/membudget"
	"github.com/flowscope/flowscope/otlpwire"
)

// rawRequest receives the undecoded bytes of an export request.
type rawRequest struct {
	buf []byte
	// mem holds the bytes of buf from the memory budget; the codec
	// reserves them before copying, and leaves buf empty and sets
	// overBudget when they do not fit.
	mem        budgetio.Reservation
	overBudget bool
}

var rawPool = sync.Pool{New: func() any { return new(rawRequest) }}

// getRaw returns a rawRequest reserving from b, its buffer from the
// receivers' bounded buffer pool.
func getRaw(b *membudget.Budget) *rawRequest {
	r := rawPool.Get().(*rawRequest)
	r.buf = budgetio.GetBuffer()
	r.mem.Budget = b
	return r
}

// putRaw releases r's reservation and pools r and its buffer.
func putRaw(r *rawRequest) {
	r.mem.Release()
	budgetio.PutBuffer(r.buf)
	*r = rawRequest{}
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
		// grpc-go has read the message; the copy is reserved before it is
		// made, and grpc-go frees its own buffers when this returns. A
		// copy that does not fit is not made, and the handler refuses the
		// request (an error here would be answered INTERNAL by grpc-go).
		n := data.Len()
		if !r.mem.Grow(int64(n)) {
			r.overBudget = true
			return nil
		}
		if cap(r.buf) < n {
			r.buf = make([]byte, 0, n)
		}
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
	budget  *membudget.Budget
}

// Options configures the receiver registered by RegisterOptions.
type Options struct {
	// Traces and Metrics receive the export requests.
	Traces  ingest.TracesConsumer
	Metrics ingest.MetricsConsumer
	// RequestMetrics counts every request by signal and outcome. Nil
	// counts nothing.
	RequestMetrics *ingest.RequestMetrics
	// Budget is the process-wide memory budget. The copy of every export
	// request is reserved from it before it is made and held until the
	// consumer returned; a request that does not fit is refused with
	// RESOURCE_EXHAUSTED and a RetryInfo. Install OverloadTap as well to
	// refuse new streams before grpc-go reads their messages. Nil:
	// unlimited.
	Budget *membudget.Budget
}

// handler is the HandlerType of the service descriptors.
type handler interface {
	exportTraces(ctx context.Context, raw []byte) (*coltracepb.ExportTraceServiceResponse, error)
}

// Register adds the TraceService and MetricsService to s. The server must
// have been created with grpc.ForceServerCodecV2(Codec()). counts may be nil.
func Register(s *grpc.Server, traces ingest.TracesConsumer, metrics ingest.MetricsConsumer, counts *ingest.RequestMetrics) *Receiver {
	return RegisterOptions(s, Options{Traces: traces, Metrics: metrics, RequestMetrics: counts})
}

// RegisterOptions is Register with every option, the memory budget
// included.
func RegisterOptions(s *grpc.Server, opts Options) *Receiver {
	r := &Receiver{traces: opts.Traces, metrics: opts.Metrics, counts: opts.RequestMetrics, budget: opts.Budget}
	s.RegisterService(&traceServiceDesc, r)
	s.RegisterService(&metricsServiceDesc, r)
	return r
}

var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.trace.v1.TraceService",
	HandlerType: (*handler)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler:    unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export", "traces", (*Receiver).exportTracesAny),
	}},
	Metadata: "opentelemetry/proto/collector/trace/v1/trace_service.proto",
}

var metricsServiceDesc = grpc.ServiceDesc{
	ServiceName: "opentelemetry.proto.collector.metrics.v1.MetricsService",
	HandlerType: (*handler)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Export",
		Handler:    unary("/opentelemetry.proto.collector.metrics.v1.MetricsService/Export", "metrics", (*Receiver).exportMetricsAny),
	}},
	Metadata: "opentelemetry/proto/collector/metrics/v1/metrics_service.proto",
}

// unary adapts an export function of signal to a grpc method handler,
// honouring server interceptors. The request's copy stays reserved from the
// memory budget until fn returned.
func unary(method, signal string, fn func(*Receiver, context.Context, []byte) (any, error)) func(any, context.Context, func(any) error, grpc.UnaryServerInterceptor) (any, error) {
	return func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		r := srv.(*Receiver)
		raw := getRaw(r.budget)
		defer putRaw(raw)
		if err := dec(raw); err != nil {
			return nil, err
		}
		if raw.overBudget {
			return nil, r.overBudget(signal)
		}
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

// overBudget counts a request of signal refused by the memory budget and
// returns its RESOURCE_EXHAUSTED status with a RetryInfo.
func (r *Receiver) overBudget(signal string) error {
	err := fmt.Errorf("%w: memory budget of %d bytes is in use: retry later", ingest.ErrOverloaded, r.budget.Limit())
	r.counts.Inc("otlp_grpc", signal, ingest.Outcome(ingest.Result{}, err))
	return toStatus(err)
}

// tapProbe is the free budget OverloadTap asks for: less, and a new
// stream could not hold even a small export request.
const tapProbe = 64 << 10

// OverloadTap returns a grpc.InTapHandle that refuses new streams of the
// OTLP Export methods with RESOURCE_EXHAUSTED and a RetryInfo while b has
// less than 64 KiB free, before grpc-go reads their messages (it reads a
// whole message before the handler runs). Other methods pass. A nil b
// refuses nothing.
func OverloadTap(b *membudget.Budget) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if b == nil || !strings.HasPrefix(info.FullMethodName, "/opentelemetry.proto.collector.") {
			return ctx, nil
		}
		if !b.TryAcquire(tapProbe) {
			return ctx, toStatus(fmt.Errorf("%w: memory budget of %d bytes is in use: retry later", ingest.ErrOverloaded, b.Limit()))
		}
		b.Release(tapProbe)
		return ctx, nil
	}
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
