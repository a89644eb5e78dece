package query

import (
	"context"
	"errors"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/policies"
	"github.com/flowscope/flowscope/policies/monitor"
	"github.com/flowscope/flowscope/query/querypb"
)

// DefaultPolicyRange is the range ListPolicies evaluates without start and
// end: the last 5 minutes, as the background evaluation does.
const DefaultPolicyRange = 5 * time.Minute

// Policies is what the query service needs of the flow policies.
// *monitor.Runtime implements it.
type Policies interface {
	// Set returns the policies in use.
	Set() *policies.Set
	// Status reports the policies file and its last reload.
	Status() monitor.Status
	// Reload rereads the policies file, keeping the policies in use when
	// it does not load.
	Reload(ctx context.Context) error
	// Violations checks the policies over [start, end].
	Violations(ctx context.Context, start, end time.Time) ([]monitor.Violation, error)
	// Problems lists what the policies refer to that does not exist.
	Problems(ctx context.Context) []string
	// EdgeViolations returns, for the edges of g (at level), the policies
	// each violates, keyed by source + "\x00" + target.
	EdgeViolations(ctx context.Context, level aggregate.Level, g *aggregate.Graph) map[string][]string
}

var errNoPoliciesFile = status.Error(codes.FailedPrecondition, "no policies file configured (--policies)")

// ListPolicies implements querypb.QueryServiceServer. Without policies it
// answers an empty list.
func (s *Service) ListPolicies(ctx context.Context, req *querypb.ListPoliciesRequest) (*querypb.ListPoliciesResponse, error) {
	now := s.now()
	start, end := now.Add(-DefaultPolicyRange), now
	if req.GetStart() != "" || req.GetEnd() != "" {
		var err error
		if start, end, err = parseRange(req.GetStart(), req.GetEnd(), now); err != nil {
			return nil, err
		}
	}
	resp := &querypb.ListPoliciesResponse{Policies: []*querypb.FlowPolicy{}, Problems: []string{},
		Start: formatTime(start), End: formatTime(end)}
	if s.policies == nil {
		return resp, nil
	}
	st := s.policies.Status()
	resp.Path, resp.LoadedAt, resp.LastReloadAt, resp.LastReloadError = st.Path, optionalTime(st.LoadedAt), optionalTime(st.LastReloadAt), st.LastReloadError
	set := s.policies.Set()
	if set == nil {
		return resp, nil
	}
	violations, err := s.policies.Violations(ctx, start, end)
	if err != nil {
		return nil, s.storeError(ctx, "policies", err)
	}
	byPolicy := map[string][]*querypb.PolicyViolation{}
	for _, v := range violations {
		byPolicy[v.Policy] = append(byPolicy[v.Policy], &querypb.PolicyViolation{
			Source: v.Source, Target: v.Target, Calls: float64(v.Calls),
			FirstSeen: optionalTime(v.FirstSeen), LastSeen: optionalTime(v.LastSeen),
			ExemplarTraceId: v.ExemplarTrace, ExemplarSpanId: v.ExemplarSpan,
		})
	}
	for _, p := range set.Policies {
		fp := &querypb.FlowPolicy{
			Name: p.Name, Kind: string(p.Kind), From: nonNil(p.From), To: nonNil(p.To), Architecture: p.Arch,
			Level: p.Level.String(), File: p.File, Line: clampInt32(int64(p.Line)),
			Violations: byPolicy[p.Name],
		}
		if fp.Violations == nil {
			fp.Violations = []*querypb.PolicyViolation{}
		}
		resp.Policies = append(resp.Policies, fp)
	}
	resp.Problems = append(resp.Problems, s.policies.Problems(ctx)...)
	return resp, nil
}

// ReloadPolicies implements querypb.QueryServiceServer.
func (s *Service) ReloadPolicies(ctx context.Context, _ *querypb.ReloadPoliciesRequest) (*querypb.ReloadPoliciesResponse, error) {
	if s.policies == nil || s.policies.Status().Path == "" {
		return nil, errNoPoliciesFile
	}
	if err := s.policies.Reload(ctx); err != nil {
		if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	set := s.policies.Set()
	return &querypb.ReloadPoliciesResponse{
		Policies: clampInt32(int64(len(set.Policies))),
		LoadedAt: optionalTime(s.policies.Status().LoadedAt),
	}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
