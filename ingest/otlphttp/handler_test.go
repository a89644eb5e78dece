package otlphttp

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/flowscope/flowscope/ingest/internal/budgetio/budgetiotest"

	"github.com/flowscope/flowscope/ingest"
	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/prometheus/client_golang/prometheus"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// fakeConsumer records the export requests it receives and answers with res
// and err.
type fakeConsumer struct {
	res ingest.Result
	err error

	mu      sync.Mutex
	traces  []*coltracepb.ExportTraceServiceRequest
	metrics []*colmetricspb.ExportMetricsServiceRequest
	bad     []error // bodies that did not decode: the handler must not pass them
}

func (f *fakeConsumer) ConsumeTraces(_ context.Context, body []byte) (ingest.Result, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	err := proto.Unmarshal(body, req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.bad = append(f.bad, err)
	}
	f.traces = append(f.traces, req)
	return f.res, f.err
}

func (f *fakeConsumer) ConsumeMetrics(_ context.Context, body []byte) (ingest.Result, error) {
	req := &colmetricspb.ExportMetricsServiceRequest{}
	err := proto.Unmarshal(body, req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err != nil {
		f.bad = append(f.bad, err)
	}
	f.metrics = append(f.metrics, req)
	return f.res, f.err
}

func (f *fakeConsumer) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.traces) + len(f.metrics)
}

func attr(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

// sampleTraces is a request of n spans of one service.
func sampleTraces(n int) *coltracepb.ExportTraceServiceRequest {
	spans := make([]*tracepb.Span, n)
	for i := range spans {
		spans[i] = &tracepb.Span{
			TraceId:           []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, byte(i)},
			SpanId:            []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, byte(i >> 8), byte(i)},
			Name:              "GET /checkout",
			Kind:              tracepb.Span_SPAN_KIND_SERVER,
			StartTimeUnixNano: 1718000000000000000 + uint64(i)*1000,
			EndTimeUnixNano:   1718000000250000000 + uint64(i)*1000,
			Attributes: []*commonpb.KeyValue{
				attr("http.request.method", "GET"),
				attr("url.path", "/checkout"),
				{Key: "http.response.status_code", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 200}}},
			},
			Status: &tracepb.Status{Code: tracepb.Status_STATUS_CODE_OK},
		}
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource:   &resourcepb.Resource{Attributes: []*commonpb.KeyValue{attr("service.name", "frontend")}},
		ScopeSpans: []*tracepb.ScopeSpans{{Scope: &commonpb.InstrumentationScope{Name: "otelhttp"}, Spans: spans}},
	}}}
}

func sampleMetrics() *colmetricspb.ExportMetricsServiceRequest {
	return &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{attr("service.name", "checkout")}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{
			Name: "queue.depth",
			Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{{
				TimeUnixNano: 1718000000000000000,
				Value:        &metricspb.NumberDataPoint_AsInt{AsInt: 7},
			}}}},
		}}}},
	}}}
}

func mustProto(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustJSON(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := otlpjson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// requestCount reads flowscope_receiver_requests_total for one signal and
// outcome from reg.
func requestCount(t *testing.T, reg *prometheus.Registry, signal, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		if mf.GetName() != "flowscope_receiver_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["receiver"] == "otlp_http" && labels["signal"] == signal && labels["outcome"] == outcome {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// decodeBody decodes a response body in the encoding its Content-Type names.
func decodeBody(t *testing.T, resp *http.Response, body []byte, m proto.Message) {
	t.Helper()
	var err error
	switch ct := resp.Header.Get("Content-Type"); ct {
	case contentTypeJSON:
		err = protojson.Unmarshal(body, m)
	case contentTypeProtobuf:
		err = proto.Unmarshal(body, m)
	default:
		t.Fatalf("response Content-Type %q", ct)
	}
	if err != nil {
		t.Fatalf("decode response body %q: %v", body, err)
	}
}

const smallLimit = 4096

// padTo appends an unknown length-delimited field to the protobuf message b
// so that it is n bytes long (n - len(b) must be at least 131).
func padTo(b []byte, n int) []byte {
	out := protowire.AppendTag(bytes.Clone(b), 1000, protowire.BytesType) // 2 bytes
	pad := n - len(out) - 2                                               // 2-byte length
	return protowire.AppendBytes(out, make([]byte, pad))
}

func TestHandler(t *testing.T) {
	traces := sampleTraces(3)
	tracesPB := mustProto(t, traces)
	tracesJSON := mustJSON(t, traces)
	metrics := sampleMetrics()
	metricsPB := mustProto(t, metrics)
	metricsJSON := mustJSON(t, metrics)
	big := bytes.Repeat([]byte{0}, smallLimit+1) // zero bytes: not a valid message, and over the limit

	type tc struct {
		name          string
		method        string // default POST
		path          string // default /v1/traces
		contentType   string // default protobuf; "-" for none
		encoding      string
		body          []byte
		contentLength int64 // overrides the request's Content-Length when non-zero
		res           ingest.Result
		err           error

		wantStatus  int
		wantCalls   int
		wantMsg     string // substring of the Status message (errors) or partial success message
		wantOutcome string
		wantSignal  string // default traces
		wantTraces  *coltracepb.ExportTraceServiceRequest
		wantMetrics *colmetricspb.ExportMetricsServiceRequest
		wantRespCT  string // default: the request's type
		check       func(t *testing.T, f *fakeConsumer)
	}
	cases := []tc{
		{name: "protobuf traces", body: tracesPB, wantStatus: 200, wantCalls: 1, wantOutcome: "ok", wantTraces: traces},
		{name: "json traces", contentType: contentTypeJSON, body: tracesJSON, wantStatus: 200, wantCalls: 1, wantOutcome: "ok", wantTraces: traces},
		{name: "json with charset", contentType: "application/json; charset=utf-8", body: tracesJSON, wantStatus: 200, wantCalls: 1,
			wantOutcome: "ok", wantTraces: traces, wantRespCT: contentTypeJSON},
		{name: "protobuf metrics", path: MetricsPath, body: metricsPB, wantStatus: 200, wantCalls: 1, wantOutcome: "ok",
			wantSignal: "metrics", wantMetrics: metrics},
		{name: "json metrics", path: MetricsPath, contentType: contentTypeJSON, body: metricsJSON, wantStatus: 200, wantCalls: 1,
			wantOutcome: "ok", wantSignal: "metrics", wantMetrics: metrics},
		{name: "gzip protobuf", encoding: "gzip", body: budgetiotest.Gzipped(t, tracesPB), wantStatus: 200, wantCalls: 1, wantOutcome: "ok", wantTraces: traces},
		{name: "gzip json", contentType: contentTypeJSON, encoding: "gzip", body: budgetiotest.Gzipped(t, tracesJSON), wantStatus: 200, wantCalls: 1,
			wantOutcome: "ok", wantTraces: traces},
		{name: "deflate protobuf", encoding: "deflate", body: budgetiotest.Deflated(t, tracesPB), wantStatus: 200, wantCalls: 1, wantOutcome: "ok", wantTraces: traces},
		{name: "identity encoding", encoding: "identity", body: tracesPB, wantStatus: 200, wantCalls: 1, wantOutcome: "ok", wantTraces: traces},
		{name: "empty protobuf request", body: nil, wantStatus: 200, wantCalls: 1, wantOutcome: "ok",
			wantTraces: &coltracepb.ExportTraceServiceRequest{}},
		{name: "exactly the limit", body: padTo(tracesPB, smallLimit), contentLength: -1, wantStatus: 200, wantCalls: 1, wantOutcome: "ok",
			check: func(t *testing.T, f *fakeConsumer) {
				if n := len(f.traces[0].ResourceSpans[0].ScopeSpans[0].Spans); n != 3 {
					t.Errorf("consumer got %d spans, want 3", n)
				}
			}},
		{name: "one byte over the limit", body: padTo(tracesPB, smallLimit+1), contentLength: -1, wantStatus: 413,
			wantMsg: "request body exceeds", wantOutcome: "too_large"},

		{name: "partial success protobuf", body: tracesPB, res: ingest.Result{Rejected: 2, Message: "span 1: trace ID has 1 bytes, want 16"},
			wantStatus: 200, wantCalls: 1, wantOutcome: "partial", wantMsg: "trace ID has 1 bytes", wantTraces: traces},
		{name: "partial success json", contentType: contentTypeJSON, body: tracesJSON, res: ingest.Result{Rejected: 2, Message: "bad spans"},
			wantStatus: 200, wantCalls: 1, wantOutcome: "partial", wantMsg: "bad spans", wantTraces: traces},
		{name: "partial success metrics", path: MetricsPath, body: metricsPB, res: ingest.Result{Rejected: 1, Message: "bad point"},
			wantStatus: 200, wantCalls: 1, wantOutcome: "partial", wantMsg: "bad point", wantSignal: "metrics", wantMetrics: metrics},

		{name: "malformed protobuf", body: []byte{0x0a, 0xff, 0x01}, wantStatus: 400, wantMsg: "decode OTLP/protobuf traces:", wantOutcome: "invalid"},
		{name: "malformed protobuf metrics", path: MetricsPath, body: []byte("not protobuf"), wantStatus: 400,
			wantMsg: "decode OTLP/protobuf metrics:", wantOutcome: "invalid", wantSignal: "metrics"},
		{name: "malformed json", contentType: contentTypeJSON, body: []byte(`{"resourceSpans":[{"scopeSpans":5}]}`), wantStatus: 400,
			wantMsg: "decode OTLP/JSON traces: syntax error (line 1:33)", wantOutcome: "invalid"},
		{name: "json that is invalid UTF-8 (quoted in the error)", contentType: contentTypeJSON, body: []byte("\xff\xfe{\x80"), wantStatus: 400,
			wantMsg: "decode OTLP/JSON traces", wantOutcome: "invalid"},
		{name: "json metrics that are invalid UTF-8", path: MetricsPath, contentType: contentTypeJSON, body: []byte("x\xc3\x28"), wantStatus: 400,
			wantMsg: "decode OTLP/JSON metrics", wantOutcome: "invalid", wantSignal: "metrics"},
		{name: "empty json", contentType: contentTypeJSON, body: nil, wantStatus: 400, wantMsg: "decode OTLP/JSON traces", wantOutcome: "invalid"},
		{name: "invalid hex ID reaches the consumer with the wrong length", contentType: contentTypeJSON,
			body: []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[` +
				`{"traceId":"not-a-hex-trace-id-of-32-chars!!","spanId":"0102030405060708","name":"bad"},` +
				`{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"0102030405060709","name":"good"}]}]}]}`),
			wantStatus: 200, wantCalls: 1, wantOutcome: "ok",
			check: func(t *testing.T, f *fakeConsumer) {
				spans := f.traces[0].ResourceSpans[0].ScopeSpans[0].Spans
				if len(spans) != 2 || len(spans[0].TraceId) == 16 || len(spans[1].TraceId) != 16 {
					t.Errorf("trace IDs %x and %x, want a wrong-length one and a 16-byte one", spans[0].TraceId, spans[1].TraceId)
				}
			}},

		{name: "oversized plain body", body: big, contentLength: -1, wantStatus: 413,
			wantMsg: fmt.Sprintf("request body exceeds %d bytes", smallLimit), wantOutcome: "too_large"},
		{name: "oversized by Content-Length", body: tracesPB, contentLength: smallLimit + 1, wantStatus: 413,
			wantMsg: "request body exceeds", wantOutcome: "too_large"},
		{name: "oversized after decompression", encoding: "gzip", body: budgetiotest.Gzipped(t, big), wantStatus: 413,
			wantMsg: fmt.Sprintf("request body exceeds %d bytes after decompression", smallLimit), wantOutcome: "too_large"},
		{name: "oversized compressed stream of empty gzip members", encoding: "gzip",
			body: bytes.Repeat(budgetiotest.Gzipped(t, nil), smallLimit/20+1), contentLength: -1, wantStatus: 413,
			wantMsg: "request body exceeds", wantOutcome: "too_large"},
		{name: "malformed gzip", encoding: "gzip", body: []byte("definitely not gzip"), wantStatus: 400,
			wantMsg: "decompress gzip body", wantOutcome: "invalid"},
		{name: "truncated gzip", encoding: "gzip", body: budgetiotest.Gzipped(t, tracesPB)[:20], wantStatus: 400,
			wantMsg: "decompress gzip body", wantOutcome: "invalid"},
		{name: "malformed deflate", encoding: "deflate", body: []byte("nope"), wantStatus: 400,
			wantMsg: "decompress deflate body", wantOutcome: "invalid"},
		{name: "unknown encoding", encoding: "br", body: tracesPB, wantStatus: 415, wantMsg: `unsupported Content-Encoding "br"`, wantOutcome: "unsupported"},

		{name: "overloaded", body: tracesPB, err: fmt.Errorf("enqueue: %w", ingest.ErrOverloaded), wantStatus: 429, wantCalls: 1,
			wantMsg: "store overloaded", wantOutcome: "overloaded"},
		{name: "overloaded json", contentType: contentTypeJSON, body: tracesJSON, err: ingest.ErrOverloaded, wantStatus: 429, wantCalls: 1,
			wantMsg: "store overloaded", wantOutcome: "overloaded"},
		{name: "unavailable", path: MetricsPath, body: metricsPB, err: ingest.ErrUnavailable, wantStatus: 503, wantCalls: 1,
			wantMsg: "store unavailable", wantOutcome: "unavailable", wantSignal: "metrics"},
		{name: "consumer says invalid", body: tracesPB, err: fmt.Errorf("decode: %w", ingest.ErrInvalid), wantStatus: 400, wantCalls: 1,
			wantMsg: "invalid payload", wantOutcome: "invalid"},
		{name: "consumer fails", body: tracesPB, err: errors.New("disk on fire"), wantStatus: 500, wantCalls: 1,
			wantMsg: "store traces: disk on fire", wantOutcome: "error"},

		{name: "GET", method: http.MethodGet, wantStatus: 405, wantMsg: "method GET not allowed", wantOutcome: "unsupported"},
		{name: "PUT json", method: http.MethodPut, contentType: contentTypeJSON, body: tracesJSON, wantStatus: 405, wantOutcome: "unsupported"},
		{name: "text/plain", contentType: "text/plain", body: tracesPB, wantStatus: 415, wantMsg: `unsupported Content-Type "text/plain"`,
			wantOutcome: "unsupported", wantRespCT: contentTypeProtobuf},
		{name: "no Content-Type", contentType: "-", body: tracesPB, wantStatus: 415, wantOutcome: "unsupported", wantRespCT: contentTypeProtobuf},
		{name: "unknown path", path: "/v1/logs", body: tracesPB, wantStatus: 404, wantMsg: `no OTLP endpoint at "/v1/logs"`,
			wantOutcome: "unsupported", wantSignal: "unknown"},
		{name: "trailing slash", path: "/v1/traces/", body: tracesPB, wantStatus: 404, wantOutcome: "unsupported", wantSignal: "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			consumer := &fakeConsumer{res: c.res, err: c.err}
			reg := prometheus.NewRegistry()
			h := NewHandler(Options{
				Traces:         consumer,
				Metrics:        consumer,
				MaxBodyBytes:   smallLimit,
				RequestMetrics: ingest.NewRequestMetrics(reg),
			})
			method, path, ct := c.method, c.path, c.contentType
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = TracesPath
			}
			if ct == "" {
				ct = contentTypeProtobuf
			}
			req := httptest.NewRequest(method, path, bytes.NewReader(c.body))
			if ct != "-" {
				req.Header.Set("Content-Type", ct)
			}
			if c.encoding != "" {
				req.Header.Set("Content-Encoding", c.encoding)
			}
			if c.contentLength != 0 {
				req.ContentLength = c.contentLength
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			resp := rec.Result()
			body := rec.Body.Bytes()

			if resp.StatusCode != c.wantStatus {
				t.Fatalf("status %d, want %d; body %q", resp.StatusCode, c.wantStatus, body)
			}
			if got := consumer.calls(); got != c.wantCalls {
				t.Errorf("consumer called %d times, want %d", got, c.wantCalls)
			}
			if len(consumer.bad) > 0 {
				t.Errorf("consumer got undecodable bodies: %v", consumer.bad)
			}
			wantCT := c.wantRespCT
			if wantCT == "" {
				wantCT = contentTypeProtobuf
				if strings.HasPrefix(ct, contentTypeJSON) {
					wantCT = contentTypeJSON
				}
			}
			if got := resp.Header.Get("Content-Type"); got != wantCT {
				t.Errorf("response Content-Type %q, want %q", got, wantCT)
			}
			retry := resp.Header.Get("Retry-After")
			if wantRetry := c.wantStatus == 429 || c.wantStatus == 503; wantRetry != (retry != "") {
				t.Errorf("Retry-After %q for status %d", retry, c.wantStatus)
			} else if wantRetry && retry != "1" {
				t.Errorf("Retry-After %q, want 1 (ingest.RetryAfter)", retry)
			}
			if c.wantStatus == 405 && resp.Header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow %q, want POST", resp.Header.Get("Allow"))
			}

			if c.wantStatus == 200 {
				var rejected int64
				var msg string
				if c.wantSignal == "metrics" {
					r := &colmetricspb.ExportMetricsServiceResponse{}
					decodeBody(t, resp, body, r)
					rejected, msg = r.GetPartialSuccess().GetRejectedDataPoints(), r.GetPartialSuccess().GetErrorMessage()
					if (r.PartialSuccess != nil) != (c.res.Rejected > 0) {
						t.Errorf("partial_success %v with %d rejected", r.PartialSuccess, c.res.Rejected)
					}
				} else {
					r := &coltracepb.ExportTraceServiceResponse{}
					decodeBody(t, resp, body, r)
					rejected, msg = r.GetPartialSuccess().GetRejectedSpans(), r.GetPartialSuccess().GetErrorMessage()
					if (r.PartialSuccess != nil) != (c.res.Rejected > 0) {
						t.Errorf("partial_success %v with %d rejected", r.PartialSuccess, c.res.Rejected)
					}
				}
				if rejected != c.res.Rejected || !strings.Contains(msg, c.wantMsg) {
					t.Errorf("partial success (%d, %q), want (%d, …%q…)", rejected, msg, c.res.Rejected, c.wantMsg)
				}
				if c.res.Rejected == 0 && len(body) > 0 && string(body) != "{}" {
					t.Errorf("full success body %q, want an empty response", body)
				}
			} else {
				st := &status.Status{}
				decodeBody(t, resp, body, st)
				if !strings.Contains(st.GetMessage(), c.wantMsg) || st.GetMessage() == "" {
					t.Errorf("Status message %q, want it to contain %q", st.GetMessage(), c.wantMsg)
				}
				if st.GetCode() == 0 {
					t.Errorf("Status code is OK for HTTP %d", c.wantStatus)
				}
			}

			if c.wantTraces != nil && (len(consumer.traces) != 1 || !proto.Equal(consumer.traces[0], c.wantTraces)) {
				t.Errorf("consumer got %v, want %v", consumer.traces, c.wantTraces)
			}
			if c.wantMetrics != nil && (len(consumer.metrics) != 1 || !proto.Equal(consumer.metrics[0], c.wantMetrics)) {
				t.Errorf("consumer got %v, want %v", consumer.metrics, c.wantMetrics)
			}
			if c.check != nil {
				c.check(t, consumer)
			}

			signal := c.wantSignal
			if signal == "" {
				signal = "traces"
			}
			if got := requestCount(t, reg, signal, c.wantOutcome); got != 1 {
				t.Errorf("requests{signal=%q,outcome=%q} = %v, want 1", signal, c.wantOutcome, got)
			}
		})
	}
}

// TestPartialSuccessJSON pins the JSON form of a partial success response.
func TestPartialSuccessJSON(t *testing.T) {
	consumer := &fakeConsumer{res: ingest.Result{Rejected: 2, Message: "span 0: end before start"}}
	h := NewHandler(Options{Traces: consumer})
	req := httptest.NewRequest(http.MethodPost, TracesPath, bytes.NewReader(mustJSON(t, sampleTraces(2))))
	req.Header.Set("Content-Type", contentTypeJSON)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	want := `{"partialSuccess":{"rejectedSpans":"2","errorMessage":"span 0: end before start"}}`
	if rec.Code != 200 || rec.Body.String() != want {
		t.Fatalf("got %d %s, want 200 %s", rec.Code, rec.Body, want)
	}
}

// TestMissingConsumer checks that a signal without a consumer is not served.
func TestMissingConsumer(t *testing.T) {
	h := NewHandler(Options{Traces: &fakeConsumer{}})
	req := httptest.NewRequest(http.MethodPost, MetricsPath, bytes.NewReader(mustProto(t, sampleMetrics())))
	req.Header.Set("Content-Type", contentTypeProtobuf)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotFound {
		t.Fatalf("status %d, want 404", rec.Code)
	}
}

// TestGzipBomb sends 1 GiB of zeros, gzip-compressed as it is read (the
// bomb is never materialised, compressed or not), and checks the handler
// answers 413 after reading little more than the limit, allocating a small
// multiple of the limit, without calling the consumer.
func TestGzipBomb(t *testing.T) {
	const limit = 1 << 20
	const bomb = 1 << 30
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		zw, err := gzip.NewWriterLevel(pw, gzip.BestCompression)
		if err != nil {
			done <- err
			return
		}
		zeros := make([]byte, 64<<10)
		var err2 error
		for written := 0; written < bomb && err2 == nil; written += len(zeros) {
			_, err2 = zw.Write(zeros)
		}
		if err2 == nil {
			err2 = zw.Close()
		}
		pw.CloseWithError(err2)
		done <- nil
	}()
	wire := &budgetiotest.CountingReader{R: pr}
	consumer := &fakeConsumer{}
	h := NewHandler(Options{Traces: consumer, MaxBodyBytes: limit})
	req := httptest.NewRequest(http.MethodPost, TracesPath, wire)
	req.Header.Set("Content-Type", contentTypeProtobuf)
	req.Header.Set("Content-Encoding", "gzip")
	req.ContentLength = -1

	var before, after runtimeMem
	before.read()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	after.read()
	pr.CloseWithError(errors.New("test done")) // stops the writer
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413; body %q", rec.Code, rec.Body)
	}
	if consumer.calls() != 0 {
		t.Error("consumer was called")
	}
	if !strings.Contains(rec.Body.String(), "after decompression") {
		t.Errorf("body %q does not name the decompressed limit", rec.Body)
	}
	// Zeros compress about 1000:1; the handler must stop at limit+1
	// decompressed bytes, i.e. after a few KiB of gzip.
	if wire.N > 64<<10 {
		t.Errorf("handler read %d compressed bytes", wire.N)
	}
	// The writer goroutine's gzip state and the pipe are counted too.
	if alloc := after.totalAlloc - before.totalAlloc; alloc > 16*limit {
		t.Errorf("handling the bomb allocated %d bytes, limit is %d", alloc, limit)
	}
}

// TestServerEndToEnd runs the handler behind a real HTTP server on
// 127.0.0.1, with concurrent clients, gzip and both encodings, checking
// that pooled buffers are never shared between requests.
func TestServerEndToEnd(t *testing.T) {
	consumer := &fakeConsumer{}
	srv := httptest.NewServer(NewHandler(Options{Traces: consumer}))
	defer srv.Close()

	const clients, perClient = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, clients*perClient)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perClient {
				n := 1 + c*perClient + i // a distinct span count per request
				req := sampleTraces(n)
				var body []byte
				ct := contentTypeProtobuf
				if i%2 == 0 {
					ct = contentTypeJSON
					body = mustJSON(t, req)
				} else {
					body = mustProto(t, req)
				}
				hreq, _ := http.NewRequest(http.MethodPost, srv.URL+TracesPath, bytes.NewReader(budgetiotest.Gzipped(t, body)))
				hreq.Header.Set("Content-Type", ct)
				hreq.Header.Set("Content-Encoding", "gzip")
				resp, err := srv.Client().Do(hreq)
				if err != nil {
					errs <- err
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct {
					errs <- fmt.Errorf("request %d: %s %s", n, resp.Status, resp.Header.Get("Content-Type"))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(consumer.bad) > 0 {
		t.Fatalf("consumer got undecodable bodies: %v", consumer.bad)
	}
	seen := map[int]bool{}
	for _, req := range consumer.traces {
		n := len(req.ResourceSpans[0].ScopeSpans[0].Spans)
		if seen[n] || !proto.Equal(req, sampleTraces(n)) {
			t.Errorf("request with %d spans arrived damaged or twice", n)
		}
		seen[n] = true
	}
	if len(seen) != clients*perClient {
		t.Errorf("consumer saw %d distinct requests, want %d", len(seen), clients*perClient)
	}

	// A Content-Length over the limit is refused before the body is read.
	hreq, _ := http.NewRequest(http.MethodPost, srv.URL+TracesPath, strings.NewReader("x"))
	hreq.Header.Set("Content-Type", contentTypeProtobuf)
	hreq.ContentLength = DefaultMaxBodyBytes + 1
	hreq.Body = io.NopCloser(io.LimitReader(zeroReader{}, DefaultMaxBodyBytes+1))
	resp, err := srv.Client().Do(hreq)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized Content-Length: %s, want 413", resp.Status)
		}
	} // else: the server may close the connection while the client still sends
}

// runtimeMem is a snapshot of the allocation counter.
type runtimeMem struct{ totalAlloc uint64 }

func (m *runtimeMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.totalAlloc = ms.TotalAlloc
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
