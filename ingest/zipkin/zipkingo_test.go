package zipkin

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/flowscope/flowscope/ingest"
	zipkingo "github.com/openzipkin/zipkin-go"
	"github.com/openzipkin/zipkin-go/model"
	httpreporter "github.com/openzipkin/zipkin-go/reporter/http"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// recordingConsumer keeps every request it is given and answers with
// result and err.
type recordingConsumer struct {
	mu     sync.Mutex
	reqs   [][]byte
	result ingest.Result
	err    error
}

func (c *recordingConsumer) ConsumeTraces(_ context.Context, req []byte) (ingest.Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reqs = append(c.reqs, bytes.Clone(req))
	return c.result, c.err
}

func (c *recordingConsumer) spans(t *testing.T) []flatSpan {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []flatSpan
	for _, b := range c.reqs {
		out = append(out, flatten(decodeRequest(t, b))...)
	}
	return out
}

// TestZipkinGoReporter sends spans with the real zipkin-go tracer and HTTP
// reporter (Zipkin v2 JSON) to the handler: a client span with a remote
// endpoint, tags and an annotation; the shared server span of the same
// call with an error tag; a child of the server span in the same request;
// and a late child sent in a later request (resolved through the
// handler's ID memory).
func TestZipkinGoReporter(t *testing.T) {
	consumer := &recordingConsumer{}
	var (
		mu       sync.Mutex
		statuses []int
	)
	h := NewHandler(HandlerOptions{Traces: consumer})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		mu.Lock()
		statuses = append(statuses, rec.Code)
		mu.Unlock()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	defer srv.Close()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	reporterOpts := []httpreporter.ReporterOption{
		httpreporter.Client(&http.Client{Transport: transport}),
		httpreporter.Logger(log.New(io.Discard, "", 0)),
	}

	frontend, err := zipkingo.NewEndpoint("frontend", "10.0.0.1:8080")
	if err != nil {
		t.Fatal(err)
	}
	backend, err := zipkingo.NewEndpoint("backend", "10.0.0.2:9000")
	if err != nil {
		t.Fatal(err)
	}

	rep := httpreporter.NewReporter(srv.URL+V2Path, reporterOpts...)
	clientTracer, err := zipkingo.NewTracer(rep, zipkingo.WithLocalEndpoint(frontend), zipkingo.WithTraceID128Bit(true))
	if err != nil {
		t.Fatal(err)
	}
	serverTracer, err := zipkingo.NewTracer(rep, zipkingo.WithLocalEndpoint(backend), zipkingo.WithSharedSpans(true))
	if err != nil {
		t.Fatal(err)
	}
	client := clientTracer.StartSpan("GET /users", zipkingo.Kind(model.Client), zipkingo.RemoteEndpoint(backend))
	client.Tag("http.method", "GET")
	client.Annotate(time.Now(), "wire.send")
	server := serverTracer.StartSpan("GET /users", zipkingo.Kind(model.Server),
		zipkingo.Parent(client.Context()), zipkingo.RemoteEndpoint(frontend))
	server.Tag("error", "database down")
	query := serverTracer.StartSpan("select", zipkingo.Kind(model.Client), zipkingo.Parent(server.Context()),
		zipkingo.RemoteEndpoint(&model.Endpoint{ServiceName: "mysql"}))
	time.Sleep(2 * time.Millisecond)
	query.Finish()
	server.Finish()
	client.Finish()
	if err := rep.Close(); err != nil { // sends the batch
		t.Fatal(err)
	}

	// A late child of the shared server span, in a request of its own.
	rep2 := httpreporter.NewReporter(srv.URL+V2Path, reporterOpts...)
	lateTracer, err := zipkingo.NewTracer(rep2, zipkingo.WithLocalEndpoint(backend))
	if err != nil {
		t.Fatal(err)
	}
	late := lateTracer.StartSpan("audit", zipkingo.Parent(server.Context()))
	time.Sleep(time.Millisecond)
	late.Finish()
	if err := rep2.Close(); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	if len(statuses) != 2 || statuses[0] != http.StatusAccepted || statuses[1] != http.StatusAccepted {
		t.Errorf("statuses %v, want two 202", statuses)
	}
	mu.Unlock()

	spans := consumer.spans(t)
	byName := map[string]flatSpan{}
	for _, f := range spans {
		byName[f.span.Name] = f
	}
	if len(spans) != 4 || len(byName) != 3 {
		t.Fatalf("got %d spans %v, want client, server, select and audit", len(spans), shapes(spans))
	}
	cctx := client.Context()
	traceID := [16]byte{}
	copy(traceID[:8], hexBytes(t, cctx.TraceID.High))
	copy(traceID[8:], hexBytes(t, cctx.TraceID.Low))
	clientID := [8]byte(hexBytes(t, uint64(cctx.ID)))
	serverID := DerivedSpanID(traceID, clientID, 1)

	// Both get /users spans share the name: tell them by kind.
	var cs, ss flatSpan
	for _, f := range spans {
		switch {
		case f.span.Name == "get /users" && f.span.Kind == tracepb.Span_SPAN_KIND_CLIENT:
			cs = f
		case f.span.Name == "get /users" && f.span.Kind == tracepb.Span_SPAN_KIND_SERVER:
			ss = f
		}
	}
	if cs.span == nil || ss.span == nil {
		t.Fatalf("missing client or server span: %v", shapes(spans))
	}
	for _, f := range spans {
		if !bytes.Equal(f.span.TraceId, traceID[:]) {
			t.Errorf("%s: trace ID %x, want %x", f.span.Name, f.span.TraceId, traceID)
		}
		if durationUnknown(f.span) || f.span.EndTimeUnixNano <= f.span.StartTimeUnixNano {
			t.Errorf("%s: duration lost: %d..%d", f.span.Name, f.span.StartTimeUnixNano, f.span.EndTimeUnixNano)
		}
	}

	// Client: the reporter's ID, tags, remote endpoint, annotation.
	check := func(f flatSpan, what string, got, want any) {
		t.Helper()
		if got != want {
			t.Errorf("%s %s: got %v, want %v", f.span.Kind, what, got, want)
		}
	}
	check(cs, "service", cs.service, "frontend")
	check(cs, "span ID", hex.EncodeToString(cs.span.SpanId), hex.EncodeToString(clientID[:]))
	check(cs, "parent", len(cs.span.ParentSpanId), 0)
	check(cs, "http.method", attr(cs.span, "http.method"), "GET")
	check(cs, "peer.service", attr(cs.span, "peer.service"), "backend")
	check(cs, "server.address", attr(cs.span, "server.address"), "10.0.0.2")
	check(cs, "server.port", attr(cs.span, "server.port"), int64(9000))
	if len(cs.span.Events) != 1 || cs.span.Events[0].Name != "wire.send" {
		t.Errorf("client events %v, want wire.send", cs.span.Events)
	}

	// Server: shared, so a derived ID under the client; error tag.
	check(ss, "service", ss.service, "backend")
	check(ss, "span ID", hex.EncodeToString(ss.span.SpanId), hex.EncodeToString(serverID[:]))
	check(ss, "parent", hex.EncodeToString(ss.span.ParentSpanId), hex.EncodeToString(clientID[:]))
	check(ss, "status", ss.span.Status.GetCode(), tracepb.Status_STATUS_CODE_ERROR)
	check(ss, "status message", ss.span.Status.GetMessage(), "database down")
	check(ss, "error tag", attr(ss.span, "error"), "database down")
	check(ss, "peer.service", attr(ss.span, "peer.service"), "frontend")
	check(ss, "client.address", attr(ss.span, "client.address"), "10.0.0.1")
	check(ss, "client.port", attr(ss.span, "client.port"), int64(8080))

	// Children of the shared server span, in its service: under the
	// derived ID, in the same request and in a later one.
	for _, name := range []string{"select", "audit"} {
		f := byName[name]
		check(f, name+" service", f.service, "backend")
		check(f, name+" parent", hex.EncodeToString(f.span.ParentSpanId), hex.EncodeToString(serverID[:]))
	}
	check(byName["select"], "kind", byName["select"].span.Kind, tracepb.Span_SPAN_KIND_CLIENT)
	check(byName["select"], "peer.service", attr(byName["select"].span, "peer.service"), "mysql")
	check(byName["audit"], "kind", byName["audit"].span.Kind, tracepb.Span_SPAN_KIND_INTERNAL)
}

func hexBytes(t *testing.T, v uint64) []byte {
	t.Helper()
	b, err := hex.DecodeString(model.ID(v).String())
	if err != nil || len(b) != 8 {
		t.Fatalf("ID %d: %v", v, err)
	}
	return b
}
