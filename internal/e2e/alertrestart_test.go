package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sustainedRule stays pending: for: 10m.
const sustainedRule = `
  - alert: CheckoutSlowSustained
    select: {source: frontend, target: checkout}
    signal: p99
    above: 200ms
    window: 10s
    min_count: 5
    for: 10m
    labels: {severity: ticket}
`

// TestAlertRestart checks that active alert state survives SIGKILL. Two
// rules watch the slow frontend → checkout edge: CheckoutSlowSustained
// (for: 10m) stays pending, CheckoutSlow (for: 0) fires and is delivered to
// a webhook. After a SIGKILL and a restart on the same data directory, with
// the slow traffic continuing, the pending alert keeps its activeAt, the
// firing one its firedAt, and the webhook receives no second "firing"
// message (its delivery was recorded before the kill).
func TestAlertRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills the collector binary; skipped under -short")
	}
	bin := sharedCollectorBin(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	rulesPath := writeRules(t, dir, "rules.yml", sustainedRule+checkoutSlowRule)
	hook := startHookServer(t, nil)
	args := []string{"--rules", rulesPath, "--alerting-interval", "1s", "--webhook-url", hook.url()}

	p := procStartCollector(t, bin, data, args...)
	p.waitReady(t, 30*time.Second)
	traffic := startEdgeTraffic(t, p.grpcAddr, slowLatency, 20)

	var pending, firing *apiAlert
	waitFor(t, 60*time.Second, "CheckoutSlowSustained pending and CheckoutSlow firing", func() (bool, string) {
		alerts := getAlerts(t, p.httpAddr)
		pending, firing = alertOf(alerts, "CheckoutSlowSustained"), alertOf(alerts, "CheckoutSlow")
		return pending != nil && pending.State == "pending" && firing != nil && firing.State == "firing", alertsSummary(alerts)
	})
	waitFor(t, 60*time.Second, "the webhook receives CheckoutSlow firing", func() (bool, string) {
		return len(hook.find("CheckoutSlow", "firing")) == 1, hook.summary()
	})
	waitFor(t, 30*time.Second, "the firing delivery is recorded as sent", func() (bool, string) {
		events := getHistory(t, p.httpAddr, "rule=CheckoutSlow")
		sent := eventsWhere(events, func(e apiEvent) bool {
			return e.Kind == "delivery" && e.Status == "firing" && e.Outcome == "sent" && e.Receiver == "webhook "+hook.url()
		})
		return len(sent) == 1, eventsSummary(events)
	})
	// The state as the API shows it now (the alerts keep their times while
	// they stay active).
	alerts := getAlerts(t, p.httpAddr)
	pending, firing = alertOf(alerts, "CheckoutSlowSustained"), alertOf(alerts, "CheckoutSlow")
	if pending == nil || pending.State != "pending" || firing == nil || firing.State != "firing" {
		t.Fatalf("before the kill: %s", alertsSummary(alerts))
	}
	if pending.FiredAt != "" {
		t.Errorf("pending alert has firedAt %q", pending.FiredAt)
	}
	// Without --external-url the links use the HTTP address the collector
	// actually listens on.
	if want := "http://" + p.httpAddr + "/"; !strings.HasPrefix(firing.GeneratorURL, want) || !strings.HasPrefix(firing.Annotations["exemplar"], want) {
		t.Errorf("without --external-url: generatorUrl %q, exemplar annotation %q; want links under %s (the listening HTTP address)",
			firing.GeneratorURL, firing.Annotations["exemplar"], want)
	}

	// Everything acknowledged, then SIGKILL and a restart with the slow
	// traffic continuing.
	traffic.stop()
	p.sigkill(t)
	killedAt := time.Now()
	p = procStartCollector(t, bin, data, args...)
	traffic = startEdgeTraffic(t, p.grpcAddr, slowLatency, 20)
	p.waitReady(t, 30*time.Second)

	check := func(when string) {
		t.Helper()
		alerts := getAlerts(t, p.httpAddr)
		gotPending, gotFiring := alertOf(alerts, "CheckoutSlowSustained"), alertOf(alerts, "CheckoutSlow")
		if gotPending == nil || gotPending.State != "pending" || !sameTime(t, gotPending.ActiveAt, pending.ActiveAt) {
			t.Fatalf("%s: CheckoutSlowSustained: want pending since %s; alerts %s", when, pending.ActiveAt, alertsSummary(alerts))
		}
		if gotFiring == nil || gotFiring.State != "firing" || !sameTime(t, gotFiring.FiredAt, firing.FiredAt) ||
			!sameTime(t, gotFiring.ActiveAt, firing.ActiveAt) {
			t.Fatalf("%s: CheckoutSlow: want firing since %s (active since %s); alerts %s", when, firing.FiredAt, firing.ActiveAt, alertsSummary(alerts))
		}
		checkLabels(t, when+": restored firing alert", gotFiring.Labels, firing.Labels)
		if fmt.Sprint(gotFiring.Exemplars) != fmt.Sprint(firing.Exemplars) {
			t.Errorf("%s: restored exemplars %v, want %v", when, gotFiring.Exemplars, firing.Exemplars)
		}
	}
	check("right after the restart")
	// Keep the traffic slow for 5s of evaluation: still the same states,
	// and no second firing message.
	restartedAt := time.Now()
	for time.Since(restartedAt) < 5*time.Second {
		time.Sleep(500 * time.Millisecond)
		check(fmt.Sprintf("%.1fs after the restart", time.Since(restartedAt).Seconds()))
	}
	r := getRules(t, p.httpAddr)
	for _, rule := range r.Rules {
		if ev := parseAPITime(t, "lastEvaluation", rule.LastEvaluation); !ev.After(killedAt) || rule.Health != "ok" {
			t.Errorf("rule %s not evaluated after the restart: %+v", rule.Name, rule)
		}
	}
	if got := hook.find("CheckoutSlow", "firing"); len(got) != 1 {
		t.Errorf("the webhook received %d firing messages for CheckoutSlow, want 1 (no renotification after the restart)", len(got))
	}
	if got := hook.find("CheckoutSlow", "resolved"); len(got) != 0 {
		t.Errorf("the webhook received %d resolved messages: the restart resolved the alert", len(got))
	}
	if hook.requestCount() != 1 {
		t.Errorf("the webhook received %d requests, want 1: %s", hook.requestCount(), hook.summary())
	}
	// The history holds one transition of each and no new one.
	events := getHistory(t, p.httpAddr, "")
	for _, tr := range [][3]string{{"CheckoutSlowSustained", "inactive", "pending"}, {"CheckoutSlow", "inactive", "firing"}} {
		if got := eventsWhere(events, isTransition(tr[0], tr[1], tr[2])); len(got) != 1 {
			t.Errorf("history: %d %s %s→%s transitions, want 1:%s", len(got), tr[0], tr[1], tr[2], eventsSummary(events))
		}
	}
	if got := eventsWhere(events, func(e apiEvent) bool { return e.Kind == "transition" && e.To == "inactive" }); len(got) > 0 {
		t.Errorf("history: the restart ended alerts:%s", eventsSummary(got))
	}
	if errs := p.errorLogs(); len(errs) > 0 {
		t.Errorf("the restarted collector logged errors:\n%s", strings.Join(errs, "\n"))
	}
	traffic.stop()
}

// TestAlertRestartPending kills the collector right after an alert became
// pending, as soon as its transition is in the history (so stored), before
// anything else happened: the restart restores it pending with its start,
// as Prometheus restores `for` state.
func TestAlertRestartPending(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills the collector binary; skipped under -short")
	}
	bin := sharedCollectorBin(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	rulesPath := writeRules(t, dir, "rules.yml", sustainedRule)
	args := []string{"--rules", rulesPath, "--alerting-interval", "1s"}

	p := procStartCollector(t, bin, data, args...)
	p.waitReady(t, 30*time.Second)
	traffic := startEdgeTraffic(t, p.grpcAddr, slowLatency, 20)
	var became apiEvent
	waitFor(t, 60*time.Second, "CheckoutSlowSustained becomes pending", func() (bool, string) {
		events := getHistory(t, p.httpAddr, "")
		got := eventsWhere(events, isTransition("CheckoutSlowSustained", "inactive", "pending"))
		if len(got) > 0 {
			became = got[0]
		}
		return len(got) > 0, eventsSummary(events)
	})
	p.sigkill(t)
	traffic.abandon() // its last exports fail: the collector is gone

	p = procStartCollector(t, bin, data, args...)
	p.waitReady(t, 30*time.Second)
	alerts := getAlerts(t, p.httpAddr)
	a := alertOf(alerts, "CheckoutSlowSustained")
	if a == nil || a.State != "pending" || !sameTime(t, a.ActiveAt, became.Time) {
		t.Fatalf("after the restart: want CheckoutSlowSustained pending since %s; alerts %s", became.Time, alertsSummary(alerts))
	}
	checkLabels(t, "restored pending alert", a.Labels, became.Labels)
	// Still the same start with traffic on the restarted collector.
	traffic = startEdgeTraffic(t, p.grpcAddr, slowLatency, 20)
	before := getRules(t, p.httpAddr).Rules[0].LastEvaluation
	waitFor(t, 15*time.Second, "two evaluations after the restart", func() (bool, string) {
		r := getRules(t, p.httpAddr).Rules[0]
		return r.LastEvaluation != before && parseAPITime(t, "", r.LastEvaluation).Sub(parseAPITime(t, "", before)) >= 2*time.Second, fmt.Sprintf("%+v", r)
	})
	alerts = getAlerts(t, p.httpAddr)
	if a := alertOf(alerts, "CheckoutSlowSustained"); a == nil || a.State != "pending" || !sameTime(t, a.ActiveAt, became.Time) {
		t.Errorf("after evaluations on the restarted collector: want pending since %s; alerts %s", became.Time, alertsSummary(alerts))
	}
	events := getHistory(t, p.httpAddr, "")
	if got := eventsWhere(events, func(e apiEvent) bool { return e.Kind == "transition" }); len(got) != 1 {
		t.Errorf("history: want the one inactive→pending transition:%s", eventsSummary(events))
	}
	if errs := p.errorLogs(); len(errs) > 0 {
		t.Errorf("the restarted collector logged errors:\n%s", strings.Join(errs, "\n"))
	}
	traffic.stop()
}

// sameTime reports whether two API times are the same instant.
func sameTime(t testing.TB, a, b string) bool {
	t.Helper()
	if a == "" || b == "" {
		return false
	}
	return parseAPITime(t, "time", a).Equal(parseAPITime(t, "time", b))
}
