package query

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flowscope/flowscope/alerting"
	"github.com/flowscope/flowscope/alerting/rules"
	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

// fakeAlerting is an Alerting over fixed rule statuses, instances and
// events. It records the last history query and counts reloads.
type fakeAlerting struct {
	mu          sync.Mutex
	status      alerting.RulesStatus
	instances   []alerting.Instance
	events      []store.AlertEvent // oldest first, as stored
	historyErr  error
	reloadErr   error
	reloadAt    time.Time
	reloads     int
	lastHistory store.AlertHistoryQuery
}

var _ Alerting = (*fakeAlerting)(nil)

func (f *fakeAlerting) Status() alerting.RulesStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeAlerting) Alerts() []alerting.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.instances)
}

// History filters like the store: rule, [Start, End], newest first, at most
// Limit (0: 100).
func (f *fakeAlerting) History(_ context.Context, q store.AlertHistoryQuery) ([]store.AlertEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastHistory = q
	if f.historyErr != nil {
		return nil, f.historyErr
	}
	limit := q.Limit
	if limit == 0 {
		limit = 100
	}
	var out []store.AlertEvent
	for i := len(f.events) - 1; i >= 0 && len(out) < limit; i-- {
		ev := f.events[i]
		if (q.Rule != "" && ev.Rule != q.Rule) ||
			(!q.Start.IsZero() && ev.Time.Before(q.Start)) ||
			(!q.End.IsZero() && ev.Time.After(q.End)) {
			continue
		}
		out = append(out, ev)
	}
	return out, nil
}

func (f *fakeAlerting) Reload(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	f.status.LastReloadAt = f.reloadAt
	if f.reloadErr != nil {
		f.status.LastReloadError = f.reloadErr.Error()
		return f.reloadErr
	}
	f.status.LastReloadError = ""
	f.status.LoadedAt = f.reloadAt
	return nil
}

// Times of the alerting fixture, shortly before testNow.
var (
	alertsLoaded = time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)
	alertsEval   = time.Date(2024, 5, 1, 11, 59, 59, 500_000_000, time.UTC)
	alertsActive = time.Date(2024, 5, 1, 11, 58, 0, 0, time.UTC)
	alertsFired  = time.Date(2024, 5, 1, 11, 58, 30, 0, time.UTC)
)

const (
	exemplarA = "5b8efaf16e7d4c90a1b2c3d4e5f60718"
	exemplarB = "0000000000000000463ac35c9f6413ad"
)

// newFakeAlerting returns the alerting fixture: three rules (one with
// hysteresis, one below-rule that failed, one never evaluated), three
// active instances given out of order, and the history of one instance with
// its deliveries. A label and an annotation hold <script> and quotes.
func newFakeAlerting() *fakeAlerting {
	slow := rules.Rule{
		Name: "CheckoutSlow", File: "/etc/flowscope/rules.yml", Line: 2,
		Select:    rules.Selector{Service: "checkout"},
		Each:      rules.EachOperation,
		Signal:    rules.Signal{Kind: rules.SignalQuantile, Quantile: 0.99, Name: "p99"},
		Threshold: 250e6, Recover: 200e6, HasRecover: true,
		Window: time.Minute, MinCount: 20, For: 30 * time.Second, KeepFiringFor: time.Minute,
		Labels:      map[string]string{"severity": "page", "team": `<script>alert("x")</script>`},
		Annotations: map[string]string{"summary": `p99 of {{ .Target }} is {{ .Value }} > "250ms"`},
	}
	errs := rules.Rule{
		Name: "EdgeErrors", File: "/etc/flowscope/rules.yml", Line: 14,
		Select:    rules.Selector{Source: "frontend"},
		Each:      rules.EachEdge,
		Signal:    rules.Signal{Kind: rules.SignalErrorRate, Name: "error_rate"},
		Threshold: 0.05,
		Window:    2 * time.Minute, MinCount: 10,
		Labels: map[string]string{"severity": "ticket"},
	}
	quiet := rules.Rule{
		Name: "TrafficDrop", File: "/etc/flowscope/a.yml", Line: 3,
		Select: rules.Selector{Service: "frontend", Operation: "GET /", Kind: "server"},
		Signal: rules.Signal{Kind: rules.SignalRate, Name: "rate"},
		Below:  true, Threshold: 1.5,
		Window: 10 * time.Second,
	}
	synth := rules.Rule{
		Name: "JourneyFails", File: "/etc/flowscope/rules.yml", Line: 25,
		Select:    rules.Selector{Synthetic: "checkout-journey"},
		Signal:    rules.Signal{Kind: rules.SignalSyntheticFailureRate, Name: "synthetic_failure_rate"},
		Threshold: 0,
		Window:    5 * time.Minute,
	}
	slowLabels := func(op string) map[string]string {
		return map[string]string{"alertname": "CheckoutSlow", "severity": "page",
			"team": `<script>alert("x")</script>`, "service": "checkout", "operation": op}
	}
	edgeLabels := map[string]string{"alertname": "EdgeErrors", "severity": "ticket",
		"source": "frontend", "target": "payments"}
	return &fakeAlerting{
		reloadAt: time.Date(2024, 5, 1, 11, 59, 0, 0, time.UTC),
		status: alerting.RulesStatus{
			Path:         "/etc/flowscope/rules.yml",
			LoadedAt:     alertsLoaded,
			LastReloadAt: alertsLoaded,
			Rules: []alerting.RuleStatus{
				{Rule: slow, Health: "ok", LastEvaluation: alertsEval, EvaluationDuration: 1500 * time.Microsecond, Pending: 1, Firing: 1},
				{Rule: errs, Health: "ok", LastEvaluation: alertsEval, EvaluationDuration: 250 * time.Microsecond, Pending: 0, Firing: 1},
				{Rule: quiet, Health: "unknown"},
				{Rule: synth, Health: "error", LastError: "signal synthetic_failure_rate is not supported yet",
					LastEvaluation: alertsEval},
			},
		},
		instances: []alerting.Instance{
			{
				Rule: "CheckoutSlow", Key: "operation=GET /cart,service=checkout",
				Signal: "p99", Unit: rules.UnitNanoseconds,
				Labels:      slowLabels("GET /cart"),
				Annotations: map[string]string{"summary": `p99 of checkout is 260ms > "250ms"`},
				Target:      "checkout", State: store.AlertPending,
				Value: 260e6, Threshold: 250e6, ActiveAt: alertsFired,
				Exemplars: []string{exemplarA},
				Samples: []alerting.Sample{
					{Time: alertsFired, Value: 255e6},
					{Time: alertsFired.Add(time.Second), Value: 260e6},
				},
				GeneratorURL: "http://127.0.0.1:8686/#/alerts?rule=CheckoutSlow",
			},
			{
				Rule: "EdgeErrors", Key: "source=frontend,target=payments",
				Signal: "error_rate", Unit: rules.UnitFraction,
				Labels:      edgeLabels,
				Annotations: map[string]string{"exemplar": "http://127.0.0.1:8686/#/traces/" + exemplarB},
				Target:      "frontend → payments", State: store.AlertFiring,
				Value: 0.125, Threshold: 0.05, ActiveAt: alertsActive, FiredAt: alertsActive,
				Exemplars:    []string{exemplarB, exemplarA},
				Samples:      []alerting.Sample{{Time: alertsEval, Value: 0.125}},
				GeneratorURL: "http://127.0.0.1:8686/#/alerts?rule=EdgeErrors",
			},
			{
				Rule: "CheckoutSlow", Key: "operation=POST /checkout,service=checkout",
				Signal: "p99", Unit: rules.UnitNanoseconds,
				Labels:      slowLabels("POST /checkout"),
				Annotations: map[string]string{"summary": `p99 of checkout is 1.2s > "250ms"`},
				Target:      "checkout", State: store.AlertFiring,
				Value: 1.2e9, Threshold: 250e6, ActiveAt: alertsActive, FiredAt: alertsFired,
				GeneratorURL: "http://127.0.0.1:8686/#/alerts?rule=CheckoutSlow",
			},
		},
		events: []store.AlertEvent{
			{Time: alertsActive, Kind: store.AlertEventTransition, Rule: "EdgeErrors",
				Key: "source=frontend,target=payments", Labels: edgeLabels,
				From: store.AlertInactive, To: store.AlertFiring, Value: 0.125, Threshold: 0.05,
				Exemplars: []string{exemplarB, exemplarA}},
			{Time: alertsActive.Add(time.Second), Kind: store.AlertEventDelivery, Rule: "EdgeErrors",
				Key: "source=frontend,target=payments", Labels: edgeLabels,
				Receiver: "webhook http://hooks.example/alert", Status: store.AlertFiring,
				Attempt: 1, Outcome: "retrying", Error: `POST http://hooks.example/alert: 503 "busy"`, HTTPStatus: 503},
			{Time: alertsActive.Add(3 * time.Second), Kind: store.AlertEventDelivery, Rule: "EdgeErrors",
				Key: "source=frontend,target=payments", Labels: edgeLabels,
				Receiver: "webhook http://hooks.example/alert", Status: store.AlertFiring,
				Attempt: 2, Outcome: "sent", HTTPStatus: 200},
			{Time: alertsFired, Kind: store.AlertEventTransition, Rule: "CheckoutSlow",
				Key: "operation=POST /checkout,service=checkout", Labels: slowLabels("POST /checkout"),
				From: store.AlertPending, To: store.AlertFiring, Value: 1.2e9, Threshold: 250e6},
			{Time: alertsFired, Kind: store.AlertEventTransition, Rule: "CheckoutSlow",
				Key: "operation=GET /cart,service=checkout", Labels: slowLabels("GET /cart"),
				From: store.AlertInactive, To: store.AlertPending, Value: 260e6, Threshold: 250e6,
				Exemplars: []string{exemplarA}},
		},
	}
}

// newAlertServer serves the gateway over the fake store and alerting a
// (nil: no alerting).
func newAlertServer(t *testing.T, a Alerting) *httptest.Server {
	t.Helper()
	svc := NewService(newFakeStore(), ServiceOptions{
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      func() time.Time { return testNow },
		Alerting: a,
	})
	h, err := NewGatewayHandler(t.Context(), svc)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// doRequest sends method path (with body when not nil) to srv.
func doRequest(t *testing.T, srv *httptest.Server, method, path string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// TestAlertsGatewayGolden pins the JSON of the alerting endpoints, errors
// included. Regenerate with: go test ./query -run TestAlertsGatewayGolden -update
func TestAlertsGatewayGolden(t *testing.T) {
	failing := newFakeAlerting()
	failing.reloadErr = &rules.Error{File: "/etc/flowscope/rules.yml", Line: 14, Key: "rules[1].window", Msg: `must be at least 10s, got "5s"`}
	noPath := newFakeAlerting()
	noPath.status.Path = ""
	// reloadFailed is the state failing reaches after its reload: the old
	// rules in use, the error reported.
	reloadFailed := newFakeAlerting()
	reloadFailed.status.LastReloadAt = reloadFailed.reloadAt
	reloadFailed.status.LastReloadError = failing.reloadErr.Error()
	broken := newFakeAlerting()
	broken.historyErr = errBroken
	servers := map[string]*httptest.Server{
		"full":         newAlertServer(t, newFakeAlerting()),
		"none":         newAlertServer(t, nil),
		"failing":      newAlertServer(t, failing),
		"reloadFailed": newAlertServer(t, reloadFailed),
		"nopath":       newAlertServer(t, noPath),
		"broken":       newAlertServer(t, broken),
	}
	tests := []struct {
		golden string
		server string // default "full"
		method string // default GET
		path   string
		body   string
		status int
	}{
		{"rules", "", "", "/api/v1/rules", "", 200},
		{"rules_no_alerting", "none", "", "/api/v1/rules", "", 200},
		{"rules_after_failed_reload", "reloadFailed", "", "/api/v1/rules", "", 200},
		{"alerts", "", "", "/api/v1/alerts", "", 200},
		{"alerts_firing", "", "", "/api/v1/alerts?state=firing", "", 200},
		{"alerts_pending", "", "", "/api/v1/alerts?state=pending", "", 200},
		{"alerts_rule", "", "", "/api/v1/alerts?rule=EdgeErrors", "", 200},
		{"alerts_no_alerting", "none", "", "/api/v1/alerts", "", 200},
		{"alerts_bad_state", "", "", "/api/v1/alerts?state=resolved", "", 400},
		{"alert_history", "", "", "/api/v1/alerts/history", "", 200},
		{"alert_history_rule_range", "", "", "/api/v1/alerts/history?rule=EdgeErrors&start=2024-05-01T11:58:00Z&end=1714564681000&limit=2", "", 200},
		{"alert_history_no_alerting", "none", "", "/api/v1/alerts/history", "", 200},
		{"alert_history_bad_limit", "", "", "/api/v1/alerts/history?limit=many", "", 400},
		{"alert_history_negative_limit", "", "", "/api/v1/alerts/history?limit=-1", "", 400},
		{"alert_history_limit_too_big", "", "", "/api/v1/alerts/history?limit=10001", "", 400},
		{"alert_history_bad_start", "", "", "/api/v1/alerts/history?start=yesterday", "", 400},
		{"alert_history_end_before_start", "", "", "/api/v1/alerts/history?start=2024-05-01T12:00:00Z&end=2024-05-01T11:00:00Z", "", 400},
		{"alert_history_store_error", "broken", "", "/api/v1/alerts/history", "", 500},
		{"rules_reload", "", http.MethodPost, "/api/v1/rules:reload", "", 200},
		{"rules_reload_json_body", "", http.MethodPost, "/api/v1/rules:reload", "{}", 200},
		{"rules_reload_bad_body", "", http.MethodPost, "/api/v1/rules:reload", "{rules", 400},
		{"rules_reload_failed", "failing", http.MethodPost, "/api/v1/rules:reload", "", 400},
		{"rules_reload_no_rules_file", "nopath", http.MethodPost, "/api/v1/rules:reload", "", 400},
		{"rules_reload_no_alerting", "none", http.MethodPost, "/api/v1/rules:reload", "", 400},
		{"rules_reload_get", "", http.MethodGet, "/api/v1/rules:reload", "", 405},
		{"rules_post", "", http.MethodPost, "/api/v1/rules", "", 405},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			srv := servers[cmpOr(tt.server, "full")]
			var body io.Reader
			if tt.body != "" {
				body = strings.NewReader(tt.body)
			}
			resp, b := doRequest(t, srv, cmpOr(tt.method, http.MethodGet), tt.path, body)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d; body %s", resp.StatusCode, tt.status, b)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if tt.status >= 400 {
				var eb errorBody
				if err := json.Unmarshal(b, &eb); err != nil || eb.Code != tt.status || eb.Message == "" {
					t.Errorf("error body %s: want {code: %d, message}", b, tt.status)
				}
			}
			checkGolden(t, filepath.Join("testdata", "golden", tt.golden+".json"), b)
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestAlertsAllowHeader checks that a 405 names the route's method.
func TestAlertsAllowHeader(t *testing.T) {
	srv := newAlertServer(t, newFakeAlerting())
	for path, want := range map[string]string{
		"/api/v1/rules:reload": http.MethodPost,
		"/api/v1/rules":        http.MethodGet,
	} {
		method := http.MethodPost
		if want == http.MethodPost {
			method = http.MethodGet
		}
		resp, _ := doRequest(t, srv, method, path, nil)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != want {
			t.Errorf("%s %s: status %d, Allow %q; want 405, %q", method, path, resp.StatusCode, resp.Header.Get("Allow"), want)
		}
	}
}

// TestAlertHistoryParameters checks what the REST parameters become in the
// history query.
func TestAlertHistoryParameters(t *testing.T) {
	fa := newFakeAlerting()
	srv := newAlertServer(t, fa)
	for path, want := range map[string]store.AlertHistoryQuery{
		"/api/v1/alerts/history": {Limit: DefaultAlertHistoryLimit},
		"/api/v1/alerts/history?rule=CheckoutSlow&start=1714557600000&end=2024-05-01T11:00:00.5Z&limit=10000": {
			Rule:  "CheckoutSlow",
			Start: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC),
			End:   time.Date(2024, 5, 1, 11, 0, 0, 500_000_000, time.UTC),
			Limit: MaxAlertHistoryLimit,
		},
		"/api/v1/alerts/history?end=2024-05-01T11:00:00Z&limit=1": {
			End: time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC), Limit: 1,
		},
	} {
		resp, b := doRequest(t, srv, http.MethodGet, path, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		fa.mu.Lock()
		got := fa.lastHistory
		fa.mu.Unlock()
		if got.Rule != want.Rule || !got.Start.Equal(want.Start) || !got.End.Equal(want.End) || got.Limit != want.Limit {
			t.Errorf("GET %s: query %+v, want %+v", path, got, want)
		}
	}
}

// TestReloadRules checks that a reload reaches the engine once per POST
// and that its outcome shows in ListRules.
func TestReloadRules(t *testing.T) {
	fa := newFakeAlerting()
	svc := NewService(newFakeStore(), ServiceOptions{Alerting: fa})
	resp, err := svc.ReloadRules(t.Context(), &querypb.ReloadRulesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetRules() != 4 || resp.GetLoadedAt() != "2024-05-01T11:59:00Z" {
		t.Errorf("reload = %v", resp)
	}
	fa.mu.Lock()
	fa.reloadErr = errors.New("rules.yml:3: rules[0].above: not a duration")
	fa.mu.Unlock()
	_, err = svc.ReloadRules(t.Context(), &querypb.ReloadRulesRequest{})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || st.Message() != "rules.yml:3: rules[0].above: not a duration" {
		t.Errorf("failed reload = %v", err)
	}
	rs, err := svc.ListRules(t.Context(), &querypb.ListRulesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rs.GetLastReloadError() != "rules.yml:3: rules[0].above: not a duration" || rs.GetLoadedAt() != "2024-05-01T11:59:00Z" {
		t.Errorf("after failed reload: lastReloadError %q, loadedAt %q", rs.GetLastReloadError(), rs.GetLoadedAt())
	}
	if fa.reloads != 2 {
		t.Errorf("reloads = %d, want 2", fa.reloads)
	}

	// A cancelled request reports the cancellation, not InvalidArgument.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	fa.mu.Lock()
	fa.reloadErr = ctx.Err()
	fa.mu.Unlock()
	_, err = svc.ReloadRules(ctx, &querypb.ReloadRulesRequest{})
	if status.Code(err) != codes.Canceled {
		t.Errorf("cancelled reload = %v", err)
	}
}

// TestAlertHistoryOrder checks that the service answers newest first and
// at most limit events even when the engine does not.
func TestAlertHistoryOrder(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)
	svc := NewService(newFakeStore(), ServiceOptions{Alerting: unorderedHistory{
		{Time: t0, Rule: "a", Kind: store.AlertEventTransition},
		{Time: t0.Add(2 * time.Second), Rule: "c", Kind: store.AlertEventDelivery},
		{Time: t0.Add(time.Second), Rule: "b1", Kind: store.AlertEventTransition},
		{Time: t0.Add(time.Second), Rule: "b2", Kind: store.AlertEventTransition},
	}})
	resp, err := svc.GetAlertHistory(t.Context(), &querypb.GetAlertHistoryRequest{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range resp.GetEvents() {
		got = append(got, ev.GetRule())
	}
	if want := []string{"c", "b1", "b2"}; !slices.Equal(got, want) {
		t.Errorf("rules = %v, want %v", got, want)
	}
	if ev := resp.GetEvents()[0]; ev.GetValue() != nil || ev.GetThreshold() != nil {
		t.Errorf("delivery has value %v, threshold %v; want null", ev.GetValue(), ev.GetThreshold())
	}
	if ev := resp.GetEvents()[1]; ev.GetValue() == nil || ev.GetThreshold() == nil {
		t.Errorf("transition has value %v, threshold %v; want 0", ev.GetValue(), ev.GetThreshold())
	}
}

// unorderedHistory is an Alerting whose History ignores the query.
type unorderedHistory []store.AlertEvent

func (unorderedHistory) Status() alerting.RulesStatus { return alerting.RulesStatus{} }
func (unorderedHistory) Alerts() []alerting.Instance  { return nil }
func (u unorderedHistory) History(context.Context, store.AlertHistoryQuery) ([]store.AlertEvent, error) {
	return slices.Clone(u), nil
}
func (unorderedHistory) Reload(context.Context) error { return nil }

// TestUnitNames pins the API name of every unit.
func TestUnitNames(t *testing.T) {
	for u, want := range map[rules.Unit]string{
		rules.UnitNanoseconds: "ns",
		rules.UnitFraction:    "fraction",
		rules.UnitPerSecond:   "per_second",
		rules.UnitCount:       "count",
		0:                     "",
	} {
		if got := unitName(u); got != want {
			t.Errorf("unitName(%d) = %q, want %q", u, got, want)
		}
	}
}
