package synthetics

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/aggregate"
	"github.com/flowscope/flowscope/store"
	"github.com/flowscope/flowscope/synthetics/checks"
)

// seen is a request as a test server received it.
type seen struct {
	path   string
	header http.Header
	body   string
}

// recorder is a test server's log of requests.
type recorder struct {
	mu   sync.Mutex
	reqs []seen
}

func (r *recorder) add(req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.reqs = append(r.reqs, seen{path: req.URL.RequestURI(), header: req.Header.Clone(), body: string(b)})
	r.mu.Unlock()
}

func (r *recorder) all() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

// shopServer serves a login, a cart and a checkout, recording requests.
func shopServer(t testing.TB) (*httptest.Server, *recorder) {
	rec := &recorder{}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Session", "sess-9")
		io.WriteString(w, `{"ok":true,"token":"tok-1","user":{"id":7}}`)
	})
	mux.HandleFunc("GET /cart", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		if r.Header.Get("Authorization") != "Bearer tok-1" || r.Header.Get("X-Session") != "sess-9" {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, `<p>cart id=cart-42 with 3 items</p>`)
	})
	mux.HandleFunc("POST /checkout/{cart}", func(w http.ResponseWriter, r *http.Request) {
		rec.add(r)
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"order":%q}`, r.PathValue("cart"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, rec
}

// journey is a 3-step check of shopServer: extracts by JSONPath, header
// and regex feed the later steps.
func journey(base string) checks.Check {
	return check("journey", time.Minute,
		mkStep("login", "POST", base+"/login", header("Content-Type", "application/json"),
			header("Baggage", "tenant=acme"), body(`{"user":"synthetic","run":"${correlation_id}"}`),
			extractJSON("TOKEN", "$.token"), extractJSON("USER", "$.user"), extractHeader("SESSION", "X-Session"),
			status(200), latencyBelow(5*time.Second), jsonEquals("$.ok", true), jsonExists("$.token", true),
			jsonExists("$.error", false), headerContains("Content-Type", "json")),
		mkStep("cart", "GET", base+"/cart", header("Authorization", "Bearer ${TOKEN}"), header("X-Session", "${SESSION}"),
			header("User-Agent", "custom/2"), extractRegex("CART", `id=(cart-\d+)`),
			statusIn(200, 201), bodyContains("items"), headerMatches("Content-Type", "^text/")),
		mkStep("checkout", "POST", base+"/checkout/${CART}", body(`{"user":${USER},"id":"${uuid}","at":${timestamp}}`),
			status(201), jsonEquals("$.order", "cart-42")),
	)
}

func TestRunSuccess(t *testing.T) {
	srv, rec := shopServer(t)
	h := newHarness(t, []checks.Check{journey(srv.URL)}, nil)
	before := time.Now()
	run, err := h.p.RunNow(context.Background(), "journey")
	if err != nil {
		t.Fatalf("RunNow: %v", err)
	}
	if !run.OK || run.Error != "" || run.Trigger != "manual" || run.Attempt != 1 || len(run.Steps) != 3 {
		t.Fatalf("run %+v", run)
	}
	if len(run.RunID) != 16 || len(run.TraceID) != 32 || len(run.CorrelationID) != 36 || run.CorrelationID[14] != '4' {
		t.Errorf("ids: run %q trace %q correlation %q", run.RunID, run.TraceID, run.CorrelationID)
	}
	if run.Start.Before(before) || run.Duration <= 0 || run.Duration > 5*time.Second {
		t.Errorf("start %v (test began %v), duration %v", run.Start, before, run.Duration)
	}
	if stored := h.runs.all(); len(stored) != 1 || stored[0].RunID != run.RunID {
		t.Errorf("stored %+v", stored)
	}
	for i, s := range run.Steps {
		if !s.OK || s.Skipped || s.Error != "" || s.Body != "" || len(s.SpanID) != 16 || s.Timings.Total <= 0 ||
			s.Timings.Connect <= 0 || s.Timings.FirstByte <= 0 || s.Timings.FirstByte > s.Timings.Total || s.Timings.TLS != 0 {
			t.Errorf("step %d: %+v", i, s)
		}
	}
	if s := run.Steps[2]; s.Method != "POST" || s.URL != srv.URL+"/checkout/cart-42" || s.Status != 201 {
		t.Errorf("checkout step %+v", s)
	}
	want := []store.SyntheticAssertion{
		{Type: "status", Expected: "200", Actual: "200", OK: true},
		{Type: "jsonpath_equals", Target: "$.ok", Expected: "true", Actual: "true", OK: true},
		{Type: "jsonpath_exists", Target: "$.token", Expected: "a match", Actual: `"tok-1"`, OK: true},
		{Type: "jsonpath_exists", Target: "$.error", Expected: "no match", Actual: "no match", OK: true},
		{Type: "header", Target: "Content-Type", Expected: "contains json", Actual: "application/json", OK: true},
	}
	got := run.Steps[0].Assertions
	if len(got) != 6 || got[1].Type != "latency_below" || got[1].Expected != "< 5s" || !got[1].OK || !strings.HasSuffix(got[1].Actual, "s") {
		t.Fatalf("login assertions %+v", got)
	}
	got = append(got[:1:1], got[2:]...)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("login assertion %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if a := run.Steps[1].Assertions; len(a) != 3 || a[0].Expected != "in [200 201]" || a[0].Actual != "200" ||
		a[1].Type != "body_contains" || a[1].Expected != `"items"` || a[1].Actual != "found" ||
		a[2].Expected != "matches ^text/" || !strings.HasPrefix(a[2].Actual, "text/") {
		t.Errorf("cart assertions %+v", a)
	}

	// The server saw the trace context, the correlation ID and the
	// values extracted.
	reqs := rec.all()
	if len(reqs) != 3 {
		t.Fatalf("server saw %d requests", len(reqs))
	}
	for i, r := range reqs {
		if tp := r.header.Get("Traceparent"); tp != "00-"+run.TraceID+"-"+run.Steps[i].SpanID+"-01" {
			t.Errorf("request %d traceparent %q", i, tp)
		}
		if r.header.Get("Tracestate") != "flowscope=synthetic" || r.header.Get("X-Correlation-Id") != run.CorrelationID {
			t.Errorf("request %d headers %v", i, r.header)
		}
	}
	if b := reqs[0].header.Get("Baggage"); b != "correlation.id="+run.CorrelationID+",tenant=acme" {
		t.Errorf("login baggage %q", b)
	}
	if b := reqs[1].header.Get("Baggage"); b != "correlation.id="+run.CorrelationID {
		t.Errorf("cart baggage %q", b)
	}
	if ua0, ua1 := reqs[0].header.Get("User-Agent"), reqs[1].header.Get("User-Agent"); ua0 != "flowscope-synthetics/1" || ua1 != "custom/2" {
		t.Errorf("user agents %q, %q", ua0, ua1)
	}
	if !strings.Contains(reqs[0].body, run.CorrelationID) || reqs[2].path != "/checkout/cart-42" ||
		!strings.HasPrefix(reqs[2].body, `{"user":{"id":7},"id":"`) || strings.Contains(reqs[2].body, "${") {
		t.Errorf("bodies and paths: %q, %q %q", reqs[0].body, reqs[2].path, reqs[2].body)
	}

	checkSpans(t, h.writer, run, srv)
}

// checkSpans checks the one trace written for run.
func checkSpans(t *testing.T, w *fakeWriter, run store.SyntheticRun, srv *httptest.Server) {
	t.Helper()
	reqs := w.traces(t)
	if len(reqs) != 1 || len(reqs[0].ResourceSpans) != 1 || len(reqs[0].ResourceSpans[0].ScopeSpans) != 1 {
		t.Fatalf("written %d requests: %v", len(reqs), reqs)
	}
	rs := reqs[0].ResourceSpans[0]
	res := map[string]string{}
	for _, kv := range rs.Resource.Attributes {
		res[kv.Key] = kv.Value.GetStringValue()
	}
	if res["service.name"] != "synthetics" || res[aggregate.SyntheticCheckAttr] != run.Check || res["telemetry.sdk.name"] != "flowscope-synthetics" {
		t.Errorf("resource %v", res)
	}
	spans := rs.ScopeSpans[0].Spans
	if len(spans) != 1+len(run.Steps) {
		t.Fatalf("%d spans for %d steps", len(spans), len(run.Steps))
	}
	root := spans[0]
	ra := spanAttrs(root)
	if hex.EncodeToString(root.TraceId) != run.TraceID || len(root.ParentSpanId) != 0 || root.Name != run.Check ||
		root.Kind != tracepb.Span_SPAN_KIND_INTERNAL || ra["synthetic.check"] != run.Check || ra["user_agent.synthetic.type"] != "test" ||
		ra["synthetic.run_id"] != run.RunID || ra["synthetic.trigger"] != run.Trigger || ra["correlation.id"] != run.CorrelationID ||
		root.Status != nil || root.StartTimeUnixNano != uint64(run.Start.UnixNano()) || root.EndTimeUnixNano != uint64(run.Start.Add(run.Duration).UnixNano()) {
		t.Errorf("root span %v", root)
	}
	port, _ := strconv.Atoi(srv.URL[strings.LastIndexByte(srv.URL, ':')+1:])
	for i, sp := range spans[1:] {
		st := run.Steps[i]
		a := spanAttrs(sp)
		if hex.EncodeToString(sp.SpanId) != st.SpanID || hex.EncodeToString(sp.TraceId) != run.TraceID ||
			string(sp.ParentSpanId) != string(root.SpanId) || sp.Name != st.Name || sp.Kind != tracepb.Span_SPAN_KIND_CLIENT {
			t.Errorf("step span %d: %v", i, sp)
		}
		if a["http.request.method"] != st.Method || a["url.full"] != st.URL || a["server.address"] != "127.0.0.1" ||
			a["server.port"] != int64(port) || a["http.response.status_code"] != int64(st.Status) || a["synthetic.step"] != st.Name ||
			a["correlation.id"] != run.CorrelationID {
			t.Errorf("step span %d attributes %v", i, a)
		}
		if sp.StartTimeUnixNano < root.StartTimeUnixNano || sp.EndTimeUnixNano > root.EndTimeUnixNano || sp.EndTimeUnixNano < sp.StartTimeUnixNano {
			t.Errorf("step span %d times [%d, %d] outside the root's [%d, %d]", i, sp.StartTimeUnixNano, sp.EndTimeUnixNano,
				root.StartTimeUnixNano, root.EndTimeUnixNano)
		}
	}
}
