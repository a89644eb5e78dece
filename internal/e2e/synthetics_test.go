package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flowscope/flowscope/ingest/otlpjson"
	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/internal/logtest"
	"github.com/flowscope/flowscope/store"
)

// shopSecret is the API key the journey check sends from ${env:…}: it must
// reach the target and nothing that Flowscope stores or serves.
const (
	shopSecretEnv = "FLOWSCOPE_E2E_SHOP_KEY"
	shopSecret    = "s3cr3t-9f2c41d7e6"
)

// shop is a target system of three services instrumented with the
// OpenTelemetry Go SDK and otelhttp, exporting to the collector: frontend
// (login, cart, checkout) calls backend (items) over HTTP, and checkout
// hands an order to worker asynchronously: a queue that carries only W3C
// baggage, so the worker's span starts a new trace and records the
// correlation ID it found in the baggage.
type shop struct {
	frontend, backend *httptest.Server
	tps               []*sdktrace.TracerProvider
	queue             chan http.Header
	done              chan struct{}
	// failing makes GET /health answer 503.
	failing atomic.Bool

	mu        sync.Mutex
	keys      []string // X-Api-Key values checkout received
	corrs     []string // correlation header values the frontend received
	badTraces int      // requests without a sampled traceparent
}

func startShop(t *testing.T, otlpHTTP string) *shop {
	t.Helper()
	ctx := context.Background()
	provider := func(service string) *sdktrace.TracerProvider {
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpoint(otlpHTTP), otlptracehttp.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(100*time.Millisecond)),
			sdktrace.WithResource(resource.NewWithAttributes("", attribute.String("service.name", service))))
	}
	frontTP, backTP, workerTP := provider("frontend"), provider("backend"), provider("worker")
	prop := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	sh := &shop{tps: []*sdktrace.TracerProvider{frontTP, backTP, workerTP}, queue: make(chan http.Header, 64), done: make(chan struct{})}

	sh.backend = httptest.NewServer(otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"items":[{"sku":"A-1","qty":2}]}`)
	}), "GET /items", otelhttp.WithTracerProvider(backTP), otelhttp.WithPropagators(prop)))
	t.Cleanup(sh.backend.Close)

	client := &http.Client{Timeout: 5 * time.Second,
		Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(frontTP), otelhttp.WithPropagators(prop))}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Session", "sess-"+r.Header.Get("X-Correlation-ID"))
		fmt.Fprintf(w, `{"ok":true,"token":"tok-%d"}`, time.Now().UnixNano())
	})
	mux.HandleFunc("GET /cart", func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer tok-") || !strings.HasPrefix(r.Header.Get("X-Session"), "sess-") {
			http.Error(w, `{"error":"not logged in"}`, http.StatusUnauthorized)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "GET", sh.backend.URL+"/items", nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, resp.Body)
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		if sh.failing.Load() {
			http.Error(w, `{"status":"<b>degraded</b>"}`, http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"status":"ok"}`)
	})
	mux.HandleFunc("POST /checkout", func(w http.ResponseWriter, r *http.Request) {
		sh.mu.Lock()
		sh.keys = append(sh.keys, r.Header.Get("X-Api-Key"))
		sh.mu.Unlock()
		// The order message carries the baggage only (a queue without
		// trace context): the worker starts a new trace.
		msg := http.Header{}
		propagation.Baggage{}.Inject(r.Context(), propagation.HeaderCarrier(msg))
		select {
		case sh.queue <- msg:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, `{"order":"queued"}`)
	})
	frontend := otelhttp.NewHandler(mux, "frontend", otelhttp.WithTracerProvider(frontTP), otelhttp.WithPropagators(prop),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " " + r.URL.Path }))
	sh.frontend = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tp := r.Header.Get("Traceparent")
		sh.mu.Lock()
		if len(tp) != 55 || !strings.HasSuffix(tp, "-01") || r.Header.Get("Tracestate") != "flowscope=synthetic" {
			sh.badTraces++
		}
		sh.corrs = append(sh.corrs, r.Header.Get("X-Correlation-ID"))
		sh.mu.Unlock()
		frontend.ServeHTTP(w, r)
	}))
	t.Cleanup(sh.frontend.Close)

	go func() {
		defer close(sh.done)
		for msg := range sh.queue {
			mctx := propagation.Baggage{}.Extract(ctx, propagation.HeaderCarrier(msg))
			id := baggage.FromContext(mctx).Member("correlation.id").Value()
			_, span := workerTP.Tracer("worker").Start(mctx, "process order", trace.WithNewRoot(),
				trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attribute.String("correlation.id", id)))
			span.End()
		}
	}()
	t.Cleanup(sh.stop)
	return sh
}

// stop ends the worker and flushes every service's spans.
func (sh *shop) stop() {
	select {
	case <-sh.done:
		return
	default:
	}
	close(sh.queue)
	<-sh.done
	for _, tp := range sh.tps {
		tp.Shutdown(context.Background())
	}
}

func (sh *shop) flush() {
	for _, tp := range sh.tps {
		tp.ForceFlush(context.Background())
	}
}

// apiSynthetics is GET /api/v1/synthetics; apiRun a SyntheticResult.
type apiSynthetics struct {
	Path, LastReloadError string
	Checks                []struct {
		Name, File, Every string
		Line              int
		Steps             []string
		Runs, Failures    int64 `json:",string"`
		SuccessRate       *float64
		P50Ms, P99Ms      *float64
		LastRun           *apiRun
	}
}

type apiRun struct {
	Check, RunID, CorrelationID, TraceID, Trigger, Start, Error string
	DurationMs                                                  float64
	OK                                                          bool `json:"ok"`
	Attempt                                                     int
	Steps                                                       []struct {
		Name, Method, URL, SpanID, Error, Body string
		Status                                 int
		OK, Skipped                            bool
		Timings                                struct{ DNSMs, ConnectMs, TLSMs, FirstByteMs, TotalMs float64 }
		Assertions                             []struct {
			Type, Target, Expected, Actual string
			OK                             bool `json:"ok"`
		}
	}
	Trace *struct {
		Found                 bool
		Services              []string
		SpanCount, ErrorCount int64 `json:",string"`
	}
}

func (r apiRun) stepNames() []string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Name)
	}
	return out
}

// journeyChecks is the checks file: journey (three steps, every second,
// extracts feeding later steps, a secret API key) and storefront, whose
// second step fails while the shop's /health does.
func journeyChecks(frontend string) string {
	return fmt.Sprintf(`checks:
  - name: journey
    every: 1s
    timeout: 900ms
    labels: {team: shop}
    steps:
      - name: login
        request:
          method: POST
          url: %[1]s/login
          headers: {content-type: application/json}
          body: '{"user":"synthetic","run":"${correlation_id}"}'
        extract:
          - {name: TOKEN, jsonpath: "$.token"}
          - {name: SESSION, header: X-Session}
        assert: [{status: 200}, {jsonpath: "$.ok", equals: true}, {latency_below: 800ms}]
      - name: cart
        request:
          url: %[1]s/cart
          headers: {authorization: "Bearer ${TOKEN}", x-session: "${SESSION}"}
        assert: [{status: {in: [200, 201]}}, {body_contains: "items"}, {jsonpath: "$.items[0].sku", equals: "A-1"}]
      - name: checkout
        request:
          method: POST
          url: %[1]s/checkout?key=${env:%[2]s}
          headers: {x-api-key: "${env:%[2]s}"}
          body: '{"key":"${env:%[2]s}"}'
        assert: [{status: 202}, {header: Content-Type, exists: true}]
  - name: storefront
    every: 1s
    timeout: 900ms
    steps:
      - name: login
        request: {method: POST, url: %[1]s/login}
        assert: [{status: 200}]
      - name: health
        request: {url: %[1]s/health}
        assert: [{status: 200}, {jsonpath: "$.status", equals: ok}]
      - name: checkout
        request: {method: POST, url: %[1]s/checkout}
        assert: [{status: 202}]
`, frontend, shopSecretEnv)
}

// TestSyntheticJourney runs two checks every second against a shop of
// three services instrumented with the OpenTelemetry Go SDK. It checks
// that each run is one trace whose root is the check, that the backend's
// spans join it (frontend under the prober's step spans, backend under
// frontend), that the flow graph has the node synthetic:journey calling
// frontend once per step of every run, that the correlation ID finds the
// run and both traces (the run's and the worker's, reached only through
// baggage), that the secret never reaches the stored data (decoded), the
// API or the logs, that a failing step is recorded with its actual values
// and the steps after it skipped, and that an alert on the failure rate
// fires when the shop starts failing and resolves when it recovers,
// reaching a webhook both times.
func TestSyntheticJourney(t *testing.T) {
	t.Setenv(shopSecretEnv, shopSecret)
	dir := t.TempDir()
	hook := startHookServer(t, nil)
	// The shop exports to the collector's OTLP/HTTP port, reserved first.
	otlpAddr := reserveAddr(t)
	sh := startShop(t, otlpAddr)
	checksPath := filepath.Join(dir, "checks.yml")
	if err := os.WriteFile(checksPath, []byte(journeyChecks(sh.frontend.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	rulesPath := writeRules(t, dir, "rules.yml", `
  - alert: StorefrontFailing
    select: {synthetic: storefront}
    signal: synthetic_failure_rate
    above: 50%
    window: 10s
    min_count: 3
    labels: {severity: page}
`)
	logs := &logtest.Buffer{}
	s := startServerLogging(t, "", logs, func(c *config.Config) {
		c.Receivers.OTLPHTTPAddr = otlpAddr
		c.Alerting.Interval = time.Second
		c.Alerting.Rules = rulesPath
		c.Alerting.Notify.Webhooks = []config.Webhook{{URL: hook.url()}}
		c.Synthetics.Checks = checksPath
		c.Log.Level = "debug"
	})
	started := time.Now()

	var list apiSynthetics
	checkOf := func(name string) (ok bool, runs int64, detail string) {
		apiJSON(t, s.addrs.HTTP, "/api/v1/synthetics", &list)
		for _, c := range list.Checks {
			if c.Name == name {
				return true, c.Runs, fmt.Sprintf("%+v", c)
			}
		}
		return false, 0, fmt.Sprintf("%+v", list)
	}
	waitFor(t, 20*time.Second, "three storefront runs", func() (bool, string) {
		_, n, d := checkOf("storefront")
		return n >= 3, d
	})
	// The shop starts failing: the alert fires; it recovers: it resolves.
	sh.failing.Store(true)
	waitFor(t, 30*time.Second, "StorefrontFailing delivered firing to the webhook", func() (bool, string) {
		return len(hook.find("StorefrontFailing", "firing")) > 0, hook.summary()
	})
	firing := hook.find("StorefrontFailing", "firing")[0].Alerts[0]
	if firing.Labels["severity"] != "page" || firing.Labels["check"] != "storefront" {
		t.Errorf("StorefrontFailing labels %v, want severity=page check=storefront", firing.Labels)
	}
	var failed struct{ Runs []apiRun }
	apiJSON(t, s.addrs.HTTP, "/api/v1/synthetics/storefront/runs?limit=1", &failed)
	if len(failed.Runs) != 1 {
		t.Fatalf("storefront runs: %+v", failed)
	}
	b := failed.Runs[0]
	if b.OK || len(b.Steps) != 3 || !b.Steps[0].OK || b.Steps[1].OK || b.Steps[1].Status != 503 || !b.Steps[2].Skipped ||
		!strings.Contains(b.Error, "health") || !strings.Contains(b.Steps[1].Body, "<b>degraded</b>") ||
		len(b.Steps[1].Assertions) != 2 || b.Steps[1].Assertions[0].Expected != "200" || b.Steps[1].Assertions[0].Actual != "503" ||
		b.Steps[1].Assertions[0].OK || b.Steps[1].Assertions[1].OK {
		t.Errorf("failed storefront run %+v", b)
	}
	sh.failing.Store(false)
	waitFor(t, 40*time.Second, "StorefrontFailing delivered resolved to the webhook", func() (bool, string) {
		return len(hook.find("StorefrontFailing", "resolved")) > 0, hook.summary()
	})
	waitFor(t, 20*time.Second, "five journey runs", func() (bool, string) {
		_, n, d := checkOf("journey")
		return n >= 5, d
	})
	// Stop the prober: from here the stored runs and the graph are final.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Prober.Stop(ctx); err != nil {
		t.Fatalf("stop prober: %v", err)
	}
	sh.flush()
	ended := time.Now()

	apiJSON(t, s.addrs.HTTP, "/api/v1/synthetics", &list)
	if list.Path != checksPath || len(list.Checks) != 2 {
		t.Fatalf("GET /api/v1/synthetics: path %q, %d checks; want %s and 2", list.Path, len(list.Checks), checksPath)
	}
	for _, c := range list.Checks {
		switch c.Name {
		case "journey":
			if c.Failures != 0 || c.SuccessRate == nil || *c.SuccessRate != 1 || c.Every != "1s" || c.Line != 2 ||
				!slices.Equal(c.Steps, []string{"login", "cart", "checkout"}) || c.P99Ms == nil || c.LastRun == nil {
				t.Errorf("journey listed as %+v", c)
			}
		case "storefront":
			if c.Runs == 0 || c.Failures == 0 || c.Failures == c.Runs || c.SuccessRate == nil {
				t.Errorf("storefront listed as %+v", c)
			}
		}
	}

	// Every journey run: three passing steps, each with a span and timings.
	var runs struct{ Runs []apiRun }
	apiJSON(t, s.addrs.HTTP, "/api/v1/synthetics/journey/runs?limit=1000", &runs)
	if len(runs.Runs) < 5 {
		t.Fatalf("%d journey runs listed", len(runs.Runs))
	}
	for _, r := range runs.Runs {
		if !r.OK || r.Attempt != 1 || r.Trigger != "schedule" || len(r.Steps) != 3 || len(r.RunID) != 16 || len(r.TraceID) != 32 {
			t.Fatalf("journey run %+v", r)
		}
		for _, st := range r.Steps {
			if !st.OK || st.Skipped || st.SpanID == "" || st.Timings.TotalMs <= 0 || st.Timings.ConnectMs <= 0 ||
				st.Timings.FirstByteMs <= 0 || st.Timings.FirstByteMs > st.Timings.TotalMs {
				t.Fatalf("journey run %s step %+v", r.RunID, st)
			}
		}
	}

	// One run in detail: its trace joins the shop's spans.
	run := runs.Runs[len(runs.Runs)/2]
	var detail struct{ Run apiRun }
	waitFor(t, 10*time.Second, "the run's trace with the backend's spans", func() (bool, string) {
		apiJSON(t, s.addrs.HTTP, "/api/v1/synthetics/journey/runs/"+run.RunID, &detail)
		tr := detail.Run.Trace
		return tr != nil && tr.Found && tr.SpanCount == 9, fmt.Sprintf("%+v", tr)
	})
	if got := detail.Run.Trace.Services; !slices.Equal(got, []string{"backend", "frontend", "synthetic:journey"}) {
		t.Errorf("run %s reached %v, want backend, frontend, synthetic:journey", run.RunID, got)
	}
	checkRunTrace(t, s, run)

	// The flow graph: synthetic:journey calls frontend once per step of
	// every run, and frontend calls backend once per run.
	rng := url.Values{"start": {started.Add(-time.Minute).UTC().Format(time.RFC3339Nano)}, "end": {ended.Add(time.Minute).UTC().Format(time.RFC3339Nano)}}
	journeyRuns := len(runs.Runs)
	var front struct{ Runs []apiRun }
	apiJSON(t, s.addrs.HTTP, "/api/v1/synthetics/storefront/runs?limit=1000", &front)
	storeCalls := 0 // the steps that ran
	for _, r := range front.Runs {
		for _, st := range r.Steps {
			if !st.Skipped {
				storeCalls++
			}
		}
	}
	waitFor(t, 10*time.Second, "the flow graph's synthetic edges", func() (bool, string) {
		g := getFlowGraph(t, s, "level=service&"+rng.Encode())
		calls := map[string]float64{}
		for _, e := range g.Edges {
			calls[e.Source+" → "+e.Target] = e.Calls
		}
		ok := calls["synthetic:journey → frontend"] == float64(3*journeyRuns) &&
			calls["synthetic:storefront → frontend"] == float64(storeCalls) &&
			calls["frontend → backend"] == float64(journeyRuns)
		return ok, fmt.Sprintf("calls %v; want journey %d, storefront %d, backend %d", calls, 3*journeyRuns, storeCalls, journeyRuns)
	})

	// The correlation ID finds the run, its trace and the worker's.
	var corr struct {
		Traces           []struct{ TraceID, RootServiceName string }
		SyntheticResults []apiRun
	}
	waitFor(t, 10*time.Second, "the correlation with both traces", func() (bool, string) {
		apiJSON(t, s.addrs.HTTP, "/api/v1/correlations/"+url.PathEscape(run.CorrelationID), &corr)
		return len(corr.Traces) == 2, fmt.Sprintf("%+v", corr)
	})
	roots := []string{corr.Traces[0].RootServiceName, corr.Traces[1].RootServiceName}
	slices.Sort(roots)
	if !slices.Equal(roots, []string{"synthetic:journey", "worker"}) && !slices.Equal(roots, []string{"synthetics", "worker"}) {
		t.Errorf("correlation %s: trace roots %v, want the run's and the worker's", run.CorrelationID, roots)
	}
	if !slices.ContainsFunc(corr.Traces, func(tr struct{ TraceID, RootServiceName string }) bool { return tr.TraceID == run.TraceID }) {
		t.Errorf("correlation %s does not list the run's trace %s: %+v", run.CorrelationID, run.TraceID, corr.Traces)
	}
	if len(corr.SyntheticResults) != 1 || corr.SyntheticResults[0].RunID != run.RunID {
		t.Errorf("correlation %s: synthetic results %+v, want run %s", run.CorrelationID, corr.SyntheticResults, run.RunID)
	}

	// The shop saw the headers and the secret; Flowscope keeps neither
	// the secret in its files nor in its answers.
	sh.mu.Lock()
	keys, corrs, bad := slices.Clone(sh.keys), slices.Clone(sh.corrs), sh.badTraces
	sh.mu.Unlock()
	if bad != 0 || !slices.Contains(corrs, run.CorrelationID) {
		t.Errorf("frontend: %d requests without a sampled traceparent and tracestate; correlation headers include the run's: %v",
			bad, slices.Contains(corrs, run.CorrelationID))
	}
	if !slices.Contains(keys, shopSecret) {
		t.Fatalf("checkout never received the secret API key (%d requests)", len(keys))
	}
	for _, path := range []string{"/api/v1/synthetics", "/api/v1/synthetics/journey/runs?limit=1000",
		"/api/v1/synthetics/journey/runs/" + run.RunID, "/api/v1/traces/" + run.TraceID,
		"/api/v1/correlations/" + url.PathEscape(run.CorrelationID), "/metrics"} {
		if _, body := apiGet(t, s.addrs.HTTP, path); strings.Contains(string(body), shopSecret) {
			t.Errorf("GET %s reveals the secret", path)
		}
	}
	_, body := apiGet(t, s.addrs.HTTP, "/api/v1/synthetics/journey/runs/"+run.RunID)
	if !strings.Contains(string(body), "key=****") {
		t.Errorf("the run's checkout URL is not masked as key=****: %.600s", body)
	}
	if strings.Contains(logs.String(), shopSecret) || !strings.Contains(logs.String(), "synthetic") {
		t.Errorf("the collector's debug log reveals the secret, or says nothing of the checks")
	}
	s.stop(t) // everything committed and closed
	checkNoSecret(t, s.dir, shopSecret)
	checkStoreNoSecret(t, s.dir, shopSecret, "journey", "storefront")
}

// checkRunTrace checks the run's trace: the root span is the check's
// (service synthetics, node synthetic:journey), each step a CLIENT span
// under it with the HTTP attributes, and the frontend's server spans are
// children of the steps' spans.
func checkRunTrace(t *testing.T, s *server, run apiRun) {
	t.Helper()
	code, body := s.get(t, "/api/v1/traces/"+run.TraceID)
	if code != 200 {
		t.Fatalf("GET trace %s: %d %s", run.TraceID, code, body)
	}
	td, err := otlpjson.UnmarshalTracesData(body)
	if err != nil {
		t.Fatalf("decode trace: %v", err)
	}
	type spanInfo struct{ service, name, kind, parent string }
	spans := map[string]spanInfo{}
	var rootID string
	stepSpans := map[string]bool{}
	for _, st := range run.Steps {
		stepSpans[st.SpanID] = true
	}
	for _, rs := range td.ResourceSpans {
		var svc string
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				svc = kv.Value.GetStringValue()
			}
		}
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				id := fmt.Sprintf("%x", sp.SpanId)
				spans[id] = spanInfo{svc, sp.Name, sp.Kind.String(), fmt.Sprintf("%x", sp.ParentSpanId)}
				if len(sp.ParentSpanId) == 0 {
					rootID = id
					attrs := map[string]string{}
					for _, kv := range sp.Attributes {
						attrs[kv.Key] = kv.Value.GetStringValue()
					}
					if svc != "synthetics" || sp.Name != "journey" || attrs["synthetic.check"] != "journey" || attrs["user_agent.synthetic.type"] != "test" {
						t.Errorf("root span: service %q name %q attributes %v", svc, sp.Name, attrs)
					}
				}
				if stepSpans[id] {
					keys := map[string]bool{}
					for _, kv := range sp.Attributes {
						keys[kv.Key] = true
					}
					for _, k := range []string{"http.request.method", "url.full", "server.address", "server.port", "http.response.status_code"} {
						if !keys[k] {
							t.Errorf("step span %s %q has no %s", id, sp.Name, k)
						}
					}
				}
			}
		}
	}
	if rootID == "" {
		t.Fatalf("trace %s has no root span", run.TraceID)
	}
	var frontendUnderStep int
	for id, sp := range spans {
		switch {
		case stepSpans[id]:
			if sp.parent != rootID || sp.kind != "SPAN_KIND_CLIENT" || sp.service != "synthetics" {
				t.Errorf("step span %s: %+v, want a CLIENT span of synthetics under the root %s", id, sp, rootID)
			}
		case sp.service == "frontend" && sp.kind == "SPAN_KIND_SERVER":
			if stepSpans[sp.parent] {
				frontendUnderStep++
			}
		case sp.service == "backend":
			if p, ok := spans[sp.parent]; !ok || p.service != "frontend" {
				t.Errorf("backend span %s has parent %+v, want a frontend span", id, p)
			}
		}
	}
	if frontendUnderStep != 3 || len(stepSpans) != 3 {
		t.Errorf("trace %s: %d frontend server spans under the %d step spans, want 3", run.TraceID, frontendUnderStep, len(stepSpans))
	}
}

// checkNoSecret fails if any file under dir contains secret.
func checkNoSecret(t *testing.T, dir, secret string) {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		if strings.Contains(string(b), secret) {
			t.Errorf("%s contains the secret", path)
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walk %s: %v (%d files)", dir, err, n)
	}
}

// TestSyntheticsReload replaces the checks through
// POST /api/v1/synthetics:reload: a file that does not validate is
// refused with its errors (file, line, key) and the checks in use keep
// running; a good one replaces them.
func TestSyntheticsReload(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer target.Close()
	path := filepath.Join(t.TempDir(), "checks.yml")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(fmt.Sprintf("checks:\n  - {name: home, every: 1s, steps: [{name: get, request: {url: %q}, assert: [{status: 200}]}]}\n", target.URL))
	s := startServer(t, "", func(c *config.Config) { c.Synthetics.Checks = path })
	reload := func() (int, string) {
		t.Helper()
		resp, err := http.Post("http://"+s.addrs.HTTP+"/api/v1/synthetics:reload", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	names := func() []string {
		var l apiSynthetics
		apiJSON(t, s.addrs.HTTP, "/api/v1/synthetics", &l)
		var out []string
		for _, c := range l.Checks {
			out = append(out, c.Name)
		}
		return out
	}

	write("checks:\n  - name: bad\n    every: 500ms\n    steps: [{name: get, request: {url: 'http://x/${NOPE}'}}]\n")
	code, body := reload()
	if code != http.StatusBadRequest || !strings.Contains(body, path+":3: checks[0].every") || !strings.Contains(body, "${NOPE}") {
		t.Errorf("reload of a bad file: %d %s; want 400 naming %s:3: checks[0].every and ${NOPE}", code, body, path)
	}
	var l apiSynthetics
	apiJSON(t, s.addrs.HTTP, "/api/v1/synthetics", &l)
	if got := names(); !slices.Equal(got, []string{"home"}) || !strings.Contains(l.LastReloadError, "checks[0].every") {
		t.Errorf("after a bad reload: checks %v, lastReloadError %q", got, l.LastReloadError)
	}
	waitFor(t, 10*time.Second, "home still running", func() (bool, string) {
		var r struct{ Runs []apiRun }
		apiJSON(t, s.addrs.HTTP, "/api/v1/synthetics/home/runs", &r)
		return len(r.Runs) >= 2, fmt.Sprintf("%d runs", len(r.Runs))
	})

	write(fmt.Sprintf("checks:\n  - {name: other, every: 1h, steps: [{name: get, request: {url: %q}}]}\n", target.URL))
	if code, body := reload(); code != http.StatusOK || !strings.Contains(body, `"checks":1`) {
		t.Errorf("reload of a good file: %d %s", code, body)
	}
	if got := names(); !slices.Equal(got, []string{"other"}) {
		t.Errorf("after a good reload: checks %v, want [other]", got)
	}
	// A manual run of the new check is stored and returned.
	resp, err := http.Post("http://"+s.addrs.HTTP+"/api/v1/synthetics/other:run", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	var ran struct{ Run apiRun }
	err = json.NewDecoder(resp.Body).Decode(&ran)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || !ran.Run.OK || ran.Run.Trigger != "manual" || !slices.Equal(ran.Run.stepNames(), []string{"get"}) {
		t.Errorf("POST other:run: %d %+v %v", resp.StatusCode, ran.Run, err)
	}
	if code, body := apiGet(t, s.addrs.HTTP, "/api/v1/synthetics/other/runs/"+ran.Run.RunID); code != 200 {
		t.Errorf("the manual run is not stored: %d %s", code, body)
	}
	resp, err = http.Post("http://"+s.addrs.HTTP+"/api/v1/synthetics/nope:run", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST nope:run: %d, want 404", resp.StatusCode)
	}
}

// checkStoreNoSecret opens the (closed) store of dir and fails if the
// decoded contents of any trace, or of any run of checks, contain secret:
// the files are compressed, so searching their bytes is not enough.
func checkStoreNoSecret(t *testing.T, dir, secret string, checks ...string) {
	t.Helper()
	db, err := store.Open(dir, store.Options{})
	if err != nil {
		t.Fatalf("reopen the store: %v", err)
	}
	defer db.Close()
	ctx := context.Background()
	sums, err := db.FindTraces(ctx, store.TraceQuery{Start: time.Now().Add(-time.Hour), End: time.Now().Add(time.Minute), Limit: store.MaxSearchLimit})
	if err != nil || len(sums) == 0 || len(sums) == store.MaxSearchLimit {
		t.Fatalf("find traces: %d, %v (want some, fewer than %d)", len(sums), err, store.MaxSearchLimit)
	}
	spans := 0
	for _, sum := range sums {
		td, err := db.Trace(ctx, sum.TraceID)
		if err != nil {
			t.Fatalf("trace %s: %v", sum.TraceID, err)
		}
		b, err := protojson.Marshal(td)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("stored trace %s contains the secret", sum.TraceID)
		}
		spans += sum.SpanCount
	}
	runs := 0
	for _, check := range checks {
		rs, err := db.SyntheticRuns(ctx, store.SyntheticRunQuery{Check: check, Limit: 10_000})
		if err != nil {
			t.Fatalf("runs of %s: %v", check, err)
		}
		b, err := json.Marshal(rs)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), secret) {
			t.Errorf("stored runs of %s contain the secret", check)
		}
		runs += len(rs)
	}
	if runs == 0 {
		t.Fatalf("no stored runs of %v", checks)
	}
	t.Logf("searched %d traces (%d spans) and %d runs, decoded", len(sums), spans, runs)
}

// TestSyntheticsSIGHUP runs the collector binary with checks and no alert
// rules: SIGHUP rereads the checks; a file that does not validate keeps
// the checks in use and sets lastReloadError and the reload self-metric.
func TestSyntheticsSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the collector binary; skipped under -short")
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer target.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "checks.yml")
	write := func(names ...string) {
		t.Helper()
		var b strings.Builder
		b.WriteString("checks:\n")
		for _, n := range names {
			fmt.Fprintf(&b, "  - {name: %s, every: 1h, steps: [{name: get, request: {url: %q}}]}\n", n, target.URL)
		}
		if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("home")
	p := procStartCollector(t, sharedCollectorBin(t), filepath.Join(dir, "data"), "--synthetics", path)
	p.waitReady(t, 30*time.Second)
	state := func() (names []string, reloadErr string, ok float64) {
		var l apiSynthetics
		apiJSON(t, p.httpAddr, "/api/v1/synthetics", &l)
		for _, c := range l.Checks {
			names = append(names, c.Name)
		}
		_, body := apiGet(t, p.httpAddr, "/metrics")
		ok, _ = metricValue(string(body), "flowscope_synthetic_checks_last_reload_successful")
		return names, l.LastReloadError, ok
	}
	hup := func() {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
	}
	write("home", "cart")
	hup()
	waitFor(t, 15*time.Second, "SIGHUP loads the new checks", func() (bool, string) {
		names, e, ok := state()
		return slices.Equal(names, []string{"cart", "home"}) && e == "" && ok == 1, fmt.Sprintf("%v %q %v", names, e, ok)
	})
	if err := os.WriteFile(path, []byte("checks:\n  - {name: bad, every: 500ms, steps: []}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hup()
	waitFor(t, 15*time.Second, "SIGHUP with a bad file reports it", func() (bool, string) {
		names, e, ok := state()
		return slices.Equal(names, []string{"cart", "home"}) && strings.Contains(e, path+":2: checks[0].every") && ok == 0,
			fmt.Sprintf("%v %q %v", names, e, ok)
	})
}
