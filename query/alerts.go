package query

import (
	"cmp"
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/flowscope/flowscope/alerting"
	"github.com/flowscope/flowscope/alerting/rules"
	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

// Alerting is the alert engine the service reports on. *alerting.Engine implements it.
type Alerting interface {
	Status() alerting.RulesStatus
	Alerts() []alerting.Instance
	History(ctx context.Context, q store.AlertHistoryQuery) ([]store.AlertEvent, error)
	Reload(ctx context.Context) error
}

// Limits of GetAlertHistory's limit parameter.
const (
	// DefaultAlertHistoryLimit is the number of events answered without a
	// limit.
	DefaultAlertHistoryLimit = 100
	// MaxAlertHistoryLimit is the largest limit accepted.
	MaxAlertHistoryLimit = 10_000
)

// errNoRulesFile is ReloadRules' answer when no rules file is configured.
var errNoRulesFile = status.Error(codes.FailedPrecondition, "no rules file configured (--rules)")

// ListRules implements querypb.QueryServiceServer. Without alerting it
// answers an empty rule list.
func (s *Service) ListRules(_ context.Context, _ *querypb.ListRulesRequest) (*querypb.ListRulesResponse, error) {
	resp := &querypb.ListRulesResponse{Rules: []*querypb.AlertRule{}}
	if s.alerting == nil {
		return resp, nil
	}
	st := s.alerting.Status()
	resp.Path = st.Path
	resp.LoadedAt = optionalTime(st.LoadedAt)
	resp.LastReloadAt = optionalTime(st.LastReloadAt)
	resp.LastReloadError = st.LastReloadError
	resp.Rules = make([]*querypb.AlertRule, 0, len(st.Rules))
	for i := range st.Rules {
		resp.Rules = append(resp.Rules, alertRule(&st.Rules[i]))
	}
	slices.SortStableFunc(resp.Rules, func(a, b *querypb.AlertRule) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Name, b.Name))
	})
	return resp, nil
}

// alertRule converts a rule and its status.
func alertRule(rs *alerting.RuleStatus) *querypb.AlertRule {
	r := &rs.Rule
	out := &querypb.AlertRule{
		Name: r.Name,
		File: r.File,
		Line: clampInt32(int64(r.Line)),
		Select: &querypb.AlertSelector{
			Service:   r.Select.Service,
			Operation: r.Select.Operation,
			Kind:      r.Select.Kind,
			Source:    r.Select.Source,
			Target:    r.Select.Target,
			Synthetic: r.Select.Synthetic,
		},
		Each:                      string(r.Each),
		Signal:                    r.Signal.Name,
		Unit:                      unitName(r.Signal.Unit()),
		Comparison:                "above",
		Threshold:                 r.Threshold,
		WindowSeconds:             r.Window.Seconds(),
		ForSeconds:                r.For.Seconds(),
		KeepFiringForSeconds:      r.KeepFiringFor.Seconds(),
		MinCount:                  float64(r.MinCount),
		Labels:                    cloneMap(r.Labels),
		Annotations:               cloneMap(r.Annotations),
		Health:                    cmp.Or(rs.Health, "unknown"),
		LastError:                 rs.LastError,
		LastEvaluation:            optionalTime(rs.LastEvaluation),
		EvaluationDurationSeconds: rs.EvaluationDuration.Seconds(),
		Pending:                   clampInt32(int64(rs.Pending)),
		Firing:                    clampInt32(int64(rs.Firing)),
	}
	if r.Below {
		out.Comparison = "below"
	}
	if r.HasRecover {
		out.RecoverThreshold = wrapperspb.Double(r.Recover)
	}
	return out
}

// ListAlerts implements querypb.QueryServiceServer: the active instances,
// firing first, then pending, each group by rule and key. Without alerting
// it answers an empty list.
func (s *Service) ListAlerts(_ context.Context, req *querypb.ListAlertsRequest) (*querypb.ListAlertsResponse, error) {
	state := req.GetState()
	switch state {
	case "", store.AlertPending, store.AlertFiring:
	default:
		return nil, invalidArgf("invalid state %q: want %s or %s", state, store.AlertPending, store.AlertFiring)
	}
	resp := &querypb.ListAlertsResponse{Alerts: []*querypb.Alert{}}
	if s.alerting == nil {
		return resp, nil
	}
	for _, in := range s.alerting.Alerts() {
		if req.GetRule() != "" && in.Rule != req.GetRule() {
			continue
		}
		if state != "" && in.State != state {
			continue
		}
		resp.Alerts = append(resp.Alerts, alertInstance(&in))
	}
	slices.SortStableFunc(resp.Alerts, func(a, b *querypb.Alert) int {
		return cmp.Or(cmp.Compare(stateRank(a.State), stateRank(b.State)),
			cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Key, b.Key))
	})
	return resp, nil
}

// stateRank orders alert states: firing, pending, anything else.
func stateRank(state string) int {
	switch state {
	case store.AlertFiring:
		return 0
	case store.AlertPending:
		return 1
	}
	return 2
}

// alertInstance converts an active instance.
func alertInstance(in *alerting.Instance) *querypb.Alert {
	out := &querypb.Alert{
		Rule:         in.Rule,
		Key:          in.Key,
		Signal:       in.Signal,
		Unit:         unitName(in.Unit),
		Labels:       cloneMap(in.Labels),
		Annotations:  cloneMap(in.Annotations),
		Target:       in.Target,
		State:        in.State,
		Value:        in.Value,
		Threshold:    in.Threshold,
		ActiveAt:     optionalTime(in.ActiveAt),
		FiredAt:      optionalTime(in.FiredAt),
		Exemplars:    cloneStrings(in.Exemplars),
		Samples:      make([]*querypb.AlertSample, 0, len(in.Samples)),
		GeneratorUrl: in.GeneratorURL,
	}
	for _, sm := range in.Samples {
		out.Samples = append(out.Samples, &querypb.AlertSample{Time: optionalTime(sm.Time), Value: sm.Value})
	}
	return out
}

// GetAlertHistory implements querypb.QueryServiceServer: the stored alert
// events with time in [start, end] (an empty bound is unbounded), newest
// first. Without alerting it answers an empty list.
func (s *Service) GetAlertHistory(ctx context.Context, req *querypb.GetAlertHistoryRequest) (*querypb.GetAlertHistoryResponse, error) {
	q, err := alertHistoryQuery(req)
	if err != nil {
		return nil, err
	}
	resp := &querypb.GetAlertHistoryResponse{Events: []*querypb.AlertEvent{}}
	if s.alerting == nil {
		return resp, nil
	}
	events, err := s.alerting.History(ctx, q)
	if err != nil {
		return nil, s.storeError(ctx, "alert history", err)
	}
	// Newest first whatever the engine did; equal times keep its order.
	slices.SortStableFunc(events, func(a, b store.AlertEvent) int { return b.Time.Compare(a.Time) })
	if len(events) > q.Limit {
		events = events[:q.Limit]
	}
	resp.Events = make([]*querypb.AlertEvent, 0, len(events))
	for i := range events {
		resp.Events = append(resp.Events, alertEvent(&events[i]))
	}
	return resp, nil
}

// alertHistoryQuery validates a GetAlertHistory request.
func alertHistoryQuery(req *querypb.GetAlertHistoryRequest) (store.AlertHistoryQuery, error) {
	q := store.AlertHistoryQuery{Rule: req.GetRule()}
	var err error
	if q.Start, err = parseTime("start", req.GetStart()); err != nil {
		return q, err
	}
	if q.End, err = parseTime("end", req.GetEnd()); err != nil {
		return q, err
	}
	if !q.Start.IsZero() && !q.End.IsZero() && q.End.Before(q.Start) {
		return q, invalidArgf("invalid end %s: before start %s",
			q.End.Format(time.RFC3339Nano), q.Start.Format(time.RFC3339Nano))
	}
	switch limit := req.GetLimit(); {
	case limit == 0:
		q.Limit = DefaultAlertHistoryLimit
	case limit < 0:
		return q, invalidArgf("invalid limit %d: must be positive", limit)
	case limit > MaxAlertHistoryLimit:
		return q, invalidArgf("invalid limit %d: must be at most %d", limit, MaxAlertHistoryLimit)
	default:
		q.Limit = int(limit)
	}
	return q, nil
}

// alertEvent converts a stored alert event. Value and threshold are set for
// transitions only.
func alertEvent(ev *store.AlertEvent) *querypb.AlertEvent {
	out := &querypb.AlertEvent{
		Time:       optionalTime(ev.Time),
		Kind:       ev.Kind,
		Rule:       ev.Rule,
		Key:        ev.Key,
		Labels:     cloneMap(ev.Labels),
		From:       ev.From,
		To:         ev.To,
		Exemplars:  cloneStrings(ev.Exemplars),
		Receiver:   ev.Receiver,
		Status:     ev.Status,
		Attempt:    clampInt32(int64(ev.Attempt)),
		Outcome:    ev.Outcome,
		Error:      ev.Error,
		HttpStatus: clampInt32(int64(ev.HTTPStatus)),
	}
	if ev.Kind != store.AlertEventDelivery {
		out.Value = wrapperspb.Double(ev.Value)
		out.Threshold = wrapperspb.Double(ev.Threshold)
	}
	return out
}

// ReloadRules implements querypb.QueryServiceServer. A rule set that does
// not load is InvalidArgument with the loader's message (file, line and
// key); without alerting or a rules file it is FailedPrecondition.
func (s *Service) ReloadRules(ctx context.Context, _ *querypb.ReloadRulesRequest) (*querypb.ReloadRulesResponse, error) {
	if s.alerting == nil || s.alerting.Status().Path == "" {
		return nil, errNoRulesFile
	}
	if err := s.alerting.Reload(ctx); err != nil {
		if (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() != nil {
			return nil, status.FromContextError(ctx.Err()).Err()
		}
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	st := s.alerting.Status()
	return &querypb.ReloadRulesResponse{
		Rules:    clampInt32(int64(len(st.Rules))),
		LoadedAt: optionalTime(st.LoadedAt),
	}, nil
}

// unitName is the API name of a unit: "ns", "fraction", "per_second" or
// "count"; "" for an unknown one.
func unitName(u rules.Unit) string {
	switch u {
	case rules.UnitNanoseconds:
		return "ns"
	case rules.UnitFraction:
		return "fraction"
	case rules.UnitPerSecond:
		return "per_second"
	case rules.UnitCount:
		return "count"
	}
	return ""
}

// optionalTime is formatTime(t), or "" for the zero time.
func optionalTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return formatTime(t)
}

// cloneMap copies m, so that the response does not share the engine's map;
// nil gives an empty map.
func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return maps.Clone(m)
}

// cloneStrings copies s; nil gives an empty slice.
func cloneStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// clampInt32 converts n to int32, saturating.
func clampInt32(n int64) int32 {
	return int32(min(max(n, -1<<31), 1<<31-1))
}
