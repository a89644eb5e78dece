package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// receiversDown is how long the refused webhook and the Alertmanager stay
// down. A longer outage (2 minutes, say) takes the same code path: the
// notifier retries with backoff capped at 30s, an Alertmanager alert for as
// long as it stays queued and a webhook message for up to 5 minutes, so it
// only adds waiting to the test.
const receiversDown = 20 * time.Second

// TestAlertReceiversMisbehave runs the collector binary with three webhooks
// that misbehave at once — one that never answers (its handler blocks until
// the test ends), one that answers 500 to its first 3 requests, one whose
// port refuses connections for the first 20s, after which a receiver starts
// there — and an Alertmanager that is down (connection refused) for 20s,
// then up (a fake recording POST /api/v2/alerts, on the same reserved port;
// the real one is covered by TestAlertmanagerEndToEnd).
//
// While CheckoutSlow fires, evaluation keeps its 1s cadence (the rule's
// lastEvaluation, sampled every 250ms, is never more than 3s old), the
// process's memory stays bounded, the failed attempts are in the history as
// "retrying" deliveries with their error, and once the receivers are back
// the 500 one and the refused one receive the firing message and the
// Alertmanager receives the alert. A SIGTERM then exits within the shutdown
// timeout although a delivery is still hanging.
func TestAlertReceiversMisbehave(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the collector binary for about a minute; skipped under -short")
	}
	bin := sharedCollectorBin(t)
	dir := t.TempDir()

	// The hanging webhook. Its handler returns when the test ends (this
	// cleanup runs before the server's Close, which waits for handlers).
	release := make(chan struct{})
	hang := startHookServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		<-release
		http.Error(w, "test over", http.StatusServiceUnavailable)
		return true
	})
	t.Cleanup(func() { close(release) })
	// The webhook answering 500 three times.
	const failures = 3
	flaky := startHookServer(t, func(n int, w http.ResponseWriter, r *http.Request) bool {
		if n <= failures {
			http.Error(w, "temporarily broken", http.StatusInternalServerError)
			return true
		}
		return false
	})
	// The webhook and the Alertmanager that are down first.
	lateAddr := reserveAddr(t)
	late := newHookServer(t, nil)
	amAddr := reserveAddr(t)
	fakeAM := newFakeAlertmanager(t)

	rulesPath := writeRules(t, dir, "rules.yml", checkoutSlowRule)
	data := filepath.Join(dir, "data")
	lateURL := "http://" + lateAddr + "/hook"
	amURL := "http://" + amAddr
	p := procStartCollector(t, bin, data,
		"--rules", rulesPath, "--alerting-interval", "1s", "--shutdown-timeout", "5s",
		"--webhook-url", strings.Join([]string{hang.url(), flaky.url(), lateURL}, ","),
		"--alertmanager-url", amURL)
	started := time.Now()
	p.waitReady(t, 30*time.Second)
	traffic := startEdgeTraffic(t, p.grpcAddr, slowLatency, 20)

	// Sample the evaluation and the memory for the whole test.
	cadence := startCadenceSampler(p.httpAddr, 250*time.Millisecond)
	rss := startRSSSampler(p.cmd.Process.Pid, 500*time.Millisecond)
	defer rss.stop()
	defer cadence.stop()

	waitFor(t, 60*time.Second, "CheckoutSlow firing", func() (bool, string) {
		alerts := getAlerts(t, p.httpAddr)
		a := alertOf(alerts, "CheckoutSlow")
		return a != nil && a.State == "firing", alertsSummary(alerts)
	})
	// The 500 webhook gets it after its failures, while the others are
	// still down or hanging.
	waitFor(t, 60*time.Second, "the 500 webhook receives the firing message after its failures", func() (bool, string) {
		return len(flaky.find("CheckoutSlow", "firing")) == 1, flaky.summary()
	})

	// The refused webhook and the Alertmanager come up.
	if d := receiversDown - time.Since(started); d > 0 {
		time.Sleep(d)
	}
	late.startOn(t, lateAddr)
	fakeAM.startOn(t, amAddr)
	upAt := time.Now()
	t.Logf("the refused webhook and the Alertmanager are up after %.1fs", upAt.Sub(started).Seconds())
	// Backoff is capped at 30s: they are retried within ~30s of coming up.
	waitFor(t, 90*time.Second, "the formerly refused webhook receives the firing message", func() (bool, string) {
		return len(late.find("CheckoutSlow", "firing")) == 1, late.summary()
	})
	waitFor(t, 90*time.Second, "the Alertmanager receives CheckoutSlow", func() (bool, string) {
		return fakeAM.find("CheckoutSlow") != nil, fakeAM.summary()
	})
	t.Logf("both delivered within %.1fs of coming up", time.Since(upAt).Seconds())
	if a := fakeAM.find("CheckoutSlow"); a.Labels["source"] != "frontend" || a.Labels["target"] != "checkout" || a.Labels["severity"] != "page" ||
		a.EndsAt == "" || a.StartsAt == "" || a.GeneratorURL == "" {
		t.Errorf("the alert the Alertmanager received: %+v", *a)
	}
	if bad := fakeAM.badRequests(); len(bad) > 0 {
		t.Errorf("the Alertmanager received malformed requests: %v", bad)
	}
	if bad := append(flaky.badRequests(), late.badRequests()...); len(bad) > 0 {
		t.Errorf("the webhooks received malformed requests: %v", bad)
	}

	// The history records the failed attempts with their errors, and the
	// deliveries (recorded by the evaluation cycle after the attempt).
	var events []apiEvent
	waitFor(t, 30*time.Second, "the history records the deliveries to the receivers that came back", func() (bool, string) {
		events = getHistory(t, p.httpAddr, "rule=CheckoutSlow")
		n := 0
		for _, recv := range []string{"webhook " + flaky.url(), "webhook " + lateURL, "alertmanager " + amURL} {
			if len(eventsWhere(events, func(e apiEvent) bool {
				return e.Kind == "delivery" && e.Receiver == recv && e.Outcome == "sent"
			})) > 0 {
				n++
			}
		}
		return n == 3, eventsSummary(events)
	})
	retrying := func(receiver string) []apiEvent {
		return eventsWhere(events, func(e apiEvent) bool {
			return e.Kind == "delivery" && e.Receiver == receiver && e.Outcome == "retrying"
		})
	}
	sent := func(receiver string) []apiEvent {
		return eventsWhere(events, func(e apiEvent) bool {
			return e.Kind == "delivery" && e.Receiver == receiver && e.Outcome == "sent"
		})
	}
	if r := retrying("webhook " + flaky.url()); len(r) != failures {
		t.Errorf("500 webhook: %d retrying deliveries, want %d:%s", len(r), failures, eventsSummary(events))
	} else {
		for _, e := range r {
			if e.HTTPStatus != 500 || !strings.Contains(e.Error, "500") || e.Status != "firing" {
				t.Errorf("500 webhook: retrying delivery %s: want HTTP 500 and its error", e)
			}
		}
	}
	if s := sent("webhook " + flaky.url()); len(s) != 1 || s[0].Attempt != failures+1 {
		t.Errorf("500 webhook: sent deliveries %v, want one at attempt %d", s, failures+1)
	}
	for _, recv := range []string{"webhook " + lateURL, "alertmanager " + amURL} {
		r := retrying(recv)
		if len(r) == 0 {
			t.Errorf("%s: no retrying delivery while it was down:%s", recv, eventsSummary(events))
		}
		for _, e := range r {
			if e.Error == "" || e.HTTPStatus != 0 {
				t.Errorf("%s: retrying delivery %s: want a connection error and no HTTP status", recv, e)
			}
		}
		if len(r) > 0 && !strings.Contains(r[len(r)-1].Error, "refused") {
			t.Errorf("%s: first failure %q does not say the connection was refused", recv, r[len(r)-1].Error)
		}
		if len(sent(recv)) == 0 {
			t.Errorf("%s: no sent delivery in the history:%s", recv, eventsSummary(events))
		}
	}
	if r := retrying("webhook " + hang.url()); len(r) == 0 || !strings.Contains(r[len(r)-1].Error, "timed out") {
		t.Errorf("hanging webhook: want retrying deliveries with a timeout error:%s", eventsSummary(r))
	}
	if n := len(hang.messages()); n != 0 || hang.requestCount() == 0 {
		t.Errorf("hanging webhook: %d requests, %d accepted", hang.requestCount(), n)
	}

	// Evaluation kept its cadence throughout, memory stayed bounded.
	cadence.stop()
	rss.stop()
	samples, sampleErrs := cadence.result()
	for _, e := range sampleErrs {
		t.Errorf("sampling /api/v1/rules: %s", e)
	}
	if len(samples) < 40 {
		t.Errorf("only %d samples of /api/v1/rules", len(samples))
	}
	var maxLag time.Duration
	distinct := map[time.Time]bool{}
	for i, s := range samples {
		lag := s.at.Sub(s.lastEval)
		maxLag = max(maxLag, lag)
		if lag > 3*time.Second {
			t.Errorf("at %s lastEvaluation was %s old (%s)", s.at.Format(time.RFC3339Nano), lag, s.lastEval.Format(time.RFC3339Nano))
		}
		if i > 0 && s.lastEval.Before(samples[i-1].lastEval) {
			t.Errorf("lastEvaluation went back from %s to %s", samples[i-1].lastEval, s.lastEval)
		}
		distinct[s.lastEval] = true
	}
	if len(samples) > 1 {
		span := samples[len(samples)-1].at.Sub(samples[0].at)
		if want := int(span.Seconds() / 2); len(distinct) < want {
			t.Errorf("%d distinct lastEvaluation times in %s of samples, want at least %d (1s interval)", len(distinct), span, want)
		}
		t.Logf("%d samples over %s: %d evaluations seen, lastEvaluation at most %s old", len(samples), span.Round(time.Millisecond), len(distinct), maxLag.Round(time.Millisecond))
	}
	const rssBound = 512 << 20
	peak := rss.peak()
	if rss.count() == 0 {
		t.Errorf("RSS never sampled")
	} else if peak.rss > rssBound {
		t.Errorf("peak RSS %s, want under %s", mib(peak.rss), mib(rssBound))
	}
	code, body := apiGet(t, p.httpAddr, "/metrics")
	heap, ok := metricValue(string(body), "go_memstats_heap_inuse_bytes")
	if code != http.StatusOK || !ok {
		t.Errorf("/metrics: %d, go_memstats_heap_inuse_bytes present: %v", code, ok)
	} else if heap > 256<<20 {
		t.Errorf("go_memstats_heap_inuse_bytes %s, want under 256 MiB", mib(int64(heap)))
	}
	t.Logf("peak RSS %s, heap in use %s at the end", mib(peak.rss), mib(int64(heap)))

	// A SIGTERM ends the process within its 5s shutdown timeout although a
	// delivery still hangs.
	traffic.stop()
	stopAt := time.Now()
	if code := p.terminate(t, 30*time.Second); code != 0 {
		t.Errorf("SIGTERM: exit status %d:\n%s", code, p.logText())
	}
	shutdownLog := p.logText()
	t.Logf("exited %.1fs after SIGTERM", time.Since(stopAt).Seconds())
	for _, e := range p.errorLogs() {
		t.Errorf("the collector logged an error: %s", e)
	}

	// Every delivery and its outcome is recorded in the history: the
	// hanging one, given up at shutdown, too ("dropped").
	p = procStartCollector(t, bin, data, "--rules", rulesPath)
	p.waitReady(t, 30*time.Second)
	events = getHistory(t, p.httpAddr, "rule=CheckoutSlow")
	hung := eventsWhere(events, func(e apiEvent) bool { return e.Kind == "delivery" && e.Receiver == "webhook "+hang.url() })
	if len(hung) == 0 || hung[0].Outcome != "dropped" {
		t.Errorf("hanging webhook: the last recorded delivery is not the drop at shutdown (the log says it was dropped: %v):%s",
			strings.Contains(shutdownLog, "not all delivered"), eventsSummary(hung))
	}
}

// evalSample is one sample of a rule's lastEvaluation.
type evalSample struct {
	at, lastEval time.Time
}

// cadenceSampler polls /api/v1/rules and records the first rule's
// lastEvaluation.
type cadenceSampler struct {
	quit, done chan struct{}
	once       sync.Once

	mu      sync.Mutex
	samples []evalSample
	errs    []string
}

func startCadenceSampler(httpAddr string, every time.Duration) *cadenceSampler {
	s := &cadenceSampler{quit: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	go func() {
		defer close(s.done)
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			at := time.Now()
			sample, err := func() (evalSample, error) {
				resp, err := client.Get("http://" + httpAddr + "/api/v1/rules")
				if err != nil {
					return evalSample{}, err
				}
				defer resp.Body.Close()
				var r apiRules
				if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || resp.StatusCode != http.StatusOK || len(r.Rules) == 0 {
					return evalSample{}, fmt.Errorf("status %d, %d rules, %v", resp.StatusCode, len(r.Rules), err)
				}
				if r.Rules[0].LastEvaluation == "" {
					return evalSample{}, nil // not evaluated yet
				}
				ev, err := time.Parse(time.RFC3339Nano, r.Rules[0].LastEvaluation)
				return evalSample{at: at, lastEval: ev}, err
			}()
			s.mu.Lock()
			if err != nil {
				s.errs = append(s.errs, err.Error())
			} else if !sample.at.IsZero() {
				s.samples = append(s.samples, sample)
			}
			s.mu.Unlock()
			select {
			case <-s.quit:
				return
			case <-tk.C:
			}
		}
	}()
	return s
}

func (s *cadenceSampler) stop() {
	s.once.Do(func() { close(s.quit) })
	<-s.done
}

func (s *cadenceSampler) result() ([]evalSample, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]evalSample(nil), s.samples...), append([]string(nil), s.errs...)
}

// fakeAlertmanager records the alerts posted to /api/v2/alerts.
type fakeAlertmanager struct {
	srv *httptest.Server

	mu     sync.Mutex
	posts  int
	alerts []amPostable
	bad    []string
}

// amPostable is an alert of Alertmanager's POST /api/v2/alerts.
type amPostable struct {
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     string
	EndsAt       string
	GeneratorURL string
}

func newFakeAlertmanager(t testing.TB) *fakeAlertmanager {
	f := &fakeAlertmanager{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var list []amPostable
		err := json.Unmarshal(body, &list)
		f.mu.Lock()
		defer f.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/api/v2/alerts" || err != nil {
			f.bad = append(f.bad, fmt.Sprintf("%s %s: %v %.200s", r.Method, r.URL, err, body))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		f.posts++
		f.alerts = append(f.alerts, list...)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// startOn starts the fake on addr (a reserved port).
func (f *fakeAlertmanager) startOn(t testing.TB, addr string) {
	t.Helper()
	h := &hookServer{srv: f.srv}
	h.startOn(t, addr)
}

// find returns the last alert posted with alertname, or nil.
func (f *fakeAlertmanager) find(alertname string) *amPostable {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.alerts) - 1; i >= 0; i-- {
		if f.alerts[i].Labels["alertname"] == alertname {
			a := f.alerts[i]
			return &a
		}
	}
	return nil
}

func (f *fakeAlertmanager) badRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bad...)
}

func (f *fakeAlertmanager) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("%d posts, %d alerts, bad requests %v", f.posts, len(f.alerts), f.bad)
}
