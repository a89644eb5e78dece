package uitest

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	colmetricspb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/internal/config"
	"github.com/flowscope/flowscope/internal/otlptest"
)

// Markup in span data. Each payload, if it ran, would set window.__pwned
// or open a dialog; if parsed as markup it would leave an element behind
// even where the Content-Security-Policy stops it from running.
const (
	xssScript = `<script>window.__pwned=1;alert(1)</script>`
	xssImg    = `<img src=x onerror="window.__pwned=2;alert(2)">`
	xssSVG    = `"><svg onload="window.__pwned=3;alert(3)">`
	xssQuote  = `' onmouseover='window.__pwned=4' x='"&amp;<b>bold</b>`
)

// TestXSS ingests service, operation, attribute, correlation and metric
// names full of markup, and a user dashboard with markup in its titles,
// then opens every view: nothing may run, no element may be injected, and
// the names must show literally.
func TestXSS(t *testing.T) {
	browser(t)
	svcA := "shop " + xssScript
	svcB := xssImg
	op := xssSVG
	corr := "corr-" + xssQuote
	metric := "m" + xssScript
	userDir := t.TempDir()
	writeFile(t, filepath.Join(userDir, "xss.json"), fmt.Sprintf(`{"id":"xss","title":%s,"description":%s,"panels":[
		{"type":"nodeTable","title":%s,"width":6,"query":{"level":"service"}},
		{"type":"topEdges","title":"edges","width":6,"query":{"level":"service"}},
		{"type":"errorRates","title":"errors","width":6,"query":{"level":"service"},"options":{"of":"nodes"}},
		{"type":"distribution","title":"lat","width":6,"query":{"service":%s}},
		{"type":"metric","title":"metric","width":6,"query":{"name":%s}},
		{"type":"flowgraph","title":"map","width":6}]}`, js(xssImg), js(xssSVG), js(xssScript), js(svcB), js(metric)))
	s := startCollector(t, func(c *config.Config) { c.DashboardsDir = userDir })

	now := time.Now()
	var spans []span
	for i := 0; i < 20; i++ {
		spans = append(spans, call(svcA, svcB, op, op, now.Add(-time.Duration(60-i)*time.Second), time.Duration(5+i)*time.Millisecond, i%7 == 0)...)
	}
	tid, ids := newIDs(2)
	spans = append(spans,
		span{service: svcA, traceID: tid, spanID: ids[0], name: op, kind: tracepb.Span_SPAN_KIND_SERVER, start: now.Add(-20 * time.Second), dur: 30 * time.Millisecond,
			attrs:         []*commonpb.KeyValue{otlptest.Str(xssSVG, xssImg), otlptest.Str("correlation.id", corr), otlptest.Str("note", xssQuote)},
			events:        []*tracepb.Span_Event{{TimeUnixNano: uint64(now.Add(-20 * time.Second).UnixNano()), Name: xssScript, Attributes: []*commonpb.KeyValue{otlptest.Str(xssImg, xssSVG)}}},
			links:         []*tracepb.Span_Link{{TraceId: otlptest.TraceID(99), SpanId: otlptest.SpanID(99), Attributes: []*commonpb.KeyValue{otlptest.Str("l", xssScript)}}},
			resourceAttrs: []*commonpb.KeyValue{otlptest.Str("deployment.environment", xssSVG)}},
		span{service: svcB, traceID: tid, spanID: ids[1], parentID: ids[0], name: xssQuote, kind: tracepb.Span_SPAN_KIND_INTERNAL, start: now.Add(-20 * time.Second).Add(time.Millisecond), dur: 10 * time.Millisecond},
	)
	s.postTraces(t, spans)
	richID := hex.EncodeToString(tid)
	s.postMetrics(t, &colmetricspb.ExportMetricsServiceRequest{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{otlptest.Str("service.name", svcA)}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{Name: metric, Unit: xssSVG, Description: xssImg,
			Data: &metricspb.Metric_Gauge{Gauge: &metricspb.Gauge{DataPoints: []*metricspb.NumberDataPoint{{
				TimeUnixNano: uint64(now.Add(-10 * time.Second).UnixNano()), Value: &metricspb.NumberDataPoint_AsDouble{AsDouble: 3},
				Attributes: []*commonpb.KeyValue{otlptest.Str(xssQuote, xssImg)}}}}}}}}},
	}}})

	b := newTab(t, s.base)
	q := url.QueryEscape
	views := []struct {
		name, route, ready string
		literal            []string
	}{
		{"map", "map", `__flowscope.mapState()?.nodes.length >= 2 && document.querySelector('[data-testid=map-summary]')?.innerText.includes('→')`, []string{svcA, svcB}},
		{"map-edge", "map?source=" + q(svcA) + "&target=" + q(svcB), `document.querySelector('[data-testid=map-side] [data-testid="quantile-p99"]')`, []string{svcA, svcB}},
		{"map-node", "map?node=" + q(svcA), `document.querySelector('[data-testid=map-side] [data-testid="quantile-p99"]')`, []string{svcA, svcB}},
		{"latency", "latency?service=" + q(svcB) + "&operation=" + q(op), `document.querySelector('[data-testid="quantile-p99"]')`, []string{svcB, op}},
		{"traces", "traces?service=" + q(svcA), `document.querySelectorAll('[data-testid=trace-row]').length > 0`, []string{svcA, svcB, op}},
		{"waterfall", "trace/" + richID, `document.querySelectorAll('[data-testid=span-row]').length === 2 && document.querySelector('[data-testid=span-resource]')`,
			[]string{svcA, op, xssSVG, xssImg, xssQuote, xssScript, corr}},
		{"correlation", "correlation/" + url.PathEscape(corr), `document.querySelectorAll('[data-testid=corr-trace]').length === 1`, []string{corr, svcA, op}},
		{"metrics", "metrics?name=" + q(metric), `document.querySelector('[data-testid=metric-title]') && document.querySelector('svg[data-testid=line-chart] path')`, []string{metric, xssImg, xssSVG}},
		{"dashboards", "dashboards", `document.querySelectorAll('[data-testid=dashboard-card]').length === 3`, []string{xssImg, xssSVG}},
		{"dashboard", "dashboard/xss", `(ps => ps.length > 0 && ps.every(p => ['ready', 'empty'].includes(p.dataset.state)))([...document.querySelectorAll('[data-testid=panel]')])`, []string{xssImg, xssScript, svcA, svcB}},
		{"dashboard-var", "dashboard/service-overview?var-service=" + q(svcA), `(ps => ps.length > 0 && ps.every(p => ['ready', 'empty'].includes(p.dataset.state)))([...document.querySelectorAll('[data-testid=panel]')])`, []string{svcA, svcB}},
	}
	for _, v := range views {
		t.Run(v.name, func(t *testing.T) {
			b := b.with(t)
			b.open(v.route)
			b.wait(v.ready, 15*time.Second, v.name+" with the payloads")
			if v.name == "waterfall" {
				// Every span's details, including the child's.
				eval[bool](b, `(e => (e.click(), true))(document.querySelectorAll('[data-testid=span-row]')[1])`)
				b.wait(`document.querySelector('[data-testid=span-title]').innerText.includes(`+js(xssQuote)+`)`, 5*time.Second, "the child span's details")
				eval[bool](b, `(e => (e.click(), true))(document.querySelectorAll('[data-testid=span-row]')[0])`)
				b.wait(`document.querySelector('[data-testid=span-title]').innerText.includes(`+js(op)+`)`, 5*time.Second, "the root span's details")
			}
			if strings.HasPrefix(v.name, "map") {
				// The tooltip of the edge.
				p := eval[point](b, `__flowscope.edgePoint(`+js(svcA)+`, `+js(svcB)+`, 0.5)`)
				b.do(chromedp.MouseEvent("mouseMoved", p.X, p.Y))
				b.wait(`!document.querySelector('[data-testid=map-tooltip]').hidden`, 5*time.Second, "the tooltip")
				v.literal = append(v.literal, "p99")
			}
			text := b.text()
			for _, lit := range v.literal {
				if !strings.Contains(text, lit) {
					t.Errorf("%s: the page does not show %q literally", v.name, lit)
				}
			}
			assertNoInjection(b)
			b.shot("xss-" + v.name)
		})
	}
	b.checkClean()
}

// assertNoInjection checks that no payload ran or left an element.
func assertNoInjection(b *tab) {
	b.t.Helper()
	got := eval[map[string]any](b, `({
		pwned: typeof window.__pwned === 'undefined' ? null : String(window.__pwned),
		scripts: [...document.querySelectorAll('script')].map(s => s.getAttribute('src') || 'inline'),
		injected: document.querySelectorAll('img[src="x"], [onerror], [onload], [onmouseover]').length + [...document.querySelectorAll('b')].filter(e => e.textContent === 'bold').length,
		csp: window.__cspViolations.length,
	})`)
	if got["pwned"] != nil {
		b.t.Errorf("a payload ran: window.__pwned = %v", got["pwned"])
	}
	if s := fmt.Sprint(got["scripts"]); s != "[js/main.js]" {
		b.t.Errorf("script elements %s, want only js/main.js", s)
	}
	if n := got["injected"].(float64); n != 0 {
		b.t.Errorf("%v elements from payloads in the DOM", n)
	}
	if n := got["csp"].(float64); n != 0 {
		b.t.Errorf("%v Content-Security-Policy violations", n)
	}
}

// TestXSSCanFail shows that assertNoInjection detects markup inserted as
// HTML, so that TestXSS passing means something.
func TestXSSCanFail(t *testing.T) {
	browser(t)
	s := startCollector(t)
	b := newTab(t, s.base)
	b.open("import")
	eval[bool](b, `(document.querySelector('main').insertAdjacentHTML('beforeend', `+js(xssImg+xssSVG)+`), true)`)
	got := eval[int](b, `document.querySelectorAll('img[src="x"], [onerror], [onload]').length`)
	if got == 0 {
		t.Fatal("markup inserted as HTML left no element: the XSS check would not see it")
	}
	b.wait(`window.__cspViolations.length > 0`, 5*time.Second, "the CSP to report the blocked handlers")
	if v := eval[any](b, `window.__pwned ?? null`); v != nil {
		t.Errorf("the CSP did not stop an inline handler: __pwned = %v", v)
	}
}
