package zipkin

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flowscope/flowscope/ingest/internal/budgetio/budgetiotest"

	"github.com/flowscope/flowscope/ingest"
	"github.com/prometheus/client_golang/prometheus"
)

const (
	v1Body = `[{"traceId":"0000000000000001","id":"0000000000000001","name":"get","annotations":[` +
		`{"timestamp":10,"value":"cs","endpoint":{"serviceName":"a"}},{"timestamp":11,"value":"sr","endpoint":{"serviceName":"b"}},` +
		`{"timestamp":19,"value":"ss","endpoint":{"serviceName":"b"}},{"timestamp":20,"value":"cr","endpoint":{"serviceName":"a"}}]}]`
	v2Body = `[{"traceId":"0000000000000001","id":"0000000000000001","kind":"CLIENT","name":"get","timestamp":10,"duration":10,` +
		`"localEndpoint":{"serviceName":"a"}}]`
)

// TestHandler checks the answer to each kind of request, what reaches the
// consumer, and the request counter.
func TestHandler(t *testing.T) {
	big := "[" + strings.Repeat(" ", 2000) + "]"
	tests := []struct {
		name        string
		method      string
		path        string
		body        []byte
		contentType string
		encoding    string
		result      ingest.Result // the consumer's answer
		consumerErr error
		status      int
		msg         string // substring of the answer body
		spans       int    // spans the consumer got
		outcome     string
	}{
		{name: "v1", path: V1Path, body: []byte(v1Body), contentType: "application/json", status: 202, spans: 2, outcome: "ok"},
		{name: "v2", path: V2Path, body: []byte(v2Body), contentType: "application/json; charset=utf-8", status: 202, spans: 1, outcome: "ok"},
		{name: "no content type", path: V1Path, body: []byte(v1Body), status: 202, spans: 2, outcome: "ok"},
		{name: "text/plain", path: V2Path, body: []byte(v2Body), contentType: "text/plain", status: 202, spans: 1, outcome: "ok"},
		{name: "gzip", path: V1Path, body: budgetiotest.Gzipped(t, []byte(v1Body)), encoding: "gzip", status: 202, spans: 2, outcome: "ok"},
		{name: "deflate", path: V2Path, body: budgetiotest.Deflated(t, []byte(v2Body)), encoding: "deflate", status: 202, spans: 1, outcome: "ok"},
		{name: "empty array", path: V1Path, body: []byte("[\n\n]"), status: 202, spans: 0, outcome: "ok"},
		{name: "invalid JSON", path: V1Path, body: []byte(`[{"traceId":"01","id":"0000000000000001"}]`), status: 400,
			msg: `zipkin v1: span 0 at byte 12: "traceId": want 16 or 32 hex digits, got 2`, outcome: "invalid"},
		{name: "v2 body on v1", path: V1Path, body: []byte(v2Body), status: 400, msg: "looks like Zipkin v2 JSON", outcome: "invalid"},
		{name: "garbage", path: V2Path, body: []byte("<html>"), status: 400, msg: "zipkin v2: at byte 0: want a JSON array of spans", outcome: "invalid"},
		{name: "corrupt gzip", path: V1Path, body: []byte("not gzip"), encoding: "gzip", status: 400, msg: "decompress gzip body", outcome: "invalid"},
		{name: "truncated gzip", path: V1Path, body: budgetiotest.Gzipped(t, []byte(v1Body))[:40], encoding: "gzip", status: 400, msg: "decompress gzip body", outcome: "invalid"},
		{name: "too large", path: V1Path, body: []byte(big), status: 413, msg: "request body exceeds 1024 bytes", outcome: "too_large"},
		{name: "too large decompressed", path: V1Path, body: budgetiotest.Gzipped(t, []byte(big)), encoding: "gzip", status: 413,
			msg: "exceeds 1024 bytes after decompression", outcome: "too_large"},
		{name: "thrift", path: V1Path, body: []byte{0x0c, 0, 0}, contentType: "application/x-thrift", status: 415,
			msg: "Zipkin Thrift is not supported, only JSON", outcome: "unsupported"},
		{name: "protobuf", path: V2Path, body: []byte{0x0a, 0}, contentType: "application/x-protobuf", status: 415,
			msg: "Zipkin protobuf is not supported, only JSON", outcome: "unsupported"},
		{name: "brotli", path: V2Path, body: []byte(v2Body), encoding: "br", status: 415, msg: `unsupported Content-Encoding "br"`, outcome: "unsupported"},
		{name: "GET", method: http.MethodGet, path: V2Path, status: 405, msg: "method GET not allowed", outcome: "unsupported"},
		{name: "unknown path", path: "/api/v3/spans", body: []byte(v2Body), status: 404, msg: "no Zipkin endpoint", outcome: "unsupported"},
		{name: "overloaded", path: V2Path, body: []byte(v2Body), consumerErr: fmt.Errorf("queue full: %w", ingest.ErrOverloaded),
			status: 429, msg: "store spans: queue full: store overloaded", spans: 1, outcome: "overloaded"},
		{name: "unavailable", path: V2Path, body: []byte(v2Body), consumerErr: ingest.ErrUnavailable,
			status: 503, msg: "store unavailable", spans: 1, outcome: "unavailable"},
		{name: "consumer failure", path: V2Path, body: []byte(v2Body), consumerErr: errors.New("disk full"),
			status: 500, msg: "disk full", spans: 1, outcome: "error"},
		{name: "partly rejected", path: V1Path, body: []byte(v1Body), result: ingest.Result{Rejected: 1, Message: "span \"get\": end time is before start time"},
			status: 400, msg: `1 of the 2 spans converted from 1 Zipkin spans were rejected; the other 1 were stored (Zipkin has no partial success): first problem: span "get": end time is before start time`,
			spans: 2, outcome: "partial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			consumer := &recordingConsumer{result: tt.result, err: tt.consumerErr}
			reg := prometheus.NewRegistry()
			metrics := ingest.NewRequestMetrics(reg)
			h := NewHandler(HandlerOptions{Traces: consumer, MaxBodyBytes: 1024, RequestMetrics: metrics})
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			req := httptest.NewRequest(method, tt.path, bytes.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.encoding != "" {
				req.Header.Set("Content-Encoding", tt.encoding)
			}
			if tt.name == "too large decompressed" || tt.name == "too large" {
				req.ContentLength = -1 // make the limit act on the stream, not the header
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Errorf("status %d, want %d (body %q)", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 202 && rec.Body.Len() != 0 {
				t.Errorf("202 with body %q, want empty", rec.Body)
			}
			if !strings.Contains(rec.Body.String(), tt.msg) {
				t.Errorf("body %q, want it to contain %q", rec.Body, tt.msg)
			}
			retry := rec.Header().Get("Retry-After")
			if wantRetry := tt.status == 429 || tt.status == 503; wantRetry != (retry != "") {
				t.Errorf("Retry-After %q with status %d", retry, rec.Code)
			}
			if tt.status == 405 && rec.Header().Get("Allow") != http.MethodPost {
				t.Errorf("405 without Allow: POST")
			}
			if got := len(consumer.spans(t)); got != tt.spans {
				t.Errorf("consumer got %d spans, want %d", got, tt.spans)
			}
			if tt.spans == 0 && len(consumer.reqs) > 0 {
				t.Errorf("consumer called %d times, want none", len(consumer.reqs))
			}
			if got := requestCount(t, reg); len(got) != 1 || got[tt.outcome] != 1 {
				t.Errorf("requests counted %v, want one %q", got, tt.outcome)
			}
		})
	}
}

// requestCount reads flowscope_receiver_requests_total of the zipkin
// receiver by outcome.
func requestCount(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "flowscope_receiver_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["receiver"] != "zipkin" || labels["signal"] != "traces" {
				t.Errorf("unexpected labels %v", labels)
			}
			out[labels["outcome"]] += m.GetCounter().GetValue()
		}
	}
	return out
}

// TestHandlerNilConsumer checks that a handler without consumer answers
// 404 instead of failing.
func TestHandlerNilConsumer(t *testing.T) {
	rec := httptest.NewRecorder()
	NewHandler(HandlerOptions{}).ServeHTTP(rec, httptest.NewRequest(http.MethodPost, V1Path, strings.NewReader(v1Body)))
	if rec.Code != http.StatusNotFound {
		t.Errorf("status %d, want 404", rec.Code)
	}
}

// TestHandlerMemory checks that the v1 endpoint resolves a child sent in a
// later request under its parent's server half (and that memory is per
// endpoint).
func TestHandlerMemory(t *testing.T) {
	consumer := &recordingConsumer{}
	h := NewHandler(HandlerOptions{Traces: consumer})
	post := func(path, body string) {
		t.Helper()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		if rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	// The parent is a server-only span (not split): its child hangs under
	// its own ID, which only the memory of the first request can tell.
	post(V1Path, `[{"traceId":"0000000000000001","id":"0000000000000001","name":"p","annotations":[`+
		`{"timestamp":10,"value":"sr","endpoint":{"serviceName":"b"}}]}]`)
	post(V1Path, `[{"traceId":"0000000000000001","id":"0000000000000002","parentId":"0000000000000001","name":"c","annotations":[`+
		`{"timestamp":12,"value":"cs","endpoint":{"serviceName":"b"}}]}]`)
	got := shapes(consumer.spans(t))
	want := []string{
		`SERVER b "p" id=1 parent=- t=0..?`,
		`CLIENT b "c" id=2 parent=1 t=2..?`,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
