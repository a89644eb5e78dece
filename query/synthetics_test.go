package query

import (
	"context"
	"errors"
	"fmt"
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

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/query/querypb"
	"github.com/flowscope/flowscope/store"
)

// The synthetic fixture: check journey with two runs (the newer failed at
// its second step, the third skipped) and check idle, configured but never
// run. Run 1's trace is in the fake store, joined to the frontend's span.
var (
	synthTrace = store.TraceID{0xc0, 0xff, 0xee, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
	synthRun1  = store.SyntheticRun{
		Check: "journey", RunID: "00000000000000a1", CorrelationID: "0b3c4d5e-6f70-4182-93a4-b5c6d7e8f901",
		TraceID: synthTrace.String(), Trigger: "schedule", Start: t0, Duration: 120 * time.Millisecond, OK: true, Attempt: 1,
		Steps: []store.SyntheticStep{{
			Name: "login", Method: "POST", URL: "http://shop.local:8080/login?key=****", Status: 200, OK: true, SpanID: "0102030405060708",
			Timings: store.SyntheticTimings{DNS: time.Millisecond, Connect: 2 * time.Millisecond, FirstByte: 40 * time.Millisecond, Total: 42 * time.Millisecond},
			Assertions: []store.SyntheticAssertion{
				{Type: "status", Expected: "200", Actual: "200", OK: true},
				{Type: "jsonpath_equals", Target: "$.ok", Expected: "true", Actual: "true", OK: true},
			},
		}},
	}
	synthRun2 = store.SyntheticRun{
		Check: "journey", RunID: "00000000000000a2", CorrelationID: "1c4d5e6f-7081-4293-a4b5-c6d7e8f90a12",
		TraceID: "00000000000000000000000000000bad", Trigger: "manual", Start: t1, Duration: 812 * time.Millisecond,
		Error: "cart: status: expected 200, got 503", Attempt: 2,
		Steps: []store.SyntheticStep{
			{Name: "login", Method: "POST", URL: "http://shop.local:8080/login", Status: 200, OK: true, SpanID: "1112131415161718",
				Timings: store.SyntheticTimings{Connect: time.Millisecond, FirstByte: 10 * time.Millisecond, Total: 11 * time.Millisecond}},
			{Name: "cart", Method: "GET", URL: "http://shop.local:8080/cart", Status: 503, SpanID: "2122232425262728",
				Timings:    store.SyntheticTimings{Connect: time.Millisecond, FirstByte: 800 * time.Millisecond, Total: 801 * time.Millisecond},
				Assertions: []store.SyntheticAssertion{{Type: "status", Expected: "200", Actual: "503"}, {Type: "latency_below", Expected: "< 500ms", Actual: "801ms"}},
				Error:      "status: expected 200, got 503", Body: `<html>upstream <b>down</b></html>`},
			{Name: "checkout", Method: "POST", URL: "http://shop.local:8080/checkout", Skipped: true},
		},
	}
)

// fakeSynthetics is a prober over fixed checks; RunNow "runs" a check by
// returning (and storing) a copy of run 1 under a new ID.
type fakeSynthetics struct {
	mu        sync.Mutex
	status    SyntheticsStatus
	reloadErr error
	reloads   int
	runs      *fakeRuns
}

var _ Synthetics = (*fakeSynthetics)(nil)

func (f *fakeSynthetics) SyntheticsStatus() SyntheticsStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeSynthetics) RunNow(_ context.Context, name string) (store.SyntheticRun, error) {
	if !slices.ContainsFunc(f.SyntheticsStatus().Checks, func(c SyntheticCheckInfo) bool { return c.Name == name }) {
		return store.SyntheticRun{}, fmt.Errorf("%w: %q", ErrUnknownCheck, name)
	}
	run := synthRun1
	run.Check, run.RunID, run.Trigger = name, "00000000000000a3", "manual"
	f.runs.add(run)
	return run, nil
}

func (f *fakeSynthetics) Reload(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads++
	f.status.LastReloadAt = t1
	if f.reloadErr != nil {
		f.status.LastReloadError = f.reloadErr.Error()
		return f.reloadErr
	}
	f.status.LastReloadError, f.status.LoadedAt = "", t1
	return nil
}

// fakeRuns stores runs in memory and filters like the store; err makes
// every read fail.
type fakeRuns struct {
	mu        sync.Mutex
	runs      []store.SyntheticRun // oldest first
	err       error
	lastQuery store.SyntheticRunQuery
}

var _ SyntheticRuns = (*fakeRuns)(nil)

func (f *fakeRuns) add(r store.SyntheticRun) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, r)
}

// newestFirst returns the runs keep accepts, newest first.
func (f *fakeRuns) newestFirst(keep func(store.SyntheticRun) bool) []store.SyntheticRun {
	var out []store.SyntheticRun
	for i := len(f.runs) - 1; i >= 0; i-- {
		if keep(f.runs[i]) {
			out = append(out, f.runs[i])
		}
	}
	return out
}

func (f *fakeRuns) SyntheticRuns(_ context.Context, q store.SyntheticRunQuery) ([]store.SyntheticRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastQuery = q
	if f.err != nil {
		return nil, f.err
	}
	out := f.newestFirst(func(r store.SyntheticRun) bool {
		return r.Check == q.Check && (q.Start.IsZero() || !r.Start.Before(q.Start)) && (q.End.IsZero() || !r.Start.After(q.End))
	})
	return out[:min(len(out), q.Limit)], nil
}

func (f *fakeRuns) SyntheticRun(_ context.Context, check, runID string) (store.SyntheticRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return store.SyntheticRun{}, f.err
	}
	for _, r := range f.runs {
		if r.Check == check && r.RunID == runID {
			return r, nil
		}
	}
	return store.SyntheticRun{}, fmt.Errorf("run %s of %s: %w", runID, check, store.ErrNotFound)
}

func (f *fakeRuns) SyntheticRunsByCorrelation(_ context.Context, id string, limit int) ([]store.SyntheticRun, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	out := f.newestFirst(func(r store.SyntheticRun) bool { return r.CorrelationID == id })
	return out[:min(len(out), limit)], nil
}

// SyntheticChecks computes the statistics as the store defines them
// (nearest-rank p50 and p99 of the durations).
func (f *fakeRuns) SyntheticChecks(_ context.Context, start, end time.Time) ([]store.SyntheticCheckStats, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	by := map[string]*store.SyntheticCheckStats{}
	durs := map[string][]time.Duration{}
	for _, r := range f.runs {
		if r.Start.Before(start) || r.Start.After(end) {
			continue
		}
		cs := by[r.Check]
		if cs == nil {
			cs = &store.SyntheticCheckStats{Check: r.Check}
			by[r.Check] = cs
		}
		cs.Runs++
		if !r.OK {
			cs.Failures++
		}
		cs.Last = r
		durs[r.Check] = append(durs[r.Check], r.Duration)
	}
	var out []store.SyntheticCheckStats
	for name, cs := range by {
		d := durs[name]
		slices.Sort(d)
		rank := func(q float64) time.Duration {
			i := int(q*float64(len(d))+0.999999) - 1
			return d[max(i, 0)]
		}
		cs.P50, cs.P99 = rank(0.5), rank(0.99)
		out = append(out, *cs)
	}
	return out, nil
}

func newFakeSynthetics(runs *fakeRuns) *fakeSynthetics {
	return &fakeSynthetics{runs: runs, status: SyntheticsStatus{
		Path: "/etc/flowscope/checks.yml", LoadedAt: t0,
		Checks: []SyntheticCheckInfo{
			{Name: "journey", File: "/etc/flowscope/checks.yml", Line: 2, Every: 30 * time.Second, Timeout: 10 * time.Second,
				Steps: []string{"login", "cart", "checkout"}, Labels: map[string]string{"team": `<b>shop</b>`}},
			{Name: "idle", File: "/etc/flowscope/checks.yml", Line: 30, Every: time.Hour, Timeout: 10 * time.Second, Retries: 2,
				Steps: []string{"ping"}},
		},
	}}
}

// synthStore is the fake store with run 1's trace: the prober's root and
// step span, and the frontend's server span under the step.
func synthStore() *fakeStore {
	fs := newFakeStore()
	prober := &commonpb.KeyValue{Key: "synthetic.check", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "journey"}}}
	res := resource("synthetics")
	res.Attributes = append(res.Attributes, prober)
	root, step, server := []byte{9, 9, 9, 9, 9, 9, 9, 9}, []byte{1, 2, 3, 4, 5, 6, 7, 8}, []byte{8, 7, 6, 5, 4, 3, 2, 1}
	fs.traces[synthTrace] = &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{
		{Resource: res, ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: synthTrace[:], SpanId: root, Name: "journey", StartTimeUnixNano: nanos(t0), EndTimeUnixNano: nanos(t0.Add(120 * time.Millisecond))},
			{TraceId: synthTrace[:], SpanId: step, ParentSpanId: root, Name: "login", Kind: tracepb.Span_SPAN_KIND_CLIENT,
				StartTimeUnixNano: nanos(t0), EndTimeUnixNano: nanos(t0.Add(42 * time.Millisecond))},
		}}}},
		{Resource: resource("frontend"), ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{
			{TraceId: synthTrace[:], SpanId: server, ParentSpanId: step, Name: "POST /login", Kind: tracepb.Span_SPAN_KIND_SERVER,
				StartTimeUnixNano: nanos(t0.Add(time.Millisecond)), EndTimeUnixNano: nanos(t0.Add(40 * time.Millisecond)),
				Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR}},
		}}}},
	}}
	return fs
}

// newSynthServer serves the gateway with the prober p and the runs r (nil:
// none).
func newSynthServer(t *testing.T, p Synthetics, r SyntheticRuns) *httptest.Server {
	t.Helper()
	opts := ServiceOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return testNow }}
	if p != nil {
		opts.Synthetics = p
	}
	if r != nil {
		opts.SyntheticRuns = r
	}
	h, err := NewGatewayHandler(t.Context(), NewService(synthStore(), opts))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func newSynthFixture() (*fakeSynthetics, *fakeRuns) {
	runs := &fakeRuns{runs: []store.SyntheticRun{synthRun1, synthRun2}}
	return newFakeSynthetics(runs), runs
}

// TestSyntheticsGatewayGolden pins the JSON of the synthetics endpoints and
// the correlation's synthetic results, errors included. Regenerate with:
// go test ./query -run TestSyntheticsGatewayGolden -update
func TestSyntheticsGatewayGolden(t *testing.T) {
	full, fullRuns := newSynthFixture()
	failing, failingRuns := newSynthFixture()
	failing.reloadErr = errors.New(`/etc/flowscope/checks.yml:7: checks[0].steps[1].assert[0]: unknown assertion "status_code"`)
	brokenProber, brokenRuns := newSynthFixture()
	brokenRuns.err = errBroken
	noPath, noPathRuns := newSynthFixture()
	noPath.status = SyntheticsStatus{}
	servers := map[string]*httptest.Server{
		"full":    newSynthServer(t, full, fullRuns),
		"none":    newSynthServer(t, nil, nil),
		"failing": newSynthServer(t, failing, failingRuns),
		"broken":  newSynthServer(t, brokenProber, brokenRuns),
		"nopath":  newSynthServer(t, noPath, noPathRuns),
	}
	tests := []struct {
		golden, server, method, path string
		status                       int
	}{
		{"synthetics", "", "", "/api/v1/synthetics", 200},
		{"synthetics_range_without_runs", "", "", "/api/v1/synthetics?start=2024-05-01T10:00:00Z&end=2024-05-01T11:00:00Z", 200},
		{"synthetics_none", "none", "", "/api/v1/synthetics", 200},
		{"synthetics_bad_range", "", "", "/api/v1/synthetics?start=2024-05-01T12:00:00Z&end=2024-05-01T11:00:00Z", 400},
		{"synthetics_store_error", "broken", "", "/api/v1/synthetics", 500},
		{"synthetic_runs", "", "", "/api/v1/synthetics/journey/runs", 200},
		{"synthetic_runs_limit", "", "", "/api/v1/synthetics/journey/runs?limit=1", 200},
		{"synthetic_runs_unknown_check", "", "", "/api/v1/synthetics/nope/runs", 200},
		{"synthetic_runs_bad_limit", "", "", "/api/v1/synthetics/journey/runs?limit=-1", 400},
		{"synthetic_runs_limit_too_big", "", "", "/api/v1/synthetics/journey/runs?limit=10001", 400},
		{"synthetic_runs_bad_start", "", "", "/api/v1/synthetics/journey/runs?start=yesterday", 400},
		{"synthetic_runs_store_error", "broken", "", "/api/v1/synthetics/journey/runs", 500},
		{"synthetic_run", "", "", "/api/v1/synthetics/journey/runs/00000000000000a1", 200},
		{"synthetic_run_trace_missing", "", "", "/api/v1/synthetics/journey/runs/00000000000000a2", 200},
		{"synthetic_run_not_found", "", "", "/api/v1/synthetics/journey/runs/ffffffffffffffff", 404},
		{"synthetic_run_no_runs", "none", "", "/api/v1/synthetics/journey/runs/00000000000000a1", 404},
		{"synthetic_run_now", "", http.MethodPost, "/api/v1/synthetics/journey:run", 200},
		{"synthetic_run_now_unknown", "", http.MethodPost, "/api/v1/synthetics/nope:run", 404},
		{"synthetic_run_now_none", "none", http.MethodPost, "/api/v1/synthetics/journey:run", 404},
		{"synthetic_run_now_get", "", http.MethodGet, "/api/v1/synthetics/journey:run", 405},
		{"synthetics_reload", "", http.MethodPost, "/api/v1/synthetics:reload", 200},
		{"synthetics_reload_failed", "failing", http.MethodPost, "/api/v1/synthetics:reload", 400},
		{"synthetics_reload_none", "none", http.MethodPost, "/api/v1/synthetics:reload", 400},
		{"synthetics_reload_no_path", "nopath", http.MethodPost, "/api/v1/synthetics:reload", 400},
		{"correlation_synthetic", "", "", "/api/v1/correlations/" + synthRun2.CorrelationID, 200},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			resp, b := doRequest(t, servers[cmpOr(tt.server, "full")], cmpOr(tt.method, http.MethodGet), tt.path, nil)
			if resp.StatusCode != tt.status {
				t.Errorf("status = %d, want %d; body %s", resp.StatusCode, tt.status, b)
			}
			checkGolden(t, filepath.Join("testdata", "golden", tt.golden+".json"), b)
		})
	}
}

// TestSyntheticsSemantics checks what the golden files cannot show at a
// glance: statistics, ordering, the joined trace, where a manual run goes,
// and reload outcomes.
func TestSyntheticsSemantics(t *testing.T) {
	p, runs := newSynthFixture()
	svc := NewService(synthStore(), ServiceOptions{Now: func() time.Time { return testNow }, Synthetics: p, SyntheticRuns: runs})
	ctx := t.Context()

	list, err := svc.ListSynthetics(ctx, &querypb.ListSyntheticsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(list.Checks); n != 2 || list.Checks[0].Name != "idle" || list.Checks[1].Name != "journey" {
		t.Fatalf("checks %v, want idle and journey by name", list.Checks)
	}
	idle, journey := list.Checks[0], list.Checks[1]
	if idle.Runs != 0 || idle.SuccessRate != nil || idle.LastRun != nil {
		t.Errorf("idle: %v; want no runs, no success rate (not 0), no last run", idle)
	}
	if journey.Runs != 2 || journey.Failures != 1 || journey.GetSuccessRate().GetValue() != 0.5 ||
		journey.GetP50Ms().GetValue() != 120 || journey.GetP99Ms().GetValue() != 812 ||
		journey.LastRun.GetRunId() != synthRun2.RunID || len(journey.LastRun.Steps) != 0 || journey.Every != "30s" {
		t.Errorf("journey: %v", journey)
	}
	// The default range is the last hour: [testNow-1h, testNow].
	if _, err := svc.ListSyntheticRuns(ctx, &querypb.ListSyntheticRunsRequest{Check: "journey"}); err != nil {
		t.Fatal(err)
	}
	if q := runs.lastQuery; !q.Start.Equal(testNow.Add(-DefaultSyntheticRange)) || !q.End.Equal(testNow) || q.Limit != DefaultSyntheticRunLimit {
		t.Errorf("runs query %+v", q)
	}

	got, err := svc.GetSyntheticRun(ctx, &querypb.GetSyntheticRunRequest{Check: "journey", RunId: synthRun1.RunID})
	if err != nil {
		t.Fatal(err)
	}
	tr := got.Run.Trace
	if !tr.Found || tr.SpanCount != 3 || tr.ErrorCount != 1 || !slices.Equal(tr.Services, []string{"frontend", "synthetic:journey"}) {
		t.Errorf("joined trace %v", tr)
	}
	if got.Run.Steps[0].Timings.FirstByteMs != 40 || got.Run.Steps[0].Url != synthRun1.Steps[0].URL {
		t.Errorf("step %v", got.Run.Steps[0])
	}

	// A manual run is returned with its trace and then listed.
	ran, err := svc.RunSynthetic(ctx, &querypb.RunSyntheticRequest{Check: "idle"})
	if err != nil {
		t.Fatal(err)
	}
	if ran.Run.Trigger != "manual" || !ran.Run.Trace.GetFound() {
		t.Errorf("manual run %v", ran.Run)
	}
	if _, err := svc.RunSynthetic(ctx, &querypb.RunSyntheticRequest{Check: "nope"}); status.Code(err) != codes.NotFound ||
		!strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("unknown check: %v", err)
	}
	list, _ = svc.ListSynthetics(ctx, &querypb.ListSyntheticsRequest{})
	if list.Checks[0].Runs != 1 || list.Checks[0].LastRun.GetTrigger() != "manual" {
		t.Errorf("idle after a manual run: %v", list.Checks[0])
	}

	// A failed reload keeps the checks and reports why.
	p.reloadErr = errors.New("checks.yml:3: checks[0].every: must be at least 1s")
	if _, err := svc.ReloadSynthetics(ctx, &querypb.ReloadSyntheticsRequest{}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "checks[0].every") {
		t.Errorf("failed reload: %v", err)
	}
	list, _ = svc.ListSynthetics(ctx, &querypb.ListSyntheticsRequest{})
	if list.LastReloadError != p.reloadErr.Error() || len(list.Checks) != 2 {
		t.Errorf("after a failed reload: %v", list)
	}
	p.reloadErr = nil
	if r, err := svc.ReloadSynthetics(ctx, &querypb.ReloadSyntheticsRequest{}); err != nil || r.Checks != 2 || p.reloads != 2 {
		t.Errorf("reload: %v %v (%d reloads)", r, err, p.reloads)
	}
}
