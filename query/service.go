package query

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

// Store is what the query service reads. *store.DB implements it.
//
// Implementations MUST be safe for concurrent use. Returned values belong to
// the caller: the service may keep and modify them. Times are inclusive
// bounds; a zero time.Time never reaches the store (the service fills in
// defaults first).
type Store interface {
	// Services returns the services that have spans starting in [start, end].
	Services(ctx context.Context, start, end time.Time) ([]store.ServiceStats, error)
	// Operations returns the span names and kinds seen for service.
	Operations(ctx context.Context, service string) ([]store.Operation, error)
	// Trace returns every span of trace id, or an error wrapping
	// store.ErrNotFound when the trace is unknown.
	Trace(ctx context.Context, id store.TraceID) (*tracepb.TracesData, error)
	// FindTraces returns the summaries of the traces matching q, newest
	// first, at most q.Limit of them.
	FindTraces(ctx context.Context, q store.TraceQuery) ([]store.TraceSummary, error)
	// Correlation returns the summaries of the traces carrying correlation
	// ID id, oldest first: the newest limit of them.
	Correlation(ctx context.Context, id string, limit int) ([]store.TraceSummary, error)
	// MetricNames returns the metrics that have points in [start, end].
	MetricNames(ctx context.Context, start, end time.Time) ([]store.MetricInfo, error)
	// Metrics returns the data of metric name whose points have
	// time_unix_nano in [start, end], as ResourceMetrics holding only that
	// metric (resource, scope, attributes and exemplars kept).
	Metrics(ctx context.Context, name string, start, end time.Time) ([]*metricspb.ResourceMetrics, error)
	// FlowGraph returns the flow graph of the spans in [start, end] at
	// q.Level, restricted to q.Operation when set: every node (isolated ones
	// included) sorted by ID, one edge per (source, target) sorted by
	// (Source, Target), and the seconds the merged windows cover. Persisted
	// rollups and open windows are merged.
	FlowGraph(ctx context.Context, start, end time.Time, q aggregate.GraphQuery) (*aggregate.Graph, error)
	// Latency returns the merged latency distribution selected by q over
	// [start, end] and, when q.Step > 0, one LatencyStep per step sorted by
	// Start. Exemplars of the total are the slowest spans, slowest first.
	Latency(ctx context.Context, start, end time.Time, q aggregate.LatencyQuery) (*aggregate.Latency, error)
	// Architecture returns the declared architecture called name, or an
	// error wrapping store.ErrNotFound when there is none.
	Architecture(ctx context.Context, name string) (store.Architecture, error)
	// Architectures lists the declared architectures, sorted by name.
	Architectures(ctx context.Context) ([]store.ArchitectureInfo, error)
}

var _ Store = (*store.DB)(nil)

// ErrUnavailable is wrapped by the Store errors that mean the data cannot
// be read now, such as a query front end's peers not answering; the
// service answers codes.Unavailable.
var ErrUnavailable = errors.New("unavailable")

// DefaultRange is the time range queried when a request gives neither start
// nor end: the last 15 minutes.
const DefaultRange = 15 * time.Minute

// ServiceOptions configures a Service. The zero value is usable.
type ServiceOptions struct {
	// Logger receives the rare failures of the store (Internal errors).
	// Nil means slog.Default().
	Logger *slog.Logger
	// Now returns the current time, used for default time ranges. Nil means
	// time.Now.
	Now func() time.Time
	// Alerting is the alert engine that ListRules, ListAlerts,
	// GetAlertHistory and ReloadRules report on. Nil means no alerting:
	// empty lists, and ReloadRules fails with FailedPrecondition.
	Alerting Alerting
	// Synthetics is the synthetic-check prober that ListSynthetics,
	// RunSynthetic and ReloadSynthetics report on; nil means no checks.
	Synthetics Synthetics
	// SyntheticRuns reads stored run results (ListSynthetics' statistics,
	// ListSyntheticRuns, GetSyntheticRun, and the runs GetCorrelation
	// returns); nil means none.
	SyntheticRuns SyntheticRuns
	// Policies are the flow policies that ListPolicies, ReloadPolicies,
	// GetLint (its thresholds) and the flow graph's edge violations report
	// on; nil means none.
	Policies Policies
}

// DefaultServiceOptions returns the options NewService uses for zero fields.
func DefaultServiceOptions() ServiceOptions {
	return ServiceOptions{Logger: slog.Default(), Now: time.Now}
}

// Service implements querypb.QueryServiceServer over a Store. It validates
// every request (errors are gRPC statuses: InvalidArgument naming the bad
// parameter, NotFound for an unknown trace or architecture, Internal for
// store failures) and converts store values into API messages. It is safe
// for concurrent use.
type Service struct {
	querypb.UnimplementedQueryServiceServer

	st     Store
	logger *slog.Logger
	now    func() time.Time
	// alerting is nil without alerting.
	alerting Alerting
	// synthetics and runs are nil without synthetic checks.
	synthetics Synthetics
	runs       SyntheticRuns
	// policies is nil without flow policies.
	policies Policies
}

var _ querypb.QueryServiceServer = (*Service)(nil)

// NewService returns a Service reading from st.
func NewService(st Store, opts ServiceOptions) *Service {
	def := DefaultServiceOptions()
	if opts.Logger == nil {
		opts.Logger = def.Logger
	}
	if opts.Now == nil {
		opts.Now = def.Now
	}
	return &Service{st: st, logger: opts.Logger.With("component", "query"), now: opts.Now, alerting: opts.Alerting,
		synthetics: opts.Synthetics, runs: opts.SyntheticRuns, policies: opts.Policies}
}

// ListServices implements querypb.QueryServiceServer.
func (s *Service) ListServices(ctx context.Context, req *querypb.ListServicesRequest) (*querypb.ListServicesResponse, error) {
	start, end, err := parseRange(req.GetStart(), req.GetEnd(), s.now())
	if err != nil {
		return nil, err
	}
	stats, err := s.st.Services(ctx, start, end)
	if err != nil {
		return nil, s.storeError(ctx, "list services", err)
	}
	resp := &querypb.ListServicesResponse{Services: make([]*querypb.Service, 0, len(stats))}
	for _, st := range stats {
		resp.Services = append(resp.Services, &querypb.Service{
			Name:       st.Name,
			SpanCount:  st.SpanCount,
			ErrorCount: st.ErrorCount,
		})
	}
	slices.SortStableFunc(resp.Services, func(a, b *querypb.Service) int { return cmp.Compare(a.Name, b.Name) })
	return resp, nil
}

// ListOperations implements querypb.QueryServiceServer.
func (s *Service) ListOperations(ctx context.Context, req *querypb.ListOperationsRequest) (*querypb.ListOperationsResponse, error) {
	if req.GetService() == "" {
		return nil, invalidArgf("missing service")
	}
	ops, err := s.st.Operations(ctx, req.GetService())
	if err != nil {
		return nil, s.storeError(ctx, "list operations", err)
	}
	resp := &querypb.ListOperationsResponse{Operations: make([]*querypb.Operation, 0, len(ops))}
	for _, op := range ops {
		resp.Operations = append(resp.Operations, &querypb.Operation{Name: op.Name, SpanKind: op.Kind.String()})
	}
	slices.SortStableFunc(resp.Operations, func(a, b *querypb.Operation) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.SpanKind, b.SpanKind))
	})
	return resp, nil
}

// GetTrace implements querypb.QueryServiceServer. The trace ID may have 32
// or 16 hex digits (see ParseTraceID).
func (s *Service) GetTrace(ctx context.Context, req *querypb.GetTraceRequest) (*querypb.GetTraceResponse, error) {
	id, err := ParseTraceID(req.GetTraceId())
	if err != nil {
		return nil, invalidArgf("%v", err)
	}
	td, err := s.st.Trace(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, status.Errorf(codes.NotFound, "trace %x not found", id[:])
		}
		return nil, s.storeError(ctx, "get trace", err)
	}
	b, err := proto.Marshal(td)
	if err != nil {
		return nil, s.storeError(ctx, "encode trace", err)
	}
	return &querypb.GetTraceResponse{TracesData: b}, nil
}

// SearchTraces implements querypb.QueryServiceServer.
func (s *Service) SearchTraces(ctx context.Context, req *querypb.SearchTracesRequest) (*querypb.SearchTracesResponse, error) {
	q, err := traceQuery(req, s.now())
	if err != nil {
		return nil, err
	}
	sums, err := s.st.FindTraces(ctx, q)
	if err != nil {
		return nil, s.storeError(ctx, "search traces", err)
	}
	return &querypb.SearchTracesResponse{Traces: traceSummaries(sums, q.Limit)}, nil
}

// GetCorrelation implements querypb.QueryServiceServer.
func (s *Service) GetCorrelation(ctx context.Context, req *querypb.GetCorrelationRequest) (*querypb.GetCorrelationResponse, error) {
	if req.GetId() == "" {
		return nil, invalidArgf("missing id")
	}
	limit, err := parseLimit(req.GetLimit())
	if err != nil {
		return nil, err
	}
	sums, err := s.st.Correlation(ctx, req.GetId(), limit)
	if err != nil {
		return nil, s.storeError(ctx, "get correlation", err)
	}
	resp := &querypb.GetCorrelationResponse{
		Id:               req.GetId(),
		Traces:           traceSummaries(sums, limit),
		SyntheticResults: []*querypb.SyntheticResult{},
	}
	if s.runs != nil {
		runs, err := s.runs.SyntheticRunsByCorrelation(ctx, req.GetId(), limit)
		if err != nil {
			return nil, s.storeError(ctx, "get correlation", err)
		}
		for i := range runs {
			resp.SyntheticResults = append(resp.SyntheticResults, syntheticResult(&runs[i], true))
		}
	}
	return resp, nil
}

// ListMetrics implements querypb.QueryServiceServer.
func (s *Service) ListMetrics(ctx context.Context, req *querypb.ListMetricsRequest) (*querypb.ListMetricsResponse, error) {
	start, end, err := parseRange(req.GetStart(), req.GetEnd(), s.now())
	if err != nil {
		return nil, err
	}
	infos, err := s.st.MetricNames(ctx, start, end)
	if err != nil {
		return nil, s.storeError(ctx, "list metrics", err)
	}
	resp := &querypb.ListMetricsResponse{Metrics: make([]*querypb.MetricInfo, 0, len(infos))}
	for _, mi := range infos {
		resp.Metrics = append(resp.Metrics, &querypb.MetricInfo{
			Name:        mi.Name,
			Type:        mi.Type,
			Unit:        mi.Unit,
			Description: mi.Description,
		})
	}
	slices.SortStableFunc(resp.Metrics, func(a, b *querypb.MetricInfo) int { return cmp.Compare(a.Name, b.Name) })
	return resp, nil
}

// GetMetric implements querypb.QueryServiceServer. A metric without points
// in range answers an empty series list, not NotFound.
func (s *Service) GetMetric(ctx context.Context, req *querypb.GetMetricRequest) (*querypb.GetMetricResponse, error) {
	if req.GetName() == "" {
		return nil, invalidArgf("missing name")
	}
	start, end, err := parseRange(req.GetStart(), req.GetEnd(), s.now())
	if err != nil {
		return nil, err
	}
	qs, err := parseQuantiles(req.GetQuantiles())
	if err != nil {
		return nil, err
	}
	rms, err := s.st.Metrics(ctx, req.GetName(), start, end)
	if err != nil {
		return nil, s.storeError(ctx, "get metric", err)
	}
	return metricResponse(req.GetName(), rms, qs), nil
}

// storeError converts an error of the store into a gRPC status: NotFound for
// store.ErrNotFound, the context's status when ctx is done, Internal (logged)
// otherwise. op names the operation, as in "list services".
func (s *Service) storeError(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return status.Errorf(codes.NotFound, "%s: %v", op, err)
	case errors.Is(err, ErrUnavailable), errors.Is(err, store.ErrWarmingUp):
		s.logger.Warn("query unavailable", "op", op, "err", err)
		return status.Errorf(codes.Unavailable, "%s: %v", op, err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	s.logger.Error("query failed", "op", op, "err", err)
	return status.Errorf(codes.Internal, "%s: %v", op, err)
}

// traceSummaries converts store summaries, keeping at most limit of them.
func traceSummaries(sums []store.TraceSummary, limit int) []*querypb.TraceSummary {
	if limit > 0 && len(sums) > limit {
		sums = sums[:limit]
	}
	out := make([]*querypb.TraceSummary, 0, len(sums))
	for _, ts := range sums {
		services := ts.Services
		if services == nil {
			services = []string{}
		}
		out = append(out, &querypb.TraceSummary{
			TraceId:           ts.TraceID.String(),
			RootServiceName:   ts.RootService,
			RootOperation:     ts.RootOperation,
			StartTimeUnixNano: unixNano(ts.Start),
			DurationNanos:     int64(ts.Duration),
			SpanCount:         int64(ts.SpanCount),
			ErrorCount:        int64(ts.ErrorCount),
			Services:          services,
			MatchedSpanId:     matchedSpanID(ts.MatchedSpan),
		})
	}
	return out
}

// matchedSpanID is the hex form of a summary's matched span, "" if none.
func matchedSpanID(id [8]byte) string {
	if id == [8]byte{} {
		return ""
	}
	return hex.EncodeToString(id[:])
}

// unixNano is t.UnixNano, with 0 for the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
