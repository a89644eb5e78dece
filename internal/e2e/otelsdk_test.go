package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/ingest/otlpjson"
)

// TestOTelSDKTraces sends spans with the real OpenTelemetry Go SDK exporters
// over OTLP/gRPC and OTLP/HTTP and reads every one back through
// GET /api/v1/traces/{id}, comparing every field.
func TestOTelSDKTraces(t *testing.T) {
	s := startServer(t, "")
	exporters := map[string]func(context.Context) (*otlptrace.Exporter, error){
		"grpc": func(ctx context.Context) (*otlptrace.Exporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.addrs.OTLPGRPC), otlptracegrpc.WithInsecure())
		},
		"grpc-gzip": func(ctx context.Context) (*otlptrace.Exporter, error) {
			return otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.addrs.OTLPGRPC), otlptracegrpc.WithInsecure(),
				otlptracegrpc.WithCompressor("gzip"))
		},
		"http": func(ctx context.Context) (*otlptrace.Exporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.addrs.OTLPHTTP), otlptracehttp.WithInsecure(),
				otlptracehttp.WithCompression(otlptracehttp.NoCompression))
		},
		"http-gzip": func(ctx context.Context) (*otlptrace.Exporter, error) {
			return otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(s.addrs.OTLPHTTP), otlptracehttp.WithInsecure(),
				otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
		},
	}
	for name, newExp := range exporters {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			exp, err := newExp(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rec := tracetest.NewSpanRecorder()
			res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
				attribute.String("service.name", "e2e-"+name),
				attribute.String("service.instance.id", "i-1"),
				attribute.Int("pid", 42))
			tp := sdktrace.NewTracerProvider(
				sdktrace.WithResource(res),
				sdktrace.WithSpanProcessor(rec),
				sdktrace.WithBatcher(exp),
			)
			makeSpans(ctx, tp.Tracer("e2e/tracer", trace.WithInstrumentationVersion("1.2.3")))
			if err := tp.Shutdown(ctx); err != nil {
				t.Fatalf("export: %v", err)
			}
			stubs := tracetest.SpanStubsFromReadOnlySpans(rec.Ended())
			if len(stubs) != 4 {
				t.Fatalf("recorded %d spans", len(stubs))
			}
			for _, want := range stubs {
				got := fetchSpan(t, s, want.SpanContext.TraceID(), want.SpanContext.SpanID())
				compareSpan(t, want, got)
			}
		})
	}
}

// makeSpans creates a trace with every span feature: kinds, attributes of
// every type, events, links, status.
func makeSpans(ctx context.Context, tr trace.Tracer) {
	_, other := tr.Start(context.Background(), "linked-root", trace.WithSpanKind(trace.SpanKindProducer))
	other.End()
	ctx, root := tr.Start(ctx, "GET /checkout", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(
			attribute.String("http.method", "GET"),
			attribute.Int64("http.status_code", 200),
			attribute.Float64("ratio", 0.25),
			attribute.Bool("cached", true),
			attribute.StringSlice("tags", []string{"a", "b"}),
			attribute.Int64Slice("codes", []int64{1, 2, 3}),
		),
		trace.WithLinks(trace.Link{SpanContext: other.SpanContext(), Attributes: []attribute.KeyValue{attribute.String("link.kind", "follows")}}))
	root.AddEvent("cache miss", trace.WithAttributes(attribute.String("key", "k1")))
	_, child := tr.Start(ctx, "SELECT orders", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("db.system", "postgresql")))
	time.Sleep(2 * time.Millisecond)
	child.RecordError(fmt.Errorf("deadlock"))
	child.SetStatus(codes.Error, "deadlock detected")
	child.End()
	_, internal := tr.Start(ctx, "render", trace.WithSpanKind(trace.SpanKindInternal))
	internal.SetStatus(codes.Ok, "")
	internal.End()
	root.End()
}

func fetchSpan(t *testing.T, s *server, tid trace.TraceID, sid trace.SpanID) *tracepb.Span {
	t.Helper()
	code, body := s.get(t, "/api/v1/traces/"+tid.String())
	if code != 200 {
		t.Fatalf("GET trace %s: %d %s", tid, code, body)
	}
	td, err := otlpjson.UnmarshalTracesData(body)
	if err != nil {
		t.Fatalf("decode trace JSON: %v\n%s", err, body)
	}
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				if hex.EncodeToString(sp.SpanId) == sid.String() {
					// Check resource and scope of this span here.
					if got := attrString(rs.Resource.GetAttributes(), "service.name"); got == "" {
						t.Fatalf("span %s: resource lost: %v", sid, rs.Resource)
					}
					if rs.SchemaUrl != "https://opentelemetry.io/schemas/1.26.0" {
						t.Fatalf("resource schema URL %q", rs.SchemaUrl)
					}
					if ss.Scope.GetName() != "e2e/tracer" || ss.Scope.GetVersion() != "1.2.3" {
						t.Fatalf("scope %v", ss.Scope)
					}
					if attrString(rs.Resource.GetAttributes(), "service.instance.id") != "i-1" || attrString(rs.Resource.GetAttributes(), "pid") != "42" {
						t.Fatalf("resource attributes %v", rs.Resource.GetAttributes())
					}
					return sp
				}
			}
		}
	}
	t.Fatalf("span %s not in trace %s:\n%s", sid, tid, body)
	return nil
}

func compareSpan(t *testing.T, want tracetest.SpanStub, got *tracepb.Span) {
	t.Helper()
	name := want.Name
	eq := func(what string, a, b any) {
		t.Helper()
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%s: %s = %v, want %v", name, what, a, b)
		}
	}
	eq("trace ID", hex.EncodeToString(got.TraceId), want.SpanContext.TraceID().String())
	eq("span ID", hex.EncodeToString(got.SpanId), want.SpanContext.SpanID().String())
	wantParent := ""
	if want.Parent.IsValid() {
		wantParent = want.Parent.SpanID().String()
	}
	eq("parent", hex.EncodeToString(got.ParentSpanId), wantParent)
	eq("name", got.Name, want.Name)
	eq("kind", int32(got.Kind), int32(want.SpanKind))
	eq("start", got.StartTimeUnixNano, want.StartTime.UnixNano())
	eq("end", got.EndTimeUnixNano, want.EndTime.UnixNano())
	wantCode := map[codes.Code]tracepb.Status_StatusCode{codes.Unset: 0, codes.Error: 2, codes.Ok: 1}[want.Status.Code]
	eq("status code", got.Status.GetCode(), wantCode)
	eq("status message", got.Status.GetMessage(), want.Status.Description)
	eq("attributes", attrMap(got.Attributes), sdkAttrMap(want.Attributes))
	eq("event count", len(got.Events), len(want.Events))
	for i := range min(len(got.Events), len(want.Events)) {
		eq("event name", got.Events[i].Name, want.Events[i].Name)
		eq("event time", got.Events[i].TimeUnixNano, want.Events[i].Time.UnixNano())
		eq("event attributes", attrMap(got.Events[i].Attributes), sdkAttrMap(want.Events[i].Attributes))
	}
	eq("link count", len(got.Links), len(want.Links))
	for i := range min(len(got.Links), len(want.Links)) {
		eq("link trace", hex.EncodeToString(got.Links[i].TraceId), want.Links[i].SpanContext.TraceID().String())
		eq("link span", hex.EncodeToString(got.Links[i].SpanId), want.Links[i].SpanContext.SpanID().String())
		eq("link attributes", attrMap(got.Links[i].Attributes), sdkAttrMap(want.Links[i].Attributes))
	}
}

func attrString(kvs []*commonpb.KeyValue, key string) string {
	return attrMap(kvs)[key]
}

// attrMap renders OTLP attributes as typed strings for comparison.
func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = anyString(kv.Value)
	}
	return m
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return fmt.Sprint(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return fmt.Sprint(x.DoubleValue)
	case *commonpb.AnyValue_BoolValue:
		return fmt.Sprint(x.BoolValue)
	case *commonpb.AnyValue_ArrayValue:
		var parts []string
		for _, e := range x.ArrayValue.Values {
			parts = append(parts, anyString(e))
		}
		return "[" + fmt.Sprint(parts) + "]"
	}
	return fmt.Sprintf("?%T", v.GetValue())
}

func sdkAttrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		v := kv.Value
		switch v.Type() {
		case attribute.STRINGSLICE:
			m[string(kv.Key)] = "[" + fmt.Sprint(v.AsStringSlice()) + "]"
		case attribute.INT64SLICE:
			var parts []string
			for _, i := range v.AsInt64Slice() {
				parts = append(parts, fmt.Sprint(i))
			}
			m[string(kv.Key)] = "[" + fmt.Sprint(parts) + "]"
		default:
			m[string(kv.Key)] = v.Emit()
		}
	}
	return m
}

var _ = slices.Contains[[]string]
