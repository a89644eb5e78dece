package uitest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/flowscope/flowscope/internal/config"
)

// The checks of TestSynthetics. Check names allow only letters, digits and
// . _ - :, so the markup goes into a label and the failing response's
// body: if any of it were parsed as HTML, window.__xss would be set or an
// element left behind.
const (
	synOK        = "shop-home"
	synFail      = "checkout:journey" // a colon, as in the node synthetic:checkout:journey
	synLabel     = `<img src=x onerror=window.__xss=1>`
	synBody      = `<b>p99</b> checkout unavailable <img src=x onerror=window.__xss=2>`
	synFailedURL = "/pay"
)

// syntheticChecks returns the checks file: synOK passes (two steps), synFail
// fails at step 2 of 3 (a 503), so that step 3 is skipped.
func syntheticChecks(base string) string {
	return fmt.Sprintf(`checks:
  - name: %s
    every: 1s
    labels: {team: %q}
    steps:
      - name: home
        request: {method: GET, url: "%[3]s/home"}
        assert: [{status: 200}, {body_contains: "items"}]
      - name: cart
        request: {method: GET, url: "%[3]s/cart", headers: {accept: application/json}}
        assert: [{status: {in: [200, 201]}}, {latency_below: 5s}]
  - name: %[4]s
    every: 1s
    labels: {team: shop}
    steps:
      - name: login
        request: {method: POST, url: "%[3]s/login", headers: {content-type: application/json}, body: '{"user":"synthetic"}'}
        assert: [{status: 200}]
      - name: pay
        request: {method: POST, url: "%[3]s%[5]s", body: '{"amount":3}'}
        assert: [{status: 200}, {body_contains: "paid"}]
      - name: receipt
        request: {url: "%[3]s/receipt"}
        assert: [{status: 200}]
`, synOK, synLabel, base, synFail, synFailedURL)
}

// withSynthetics points the collector at a checks file.
func withSynthetics(path string) func(*config.Config) {
	return func(c *config.Config) { c.Synthetics.Checks = path }
}

type apiSynCheck struct {
	Name        string   `json:"name"`
	Runs        string   `json:"runs"`
	Failures    string   `json:"failures"`
	SuccessRate *float64 `json:"successRate"`
	LastRun     *struct {
		RunID string `json:"runId"`
		OK    bool   `json:"ok"`
	} `json:"lastRun"`
}

type apiSynRun struct {
	RunID   string `json:"runId"`
	TraceID string `json:"traceId"`
	Trigger string `json:"trigger"`
	OK      bool   `json:"ok"`
}

// shopTarget is the system the checks probe, on 127.0.0.1: every request
// answers 200 except synFailedURL (503), and each records a SERVER span of
// the service "shop" continuing the request's traceparent, as an
// instrumented service would, once the collector is known.
func shopTarget(t *testing.T) (*httptest.Server, *atomic.Pointer[server]) {
	var col atomic.Pointer[server]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		io.Copy(io.Discard, r.Body)
		failed := r.URL.Path == synFailedURL
		if failed {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, synBody)
		} else {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"ok":true,"items":[{"sku":"A-1"}]}`)
		}
		s := col.Load()
		parts := strings.Split(r.Header.Get("traceparent"), "-")
		if s == nil || len(parts) != 4 {
			return
		}
		tid, err1 := hex.DecodeString(parts[1])
		parent, err2 := hex.DecodeString(parts[2])
		if err1 != nil || err2 != nil {
			return
		}
		_, ids := newIDs(1)
		req := buildRequest([]span{{service: "shop", traceID: tid, spanID: ids[0], parentID: parent, name: r.Method + " " + r.URL.Path,
			kind: tracepb.Span_SPAN_KIND_SERVER, start: start, dur: max(time.Since(start), 200*time.Microsecond), err: failed}})
		if b, err := proto.Marshal(req); err == nil {
			if resp, err := http.Post("http://"+s.addrs.OTLPHTTP+"/v1/traces", "application/x-protobuf", bytes.NewReader(b)); err == nil {
				resp.Body.Close()
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &col
}

// TestSynthetics runs two checks against a local target, one passing and
// one failing at its second step, and walks through the Synthetics view:
// both checks with their success rates and strips of runs, a failed run's
// steps (status, assertions, timings, the skipped step, the body), its
// trace's waterfall, Run now, its error, a failed reload, the checks' nodes
// on the map — and no markup from a label or a response body is parsed.
func TestSynthetics(t *testing.T) {
	browser(t)
	target, col := shopTarget(t)
	checksFile := filepath.Join(t.TempDir(), "checks.yml")
	writeFile(t, checksFile, syntheticChecks(target.URL))
	s := startCollector(t, withSynthetics(checksFile))
	col.Store(s)

	// The prober's view first: both checks have run a few times.
	checks := map[string]apiSynCheck{}
	waitAPI(t, 30*time.Second, "runs of both checks", func() bool {
		var r struct{ Checks []apiSynCheck }
		s.getJSON(t, "/api/v1/synthetics", &r)
		for _, c := range r.Checks {
			checks[c.Name] = c
		}
		ok, fail := checks[synOK], checks[synFail]
		n := func(c apiSynCheck) int { v, _ := strconv.Atoi(c.Runs); return v }
		return len(r.Checks) == 2 && ok.LastRun != nil && fail.LastRun != nil && n(ok) >= 3 && n(fail) >= 3
	})
	if c := checks[synOK]; c.SuccessRate == nil || *c.SuccessRate != 1 || !c.LastRun.OK {
		t.Fatalf("%s: %+v, want every run passing", synOK, c)
	}
	if c := checks[synFail]; c.SuccessRate == nil || *c.SuccessRate != 0 || c.LastRun.OK {
		t.Fatalf("%s: %+v, want every run failing", synFail, c)
	}

	b := newTab(t, s.base)
	card := func(name string) string {
		return `document.querySelector('[data-testid=syn-check][data-check=` + js(name) + `]')`
	}
	var failedRun string

	t.Run("Checks", func(t *testing.T) {
		b := b.with(t)
		b.open("map")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=nav-synthetics]`)))
		b.wait(`document.body.dataset.view === 'synthetics' && document.querySelectorAll('[data-testid=syn-check]').length === 2`, 10*time.Second, "both checks")
		if names := eval[[]string](b, `[...document.querySelectorAll('[data-testid=syn-check-name]')].map(e => e.textContent)`); !slices.Equal(names, []string{synFail, synOK}) {
			t.Errorf("checks %q, want %q and %q by name", names, synFail, synOK)
		}
		// Green boxes for the passing check, red ones for the failing one.
		b.wait(`(c => c.querySelectorAll('[data-testid=syn-run][data-ok=true]').length >= 3 && !c.querySelector('[data-testid=syn-run][data-ok=false]'))(`+card(synOK)+`)`, 10*time.Second, "the passing check's green strip")
		b.wait(`(c => c.querySelectorAll('[data-testid=syn-run][data-ok=false]').length >= 3 && !c.querySelector('[data-testid=syn-run][data-ok=true]'))(`+card(synFail)+`)`, 10*time.Second, "the failing check's red strip")
		got := eval[map[string]map[string]any](b, `Object.fromEntries([...document.querySelectorAll('[data-testid=syn-check]')].map(c => [c.dataset.check, {
			state: c.dataset.state,
			success: c.querySelector('[data-testid=syn-success] .stat-value').textContent,
			p50: c.querySelector('[data-testid=syn-p50] .stat-value').textContent,
			p99: c.querySelector('[data-testid=syn-p99] .stat-value').textContent,
			last: c.querySelector('[data-testid=syn-last] .stat-value').textContent,
			schedule: c.querySelector('[data-testid=syn-schedule]').textContent,
			file: c.querySelector('[data-testid=syn-file]').textContent,
			labels: [...c.querySelectorAll('[data-testid=syn-label]')].map(e => e.textContent).join(' '),
			runColour: getComputedStyle(c.querySelector('[data-testid=syn-run]')).backgroundColor,
			title: c.querySelector('[data-testid=syn-run]').title,
			label: c.querySelector('[data-testid=syn-run]').getAttribute('aria-label'),
		}]))`)
		ok, fail := got[synOK], got[synFail]
		if ok["state"] != "ok" || ok["success"] != "100 %" || fail["state"] != "failed" || fail["success"] != "0 %" {
			t.Errorf("states and success rates: %s %v %v, %s %v %v", synOK, ok["state"], ok["success"], synFail, fail["state"], fail["success"])
		}
		for name, c := range got {
			for _, k := range []string{"p50", "p99"} {
				if v := fmt.Sprint(c[k]); !strings.HasSuffix(v, "s") || v == "–" {
					t.Errorf("%s: %s %q, want a duration", name, k, v)
				}
			}
			if !strings.HasPrefix(fmt.Sprint(c["schedule"]), "every 1s") {
				t.Errorf("%s: schedule %q", name, c["schedule"])
			}
			if f := fmt.Sprint(c["file"]); !strings.HasPrefix(f, checksFile+":") {
				t.Errorf("%s: file %q, want %s:LINE", name, f, checksFile)
			}
			if title := fmt.Sprint(c["title"]); !strings.Contains(title, " · ") || c["label"] == nil {
				t.Errorf("%s: run box title %q, aria-label %v", name, title, c["label"])
			}
		}
		if !strings.HasPrefix(fmt.Sprint(ok["last"]), "ok · ") || !strings.HasPrefix(fmt.Sprint(fail["last"]), "failed · ") {
			t.Errorf("last runs %q and %q", ok["last"], fail["last"])
		}
		if ok["labels"] != "team="+synLabel {
			t.Errorf("%s labels %q, want the markup as text", synOK, ok["labels"])
		}
		if ok["runColour"] == fail["runColour"] {
			t.Errorf("passing and failing runs have the same colour %v", ok["runColour"])
		}
		if !strings.Contains(fmt.Sprint(fail["title"]), "pay: status: expected 200, got 503") {
			t.Errorf("failed run's title %q lacks its error", fail["title"])
		}
		if !strings.Contains(b.text(), synLabel) {
			t.Errorf("the view does not show the label %q literally", synLabel)
		}
		assertNoAlertInjection(b)
		b.shot("synthetics")
	})

	t.Run("FailedRun", func(t *testing.T) {
		b := b.with(t)
		// The newest run is the strip's rightmost box.
		failedRun = eval[string](b, `(e => (e.click(), e.dataset.runId))([...`+card(synFail)+`.querySelectorAll('[data-testid=syn-run]')].pop())`)
		b.wait(`__flowscope.route().arg === `+js(synFail+"/"+failedRun)+` && document.querySelector('[data-testid=syn-run-detail][data-run-id=`+js(failedRun)+`]')`, 10*time.Second, "the failed run's detail")
		if n := eval[int](b, `document.querySelectorAll('[data-testid=syn-check]').length`); n != 1 {
			t.Errorf("%d checks shown with a run open, want its check alone", n)
		}
		steps := eval[[]map[string]any](b, `[...document.querySelectorAll('[data-testid=syn-run-detail] [data-testid=syn-step]')].map(s => ({
			name: s.querySelector('[data-testid=syn-step-name]').textContent,
			status: s.dataset.status,
			badge: s.querySelector('[data-testid=syn-step-status]').textContent,
			http: s.querySelector('[data-testid=syn-step-http]')?.textContent ?? null,
			request: s.querySelector('[data-testid=syn-step-request]').textContent,
			timing: s.querySelector('[data-testid=syn-timing]') ? Number(s.querySelector('[data-testid=syn-timing]').dataset.total) : null,
			phases: [...s.querySelectorAll('[data-testid=syn-phase]')].map(p => p.dataset.phase),
			barWidth: s.querySelector('.syn-bar') ? s.querySelector('.syn-bar').getBoundingClientRect().width : 0,
			assertions: [...s.querySelectorAll('[data-testid=syn-assertion]')].map(a => [a.dataset.type, a.querySelector('[data-testid=syn-expected]').textContent, a.querySelector('[data-testid=syn-actual]').textContent, a.dataset.ok]),
			error: s.querySelector('[data-testid=syn-step-error]')?.textContent ?? '',
			body: s.querySelector('[data-testid=syn-step-body]')?.textContent ?? '',
		}))`)
		if len(steps) != 3 {
			t.Fatalf("%d steps shown, want 3: %v", len(steps), steps)
		}
		login, pay, receipt := steps[0], steps[1], steps[2]
		if login["status"] != "ok" || login["badge"] != "OK" || login["http"] != "HTTP 200" || login["request"] != "POST "+target.URL+"/login" {
			t.Errorf("step 1: %v", login)
		}
		if pay["status"] != "failed" || pay["badge"] != "failed" || pay["http"] != "HTTP 503" || pay["request"] != "POST "+target.URL+synFailedURL {
			t.Errorf("step 2: %v", pay)
		}
		if as := pay["assertions"].([]any); len(as) != 2 || fmt.Sprint(as[0]) != "[status 200 503 false]" ||
			!strings.HasPrefix(fmt.Sprint(as[1]), `[body_contains "paid" `) || !strings.HasSuffix(fmt.Sprint(as[1]), " false]") {
			t.Errorf("step 2 assertions %v, want status expected 200, actual 503, failed; body_contains paid failed", as)
		}
		if !strings.Contains(fmt.Sprint(pay["error"]), "expected 200, got 503") || pay["body"] != synBody {
			t.Errorf("step 2 error %q, body %q", pay["error"], pay["body"])
		}
		if receipt["status"] != "skipped" || receipt["badge"] != "skipped" || receipt["http"] != nil || receipt["timing"] != nil || len(receipt["assertions"].([]any)) != 0 {
			t.Errorf("step 3: %v, want skipped without status, timings or assertions", receipt)
		}
		for i, st := range steps[:2] {
			if v, _ := st["timing"].(float64); v <= 0 || st["barWidth"].(float64) < 1 || !slices.Contains(st["phases"].([]any), any("wait")) {
				t.Errorf("step %d timing %v, bar %v px, phases %v", i+1, st["timing"], st["barWidth"], st["phases"])
			}
		}
		if txt := eval[string](b, `document.querySelector('[data-testid=syn-run-error]').textContent`); !strings.Contains(txt, "pay") || !strings.Contains(txt, "503") {
			t.Errorf("run error %q", txt)
		}
		// The joined trace's summary: the prober's node and the shop.
		b.wait(`(e => e && e.dataset.found === 'true' && [...e.querySelectorAll('[data-testid=syn-trace-service]')].map(x => x.textContent).includes('shop'))(document.querySelector('[data-testid=syn-trace-summary]'))`, 15*time.Second, "the run's trace summary")
		services := eval[[]string](b, `[...document.querySelectorAll('[data-testid=syn-trace-service]')].map(x => x.textContent)`)
		if !slices.Equal(services, []string{"shop", "synthetic:" + synFail}) {
			t.Errorf("services reached %q", services)
		}
		if n := eval[string](b, `document.querySelector('[data-testid=syn-trace-errors] .stat-value').textContent`); n == "0" {
			t.Errorf("the failed run's trace has no error span")
		}
		corr := eval[string](b, `document.querySelector('[data-testid=syn-correlation]').getAttribute('href')`)
		if !strings.HasPrefix(corr, "#/correlation/") || len(corr) < len("#/correlation/")+8 {
			t.Errorf("correlation link %q", corr)
		}
		assertNoAlertInjection(b)
		b.shot("synthetics-run-failed")
		eval[bool](b, `(document.querySelectorAll('[data-testid=syn-step]')[1].scrollIntoView(), true)`)
		b.shot("synthetics-run-failed-steps")

		// Open trace: the waterfall of the run, the prober's root span first.
		var run apiSynRun
		s.getJSON(t, "/api/v1/synthetics/"+url.PathEscape(synFail)+"/runs/"+failedRun, &struct{ Run *apiSynRun }{&run})
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=syn-open-trace]`)))
		b.wait(`document.body.dataset.view === 'trace' && document.querySelectorAll('[data-testid=span-row]').length >= 5`, 10*time.Second, "the run's waterfall")
		if id := eval[map[string]any](b, `__flowscope.route()`)["arg"]; id != run.TraceID {
			t.Errorf("Open trace opened %v, want the run's trace %s", id, run.TraceID)
		}
		if title := eval[string](b, `document.querySelector('[data-testid=trace-title]').textContent`); title != "synthetics: "+synFail {
			t.Errorf("trace title %q, want the prober's root span", title)
		}
		rows := eval[[]string](b, `[...document.querySelectorAll('[data-testid=span-row] .wf-label')].map(e => e.innerText.replace(/\s+/g, ' ').trim())`)
		if len(rows) < 5 || !strings.Contains(rows[0], "synthetics "+synFail) || !slices.ContainsFunc(rows, func(r string) bool { return strings.Contains(r, "shop POST "+synFailedURL) }) {
			t.Errorf("waterfall rows %q", rows)
		}
		b.shot("synthetics-trace")
		// Back to the run.
		eval[bool](b, `(history.back(), true)`)
		b.wait(`document.querySelector('[data-testid=syn-run-detail][data-run-id=`+js(failedRun)+`]')`, 10*time.Second, "the run again")
	})

	t.Run("RunNow", func(t *testing.T) {
		b := b.with(t)
		b.open("synthetics/" + synOK)
		b.wait(card(synOK)+` && `+card(synOK)+`.querySelectorAll('[data-testid=syn-run]').length >= 3 && document.querySelector('[data-testid=syn-runs-table]')`, 10*time.Second, "the check with its runs")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=syn-check] [data-testid=syn-run-now]`)))
		b.wait(`(e => e.dataset.state === 'done')(document.querySelector('[data-testid=syn-run-now-result]'))`, 15*time.Second, "the run now's result")
		route := eval[map[string]any](b, `__flowscope.route()`)
		arg := fmt.Sprint(route["arg"])
		manual, ok := strings.CutPrefix(arg, synOK+"/")
		if !ok || manual == "" {
			t.Fatalf("Run now went to %q, want %s/RUN", arg, synOK)
		}
		b.wait(`(d => d && d.dataset.ok === 'true' && d.innerText.includes('run now'))(document.querySelector('[data-testid=syn-run-detail][data-run-id=`+js(manual)+`]'))`, 10*time.Second, "the manual run's detail")
		if txt := eval[string](b, `document.querySelector('[data-testid=syn-run-now-result]').textContent`); !strings.HasPrefix(txt, "Run "+manual+": ok in ") {
			t.Errorf("run now result %q", txt)
		}
		b.wait(card(synOK)+`.querySelector('[data-testid=syn-run][data-trigger=manual][data-run-id=`+js(manual)+`]')`, 10*time.Second, "the manual run in the strip")
		var runs struct{ Runs []apiSynRun }
		s.getJSON(t, "/api/v1/synthetics/"+synOK+"/runs?limit=1000", &runs)
		if !slices.ContainsFunc(runs.Runs, func(r apiSynRun) bool { return r.RunID == manual && r.Trigger == "manual" && r.OK }) {
			t.Errorf("the API does not list the manual run %s", manual)
		}
		b.wait(`document.querySelector('[data-testid=syn-run-row][data-run-id=`+js(manual)+`]')`, 10*time.Second, "the manual run in the table")
		steps := eval[[]string](b, `[...document.querySelectorAll('[data-testid=syn-run-detail] [data-testid=syn-step]')].map(s => s.dataset.status)`)
		if !slices.Equal(steps, []string{"ok", "ok"}) {
			t.Errorf("manual run steps %v", steps)
		}
		b.shot("synthetics-run-now")

		// A write that fails says so: here the collector answers 503.
		eval[bool](b, `(f => (window.fetch = (u, i) => String(u).endsWith(':run')
			? Promise.resolve(new Response(JSON.stringify({code: 503, message: 'the prober is stopping'}), {status: 503, headers: {'Content-Type': 'application/json'}}))
			: f(u, i), true))(window.fetch)`)
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=syn-check] [data-testid=syn-run-now]`)))
		b.wait(`(e => e.dataset.state === 'error')(document.querySelector('[data-testid=syn-run-now-result]'))`, 10*time.Second, "the run now's error")
		if txt := eval[string](b, `document.querySelector('[data-testid=syn-run-now-result]').textContent`); txt != "Run now failed: 503: the prober is stopping" {
			t.Errorf("run now error %q", txt)
		}
		if arg := fmt.Sprint(eval[map[string]any](b, `__flowscope.route()`)["arg"]); arg != synOK+"/"+manual {
			t.Errorf("a failed Run now moved to %q", arg)
		}
		b.shot("synthetics-run-now-error")
	})

	t.Run("Reload", func(t *testing.T) {
		b := b.with(t)
		b.allow("api/v1/synthetics:reload") // the 400 below is logged by the browser
		b.open("synthetics")
		b.wait(`document.querySelectorAll('[data-testid=syn-check]').length === 2`, 10*time.Second, "both checks")
		writeFile(t, checksFile, syntheticChecks(target.URL)+"      - name: bad\n        request: {url: \"ftp://x\"}\n")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=syn-reload]`)))
		b.wait(`(e => e.classList.contains('err') && e.textContent.startsWith('400: '))(document.querySelector('[data-testid=syn-reload-result]'))`, 10*time.Second, "the failed reload's message")
		b.wait(`(e => e && e.innerText.includes('checks.yml'))(document.querySelector('[data-testid=syn-reload-error]'))`, 10*time.Second, "the reload error banner")
		if n := eval[int](b, `document.querySelectorAll('[data-testid=syn-check]').length`); n != 2 {
			t.Errorf("%d checks after a failed reload, want the 2 in use", n)
		}
		b.shot("synthetics-reload-error")
		writeFile(t, checksFile, syntheticChecks(target.URL))
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=syn-reload]`)))
		b.wait(`document.querySelector('[data-testid=syn-reload-result]').textContent === 'Loaded 2 checks.' && !document.querySelector('[data-testid=syn-reload-error]')`, 10*time.Second, "a good reload")
	})

	t.Run("Map", func(t *testing.T) {
		b := b.with(t)
		node := "synthetic:" + synFail
		b.open("map")
		b.wait(`(s => s && s.nodes.includes(`+js(node)+`) && s.nodes.includes('synthetic:`+synOK+`') && s.edges.includes(`+js(node+"->shop")+`))(__flowscope.mapState())`, 20*time.Second, "the synthetic nodes calling shop")
		st := eval[map[string]any](b, `__flowscope.mapState()`)
		syn := fmt.Sprint(st["synthetic"])
		if syn != "[synthetic:"+synFail+" synthetic:"+synOK+"]" && syn != "[synthetic:"+synOK+" synthetic:"+synFail+"]" {
			t.Errorf("synthetic nodes %v, want both checks' (and not shop)", syn)
		}
		if n := eval[int](b, `document.querySelectorAll('[data-testid=map-legend] .lg-synthetic').length`); n != 1 {
			t.Errorf("the legend has %d synthetic entries", n)
		}
		b.wait(`!__flowscope.mapState().layoutRunning`, 10*time.Second, "the layout to settle")
		p := eval[point](b, `__flowscope.nodePoint(`+js(node)+`)`)
		b.do(chromedp.MouseEvent("mouseMoved", p.X, p.Y))
		b.wait(`(e => !e.hidden && e.querySelector('[data-testid=tip-synthetic]'))(document.querySelector('[data-testid=map-tooltip]'))`, 5*time.Second, "the synthetic node's tooltip")
		b.shot("synthetics-map")
		b.do(chromedp.MouseClickXY(p.X, p.Y))
		b.wait(`__flowscope.route().params.node === `+js(node)+` && document.querySelector('[data-testid=side-synthetic]')`, 10*time.Second, "the node's link to its check")
		b.shot("synthetics-map-node")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=side-synthetic]`)))
		b.wait(`document.body.dataset.view === 'synthetics' && __flowscope.route().arg === `+js(synFail)+` && document.querySelectorAll('[data-testid=syn-check]').length === 1 && `+card(synFail), 10*time.Second, "the check in the Synthetics view")
		assertNoAlertInjection(b)
	})
	b.checkClean()
}

// TestSyntheticsEmpty: without --synthetics the view explains how to
// configure checks.
func TestSyntheticsEmpty(t *testing.T) {
	browser(t)
	s := startCollector(t)
	b := newTab(t, s.base)
	b.open("synthetics")
	b.wait(`document.querySelector('[data-testid=syn-empty]') && document.querySelector('[data-testid=view-synthetics]').dataset.state === 'ready'`, 10*time.Second, "the empty state")
	txt := eval[string](b, `document.querySelector('[data-testid=syn-empty]').innerText`)
	for _, want := range []string{"--synthetics PATH", "FLOWSCOPE_SYNTHETICS", "docs/synthetics.md"} {
		if !strings.Contains(txt, want) {
			t.Errorf("the empty state does not mention %q: %q", want, txt)
		}
	}
	if !eval[bool](b, `document.querySelector('[data-testid=syn-reload]').disabled`) {
		t.Errorf("Reload checks is enabled without a checks file")
	}
	if n := eval[int](b, `document.querySelectorAll('[data-testid=syn-check]').length`); n != 0 {
		t.Errorf("%d checks without a checks file", n)
	}
	b.shot("synthetics-empty")
	b.checkClean()
}
