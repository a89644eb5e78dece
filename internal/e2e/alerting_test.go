package e2e

// Helpers of the alerting end-to-end tests (issue 12): traffic of a
// frontend → checkout edge sent with the OpenTelemetry Go SDK, webhook
// receivers served by the test, the alerting API of a collector subprocess;
// and TestRulesReload (SIGHUP and POST /api/v1/rules:reload).
//
// The tests run the collector binary with --alerting-interval 1s and rules
// with window: 10s, the smallest allowed: a rule's value is computed over the
// whole 10-second rollup windows covering [now − window, now], so a p99
// rises within a cycle or two of slow spans arriving and falls up to ~20 s
// after they stop. Every wait is a generous deadline with polling; nothing
// passes or fails on timing alone.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// checkoutSlowRule is the rule of issue 12: p99 of the frontend → checkout
// edge above 200ms.
const checkoutSlowRule = `
  - alert: CheckoutSlow
    select: {source: frontend, target: checkout}
    signal: p99
    above: 200ms
    window: 10s
    min_count: 5
    labels: {severity: page, team: shop}
    annotations: {summary: "p99 of {{ .Target }} is {{ .Value }}"}
`

// Latencies of the traffic: normal and slow (the rule's threshold is 200ms).
const (
	fastLatency = 15 * time.Millisecond
	slowLatency = 400 * time.Millisecond
)

// writeRules writes a rules file (content under "rules:") into dir and
// returns its path.
func writeRules(t testing.TB, dir, name, rulesYAML string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte("rules:\n"+strings.TrimLeft(rulesYAML, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// lineOf returns the line of the rules file written by writeRules(rulesYAML)
// that contains substr.
func lineOf(t testing.TB, rulesYAML, substr string) int {
	t.Helper()
	for i, line := range strings.Split("rules:\n"+strings.TrimLeft(rulesYAML, "\n"), "\n") {
		if strings.Contains(line, substr) {
			return i + 1
		}
	}
	t.Fatalf("%q not in the rules", substr)
	return 0
}

// ---- Traffic ----------------------------------------------------------------

// edgeTraffic sends traces through the OpenTelemetry Go SDK, one
// TracerProvider per service: a SERVER span "GET /cart" in frontend, its
// CLIENT child "POST /checkout" and the SERVER span "POST /checkout" in
// checkout, a child of the client span across the (simulated) wire. The
// spans carry explicit timestamps: each trace ends now and lasts the current
// latency (±~25%), so a window of the collector sees exactly what the test
// set.
type edgeTraffic struct {
	providers []*sdktrace.TracerProvider
	frontend  trace.Tracer
	checkout  trace.Tracer
	latency   atomic.Int64 // nanoseconds

	mu   sync.Mutex
	sent map[string]time.Duration // trace ID -> the client span's duration
	n    int

	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// startEdgeTraffic starts sending perSecond traces a second to the OTLP/gRPC
// address grpcAddr with the given latency. It stops at the end of the test
// (or with stop).
func startEdgeTraffic(t testing.TB, grpcAddr string, latency time.Duration, perSecond int) *edgeTraffic {
	t.Helper()
	ctx := context.Background()
	tr := &edgeTraffic{sent: map[string]time.Duration{}, quit: make(chan struct{}), done: make(chan struct{})}
	tr.latency.Store(int64(latency))
	newTP := func(service, instance string) *sdktrace.TracerProvider {
		exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(grpcAddr), otlptracegrpc.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0",
			attribute.String("service.name", service),
			attribute.String("service.instance.id", instance),
			attribute.String("deployment.environment", "e2e"))
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
			sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(100*time.Millisecond)))
		tr.providers = append(tr.providers, tp)
		return tp
	}
	tr.frontend = newTP("frontend", "frontend-1").Tracer("e2e/shop")
	tr.checkout = newTP("checkout", "checkout-1").Tracer("e2e/shop")
	go tr.run(perSecond)
	t.Cleanup(tr.stop)
	return tr
}

// setLatency changes the latency of the traces sent from now on.
func (tr *edgeTraffic) setLatency(d time.Duration) { tr.latency.Store(int64(d)) }

func (tr *edgeTraffic) run(perSecond int) {
	defer close(tr.done)
	const tick = 100 * time.Millisecond
	perTick := max(1, perSecond/10)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 12))
	tk := time.NewTicker(tick)
	defer tk.Stop()
	for {
		for range perTick {
			tr.one(rng)
		}
		select {
		case <-tr.quit:
			return
		case <-tk.C:
		}
	}
}

// one emits one trace ending now.
func (tr *edgeTraffic) one(rng *rand.Rand) {
	base := time.Duration(tr.latency.Load())
	d := base*3/4 + time.Duration(rng.Int64N(int64(base/2)+1)) // base ±25%
	end := time.Now()
	start := end.Add(-d - 2*time.Millisecond)
	ctx, root := tr.frontend.Start(context.Background(), "GET /cart",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start),
		trace.WithAttributes(attribute.String("http.request.method", "GET"), attribute.String("url.path", "/cart")))
	_, client := tr.frontend.Start(ctx, "POST /checkout",
		trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start.Add(time.Millisecond)),
		trace.WithAttributes(attribute.String("http.request.method", "POST"), attribute.String("server.address", "checkout")))
	// The server side sees the client's span context from the wire.
	sctx := trace.ContextWithRemoteSpanContext(context.Background(), client.SpanContext())
	_, server := tr.checkout.Start(sctx, "POST /checkout",
		trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start.Add(1500*time.Microsecond)),
		trace.WithAttributes(attribute.String("http.request.method", "POST"), attribute.Int("http.response.status_code", 200)))
	server.End(trace.WithTimestamp(start.Add(time.Millisecond + d - 500*time.Microsecond)))
	client.End(trace.WithTimestamp(start.Add(time.Millisecond + d)))
	root.End(trace.WithTimestamp(end))
	tr.mu.Lock()
	tr.sent[client.SpanContext().TraceID().String()] = d
	tr.n++
	tr.mu.Unlock()
}

// stop ends the traffic and flushes what the SDK holds (the collector must
// still be up to receive it).
func (tr *edgeTraffic) stop() { tr.stopWithin(15 * time.Second) }

// abandon ends the traffic of a collector that is gone, waiting at most a
// second for the SDK's last (failing) exports.
func (tr *edgeTraffic) abandon() { tr.stopWithin(time.Second) }

func (tr *edgeTraffic) stopWithin(d time.Duration) {
	tr.once.Do(func() {
		close(tr.quit)
		<-tr.done
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		for _, tp := range tr.providers {
			_ = tp.Shutdown(ctx)
		}
	})
}

// latencyOf returns the duration of a trace the traffic sent (false: not
// one of ours).
func (tr *edgeTraffic) latencyOf(traceID string) (time.Duration, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	d, ok := tr.sent[traceID]
	return d, ok
}

// count is how many traces were sent.
func (tr *edgeTraffic) count() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.n
}

// ---- Webhook receivers ------------------------------------------------------

// hookMessage is Alertmanager's webhook payload (version "4").
type hookMessage struct {
	Receiver          string
	Status            string
	Alerts            []hookAlert
	GroupLabels       map[string]string
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
	ExternalURL       string
	Version           string
	GroupKey          string
	TruncatedAlerts   int
}

type hookAlert struct {
	Status       string
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time
	GeneratorURL string
	Fingerprint  string
}

// hookServer is a webhook receiver on 127.0.0.1 recording every request.
// respond, when set, answers request number n (from 1) itself and returns
// true; otherwise the request is recorded and answered 200.
type hookServer struct {
	srv     *httptest.Server
	respond func(n int, w http.ResponseWriter, r *http.Request) bool

	mu       sync.Mutex
	requests int
	msgs     []hookMessage // accepted (answered 200) messages
	bad      []string      // requests that were not a decodable POST
}

// newHookServer returns an unstarted receiver; start it with start or
// startOn.
func newHookServer(t testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request) bool) *hookServer {
	h := &hookServer{respond: respond}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

// startHookServer returns a started receiver.
func startHookServer(t testing.TB, respond func(n int, w http.ResponseWriter, r *http.Request) bool) *hookServer {
	h := newHookServer(t, respond)
	h.srv.Start()
	return h
}

// startOn starts the receiver on addr (a reserved port).
func (h *hookServer) startOn(t testing.TB, addr string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on the reserved address %s: %v", addr, err)
	}
	h.srv.Listener.Close()
	h.srv.Listener = l
	h.srv.Start()
}

func (h *hookServer) url() string { return h.srv.URL + "/hook" }

func (h *hookServer) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests++
	n := h.requests
	h.mu.Unlock()
	if h.respond != nil && h.respond(n, w, r) {
		return
	}
	body, err := io.ReadAll(r.Body)
	var m hookMessage
	if err == nil {
		err = json.Unmarshal(body, &m)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || err != nil {
		h.bad = append(h.bad, fmt.Sprintf("%s %s (%s): %v: %.200s", r.Method, r.URL, r.Header.Get("Content-Type"), err, body))
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	h.msgs = append(h.msgs, m)
}

// messages returns the accepted messages so far.
func (h *hookServer) messages() []hookMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.msgs)
}

// requestCount is how many requests arrived (accepted or not).
func (h *hookServer) requestCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.requests
}

// badRequests lists the requests that were not a JSON POST.
func (h *hookServer) badRequests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.bad)
}

// find returns the accepted messages of rule alertname with status.
func (h *hookServer) find(alertname, status string) []hookMessage {
	var out []hookMessage
	for _, m := range h.messages() {
		if m.Status == status && len(m.Alerts) > 0 && m.Alerts[0].Labels["alertname"] == alertname {
			out = append(out, m)
		}
	}
	return out
}

// summary describes the accepted messages for failure messages.
func (h *hookServer) summary() string {
	var parts []string
	for _, m := range h.messages() {
		name := ""
		if len(m.Alerts) > 0 {
			name = m.Alerts[0].Labels["alertname"]
		}
		parts = append(parts, name+":"+m.Status)
	}
	return fmt.Sprintf("%d requests, accepted [%s]", h.requestCount(), strings.Join(parts, " "))
}

// reserveAddr returns a 127.0.0.1 address nothing listens on (a port the
// kernel just handed out and that was closed again).
func reserveAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// ---- The alerting API -------------------------------------------------------

// apiRules is GET /api/v1/rules.
type apiRules struct {
	Path            string
	LoadedAt        string
	LastReloadAt    string
	LastReloadError string
	Rules           []apiRule
}

type apiRule struct {
	Name                      string
	File                      string
	Line                      int
	Signal                    string
	Unit                      string
	Threshold                 float64
	WindowSeconds             float64
	ForSeconds                float64
	Labels                    map[string]string
	Health                    string
	LastError                 string
	LastEvaluation            string
	EvaluationDurationSeconds float64
	Pending, Firing           int
}

// apiAlert is an element of GET /api/v1/alerts.
type apiAlert struct {
	Rule, Key, Signal, Unit string
	Labels, Annotations     map[string]string
	Target, State           string
	Value, Threshold        float64
	ActiveAt, FiredAt       string
	Exemplars               []string
	Samples                 []struct {
		Time  string
		Value float64
	}
	GeneratorURL string `json:"generatorUrl"`
}

// apiEvent is an element of GET /api/v1/alerts/history.
type apiEvent struct {
	Time, Kind, Rule, Key string
	Labels                map[string]string
	From, To              string
	Value, Threshold      *float64
	Exemplars             []string
	Receiver, Status      string
	Attempt               int
	Outcome, Error        string
	HTTPStatus            int `json:"httpStatus"`
}

func (e apiEvent) String() string {
	if e.Kind == "transition" {
		return fmt.Sprintf("%s transition %s %s→%s exemplars=%v", e.Time, e.Rule, e.From, e.To, e.Exemplars)
	}
	return fmt.Sprintf("%s delivery %s %s to %s: attempt %d %s %d %q", e.Time, e.Rule, e.Status, e.Receiver, e.Attempt, e.Outcome, e.HTTPStatus, e.Error)
}

var apiClient = &http.Client{Timeout: 30 * time.Second}

// apiGet fetches a path of a collector's HTTP API.
func apiGet(t testing.TB, httpAddr, path string) (int, []byte) {
	t.Helper()
	resp, err := apiClient.Get("http://" + httpAddr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, b
}

// apiJSON fetches a path that must answer 200 and decodes it into v.
func apiJSON(t testing.TB, httpAddr, path string, v any) {
	t.Helper()
	code, body := apiGet(t, httpAddr, path)
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: decode: %v\n%s", path, err, body)
	}
}

func getRules(t testing.TB, httpAddr string) apiRules {
	t.Helper()
	var r apiRules
	apiJSON(t, httpAddr, "/api/v1/rules", &r)
	return r
}

func getAlerts(t testing.TB, httpAddr string) []apiAlert {
	t.Helper()
	var r struct{ Alerts []apiAlert }
	apiJSON(t, httpAddr, "/api/v1/alerts", &r)
	return r.Alerts
}

// getHistory returns the alert history (newest first); query is the URL
// query without "?" (e.g. "rule=X").
func getHistory(t testing.TB, httpAddr, query string) []apiEvent {
	t.Helper()
	var r struct{ Events []apiEvent }
	apiJSON(t, httpAddr, "/api/v1/alerts/history?limit=10000&"+query, &r)
	return r.Events
}

// alertOf returns the active instance of rule (the first), or nil.
func alertOf(alerts []apiAlert, rule string) *apiAlert {
	for i := range alerts {
		if alerts[i].Rule == rule {
			return &alerts[i]
		}
	}
	return nil
}

// eventsWhere filters events.
func eventsWhere(events []apiEvent, keep func(e apiEvent) bool) []apiEvent {
	var out []apiEvent
	for _, e := range events {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

func isTransition(rule, from, to string) func(apiEvent) bool {
	return func(e apiEvent) bool { return e.Kind == "transition" && e.Rule == rule && e.From == from && e.To == to }
}

// alertsSummary describes active alerts for failure messages.
func alertsSummary(alerts []apiAlert) string {
	var parts []string
	for _, a := range alerts {
		parts = append(parts, fmt.Sprintf("%s[%s] %s value=%.0f activeAt=%s firedAt=%s", a.Rule, a.Key, a.State, a.Value, a.ActiveAt, a.FiredAt))
	}
	return "[" + strings.Join(parts, "; ") + "]"
}

// eventsSummary lists events for failure messages.
func eventsSummary(events []apiEvent) string {
	var b strings.Builder
	for _, e := range events {
		b.WriteString("\n  ")
		b.WriteString(e.String())
	}
	return b.String()
}

// parseAPITime parses an API time ("" is the zero time).
func parseAPITime(t testing.TB, what, s string) time.Time {
	t.Helper()
	if s == "" {
		return time.Time{}
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return ts
}

// waitFor polls cond every 200ms until it reports true or timeout passes,
// then fails with what and cond's last description.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, desc := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last: %s", what, timeout, desc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// metricValue returns the value of a sample line of the Prometheus text
// exposition (name or name{labels}); false when absent.
func metricValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// checkExemplarsStored checks that every exemplar trace ID is served by GET
// /api/v1/traces/{id}.
func checkExemplarsStored(t testing.TB, httpAddr, what string, ids []string) {
	t.Helper()
	if len(ids) == 0 {
		t.Errorf("%s: no exemplar trace IDs", what)
	}
	for _, id := range ids {
		if code, body := apiGet(t, httpAddr, "/api/v1/traces/"+id); code != http.StatusOK {
			t.Errorf("%s: exemplar trace %s: GET /api/v1/traces/%s = %d %.300s", what, id, id, code, body)
		}
	}
}

// ---- SIGHUP and POST /api/v1/rules:reload -----------------------------------

// TestRulesReload runs the collector binary with a rules file and changes
// the file: SIGHUP loads a valid new rule set; a broken file (window: 5s,
// below the 10s minimum) keeps the rules in use, and /api/v1/rules, the log,
// /metrics and POST /api/v1/rules:reload (400) all name the file, the line
// and the key.
func TestRulesReload(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the collector binary; skipped under -short")
	}
	bin := sharedCollectorBin(t)
	dir := t.TempDir()
	rulesPath := writeRules(t, dir, "rules.yml", checkoutSlowRule)
	p := procStartCollector(t, bin, filepath.Join(dir, "data"), "--rules", rulesPath, "--alerting-interval", "1s")
	p.waitReady(t, 30*time.Second)

	names := func(r apiRules) []string {
		var out []string
		for _, x := range r.Rules {
			out = append(out, x.Name)
		}
		return out
	}
	r := getRules(t, p.httpAddr)
	if got := names(r); !slices.Equal(got, []string{"CheckoutSlow"}) {
		t.Fatalf("rules at start: %v", got)
	}
	if r.Path != rulesPath || r.Rules[0].File != rulesPath || r.Rules[0].Line != 2 || r.LastReloadError != "" {
		t.Errorf("rules at start: path %q, file %q line %d, lastReloadError %q; want %s line 2, no error",
			r.Path, r.Rules[0].File, r.Rules[0].Line, r.LastReloadError, rulesPath)
	}
	// The rule is evaluated every second.
	waitFor(t, 15*time.Second, "CheckoutSlow evaluated", func() (bool, string) {
		r := getRules(t, p.httpAddr)
		return r.Rules[0].LastEvaluation != "" && r.Rules[0].Health == "ok", fmt.Sprintf("%+v", r.Rules[0])
	})

	metric := func() float64 {
		t.Helper()
		code, body := apiGet(t, p.httpAddr, "/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics: %d", code)
		}
		v, ok := metricValue(string(body), "flowscope_alert_rules_last_reload_successful")
		if !ok {
			t.Fatalf("flowscope_alert_rules_last_reload_successful not in /metrics")
		}
		return v
	}
	if v := metric(); v != 1 {
		t.Errorf("flowscope_alert_rules_last_reload_successful = %v at start, want 1", v)
	}
	hup := func() {
		t.Helper()
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatalf("SIGHUP: %v", err)
		}
	}

	// A valid new rule set: SIGHUP loads it.
	const errorRule = `
  - alert: CheckoutErrors
    select: {source: frontend, target: checkout}
    signal: error_rate
    above: 0.05
    window: 30s
    min_count: 20
    for: 1m
    labels: {severity: ticket}
`
	writeRules(t, dir, "rules.yml", checkoutSlowRule+errorRule)
	hup()
	waitFor(t, 15*time.Second, "SIGHUP loads the new rule", func() (bool, string) {
		r = getRules(t, p.httpAddr)
		return slices.Equal(names(r), []string{"CheckoutSlow", "CheckoutErrors"}), fmt.Sprintf("rules %v, lastReloadError %q", names(r), r.LastReloadError)
	})
	if r.LastReloadError != "" || r.LastReloadAt == "" {
		t.Errorf("after a good reload: lastReloadAt %q, lastReloadError %q", r.LastReloadAt, r.LastReloadError)
	}
	if e := r.Rules[1]; e.Signal != "error_rate" || e.Unit != "fraction" || e.Threshold != 0.05 || e.WindowSeconds != 30 || e.ForSeconds != 60 ||
		e.Line != lineOf(t, checkoutSlowRule+errorRule, "alert: CheckoutErrors") || e.Labels["severity"] != "ticket" {
		t.Errorf("reloaded rule: %+v", e)
	}
	if v := metric(); v != 1 {
		t.Errorf("flowscope_alert_rules_last_reload_successful = %v after a good reload, want 1", v)
	}
	goodReloadAt := r.LastReloadAt

	// A broken file: the window of the second rule is below 10s.
	broken := strings.Replace(errorRule, "window: 30s", "window: 5s", 1)
	writeRules(t, dir, "rules.yml", checkoutSlowRule+broken)
	wantErr := fmt.Sprintf("%s:%d: rules[1].window", rulesPath, lineOf(t, checkoutSlowRule+broken, "window: 5s"))
	hup()
	waitFor(t, 15*time.Second, "SIGHUP with a broken file reports the error", func() (bool, string) {
		r = getRules(t, p.httpAddr)
		return r.LastReloadAt != goodReloadAt && r.LastReloadError != "", fmt.Sprintf("lastReloadAt %q, lastReloadError %q", r.LastReloadAt, r.LastReloadError)
	})
	if !strings.Contains(r.LastReloadError, wantErr) || !strings.Contains(r.LastReloadError, "5s") {
		t.Errorf("lastReloadError %q does not name %q and the value 5s", r.LastReloadError, wantErr)
	}
	if got := names(r); !slices.Equal(got, []string{"CheckoutSlow", "CheckoutErrors"}) {
		t.Errorf("a broken file replaced the rules: %v", got)
	}
	if r.Rules[1].WindowSeconds != 30 {
		t.Errorf("the rule in use changed: window %vs, want 30s", r.Rules[1].WindowSeconds)
	}
	if v := metric(); v != 0 {
		t.Errorf("flowscope_alert_rules_last_reload_successful = %v after a failed reload, want 0", v)
	}
	logged := false
	for _, line := range strings.Split(p.logText(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, "not reloaded") {
			if e, _ := rec["err"].(string); strings.Contains(e, wantErr) {
				logged = true
			}
		}
	}
	if !logged {
		t.Errorf("the log has no \"not reloaded\" line whose err names %q:\n%s", wantErr, p.logText())
	}
	// The old rules are still evaluated.
	before := getRules(t, p.httpAddr).Rules[0].LastEvaluation
	waitFor(t, 15*time.Second, "evaluation continues after a failed reload", func() (bool, string) {
		now := getRules(t, p.httpAddr).Rules[0].LastEvaluation
		return now != before, "lastEvaluation " + now
	})

	// The same through the API: 400 with the file, line and key.
	reload := func() (int, []byte) {
		t.Helper()
		resp, err := apiClient.Post("http://"+p.httpAddr+"/api/v1/rules:reload", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatalf("POST /api/v1/rules:reload: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := reload()
	if code != http.StatusBadRequest || !strings.Contains(string(body), wantErr) {
		t.Errorf("POST /api/v1/rules:reload with a broken file: %d %s; want 400 naming %q", code, body, wantErr)
	}
	// Fixed again: the API reload succeeds and the metric returns to 1.
	writeRules(t, dir, "rules.yml", checkoutSlowRule)
	code, body = reload()
	var ok struct{ Rules int }
	if code != http.StatusOK || json.Unmarshal(body, &ok) != nil || ok.Rules != 1 {
		t.Errorf("POST /api/v1/rules:reload with a good file: %d %s; want 200 with rules: 1", code, body)
	}
	r = getRules(t, p.httpAddr)
	if got := names(r); !slices.Equal(got, []string{"CheckoutSlow"}) || r.LastReloadError != "" {
		t.Errorf("after the API reload: rules %v, lastReloadError %q", got, r.LastReloadError)
	}
	if v := metric(); v != 1 {
		t.Errorf("flowscope_alert_rules_last_reload_successful = %v after a good reload, want 1", v)
	}
	if code := p.terminate(t, 30*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit status %d:\n%s", code, p.logText())
	}
	for _, e := range p.errorLogs() {
		// The failed reloads are logged at ERROR; anything else is not expected.
		if !strings.Contains(e, "not reloaded") {
			t.Errorf("unexpected error logged: %s", e)
		}
	}
}
