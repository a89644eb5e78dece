package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	zipkingo "github.com/openzipkin/zipkin-go"
	zipkinhttp "github.com/openzipkin/zipkin-go/middleware/http"
	"github.com/openzipkin/zipkin-go/model"
	"github.com/openzipkin/zipkin-go/reporter"
	httpreporter "github.com/openzipkin/zipkin-go/reporter/http"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// TestZipkinAPI serves Zipkin's query API v2 on the Zipkin port with data
// sent by zipkin-go (real HTTP calls through its middleware, with shared
// server spans, and hand-made spans of every kind: 64- and 128-bit trace
// IDs, tags, annotations, remote endpoints, errors, a span without
// duration) and by the OpenTelemetry Go SDK over OTLP/gRPC. It decodes
// every answer with zipkin-go's model and compares it with what was sent,
// then checks the search parameters against Zipkin's documented
// semantics, the name lists, traceMany and the dependency links.
func TestZipkinAPI(t *testing.T) {
	s := startServer(t, "")
	zc := &zkClient{t: t, base: "http://" + s.addrs.Zipkin}
	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()

	var reporters []*zkRecorder
	newReporter := func() *zkRecorder {
		r := &zkRecorder{inner: httpreporter.NewReporter(zc.base+"/api/v2/spans",
			httpreporter.Logger(log.New(io.Discard, "", 0)), httpreporter.BatchInterval(20*time.Millisecond))}
		reporters = append(reporters, r)
		return r
	}

	// (a) zipkin-go's middleware: frontend calls backend over HTTP, with
	// 128-bit trace IDs and shared server spans; the last call fails.
	newTracer := func(service string, rep reporter.Reporter) *zipkingo.Tracer {
		ep, err := zipkingo.NewEndpoint(service, "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr, err := zipkingo.NewTracer(rep, zipkingo.WithLocalEndpoint(ep), zipkingo.WithSharedSpans(true),
			zipkingo.WithTraceID128Bit(true))
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	frontTr, backTr := newTracer("frontend", newReporter()), newTracer("backend", newReporter())
	backend := httptest.NewServer(zipkinhttp.NewServerMiddleware(backTr,
		zipkinhttp.ServerTags(map[string]string{"tier": "api"}))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "ok")
	})))
	client, err := zipkinhttp.NewClient(frontTr, zipkinhttp.WithRemoteEndpoint(&model.Endpoint{ServiceName: "backend"}))
	if err != nil {
		t.Fatal(err)
	}
	const calls = 3
	var httpTraces []string
	for i := range calls {
		root := frontTr.StartSpan("checkout", zipkingo.Kind(model.Server))
		root.Tag("order.id", fmt.Sprint("web-", i))
		path := "/ok"
		if i == calls-1 {
			path = "/fail"
		}
		req, _ := http.NewRequestWithContext(zipkingo.NewContext(ctx, root), "GET", backend.URL+path, nil)
		resp, err := client.DoWithAppSpan(req, "get "+path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		root.Finish()
		httpTraces = append(httpTraces, root.Context().TraceID.String())
	}
	failTrace := httpTraces[calls-1]
	backend.Close()

	// (a) hand-made spans with known times and durations: M1 (128-bit) a
	// shop → payments call with a shared server span, its children and a
	// producer without duration; M2 (64-bit) old; M3 (64-bit) newer.
	base := time.Now().Add(-10 * time.Minute).Truncate(time.Millisecond)
	m1 := model.TraceID{High: 0x0af7651916cd43dd, Low: 0x8448eb211c80319c}
	m2, m3 := model.TraceID{Low: 0x2222_0000_0000_0002}, model.TraceID{Low: 0x3333_0000_0000_0003}
	id := func(n uint64) *model.ID { i := model.ID(n); return &i }
	man := newReporter()
	for _, sp := range []model.SpanModel{
		{SpanContext: model.SpanContext{TraceID: m1, ID: 0x1a}, Name: "checkout", Kind: model.Server,
			Timestamp: base, Duration: 250 * time.Millisecond,
			LocalEndpoint:  &model.Endpoint{ServiceName: "shop"},
			RemoteEndpoint: &model.Endpoint{IPv4: net.ParseIP("192.0.2.10"), Port: 5555},
			Tags:           map[string]string{"order.id": "o-1", "customer": "gold"}},
		{SpanContext: model.SpanContext{TraceID: m1, ID: 0x1b, ParentID: id(0x1a)}, Name: "charge", Kind: model.Client,
			Timestamp: base.Add(10 * time.Millisecond), Duration: 200 * time.Millisecond,
			LocalEndpoint:  &model.Endpoint{ServiceName: "shop"},
			RemoteEndpoint: &model.Endpoint{ServiceName: "payments", IPv6: net.ParseIP("2001:db8::7"), Port: 443},
			Annotations: []model.Annotation{{Timestamp: base.Add(11 * time.Millisecond), Value: "ws"},
				{Timestamp: base.Add(209 * time.Millisecond), Value: "wr"}},
			Tags: map[string]string{"error": "card declined"}},
		{SpanContext: model.SpanContext{TraceID: m1, ID: 0x1b, ParentID: id(0x1a)}, Name: "charge", Kind: model.Server,
			Shared: true, Timestamp: base.Add(20 * time.Millisecond), Duration: 150 * time.Millisecond,
			LocalEndpoint:  &model.Endpoint{ServiceName: "payments"},
			RemoteEndpoint: &model.Endpoint{ServiceName: "shop", IPv4: net.ParseIP("192.0.2.11")},
			Tags:           map[string]string{"http.status_code": "402"}},
		{SpanContext: model.SpanContext{TraceID: m1, ID: 0x1c, ParentID: id(0x1b)}, Name: "fraud-check",
			Timestamp: base.Add(30 * time.Millisecond), Duration: 40 * time.Millisecond,
			LocalEndpoint: &model.Endpoint{ServiceName: "payments"}, Tags: map[string]string{"lc": "fraud", "score": "0.3"}},
		{SpanContext: model.SpanContext{TraceID: m1, ID: 0x1d, ParentID: id(0x1b)}, Name: "publish", Kind: model.Producer,
			Timestamp:     base.Add(190 * time.Millisecond),
			LocalEndpoint: &model.Endpoint{ServiceName: "payments"}, RemoteEndpoint: &model.Endpoint{ServiceName: "kafka"}},
		{SpanContext: model.SpanContext{TraceID: m2, ID: 0x2a}, Name: "checkout", Kind: model.Server,
			Timestamp: base.Add(-50 * time.Minute), Duration: 5 * time.Millisecond,
			LocalEndpoint: &model.Endpoint{ServiceName: "shop"}, Tags: map[string]string{"order.id": "o-2"}},
		{SpanContext: model.SpanContext{TraceID: m3, ID: 0x3a}, Name: "checkout", Kind: model.Server,
			Timestamp: base.Add(time.Minute), Duration: 50 * time.Millisecond,
			LocalEndpoint: &model.Endpoint{ServiceName: "shop"},
			Annotations:   []model.Annotation{{Timestamp: base.Add(time.Minute + time.Millisecond), Value: "cache-miss"}},
			Tags:          map[string]string{"order.id": "o-3", "customer": "gold"}},
	} {
		man.Send(sp)
	}
	for _, r := range reporters {
		if err := r.Close(); err != nil {
			t.Fatalf("zipkin-go reporter: %v", err)
		}
	}

	// (b) the OpenTelemetry Go SDK over OTLP/gRPC.
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(s.addrs.OTLPGRPC), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatal(err)
	}
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithBatcher(exp),
		sdktrace.WithResource(resource.NewWithAttributes("", attribute.String("service.name", "Cart-Service"),
			attribute.String("deployment.environment", "e2e"))))
	tr := tp.Tracer("e2e/zipkinapi", trace.WithInstrumentationVersion("0.1"))
	octx, root := tr.Start(ctx, "POST /cart", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", "POST"), attribute.Int("http.response.status_code", 201)))
	root.AddEvent("validated")
	root.AddEvent("cache", trace.WithAttributes(attribute.String("key", "k1")))
	_, dbSpan := tr.Start(octx, "INSERT cart", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("peer.service", "CartDB"), attribute.String("db.system", "postgresql")))
	dbSpan.SetStatus(codes.Error, "constraint violation")
	dbSpan.End()
	_, local := tr.Start(octx, "price", trace.WithAttributes(attribute.Float64("ratio", 0.5), attribute.Bool("cached", true)))
	local.SetStatus(codes.Ok, "")
	local.End()
	root.End()
	if err := tp.Shutdown(ctx); err != nil {
		t.Fatalf("OTLP export: %v", err)
	}
	otelTrace := root.SpanContext().TraceID().String()

	// What was sent, as Zipkin's server would give it back.
	want := map[string][]model.SpanModel{}
	for _, r := range reporters {
		for _, sp := range zkNormalize(t, r.sent()) {
			want[sp.TraceID.String()] = append(want[sp.TraceID.String()], sp)
		}
	}
	for _, st := range tracetest.SpanStubsFromReadOnlySpans(rec.Ended()) {
		want[otelTrace] = append(want[otelTrace], zkFromOTel(st))
	}
	if len(want) != calls+4 || len(want[otelTrace]) != 3 || len(want[m1.String()]) != 5 {
		t.Fatalf("sent %d traces (%d OTel spans, %d in M1)", len(want), len(want[otelTrace]), len(want[m1.String()]))
	}

	t.Run("trace", func(t *testing.T) {
		for tid, spans := range want {
			got := zc.waitTrace(ctx, tid, len(spans))
			zkCompare(t, tid, got, spans)
		}
		// A 64-bit ID asked as 32 digits, upper-case, comes back as 16.
		if got := zc.trace("0000000000000000" + strings.ToUpper(m2.String())); len(got) != 1 || got[0].TraceID != m2 {
			t.Errorf("M2 by its padded ID: %+v", got)
		}
		if code, _, body := zc.get("/api/v2/trace/" + m1.String()[16:]); code != 404 {
			t.Errorf("the low half of a 128-bit ID: %d %s (Zipkin's strict trace IDs)", code, body)
		}
		if code, _, body := zc.get("/api/v2/trace/xyz"); code != 400 || string(body) != "xyz should be lower-hex encoded with no prefix" {
			t.Errorf("malformed ID: %d %s", code, body)
		}
	})

	t.Run("traceMany", func(t *testing.T) {
		got := zc.traceIDs("/api/v2/traceMany?traceIds=" + m1.String() + ",00000000000000ff," + m2.String())
		if !slices.Equal(got, []string{m1.String(), m2.String()}) {
			t.Errorf("traceMany: %v", got)
		}
		if code, _, body := zc.get("/api/v2/traceMany?traceIds=" + m1.String()); code != 400 {
			t.Errorf("one ID: %d %s", code, body)
		}
	})

	t.Run("names", func(t *testing.T) {
		services := map[string]bool{}
		spanNames := map[string]map[string]bool{}
		remotes := map[string]map[string]bool{}
		for _, spans := range want {
			for _, sp := range spans {
				svc := sp.LocalEndpoint.ServiceName
				services[svc] = true
				if spanNames[svc] == nil {
					spanNames[svc], remotes[svc] = map[string]bool{}, map[string]bool{}
				}
				spanNames[svc][sp.Name] = true
				if sp.RemoteEndpoint != nil && sp.RemoteEndpoint.ServiceName != "" {
					remotes[svc][sp.RemoteEndpoint.ServiceName] = true
				}
			}
		}
		if got, want := zc.names("/api/v2/services"), zkKeys(services); !slices.Equal(got, want) {
			t.Errorf("services %v, want %v", got, want)
		}
		for svc := range services {
			if got, want := zc.names("/api/v2/spans?serviceName="+url.QueryEscape(strings.ToUpper(svc))), zkKeys(spanNames[svc]); !slices.Equal(got, want) {
				t.Errorf("span names of %s: %v, want %v", svc, got, want)
			}
			if got, want := zc.names("/api/v2/remoteServices?serviceName="+url.QueryEscape(svc)), zkKeys(remotes[svc]); !slices.Equal(got, want) {
				t.Errorf("remote services of %s: %v, want %v", svc, got, want)
			}
		}
		if got := zc.names("/api/v2/spans?serviceName=shop&spanKind=client"); !slices.Equal(got, []string{"charge"}) {
			t.Errorf("client span names of shop: %v", got)
		}
	})

	t.Run("search", func(t *testing.T) {
		ms := func(tm time.Time) string { return fmt.Sprint(tm.UnixMilli()) }
		M1, M2, M3 := m1.String(), m2.String(), m3.String()
		for _, tt := range []struct {
			query string
			want  []string
		}{
			{"serviceName=shop", []string{M3, M1, M2}},
			{"serviceName=SHOP&limit=1", []string{M3}},
			{"serviceName=shop&limit=2", []string{M3, M1}},
			{"serviceName=shop&spanName=checkout&minDuration=100000", []string{M1}},
			{"serviceName=shop&minDuration=40000&maxDuration=60000", []string{M3}},
			{"serviceName=shop&minDuration=200000&maxDuration=200000", []string{M1}}, // the client span
			{"serviceName=payments&minDuration=200000", nil},
			{"serviceName=payments&spanName=publish&minDuration=1", nil}, // no duration
			{"serviceName=shop&annotationQuery=customer%3Dgold", []string{M3, M1}},
			{"serviceName=shop&annotationQuery=customer%3Dgold+and+cache-miss", []string{M3}},
			{"serviceName=shop&annotationQuery=customer+and+order.id%3Do-1", []string{M1}},
			{"serviceName=shop&annotationQuery=error", []string{M1}},
			{"serviceName=payments&annotationQuery=error", nil}, // the error is shop's
			{"annotationQuery=" + url.QueryEscape("error=card declined"), []string{M1}},
			{"annotationQuery=ws+and+error", []string{M1}},
			{"annotationQuery=ws+and+tier", nil}, // never on one span
			{"serviceName=payments&annotationQuery=lc%3Dfraud+and+score%3D0.3", []string{M1}},
			{"remoteServiceName=payments", []string{M1}},
			{"serviceName=shop&remoteServiceName=PAYMENTS", []string{M1}},
			{"serviceName=payments&remoteServiceName=payments", nil},
			{"serviceName=payments&remoteServiceName=kafka", []string{M1}},
			{"serviceName=payments&remoteServiceName=shop&spanName=charge", []string{M1}},
			{"endTs=" + ms(base.Add(-40*time.Minute)) + "&lookback=1200000", []string{M2}},
			{"endTs=" + ms(base) + "&lookback=1", []string{M1}},
			{"endTs=" + ms(base.Add(-time.Millisecond)) + "&lookback=1", nil},
			{"serviceName=shop&lookback=" + fmt.Sprint(time.Since(base.Add(-30*time.Minute)).Milliseconds()), []string{M3, M1}},
			{"serviceName=cart-service", []string{otelTrace}},
			{"serviceName=Cart-Service&annotationQuery=error", []string{otelTrace}},
			{"serviceName=cart-service&annotationQuery=" + url.QueryEscape("otel.status_description=constraint violation"), []string{otelTrace}},
			{"annotationQuery=http.status_code%3D201", []string{otelTrace}},
			{"annotationQuery=ratio%3D0.5+and+cached%3Dtrue+and+span.kind%3Dinternal", []string{otelTrace}},
			{"annotationQuery=deployment.environment%3De2e+and+validated", []string{otelTrace}},
			{"remoteServiceName=cartdb", []string{otelTrace}},
			{"spanName=insert+cart", []string{otelTrace}},
			{"serviceName=backend&annotationQuery=error", []string{failTrace}},
			{"serviceName=nobody", nil},
		} {
			got := zc.traceIDs("/api/v2/traces?" + tt.query)
			if tt.want == nil {
				tt.want = []string{}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%s: %v, want %v", tt.query, got, tt.want)
			}
		}
		// Trace sets whose order follows the calls' wall-clock times.
		asSet := func(ids []string) []string { s := slices.Clone(ids); slices.Sort(s); return s }
		for _, q := range []string{"serviceName=frontend&spanName=checkout", "serviceName=backend&annotationQuery=tier%3Dapi"} {
			if got := asSet(zc.traceIDs("/api/v2/traces?" + q)); !slices.Equal(got, asSet(httpTraces)) {
				t.Errorf("%s: %v, want %v", q, got, httpTraces)
			}
		}
		if got := zc.traceIDs("/api/v2/traces?limit=2"); len(got) != 2 {
			t.Errorf("limit=2: %v", got)
		}
		all := zc.traceIDs("/api/v2/traces?limit=100")
		if len(all) != len(want) {
			t.Errorf("all traces: %d, want %d", len(all), len(want))
		}
		for _, tt := range []struct{ query, msg string }{
			{"limit=0", "limit <= 0"},
			{"limit=ten", `For input string: "ten"`},
			{"maxDuration=10", "maxDuration is only valid with minDuration"},
			{"minDuration=10&maxDuration=9", "maxDuration < minDuration"},
			{"endTs=-5", "endTs <= 0"},
		} {
			if code, _, body := zc.get("/api/v2/traces?" + tt.query); code != 400 || string(body) != tt.msg {
				t.Errorf("%s: %d %q, want 400 %q", tt.query, code, body, tt.msg)
			}
		}
	})

	t.Run("dependencies", func(t *testing.T) {
		wantLinks := []zkLink{
			{"cart-service", "cartdb", 1, 1},
			{"frontend", "backend", calls, 1},
			{"payments", "kafka", 1, 0},
			{"shop", "payments", 1, 1},
		}
		path := fmt.Sprintf("/api/v2/dependencies?endTs=%d&lookback=%d", time.Now().UnixMilli(), (2 * time.Hour).Milliseconds())
		var got []zkLink
		for {
			got = zc.links(path)
			if reflect.DeepEqual(got, wantLinks) || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !reflect.DeepEqual(got, wantLinks) {
			t.Errorf("dependencies %+v\nwant %+v", got, wantLinks)
		}
		if got := zc.links(fmt.Sprintf("/api/v2/dependencies?endTs=%d&lookback=60000", base.Add(-3*time.Hour).UnixMilli())); len(got) != 0 {
			t.Errorf("dependencies three hours ago: %+v", got)
		}
		if code, _, body := zc.get("/api/v2/dependencies"); code != 400 || string(body) != "Mandatory parameter/header is missing: endTs" {
			t.Errorf("no endTs: %d %s", code, body)
		}
	})

	t.Run("http", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, zc.base+"/api/v2/services", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Errorf("DELETE: %d", resp.StatusCode)
		}
		if code, _, _ := zc.get("/api/v2/nothing"); code != 404 {
			t.Errorf("unknown path: %d", code)
		}
		if _, h, _ := zc.get("/api/v2/services"); h.Get("Cache-Control") != "max-age=300, must-revalidate" ||
			h.Get("Content-Type") != "application/json; charset=utf-8" {
			t.Errorf("services headers %v", h)
		}
	})
}

// zkRecorder is a zipkin-go reporter that records what it sends.
type zkRecorder struct {
	inner reporter.Reporter
	mu    sync.Mutex
	spans []model.SpanModel
}

func (r *zkRecorder) Send(s model.SpanModel) {
	r.mu.Lock()
	r.spans = append(r.spans, s)
	r.mu.Unlock()
	r.inner.Send(s)
}

func (r *zkRecorder) Close() error { return r.inner.Close() }

func (r *zkRecorder) sent() []model.SpanModel {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.spans)
}

// zkNormalize returns spans as Zipkin would give them back: through
// zipkin-go's JSON (lower-cased names, times in µs), with the local
// endpoint reduced to its service name (our receiver keeps no more).
func zkNormalize(t *testing.T, spans []model.SpanModel) []model.SpanModel {
	t.Helper()
	b, err := json.Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	var out []model.SpanModel
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if ep := out[i].LocalEndpoint; ep != nil {
			out[i].LocalEndpoint = &model.Endpoint{ServiceName: ep.ServiceName}
		}
	}
	return out
}

// zkFromOTel is the Zipkin span the OpenTelemetry Collector's zipkin
// exporter makes of an SDK span (for the attribute types used here).
func zkFromOTel(st tracetest.SpanStub) model.SpanModel {
	micros := func(ns int64) int64 { return (ns + 500) / 1000 }
	tid, sid := st.SpanContext.TraceID(), st.SpanContext.SpanID()
	z := model.SpanModel{
		SpanContext: model.SpanContext{
			TraceID: model.TraceID{High: binary.BigEndian.Uint64(tid[:8]), Low: binary.BigEndian.Uint64(tid[8:])},
			ID:      model.ID(binary.BigEndian.Uint64(sid[:])),
		},
		Name:      strings.ToLower(st.Name),
		Timestamp: time.Unix(0, micros(st.StartTime.UnixNano())*1000),
		Duration:  time.Duration(micros(st.EndTime.Sub(st.StartTime).Nanoseconds())) * time.Microsecond,
		Tags:      map[string]string{"otel.scope.name": st.InstrumentationScope.Name, "otel.scope.version": st.InstrumentationScope.Version},
	}
	if st.Parent.HasSpanID() {
		p := st.Parent.SpanID()
		z.ParentID = new(model.ID)
		*z.ParentID = model.ID(binary.BigEndian.Uint64(p[:]))
	}
	switch st.SpanKind {
	case trace.SpanKindClient:
		z.Kind = model.Client
	case trace.SpanKindServer:
		z.Kind = model.Server
	case trace.SpanKindInternal:
		z.Tags["span.kind"] = "internal"
	}
	for _, kv := range st.Resource.Attributes() {
		if kv.Key == "service.name" {
			z.LocalEndpoint = &model.Endpoint{ServiceName: strings.ToLower(kv.Value.AsString())}
			continue
		}
		z.Tags[string(kv.Key)] = kv.Value.Emit()
	}
	for _, kv := range st.Attributes {
		if kv.Key == "peer.service" {
			z.RemoteEndpoint = &model.Endpoint{ServiceName: strings.ToLower(kv.Value.AsString())}
			continue
		}
		z.Tags[string(kv.Key)] = kv.Value.Emit()
	}
	if v, ok := z.Tags["http.response.status_code"]; ok {
		z.Tags["http.status_code"] = v
	}
	switch st.Status.Code {
	case codes.Error:
		z.Tags["error"] = "true"
		z.Tags["otel.status_code"] = "ERROR"
		if st.Status.Description != "" {
			z.Tags["otel.status_description"] = st.Status.Description
		}
	case codes.Ok:
		z.Tags["otel.status_code"] = "OK"
	}
	for _, ev := range st.Events {
		v := ev.Name
		if len(ev.Attributes) > 0 {
			m := map[string]any{}
			for _, kv := range ev.Attributes {
				m[string(kv.Key)] = kv.Value.AsInterface()
			}
			b, _ := json.Marshal(m)
			v = fmt.Sprintf("%s|%s|%d", ev.Name, b, 0)
		}
		z.Annotations = append(z.Annotations, model.Annotation{Timestamp: time.Unix(0, micros(ev.Time.UnixNano())*1000), Value: v})
	}
	return z
}

// zkCompare compares the spans of one trace by (ID, shared), field by
// field.
func zkCompare(t *testing.T, tid string, got, want []model.SpanModel) {
	t.Helper()
	key := func(s model.SpanModel) string { return fmt.Sprint(s.ID, s.Shared) }
	order := func(ss []model.SpanModel) []model.SpanModel {
		ss = slices.Clone(ss)
		slices.SortFunc(ss, func(a, b model.SpanModel) int { return strings.Compare(key(a), key(b)) })
		return ss
	}
	got, want = order(got), order(want)
	if len(got) != len(want) {
		t.Errorf("trace %s: %d spans, want %d", tid, len(got), len(want))
		return
	}
	for i := range got {
		g, w := got[i], want[i]
		slices.SortStableFunc(w.Annotations, func(a, b model.Annotation) int { return a.Timestamp.Compare(b.Timestamp) })
		if !g.Timestamp.Equal(w.Timestamp) {
			t.Errorf("trace %s span %s: timestamp %v, want %v", tid, key(w), g.Timestamp, w.Timestamp)
		}
		g.Timestamp, w.Timestamp = time.Time{}, time.Time{}
		for j := range min(len(g.Annotations), len(w.Annotations)) {
			if g.Annotations[j].Timestamp.Equal(w.Annotations[j].Timestamp) {
				g.Annotations[j].Timestamp = w.Annotations[j].Timestamp
			}
		}
		if len(w.Tags) == 0 {
			w.Tags = nil
		}
		if !reflect.DeepEqual(g, w) {
			gj, _ := json.Marshal(g)
			wj, _ := json.Marshal(w)
			t.Errorf("trace %s span %s:\ngot  %s\nwant %s", tid, key(w), gj, wj)
		}
	}
}

// zkClient reads Zipkin's API v2 on the Zipkin port.
type zkClient struct {
	t    *testing.T
	base string
}

func (c *zkClient) get(path string) (int, http.Header, []byte) {
	c.t.Helper()
	resp, err := http.Get(c.base + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// getJSON fetches path, wants 200 and decodes the body into v.
func (c *zkClient) getJSON(path string, v any) {
	c.t.Helper()
	code, _, body := c.get(path)
	if code != 200 {
		c.t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		c.t.Fatalf("GET %s: decode: %v\n%s", path, err, body)
	}
}

func (c *zkClient) trace(id string) []model.SpanModel {
	c.t.Helper()
	var spans []model.SpanModel
	c.getJSON("/api/v2/trace/"+id, &spans)
	return spans
}

// waitTrace polls a trace until it has n spans or ctx ends.
func (c *zkClient) waitTrace(ctx context.Context, id string, n int) []model.SpanModel {
	c.t.Helper()
	for {
		code, _, body := c.get("/api/v2/trace/" + id)
		var spans []model.SpanModel
		if code == 200 {
			if err := json.Unmarshal(body, &spans); err != nil {
				c.t.Fatalf("trace %s: %v\n%s", id, err, body)
			}
		}
		if len(spans) >= n || ctx.Err() != nil {
			return spans
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// traceIDs returns the trace IDs of a list of traces, checking that
// each trace's spans share its ID.
func (c *zkClient) traceIDs(path string) []string {
	c.t.Helper()
	var traces [][]model.SpanModel
	c.getJSON(path, &traces)
	ids := []string{}
	for _, tr := range traces {
		if len(tr) == 0 {
			c.t.Fatalf("GET %s: an empty trace", path)
		}
		for _, sp := range tr {
			if sp.TraceID != tr[0].TraceID {
				c.t.Errorf("GET %s: trace %s holds a span of %s", path, tr[0].TraceID, sp.TraceID)
			}
		}
		ids = append(ids, tr[0].TraceID.String())
	}
	return ids
}

func (c *zkClient) names(path string) []string {
	c.t.Helper()
	names := []string{}
	c.getJSON(path, &names)
	return names
}

// zkLink is a Zipkin dependency link.
type zkLink struct {
	Parent     string `json:"parent"`
	Child      string `json:"child"`
	CallCount  int64  `json:"callCount"`
	ErrorCount int64  `json:"errorCount"`
}

func (c *zkClient) links(path string) []zkLink {
	c.t.Helper()
	var links []zkLink
	c.getJSON(path, &links)
	slices.SortFunc(links, func(a, b zkLink) int {
		return strings.Compare(a.Parent+"\x00"+a.Child, b.Parent+"\x00"+b.Child)
	})
	return links
}

func zkKeys(m map[string]bool) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
