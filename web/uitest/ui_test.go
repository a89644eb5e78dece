// Package uitest drives the embedded UI in a headless Chromium against a
// collector started in-process and seeded through its real receivers.
//
// Run with: go test ./web/uitest (add -v for timings). Without Chromium the
// tests skip (install it with apt-get install -y chromium, or point
// FLOWSCOPE_CHROME at a Chrome binary); with CI=true they fail instead.
// Screenshots go to FLOWSCOPE_SCREENSHOT_DIR (default testdata/screenshots).
package uitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/web"
)

// TestUI walks through every view against one seeded collector (the shop
// topology of seedShop) in one browser tab.
func TestUI(t *testing.T) {
	browser(t)
	userDir := t.TempDir()
	writeFile(t, filepath.Join(userDir, "team.json"), `{"id":"team","title":"Team board","panels":[
		{"type":"nodeTable","title":"All services","width":12,"query":{"level":"service"}}]}`)
	writeFile(t, filepath.Join(userDir, "broken.json"), `{"title": "Broken", "panels": [{"type": "pie", "title": "x"}]}`)
	s := startCollector(t, func(c *config.Config) { c.DashboardsDir = userDir })
	sh := seedShop(t, s)
	b := newTab(t, s.base)

	t.Run("ServiceMap", func(t *testing.T) { testServiceMap(b.with(t), s) })
	t.Run("EdgeLatency", func(t *testing.T) { testEdgeLatency(b.with(t), s, sh) })
	t.Run("LiveUpdate", func(t *testing.T) { testLiveUpdate(b.with(t), s) })
	t.Run("CompareArchitecture", func(t *testing.T) { testCompare(b.with(t), s) })
	t.Run("TraceSearchAndWaterfall", func(t *testing.T) { testTraces(b.with(t), sh) })
	t.Run("Correlation", func(t *testing.T) { testCorrelation(b.with(t), sh) })
	t.Run("LatencyPage", func(t *testing.T) { testLatencyPage(b.with(t)) })
	t.Run("Metrics", func(t *testing.T) { testMetrics(b.with(t)) })
	t.Run("Dashboards", func(t *testing.T) { testDashboards(b.with(t), s) })
	t.Run("Import", func(t *testing.T) { testImport(b.with(t)) })
	t.Run("ImportSpigo", func(t *testing.T) { testImportSpigo(b.with(t)) })
	b.checkClean()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

type apiGraph struct {
	Nodes []struct {
		ID string `json:"id"`
	} `json:"nodes"`
	Edges []struct {
		Source string `json:"source"`
		Target string `json:"target"`
	} `json:"edges"`
}

// testServiceMap: the map shows exactly the seeded services (isolated ones
// included, the uninstrumented database as a node) and calls.
func testServiceMap(b *tab, s *server) {
	t := b.t
	wantNodes := []string{"batch-job", "cart", "checkout", "frontend", "inventory-db", "notifier", "payments"}
	wantEdges := []string{"cart->inventory-db", "checkout->payments", "frontend->cart", "frontend->checkout"}
	var g apiGraph
	s.getJSON(t, "/api/v1/flowgraph", &g)
	var apiNodes, apiEdges []string
	for _, n := range g.Nodes {
		apiNodes = append(apiNodes, n.ID)
	}
	for _, e := range g.Edges {
		apiEdges = append(apiEdges, e.Source+"->"+e.Target)
	}
	if !slices.Equal(apiNodes, wantNodes) || !slices.Equal(apiEdges, wantEdges) {
		t.Fatalf("the API's graph differs from the seeded topology: nodes %v edges %v", apiNodes, apiEdges)
	}

	b.open("map")
	b.wait(`(s => s && s.nodes.length === 7 && s.edges.length === 4 && s.drawnNodes === 7)(__flowscope.mapState())`, 10*time.Second, "the map to show 7 nodes and 4 edges")
	st := b.mapState()
	got := slices.Sorted(slices.Values(st.Nodes))
	if !slices.Equal(got, wantNodes) {
		t.Errorf("map nodes %v, want %v", got, wantNodes)
	}
	if e := slices.Sorted(slices.Values(st.Edges)); !slices.Equal(e, wantEdges) {
		t.Errorf("map edges %v, want %v", e, wantEdges)
	}
	if st.DrawnNodes != 7 || st.DrawnEdges != 4 {
		t.Errorf("drawn %d nodes and %d edges, want 7 and 4", st.DrawnNodes, st.DrawnEdges)
	}
	// Every node is inside the canvas.
	for _, id := range wantNodes {
		p := eval[point](b, `__flowscope.nodePoint(`+js(id)+`)`)
		r := eval[map[string]float64](b, `(r => ({left: r.left, top: r.top, right: r.right, bottom: r.bottom}))(document.querySelector('[data-testid=flowmap-canvas]').getBoundingClientRect())`)
		if p.X < r["left"] || p.X > r["right"] || p.Y < r["top"] || p.Y > r["bottom"] {
			t.Errorf("node %s at %v is outside the canvas %v", id, p, r)
		}
	}
	// The side panel lists the isolated services as text.
	b.wait(`document.querySelector('[data-testid=map-summary]') && document.querySelector('[data-testid=map-summary]').innerText.includes('batch-job')`, 5*time.Second, "the overview to list isolated services")
	// Hovering an edge shows its tooltip.
	p := eval[point](b, `__flowscope.edgePoint('frontend', 'checkout', 0.5)`)
	b.do(chromedp.MouseEvent("mouseMoved", p.X, p.Y))
	b.wait(`!document.querySelector('[data-testid=map-tooltip]').hidden && document.querySelector('[data-testid=map-tooltip]').innerText.includes('p99')`, 5*time.Second, "the edge tooltip")
	b.do(chromedp.MouseEvent("mouseMoved", 5, 5))
	b.wait(`!__flowscope.mapState().layoutRunning`, 10*time.Second, "the layout to settle")
	path := b.shot("service-map")
	docs := filepath.Join("..", "..", "docs", "img", "service-map.png")
	if _, err := os.Stat(docs); err != nil || os.Getenv("FLOWSCOPE_UPDATE_DOCS_IMG") != "" {
		copyFile(t, path, docs)
		t.Logf("wrote %s", docs)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

type apiLatency struct {
	Count     float64 `json:"count"`
	Quantiles []struct {
		Quantile float64 `json:"quantile"`
		Value    float64 `json:"value"`
	} `json:"quantiles"`
}

func (l apiLatency) at(q float64) float64 {
	for _, x := range l.Quantiles {
		if x.Quantile == q {
			return x.Value
		}
	}
	return math.NaN()
}

// testEdgeLatency clicks the frontend → checkout edge on the canvas and
// checks the latency panel's p99 against the API and the seeded durations.
func testEdgeLatency(b *tab, s *server, sh *shop) {
	t := b.t
	b.wait(`__flowscope.mapState() && __flowscope.mapState().edges.includes('frontend->checkout') && !__flowscope.mapState().layoutRunning`, 10*time.Second, "the map")
	var p point
	found := false
	for _, f := range []float64{0.5, 0.35, 0.65, 0.2, 0.8} {
		p = eval[point](b, fmt.Sprintf(`__flowscope.edgePoint('frontend', 'checkout', %v)`, f))
		hit := eval[map[string]string](b, fmt.Sprintf(`__flowscope.hitAt(%v, %v) || {}`, p.X, p.Y))
		if hit["type"] == "edge" && hit["source"] == "frontend" && hit["target"] == "checkout" {
			found = true
			break
		}
	}
	if !found {
		t.Fatal("no point of the frontend → checkout edge is free to click")
	}
	b.do(chromedp.MouseClickXY(p.X, p.Y))
	sel := `[data-testid=map-side] [data-testid=latency-panel] [data-testid="quantile-p99"]`
	b.wait(`document.querySelector('`+sel+`')`, 10*time.Second, "the edge's latency panel")
	title := eval[string](b, `document.querySelector('[data-testid=side-title]').innerText`)
	if !strings.Contains(title, "frontend") || !strings.Contains(title, "checkout") {
		t.Errorf("side panel title %q", title)
	}
	uiP99, err := strconv.ParseFloat(eval[string](b, `document.querySelector('`+sel+`').dataset.ns`), 64)
	if err != nil {
		t.Fatal(err)
	}
	var lat apiLatency
	s.getJSON(t, "/api/v1/latency?source=frontend&target=checkout", &lat)
	if apiP99 := lat.at(0.99); uiP99 != apiP99 {
		t.Errorf("UI p99 %v ns, API p99 %v ns", uiP99, apiP99)
	}
	exact := float64(exactQuantile(sh.edgeDurs["frontend->checkout"], 0.99))
	if math.Abs(uiP99-exact)/exact > 0.01 {
		t.Errorf("UI p99 %v ns, seeded data's exact p99 %v ns: more than 1%% apart", uiP99, exact)
	}
	t.Logf("frontend → checkout p99: UI %.0f ns, exact %.0f ns", uiP99, exact)
	if n := eval[int](b, `document.querySelectorAll('[data-testid=map-side] svg[data-testid=histogram] rect.bar').length`); n < 2 {
		t.Errorf("histogram has %d bars", n)
	}
	if n := eval[int](b, `document.querySelectorAll('[data-testid=map-side] svg[data-testid=histogram] line.qline').length`); n != 4 {
		t.Errorf("histogram has %d quantile lines, want 4", n)
	}
	if route := eval[map[string]any](b, `__flowscope.route().params`); route["source"] != "frontend" || route["target"] != "checkout" {
		t.Errorf("the selection is not in the URL: %v", route)
	}
	b.shot("edge-latency")
}

// testLiveUpdate ingests a new call and waits for it on the open map,
// which must keep the positions of the nodes it already had.
func testLiveUpdate(b *tab, s *server) {
	t := b.t
	b.wait(`__flowscope.mapState() && __flowscope.mapState().nodes.length === 7 && !__flowscope.mapState().layoutRunning`, 10*time.Second, "the map")
	before := eval[map[string][2]float64](b, `__flowscope.positions()`)
	s.postTraces(t, call("checkout", "fraud-check", "score", "POST /score", time.Now().Add(-time.Second), 7*time.Millisecond, false))
	acked := time.Now()
	_, err := chromedp.Run(b.ctx, chromedp.Poll[chromedp.Void](`__flowscope.mapState().edges.includes('checkout->fraud-check')`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(3*time.Second)))
	elapsed := time.Since(acked)
	if err != nil {
		t.Fatalf("the new edge checkout → fraud-check is not on the map %v after it was acknowledged: %v", elapsed, err)
	}
	t.Logf("new edge on the map %v after the ingest was acknowledged", elapsed.Round(time.Millisecond))
	after := eval[map[string][2]float64](b, `__flowscope.positions()`)
	for id, p := range before {
		if after[id] != p {
			t.Errorf("node %s moved from %v to %v on refresh", id, p, after[id])
		}
	}
	if _, ok := after["fraud-check"]; !ok {
		t.Errorf("new node fraud-check has no position")
	}
}

// testCompare declares an architecture and compares the map with it:
// declared-only calls are drawn (dashed), observed-only ones marked.
func testCompare(b *tab, s *server) {
	t := b.t
	node := func(id string) store.ArchNode {
		return store.ArchNode{ID: id, Service: id, Zone: "eu-west-1a", Region: "eu-west-1"}
	}
	err := s.DB.PutArchitecture(context.Background(), store.Architecture{
		Name: "shop-design", Source: "uitest", Imported: time.Now(),
		Nodes: []store.ArchNode{node("frontend"), node("checkout"), node("payments"), node("cart"), node("inventory")},
		Edges: []store.ArchEdge{{Source: "frontend", Target: "checkout"}, {Source: "frontend", Target: "cart"}, {Source: "checkout", Target: "payments"}, {Source: "cart", Target: "inventory"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.open("map")
	b.wait(`[...document.querySelectorAll('[data-testid=compare-select] option')].some(o => o.value === 'shop-design')`, 10*time.Second, "the architectures in the compare list")
	b.do(chromedp.SetValue(chromedp.CSS(`[data-testid=compare-select]`), "shop-design"))
	eval[bool](b, `document.querySelector('[data-testid=compare-select]').dispatchEvent(new Event('change')) || true`)
	b.wait(`(s => s && s.edges.includes('cart->inventory'))(__flowscope.mapState())`, 10*time.Second, "the declared-only call on the map")
	st := b.mapState()
	for edge, want := range map[string]string{"frontend->checkout": "both", "checkout->payments": "both", "cart->inventory": "declared_only", "cart->inventory-db": "observed_only", "checkout->fraud-check": "observed_only"} {
		if st.Declared[edge] != want {
			t.Errorf("edge %s: declared %q, want %q", edge, st.Declared[edge], want)
		}
	}
	if !contains(st.Nodes, "inventory") {
		t.Errorf("declared-only node inventory not on the map")
	}
	if status := eval[string](b, `document.querySelector('[data-testid=map-status]').innerText`); !strings.Contains(status, "declared only") {
		t.Errorf("status %q lacks the comparison", status)
	}
	if p := eval[map[string]any](b, `__flowscope.route().params`); p["compare"] != "shop-design" {
		t.Errorf("compare not in the URL: %v", p)
	}
	b.wait(`!__flowscope.mapState().layoutRunning`, 10*time.Second, "the layout")
	b.shot("service-map-compare")
}

// testTraces searches for the rich trace through the form, opens it and
// checks the waterfall and span details.
func testTraces(b *tab, sh *shop) {
	t := b.t
	b.open("traces")
	b.wait(`[...document.querySelectorAll('[data-testid=tr-service] option')].some(o => o.value === 'frontend')`, 10*time.Second, "the service list")
	b.do(
		chromedp.SetValue(chromedp.CSS(`[data-testid=tr-service]`), "frontend"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=tr-attrs]`), "http.route=/checkout"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=tr-min]`), "1ms"),
		chromedp.Click(chromedp.CSS(`[data-testid=tr-submit]`)),
	)
	// The view may first show the results of an earlier search (the
	// service alone): wait for the submitted query's answer, then check it.
	b.wait(`__flowscope.route().params['attr.http.route'] === '/checkout' && document.querySelectorAll('[data-testid=trace-row]').length > 0`,
		10*time.Second, "search results")
	b.wait(fmt.Sprintf(`(r => r.length === 1 && r[0].dataset.traceId === %q)([...document.querySelectorAll('[data-testid=trace-row]')])`, sh.richTrace),
		10*time.Second, "the one matching trace")
	ids := eval[[]string](b, `[...document.querySelectorAll('[data-testid=trace-row]')].map(r => r.dataset.traceId)`)
	if !slices.Equal(ids, []string{sh.richTrace}) {
		t.Errorf("search found %v, want only %s", ids, sh.richTrace)
	}
	params := eval[map[string]string](b, `__flowscope.route().params`)
	if params["service"] != "frontend" || params["attr.http.route"] != "/checkout" || params["minDuration"] != "1ms" {
		t.Errorf("search parameters not in the URL: %v", params)
	}
	b.shot("traces")

	b.do(chromedp.Click(chromedp.CSS(`[data-testid=trace-row] [data-testid=trace-link]`)))
	b.wait(`document.querySelectorAll('[data-testid=span-row]').length === 7`, 10*time.Second, "the waterfall's 7 spans")
	names := eval[[]string](b, `[...document.querySelectorAll('[data-testid=span-row] .wf-name')].map(e => e.textContent)`)
	want := []string{"GET /checkout", "POST checkout", "POST /checkout", "validate cart", "charge", "POST /charge", "audit log"}
	if !slices.Equal(names, want) {
		t.Errorf("waterfall spans %q, want %q (depth-first, by start)", names, want)
	}
	if n := eval[int](b, `document.querySelectorAll('[data-testid=span-row][data-critical="1"]').length`); n < 4 {
		t.Errorf("%d spans on the critical path, want at least 4", n)
	}
	// Root span details: attributes and events.
	details := eval[string](b, `document.querySelector('[data-testid=span-details]').innerText`)
	for _, s := range []string{"http.route", "/checkout", "correlation.id", correlationID, "cache miss", "cache.key", "cart:42"} {
		if !strings.Contains(details, s) {
			t.Errorf("root span details lack %q:\n%s", s, details)
		}
	}
	// The payments span: its link and resource.
	eval[bool](b, `(e => (e.click(), true))([...document.querySelectorAll('[data-testid=span-row]')].find(r => r.innerText.includes('POST /charge')))`)
	b.wait(`document.querySelector('[data-testid=span-title]').innerText.includes('POST /charge')`, 5*time.Second, "the payments span details")
	details = eval[string](b, `document.querySelector('[data-testid=span-details]').innerText`)
	for _, s := range []string{"payment.method", "card", sh.zipkinID, "link.kind", "service.name", "payments", "server"} {
		if !strings.Contains(details, s) {
			t.Errorf("payments span details lack %q:\n%s", s, details)
		}
	}
	b.do(chromedp.ScrollIntoView(chromedp.CSS(`[data-testid=waterfall]`)))
	b.shot("trace-waterfall")
}

// testCorrelation searches correlation.id order-4711 through the form: the
// OTLP trace and the Zipkin trace that carry it.
func testCorrelation(b *tab, sh *shop) {
	t := b.t
	b.open("correlation")
	b.do(
		chromedp.SendKeys(chromedp.CSS(`[data-testid=corr-input]`), correlationID),
		chromedp.Click(chromedp.CSS(`[data-testid=corr-submit]`)),
	)
	b.wait(`document.querySelectorAll('[data-testid=corr-trace]').length === 2`, 10*time.Second, "both correlated traces")
	ids := eval[[]string](b, `[...document.querySelectorAll('[data-testid=corr-trace]')].map(r => r.dataset.traceId).sort()`)
	want := []string{sh.richTrace, sh.zipkinID}
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Errorf("correlated traces %v, want %v", ids, want)
	}
	text := eval[string](b, `document.querySelector('[data-testid=corr-results]').innerText`)
	for _, s := range []string{"frontend", "GET /checkout", "notifier", "consume order"} {
		if !strings.Contains(text, s) {
			t.Errorf("correlation view lacks %q", s)
		}
	}
	b.wait(`document.querySelectorAll('.corr-span').length >= 9`, 10*time.Second, "the spans of both traces on the timeline")
	b.shot("correlation")
}

func testLatencyPage(b *tab) {
	t := b.t
	b.open("latency?service=checkout")
	b.wait(`document.querySelector('[data-testid=latency-panel] [data-testid="quantile-p99.9"]') && document.querySelectorAll('[data-testid=exemplar-link]').length > 0`, 10*time.Second, "the latency page")
	if n := eval[int](b, `document.querySelectorAll('svg[data-testid=line-chart] path').length`); n < 4 {
		t.Errorf("quantiles over time: %d lines, want 4", n)
	}
	b.shot("latency")
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=exemplar-link]`)))
	b.wait(`document.body.dataset.view === 'trace' && document.querySelectorAll('[data-testid=span-row]').length >= 2`, 10*time.Second, "the exemplar's trace")
}

func testMetrics(b *tab) {
	t := b.t
	b.open("metrics")
	b.wait(`document.querySelectorAll('[data-testid=metric-item]').length === 2`, 10*time.Second, "the metric list")
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=metric-item][data-name="http.server.request.duration"]`)))
	b.wait(`document.querySelector('[data-testid=metric-title]') && document.querySelectorAll('[data-testid=metric-quantile]').length === 4 && document.querySelector('svg[data-testid=line-chart] path')`, 10*time.Second, "the histogram metric's quantiles")
	if n := eval[int](b, `document.querySelectorAll('[data-testid=metric-buckets] [data-testid=bar-row]').length`); n != 4 {
		t.Errorf("%d histogram buckets shown, want 4", n)
	}
	b.shot("metrics")
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=metric-item][data-name="queue.depth"]`)))
	b.wait(`document.querySelector('[data-testid=metric-title]')?.innerText === 'queue.depth' && document.querySelector('svg[data-testid=line-chart] path')`, 10*time.Second, "the gauge chart")
}

// testDashboards lists the dashboards (built-in, the user's, and the bad
// user file reported) and renders each of them completely.
func testDashboards(b *tab, s *server) {
	t := b.t
	b.open("dashboards")
	b.wait(`document.querySelectorAll('[data-testid=dashboard-card]').length === 3 && document.querySelector('[data-testid=dashboard-errors]')`, 10*time.Second, "the dashboard list")
	ids := eval[[]string](b, `[...document.querySelectorAll('[data-testid=dashboard-card]')].map(c => c.dataset.id)`)
	if !slices.Equal(ids, []string{"architecture-flow", "service-overview", "team"}) {
		t.Errorf("dashboards %v", ids)
	}
	if errs := eval[string](b, `document.querySelector('[data-testid=dashboard-errors]').innerText`); !strings.Contains(errs, "broken.json") || !strings.Contains(errs, "pie") {
		t.Errorf("bad user dashboard not reported: %q", errs)
	}
	b.shot("dashboards")
	for _, id := range ids {
		var def struct {
			Panels []struct {
				Type string `json:"type"`
			} `json:"panels"`
		}
		s.getJSON(t, "/api/v1/dashboards/"+id, &def)
		b.open("dashboard/" + id)
		b.wait(fmt.Sprintf(`(ps => ps.length === %d && ps.every(p => p.dataset.state !== 'loading'))([...document.querySelectorAll('[data-testid=panel]')])`, len(def.Panels)), 15*time.Second, "every panel of "+id)
		states := eval[[]string](b, `[...document.querySelectorAll('[data-testid=panel]')].map(p => p.dataset.panelType + ':' + p.dataset.state)`)
		for i, st := range states {
			want := def.Panels[i].Type + ":ready"
			if def.Panels[i].Type == "alerts" {
				want = "alerts:empty" // this collector has no rules (TestAlerts has)
			}
			if st != want {
				t.Errorf("dashboard %s panel %d: %s, want %s", id, i, st, want)
			}
		}
		// Each panel shows its content.
		checks := map[string]string{
			"flowgraph":      `p.querySelector('canvas')`,
			"distribution":   `p.querySelectorAll('svg[data-testid=histogram] rect.bar').length > 0`,
			"quantileSeries": `p.querySelectorAll('svg[data-testid=line-chart] path').length > 0`,
			"topEdges":       `p.querySelectorAll('[data-testid=panel-row]').length > 0`,
			"nodeTable":      `p.querySelectorAll('[data-testid=panel-row]').length >= 7`,
			"errorRates":     `p.querySelectorAll('[data-testid=bar-row]').length > 0`,
			"alerts":         `p.innerText.includes('No alert rules are loaded')`,
		}
		for i, pd := range def.Panels {
			if c, ok := checks[pd.Type]; ok {
				if !eval[bool](b, fmt.Sprintf(`(p => !!(%s))(document.querySelectorAll('[data-testid=panel]')[%d])`, c, i)) {
					t.Errorf("dashboard %s panel %d (%s) shows no data", id, i, pd.Type)
				}
			}
		}
		if id != "team" {
			b.shot("dashboard-" + id)
		}
	}
}

// testImport uploads a file through the import view to a web handler with
// a stand-in import endpoint (the collector's own is wired separately),
// checking the bytes that arrive, the progress bar and the summary.
func testImport(b *tab) {
	t := b.t
	var mu sync.Mutex
	var got struct {
		name, rebase, contentType string
		body                      []byte
	}
	imp := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got.name, got.rebase, got.contentType, got.body = r.URL.Query().Get("name"), r.URL.Query().Get("rebase"), r.Header.Get("Content-Type"), body
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Query().Get("name"), ".txt") {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"unknown format: not JSON"}`))
			return
		}
		json.NewEncoder(w).Encode(map[string]any{
			"name": r.URL.Query().Get("name"), "format": "zipkin-v2", "bytes": len(body), "spans": 1234, "otlpSpans": 1234, "traces": 56,
			"services": []string{"edge", "api"}, "start": "2024-05-01T11:00:00Z", "end": "2024-05-01T11:05:00Z", "shift": "0s",
			"metricPoints": 0, "rejected": 2, "rejects": []map[string]any{{"reason": "end before start", "count": 2}},
			"warnings": []string{"2 spans without a service"}, "requests": 3, "elapsed": "1.2s",
		})
	})
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(web.NewHandler(web.Options{API: api, Import: imp}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()

	dir := t.TempDir()
	file := filepath.Join(dir, "trace.json")
	content := bytes.Repeat([]byte(`{"traceId":"0123456789abcdef"},`), 120_000) // ~4 MB: several progress events
	writeFile(t, file, string(content))
	// This stand-in API has no alert routes nor security status: the
	// header's alert count and the exposure banner ask and get a 404, which
	// the browser logs.
	b.allow("api/v1/alerts")
	b.allow("api/v1/security")
	ib := &tab{t: t, tabState: &tabState{ctx: b.ctx, base: srv.URL}}
	ib.open("import")
	ib.do(
		chromedp.SetUploadFiles(chromedp.CSS(`[data-testid=import-file]`), []string{file}),
		chromedp.Click(chromedp.CSS(`[data-testid=import-rebase]`)),
	)
	ib.wait(`!document.querySelector('[data-testid=import-submit]').disabled`, 5*time.Second, "the file to be chosen")
	ib.do(chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)))
	ib.wait(`document.querySelector('[data-testid=import-ok]')`, 20*time.Second, "the import summary")
	mu.Lock()
	if got.name != "trace.json" || got.rebase != "now" || got.contentType != "application/octet-stream" || !bytes.Equal(got.body, content) {
		t.Errorf("upload: name %q rebase %q type %q, %d bytes (want %d, identical)", got.name, got.rebase, got.contentType, len(got.body), len(content))
	}
	mu.Unlock()
	if v := eval[float64](ib, `document.querySelector('[data-testid=import-progress]').value`); v != 100 {
		t.Errorf("progress %v at the end, want 100", v)
	}
	res := eval[string](ib, `document.querySelector('[data-testid=import-result]').innerText`)
	for _, s := range []string{"zipkin-v2", "1234", "56", "end before start", "2 spans without a service", "edge, api", "elapsed", "1.2s"} {
		if !strings.Contains(res, s) {
			t.Errorf("summary lacks %q:\n%s", s, res)
		}
	}
	ib.shot("import")

	bad := filepath.Join(dir, "notes.txt")
	writeFile(t, bad, "hello")
	b.allow("api/v1/import?name=notes.txt") // the 400 below is logged by the browser
	ib.do(chromedp.SetUploadFiles(chromedp.CSS(`[data-testid=import-file]`), []string{bad}), chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)))
	ib.wait(`document.querySelector('[data-testid=import-error]')`, 10*time.Second, "the import error")
	if msg := eval[string](ib, `document.querySelector('[data-testid=import-error]').innerText`); !strings.Contains(msg, "400") || !strings.Contains(msg, "unknown format") {
		t.Errorf("import error shown as %q", msg)
	}
}

// testImportSpigo uploads the spigo lamp samples through the import view
// to the collector: the flow (rebased to now) shows up on the map, and the
// graph becomes an architecture the map compares with.
func testImportSpigo(b *tab) {
	t := b.t
	upload := func(file string, rebase bool) string {
		t.Helper()
		b.open("import")
		b.do(chromedp.SetUploadFiles(chromedp.CSS(`[data-testid=import-file]`), []string{file}))
		if rebase {
			b.do(chromedp.Click(chromedp.CSS(`[data-testid=import-rebase]`)))
		}
		b.wait(`!document.querySelector('[data-testid=import-submit]').disabled`, 5*time.Second, "the file to be chosen")
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)))
		b.wait(`document.querySelector('[data-testid=import-ok]') || document.querySelector('[data-testid=import-error]')`, 30*time.Second, "the import of "+file)
		return eval[string](b, `document.querySelector('[data-testid=import-result]').innerText`)
	}
	flow, err := filepath.Abs(filepath.Join("..", "..", "testdata", "spigo", "json_metrics", "lamp_flow.json"))
	if err != nil {
		t.Fatal(err)
	}
	res := upload(flow, true)
	for _, s := range []string{"Imported lamp_flow.json", "zipkin-v1", "webserver", "memcache", "rds-mysql"} {
		if !strings.Contains(res, s) {
			t.Errorf("summary lacks %q:\n%s", s, res)
		}
	}
	b.shot("import-spigo")
	res = upload(filepath.Join(filepath.Dir(filepath.Dir(flow)), "json", "lamp.json"), false)
	if !strings.Contains(res, "architecture") {
		t.Errorf("the graph import names no architecture:\n%s", res)
	}
	b.open("map?compare=lamp")
	b.wait(`(s => s && Object.values(s.declared).filter(d => d === 'both').length >= 4)(__flowscope.mapState())`, 15*time.Second, "the lamp calls compared with the lamp architecture")
}
