package uitest

import (
	"encoding/hex"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowscope/flowscope/internal/config"
)

// Markup in the rule's name, a label and an annotation: if any of it were
// parsed as HTML, window.__xss would be set or an element left behind.
const (
	slowRule     = `SlowCheckout<img src=x onerror=window.__xss=1>`
	slowSeverity = `page"><script>window.__xss=1</script>`
	slowSummary  = `<b>p99</b> {{ .Target }} is {{ .Value }}`
	briefRule    = `BriefSpike`
)

// alertRules fires SlowCheckout on the slow edge frontend → checkout for
// the whole test (a 5-minute window), and BriefSpike on a burst of slow
// calls frontend → cart that leaves its 10-second window soon, so that it
// resolves.
var alertRules = fmt.Sprintf(`rules:
  - alert: %q
    select: {source: frontend, target: checkout}
    signal: p99
    above: 100ms
    window: 5m
    labels: {severity: %q}
    annotations: {summary: %q}
  - alert: %s
    select: {source: frontend, target: cart}
    signal: p99
    above: 100ms
    window: 10s
`, slowRule, slowSeverity, slowSummary, briefRule)

// withRules points the collector at a rules file.
func withRules(path string) func(*config.Config) {
	return func(c *config.Config) { c.Alerting.Rules = path }
}

type apiAlert struct {
	Rule         string            `json:"rule"`
	Key          string            `json:"key"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	Target       string            `json:"target"`
	State        string            `json:"state"`
	Exemplars    []string          `json:"exemplars"`
	GeneratorURL string            `json:"generatorUrl"`
}

type apiEvent struct {
	Kind string `json:"kind"`
	Rule string `json:"rule"`
	From string `json:"from"`
	To   string `json:"to"`
}

// waitAPI polls until ok(s) holds, for up to timeout.
func waitAPI(t *testing.T, timeout time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting %v for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestAlerts loads two rules and seeds the calls that fire them; one
// resolves. Then: the header counts the firing alert on every view, the
// map marks its edge, the Alerts view lists it (firing, with its target,
// value, labels, summary, chart and exemplars), the resolved one and the
// rule's history; the generatorURL and exemplar annotation open in the UI,
// an exemplar link opens an existing trace, the dashboard panel lists it —
// and no markup from the rule name, labels or annotations is parsed.
func TestAlerts(t *testing.T) {
	browser(t)
	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "rules.yml")
	writeFile(t, rulesFile, alertRules)
	dashDir := t.TempDir()
	writeFile(t, filepath.Join(dashDir, "oncall.json"), `{"id":"oncall","title":"On call","panels":[
		{"type":"alerts","title":"Checkout calls","width":6,"query":{"labels":"source=frontend,target=checkout","state":"firing"}},
		{"type":"alerts","title":"Cart calls","width":6,"query":{"labels":"target=cart"}},
		{"type":"flowgraph","title":"Map","width":12}]}`)
	s := startCollector(t, withRules(rulesFile), func(c *config.Config) { c.DashboardsDir = dashDir })

	now := time.Now()
	var spans []span
	seeded := map[string]bool{}
	for i := 0; i < 40; i++ {
		sp := call("frontend", "checkout", "POST checkout", "POST /checkout", now.Add(-30*time.Second+time.Duration(i)*700*time.Millisecond), 300*time.Millisecond, false)
		seeded[hex.EncodeToString(sp[0].traceID)] = true
		spans = append(spans, sp...)
	}
	for i := 0; i < 10; i++ {
		spans = append(spans, call("frontend", "cart", "GET cart", "GET /cart", now.Add(-3*time.Second+time.Duration(i)*200*time.Millisecond), 250*time.Millisecond, false)...)
	}
	s.postTraces(t, spans)

	// The engine's view first: SlowCheckout firing, BriefSpike resolved.
	var slow apiAlert
	waitAPI(t, 20*time.Second, "SlowCheckout to fire", func() bool {
		var r struct{ Alerts []apiAlert }
		s.getJSON(t, "/api/v1/alerts?state=firing", &r)
		for _, a := range r.Alerts {
			if a.Rule == slowRule {
				slow = a
				return len(a.Exemplars) > 0
			}
		}
		return false
	})
	if slow.Labels["source"] != "frontend" || slow.Labels["target"] != "checkout" || slow.Labels["severity"] != slowSeverity {
		t.Errorf("SlowCheckout labels %v", slow.Labels)
	}
	waitAPI(t, 60*time.Second, "BriefSpike to fire and resolve", func() bool {
		var r struct{ Events []apiEvent }
		s.getJSON(t, "/api/v1/alerts/history?rule="+briefRule, &r)
		return slices.ContainsFunc(r.Events, func(e apiEvent) bool { return e.Kind == "transition" && e.From == "firing" && e.To == "inactive" })
	})
	var active struct{ Alerts []apiAlert }
	s.getJSON(t, "/api/v1/alerts", &active)
	if len(active.Alerts) != 1 || active.Alerts[0].Rule != slowRule || active.Alerts[0].State != "firing" {
		t.Fatalf("active alerts %+v, want SlowCheckout firing alone", active.Alerts)
	}

	b := newTab(t, s.base)
	t.Run("HeaderAndMap", func(t *testing.T) {
		b := b.with(t)
		b.open("map")
		b.wait(`(e => e && !e.hidden && e.textContent === '1')(document.querySelector('[data-testid=alert-count]'))`, 10*time.Second, "the header to count 1 firing alert")
		if href := eval[string](b, `document.querySelector('[data-testid=nav-alerts]').getAttribute('href')`); href != "#/alerts" {
			t.Errorf("the header count links to %q", href)
		}
		b.wait(`(s => s && s.alerts.edges['frontend->checkout'] === 'firing')(__flowscope.mapState())`, 10*time.Second, "the map to mark frontend → checkout")
		st := eval[map[string]map[string]string](b, `__flowscope.mapState().alerts`)
		if len(st["nodes"]) != 0 || len(st["edges"]) != 1 {
			t.Errorf("marked %v, want only the edge frontend → checkout", st)
		}
		b.wait(`document.querySelector('[data-testid=map-alert][data-alert=firing][data-kind=edge][data-source=frontend][data-target=checkout]')`, 5*time.Second, "the edge in the map's alert list")
		if txt := eval[string](b, `document.querySelector('[data-testid=map-alert]').innerText`); !strings.Contains(txt, slowRule) {
			t.Errorf("the map's alert list shows %q, want the rule name %q literally", txt, slowRule)
		}
		b.wait(`!__flowscope.mapState().layoutRunning`, 10*time.Second, "the layout to settle")
		p := eval[point](b, `__flowscope.edgePoint('frontend', 'checkout', 0.5)`)
		b.do(chromedp.MouseEvent("mouseMoved", p.X, p.Y))
		b.wait(`(e => !e.hidden && e.querySelector('[data-testid=tip-alert]'))(document.querySelector('[data-testid=map-tooltip]'))`, 5*time.Second, "the edge's tooltip to name the alert")
		if tip := eval[string](b, `document.querySelector('[data-testid=tip-alert]').innerText`); !strings.Contains(tip, "firing") || !strings.Contains(tip, slowRule) {
			t.Errorf("tooltip alert line %q", tip)
		}
		assertNoAlertInjection(b)
		b.shot("alerts-map")
		// The side panel of the edge lists its alert.
		b.open("map?source=frontend&target=checkout")
		b.wait(`(e => e && e.innerText.includes(`+js(slowRule)+`))(document.querySelector('[data-testid=side-alerts]'))`, 10*time.Second, "the edge's alerts in the side panel")
		// The count is in the header of every view.
		b.open("traces")
		b.wait(`(e => e && !e.hidden && e.textContent === '1')(document.querySelector('[data-testid=alert-count]'))`, 10*time.Second, "the header count on the traces view")
	})

	t.Run("AlertsView", func(t *testing.T) {
		b := b.with(t)
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=nav-alerts]`)))
		card := `[data-testid=alerts-firing] [data-testid=alert][data-state=firing]`
		b.wait(`document.body.dataset.view === 'alerts' && document.querySelector('`+card+` svg .series.threshold path')`, 10*time.Second, "the firing alert with its chart")
		if n := eval[int](b, `document.querySelectorAll('[data-testid=alerts-firing] [data-testid=alert]').length`); n != 1 {
			t.Errorf("%d firing alerts shown, want 1", n)
		}
		if n := eval[int](b, `document.querySelectorAll('[data-testid=alerts-pending] [data-testid=alert]').length`); n != 0 {
			t.Errorf("%d pending alerts shown, want 0", n)
		}
		got := eval[map[string]any](b, `(c => ({
			rule: c.querySelector('[data-testid=alert-rule]').textContent,
			target: c.querySelector('[data-testid=alert-target]').textContent,
			state: c.querySelector('[data-testid=alert-state]').textContent,
			since: c.querySelector('[data-testid=alert-since]').textContent,
			value: c.querySelector('[data-testid=alert-value] .stat-value').textContent,
			threshold: c.querySelector('[data-testid=alert-threshold] .stat-value').textContent,
			labels: [...c.querySelectorAll('[data-testid=alert-label]')].map(e => e.textContent),
			summary: c.querySelector('[data-testid=alert-summary]').textContent,
			exemplars: [...c.querySelectorAll('[data-testid=alert-exemplar]')].map(e => e.dataset.traceId),
			line: !!c.querySelector('svg .series.value path'),
		}))(document.querySelector('`+card+`'))`)
		if got["rule"] != slowRule || got["target"] != "frontend → checkout" || got["state"] != "firing" {
			t.Errorf("alert card: rule %q target %q state %q", got["rule"], got["target"], got["state"])
		}
		if !strings.HasPrefix(fmt.Sprint(got["since"]), "firing for ") {
			t.Errorf("alert card: since %q", got["since"])
		}
		if v := fmt.Sprint(got["value"]); !strings.HasSuffix(v, " ms") || got["threshold"] != "> 100 ms" {
			t.Errorf("alert card: value %q threshold %q, want milliseconds over > 100 ms", v, got["threshold"])
		}
		labels := fmt.Sprint(got["labels"])
		for _, want := range []string{"severity=" + slowSeverity, "source=frontend", "target=checkout"} {
			if !strings.Contains(labels, want) {
				t.Errorf("alert labels %s lack %q", labels, want)
			}
		}
		if sum := fmt.Sprint(got["summary"]); !strings.HasPrefix(sum, "<b>p99</b> frontend → checkout is ") {
			t.Errorf("summary %q, want the template's markup as text", sum)
		}
		if got["line"] != true {
			t.Errorf("the chart has no line of values")
		}
		var ex []string
		for _, e := range got["exemplars"].([]any) {
			ex = append(ex, e.(string))
		}
		if !slices.Equal(ex, slow.Exemplars) {
			t.Errorf("exemplar links %v, API exemplars %v", ex, slow.Exemplars)
		}
		// The resolved rule, and the rules with their health.
		b.wait(`document.querySelector('[data-testid=resolved-row][data-rule=BriefSpike]')`, 10*time.Second, "BriefSpike among the recently resolved")
		b.wait(`document.querySelectorAll('[data-testid=rule-row]').length === 2 && [...document.querySelectorAll('[data-testid=rule-row]')].every(r => r.dataset.health === 'ok')`, 10*time.Second, "both rules, healthy")
		if names := eval[[]string](b, `[...document.querySelectorAll('[data-testid=rule-row] [data-testid=rule-link]')].map(e => e.textContent).sort()`); !slices.Equal(names, []string{briefRule, slowRule}) {
			t.Errorf("rules %q", names)
		}
		text := b.text()
		for _, lit := range []string{slowRule, slowSeverity, "<b>p99</b>"} {
			if !strings.Contains(text, lit) {
				t.Errorf("the Alerts view does not show %q literally", lit)
			}
		}
		assertNoAlertInjection(b)
		b.shot("alerts")

		// Reloading the rules keeps them.
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=rules-reload]`)))
		b.wait(`document.querySelector('[data-testid=rules-reload-result]').textContent === 'Loaded 2 rules.'`, 10*time.Second, "the reload's result")

		// The rule's page: its definition and history, newest first.
		b.do(chromedp.Click(chromedp.CSS(card + ` [data-testid=alert-rule]`)))
		b.wait(`__flowscope.route().params.rule === `+js(slowRule)+` && document.querySelector('[data-testid=rule-title]') && document.querySelector('[data-testid=history-row][data-to=firing]')`, 10*time.Second, "the rule's history")
		if title := eval[string](b, `document.querySelector('[data-testid=rule-title]').textContent`); title != slowRule {
			t.Errorf("rule title %q", title)
		}
		if v := eval[string](b, `document.querySelector('[data-testid=alerts-rule]').value`); v != slowRule {
			t.Errorf("rule filter %q", v)
		}
		if n := eval[int](b, `document.querySelectorAll('[data-testid=resolved-row]').length`); n != 0 {
			t.Errorf("the rule's page lists %d resolved alerts of other rules", n)
		}
		assertNoAlertInjection(b)
		b.shot("alerts-rule")

		// An exemplar opens its trace.
		b.do(chromedp.Click(chromedp.CSS(card + ` [data-testid=alert-exemplar]`)))
		b.wait(`document.body.dataset.view === 'trace' && document.querySelectorAll('[data-testid=span-row]').length === 2`, 10*time.Second, "the exemplar's trace")
		id := eval[map[string]any](b, `__flowscope.route()`)["arg"].(string)
		if id != slow.Exemplars[0] || !seeded[id] {
			t.Errorf("the exemplar link opened trace %q, want %q, one of the slow calls", id, slow.Exemplars[0])
		}
	})

	t.Run("Links", func(t *testing.T) {
		// generatorURL and the exemplar annotation, as a notification
		// receiver would open them.
		b := b.with(t)
		// Their origin is the configured external URL (here, with port 0
		// in the configuration, not the port the UI listens on): only the
		// route matters.
		frag := func(u string) string {
			t.Helper()
			_, f, ok := strings.Cut(u, "/#/")
			if !ok {
				t.Fatalf("link %q is not into the UI", u)
			}
			return f
		}
		if want := "alerts?rule=" + url.QueryEscape(slowRule); frag(slow.GeneratorURL) != want {
			t.Errorf("generatorURL %q, want …/#/%s", slow.GeneratorURL, want)
		}
		b.open(frag(slow.GeneratorURL))
		b.wait(`(e => e && e.textContent === `+js(slowRule)+`)(document.querySelector('[data-testid=rule-title]')) && document.querySelector('[data-testid=alert][data-state=firing]')`, 10*time.Second, "the generatorURL's rule page")
		b.open(frag(slow.Annotations["exemplar"]))
		b.wait(`document.body.dataset.view === 'trace' && document.querySelectorAll('[data-testid=span-row]').length === 2`, 10*time.Second, "the exemplar annotation's trace")
		assertNoAlertInjection(b)
	})

	t.Run("Dashboards", func(t *testing.T) {
		b := b.with(t)
		ready := `(ps => ps.length > 0 && ps.every(p => p.dataset.state === 'ready'))([...document.querySelectorAll('[data-testid=panel]')])`
		b.open("dashboard/service-overview")
		b.wait(`document.querySelector('[data-testid=panel][data-panel-type=alerts][data-state=ready] [data-testid=panel-row][data-state=firing]')`, 15*time.Second, "the overview's alerts panel")
		b.open("dashboard/oncall")
		b.wait(ready+` && document.querySelector('[data-testid=panel-no-alerts]')`, 15*time.Second, "the on-call panels")
		rows := eval[[]int](b, `[...document.querySelectorAll('[data-testid=panel][data-panel-type=alerts]')].map(p => p.querySelectorAll('[data-testid=panel-row]').length)`)
		if !slices.Equal(rows, []int{1, 0}) {
			t.Errorf("alerts panels list %v alerts, want 1 (checkout calls) and 0 (cart calls)", rows)
		}
		if txt := eval[string](b, `document.querySelector('[data-testid=panel-row]').innerText`); !strings.Contains(txt, slowRule) || !strings.Contains(txt, "<b>p99</b>") {
			t.Errorf("panel row %q", txt)
		}
		assertNoAlertInjection(b)
		b.shot("alerts-dashboard")
	})
	b.checkClean()
}

// assertNoAlertInjection checks that no markup of the rules ran or left an
// element, as assertNoInjection does for span data.
func assertNoAlertInjection(b *tab) {
	b.t.Helper()
	got := eval[map[string]any](b, `({
		xss: typeof window.__xss === 'undefined' ? null : String(window.__xss),
		injected: document.querySelectorAll('img[src="x"], [onerror], [onload]').length + [...document.querySelectorAll('b')].filter(e => e.textContent === 'p99').length,
	})`)
	if got["xss"] != nil {
		b.t.Errorf("markup of a rule ran: window.__xss = %v", got["xss"])
	}
	if n := got["injected"].(float64); n != 0 {
		b.t.Errorf("%v elements from rule markup in the DOM", n)
	}
	assertNoInjection(b)
}
