package query

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/yamlfile"
)

// Synthetics is the synthetic-check prober the service reports on and
// triggers. The collector adapts the prober to it.
type Synthetics interface {
	// SyntheticsStatus returns the checks in use and the last reload.
	SyntheticsStatus() SyntheticsStatus
	// RunNow runs the check called name now and returns its stored
	// result; the error wraps ErrUnknownCheck when no check has that name.
	RunNow(ctx context.Context, name string) (store.SyntheticRun, error)
	// Reload rereads the checks file; a set that does not validate is
	// rejected whole (the error says why) and the checks in use are kept.
	Reload(ctx context.Context) error
}

// SyntheticRuns reads stored synthetic run results. *store.DB implements it.
type SyntheticRuns interface {
	SyntheticRuns(ctx context.Context, q store.SyntheticRunQuery) ([]store.SyntheticRun, error)
	SyntheticRun(ctx context.Context, check, runID string) (store.SyntheticRun, error)
	SyntheticRunsByCorrelation(ctx context.Context, id string, limit int) ([]store.SyntheticRun, error)
	SyntheticChecks(ctx context.Context, start, end time.Time) ([]store.SyntheticCheckStats, error)
}

// SyntheticsStatus is the prober's configuration as the API lists it.
type SyntheticsStatus struct {
	// Path is the checks file or directory ("" without --synthetics).
	Path string
	// LoadedAt is when the checks in use were loaded; LastReloadAt and
	// LastReloadError describe the last reload attempt.
	LoadedAt, LastReloadAt time.Time
	LastReloadError        string
	Checks                 []SyntheticCheckInfo
}

// SyntheticCheckInfo describes one configured check.
type SyntheticCheckInfo struct {
	Name           string
	File           string
	Line           int
	Every, Timeout time.Duration
	Retries        int
	Steps          []string
	Labels         map[string]string
}

// ErrUnknownCheck is wrapped by Synthetics.RunNow's error for a check name
// that is not configured.
var ErrUnknownCheck = errors.New("unknown synthetic check")

// DefaultSyntheticRange is the range of the synthetic statistics and run
// listings when a request gives neither start nor end.
const DefaultSyntheticRange = time.Hour

// Limits of ListSyntheticRuns' limit parameter.
const (
	DefaultSyntheticRunLimit = 100
	MaxSyntheticRunLimit     = 10_000
)

var errNoSynthetics = status.Error(codes.FailedPrecondition, "no synthetic checks file configured (--synthetics)")

func (s *Service) syntheticRange(startParam, endParam string) (time.Time, time.Time, error) {
	start, end, err := parseRange(startParam, endParam, s.now())
	if err != nil {
		return start, end, err
	}
	if startParam == "" {
		start = end.Add(-DefaultSyntheticRange)
	}
	return start, end, nil
}

// ListSynthetics implements querypb.QueryServiceServer. Without synthetic
// checks it answers an empty list.
func (s *Service) ListSynthetics(ctx context.Context, req *querypb.ListSyntheticsRequest) (*querypb.ListSyntheticsResponse, error) {
	start, end, err := s.syntheticRange(req.GetStart(), req.GetEnd())
	if err != nil {
		return nil, err
	}
	resp := &querypb.ListSyntheticsResponse{Checks: []*querypb.SyntheticCheck{}}
	if s.synthetics == nil {
		return resp, nil
	}
	st := s.synthetics.SyntheticsStatus()
	resp.Path = st.Path
	resp.LoadedAt = optionalTime(st.LoadedAt)
	resp.LastReloadAt = optionalTime(st.LastReloadAt)
	resp.LastReloadError = st.LastReloadError
	stats := map[string]store.SyntheticCheckStats{}
	if s.runs != nil {
		all, err := s.runs.SyntheticChecks(ctx, start, end)
		if err != nil {
			return nil, s.storeError(ctx, "list synthetic checks", err)
		}
		for _, cs := range all {
			stats[cs.Check] = cs
		}
	}
	for _, c := range st.Checks {
		out := &querypb.SyntheticCheck{
			Name:    c.Name,
			File:    c.File,
			Line:    clampInt32(int64(c.Line)),
			Every:   yamlfile.FormatDuration(c.Every),
			Timeout: yamlfile.FormatDuration(c.Timeout),
			Retries: clampInt32(int64(c.Retries)),
			Steps:   cloneStrings(c.Steps),
			Labels:  cloneMap(c.Labels),
		}
		if cs, ok := stats[c.Name]; ok && cs.Runs > 0 {
			out.Runs = cs.Runs
			out.Failures = cs.Failures
			out.SuccessRate = wrapperspb.Double(float64(cs.Runs-cs.Failures) / float64(cs.Runs))
			out.P50Ms = wrapperspb.Double(durMs(cs.P50))
			out.P99Ms = wrapperspb.Double(durMs(cs.P99))
			out.LastRun = syntheticResult(&cs.Last, false)
		}
		resp.Checks = append(resp.Checks, out)
	}
	slices.SortFunc(resp.Checks, func(a, b *querypb.SyntheticCheck) int { return cmp.Compare(a.Name, b.Name) })
	return resp, nil
}

// ListSyntheticRuns implements querypb.QueryServiceServer.
func (s *Service) ListSyntheticRuns(ctx context.Context, req *querypb.ListSyntheticRunsRequest) (*querypb.ListSyntheticRunsResponse, error) {
	if req.GetCheck() == "" {
		return nil, invalidArgf("missing check")
	}
	start, end, err := s.syntheticRange(req.GetStart(), req.GetEnd())
	if err != nil {
		return nil, err
	}
	limit := int(req.GetLimit())
	switch {
	case limit == 0:
		limit = DefaultSyntheticRunLimit
	case limit < 0:
		return nil, invalidArgf("invalid limit %d: must be positive", limit)
	case limit > MaxSyntheticRunLimit:
		return nil, invalidArgf("invalid limit %d: must be at most %d", limit, MaxSyntheticRunLimit)
	}
	resp := &querypb.ListSyntheticRunsResponse{Runs: []*querypb.SyntheticResult{}}
	if s.runs == nil {
		return resp, nil
	}
	runs, err := s.runs.SyntheticRuns(ctx, store.SyntheticRunQuery{Check: req.GetCheck(), Start: start, End: end, Limit: limit})
	if err != nil {
		return nil, s.storeError(ctx, "list synthetic runs", err)
	}
	for i := range runs {
		resp.Runs = append(resp.Runs, syntheticResult(&runs[i], true))
	}
	return resp, nil
}

// GetSyntheticRun implements querypb.QueryServiceServer.
func (s *Service) GetSyntheticRun(ctx context.Context, req *querypb.GetSyntheticRunRequest) (*querypb.GetSyntheticRunResponse, error) {
	if req.GetCheck() == "" || req.GetRunId() == "" {
		return nil, invalidArgf("missing check or run_id")
	}
	if s.runs == nil {
		return nil, status.Errorf(codes.NotFound, "get synthetic run: run %s of check %s: %v", req.GetRunId(), req.GetCheck(), store.ErrNotFound)
	}
	run, err := s.runs.SyntheticRun(ctx, req.GetCheck(), req.GetRunId())
	if err != nil {
		return nil, s.storeError(ctx, "get synthetic run", err)
	}
	out := syntheticResult(&run, true)
	if out.Trace, err = s.joinedTrace(ctx, run.TraceID); err != nil {
		return nil, err
	}
	return &querypb.GetSyntheticRunResponse{Run: out}, nil
}

// RunSynthetic implements querypb.QueryServiceServer.
func (s *Service) RunSynthetic(ctx context.Context, req *querypb.RunSyntheticRequest) (*querypb.RunSyntheticResponse, error) {
	if req.GetCheck() == "" {
		return nil, invalidArgf("missing check")
	}
	if s.synthetics == nil {
		return nil, status.Errorf(codes.NotFound, "run synthetic check %q: no synthetic checks are configured (--synthetics)", req.GetCheck())
	}
	run, err := s.synthetics.RunNow(ctx, req.GetCheck())
	switch {
	case errors.Is(err, ErrUnknownCheck):
		return nil, status.Errorf(codes.NotFound, "run synthetic check %q: %v", req.GetCheck(), err)
	case err != nil:
		return nil, s.storeError(ctx, "run synthetic check", err)
	}
	out := syntheticResult(&run, true)
	if out.Trace, err = s.joinedTrace(ctx, run.TraceID); err != nil {
		return nil, err
	}
	return &querypb.RunSyntheticResponse{Run: out}, nil
}

// ReloadSynthetics implements querypb.QueryServiceServer: FailedPrecondition
// without a checks file, InvalidArgument (with every validation error) when
// the file does not validate.
func (s *Service) ReloadSynthetics(ctx context.Context, _ *querypb.ReloadSyntheticsRequest) (*querypb.ReloadSyntheticsResponse, error) {
	if s.synthetics == nil || s.synthetics.SyntheticsStatus().Path == "" {
		return nil, errNoSynthetics
	}
	if err := s.synthetics.Reload(ctx); err != nil {
		return nil, status.Errorf(codes.InvalidArgument, "reload synthetic checks: %v", err)
	}
	return &querypb.ReloadSyntheticsResponse{Checks: clampInt32(int64(len(s.synthetics.SyntheticsStatus().Checks)))}, nil
}

// joinedTrace summarizes the run's trace: every service with spans in it
// (the prober's node as "synthetic:<check>"), spans and errors.
func (s *Service) joinedTrace(ctx context.Context, traceID string) (*querypb.SyntheticTraceSummary, error) {
	out := &querypb.SyntheticTraceSummary{Services: []string{}}
	id, err := ParseTraceID(traceID)
	if err != nil {
		return out, nil // a run without a trace (none was written)
	}
	td, err := s.st.Trace(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, s.storeError(ctx, "get synthetic run trace", err)
	}
	out.Found = true
	seen := map[string]bool{}
	for _, rs := range td.GetResourceSpans() {
		svc := resourceService(rs)
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				out.SpanCount++
				if sp.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR {
					out.ErrorCount++
				}
			}
			if len(ss.GetSpans()) > 0 && !seen[svc] {
				seen[svc] = true
				out.Services = append(out.Services, svc)
			}
		}
	}
	slices.Sort(out.Services)
	return out, nil
}

// resourceService names a resource's node as the flow graph does:
// "synthetic:<check>" for the prober's resources, service.name otherwise.
func resourceService(rs *tracepb.ResourceSpans) string {
	var svc, check string
	for _, kv := range rs.GetResource().GetAttributes() {
		switch kv.GetKey() {
		case "service.name":
			svc = kv.GetValue().GetStringValue()
		case "synthetic.check":
			check = kv.GetValue().GetStringValue()
		}
	}
	if check != "" {
		return "synthetic:" + check
	}
	return svc
}

// syntheticResult converts a stored run; withSteps false leaves the steps
// out (check listings).
func syntheticResult(r *store.SyntheticRun, withSteps bool) *querypb.SyntheticResult {
	out := &querypb.SyntheticResult{
		Check:         r.Check,
		RunId:         r.RunID,
		CorrelationId: r.CorrelationID,
		TraceId:       r.TraceID,
		Trigger:       r.Trigger,
		Start:         optionalTime(r.Start),
		DurationMs:    durMs(r.Duration),
		Ok:            r.OK,
		Error:         r.Error,
		Attempt:       clampInt32(int64(r.Attempt)),
		Steps:         []*querypb.SyntheticStep{},
	}
	if !withSteps {
		return out
	}
	for i := range r.Steps {
		st := &r.Steps[i]
		ps := &querypb.SyntheticStep{
			Name:              st.Name,
			Method:            st.Method,
			Url:               st.URL,
			Status:            clampInt32(int64(st.Status)),
			Ok:                st.OK,
			Skipped:           st.Skipped,
			ContinueOnFailure: st.ContinueOnFailure,
			SpanId:            st.SpanID,
			Timings: &querypb.SyntheticTimings{
				DnsMs:       durMs(st.Timings.DNS),
				ConnectMs:   durMs(st.Timings.Connect),
				TlsMs:       durMs(st.Timings.TLS),
				FirstByteMs: durMs(st.Timings.FirstByte),
				TotalMs:     durMs(st.Timings.Total),
			},
			Assertions: make([]*querypb.SyntheticAssertion, 0, len(st.Assertions)),
			Error:      st.Error,
			Body:       st.Body,
		}
		for _, a := range st.Assertions {
			ps.Assertions = append(ps.Assertions, &querypb.SyntheticAssertion{
				Type: a.Type, Target: a.Target, Expected: a.Expected, Actual: a.Actual, Ok: a.OK,
			})
		}
		out.Steps = append(out.Steps, ps)
	}
	return out
}

// durMs is d in milliseconds.
func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
