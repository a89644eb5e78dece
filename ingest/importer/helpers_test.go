package importer

import (
	"context"
	"sync"
	"testing"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/store"
)

// recordingSink is a fake Sink that keeps copies of what it receives.
// fail, when set, is asked before each call and may refuse it.
type recordingSink struct {
	mu      sync.Mutex
	traces  [][]byte
	metrics [][]byte
	archs   []store.Architecture
	calls   int
	fail    func(call int) (ingest.Result, error)
}

var _ Sink = (*recordingSink)(nil)

func (s *recordingSink) check() (ingest.Result, error) {
	s.calls++
	if s.fail != nil {
		return s.fail(s.calls)
	}
	return ingest.Result{}, nil
}

func (s *recordingSink) ConsumeTraces(_ context.Context, req []byte) (ingest.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.check()
	if err == nil {
		s.traces = append(s.traces, append([]byte(nil), req...))
	}
	return res, err
}

func (s *recordingSink) ConsumeMetrics(_ context.Context, req []byte) (ingest.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.check()
	if err == nil {
		s.metrics = append(s.metrics, append([]byte(nil), req...))
	}
	return res, err
}

func (s *recordingSink) PutArchitecture(_ context.Context, a store.Architecture) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.check()
	if err == nil {
		s.archs = append(s.archs, a)
	}
	return err
}

// empty reports whether the sink received nothing.
func (s *recordingSink) empty() bool {
	return len(s.traces) == 0 && len(s.metrics) == 0 && len(s.archs) == 0
}

// spans decodes every received trace request.
func (s *recordingSink) spans(t testing.TB) []*tracepb.Span {
	t.Helper()
	var out []*tracepb.Span
	for _, b := range s.traces {
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			t.Fatal(err)
		}
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				out = append(out, ss.Spans...)
			}
		}
	}
	return out
}

// metricRequests decodes every received metrics request.
func (s *recordingSink) metricRequests(t testing.TB) []*colmetricspb.ExportMetricsServiceRequest {
	t.Helper()
	var out []*colmetricspb.ExportMetricsServiceRequest
	for _, b := range s.metrics {
		req := &colmetricspb.ExportMetricsServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			t.Fatal(err)
		}
		out = append(out, req)
	}
	return out
}

// discardSink accepts everything and keeps nothing.
type discardSink struct{}

func (discardSink) ConsumeTraces(context.Context, []byte) (ingest.Result, error) {
	return ingest.Result{}, nil
}

func (discardSink) ConsumeMetrics(context.Context, []byte) (ingest.Result, error) {
	return ingest.Result{}, nil
}

func (discardSink) PutArchitecture(context.Context, store.Architecture) error { return nil }

// fileInput returns the Input of a test file.
func fileInput(t testing.TB, path string) Input {
	t.Helper()
	in, err := FileInput(path)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// spigoDir is the spigo sample directory.
const spigoDir = "../../testdata/spigo/"
