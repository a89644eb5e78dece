package e2e

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	zipkingo "github.com/openzipkin/zipkin-go"
	zipkinhttp "github.com/openzipkin/zipkin-go/middleware/http"
	"github.com/openzipkin/zipkin-go/model"
	httpreporter "github.com/openzipkin/zipkin-go/reporter/http"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// TestZipkinGoRoundTrip instruments a real HTTP call with zipkin-go's
// client and server middleware, reporting Zipkin v2 JSON with zipkin-go's
// HTTP reporter to the collector's Zipkin port, and checks that every span
// landed with its tags, kind and remote endpoint, and that the flow graph
// has the call edge with its count.
func TestZipkinGoRoundTrip(t *testing.T) {
	s := startServer(t, "")
	newTracer := func(service string) (*zipkingo.Tracer, func()) {
		rep := httpreporter.NewReporter("http://"+s.addrs.Zipkin+"/api/v2/spans",
			httpreporter.Logger(log.New(io.Discard, "", 0)), httpreporter.BatchInterval(50*time.Millisecond))
		ep, err := zipkingo.NewEndpoint(service, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := zipkingo.NewTracer(rep, zipkingo.WithLocalEndpoint(ep), zipkingo.WithSharedSpans(true))
		if err != nil {
			t.Fatal(err)
		}
		return tr, func() { rep.Close() }
	}
	frontTr, closeFront := newTracer("frontend")
	backTr, closeBack := newTracer("backend")

	backend := httptest.NewServer(zipkinhttp.NewServerMiddleware(backTr,
		zipkinhttp.ServerTags(map[string]string{"tier": "api"}))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})))
	defer backend.Close()
	client, err := zipkinhttp.NewClient(frontTr, zipkinhttp.TransportOptions(zipkinhttp.TransportTags(map[string]string{"client.lib": "zipkin-go"})),
		zipkinhttp.WithRemoteEndpoint(&model.Endpoint{ServiceName: "backend"}))
	if err != nil {
		t.Fatal(err)
	}
	const calls = 5
	var traceIDs []string
	for i := range calls {
		root := frontTr.StartSpan("checkout", zipkingo.Kind(model.Server))
		root.Tag("order.id", fmt.Sprint("o-", i))
		ctx := zipkingo.NewContext(context.Background(), root)
		path := "/ok"
		if i == calls-1 {
			path = "/fail"
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", backend.URL+path, nil)
		resp, err := client.DoWithAppSpan(req, "get "+path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		root.Finish()
		traceIDs = append(traceIDs, root.Context().TraceID.String())
	}
	closeFront()
	closeBack()

	// Every trace has the root, the app span, the client span and the
	// shared server span.
	kinds := map[tracepb.Span_SpanKind]int{}
	var peer, tier, lib, errs int
	for _, id := range traceIDs {
		var td *tracepb.TracesData
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, body := s.get(t, "/api/v1/traces/"+id)
			if code == 200 {
				if td, err = otlpjson.UnmarshalTracesData(body); err != nil {
					t.Fatal(err)
				}
				if otlptest.CountSpans(td) >= 4 || time.Now().After(deadline) {
					break
				}
			} else if time.Now().After(deadline) {
				t.Fatalf("trace %s: %d %s", id, code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if n := otlptest.CountSpans(td); n != 4 {
			t.Errorf("trace %s: %d spans, want 4 (root, app, client, server)", id, n)
		}
		for _, rs := range td.ResourceSpans {
			svc := attrString(rs.Resource.GetAttributes(), "service.name")
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					kinds[sp.Kind]++
					a := attrMap(sp.Attributes)
					if sp.Kind == tracepb.Span_SPAN_KIND_CLIENT {
						if svc != "frontend" {
							t.Errorf("client span in %q", svc)
						}
						if a["peer.service"] == "backend" {
							peer++
						}
						if a["client.lib"] == "zipkin-go" && a["http.method"] == "GET" {
							lib++
						}
					}
					if sp.Kind == tracepb.Span_SPAN_KIND_SERVER && svc == "backend" {
						if a["tier"] == "api" && a["http.path"] != "" {
							tier++
						}
						if sp.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR {
							errs++
						}
					}
				}
			}
		}
	}
	if kinds[tracepb.Span_SPAN_KIND_CLIENT] != calls || kinds[tracepb.Span_SPAN_KIND_SERVER] != 2*calls {
		t.Errorf("span kinds %v, want %d client and %d server (root + shared server)", kinds, calls, 2*calls)
	}
	if peer != calls || lib != calls || tier != calls {
		t.Errorf("remote endpoints %d, client tags %d, server tags %d; want %d each", peer, lib, tier, calls)
	}
	if errs != 1 {
		t.Errorf("%d backend server spans with status ERROR, want 1 (the /fail call)", errs)
	}

	g := getFlowGraph(t, s, "level=service")
	var found bool
	for _, e := range g.Edges {
		if e.Source == "frontend" && e.Target == "backend" {
			found = true
			if e.Calls != calls || e.Errors != 1 {
				t.Errorf("edge frontend → backend: %v calls, %v errors; want %d and 1", e.Calls, e.Errors, calls)
			}
		} else {
			t.Errorf("unexpected edge %s → %s", e.Source, e.Target)
		}
	}
	if !found {
		t.Errorf("no edge frontend → backend in %+v", g.Edges)
	}
}
