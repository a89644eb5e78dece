package notify

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// waitLimit is the generous bound of every wait in these tests.
const waitLimit = 20 * time.Second

// recorder collects delivery reports.
type recorder struct {
	mu sync.Mutex
	ds []Delivery
}

func (r *recorder) on(d Delivery) {
	r.mu.Lock()
	r.ds = append(r.ds, d)
	r.mu.Unlock()
}

func (r *recorder) all() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.ds...)
}

// wait polls until cond holds for the reports so far.
func (r *recorder) wait(t *testing.T, what string, cond func([]Delivery) bool) []Delivery {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ds := r.all()
		if cond(ds) {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; reports: %+v", what, ds)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// count counts reports with the outcome ("" for any).
func count(ds []Delivery, outcome string) int {
	n := 0
	for _, d := range ds {
		if outcome == "" || d.Outcome == outcome {
			n++
		}
	}
	return n
}

// has returns a condition: some report has the outcome.
func has(outcome string) func([]Delivery) bool {
	return func(ds []Delivery) bool { return count(ds, outcome) > 0 }
}

// startServer serves h on 127.0.0.1 until the test ends.
func startServer(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, l, h)
}

func serveOn(t *testing.T, l net.Listener, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// fastOptions shrinks timing for tests.
func fastOptions(rec *recorder) Options {
	return Options{
		OnDelivery:  rec.on,
		Timeout:     5 * time.Second,
		MinBackoff:  2 * time.Millisecond,
		MaxBackoff:  20 * time.Millisecond,
		MaxRetryFor: time.Minute,
		ExternalURL: "http://flowscope.test:8686",
		Logger:      slog.New(slog.DiscardHandler),
	}
}

// newNotifier creates a notifier closed (with a bound) when the test ends.
func newNotifier(t *testing.T, opts Options) *Notifier {
	t.Helper()
	n, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

// closeNow closes n within a generous bound and fails on an error.
func closeNow(t *testing.T, n *Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// request is one received request.
type request struct {
	Path    string
	Query   string
	Method  string
	Header  http.Header
	Body    []byte
	Decoded any
}

// readRequest reads and decodes a JSON request.
func readRequest(t *testing.T, r *http.Request) request {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Errorf("read body: %v", err)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("request body is not JSON: %v: %s", err, body)
	}
	return request{Path: r.URL.Path, Query: r.URL.RawQuery, Method: r.Method, Header: r.Header.Clone(), Body: body, Decoded: v}
}

// jsonEqual compares a decoded value with expected JSON text.
func jsonEqual(t *testing.T, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expected JSON: %v", err)
	}
	if !reflect.DeepEqual(got, w) {
		g, _ := json.MarshalIndent(got, "", "  ")
		e, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("payload mismatch\ngot:  %s\nwant: %s", g, e)
	}
}

// metricValue reads a self-metric of one receiver type (0 when absent).
func metricValue(t *testing.T, g prometheus.Gatherer, name, receiverType string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "receiver_type" && lp.GetValue() == receiverType {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
