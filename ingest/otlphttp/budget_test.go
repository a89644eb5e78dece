package otlphttp

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/status"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/internal/budgetio"
	"github.com/flowscope/flowscope/ingest/internal/budgetio/budgetiotest"
	"github.com/flowscope/flowscope/membudget"
)

// TestBudget sends requests to a handler with a small memory budget: a
// request that does not fit is refused with 429 and Retry-After (before
// its body is read when the budget is already full), the consumer never
// sees it, and every reservation is given back when the request is
// answered.
func TestBudget(t *testing.T) {
	big := mustProto(t, sampleTraces(6000)) // about 1 MiB
	if len(big) < 900<<10 {
		t.Fatalf("big body is only %d bytes", len(big))
	}
	small := mustProto(t, sampleTraces(3))
	mid := mustJSON(t, sampleTraces(400)) // about 100 KiB of JSON
	const step = budgetio.InitialBytes
	tests := []struct {
		name        string
		limit       int64
		inUse       int64 // reserved by others before the request
		contentType string
		encoding    string
		body        []byte
		chunked     bool // no Content-Length
		wantStatus  int
		wantNoRead  bool // refused before reading a byte
	}{
		{name: "fits", limit: 1 << 20, body: small, wantStatus: 200},
		{name: "large body fits", limit: 4 << 20, body: big, wantStatus: 200},
		{name: "chunked fits", limit: 4 << 20, body: big, chunked: true, wantStatus: 200},
		{name: "budget full", limit: 1 << 20, inUse: 1<<20 - 100, body: small, wantStatus: 429, wantNoRead: true},
		{name: "budget full, gzip", limit: 1 << 20, inUse: 1<<20 - 100, encoding: "gzip", body: budgetiotest.Gzipped(t, small), wantStatus: 429, wantNoRead: true},
		{name: "body outgrows the budget", limit: 256 << 10, body: big, wantStatus: 429},
		{name: "chunked body outgrows the budget", limit: 256 << 10, body: big, chunked: true, wantStatus: 429},
		{name: "decompressed body outgrows the budget", limit: 256 << 10, encoding: "gzip", body: budgetiotest.Gzipped(t, big), wantStatus: 429},
		{name: "deflated body outgrows the budget", limit: 256 << 10, encoding: "deflate", body: budgetiotest.Deflated(t, big), wantStatus: 429},
		{name: "JSON read fits, its decoding does not", limit: int64(len(mid)) + 1 + step + 1000, contentType: contentTypeJSON,
			body: mid, wantStatus: 429},
		{name: "JSON fits", limit: 4 * int64(len(mid)), contentType: contentTypeJSON, body: mid, wantStatus: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := budgetiotest.NewBudget(tt.limit, tt.inUse)
			consumer := &fakeConsumer{}
			reg := prometheus.NewRegistry()
			h := NewHandler(Options{Traces: consumer, Budget: b, RequestMetrics: ingest.NewRequestMetrics(reg)})
			ct := tt.contentType
			if ct == "" {
				ct = contentTypeProtobuf
			}
			rec, wire := budgetiotest.BudgetCase{Body: tt.body, ContentType: ct, Encoding: tt.encoding, Chunked: tt.chunked}.Serve(h, TracesPath)
			resp := rec.Result()
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, tt.wantStatus, rec.Body)
			}
			budgetiotest.CheckBudgetAfter(t, b, tt.inUse, tt.limit)
			if tt.wantStatus == 200 {
				if consumer.calls() != 1 {
					t.Errorf("consumer called %d times, want 1", consumer.calls())
				}
				return
			}
			if consumer.calls() != 0 {
				t.Errorf("consumer called %d times for a refused request", consumer.calls())
			}
			if tt.wantNoRead && wire.N != 0 {
				t.Errorf("read %d bytes of a request refused before reading", wire.N)
			}
			if tt.encoding == "" && tt.contentType == "" && wire.N >= int64(len(tt.body)) {
				t.Errorf("read the whole body (%d bytes) of a request that did not fit", wire.N)
			}
			if got, want := resp.Header.Get("Retry-After"), strconv.Itoa(int(ingest.RetryAfter.Seconds())); got != want {
				t.Errorf("Retry-After %q, want %q", got, want)
			}
			var st status.Status
			decodeBody(t, resp, rec.Body.Bytes(), &st)
			if st.Code != int32(code.Code_RESOURCE_EXHAUSTED) {
				t.Errorf("status code %d, want RESOURCE_EXHAUSTED", st.Code)
			}
			if n := requestCount(t, reg, "traces", ingest.OutcomeOverloaded); n != 1 {
				t.Errorf("counted %v overloaded requests, want 1", n)
			}
		})
	}
}

// TestBudgetSlowClients: slow clients that claim large bodies hold only
// what they sent, and beyond the budget are refused with 429 at once
// (budgetiotest.SlowClientCases).
func TestBudgetSlowClients(t *testing.T) {
	budgetiotest.SlowClientCases(t, func(b *membudget.Budget) (http.Handler, func() int) {
		consumer := &fakeConsumer{}
		return NewHandler(Options{Traces: consumer, Budget: b}), consumer.calls
	}, TracesPath, contentTypeProtobuf, http.StatusTooManyRequests)
}
