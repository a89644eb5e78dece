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
  - name: markup-glob
    deny: {from: '` + xssSVG + `*', to: db}
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

// TestArchitecture seeds a forbidden call web → db among allowed ones, a
// fan-out of 12 and a cycle: the map marks the violating edges (and only
// them) and the edge's side panel names the policy with a link to the
// Architecture view; the view lists the violations with their calls and an
// exemplar that opens the trace at the call's span, the passing policies,
// and the lint's fan-out and cycle findings with a node link to the map; a
// reload refused for a YAML syntax error and for an unknown key shows the
// error and keeps the policies, a good one shows the new policy. Markup in
// node names (one matched by a glob, one named by a lint message) and in a
// glob is shown as text everywhere.
func TestArchitecture(t *testing.T) {
	s, path := startArchCollector(t)
	now := time.Now().Add(-time.Minute)
	bad := "web" + xssImg
	cyc := "cyc" + xssQuote // a lint message names it
	var spans []span
	for i := 0; i < 3; i++ {
		at := now.Add(time.Duration(i) * time.Second)
		spans = append(spans, call("web", "db", "query", "query", at, 5*time.Millisecond, false)...)
		spans = append(spans, call("api", "db", "query", "query", at, 5*time.Millisecond, false)...)
		spans = append(spans, call("checkout", "payments", "pay", "pay", at, 5*time.Millisecond, false)...)
		spans = append(spans, call(bad, "db", "query", "query", at, 5*time.Millisecond, false)...)
		spans = append(spans, call(cyc, "cyc-b", "ping", "ping", at, 2*time.Millisecond, false)...)
		spans = append(spans, call("cyc-b", cyc, "pong", "pong", at, 2*time.Millisecond, false)...)
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
	b.open("map?source=web&target=db")
	b.wait(`document.querySelector('[data-testid=side-violations]')`, 10*time.Second, "the edge's side panel naming the policy")
	if txt := eval[string](b, `document.querySelector('[data-testid=side-violations]').textContent`); !strings.Contains(txt, "no-direct-db") {
		t.Errorf("side panel: %q", txt)
	}
	if href := eval[string](b, `document.querySelector('[data-testid=side-violations] a').getAttribute('href')`); !strings.HasPrefix(href, "#/architecture") {
		t.Errorf("side panel link %q, want the Architecture view", href)
	}
	b.shot("architecture-map-violation")
	// The overview lists both violating calls, the payload as text.
	b.open("map")
	b.wait(`document.querySelectorAll('[data-testid=summary-violation]').length === 2`, 10*time.Second, "the overview's violations")
	if txt := eval[string](b, `[...document.querySelectorAll('[data-testid=summary-violation]')].map(r => r.textContent).join('|')`); !strings.Contains(txt, bad+" → db") {
		t.Errorf("overview violations %q", txt)
	}
	assertNoInjection(b)

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
	if txt := eval[string](b, `(document.querySelector('[data-testid=policy][data-name=markup-glob][data-violations="0"]') || {}).textContent || ''`); !strings.Contains(txt, xssSVG+"*") {
		t.Errorf("the markup glob is not shown as text: %q", txt)
	}
	b.shot("architecture-view")
	assertNoInjection(b)

	// The lint: the hub's fan-out, with a link to the node on the map.
	if msg := eval[string](b, `document.querySelector('[data-testid=finding][data-rule=fan_out] [data-testid=finding-message]').textContent`); !strings.Contains(msg, "hub") {
		t.Errorf("fan-out finding: %q", msg)
	}
	if msg := eval[string](b, `(document.querySelector('[data-testid=finding][data-rule=cycle] [data-testid=finding-message]') || {}).textContent || ''`); !strings.Contains(msg, cyc) {
		t.Errorf("cycle finding %q does not name %q as text", msg, cyc)
	}
	if n := eval[int](b, `document.querySelectorAll('[data-testid=lint-rules] tbody tr').length`); n != 8 {
		t.Errorf("%d rule settings, want 8", n)
	}
	eval[bool](b, `(document.querySelector('[data-testid=lint] details').open = true, document.querySelector('[data-testid=lint]').scrollIntoView(), true)`)
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
	b.wait(`document.querySelectorAll('[data-testid=policy]').length === 3`, 15*time.Second, "the policies")
	b.allow("api/v1/policies:reload") // the 400s below are logged by the browser
	for _, bad := range []struct{ name, file, want string }{
		{"yaml syntax", "policies:\n  - name: broken\n    deny: {from: web\n", "syntax error"},
		{"unknown key", "policies:\n  - name: broken\n    deny: {form: web}\n", "form"},
	} {
		if err := os.WriteFile(path, []byte(bad.file), 0o600); err != nil {
			t.Fatal(err)
		}
		eval[bool](b, `(document.querySelector('[data-testid=policies-reload-result]').textContent = '', true)`)
		b.do(chromedp.Click(chromedp.CSS(`[data-testid=policies-reload]`)))
		b.wait(fmt.Sprintf(`document.querySelector('[data-testid=policies-reload-result]').classList.contains('err') && document.querySelector('[data-testid=policies-reload-result]').textContent !== '' && (document.querySelector('[data-testid=policies-reload-error]') || {textContent: ''}).textContent.includes(%q)`, bad.want), 10*time.Second, "the refused reload and its banner: "+bad.name)
		msg := eval[string](b, `document.querySelector('[data-testid=policies-reload-result]').textContent`)
		banner := eval[string](b, `document.querySelector('[data-testid=policies-reload-error]').textContent`)
		if !strings.Contains(msg, bad.want) || !strings.Contains(banner, bad.want) {
			t.Errorf("%s: reload error %q, banner %q; want them to mention %q", bad.name, msg, banner, bad.want)
		}
		if n := eval[int](b, `document.querySelectorAll('[data-testid=policy]').length`); n != 3 {
			t.Errorf("%s: %d policies after a refused reload, want the 3 in use", bad.name, n)
		}
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
// hub of a fan-out of 12 gets the lint badge and its calls the outline,
// both nodes and both calls of a cycle are marked, a violating node is not;
// the legend explains the marks; the overview lists the findings (markup
// in a node name as text) and the policy violation, and a finding's link
// selects its node; unchecking removes the marks.
func TestArchitectureLintOnMap(t *testing.T) {
	s, _ := startArchCollector(t)
	now := time.Now().Add(-time.Minute)
	var spans []span
	for j := 1; j <= 12; j++ {
		spans = append(spans, call("hub", fmt.Sprintf("leaf-%02d", j), "get", "get", now, 3*time.Millisecond, false)...)
	}
	spans = append(spans, call("web", "db", "query", "query", now, 5*time.Millisecond, false)...)
	cyc := "cyc" + xssImg
	spans = append(spans, call(cyc, "cyc-b", "ping", "ping", now, 2*time.Millisecond, false)...)
	spans = append(spans, call("cyc-b", cyc, "pong", "pong", now, 2*time.Millisecond, false)...)
	s.postTraces(t, spans)
	s.waitEdge(t, "web", "db")
	s.waitEdge(t, "hub", "leaf-12")
	s.waitEdge(t, "cyc-b", cyc)

	b := newTab(t, s.base)
	b.open("map?lint=1")
	b.wait(`(s => s && s.lint && s.lint.nodes.hub)(__flowscope.mapState())`, 15*time.Second, "the lint marks on the map")
	st := eval[map[string]map[string][]string](b, `__flowscope.mapState().lint`)
	for _, c := range []struct {
		kind, id, want string
	}{
		{"nodes", "hub", "[fan_out]"},
		{"edges", "hub->leaf-01", "[fan_out]"},
		{"nodes", "web", "[]"}, // a violation is not a lint finding
		{"nodes", cyc, "[cycle]"},
		{"nodes", "cyc-b", "[cycle]"},
		{"edges", cyc + "->cyc-b", "[cycle]"},
		{"edges", "cyc-b->" + cyc, "[cycle]"},
	} {
		if got := fmt.Sprint(st[c.kind][c.id]); got != c.want {
			t.Errorf("lint %s %q: %s, want %s", c.kind, c.id, got, c.want)
		}
	}
	if !eval[bool](b, `!document.querySelector('[data-testid=legend-lint]').hidden && !!document.querySelector('[data-testid=legend-violation]')`) {
		t.Error("the legend does not explain the violation and lint marks")
	}
	b.wait(`document.querySelector('[data-testid=summary-finding][data-rule=fan_out]') && document.querySelector('[data-testid=summary-finding][data-rule=cycle]') && document.querySelector('[data-testid=summary-violation]')`, 10*time.Second, "the overview's findings and violations")
	if txt := eval[string](b, `document.querySelector('[data-testid=summary-finding][data-rule=cycle]').textContent`); !strings.Contains(txt, cyc) {
		t.Errorf("the overview's cycle finding %q does not show %q as text", txt, cyc)
	}
	// The finding's node link selects the node.
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=summary-finding][data-rule=fan_out] a`)))
	b.wait(`__flowscope.route().params.node === 'hub' && __flowscope.route().params.lint === '1'`, 10*time.Second, "the map on the hub, lint still on")
	b.open("map?lint=1")
	b.wait(`(s => s && s.lint && s.lint.nodes.hub)(__flowscope.mapState()) && document.querySelector('[data-testid=summary-finding]')`, 15*time.Second, "the lint marks on the map again")
	b.shot("architecture-map-lint")
	assertNoInjection(b)
	// Off: the marks go.
	b.do(chromedp.Click(chromedp.CSS(`[data-testid=lint-toggle]`)))
	b.wait(`!__flowscope.mapState().lint`, 10*time.Second, "the lint marks removed")
	b.checkClean()
}

// TestArchitectureNoPolicies: without --policies the view says how to
// configure them and offers no reload, and the lint still runs.
func TestArchitectureNoPolicies(t *testing.T) {
	browser(t)
	s := startCollector(t)
	now := time.Now().Add(-time.Minute)
	var spans []span
	for j := 1; j <= 11; j++ {
		spans = append(spans, call("hub", fmt.Sprintf("leaf-%02d", j), "get", "get", now, 3*time.Millisecond, false)...)
	}
	s.postTraces(t, spans)
	s.waitEdge(t, "hub", "leaf-11")
	b := newTab(t, s.base)
	b.open("architecture")
	b.wait(`document.querySelector('[data-testid=policies-none]') && document.querySelector('[data-testid=finding][data-rule=fan_out]')`, 15*time.Second, "the explanation and the lint")
	if txt := eval[string](b, `document.querySelector('[data-testid=policies-none]').textContent`); !strings.Contains(txt, "--policies") {
		t.Errorf("no-policies text %q does not say how to configure them", txt)
	}
	if !eval[bool](b, `document.querySelector('[data-testid=policies-reload]').hidden && !document.querySelector('[data-testid=policy]')`) {
		t.Error("a reload button or policies without --policies")
	}
	b.checkClean()
}
