package synthetics

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/flowscope/flowscope/synthetics/checks"
)

// closedPort returns the URL of a port on 127.0.0.1 nobody listens on.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestRunFailures(t *testing.T) {
	next := func(base string) checks.Step { return mkStep("next", "GET", base+"/next", status(200)) }
	cases := []struct {
		name string
		// handler serves every path but /next (200 "ok"); with tls the
		// server is https, trusted by the prober when trust is set.
		handler    http.HandlerFunc
		tls, trust bool
		// base replaces the server: "closed" for a closed port.
		base  string
		steps func(base string) []checks.Step

		states  string // per step: o passed, f failed, s skipped
		runOK   bool
		status  int    // the first step's
		err     string // prefix of the first step's Error
		has     string // in the first step's Error
		runErr  string // prefix of the run's Error
		body    string // in the first step's Body
		maxTime time.Duration
	}{{
		name: "status mismatch",
		handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		},
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", status(200)), next(b)}
		},
		states: "fs", status: 503, err: "status: expected 200, got 503",
		runErr: "first: status: expected 200, got 503", body: "down for maintenance",
	}, {
		name:    "jsonpath equals mismatch",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":false}`) },
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", status(200), jsonEquals("$.ok", true)), next(b)}
		},
		states: "fs", status: 200, err: "jsonpath_equals $.ok: expected true, got false", runErr: "first: jsonpath_equals", body: `{"ok":false}`,
	}, {
		name:    "body is not JSON",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `<html>`) },
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", jsonEquals("$.ok", true)), next(b)}
		},
		states: "fs", status: 200, err: "jsonpath_equals $.ok: expected true, got body is not JSON", body: "<html>",
	}, {
		name: "latency exceeded",
		handler: func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(150 * time.Millisecond)
			io.WriteString(w, "slow")
		},
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", status(200), latencyBelow(50*time.Millisecond)), next(b)}
		},
		states: "fs", status: 200, err: "latency_below: expected < 50ms, got 1", body: "slow",
	}, {
		name: "connection refused",
		base: "closed",
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", status(200)), next(b)}
		},
		states: "fs", status: 0, err: "request: dial tcp 127.0.0.1:", has: ": connect: connection refused",
		runErr: "first: request: dial tcp",
	}, {
		name: "step timeout",
		handler: func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		},
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", timeout(300*time.Millisecond), status(200)), next(b)}
		},
		states: "fs", status: 0, err: "request: timeout after 300ms", maxTime: 300*time.Millisecond + 2*time.Second,
	}, {
		name: "unknown host",
		base: "http://nonexistent.invalid",
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", status(200)), next(b)}
		},
		states: "fs", status: 0, err: "request: dial tcp: lookup nonexistent.invalid", has: "no such host",
	}, {
		name:    "self-signed certificate",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") },
		tls:     true,
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", status(200)), next(b)}
		},
		states: "fs", status: 0, err: "request: tls: failed to verify certificate: x509:",
	}, {
		name:    "trusted certificate",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") },
		tls:     true, trust: true,
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", status(200), bodyContains("secure")), next(b)}
		},
		states: "oo", runOK: true, status: 200,
	}, {
		name:    "redirect not followed",
		handler: func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/next", http.StatusFound) },
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", status(302)), next(b)}
		},
		states: "oo", runOK: true, status: 302,
	}, {
		name: "continue on failure",
		handler: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "nope", http.StatusServiceUnavailable)
		},
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/", status(200), continueOnFailure()), next(b)}
		},
		states: "fo", runOK: true, status: 503, err: "status: expected 200, got 503", body: "nope",
	}, {
		name:    "continue on failure, then a failure",
		handler: func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) },
		steps: func(b string) []checks.Step {
			return []checks.Step{
				mkStep("first", "GET", b+"/", status(200), continueOnFailure()),
				mkStep("second", "GET", b+"/second", status(200)),
				next(b),
			}
		},
		states: "ffs", status: 404, err: "status: expected 200, got 404", runErr: "second: status: expected 200, got 404",
		body: "404 page not found",
	}, {
		name:    "extract matches nothing",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"x":1}`) },
		steps: func(b string) []checks.Step {
			return []checks.Step{
				mkStep("first", "GET", b+"/", extractJSON("TOKEN", "$.token"), status(200)),
				mkStep("second", "GET", b+"/next", header("Authorization", "Bearer ${TOKEN}")),
			}
		},
		states: "fs", status: 200, err: "extract TOKEN: $.token matched nothing", body: `{"x":1}`,
	}, {
		name:    "environment variable not set",
		handler: func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") },
		steps: func(b string) []checks.Step {
			return []checks.Step{mkStep("first", "GET", b+"/?k=${env:SYNTHETICS_TEST_UNSET}", status(200)), next(b)}
		},
		states: "fs", status: 0, err: "url: environment variable SYNTHETICS_TEST_UNSET is not set",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base, trust := tc.base, http.RoundTripper(nil)
			if base == "closed" {
				base = closedPort(t)
			}
			if base == "" {
				h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == "/next" {
						io.WriteString(w, "ok")
						return
					}
					tc.handler(w, r)
				})
				srv := httptest.NewUnstartedServer(h)
				srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
				if tc.tls {
					srv.StartTLS()
					trust = srv.Client().Transport
				} else {
					srv.Start()
				}
				t.Cleanup(srv.Close)
				base = srv.URL
			}
			c := check("c", time.Minute, tc.steps(base)...)
			hs := newHarness(t, []checks.Check{c}, func(o *Options) {
				if tc.trust {
					o.Transport = trust
				}
			})
			began := time.Now()
			run, err := hs.p.RunNow(context.Background(), "c")
			took := time.Since(began)
			if err != nil {
				t.Fatalf("RunNow: %v", err)
			}
			var states strings.Builder
			for _, s := range run.Steps {
				switch {
				case s.Skipped:
					states.WriteByte('s')
					if s.OK || s.SpanID != "" || s.Status != 0 || s.Method != "GET" || !strings.HasPrefix(s.URL, base) {
						t.Errorf("skipped step %+v", s)
					}
				case s.OK:
					states.WriteByte('o')
				default:
					states.WriteByte('f')
				}
			}
			first := run.Steps[0]
			if states.String() != tc.states || run.OK != tc.runOK || first.Status != tc.status || !strings.HasPrefix(first.Error, tc.err) ||
				(tc.err == "") != (first.Error == "") || !strings.Contains(first.Error, tc.has) || !strings.HasPrefix(run.Error, tc.runErr) || run.OK != (run.Error == "") {
				t.Errorf("steps %s, run ok %v error %q, first step status %d error %q; want %s, %v %q…, %d %q…",
					states.String(), run.OK, run.Error, first.Status, first.Error, tc.states, tc.runOK, tc.runErr, tc.status, tc.err)
			}
			if !strings.Contains(first.Body, tc.body) || (tc.body == "") != (first.Body == "") {
				t.Errorf("first step body %q, want %q", first.Body, tc.body)
			}
			if tc.maxTime > 0 && took > tc.maxTime {
				t.Errorf("run took %v, want at most %v", took, tc.maxTime)
			}
			if stored := hs.runs.all(); len(stored) != 1 || stored[0].RunID != run.RunID {
				t.Errorf("stored %d runs", len(stored))
			}
			// A span per step that ran, ERROR with the step's error.
			spans := hs.writer.traces(t)[0].ResourceSpans[0].ScopeSpans[0].Spans
			root, steps := spans[0], spans[1:]
			if ran := len(tc.states) - strings.Count(tc.states, "s"); len(steps) != ran {
				t.Fatalf("%d step spans, want %d", len(steps), ran)
			}
			if (root.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR) == run.OK || root.Status.GetMessage() != run.Error {
				t.Errorf("root status %v for run ok %v error %q", root.Status, run.OK, run.Error)
			}
			for i, sp := range steps {
				st := run.Steps[i]
				if (sp.Status.GetCode() == tracepb.Status_STATUS_CODE_ERROR) == st.OK || sp.Status.GetMessage() != st.Error {
					t.Errorf("step %d span status %v for step ok %v error %q", i, sp.Status, st.OK, st.Error)
				}
				if _, ok := spanAttrs(sp)["http.response.status_code"]; ok != (st.Status != 0) {
					t.Errorf("step %d span attributes %v with status %d", i, spanAttrs(sp), st.Status)
				}
			}
		})
	}
}

// TestRetries: a run that fails once is retried at once; the stored run is
// the second attempt, and both attempts' traces are written.
func TestRetries(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			http.Error(w, "flaky", http.StatusBadGateway)
			return
		}
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	c := check("flaky", time.Minute, mkStep("get", "GET", srv.URL, status(200)))
	c.Retries = 2
	h := newHarness(t, []checks.Check{c}, nil)
	run, err := h.p.RunNow(context.Background(), "flaky")
	if err != nil || !run.OK || run.Attempt != 2 {
		t.Fatalf("run %+v, %v; want OK at attempt 2", run, err)
	}
	if stored := h.runs.all(); len(stored) != 1 || stored[0].Attempt != 2 {
		t.Errorf("stored %+v", stored)
	}
	traces := h.writer.traces(t)
	if len(traces) != 2 {
		t.Fatalf("%d traces written, want 2", len(traces))
	}
	first, second := traces[0].ResourceSpans[0].ScopeSpans[0].Spans[0], traces[1].ResourceSpans[0].ScopeSpans[0].Spans[0]
	if string(first.TraceId) == string(second.TraceId) || first.Status.GetCode() != tracepb.Status_STATUS_CODE_ERROR ||
		spanAttrs(second)["synthetic.attempt"] != int64(2) || spanAttrs(first)["synthetic.run_id"] == run.RunID {
		t.Errorf("attempts' roots %v and %v", first, second)
	}
	if v, _ := h.metric(t, "flowscope_synthetic_runs_total", map[string]string{"check": "flaky", "result": "success"}); v != 1 {
		t.Errorf("runs_total success %v, want 1", v)
	}
	if v, _ := h.metric(t, "flowscope_synthetic_run_duration_seconds", map[string]string{"check": "flaky"}); v != 2 {
		t.Errorf("run_duration count %v, want 2 (one per attempt)", v)
	}
}
