package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"

	"github.com/flowscope/flowscope/alerting/rules"
)

// TestRulesFile checks that the generated rules parse, with the breach rule
// as the scenario says.
func TestRulesFile(t *testing.T) {
	rs, err := rules.Parse("rules.yml", []byte(rulesYAML(30, 970, 450)))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1000 {
		t.Fatalf("%d rules", len(rs))
	}
	r := rs[0]
	if r.Name != "breach-00" || r.Select.Source != "frontend-00" || r.Select.Target != "checkout-00" || r.Signal.Name != "p99" ||
		r.Threshold != float64(200*time.Millisecond) || r.Window != 10*time.Second || r.For != 0 || r.MinCount != breachMinCount {
		t.Errorf("breach rule: %+v", r)
	}
	for _, r := range rs[30:] {
		if r.Each != rules.EachEdge {
			t.Fatalf("extra rule %s: each %q", r.Name, r.Each)
		}
	}
}

// TestTemplates checks that rendered background requests decode and that
// no two renders share a trace ID.
func TestTemplates(t *testing.T) {
	tps, err := buildTemplates(4, 512, bgEdges(450), 7)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var buf []byte
	for seq := uint64(1); seq <= 8; seq++ {
		tp := tps[seq%4]
		buf = tp.render(buf, seq, time.Now())
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(buf, &req); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, rs := range req.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					n++
					if s.ParentSpanId == nil {
						if seen[string(s.TraceId)] {
							t.Fatalf("trace ID repeated")
						}
						seen[string(s.TraceId)] = true
					}
				}
			}
		}
		if n != 512 {
			t.Fatalf("%d spans", n)
		}
	}
}

func TestSummarise(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 30; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	s := summarise(ds)
	if s.Count != 30 || s.P50Ms != 15 || s.P90Ms != 27 || s.P99Ms != 30 || s.MaxMs != 30 || s.MinMs != 1 {
		t.Errorf("%+v", s)
	}
}

// TestHookReceiver checks that a firing message reaches the breach waiting
// for its rule and a resolved one is remembered.
func TestHookReceiver(t *testing.T) {
	h := newHookReceiver()
	srv := httptest.NewServer(h)
	defer srv.Close()
	ch := h.expect("breach-03")
	post := func(status string) {
		body := `{"version":"4","status":"` + status + `","alerts":[{"status":"` + status + `","labels":{"alertname":"breach-03"}}]}`
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	post("firing")
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("firing not delivered")
	}
	if h.resolved("breach-03") {
		t.Fatal("resolved too early")
	}
	post("resolved")
	if !h.resolved("breach-03") || h.messages() != 2 {
		t.Fatalf("resolved %v, %d messages", h.resolved("breach-03"), h.messages())
	}
}

// TestShortRun runs the harness briefly against a freshly built collector:
// two breaches under a light background load, so that it cannot rot.
func TestShortRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and drives the collector; skipped under -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := run(ctx, config{
		Breaches: 3, Edges: 2, Rate: 5000, MinRate: 1000, Clients: 2, SpansPerRequest: 512, Pool: 8,
		BgEdges: 30, ExtraRules: 20, Interval: time.Second, Warmup: 2 * time.Second, Duration: 90 * time.Second,
		Timeout: 10 * time.Second,
	}, t.Logf)
	if res != nil {
		var b bytes.Buffer
		res.printTable(&b)
		t.Logf("result:\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if res.Breaches != 3 || res.API.Count != 3 || res.Webhook.Count != 3 || res.RulesLoaded != 22 || res.Cycles.Count == 0 {
		t.Errorf("incomplete: %+v", res)
	}
	// The third breach reused edge 0 after its alert resolved.
	if res.Samples[2].Rule != "breach-00" {
		t.Errorf("third breach on %s", res.Samples[2].Rule)
	}
	js, _ := json.Marshal(res)
	for _, k := range []string{`"api":`, `"webhook":`, `"background":`, `"spans_per_second":`, `"p99_ms":`} {
		if !bytes.Contains(js, []byte(k)) {
			t.Errorf("JSON lacks %s", k)
		}
	}
}
