package uitest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/flowscope/flowscope/internal/config"
)

const archPolicies = `policies:
  - name: no-direct-db
    deny: {from: "web*", to: "db*"}
  - name: payments-callers
    allow_only: {to: payments, from: [checkout]}
`

// startArchCollector starts a collector with archPolicies in a file it
// returns.
func startArchCollector(t *testing.T) (*server, string) {
	browser(t)
	path := filepath.Join(t.TempDir(), "policies.yml")
	if err := os.WriteFile(path, []byte(archPolicies), 0o600); err != nil {
		t.Fatal(err)
	}
	return startCollector(t, func(c *config.Config) { c.Policies = path }), path
}

// TestArchitecture seeds a forbidden call web → db among allowed ones and
// a fan-out of 12: the map marks the violating edge (and only it) and its
// side panel names the policy; the Architecture view lists the violation
// with its calls and an exemplar that opens the trace at the call's span,
// and the lint's fan-out finding with a node link to the map; a refused
// reload shows its error and keeps the policies, a good one shows the new
// policy. Names with markup (a node named after an XSS payload, which the
// glob matches) are shown as text everywhere.
func TestArchitecture(t *testing.T) {
	s, path := startArchCollector(t)
	now := time.Now().Add(-time.Minute)
	bad := "web" + xssImg
	var spans []span
	for i := 0; i < 3; i++ {
		at := now.Add(time.Duration(i) * time.Second)
		spans = append(spans, call("web", "db", "query", "query", at, 5*time.Millisecond, false)...)
		spans = append(spans, call("api", "db", "query", "query", at, 5*time.Millisecond, false)...)
		spans = append(spans, call("checkout", "payments", "pay", "pay", at, 5*time.Millisecond, false)...)
		spans = append(spans, call(bad, "db", "query", "query", at, 5*time.Millisecond, false)...)
		for j := 1; j <= 12; j++ {
			spans = append(spans, call("hub", fmt.Sprintf("leaf-%02d", j), "get", "get", at, 3*time.Millisecond, false)...)
		}
	}
	s.postTraces(t, spans)
	var g struct {
		Edges []struct {
			Source, Target string
			Violations     []string
		}
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		s.getJSON(t, "/api/v1/flowgraph", &g)
		n := 0
		for _, e := range g.Edges {
			n += len(e.Violations)
		}
		if n == 2 || time.Now().After(deadline) {
			if n != 2 {
				t.Fatalf("flow graph violations: %+v", g.Edges)
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}

	b := newTab(t, s.base)
	b.open("map")
	b.wait(`(s => s && Object.keys(s.violations || {}).length === 2)(__flowscope.mapState())`, 15*time.Second, "the violating edges marked on the map")
	viol := eval[map[string][]string](b, `__flowscope.mapState().violations`)
	if fmt.Sprint(viol["web->db"]) != "[no-direct-db]" || len(viol[bad+"->db"]) != 1 || len(viol["api->db"]) != 0 || len(viol["checkout->payments"]) != 0 {
		t.Errorf("map violations %v, want web → db and the payload node → db only", viol)
	}
	b.shot("architecture-map-violation")
	b.open("map?source=web&target=db")
	b.wait(`document.querySelector('[data-testid=side-violations]')`, 10*time.Second, "the edge's side panel naming the policy")
	if txt := eval[string](b, `document.querySelector('[data-testid=side-violations]').textContent`); !strings.Contains(txt, "no-direct-db") {
		t.Errorf("side panel: %q", txt)
	}

	b.open("architecture")
	b.wait(`document.querySelectorAll('[data-testid=violation]').length === 2 && document.querySelector('[data-testid=finding][data-rule=fan_out]')`, 15*time.Second, "the violations and the fan-out finding")
	type violRow struct {
		Policy, Source, Target, Calls, Exemplar, Span string
	}
	rows := eval[[]violRow](b, `[...document.querySelectorAll('[data-testid=violation]')].map(r => ({policy: r.closest('[data-testid=policy]').dataset.name,
		source: r.dataset.source, target: r.dataset.target, calls: r.children[1].textContent,
		exemplar: (r.querySelector('[data-testid=violation-exemplar]') || {dataset: {}}).dataset.traceId || '',
		span: new URLSearchParams(((r.querySelector('[data-testid=violation-exemplar]') || {}).getAttribute ? r.querySelector('[data-testid=violation-exemplar]').getAttribute('href') : '').split('?')[1] || '').get('span') || ''}))`)
	var web violRow
	for _, r := range rows {
		if r.Policy != "no-direct-db" || r.Target != "db" || r.Calls != "3" || r.Exemplar == "" {
			t.Errorf("violation row %+v", r)
		}
		if r.Source == "web" {
			web = r
		}
	}
	if text := eval[string](b, `[...document.querySelectorAll('[data-testid=violation] a')].map(a => a.textContent).join('|')`); !strings.Contains(text, bad+" → db") {
		t.Errorf("the payload node is not shown as text: %q", text)
	}
	if n := eval[int](b, `document.querySelectorAll('[data-testid=policy][data-name=payments-callers][data-violations="0"]').length`); n != 1 {
		t.Error("payments-callers is not shown passing")
	}
	b.shot("architecture-view")
	assertNoInjection(b)

	// The lint: the hub's fan-out, with a link to the node on the map.
	if msg := eval[string](b, `document.querySelector('[data-testid=finding][data-rule=fan_out] [data-testid=finding-message]').textContent`); !strings.Contains(msg, "hub") {
		t.Errorf("fan-out finding: %q", msg)
	}
	b.shot("architecture-lint")

	// The exemplar opens the trace at the call's span.
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=violation][data-source=web] [data-testid=violation-exemplar]`)))
	b.wait(fmt.Sprintf(`document.body.dataset.view === 'trace' && document.querySelector('[data-testid=span-row].selected[data-span-id="%s"]')`, web.Span), 15*time.Second, "the exemplar trace at its span")

	// A node link of a finding opens the map on that node.
	b.open("architecture")
	b.wait(`document.querySelector('[data-testid=finding][data-rule=fan_out] [data-testid=finding-node]')`, 15*time.Second, "the fan-out finding")
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=finding][data-rule=fan_out] [data-testid=finding-node]`)))
	b.wait(`document.body.dataset.view === 'map' && __flowscope.route().params.node === 'hub'`, 10*time.Second, "the map on the hub")

	// A refused reload keeps the policies and says why; a good one shows
	// the new policy.
	b.open("architecture")
	b.wait(`document.querySelectorAll('[data-testid=policy]').length === 2`, 15*time.Second, "the policies")
	if err := os.WriteFile(path, []byte("policies:\n  - name: broken\n    deny: {form: web}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.allow("api/v1/policies:reload") // the 400 below is logged by the browser
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=policies-reload]`)))
	b.wait(`document.querySelector('[data-testid=policies-reload-result]').classList.contains('err') && document.querySelector('[data-testid=policies-reload-error]')`, 10*time.Second, "the refused reload")
	if msg := eval[string](b, `document.querySelector('[data-testid=policies-reload-result]').textContent`); !strings.Contains(msg, "form") {
		t.Errorf("reload error %q does not name the bad key", msg)
	}
	if n := eval[int](b, `document.querySelectorAll('[data-testid=policy]').length`); n != 2 {
		t.Errorf("%d policies after a refused reload, want the 2 in use", n)
	}
	if err := os.WriteFile(path, []byte(archPolicies+"  - name: no-hub\n    deny: {from: hub}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=policies-reload]`)))
	b.wait(`document.querySelector('[data-testid=policy][data-name=no-hub]') && document.querySelector('[data-testid=policy][data-name=no-hub]').dataset.violations === "12"`, 15*time.Second, "the new policy with its 12 violations")
	assertNoInjection(b)
	b.checkClean()
}

// TestArchitectureLintOnMap turns the lint on on the map (lint=1): the
// hub of a fan-out of 12 gets the lint badge, its calls the outline, and
// the overview lists the finding and the policy violation with links.
func TestArchitectureLintOnMap(t *testing.T) {
	s, _ := startArchCollector(t)
	now := time.Now().Add(-time.Minute)
	var spans []span
	for j := 1; j <= 12; j++ {
		spans = append(spans, call("hub", fmt.Sprintf("leaf-%02d", j), "get", "get", now, 3*time.Millisecond, false)...)
	}
	spans = append(spans, call("web", "db", "query", "query", now, 5*time.Millisecond, false)...)
	s.postTraces(t, spans)
	s.waitEdge(t, "web", "db")
	s.waitEdge(t, "hub", "leaf-12")

	b := newTab(t, s.base)
	b.open("map?lint=1")
	b.wait(`(s => s && s.lint && s.lint.nodes.hub)(__flowscope.mapState())`, 15*time.Second, "the lint marks on the map")
	st := eval[map[string]map[string][]string](b, `__flowscope.mapState().lint`)
	if fmt.Sprint(st["nodes"]["hub"]) != "[fan_out]" || fmt.Sprint(st["edges"]["hub->leaf-01"]) != "[fan_out]" || len(st["nodes"]["web"]) != 0 {
		t.Errorf("lint marks %v", st)
	}
	b.wait(`document.querySelector('[data-testid=summary-finding][data-rule=fan_out]') && document.querySelector('[data-testid=summary-violation]')`, 10*time.Second, "the overview's findings and violations")
	b.shot("architecture-map-lint")
	// Off: the marks go.
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=lint-toggle]`)))
	b.wait(`!__flowscope.mapState().lint`, 10*time.Second, "the lint marks removed")
	b.checkClean()
}
