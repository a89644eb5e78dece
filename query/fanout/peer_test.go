package fanout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
)

// failingSource fails every query with err.
type failingSource struct{ err error }

func (f failingSource) Services(context.Context, time.Time, time.Time) ([]store.ServiceStats, error) {
	return nil, f.err
}
func (f failingSource) Operations(context.Context, string) ([]store.Operation, error) {
	return nil, f.err
}
func (f failingSource) Trace(context.Context, store.TraceID) (*tracepb.TracesData, error) {
	return nil, f.err
}
func (f failingSource) FindTraces(context.Context, store.TraceQuery) ([]store.TraceSummary, error) {
	return nil, f.err
}
func (f failingSource) Correlation(context.Context, string, int) ([]store.TraceSummary, error) {
	return nil, f.err
}
func (f failingSource) MetricNames(context.Context, time.Time, time.Time) ([]store.MetricInfo, error) {
	return nil, f.err
}
func (f failingSource) Metrics(context.Context, string, time.Time, time.Time) ([]*metricspb.ResourceMetrics, error) {
	return nil, f.err
}
func (f failingSource) FlowGraph(context.Context, time.Time, time.Time, aggregate.GraphQuery) (*aggregate.Graph, error) {
	return nil, f.err
}
func (f failingSource) Latency(context.Context, time.Time, time.Time, aggregate.LatencyQuery) (*aggregate.Latency, error) {
	return nil, f.err
}

// TestPeerErrors checks the peer API's status for a node's failures: 404
// for a trace it does not hold, 503 while it is warming up or closed (the
// front end reports it missing and retries later), 500 otherwise, the
// error text in the body.
func TestPeerErrors(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{errors.New("disk on fire"), http.StatusInternalServerError},
		{fmt.Errorf("%w: re-indexing chunks 1 to 9", store.ErrWarmingUp), http.StatusServiceUnavailable},
		{store.ErrClosed, http.StatusServiceUnavailable},
		{store.ErrNotFound, http.StatusNotFound},
	} {
		srv := httptest.NewServer(NewPeerHandler(PeerOptions{Source: failingSource{tc.err}}))
		for method, body := range map[string]string{
			"services":   `{"start":0,"end":1}`,
			"trace":      `{"traceId":"0123456789abcdef0123456789abcdef"}`,
			"search":     `{"limit":10}`,
			"flow-graph": `{"start":0,"end":1}`,
		} {
			resp, err := http.Post(srv.URL+PeerPath+method, "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.err.Error()) {
				t.Errorf("%s with %q: %d %q, want %d with the error", method, tc.err, resp.StatusCode, b, tc.code)
			}
		}
		srv.Close()
	}
}
