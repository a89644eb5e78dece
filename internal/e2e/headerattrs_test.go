package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"

	"github.com/flowscope/flowscope/ingest/otlpjson"
)

// The request headers of the header-capture tests, and the correlation IDs
// they carry: x-request-id under the default correlation key
// http.request.header.x-request-id, and correlation_id (also a default
// key) as a percent-encoded W3C baggage member.
const (
	headerRequestID = "rid-123"
	headerBaggage   = "correlation_id=corr-r2-3,other=x%20y"
	baggageCorrID   = "corr-r2-3"
)

// TestOtelHTTPHeaderCorrelation runs a real net/http server wrapped by
// otelhttp, called through otelhttp's transport, with the OpenTelemetry Go
// SDK exporting over OTLP/HTTP. The request headers x-request-id and
// baggage are recorded on the server span as the semantic conventions say:
// http.request.header.<name>, a string array. otelhttp (v0.72.0) has no
// option to capture request headers, so the handler adds them to the span
// otelhttp started. The trace must then be found by both correlation IDs
// and by attribute search on an array element.
func TestOtelHTTPHeaderCorrelation(t *testing.T) {
	s := startServer(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.addrs.OTLPHTTP), otlptracehttp.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewWithAttributes("", attribute.String("service.name", "go-otelhttp"))))
	defer tp.Shutdown(context.Background())
	prop := propagation.TraceContext{}

	serverTrace := make(chan trace.TraceID, 1)
	handler := otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		span := trace.SpanFromContext(r.Context())
		span.SetAttributes(
			attribute.StringSlice("http.request.header.x-request-id", r.Header.Values("X-Request-Id")),
			attribute.StringSlice("http.request.header.baggage", r.Header.Values("Baggage")),
		)
		select {
		case serverTrace <- span.SpanContext().TraceID():
		default:
		}
		io.WriteString(w, "ok")
	}), "GET /orders", otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))
	srv := httptest.NewServer(handler)
	defer srv.Close()

	client := &http.Client{Timeout: 10 * time.Second,
		Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))}
	req, err := http.NewRequestWithContext(ctx, "GET", srv.URL+"/orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Request-Id", headerRequestID)
	req.Header.Set("Baggage", headerBaggage)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err := tp.Shutdown(ctx); err != nil { // flushes the exporter
		t.Fatalf("export: %v", err)
	}
	var id trace.TraceID
	select {
	case id = <-serverTrace:
	default:
	}
	if !id.IsValid() {
		t.Fatal("the handler saw no span")
	}
	checkHeaderCorrelation(t, s, id.String(), 2)
}

// checkHeaderCorrelation checks that trace traceID (of spans spans) holds a
// span with the captured request headers as string arrays, and that
// GET /api/v1/correlations/{id} finds it by the x-request-id header and by
// the baggage member, and GET /api/v1/traces by an array element.
func checkHeaderCorrelation(t *testing.T, s *server, traceID string, spans int) {
	t.Helper()
	code, body := s.get(t, "/api/v1/traces/"+traceID)
	if code != 200 {
		t.Fatalf("GET trace %s: %d %s", traceID, code, body)
	}
	td, err := otlpjson.UnmarshalTracesData(body)
	if err != nil {
		t.Fatalf("decode trace: %v", err)
	}
	n, arrays := 0, 0
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				n++
				rid := arrayStrings(sp.Attributes, "http.request.header.x-request-id")
				bag := arrayStrings(sp.Attributes, "http.request.header.baggage")
				if rid == nil && bag == nil {
					continue
				}
				if !slices.Equal(rid, []string{headerRequestID}) || !slices.Equal(bag, []string{headerBaggage}) {
					t.Fatalf("span %q: header arrays x-request-id %q, baggage %q", sp.Name, rid, bag)
				}
				arrays++
			}
		}
	}
	if n != spans || arrays != 1 {
		t.Fatalf("trace %s: %d spans, %d with the header arrays; want %d and 1:\n%s", traceID, n, arrays, spans, body)
	}

	var summaries struct {
		Traces []struct{ TraceID string }
	}
	find := func(path string) {
		t.Helper()
		summaries.Traces = nil
		s.getJSON(t, path, &summaries)
		if !slices.ContainsFunc(summaries.Traces, func(tr struct{ TraceID string }) bool { return tr.TraceID == traceID }) {
			t.Errorf("GET %s does not find trace %s: %+v", path, traceID, summaries.Traces)
		}
	}
	find("/api/v1/correlations/" + url.PathEscape(headerRequestID))
	find("/api/v1/correlations/" + url.PathEscape(baggageCorrID))
	find("/api/v1/traces?" + url.Values{"attr.http.request.header.x-request-id": {headerRequestID}}.Encode())
	find("/api/v1/traces?" + url.Values{"attr.http.request.header.baggage": {headerBaggage}}.Encode())
}

// arrayStrings returns the string elements of array attribute key in kvs;
// nil when kvs has no such array.
func arrayStrings(kvs []*commonpb.KeyValue, key string) []string {
	for _, kv := range kvs {
		if kv.Key != key {
			continue
		}
		arr := kv.Value.GetArrayValue()
		if arr == nil {
			return nil
		}
		out := []string{}
		for _, v := range arr.Values {
			out = append(out, v.GetStringValue())
		}
		return out
	}
	return nil
}
