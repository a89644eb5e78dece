package notify

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	t0 = time.Date(2024, 5, 1, 12, 0, 0, 500_000_000, time.FixedZone("CEST", 2*3600)) // 10:00:00.5Z
	t1 = time.Date(2024, 5, 1, 10, 10, 0, 0, time.UTC)
)

func slowAlert(status string) Alert {
	a := Alert{
		Labels:       map[string]string{"alertname": "CheckoutSlow", "service": "checkout", "severity": "page"},
		Annotations:  map[string]string{"summary": "p99 of checkout is 300ms"},
		StartsAt:     t0,
		EndsAt:       t0.Add(4 * time.Minute),
		GeneratorURL: "http://flowscope.test:8686/#/alerts?rule=CheckoutSlow",
		Status:       status,
		Rule:         "CheckoutSlow",
		Key:          "service=checkout",
	}
	if status == StatusResolved {
		a.EndsAt = t1
	}
	return a
}

func simpleAlert(rule, key, version string) Alert {
	return Alert{
		Labels:      map[string]string{"alertname": rule, "key": key},
		Annotations: map[string]string{"v": version},
		StartsAt:    t0, Status: StatusFiring, Rule: rule, Key: key,
	}
}

func TestAlertmanagerPayload(t *testing.T) {
	for _, tc := range []struct{ base, wantPath string }{
		{"", "/api/v2/alerts"},
		{"/", "/api/v2/alerts"},
		{"/am", "/am/api/v2/alerts"},
		{"/am/api/v2/alerts", "/am/api/v2/alerts"},
	} {
		t.Run("base="+tc.base, func(t *testing.T) {
			got := make(chan request, 1)
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- readRequest(t, r)
			}))
			rec := &recorder{}
			opts := fastOptions(rec)
			opts.Alertmanagers = []string{srv.URL + tc.base}
			n := newNotifier(t, opts)
			resolved := Alert{
				Labels:   map[string]string{"alertname": "ErrorsHigh", "source": "a", "target": "b"},
				StartsAt: t0, EndsAt: t1, Status: StatusResolved, Rule: "ErrorsHigh", Key: "a>b",
			}
			bare := Alert{Labels: map[string]string{"alertname": "Bare"}, Rule: "Bare"}
			n.Alertmanager([]Alert{slowAlert(StatusFiring), resolved, bare})

			req := <-got
			if req.Method != http.MethodPost || req.Path != tc.wantPath {
				t.Errorf("request %s %s, want POST %s", req.Method, req.Path, tc.wantPath)
			}
			if ct := req.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			jsonEqual(t, req.Decoded, `[
			  {"labels": {"alertname": "CheckoutSlow", "service": "checkout", "severity": "page"},
			   "annotations": {"summary": "p99 of checkout is 300ms"},
			   "startsAt": "2024-05-01T10:00:00.5Z", "endsAt": "2024-05-01T10:04:00.5Z",
			   "generatorURL": "http://flowscope.test:8686/#/alerts?rule=CheckoutSlow"},
			  {"labels": {"alertname": "ErrorsHigh", "source": "a", "target": "b"},
			   "startsAt": "2024-05-01T10:00:00.5Z", "endsAt": "2024-05-01T10:10:00Z"},
			  {"labels": {"alertname": "Bare"}}
			]`)
			ds := rec.wait(t, "3 sent", func(ds []Delivery) bool { return count(ds, OutcomeSent) == 3 })
			for _, d := range ds {
				if d.Receiver != "alertmanager "+srv.URL+tc.base || d.Attempt != 1 || d.Error != "" || d.HTTPStatus != 0 {
					t.Errorf("delivery %+v", d)
				}
			}
		})
	}
}

func TestWebhookPayload(t *testing.T) {
	labels := `{"alertname": "CheckoutSlow", "service": "checkout", "severity": "page"}`
	groupKey := `{}:{alertname=\"CheckoutSlow\", service=\"checkout\", severity=\"page\"}`
	noAnnotations := slowAlert(StatusResolved)
	noAnnotations.Annotations = nil
	for _, tc := range []struct {
		name  string
		alert Alert
		want  string
	}{
		{"firing", slowAlert(StatusFiring), `{
			"receiver": "flowscope", "status": "firing",
			"alerts": [{"status": "firing", "labels": ` + labels + `,
				"annotations": {"summary": "p99 of checkout is 300ms"},
				"startsAt": "2024-05-01T10:00:00.5Z", "endsAt": "0001-01-01T00:00:00Z",
				"generatorURL": "http://flowscope.test:8686/#/alerts?rule=CheckoutSlow",
				"fingerprint": "81fa4236baa3c530"}],
			"groupLabels": ` + labels + `, "commonLabels": ` + labels + `,
			"commonAnnotations": {"summary": "p99 of checkout is 300ms"},
			"externalURL": "http://flowscope.test:8686", "version": "4",
			"groupKey": "` + groupKey + `", "truncatedAlerts": 0}`},
		{"resolved", slowAlert(StatusResolved), `{
			"receiver": "flowscope", "status": "resolved",
			"alerts": [{"status": "resolved", "labels": ` + labels + `,
				"annotations": {"summary": "p99 of checkout is 300ms"},
				"startsAt": "2024-05-01T10:00:00.5Z", "endsAt": "2024-05-01T10:10:00Z",
				"generatorURL": "http://flowscope.test:8686/#/alerts?rule=CheckoutSlow",
				"fingerprint": "81fa4236baa3c530"}],
			"groupLabels": ` + labels + `, "commonLabels": ` + labels + `,
			"commonAnnotations": {"summary": "p99 of checkout is 300ms"},
			"externalURL": "http://flowscope.test:8686", "version": "4",
			"groupKey": "` + groupKey + `", "truncatedAlerts": 0}`},
		{"no annotations", noAnnotations, `{
			"receiver": "flowscope", "status": "resolved",
			"alerts": [{"status": "resolved", "labels": ` + labels + `, "annotations": {},
				"startsAt": "2024-05-01T10:00:00.5Z", "endsAt": "2024-05-01T10:10:00Z",
				"generatorURL": "http://flowscope.test:8686/#/alerts?rule=CheckoutSlow",
				"fingerprint": "81fa4236baa3c530"}],
			"groupLabels": ` + labels + `, "commonLabels": ` + labels + `, "commonAnnotations": {},
			"externalURL": "http://flowscope.test:8686", "version": "4",
			"groupKey": "` + groupKey + `", "truncatedAlerts": 0}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan request, 1)
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got <- readRequest(t, r)
			}))
			rec := &recorder{}
			opts := fastOptions(rec)
			opts.Webhooks = []Webhook{{URL: srv.URL + "/hook?x=1", Headers: map[string]string{"X-Token": "secret"}}}
			n := newNotifier(t, opts)
			n.Webhook(tc.alert)
			req := <-got
			if req.Method != http.MethodPost || req.Path != "/hook" || req.Query != "x=1" {
				t.Errorf("request %s %s?%s", req.Method, req.Path, req.Query)
			}
			if ct := req.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tok := req.Header.Get("X-Token"); tok != "secret" {
				t.Errorf("X-Token %q", tok)
			}
			jsonEqual(t, req.Decoded, tc.want)
			// Alertmanager's field order.
			if !strings.HasPrefix(string(req.Body), `{"receiver":"flowscope","status":"`) {
				t.Errorf("field order: %s", req.Body)
			}
			ds := rec.wait(t, "sent", has(OutcomeSent))
			want := Delivery{Time: ds[0].Time, Receiver: "webhook " + srv.URL + "/hook?xxxxx", Rule: "CheckoutSlow",
				Key: "service=checkout", Status: tc.alert.Status, Attempt: 1, Outcome: OutcomeSent}
			if ds[0] != want {
				t.Errorf("delivery %+v, want %+v", ds[0], want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	// Expected values computed with github.com/prometheus/common/model
	// (LabelSet.Fingerprint().String() and LabelSet.String()).
	for _, tc := range []struct {
		labels           map[string]string
		fp, labelsString string
	}{
		{map[string]string{"alertname": "CheckoutSlow", "service": "checkout", "severity": "page"},
			"81fa4236baa3c530", `{alertname="CheckoutSlow", service="checkout", severity="page"}`},
		{map[string]string{"target": "x→y", "alertname": `A b"c`},
			"d9f0aafd9261c94c", `{alertname="A b\"c", target="x→y"}`},
		{map[string]string{}, "cbf29ce484222325", `{}`},
	} {
		for range 5 { // map order must not matter
			if got := fingerprint(tc.labels); got != tc.fp {
				t.Errorf("fingerprint(%v) = %s, want %s", tc.labels, got, tc.fp)
			}
		}
		if got := labelSetString(tc.labels); got != tc.labelsString {
			t.Errorf("labelSetString(%v) = %s, want %s", tc.labels, got, tc.labelsString)
		}
	}
}

// TestStatusHandling: which responses are retried, and every attempt is
// reported.
func TestStatusHandling(t *testing.T) {
	for _, tc := range []struct {
		receiver string
		statuses []int // responses in order; 200 afterwards
		want     []string
	}{
		{ReceiverAlertmanager, []int{500, 200}, []string{OutcomeRetrying, OutcomeSent}},
		{ReceiverAlertmanager, []int{503, 502, 200}, []string{OutcomeRetrying, OutcomeRetrying, OutcomeSent}},
		{ReceiverAlertmanager, []int{429, 200}, []string{OutcomeRetrying, OutcomeSent}},
		{ReceiverAlertmanager, []int{400}, []string{OutcomeFailed}},
		{ReceiverAlertmanager, []int{404}, []string{OutcomeFailed}},
		{ReceiverWebhook, []int{500, 200}, []string{OutcomeRetrying, OutcomeSent}},
		{ReceiverWebhook, []int{429, 408, 200}, []string{OutcomeRetrying, OutcomeRetrying, OutcomeSent}},
		{ReceiverWebhook, []int{400}, []string{OutcomeFailed}},
		{ReceiverWebhook, []int{403}, []string{OutcomeFailed}},
		{ReceiverWebhook, []int{500, 401}, []string{OutcomeRetrying, OutcomeFailed}},
	} {
		t.Run(fmt.Sprint(tc.receiver, tc.statuses), func(t *testing.T) {
			var requests atomic.Int32
			srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := int(requests.Add(1)) - 1
				if i < len(tc.statuses) && tc.statuses[i] != 200 {
					http.Error(w, "boom "+strconv.Itoa(i), tc.statuses[i])
				}
			}))
			rec := &recorder{}
			opts := fastOptions(rec)
			if tc.receiver == ReceiverAlertmanager {
				opts.Alertmanagers = []string{srv.URL}
			} else {
				opts.Webhooks = []Webhook{{URL: srv.URL}}
			}
			n := newNotifier(t, opts)
			if tc.receiver == ReceiverAlertmanager {
				n.Alertmanager([]Alert{slowAlert(StatusFiring)})
			} else {
				n.Webhook(slowAlert(StatusFiring))
			}
			final := tc.want[len(tc.want)-1]
			rec.wait(t, final, has(final))
			closeNow(t, n) // would send a pending retry
			ds := rec.all()
			if len(ds) != len(tc.want) {
				t.Fatalf("reports %+v, want outcomes %v", ds, tc.want)
			}
			for i, d := range ds {
				if d.Outcome != tc.want[i] || d.Attempt != i+1 || d.Rule != "CheckoutSlow" || d.Status != StatusFiring ||
					!strings.HasPrefix(d.Receiver, tc.receiver+" http://127.0.0.1:") {
					t.Errorf("report %d: %+v, want outcome %s attempt %d", i, d, tc.want[i], i+1)
				}
				if st := tc.statuses[i]; st != 200 {
					if d.HTTPStatus != st || !strings.Contains(d.Error, strconv.Itoa(st)) ||
						!strings.Contains(d.Error, "boom "+strconv.Itoa(i)) {
						t.Errorf("report %d: HTTP status %d error %q, want %d with the body", i, d.HTTPStatus, d.Error, st)
					}
				} else if d.Error != "" || d.HTTPStatus != 0 {
					t.Errorf("report %d: sent with error %q status %d", i, d.Error, d.HTTPStatus)
				}
			}
			if got := int(requests.Load()); got != len(tc.want) {
				t.Errorf("%d requests, want %d", got, len(tc.want))
			}
		})
	}
}

// TestAlertmanagerRejectedBatchSplit: a batch rejected with a 400 is resent
// alert by alert, so only the bad alert fails.
func TestAlertmanagerRejectedBatchSplit(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := readRequest(t, r)
		alerts, _ := req.Decoded.([]any)
		mu.Lock()
		sizes = append(sizes, len(alerts))
		mu.Unlock()
		if strings.Contains(string(req.Body), `"bad"`) {
			http.Error(w, "invalid label", http.StatusBadRequest)
		}
	}))
	rec := &recorder{}
	opts := fastOptions(rec)
	opts.Alertmanagers = []string{srv.URL}
	n := newNotifier(t, opts)
	bad := simpleAlert("R", "bad", "1")
	n.Alertmanager([]Alert{simpleAlert("R", "a", "1"), bad, simpleAlert("R", "b", "1")})
	rec.wait(t, "2 sent, 1 failed", func(ds []Delivery) bool {
		return count(ds, OutcomeSent) == 2 && count(ds, OutcomeFailed) == 1
	})
	closeNow(t, n)
	for _, d := range rec.all() {
		want := OutcomeSent
		if d.Key == "bad" {
			want = OutcomeFailed
		}
		if d.Attempt == 1 && (d.Outcome != OutcomeRetrying || d.HTTPStatus != 400) ||
			d.Attempt == 2 && (d.Outcome != want || (want == OutcomeFailed) != (d.HTTPStatus == 400)) || d.Attempt > 2 {
			t.Errorf("report %+v", d)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(sizes) != "[3 1 1 1]" {
		t.Errorf("batch sizes %v, want [3 1 1 1]", sizes)
	}
}

// TestAlertmanagerQueue: newer versions replace queued ones (without a
// report), the oldest is dropped beyond QueueSize, and a newer version
// supersedes a pending retry.
func TestAlertmanagerQueue(t *testing.T) {
	t.Run("supersede and drop", func(t *testing.T) {
		gate := make(chan struct{})
		var first atomic.Bool
		bodies := make(chan request, 10)
		srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bodies <- readRequest(t, r)
			if first.CompareAndSwap(false, true) {
				<-gate
			}
		}))
		rec := &recorder{}
		opts := fastOptions(rec)
		opts.Alertmanagers = []string{srv.URL}
		opts.QueueSize = 2
		n := newNotifier(t, opts)
		n.Alertmanager([]Alert{simpleAlert("X", "x", "1")})
		<-bodies // X1 in flight, the server holds it
		n.Alertmanager([]Alert{simpleAlert("X", "x", "2"), simpleAlert("Y", "y", "1")})
		n.Alertmanager([]Alert{simpleAlert("X", "x", "3")}) // queue: Y1, X3
		n.Alertmanager([]Alert{simpleAlert("Z", "z", "1")}) // Y1 dropped
		rec.wait(t, "Y dropped", has(OutcomeDropped))
		close(gate)
		second := <-bodies
		jsonEqual(t, second.Decoded, `[
			{"labels": {"alertname": "X", "key": "x"}, "annotations": {"v": "3"}, "startsAt": "2024-05-01T10:00:00.5Z"},
			{"labels": {"alertname": "Z", "key": "z"}, "annotations": {"v": "1"}, "startsAt": "2024-05-01T10:00:00.5Z"}]`)
		ds := rec.wait(t, "3 sent", func(ds []Delivery) bool { return count(ds, OutcomeSent) == 3 })
		closeNow(t, n)
		var got []string
		for _, d := range rec.all() {
			got = append(got, fmt.Sprintf("%s:%s:%d", d.Rule, d.Outcome, d.Attempt))
		}
		want := []string{"Y:dropped:0", "X:sent:1", "X:sent:1", "Z:sent:1"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("reports %v, want %v (%+v)", got, want, ds)
		}
		if ds[0].Error != "queue full" {
			t.Errorf("drop error %q", ds[0].Error)
		}
	})

	t.Run("supersede pending retry", func(t *testing.T) {
		var n atomic.Pointer[Notifier]
		var requests atomic.Int32
		bodies := make(chan request, 10)
		srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			bodies <- readRequest(t, r)
			if requests.Add(1) == 1 {
				// A newer version arrives while the first one fails.
				n.Load().Alertmanager([]Alert{simpleAlert("X", "x", "2")})
				http.Error(w, "down", http.StatusServiceUnavailable)
			}
		}))
		rec := &recorder{}
		opts := fastOptions(rec)
		opts.Alertmanagers = []string{srv.URL}
		n.Store(newNotifier(t, opts))
		n.Load().Alertmanager([]Alert{simpleAlert("X", "x", "1")})
		<-bodies
		second := <-bodies
		jsonEqual(t, second.Decoded, `[
			{"labels": {"alertname": "X", "key": "x"}, "annotations": {"v": "2"}, "startsAt": "2024-05-01T10:00:00.5Z"}]`)
		rec.wait(t, "sent", has(OutcomeSent))
		closeNow(t, n.Load())
		ds := rec.all()
		if len(ds) != 2 || ds[0].Outcome != OutcomeRetrying || ds[0].Attempt != 1 || ds[0].HTTPStatus != 503 ||
			ds[1].Outcome != OutcomeSent || ds[1].Attempt != 1 {
			t.Errorf("reports %+v", ds)
		}
		if got := requests.Load(); got != 2 {
			t.Errorf("%d requests, want 2", got)
		}
	})
}

// TestWebhookHang: a receiver that never answers is cut at Timeout, the
// message retried and given up; callers never block, the queue stays
// bounded and drops are reported (never from the caller's goroutine).
func TestWebhookHang(t *testing.T) {
	release := make(chan struct{})
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release) }) // before srv.Close (cleanups run last first)

	// OnDelivery takes a lock the caller holds while enqueueing, as the
	// alerting engine does: a report from the caller's goroutine would
	// deadlock.
	var callerMu sync.Mutex
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	opts := fastOptions(rec)
	opts.OnDelivery = func(d Delivery) { callerMu.Lock(); rec.on(d); callerMu.Unlock() }
	opts.Webhooks = []Webhook{{URL: srv.URL}}
	opts.Timeout = 50 * time.Millisecond
	opts.MaxRetryFor = 300 * time.Millisecond
	opts.QueueSize = 100
	opts.Registerer = reg
	n := newNotifier(t, opts)

	n.Webhook(simpleAlert("R", "first", "1"))
	ds := rec.wait(t, "a timed-out attempt", has(OutcomeRetrying))
	if !strings.Contains(ds[0].Error, "timed out") || ds[0].HTTPStatus != 0 {
		t.Errorf("attempt report %+v, want a timeout", ds[0])
	}

	const calls = 10000
	start := time.Now()
	callerMu.Lock()
	for i := range calls {
		n.Webhook(simpleAlert("R", strconv.Itoa(i), "1"))
		if i%1000 == 0 {
			if l := n.queueLength(ReceiverWebhook); l > opts.QueueSize {
				t.Errorf("queue length %d > %d", l, opts.QueueSize)
			}
		}
	}
	callerMu.Unlock()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d Webhook calls took %v", calls, d)
	}
	if l := metricValue(t, reg, "flowscope_alert_notification_queue_length", ReceiverWebhook); l > float64(opts.QueueSize) || l < 1 {
		t.Errorf("queue length gauge %v", l)
	}
	rec.wait(t, "the first message given up", func(ds []Delivery) bool {
		for _, d := range ds {
			if d.Key == "first" && d.Outcome == OutcomeFailed {
				return true
			}
		}
		return false
	})
	drops := rec.wait(t, "drops", func(ds []Delivery) bool { return count(ds, OutcomeDropped) >= calls-opts.QueueSize-1 })
	if got := metricValue(t, reg, "flowscope_alert_notifications_dropped_total", ReceiverWebhook); got != float64(count(drops, OutcomeDropped)) {
		t.Errorf("dropped_total %v, reports %d", got, count(drops, OutcomeDropped))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start = time.Now()
	err := n.Close(ctx)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "not delivered") {
		t.Errorf("Close: %v, want undelivered and deadline exceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	// Every message ends exactly once: given up or dropped.
	final := map[string]int{}
	for _, d := range rec.all() {
		if d.Outcome == OutcomeSent {
			t.Fatalf("sent to a hanging receiver: %+v", d)
		}
		if d.Outcome != OutcomeRetrying {
			final[d.Key]++
		}
	}
	if len(final) != calls+1 {
		t.Errorf("%d messages ended, want %d", len(final), calls+1)
	}
	for k, c := range final {
		if c != 1 {
			t.Errorf("message %s ended %d times", k, c)
		}
	}
}

// TestConnectionRefusedThenBack: a receiver that is down gets the
// notification once it listens again on the same port.
func TestConnectionRefusedThenBack(t *testing.T) {
	for _, receiver := range []string{ReceiverAlertmanager, ReceiverWebhook} {
		t.Run(receiver, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := l.Addr().String()
			l.Close()
			rec := &recorder{}
			opts := fastOptions(rec)
			if receiver == ReceiverAlertmanager {
				opts.Alertmanagers = []string{"http://" + addr}
			} else {
				opts.Webhooks = []Webhook{{URL: "http://" + addr + "/hook"}}
			}
			n := newNotifier(t, opts)
			if receiver == ReceiverAlertmanager {
				n.Alertmanager([]Alert{slowAlert(StatusFiring)})
			} else {
				n.Webhook(slowAlert(StatusFiring))
			}
			ds := rec.wait(t, "2 refused attempts", func(ds []Delivery) bool { return count(ds, OutcomeRetrying) >= 2 })
			if !strings.Contains(ds[0].Error, "refused") || ds[0].HTTPStatus != 0 {
				t.Errorf("attempt %+v, want connection refused", ds[0])
			}
			if strings.Contains(ds[0].Error, "http://") {
				t.Errorf("error repeats the URL: %q", ds[0].Error)
			}

			got := make(chan request, 1)
			var l2 net.Listener
			for deadline := time.Now().Add(waitLimit); ; {
				if l2, err = net.Listen("tcp", addr); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Skipf("port %s not available again: %v", addr, err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			serveOn(t, l2, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				select {
				case got <- readRequest(t, r):
				default:
				}
			}))
			ds = rec.wait(t, "sent", has(OutcomeSent))
			<-got
			last := ds[len(ds)-1]
			if last.Outcome != OutcomeSent || last.Attempt != len(ds) {
				t.Errorf("last report %+v after %d reports", last, len(ds))
			}
		})
	}
}

// TestWebhookGiveUp: a webhook failing for longer than MaxRetryFor is given
// up with "failed"; the self-metrics count it.
func TestWebhookGiveUp(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "maintenance", http.StatusServiceUnavailable)
	}))
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	opts := fastOptions(rec)
	opts.Webhooks = []Webhook{{URL: srv.URL}}
	opts.MaxRetryFor = 150 * time.Millisecond
	opts.Registerer = reg
	n := newNotifier(t, opts)
	start := time.Now()
	n.Webhook(slowAlert(StatusFiring))
	ds := rec.wait(t, "failed", has(OutcomeFailed))
	if time.Since(start) < opts.MaxRetryFor {
		t.Errorf("gave up before MaxRetryFor")
	}
	last := ds[len(ds)-1]
	if last.Outcome != OutcomeFailed || last.HTTPStatus != 503 || !strings.Contains(last.Error, "gave up") ||
		last.Attempt != len(ds) || len(ds) < 2 {
		t.Errorf("reports %+v", ds)
	}
	for i, d := range ds[:len(ds)-1] {
		if d.Outcome != OutcomeRetrying || d.Attempt != i+1 || d.HTTPStatus != 503 {
			t.Errorf("report %d: %+v", i, d)
		}
	}
	closeNow(t, n)
	for name, want := range map[string]float64{
		"flowscope_alert_notifications_failed_total":  1,
		"flowscope_alert_notifications_retried_total": float64(len(ds) - 1),
		"flowscope_alert_notifications_sent_total":    0,
	} {
		if got := metricValue(t, reg, name, ReceiverWebhook); got != want {
			t.Errorf("%s{webhook} = %v, want %v", name, got, want)
		}
	}
}

// TestWebhookOrdering: messages are delivered in order, each waiting for the
// one before it, even when every first attempt fails.
func TestWebhookOrdering(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]bool{}
	var sequence []string
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := readRequest(t, r)
		msg, _ := req.Decoded.(map[string]any)
		labels, _ := msg["commonLabels"].(map[string]any)
		key, _ := labels["key"].(string)
		mu.Lock()
		defer mu.Unlock()
		sequence = append(sequence, key)
		if !seen[key] {
			seen[key] = true
			http.Error(w, "try again", http.StatusInternalServerError)
		}
	}))
	rec := &recorder{}
	opts := fastOptions(rec)
	opts.Webhooks = []Webhook{{URL: srv.URL}}
	n := newNotifier(t, opts)
	const msgs = 30
	var want []string
	for i := range msgs {
		n.Webhook(simpleAlert("R", strconv.Itoa(i), "1"))
		want = append(want, strconv.Itoa(i), strconv.Itoa(i))
	}
	rec.wait(t, "all sent", func(ds []Delivery) bool { return count(ds, OutcomeSent) == msgs })
	closeNow(t, n)
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(sequence) != fmt.Sprint(want) {
		t.Errorf("request sequence %v, want %v", sequence, want)
	}
}

// TestCloseFlushes: Close delivers what is queued, retrying, before it
// returns; later notifications are ignored.
func TestCloseFlushes(t *testing.T) {
	var requests atomic.Int32
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		readRequest(t, r)
		if requests.Add(1) <= 3 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		time.Sleep(time.Millisecond)
	}))
	rec := &recorder{}
	reg := prometheus.NewRegistry()
	opts := fastOptions(rec)
	opts.Alertmanagers = []string{srv.URL}
	opts.Webhooks = []Webhook{{URL: srv.URL + "/a"}, {URL: srv.URL + "/b"}}
	opts.Registerer = reg
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var alerts []Alert
	for i := range 200 {
		alerts = append(alerts, simpleAlert("R", strconv.Itoa(i), "1"))
	}
	n.Alertmanager(alerts)
	for i := range 20 {
		n.Webhook(simpleAlert("W", strconv.Itoa(i), "1"))
	}
	closeNow(t, n)
	ds := rec.all()
	if got := count(ds, OutcomeSent); got != 200+2*20 {
		t.Errorf("%d sent, want %d", got, 240)
	}
	if got := count(ds, OutcomeDropped) + count(ds, OutcomeFailed); got != 0 {
		t.Errorf("%d dropped or failed: %+v", got, ds)
	}
	if got := metricValue(t, reg, "flowscope_alert_notifications_sent_total", ReceiverAlertmanager); got != 200 {
		t.Errorf("sent_total{alertmanager} = %v", got)
	}
	if got := metricValue(t, reg, "flowscope_alert_notifications_sent_total", ReceiverWebhook); got != 40 {
		t.Errorf("sent_total{webhook} = %v", got)
	}
	// The queue gauges are gone; a new notifier may register its own.
	if n2, err := New(opts); err != nil {
		t.Errorf("second notifier on the same registry: %v", err)
	} else {
		closeNow(t, n2)
	}

	n.Alertmanager(alerts[:1])
	n.Webhook(alerts[0])
	if err := n.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := len(rec.all()); got != len(ds) {
		t.Errorf("notifications after Close were reported: %d > %d", got, len(ds))
	}
}

// TestCloseGivesUp: Close returns when its context ends, reporting what was
// not delivered.
func TestCloseGivesUp(t *testing.T) {
	srv := startServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	rec := &recorder{}
	opts := fastOptions(rec)
	opts.Alertmanagers = []string{srv.URL}
	opts.Webhooks = []Webhook{{URL: srv.URL}}
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	n.Alertmanager([]Alert{simpleAlert("A", "1", "1"), simpleAlert("A", "2", "1")})
	n.Webhook(simpleAlert("W", "1", "1"))
	n.Webhook(simpleAlert("W", "2", "1"))
	rec.wait(t, "retries", func(ds []Delivery) bool { return count(ds, OutcomeRetrying) >= 4 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = n.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "4 notifications not delivered") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close: %v", err)
	}
	ds := rec.all()
	if got := count(ds, OutcomeDropped); got != 4 {
		t.Errorf("%d dropped, want 4: %+v", got, ds)
	}
	for _, d := range ds {
		if d.Outcome == OutcomeDropped && d.Error != "notifier closed before delivery" {
			t.Errorf("drop report %+v", d)
		}
	}
}

func TestNewValidation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		wantErr string // "" for valid
		hidden  string // must not appear in the error
	}{
		{"valid", Options{Alertmanagers: []string{"http://127.0.0.1:9093", "https://am.example/prefix/"},
			Webhooks: []Webhook{{URL: "https://hooks.example/x?token=1", Headers: map[string]string{"Authorization": "Bearer x"}}}}, "", ""},
		{"no receivers", Options{}, "", ""},
		{"empty", Options{Alertmanagers: []string{""}}, `alertmanagers[0] "": empty URL`, ""},
		{"relative", Options{Alertmanagers: []string{"http://ok", "am:9093"}}, `alertmanagers[1] "am:9093": not an absolute http or https URL`, ""},
		{"path only", Options{Webhooks: []Webhook{{URL: "/hook"}}}, `webhooks[0] "/hook": not an absolute`, ""},
		{"ftp", Options{Webhooks: []Webhook{{URL: "ftp://files.example/x"}}}, `webhooks[0] "ftp://files.example/x": not an absolute`, ""},
		{"no host", Options{Webhooks: []Webhook{{URL: "http://"}}}, `webhooks[0] "http://": URL has no host`, ""},
		{"unparsable", Options{Alertmanagers: []string{"http://[::1"}}, `alertmanagers[0] "http://[::1": invalid URL`, ""},
		{"header name", Options{Webhooks: []Webhook{{URL: "http://u:pw@hook.example/x?token=s3cret", Headers: map[string]string{"Bad Header": "v"}}}},
			`webhooks[0] "http://u:xxxxx@hook.example/x?xxxxx": header "Bad Header": invalid character ' ' in header name`, "s3cret"},
		{"header value", Options{Webhooks: []Webhook{{URL: "http://hook.example", Headers: map[string]string{"X-A": "a\r\nX-B: b"}}}},
			`header "X-A": control character in header value`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.opts)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				closeNow(t, n)
				return
			}
			if err == nil {
				closeNow(t, n)
				t.Fatalf("New succeeded, want %q", tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tc.wantErr)
			}
			if tc.hidden != "" && strings.Contains(err.Error(), tc.hidden) {
				t.Errorf("error %q reveals %q", err, tc.hidden)
			}
		})
	}
}

// TestBackoff: exponential, jittered within [d/2, d], capped.
func TestBackoff(t *testing.T) {
	n := &Notifier{opts: Options{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}}
	for _, tc := range []struct {
		failures int
		max      time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {100, time.Second}} {
		for range 100 {
			if d := n.backoff(tc.failures); d < tc.max/2 || d > tc.max {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tc.failures, d, tc.max/2, tc.max)
			}
		}
	}
	if d := n.retryWait(1, &httpError{status: 429, retryAfter: 500 * time.Millisecond}); d != 500*time.Millisecond {
		t.Errorf("Retry-After 500ms: wait %v", d)
	}
	if d := n.retryWait(1, &httpError{status: 429, retryAfter: time.Hour}); d != time.Second {
		t.Errorf("Retry-After 1h: wait %v, want MaxBackoff", d)
	}
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "-1": 0, "soon": 0,
		"Wed, 01 May 2024 10:00:30 GMT": 30 * time.Second,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}
