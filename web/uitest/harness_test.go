package uitest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/proto"

	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/internal/collector"
	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// The browser is shared by every test of the package: started on first use,
// stopped by TestMain.
var (
	browserOnce sync.Once
	browserCtx  context.Context
	browserErr  error
	browserStop = func() {}
)

func TestMain(m *testing.M) {
	code := m.Run()
	browserStop()
	os.Exit(code)
}

// findBrowser returns the Chrome or Chromium binary to drive: FLOWSCOPE_CHROME,
// else the first of the usual names on PATH.
func findBrowser() string {
	if p := os.Getenv("FLOWSCOPE_CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range []string{"/usr/bin/chromium", "/usr/lib/chromium/chromium", "/usr/bin/google-chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// browser returns the shared browser context, skipping the test when no
// browser is installed (failing instead when CI=true).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := findBrowser()
	if path == "" {
		msg := "no Chromium or Chrome found: install it (Debian/Ubuntu: apt-get install -y chromium) or set FLOWSCOPE_CHROME to its path"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: the browser tests must run)")
		}
		t.Skip(msg)
	}
	browserOnce.Do(func() {
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.NoSandbox, // CI runs as root
			chromedp.Headless,
			chromedp.DisableGPU,
			chromedp.WindowSize(1440, 900),
			chromedp.Flag("force-device-scale-factor", "1"),
			chromedp.Flag("hide-scrollbars", true),
			chromedp.Flag("mute-audio", true),
		)
		allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
		ctx, cancel := chromedp.NewContext(allocCtx)
		if err := chromedp.Do(ctx); err != nil {
			browserErr = fmt.Errorf("start %s: %w", path, err)
		}
		browserCtx = ctx
		browserStop = func() { cancel(); cancelAlloc() }
	})
	if browserErr != nil {
		t.Fatal(browserErr)
	}
	return browserCtx
}

// server is an in-process collector on ephemeral 127.0.0.1 ports.
type server struct {
	*collector.Collector
	addrs collector.Addrs
	base  string
	// ingestToken and readToken are the bearer tokens the helpers send
	// (empty: none configured); readToken is the write token when there is
	// one, as it also reads.
	ingestToken, readToken string
}

func startCollector(t testing.TB, mutate ...func(*config.Config)) *server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Receivers.OTLPGRPCAddr = "127.0.0.1:0"
	cfg.Receivers.OTLPHTTPAddr = "127.0.0.1:0"
	cfg.Receivers.ZipkinAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Aggregation.EdgeWait = time.Second
	for _, m := range mutate {
		m(&cfg)
	}
	var w io.Writer = io.Discard
	if os.Getenv("FLOWSCOPE_UITEST_LOG") != "" {
		w = os.Stderr
	}
	c, err := collector.Start(context.Background(), cfg, slog.New(slog.NewTextHandler(w, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{Collector: c, addrs: c.Addrs(), ingestToken: cfg.Security.IngestToken, readToken: cmp.Or(cfg.Security.WriteToken, cfg.Security.ReadToken)}
	s.base = "http://" + s.addrs.HTTP
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// post sends body to url with the bearer token, if any; anything but a
// 2xx answer fails the test.
func post(t testing.TB, url, contentType, token string, body []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %d %s", url, resp.StatusCode, b)
	}
}

// postTraces sends spans to the OTLP/HTTP receiver as protobuf.
func (s *server) postTraces(t testing.TB, spans []span) {
	t.Helper()
	for i := 0; i < len(spans); i += 2000 {
		req := buildRequest(spans[i:min(i+2000, len(spans))])
		b, err := proto.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		post(t, "http://"+s.addrs.OTLPHTTP+"/v1/traces", "application/x-protobuf", s.ingestToken, b)
	}
}

// postZipkin sends Zipkin v2 JSON spans to the Zipkin receiver.
func (s *server) postZipkin(t testing.TB, spans []map[string]any) {
	t.Helper()
	b, err := json.Marshal(spans)
	if err != nil {
		t.Fatal(err)
	}
	post(t, "http://"+s.addrs.Zipkin+"/api/v2/spans", "application/json", s.ingestToken, b)
}

func (s *server) postMetrics(t testing.TB, req *colmetricspb.ExportMetricsServiceRequest) {
	t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	post(t, "http://"+s.addrs.OTLPHTTP+"/v1/metrics", "application/x-protobuf", s.ingestToken, b)
}

// getJSON reads an API path into v, with the read token if there is one.
func (s *server) getJSON(t testing.TB, path string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.readToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.readToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, b)
	}
}

// span is one span to seed, with its service.
type span struct {
	service       string
	traceID       []byte
	spanID        []byte
	parentID      []byte
	name          string
	kind          tracepb.Span_SpanKind
	start         time.Time
	dur           time.Duration
	attrs         []*commonpb.KeyValue
	err           bool
	events        []*tracepb.Span_Event
	links         []*tracepb.Span_Link
	resourceAttrs []*commonpb.KeyValue
}

// buildRequest groups spans by service into one export request.
func buildRequest(spans []span) *coltracepb.ExportTraceServiceRequest {
	req := &coltracepb.ExportTraceServiceRequest{}
	byService := map[string]*tracepb.ScopeSpans{}
	for _, sp := range spans {
		ss := byService[sp.service]
		if ss == nil {
			ss = &tracepb.ScopeSpans{Scope: &commonpb.InstrumentationScope{Name: "uitest", Version: "1"}}
			byService[sp.service] = ss
			attrs := append([]*commonpb.KeyValue{
				otlptest.Str("service.name", sp.service),
				otlptest.Str("service.instance.id", sp.service+"-1"),
				otlptest.Str("cloud.region", "eu-west-1"),
				otlptest.Str("cloud.availability_zone", "eu-west-1a"),
			}, sp.resourceAttrs...)
			req.ResourceSpans = append(req.ResourceSpans, &tracepb.ResourceSpans{
				Resource:   &resourcepb.Resource{Attributes: attrs},
				ScopeSpans: []*tracepb.ScopeSpans{ss},
			})
		}
		st := uint64(sp.start.UnixNano())
		p := &tracepb.Span{
			TraceId: sp.traceID, SpanId: sp.spanID, ParentSpanId: sp.parentID, Name: sp.name, Kind: sp.kind,
			StartTimeUnixNano: st, EndTimeUnixNano: st + uint64(sp.dur), Attributes: sp.attrs, Events: sp.events, Links: sp.links,
		}
		if sp.err {
			p.Status = &tracepb.Status{Code: tracepb.Status_STATUS_CODE_ERROR, Message: "failed"}
		}
		ss.Spans = append(ss.Spans, p)
	}
	return req
}

var idSeq atomic.Uint64

// newIDs returns a fresh trace ID and n span IDs.
func newIDs(n int) (tid []byte, sids [][]byte) {
	k := idSeq.Add(uint64(n) + 1)
	tid = otlptest.TraceID(k + 7_000_000)
	for i := 0; i < n; i++ {
		sids = append(sids, otlptest.SpanID(k*16+uint64(i)+9_000_000))
	}
	return tid, sids
}

// call returns a client span in from and its server child in to.
func call(from, to, clientName, serverName string, start time.Time, clientDur time.Duration, failed bool) []span {
	tid, ids := newIDs(2)
	serverDur := clientDur * 9 / 10
	return []span{
		{service: from, traceID: tid, spanID: ids[0], name: clientName, kind: tracepb.Span_SPAN_KIND_CLIENT, start: start, dur: clientDur},
		{service: to, traceID: tid, spanID: ids[1], parentID: ids[0], name: serverName, kind: tracepb.Span_SPAN_KIND_SERVER,
			start: start.Add(clientDur / 20), dur: serverDur, err: failed},
	}
}

// screenshotDir is where the tests write screenshots:
// FLOWSCOPE_SCREENSHOT_DIR, default testdata/screenshots (gitignored).
func screenshotDir(t testing.TB) string {
	dir := os.Getenv("FLOWSCOPE_SCREENSHOT_DIR")
	if dir == "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// tab is one browser tab on a collector's UI, recording what must never
// happen: JavaScript dialogs, uncaught exceptions, console errors and CSP
// violations.
type tab struct {
	t *testing.T
	*tabState
}

type tabState struct {
	ctx  context.Context
	base string
	n    atomic.Int64

	mu       sync.Mutex
	dialogs  []string
	problems []string
	allowed  []string
	console  []string // every console message and browser log entry
}

// allow marks browser errors containing s as expected.
func (b *tab) allow(s string) {
	b.mu.Lock()
	b.allowed = append(b.allowed, s)
	b.mu.Unlock()
}

// with returns the tab for a subtest: failures go to t.
func (b *tab) with(t *testing.T) *tab { return &tab{t: t, tabState: b.tabState} }

// watcher runs in every document before the app: it counts Content
// Security Policy violations (an injected inline script or handler that the
// CSP blocked is still a bug).
const watcher = `window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', e => window.__cspViolations.push(e.violatedDirective + ' ' + (e.sample || '')));`

func newTab(t *testing.T, base string) *tab {
	t.Helper()
	bctx := browser(t)
	ctx, cancel := chromedp.NewContext(bctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatal(err)
	}
	tb := &tab{t: t, tabState: &tabState{ctx: ctx, base: base}}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	console := chromedp.Console(ctx)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.dialogs = append(tb.dialogs, string(ev.Type)+": "+ev.Message)
			tb.mu.Unlock()
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			line := fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line)
			tb.mu.Lock()
			tb.console = append(tb.console, line)
			if m.Type == chromedp.ConsoleException || m.Type == "error" {
				tb.problems = append(tb.problems, line)
			}
			tb.mu.Unlock()
		}
	}()
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: watcher}); err != nil {
		t.Fatal(err)
	}
	return tb
}

// open loads the UI at a route ("map", "trace/ID", "traces?service=x") as a
// fresh document and waits for the app to start.
func (b *tab) open(route string) {
	b.t.Helper()
	const started = `window.__flowscope && document.body.dataset.view`
	// Chromium aborts the loads in flight when the machine's network
	// interfaces change (net::ERR_NETWORK_CHANGED), which the end-to-end
	// tests running beside these do when they make network namespaces and
	// veth pairs. A load that failed so is made again, up to twice.
	for attempt := 1; ; attempt++ {
		url := fmt.Sprintf("%s/?load=%d#/%s", b.base, b.n.Add(1), route)
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		err := chromedp.Do(ctx, chromedp.Navigate(url))
		cancel()
		if err != nil {
			b.t.Fatalf("open %s: %v", route, err)
		}
		if attempt == 3 || !b.networkChanged(started, 10*time.Second) {
			break
		}
		b.t.Logf("loading %s failed with net::ERR_NETWORK_CHANGED (the network interfaces changed); loading it again", route)
	}
	b.wait(started, 10*time.Second, "the app to start on "+route)
}

// networkChanged waits up to timeout for expr and reports whether it did
// not become true because a load failed with net::ERR_NETWORK_CHANGED; it
// then forgets those failures (they are not the app's).
func (b *tab) networkChanged(expr string, timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(40*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err == nil {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.problems)
	b.problems = slices.DeleteFunc(b.problems, func(p string) bool { return strings.Contains(p, "ERR_NETWORK_CHANGED") })
	return len(b.problems) < n
}

// wait polls a JavaScript expression until it is truthy.
func (b *tab) wait(expr string, timeout time.Duration, what string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(40*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 1500) : ''`))
		b.t.Fatalf("waiting %v for %s (%s): %v\npage text:\n%s\nproblems: %v", timeout, what, expr, err, text, b.issues())
	}
}

// eval evaluates expr and decodes its value into T.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("eval %s: %v", expr, err)
	}
	return v
}

func (b *tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

// text is the visible text of the page.
func (b *tab) text() string {
	b.t.Helper()
	return eval[string](b, `document.body.innerText`)
}

// shot writes a screenshot of the viewport to the screenshot directory.
func (b *tab) shot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(screenshotDir(b.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// consoleLines returns every console message and browser log entry seen
// so far in this tab.
func (b *tab) consoleLines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

func (b *tab) issues() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append(append([]string(nil), b.dialogs...), b.problems...)
}

// checkClean fails the test on dialogs, exceptions, console errors or CSP
// violations seen so far in this tab.
func (b *tab) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	dialogs, problems, allowed := b.dialogs, b.problems, b.allowed
	b.mu.Unlock()
	if len(dialogs) > 0 {
		b.t.Errorf("JavaScript dialogs opened: %q", dialogs)
	}
	var bad []string
	for _, p := range problems {
		if slices.ContainsFunc(allowed, func(a string) bool { return strings.Contains(p, a) }) {
			continue
		}
		bad = append(bad, p)
	}
	if len(bad) > 0 {
		b.t.Errorf("browser errors: %q", bad)
	}
	if v := eval[[]string](b, `window.__cspViolations || []`); len(v) > 0 {
		b.t.Errorf("Content-Security-Policy violations: %q", v)
	}
}

// mapState is the UI's window.__flowscope.mapState().
type mapState struct {
	Nodes          []string          `json:"nodes"`
	Edges          []string          `json:"edges"`
	Declared       map[string]string `json:"declared"`
	VisibleNodes   int               `json:"visibleNodes"`
	VisibleEdges   int               `json:"visibleEdges"`
	DrawnNodes     int               `json:"drawnNodes"`
	DrawnEdges     int               `json:"drawnEdges"`
	LayoutRunning  bool              `json:"layoutRunning"`
	Draws          int               `json:"draws"`
	Updates        int               `json:"updates"`
	FirstRenderMs  float64           `json:"firstRenderMs"`
	FirstDrawNodes int               `json:"firstDrawNodes"`
	FirstDrawEdges int               `json:"firstDrawEdges"`
	LastDrawMs     float64           `json:"lastDrawMs"`
	LastUpdateMs   float64           `json:"lastUpdateMs"`
	LayoutMs       float64           `json:"layoutMs"`
}

func (b *tab) mapState() mapState {
	b.t.Helper()
	return eval[mapState](b, `window.__flowscope.mapState()`)
}

type point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
