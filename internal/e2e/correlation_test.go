package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// TestCorrelationAcrossTraces builds two traces joined only by a
// correlation ID: the first carries it as a span attribute; the second is
// started by an asynchronous hop (a new trace, no trace context) whose
// request carries the ID in real OpenTelemetry W3C baggage, which the
// receiving service records as http.request.header.baggage. Both are
// found through GET /api/v1/correlations/{id}, in time order; a trace with
// another ID is not.
func TestCorrelationAcrossTraces(t *testing.T) {
	s := startServer(t, "")
	ctx := context.Background()
	newProvider := func(service string) *sdktrace.TracerProvider {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.addrs.OTLPHTTP), otlptracehttp.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp),
			sdktrace.WithResource(resource.NewWithAttributes("", attribute.String("service.name", service))))
	}
	ordersTP, workerTP := newProvider("orders"), newProvider("worker")
	// Only baggage crosses the hop: the worker's span starts a new trace.
	prop := propagation.Baggage{}

	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rctx := prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		_, span := workerTP.Tracer("worker").Start(rctx, "process order", trace.WithNewRoot(),
			trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(attribute.String("http.request.header.baggage", r.Header.Get("baggage"))))
		if m := baggage.FromContext(rctx).Member("correlation.id"); m.Value() == "" {
			t.Errorf("worker got no correlation.id baggage (header %q)", r.Header.Get("baggage"))
		}
		span.End()
		io.WriteString(w, "queued")
	}))
	defer worker.Close()

	send := func(id string) trace.TraceID {
		member, err := baggage.NewMemberRaw("correlation.id", id)
		if err != nil {
			t.Fatal(err)
		}
		bag, err := baggage.New(member)
		if err != nil {
			t.Fatal(err)
		}
		bctx := baggage.ContextWithBaggage(ctx, bag)
		sctx, span := ordersTP.Tracer("orders").Start(bctx, "place order", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("correlation.id", id)))
		req, _ := http.NewRequestWithContext(sctx, "POST", worker.URL+"/enqueue", nil)
		prop.Inject(sctx, propagation.HeaderCarrier(req.Header))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		span.End()
		return span.SpanContext().TraceID()
	}
	first := send("order 7731/α") // needs percent-encoding in baggage
	time.Sleep(5 * time.Millisecond)
	other := send("order-9999")
	for _, tp := range []*sdktrace.TracerProvider{ordersTP, workerTP} {
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var got struct {
		ID     string
		Traces []struct {
			TraceID         string
			RootServiceName string
		}
	}
	s.getJSON(t, "/api/v1/correlations/"+"order%207731%2F%CE%B1", &got)
	if len(got.Traces) != 2 {
		t.Fatalf("correlation found %d traces, want 2: %+v", len(got.Traces), got)
	}
	if got.Traces[0].TraceID != first.String() || got.Traces[0].RootServiceName != "orders" {
		t.Errorf("first trace %+v, want the orders trace %s", got.Traces[0], first)
	}
	if got.Traces[1].RootServiceName != "worker" || got.Traces[1].TraceID == first.String() || got.Traces[1].TraceID == other.String() {
		t.Errorf("second trace %+v, want the worker's own trace", got.Traces[1])
	}
}
