package synthetics

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/internal/logtest"
	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics/checks"
)

// fakeWriter records the span requests it is given.
type fakeWriter struct {
	mu   sync.Mutex
	reqs [][]byte
}

func (w *fakeWriter) WriteTraces(_ context.Context, req []byte) (store.WriteResult, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reqs = append(w.reqs, bytes.Clone(req))
	return store.WriteResult{Accepted: 1}, nil
}

// traces decodes every request written.
func (w *fakeWriter) traces(t testing.TB) []*coltracepb.ExportTraceServiceRequest {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []*coltracepb.ExportTraceServiceRequest
	for _, b := range w.reqs {
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			t.Fatalf("decode spans: %v", err)
		}
		out = append(out, req)
	}
	return out
}

func (w *fakeWriter) raw() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Join(w.reqs, nil)
}

// fakeRuns records the runs it is given.
type fakeRuns struct {
	mu   sync.Mutex
	runs []store.SyntheticRun
}

func (r *fakeRuns) SaveSyntheticRun(_ context.Context, run store.SyntheticRun) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.runs = append(r.runs, run)
	return nil
}

func (r *fakeRuns) all() []store.SyntheticRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.SyntheticRun(nil), r.runs...)
}

// byCheck returns the runs of check.
func (r *fakeRuns) byCheck(check string) []store.SyntheticRun {
	var out []store.SyntheticRun
	for _, run := range r.all() {
		if run.Check == check {
			out = append(out, run)
		}
	}
	return out
}

// harness is a Prober with fake stores, a log buffer and a registry.
type harness struct {
	p      *Prober
	writer *fakeWriter
	runs   *fakeRuns
	reg    *prometheus.Registry
	logs   *logtest.Buffer
}

// newHarness returns a prober of cs (not started; of Options.Path instead
// when edit sets one) whose options edit may change; it is stopped at the end of the test.
func newHarness(t testing.TB, cs []checks.Check, edit func(*Options)) *harness {
	t.Helper()
	h := &harness{writer: &fakeWriter{}, runs: &fakeRuns{}, reg: prometheus.NewRegistry(), logs: &logtest.Buffer{}}
	opts := Options{
		Writer: h.writer, Runs: h.runs, Registerer: h.reg,
		Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if opts.Path == "" {
		p.SetChecks(cs)
	}
	h.p = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return h
}

// metric returns the value of the counter or gauge name with labels
// (nil: unlabelled), and whether the series exists.
func (h *harness) metric(t testing.TB, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			n := 0
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v == lp.GetValue() {
					n++
				}
			}
			if n != len(labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// hasSeries reports whether any series of the registry has label=value.
func (h *harness) hasSeries(t testing.TB, label, value string) bool {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return true
				}
			}
		}
	}
	return false
}

// Builders of checks without the parser.

func tmpl(s string) checks.Template {
	t, err := checks.ParseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

func jp(s string) *checks.JSONPath {
	p, err := checks.CompileJSONPath(s)
	if err != nil {
		panic(err)
	}
	return p
}

// check returns a check of steps run every period.
func check(name string, every time.Duration, steps ...checks.Step) checks.Check {
	return checks.Check{Name: name, Every: every, Timeout: 5 * time.Second, Steps: steps}
}

// stepOpt edits a step.
type stepOpt func(*checks.Step)

func mkStep(name, method, url string, opts ...stepOpt) checks.Step {
	s := checks.Step{Name: name, Request: checks.Request{Method: method, URL: tmpl(url)}}
	for _, o := range opts {
		o(&s)
	}
	return s
}

func header(name, value string) stepOpt {
	return func(s *checks.Step) {
		s.Request.Headers = append(s.Request.Headers, checks.Header{Name: name, Value: tmpl(value)})
	}
}

func body(b string) stepOpt { return func(s *checks.Step) { s.Request.Body = tmpl(b) } }

func timeout(d time.Duration) stepOpt { return func(s *checks.Step) { s.Timeout = d } }

func continueOnFailure() stepOpt { return func(s *checks.Step) { s.ContinueOnFailure = true } }

func extractJSON(name, path string) stepOpt {
	return func(s *checks.Step) {
		s.Extract = append(s.Extract, checks.Extract{Name: name, Kind: checks.ExtractJSONPath, JSONPath: jp(path)})
	}
}

func extractHeader(name, h string) stepOpt {
	return func(s *checks.Step) {
		s.Extract = append(s.Extract, checks.Extract{Name: name, Kind: checks.ExtractHeader, Header: h})
	}
}

func extractRegex(name, re string) stepOpt {
	return func(s *checks.Step) {
		s.Extract = append(s.Extract, checks.Extract{Name: name, Kind: checks.ExtractRegex, Regex: regexp.MustCompile(re)})
	}
}

func assert(as checks.Assertion) stepOpt {
	return func(s *checks.Step) { s.Assert = append(s.Assert, as) }
}

func status(code int) stepOpt {
	return assert(checks.Assertion{Kind: checks.AssertStatus, Status: code})
}

func statusIn(codes ...int) stepOpt {
	return assert(checks.Assertion{Kind: checks.AssertStatusIn, StatusIn: codes})
}

func latencyBelow(d time.Duration) stepOpt {
	return assert(checks.Assertion{Kind: checks.AssertLatencyBelow, LatencyBelow: d})
}

func bodyContains(text string) stepOpt {
	return assert(checks.Assertion{Kind: checks.AssertBodyContains, Text: tmpl(text)})
}

func jsonEquals(path string, v any) stepOpt {
	return assert(checks.Assertion{Kind: checks.AssertJSONPathEquals, JSONPath: jp(path), Equals: v})
}

func jsonExists(path string, exists bool) stepOpt {
	return assert(checks.Assertion{Kind: checks.AssertJSONPathExists, JSONPath: jp(path), Exists: exists})
}

func headerContains(name, text string) stepOpt {
	return assert(checks.Assertion{Kind: checks.AssertHeader, Header: name, Op: checks.HeaderContains, Text: tmpl(text)})
}

func headerMatches(name, re string) stepOpt {
	return assert(checks.Assertion{Kind: checks.AssertHeader, Header: name, Op: checks.HeaderMatches, Regex: regexp.MustCompile(re)})
}

// spanAttrs returns a span's attributes as strings or int64s by key.
func spanAttrs(s *tracepb.Span) map[string]any {
	out := map[string]any{}
	for _, kv := range s.Attributes {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.Key] = v.IntValue
		}
	}
	return out
}

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
