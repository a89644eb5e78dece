package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestAlertmanagerEndToEnd is issue 12's acceptance test: the collector
// binary evaluates "p99 of frontend → checkout above 200ms" on traffic sent
// with the OpenTelemetry Go SDK and notifies a real Alertmanager (Debian's
// prometheus-alertmanager, run on its own port, storage and config, whose
// route sends everything to a webhook receiver of the test) and a plain
// webhook receiver of the test.
//
// Normal traffic (~15ms) raises nothing. Slow traffic (~400ms) fires the
// alert: /api/v1/alerts shows it firing with its labels and exemplars,
// Alertmanager's GET /api/v2/alerts lists it with alertname, source,
// target, severity and team, Alertmanager notifies its receiver, and the
// plain webhook receives a "firing" message (version "4"). When the traffic
// recovers the alert resolves: gone from /api/v1/alerts, no longer active in
// Alertmanager (which notifies "resolved"), and the plain webhook receives
// "resolved". The exemplar trace IDs of the history and of the messages are
// among the slow traces sent and are served by GET /api/v1/traces/{id}.
func TestAlertmanagerEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the collector binary and Alertmanager; skipped under -short")
	}
	amBin := lookAlertmanager(t)
	bin := sharedCollectorBin(t)
	dir := t.TempDir()

	amHook := startHookServer(t, nil) // Alertmanager's receiver
	am := startAlertmanager(t, amBin, amHook.url())
	hook := startHookServer(t, nil) // the collector's plain webhook

	rulesPath := writeRules(t, dir, "rules.yml", checkoutSlowRule)
	const externalURL = "http://flowscope.example:8686"
	p := procStartCollector(t, bin, filepath.Join(dir, "data"),
		"--rules", rulesPath, "--alerting-interval", "1s", "--external-url", externalURL,
		"--alertmanager-url", am.url, "--webhook-url", hook.url())
	p.waitReady(t, 30*time.Second)

	// Normal traffic: evaluated, nothing raised.
	traffic := startEdgeTraffic(t, p.grpcAddr, fastLatency, 20)
	waitFor(t, 30*time.Second, "the edge is evaluated with enough normal traffic", func() (bool, string) {
		r := getRules(t, p.httpAddr)
		lastEval := parseAPITime(t, "lastEvaluation", r.Rules[0].LastEvaluation)
		return traffic.count() > 100 && r.Rules[0].Health == "ok" && time.Since(lastEval) < 5*time.Second,
			fmt.Sprintf("%d traces sent, rule %+v", traffic.count(), r.Rules[0])
	})
	time.Sleep(2 * time.Second) // two more cycles on normal traffic
	if a := getAlerts(t, p.httpAddr); len(a) != 0 {
		t.Fatalf("alerts on normal traffic: %s", alertsSummary(a))
	}

	// Slow traffic: the alert fires.
	traffic.setLatency(slowLatency)
	slowAt := time.Now()
	var firing *apiAlert
	waitFor(t, 60*time.Second, "CheckoutSlow firing in /api/v1/alerts", func() (bool, string) {
		alerts := getAlerts(t, p.httpAddr)
		firing = alertOf(alerts, "CheckoutSlow")
		return firing != nil && firing.State == "firing", alertsSummary(alerts)
	})
	t.Logf("firing %.1fs after the traffic turned slow: value %.0fms, exemplars %v", time.Since(slowAt).Seconds(), firing.Value/1e6, firing.Exemplars)
	wantLabels := map[string]string{"alertname": "CheckoutSlow", "source": "frontend", "target": "checkout", "severity": "page", "team": "shop"}
	checkLabels(t, "/api/v1/alerts", firing.Labels, wantLabels)
	if firing.Key != "source=frontend,target=checkout" || firing.Target != "frontend → checkout" || firing.Signal != "p99" || firing.Unit != "ns" ||
		firing.Threshold != 200e6 || firing.Value <= 200e6 || firing.ActiveAt == "" || firing.FiredAt == "" {
		t.Errorf("firing alert: %+v", *firing)
	}
	if !strings.HasPrefix(firing.GeneratorURL, externalURL+"/") {
		t.Errorf("generatorUrl %q is not under --external-url %s", firing.GeneratorURL, externalURL)
	}
	checkSlowExemplars(t, p.httpAddr, traffic, "/api/v1/alerts exemplars", firing.Exemplars)
	checkExemplarAnnotation(t, "/api/v1/alerts", firing.Annotations, externalURL, firing.Exemplars)
	if s := firing.Annotations["summary"]; !strings.Contains(s, "frontend → checkout") {
		t.Errorf("summary annotation %q: the template was not expanded with .Target", s)
	}

	// Alertmanager has it.
	var amAlert *amGettable
	waitFor(t, 60*time.Second, "CheckoutSlow active in Alertmanager's GET /api/v2/alerts", func() (bool, string) {
		list := am.alerts(t)
		amAlert = findAMAlert(list, "CheckoutSlow")
		return amAlert != nil && amAlert.Status.State == "active", fmt.Sprintf("%+v", list)
	})
	checkLabels(t, "Alertmanager", amAlert.Labels, wantLabels)
	if !strings.HasPrefix(amAlert.GeneratorURL, externalURL+"/") {
		t.Errorf("Alertmanager alert generatorURL %q", amAlert.GeneratorURL)
	}
	checkExemplarAnnotation(t, "Alertmanager", amAlert.Annotations, externalURL, firing.Exemplars)
	if !amAlert.EndsAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("Alertmanager alert endsAt %s: a firing alert is posted with endsAt = now + 4m", amAlert.EndsAt)
	}
	// ... and notified its own receiver.
	waitFor(t, 60*time.Second, "Alertmanager notifies its receiver of CheckoutSlow firing", func() (bool, string) {
		return len(amHook.find("CheckoutSlow", "firing")) > 0, amHook.summary()
	})
	checkLabels(t, "Alertmanager's notification", amHook.find("CheckoutSlow", "firing")[0].Alerts[0].Labels, wantLabels)

	// The plain webhook: a firing message in Alertmanager's format.
	waitFor(t, 60*time.Second, "the webhook receives CheckoutSlow firing", func() (bool, string) {
		return len(hook.find("CheckoutSlow", "firing")) > 0, hook.summary()
	})
	fm := hook.find("CheckoutSlow", "firing")[0]
	if fm.Version != "4" || len(fm.Alerts) != 1 || fm.Alerts[0].Status != "firing" || fm.ExternalURL != externalURL {
		t.Errorf("firing message: %+v", fm)
	}
	checkLabels(t, "webhook firing message", fm.Alerts[0].Labels, wantLabels)
	if !fm.Alerts[0].StartsAt.Equal(parseAPITime(t, "activeAt", firing.ActiveAt)) {
		t.Errorf("firing message startsAt %s, the alert's activeAt %s", fm.Alerts[0].StartsAt, firing.ActiveAt)
	}
	checkExemplarAnnotation(t, "webhook firing message", fm.Alerts[0].Annotations, externalURL, firing.Exemplars)

	// Traffic recovers: the alert resolves. The slow spans leave a 10s
	// window within ~20s.
	traffic.setLatency(fastLatency)
	fastAt := time.Now()
	waitFor(t, 60*time.Second, "CheckoutSlow resolves in /api/v1/alerts", func() (bool, string) {
		alerts := getAlerts(t, p.httpAddr)
		return alertOf(alerts, "CheckoutSlow") == nil, alertsSummary(alerts)
	})
	t.Logf("resolved %.1fs after the traffic recovered", time.Since(fastAt).Seconds())
	waitFor(t, 60*time.Second, "the webhook receives CheckoutSlow resolved", func() (bool, string) {
		return len(hook.find("CheckoutSlow", "resolved")) > 0, hook.summary()
	})
	rm := hook.find("CheckoutSlow", "resolved")[0]
	if rm.Version != "4" || len(rm.Alerts) != 1 || rm.Alerts[0].Status != "resolved" || rm.Alerts[0].EndsAt.IsZero() ||
		!rm.Alerts[0].StartsAt.Equal(fm.Alerts[0].StartsAt) {
		t.Errorf("resolved message: %+v (firing message %+v)", rm, fm)
	}
	checkLabels(t, "webhook resolved message", rm.Alerts[0].Labels, wantLabels)
	if rm.GroupKey != fm.GroupKey || rm.Alerts[0].Fingerprint != fm.Alerts[0].Fingerprint {
		t.Errorf("resolved message groupKey %q fingerprint %q, firing %q %q: a receiver cannot pair them",
			rm.GroupKey, rm.Alerts[0].Fingerprint, fm.GroupKey, fm.Alerts[0].Fingerprint)
	}
	if got := hook.find("CheckoutSlow", "firing"); len(got) != 1 {
		t.Errorf("the webhook received %d firing messages for one firing, want 1", len(got))
	}
	if bad := hook.badRequests(); len(bad) > 0 {
		t.Errorf("the webhook received malformed requests: %v", bad)
	}

	// Alertmanager: resolved, no longer active, and its receiver told so.
	waitFor(t, 60*time.Second, "CheckoutSlow no longer active in Alertmanager", func() (bool, string) {
		all := am.alerts(t)
		a := findAMAlert(all, "CheckoutSlow")
		return a == nil || (a.Status.State != "active" || !a.EndsAt.After(time.Now())), fmt.Sprintf("%+v", all)
	})
	waitFor(t, 60*time.Second, "Alertmanager notifies its receiver of CheckoutSlow resolved", func() (bool, string) {
		return len(amHook.find("CheckoutSlow", "resolved")) > 0, amHook.summary()
	})
	t.Logf("Alertmanager notified its receiver of the resolution %.1fs after the traffic recovered", time.Since(fastAt).Seconds())
	if a := findAMAlert(am.alertsQuery(t, "active=true"), "CheckoutSlow"); a != nil {
		t.Errorf("Alertmanager still lists CheckoutSlow with active=true: %+v", *a)
	}

	// The history: the transitions with exemplars that are slow traces in
	// the store, and the deliveries.
	var events []apiEvent
	waitFor(t, 30*time.Second, "the history records both transitions and the deliveries", func() (bool, string) {
		events = getHistory(t, p.httpAddr, "rule=CheckoutSlow")
		fired := eventsWhere(events, isTransition("CheckoutSlow", "inactive", "firing"))
		resolved := eventsWhere(events, isTransition("CheckoutSlow", "firing", "inactive"))
		sent := eventsWhere(events, func(e apiEvent) bool { return e.Kind == "delivery" && e.Outcome == "sent" })
		var kinds []string
		for _, e := range sent {
			kinds = append(kinds, strings.Fields(e.Receiver)[0]+":"+e.Status)
		}
		return len(fired) == 1 && len(resolved) == 1 &&
			slices.Contains(kinds, "webhook:firing") && slices.Contains(kinds, "webhook:resolved") &&
			slices.Contains(kinds, "alertmanager:firing") && slices.Contains(kinds, "alertmanager:resolved"), eventsSummary(events)
	})
	fired := eventsWhere(events, isTransition("CheckoutSlow", "inactive", "firing"))[0]
	checkLabels(t, "history transition", fired.Labels, wantLabels)
	if fired.Value == nil || fired.Threshold == nil || *fired.Value <= 200e6 || *fired.Threshold != 200e6 {
		t.Errorf("firing transition value/threshold: %v", fired)
	}
	checkSlowExemplars(t, p.httpAddr, traffic, "the firing transition's exemplars", fired.Exemplars)
	for _, e := range eventsWhere(events, func(e apiEvent) bool { return e.Kind == "delivery" }) {
		if e.Outcome != "sent" {
			t.Errorf("a delivery that was not sent at once: %s", e)
		}
		if e.Receiver != "webhook "+hook.url() && e.Receiver != "alertmanager "+am.url {
			t.Errorf("delivery receiver %q, want \"webhook %s\" or \"alertmanager %s\"", e.Receiver, hook.url(), am.url)
		}
	}
	if errs := p.errorLogs(); len(errs) > 0 {
		t.Errorf("the collector logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// checkLabels checks that got holds every label of want, and no other.
func checkLabels(t testing.TB, what string, got, want map[string]string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s labels %v, want %v", what, got, want)
	}
}

// checkSlowExemplars checks that ids are trace IDs the traffic sent with a
// latency above the 200ms threshold, the first being the slowest kind, and
// that the store serves them.
func checkSlowExemplars(t testing.TB, httpAddr string, tr *edgeTraffic, what string, ids []string) {
	t.Helper()
	if len(ids) == 0 || len(ids) > 5 {
		t.Errorf("%s: %d exemplars, want 1 to 5", what, len(ids))
		return
	}
	d, ok := tr.latencyOf(ids[0])
	if !ok {
		t.Errorf("%s: the first exemplar %s is not a trace the test sent", what, ids[0])
	} else if d < 200*time.Millisecond {
		t.Errorf("%s: the first exemplar %s lasted %s: not one of the slowest (slow traces of ~400ms were sent)", what, ids[0], d)
	}
	for _, id := range ids {
		if _, ok := tr.latencyOf(id); !ok {
			t.Errorf("%s: exemplar %s is not a trace the test sent", what, id)
		}
	}
	checkExemplarsStored(t, httpAddr, what, ids)
}

// checkExemplarAnnotation checks the "exemplar" annotation: a link under
// the external URL ending in one of the exemplar trace IDs.
func checkExemplarAnnotation(t testing.TB, what string, ann map[string]string, externalURL string, exemplars []string) {
	t.Helper()
	link := ann["exemplar"]
	if !strings.HasPrefix(link, externalURL+"/") || len(exemplars) == 0 || !strings.HasSuffix(link, exemplars[0]) {
		t.Errorf("%s: exemplar annotation %q, want a link under %s ending in the exemplar trace %v", what, link, externalURL, exemplars)
	}
}

// ---- Alertmanager -----------------------------------------------------------

// lookAlertmanager returns the path of Debian's prometheus-alertmanager;
// without it the test is skipped, except with CI=true where it fails.
func lookAlertmanager(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"prometheus-alertmanager", "/usr/bin/prometheus-alertmanager", "alertmanager"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	skipUnlessCI(t, "Alertmanager is not installed: apt-get install prometheus-alertmanager")
	return ""
}

// alertmanager is an Alertmanager process of the test.
type alertmanager struct {
	url string // http://127.0.0.1:PORT
	cmd *exec.Cmd

	mu  sync.Mutex
	log bytes.Buffer
}

func (a *alertmanager) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.Write(p)
}

func (a *alertmanager) logText() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// startAlertmanager runs Alertmanager on a free 127.0.0.1 port (never the
// default 9093/9094, which Debian's package may use for a system
// Alertmanager) with clustering disabled, its own storage and a config
// routing every alert, grouped by all labels, to receiverURL with 1s
// group_wait and group_interval. It is stopped at the end of the test.
func startAlertmanager(t *testing.T, bin, receiverURL string) *alertmanager {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  resolve_timeout: 1m
route:
  receiver: e2e
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: e2e
    webhook_configs:
      - url: %q
        send_resolved: true
`, receiverURL)
	cfgPath := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var lastErr string
	for try := 0; try < 3; try++ { // the reserved port may be taken meanwhile
		addr := reserveAddr(t)
		a := &alertmanager{url: "http://" + addr}
		a.cmd = exec.Command(bin,
			"--config.file="+cfgPath,
			"--storage.path="+filepath.Join(dir, fmt.Sprintf("data%d", try)),
			"--web.listen-address="+addr,
			"--cluster.listen-address=", // no clustering (it would bind :9094)
			"--log.level=info")
		a.cmd.Stdout, a.cmd.Stderr = a, a
		if err := a.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { a.cmd.Wait(); close(exited) }()
		stop := func() {
			select {
			case <-exited:
				return
			default:
			}
			a.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				a.cmd.Process.Kill()
				<-exited
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			resp, err := http.Get(a.url + "/-/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Cleanup(func() {
						stop()
						if t.Failed() {
							t.Logf("Alertmanager log:\n%s", a.logText())
						}
					})
					return a
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		stop()
		lastErr = a.logText()
	}
	t.Fatalf("Alertmanager did not become ready:\n%s", lastErr)
	return nil
}

// amGettable is an alert of Alertmanager's GET /api/v2/alerts.
type amGettable struct {
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     time.Time
	EndsAt       time.Time
	UpdatedAt    time.Time
	GeneratorURL string
	Fingerprint  string
	Status       struct {
		State       string
		SilencedBy  []string
		InhibitedBy []string
	}
}

// alerts lists Alertmanager's alerts (its default filters).
func (a *alertmanager) alerts(t testing.TB) []amGettable {
	return a.alertsQuery(t, "")
}

func (a *alertmanager) alertsQuery(t testing.TB, query string) []amGettable {
	t.Helper()
	resp, err := apiClient.Get(a.url + "/api/v2/alerts?" + query)
	if err != nil {
		t.Fatalf("Alertmanager GET /api/v2/alerts: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Alertmanager GET /api/v2/alerts: %d %s", resp.StatusCode, body)
	}
	var list []amGettable
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("Alertmanager GET /api/v2/alerts: %v\n%s", err, body)
	}
	return list
}

func findAMAlert(list []amGettable, alertname string) *amGettable {
	for i := range list {
		if list[i].Labels["alertname"] == alertname {
			return &list[i]
		}
	}
	return nil
}
