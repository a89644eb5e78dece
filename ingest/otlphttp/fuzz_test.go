package otlphttp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/flowscope/flowscope/ingest/internal/budgetio/budgetiotest"
)

// FuzzHandler posts arbitrary bodies with arbitrary media types and
// encodings: the handler must not panic, must answer with one of the
// documented statuses, and must pass the consumer only bodies that decode
// (the fake consumer records any that do not).
func FuzzHandler(f *testing.F) {
	traces := mustProto(f, sampleTraces(2))
	tracesJSON := mustJSON(f, sampleTraces(2))
	metrics := mustProto(f, sampleMetrics())
	metricsJSON := mustJSON(f, sampleMetrics())
	f.Add(traces, contentTypeProtobuf, "", false)
	f.Add(tracesJSON, contentTypeJSON, "", false)
	f.Add(metrics, contentTypeProtobuf, "", true)
	f.Add(metricsJSON, "application/json; charset=utf-8", "", true)
	f.Add(budgetiotest.Gzipped(f, traces), contentTypeProtobuf, "gzip", false)
	f.Add(budgetiotest.Gzipped(f, metricsJSON), contentTypeJSON, "gzip", true)
	f.Add(budgetiotest.Deflated(f, tracesJSON), contentTypeJSON, "deflate", false)
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`), contentTypeJSON, "", false)
	f.Add([]byte{0x0a, 0x80}, contentTypeProtobuf, "", false)
	f.Add([]byte("x"), "text/plain", "br", false)

	consumer := &fakeConsumer{}
	h := NewHandler(Options{Traces: consumer, Metrics: consumer, MaxBodyBytes: 64 << 10})
	allowed := map[int]bool{200: true, 400: true, 413: true, 415: true}
	f.Fuzz(func(t *testing.T, body []byte, contentType, encoding string, toMetrics bool) {
		if len(body) > 128<<10 {
			t.Skip("input too large")
		}
		path := TracesPath
		if toMetrics {
			path = MetricsPath
		}
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Content-Encoding", encoding)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("status %d; body %q", rec.Code, rec.Body)
		}
		consumer.mu.Lock()
		defer consumer.mu.Unlock()
		if len(consumer.bad) > 0 {
			t.Fatalf("consumer got an undecodable body: %v", consumer.bad)
		}
		consumer.traces, consumer.metrics = nil, nil
	})
}
