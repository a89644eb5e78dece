package e2e

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// hop is a call from a service to target, with the callee's own calls.
type hop struct {
	target   string
	dur      time.Duration
	failed   bool
	resend   int // http.request.resend_count of the client span (0: none)
	children []hop
}

// request sends, with the OpenTelemetry SDK, one request into entry (a
// SERVER span) making the calls hops (CLIENT spans in the caller, SERVER
// spans in the callee, nested as given, one after the other).
func (m *sdkMesh) request(entry string, at time.Time, hops ...hop) {
	ctx, root := m.tracer(entry).Start(context.Background(), "GET /", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at))
	end := m.emit(ctx, entry, at.Add(time.Millisecond), hops)
	root.End(trace.WithTimestamp(end.Add(time.Millisecond)))
}

// emit sends hops from caller under ctx, one after the other from start,
// and returns when the last one ended.
func (m *sdkMesh) emit(ctx context.Context, caller string, start time.Time, hops []hop) time.Time {
	t := start
	for _, h := range hops {
		opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(t)}
		if h.resend > 0 {
			opts = append(opts, trace.WithAttributes(attribute.Int("http.request.resend_count", h.resend)))
		}
		_, client := m.tracer(caller).Start(ctx, "call "+h.target, opts...)
		sctx := trace.ContextWithRemoteSpanContext(context.Background(), client.SpanContext())
		sctx, server := m.tracer(h.target).Start(sctx, "serve", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(t.Add(500*time.Microsecond)))
		m.emit(sctx, h.target, t.Add(time.Millisecond), h.children)
		if h.failed {
			client.SetStatus(codes.Error, "timeout")
		}
		server.End(trace.WithTimestamp(t.Add(h.dur - 500*time.Microsecond)))
		client.End(trace.WithTimestamp(t.Add(h.dur)))
		t = t.Add(h.dur + time.Millisecond)
	}
	return t
}

// lintJSON is the answer of GET /api/v1/lint.
type lintJSON struct {
	Findings []struct {
		Rule          string
		Nodes         []string
		Edges         []struct{ Source, Target string }
		Value         float64
		Threshold     float64
		Amplification float64
		LatencyNs     float64
		Message       string
	}
}

// TestLintRetriesAndTimeouts sends, through the OpenTelemetry SDK, a
// client that retries 30 % of its calls on one edge (once marked with
// http.request.resend_count, once as plain repeated calls after a
// failure), and two timeout configurations: a caller
// timing out at 100 ms over a callee timing out at 200 ms with 2 retries
// (flagged), and the reverse, a caller timing out at 200 ms with 2
// retries over a callee with a single 100 ms attempt (not flagged). The
// lint reports the retry share within 1 percentage point of the truth and
// the amplification exactly, and no retry storm on the other edges.
func TestLintRetriesAndTimeouts(t *testing.T) {
	s := startServer(t, "")
	m := newSDKMesh(t, s.addrs.OTLPGRPC)
	base := time.Now().Add(-time.Minute)
	const requests = 100
	retried := 0
	// shop marks its resends with http.request.resend_count; shop2 just
	// calls pay2 again after a failure.
	for i := 0; i < requests; i++ {
		at := base.Add(time.Duration(i) * 100 * time.Millisecond)
		calls := []hop{{target: "pay", dur: 20 * time.Millisecond}}
		calls2 := []hop{{target: "pay2", dur: 20 * time.Millisecond}}
		if i%10 < 3 { // 30 %: the first attempt fails, one more
			calls = []hop{{target: "pay", dur: 20 * time.Millisecond, failed: true}, {target: "pay", dur: 20 * time.Millisecond, resend: 1}}
			calls2 = []hop{{target: "pay2", dur: 20 * time.Millisecond, failed: true}, {target: "pay2", dur: 20 * time.Millisecond}}
			retried++
		}
		m.request("web", at, hop{target: "shop", dur: 80 * time.Millisecond, children: calls})
		m.request("web2", at, hop{target: "shop2", dur: 80 * time.Millisecond, children: calls2})
	}
	for i := 0; i < 20; i++ {
		at := base.Add(time.Duration(i) * 200 * time.Millisecond)
		// gw times out at 100 ms; mid tries db 3 times, 200 ms each.
		dbCalls := []hop{{target: "db", dur: 200 * time.Millisecond, failed: true}, {target: "db", dur: 200 * time.Millisecond, failed: true, resend: 1},
			{target: "db", dur: 200 * time.Millisecond, failed: true, resend: 2}}
		m.request("gw", at, hop{target: "mid", dur: 100 * time.Millisecond, failed: true, children: dbCalls})
		// The reverse: gw2 tries mid2 3 times, 200 ms each; mid2 gives db2
		// one 100 ms attempt.
		var calls []hop
		for a := 0; a < 3; a++ {
			calls = append(calls, hop{target: "mid2", dur: 200 * time.Millisecond, failed: true, resend: a,
				children: []hop{{target: "db2", dur: 100 * time.Millisecond, failed: true}}})
		}
		m.request("gw2", at, calls...)
	}
	wantCalls := float64(requests + retried)
	var lint lintJSON
	waitFor(t, 30*time.Second, "every call in the flow graph", func() (bool, string) {
		g := getFlowGraph(t, s, "")
		got := map[string]float64{}
		for _, e := range g.Edges {
			got[e.Source+"->"+e.Target] = e.Calls
		}
		ok := got["shop->pay"] == wantCalls && got["shop2->pay2"] == wantCalls && got["mid->db"] == 60 && got["gw2->mid2"] == 60 && got["mid2->db2"] == 60 && got["gw->mid"] == 20
		return ok, fmt.Sprint(got)
	})
	s.getJSON(t, "/api/v1/lint", &lint)
	storms := map[string][2]float64{}
	budgets := map[string]float64{}
	for _, f := range lint.Findings {
		switch f.Rule {
		case "retry_storm":
			storms[f.Edges[0].Source+"->"+f.Edges[0].Target] = [2]float64{f.Value, f.Amplification}
		case "timeout_budget":
			budgets[f.Edges[0].Source+"->"+f.Edges[0].Target] = f.Value
			t.Logf("timeout_budget: %s", f.Message)
		}
	}
	truth := float64(retried) / wantCalls
	for _, edge := range []string{"shop->pay", "shop2->pay2"} {
		if st, ok := storms[edge]; !ok || math.Abs(st[0]-truth) > 0.01 || st[1] != wantCalls/requests {
			t.Errorf("%s: retry storm %v (found %v), want share %.4f, amplification %.2f", edge, st, ok, truth, wantCalls/requests)
		} else {
			t.Logf("%s: retry share %.4f (truth %.4f), amplification %.2f", edge, st[0], truth, st[1])
		}
	}
	for edge := range storms {
		if edge != "shop->pay" && edge != "shop2->pay2" && edge != "mid->db" && edge != "gw2->mid2" {
			t.Errorf("retry storm reported on %s, which has no retries", edge)
		}
	}
	if v, ok := budgets["gw->mid"]; !ok || math.Abs(v-float64(100*time.Millisecond)) > float64(2*time.Millisecond) {
		t.Errorf("gw → mid (100 ms over 3 × 200 ms): timeout budget %v (found %v), want flagged at about 100 ms", v, ok)
	}
	if _, ok := budgets["gw2->mid2"]; ok {
		t.Errorf("gw2 → mid2 (200 ms over 1 × 100 ms) flagged: %v", budgets)
	}
	if len(budgets) != 1 {
		t.Errorf("timeout budget findings %v, want gw → mid only", budgets)
	}
}

// TestLintChainFromTraces sends a synchronous chain of 7 hops (s1 → … →
// s8) through the OpenTelemetry SDK, and two request types whose calls
// join into a graph path of 7 hops that no request takes (x1 → … → x4,
// and x4 → … → x8 with x4 as its own entry). The lint reports the chain
// requests really take, as observed in traces, with its p99s summed.
func TestLintChainFromTraces(t *testing.T) {
	s := startServer(t, "")
	m := newSDKMesh(t, s.addrs.OTLPGRPC)
	chain := func(names ...string) hop {
		h := hop{target: names[len(names)-1], dur: 10 * time.Millisecond}
		for i := len(names) - 2; i >= 0; i-- {
			h = hop{target: names[i], dur: h.dur + 5*time.Millisecond, children: []hop{h}}
		}
		return h
	}
	base := time.Now().Add(-time.Minute)
	for i := 0; i < 5; i++ {
		at := base.Add(time.Duration(i) * time.Second)
		m.request("s1", at, chain("s2", "s3", "s4", "s5", "s6", "s7", "s8"))
		m.request("x1", at, chain("x2", "x3", "x4"))
		m.request("x4", at, chain("x5", "x6", "x7", "x8"))
	}
	waitFor(t, 30*time.Second, "the chains in the flow graph", func() (bool, string) {
		g := getFlowGraph(t, s, "")
		return len(g.Edges) == 7+3+4, fmt.Sprint(len(g.Edges), " edges")
	})
	var lint lintJSON
	waitFor(t, 15*time.Second, "the traces searchable", func() (bool, string) {
		var found struct{ Traces []any }
		s.getJSON(t, "/api/v1/traces?limit=100", &found)
		return len(found.Traces) == 15, fmt.Sprint(len(found.Traces), " traces")
	})
	s.getJSON(t, "/api/v1/lint", &lint)
	var chains int
	for _, f := range lint.Findings {
		if f.Rule != "chain_depth" {
			continue
		}
		chains++
		want := []string{"s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8"}
		if fmt.Sprint(f.Nodes) != fmt.Sprint(want) || f.Value != 7 || !strings.Contains(f.Message, "observed in traces") {
			t.Errorf("chain_depth: nodes %v value %v message %q, want the observed chain %v", f.Nodes, f.Value, f.Message, want)
		}
		// The client-side p99s of the hops: 40, 35, …, 10 ms (HDR, 1 %).
		if sum := float64((40 + 35 + 30 + 25 + 20 + 15 + 10) * time.Millisecond); f.LatencyNs < sum*0.99 || f.LatencyNs > sum*1.01 {
			t.Errorf("chain_depth: p99s sum to %v ns, want about %v", f.LatencyNs, sum)
		}
	}
	if chains != 1 {
		t.Errorf("%d chain_depth findings, want 1: %+v", chains, lint.Findings)
	}
}
