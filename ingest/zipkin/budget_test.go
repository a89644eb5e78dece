package zipkin

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/internal/budgetio"
	"github.com/flowscope/flowscope/ingest/internal/budgetio/budgetiotest"
	"github.com/flowscope/flowscope/membudget"
)

// v2Spans is a Zipkin v2 body of n client spans.
func v2Spans(n int) []byte {
	var b strings.Builder
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"traceId":"%016x","id":"%016x","kind":"CLIENT","name":"get /items","timestamp":%d,"duration":10,`+
			`"localEndpoint":{"serviceName":"frontend"},"remoteEndpoint":{"serviceName":"backend"},"tags":{"http.path":"/items"}}`,
			i+1, i+1, 1_700_000_000_000_000+i)
	}
	b.WriteByte(']')
	return []byte(b.String())
}

// TestBudget sends requests to a handler with a small memory budget: a
// request that does not fit is refused with 503 and Retry-After (before
// its body is read when the budget is already full), the consumer never
// sees it, and every reservation is given back when it is answered.
func TestBudget(t *testing.T) {
	small := []byte(v2Body)
	big := v2Spans(5000) // about 1 MiB
	mid := v2Spans(500)  // about 100 KiB
	const step = budgetio.InitialBytes
	tests := []struct {
		name       string
		limit      int64
		inUse      int64 // reserved by others before the request
		encoding   string
		body       []byte
		chunked    bool
		wantStatus int
		wantNoRead bool
	}{
		{name: "fits", limit: 1 << 20, body: small, wantStatus: 202},
		{name: "large body fits", limit: 8 << 20, body: big, wantStatus: 202},
		{name: "budget full", limit: 1 << 20, inUse: 1<<20 - 100, body: small, wantStatus: 503, wantNoRead: true},
		{name: "budget full, gzip", limit: 1 << 20, inUse: 1<<20 - 100, encoding: "gzip", body: budgetiotest.Gzipped(t, small), wantStatus: 503, wantNoRead: true},
		{name: "body outgrows the budget", limit: 256 << 10, body: big, wantStatus: 503},
		{name: "chunked body outgrows the budget", limit: 256 << 10, body: big, chunked: true, wantStatus: 503},
		{name: "decompressed body outgrows the budget", limit: 256 << 10, encoding: "gzip", body: budgetiotest.Gzipped(t, big), wantStatus: 503},
		{name: "read fits, conversion does not", limit: int64(len(mid)) + 1 + step + 1000, body: mid, wantStatus: 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := budgetiotest.NewBudget(tt.limit, tt.inUse)
			consumer := &recordingConsumer{}
			reg := prometheus.NewRegistry()
			h := NewHandler(HandlerOptions{Traces: consumer, Budget: b, RequestMetrics: ingest.NewRequestMetrics(reg)})
			rec, wire := budgetiotest.BudgetCase{Body: tt.body, ContentType: "application/json", Encoding: tt.encoding, Chunked: tt.chunked}.Serve(h, V2Path)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", rec.Code, tt.wantStatus, rec.Body)
			}
			budgetiotest.CheckBudgetAfter(t, b, tt.inUse, tt.limit)
			if tt.wantStatus == 202 {
				if len(consumer.reqs) != 1 {
					t.Errorf("consumer called %d times, want 1", len(consumer.reqs))
				}
				return
			}
			if len(consumer.reqs) != 0 {
				t.Errorf("consumer called %d times for a refused request", len(consumer.reqs))
			}
			if tt.wantNoRead && wire.N != 0 {
				t.Errorf("read %d bytes of a request refused before reading", wire.N)
			}
			if rec.Header().Get("Retry-After") == "" {
				t.Error("refusal without Retry-After")
			}
			if !strings.Contains(rec.Body.String(), "memory budget") {
				t.Errorf("body %q does not name the memory budget", rec.Body)
			}
			if got := requestCount(t, reg); got[ingest.OutcomeOverloaded] != 1 {
				t.Errorf("requests counted %v, want one overloaded", got)
			}
		})
	}
}

// TestBudgetSlowClients: slow clients that claim large bodies hold only
// what they sent, and beyond the budget are refused with 503 at once
// (budgetiotest.SlowClientCases).
func TestBudgetSlowClients(t *testing.T) {
	budgetiotest.SlowClientCases(t, func(b *membudget.Budget) (http.Handler, func() int) {
		consumer := &recordingConsumer{}
		return NewHandler(HandlerOptions{Traces: consumer, Budget: b}), func() int { return len(consumer.reqs) }
	}, V2Path, "application/json", http.StatusServiceUnavailable)
}
